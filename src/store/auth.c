/* auth.c: the API-key lookup of every authenticated request. */
#include <stdio.h>
#include <string.h>

#include "store/auth.h"
#include "store/db.h"

int store_api_key_lookup(struct db *db, const unsigned char key_hash[32],
			 struct store_api_key *key_r, const char **error_r)
{
	static const char sql[] =
		"SELECT k.client_id, k.active, c.plan FROM api_keys k"
		" JOIN clients c ON c.id = k.client_id WHERE k.key_hash = ?";
	struct db_arg args[] = { DB_BLOB(key_hash, 32) };
	struct db_res *res = NULL;
	int rc = -1;

	memset(key_r, 0, sizeof *key_r);
	if (db_query(db, sql, args, 1, &res) < 0) {
		*error_r = db_error(db);
		goto out;
	}
	if (db_res_rows(res) == 0) {
		rc = 0;
		goto out;
	}
	snprintf(key_r->client_id, sizeof key_r->client_id, "%s", db_res_get(res, 0, 0));
	key_r->active = db_res_int(res, 0, 1) == 1;
	if (plans_parse(db_res_get(res, 0, 2), &key_r->plan) < 0) {
		*error_r = "client has an unknown plan";
		goto out;
	}
	rc = 1;
out:
	db_res_free(&res);
	return rc;
}
