/* attachments.c: one attachment by id, its bytes in attachment_chunks, the download-link
 * signing key, and deleting the attachments of an erased case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rmfiles.h"
#include "common/xalloc.h"
#include "store/attachments.h"
#include "store/db.h"
#include "store/erase.h"
#include "store/lease.h"
#include "store/tx.h"

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
		" a.message_id, a.inbox_id, a.received_at, a.sha256 FROM attachments a"
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
	copy(a_r->sha256, sizeof a_r->sha256, db_res_get(res, 0, 9));
	rc = 1;
out:
	db_res_free(&res);
	return rc;
}

int store_attachment_bytes_insert(struct db *db, const char *attachment_id, const void *data,
				  size_t len)
{
	static const char sql[] =
		"INSERT INTO attachment_chunks (attachment_id, seq, data) VALUES (?, ?, ?)";
	const char *p = data;

	for (size_t off = 0, seq = 0; off < len; off += STORE_ATTACHMENT_CHUNK, seq++) {
		size_t n = len - off < STORE_ATTACHMENT_CHUNK ? len - off : STORE_ATTACHMENT_CHUNK;
		struct db_arg args[] = { DB_STR(attachment_id), DB_INT(seq), DB_BLOB(p + off, n) };

		if (db_query(db, sql, args, 3, NULL) < 0)
			return -1;
	}
	return 0;
}

int store_attachment_bytes_stream(struct db *db, const char *attachment_id, int64_t size,
				  store_attachment_sink *sink, void *arg, const char **error_r)
{
	static const char sql[] =
		"SELECT data FROM attachment_chunks WHERE attachment_id = ? AND seq = ?";
	int64_t off = 0;

	for (int64_t seq = 0; off < size; seq++) {
		struct db_arg args[] = { DB_STR(attachment_id), DB_INT(seq) };
		int64_t want = size - off < STORE_ATTACHMENT_CHUNK ? size - off : STORE_ATTACHMENT_CHUNK;
		struct db_res *res = NULL;
		size_t got;
		int stop;

		if (db_query(db, sql, args, 2, &res) < 0) {
			*error_r = db_error(db);
			return -1;
		}
		got = db_res_rows(res) == 1 ? db_res_len(res, 0, 0) : 0;
		if (db_res_rows(res) != 1 || (int64_t)got != want) {
			db_res_free(&res);
			*error_r = "a chunk of the attachment's bytes is missing or of the wrong size";
			return -1;
		}
		stop = sink(arg, db_res_get(res, 0, 0), got);
		db_res_free(&res);
		if (stop < 0)
			return -2;
		off += want;
	}
	return 0;
}

struct bytes_delete {
	const char *attachment_id;
};

static int bytes_delete_tx(struct db *db, void *arg)
{
	static const char sql[] = "DELETE FROM attachment_chunks WHERE attachment_id = ?";
	struct bytes_delete *t = arg;
	struct db_arg args[] = { DB_STR(t->attachment_id) };

	return db_query(db, sql, args, 1, NULL);
}

int store_case_attachment_bytes_delete(struct db *db, const char *case_id, const char **error_r)
{
	static const char sql[] = "SELECT id FROM attachments WHERE case_id = ?";
	struct db_arg args[] = { DB_STR(case_id) };
	struct db_res *res = NULL;
	int n = 0;

	if (db_query(db, sql, args, 1, &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	for (size_t i = 0; i < db_res_rows(res); i++) {
		struct bytes_delete t = { db_res_get(res, i, 0) };

		if (store_tx_run(db, bytes_delete_tx, &t) < 0) {
			*error_r = db_error(db);
			db_res_free(&res);
			return -1;
		}
		n++;
	}
	db_res_free(&res);
	return n;
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

	/* The bytes first, one attachment per transaction (store_case_attachment_bytes_delete):
	 * a row without its bytes is never served, its case row being gone already. */
	if (store_case_attachment_bytes_delete(db, case_id, error_r) < 0)
		return -1;
	if (store_erase_rows_and_files(db, select_sql, delete_sql, files_dir, case_id, rows_r,
				       files_r, error_r) < 0)
		return -1;
	return rmfiles_dir(files_dir, case_id, files_r, error_r) < 0 ? -1 : 0;
}
