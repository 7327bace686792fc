/* attachments.c: one attachment by id, the download-link signing key, and deleting the
 * attachments of an erased case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rmfiles.h"
#include "common/xalloc.h"
#include "store/attachments.h"
#include "store/db.h"
#include "store/erase.h"
#include "store/lease.h"

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

int store_attachment_get(struct db *db, const char *attachment_id, struct store_attachment *a_r,
			 const char **error_r)
{
	/* Only while its case exists: a case being erased (store/erase.h) loses its case row
	 * first, and its download links fail from then on. */
	static const char sql[] =
		"SELECT a.id, a.case_id, a.name, a.size, a.content_type, a.storage_path,"
		" a.message_id, a.inbox_id, a.received_at FROM attachments a"
		" JOIN cases c ON c.id = a.case_id WHERE a.id = ?";
	struct db_arg args[] = { DB_STR(attachment_id) };
	struct db_res *res = NULL;
	int rc = -1;

	memset(a_r, 0, sizeof *a_r);
	if (db_query(db, sql, args, 1, &res) < 0) {
		*error_r = db_error(db);
		goto out;
	}
	rc = 0;
	if (db_res_rows(res) == 0)
		goto out;
	copy(a_r->id, sizeof a_r->id, db_res_get(res, 0, 0));
	copy(a_r->case_id, sizeof a_r->case_id, db_res_get(res, 0, 1));
	copy(a_r->name, sizeof a_r->name, db_res_get(res, 0, 2));
	a_r->size = db_res_int(res, 0, 3);
	copy(a_r->content_type, sizeof a_r->content_type, db_res_get(res, 0, 4));
	copy(a_r->storage_path, sizeof a_r->storage_path, db_res_get(res, 0, 5));
	copy(a_r->message_id, sizeof a_r->message_id, db_res_get(res, 0, 6));
	copy(a_r->inbox_id, sizeof a_r->inbox_id, db_res_get(res, 0, 7));
	a_r->received_at = db_res_int(res, 0, 8);
	rc = 1;
out:
	db_res_free(&res);
	return rc;
}

int store_files_signing_key(struct db *db, unsigned char *key_r, size_t cap, size_t *len_r,
			    const char **error_r)
{
	static const char sql[] = "SELECT value FROM settings WHERE name = 'files_signing_key'";
	struct db_res *res = NULL;
	size_t len;
	int rc = -1;

	if (db_query(db, sql, NULL, 0, &res) < 0) {
		*error_r = db_error(db);
		goto out;
	}
	rc = 0;
	len = db_res_len(res, 0, 0);
	if (db_res_rows(res) != 1 || len < 16 || len > cap)
		goto out;
	memcpy(key_r, db_res_get(res, 0, 0), len);
	*len_r = len;
	rc = 1;
out:
	db_res_free(&res);
	return rc;
}

_Static_assert(STORE_IN_MAX == 32, "the attachment batch's LIMIT must say STORE_IN_MAX");

int store_attachments_delete_case(struct db *db, const char *files_dir, const char *case_id,
				  int64_t *rows_r, int64_t *files_r, const char **error_r)
{
	static const char select_sql[] =
		"SELECT id, storage_path FROM attachments WHERE case_id = ? ORDER BY id LIMIT 32";
	static const char delete_sql[] =
		"DELETE FROM attachments WHERE case_id = ? AND id IN (" STORE_IN_LIST ")";

	if (store_erase_rows_and_files(db, select_sql, delete_sql, files_dir, case_id, rows_r,
				       files_r, error_r) < 0)
		return -1;
	return rmfiles_dir(files_dir, case_id, files_r, error_r) < 0 ? -1 : 0;
}
