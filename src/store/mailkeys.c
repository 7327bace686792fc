/* mailkeys.c: SQL for signed bounce addresses (the tag key, a case's outbound Message-IDs). */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/db.h"
#include "store/mailkeys.h"

int store_mailkey_get(struct db *db, unsigned char key_r[STORE_MAILKEY_LEN],
		      const char **error_r)
{
	static const char sql[] = "SELECT value FROM settings WHERE name = 'bounce_tag_key'";
	struct db_res *res = NULL;
	int found;

	if (db_query(db, sql, NULL, 0, &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	found = db_res_rows(res) == 1 && db_res_get(res, 0, 0) &&
		db_res_len(res, 0, 0) == STORE_MAILKEY_LEN;
	if (found)
		memcpy(key_r, db_res_get(res, 0, 0), STORE_MAILKEY_LEN);
	db_res_free(&res);
	return found;
}

int store_outbound_message_ids(struct db *db, const char *case_id, size_t max, char ***ids_r,
			       const char **error_r)
{
	static const char sql[] =
		"SELECT message_id FROM messages WHERE case_id = ? AND direction = 'outbound'"
		" AND message_id IS NOT NULL ORDER BY id DESC LIMIT ?";
	struct db_arg args[] = { DB_STR(case_id), DB_INT(max) };
	struct db_res *res = NULL;
	size_t n, k = 0;

	*ids_r = NULL;
	if (db_query(db, sql, args, 2, &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	n = db_res_rows(res);
	if (n > max)
		n = max;
	if (n) {
		*ids_r = xcalloc(n, sizeof **ids_r);
		for (size_t i = 0; i < n; i++)
			if (db_res_get(res, i, 0))
				(*ids_r)[k++] = xstrdup(db_res_get(res, i, 0));
	}
	db_res_free(&res);
	return (int)k;
}

void store_mailkey_ids_free(char ***ids, size_t n)
{
	if (!*ids)
		return;
	for (size_t i = 0; i < n; i++)
		free((*ids)[i]);
	free(*ids);
	*ids = NULL;
}
