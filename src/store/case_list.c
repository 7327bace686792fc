/* case_list.c: GET /cases: a client's cases, newest change first, a page at a time. */
#include <stdio.h>
#include <string.h>

#include "store/case_list.h"
#include "store/db.h"

int store_case_list(struct db *db, const struct store_case_list_query *q,
		    struct store_case_list_row *rows_r, size_t *n_r, int *more_r)
{
	/* Served by cases_client_updated (client_id, updated_at, id). */
	static const char sql[] =
		"SELECT id, updated_at FROM cases WHERE client_id = ?"
		" AND (? IS NULL OR FIND_IN_SET(status, ?) > 0)"
		" AND (? IS NULL OR client_reference_id = ?)"
		" AND (? IS NULL OR updated_at >= ?)"
		" AND (? IS NULL OR updated_at < ? OR (updated_at = ? AND id < ?))"
		" ORDER BY updated_at DESC, id DESC LIMIT ?";
	char statuses[128] = "";
	struct db_res *res = NULL;
	size_t rows, len = 0;

	*n_r = 0;
	*more_r = 0;
	for (int s = 0; s < CASE_STATUS_COUNT; s++) {
		if (!(q->statuses & (1u << s)))
			continue;
		len += (size_t)snprintf(statuses + len, sizeof statuses - len, "%s%s",
					len ? "," : "", store_case_status_name(s));
	}
	{
		struct db_arg args[] = {
			DB_STR(q->client_id),
			q->statuses ? DB_STR(statuses) : DB_NULL, DB_STR(statuses),
			q->client_reference_id ? DB_STR(q->client_reference_id) : DB_NULL,
			DB_STR(q->client_reference_id),
			q->has_since ? DB_INT(q->updated_since) : DB_NULL, DB_INT(q->updated_since),
			q->has_cursor ? DB_INT(q->cursor_updated_at) : DB_NULL,
			DB_INT(q->cursor_updated_at), DB_INT(q->cursor_updated_at),
			DB_STR(q->has_cursor ? q->cursor_id : ""),
			DB_INT(q->limit + 1),
		};

		if (db_query(db, sql, args, sizeof args / sizeof args[0], &res) < 0)
			return -1;
	}
	rows = db_res_rows(res);
	for (size_t i = 0; i < rows && i < q->limit; i++) {
		snprintf(rows_r[i].id, sizeof rows_r[i].id, "%s", db_res_get(res, i, 0));
		rows_r[i].updated_at = db_res_int(res, i, 1);
	}
	*n_r = rows < q->limit ? rows : q->limit;
	*more_r = rows > q->limit;
	db_res_free(&res);
	return 0;
}
