/* idempotency.c: Idempotency-Keys of POST /cases (table idempotency_keys). */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"
#include "store/idempotency.h"
#include "store/tx.h"

/* The state column. */
#define STATE_IN_FLIGHT "in_flight"
#define STATE_DONE "done"

/* What examine() needs and what it found. */
struct idem_lookup {
	const char *client_id;
	const char *key;
	const unsigned char *hash;
	int64_t now_ms;
	struct store_idem_result *res;
};

/* The transaction after the reservation met an existing row: look at it under its row lock,
 * and take the key over when it expired or was abandoned. */
static int examine(struct db *db, void *arg)
{
	static const char load[] =
		"SELECT request_hash, state, response_status, response_body, created_at"
		" FROM idempotency_keys WHERE client_id = ? AND idem_key = ? FOR UPDATE";
	static const char take_over[] =
		"UPDATE idempotency_keys SET request_hash = ?, state = '" STATE_IN_FLIGHT "',"
		" response_status = NULL, response_body = NULL, created_at = ?"
		" WHERE client_id = ? AND idem_key = ?";
	struct idem_lookup *l = arg;
	struct db_arg sel[] = { DB_STR(l->client_id), DB_STR(l->key) };
	struct db_arg upd[] = { DB_BLOB(l->hash, 32), DB_INT(l->now_ms), DB_STR(l->client_id),
				DB_STR(l->key) };
	struct db_res *res = NULL;
	const char *state, *body;
	int64_t created;
	int rc = -1;

	store_idem_result_free(l->res);
	if (db_query(db, load, sel, 2, &res) < 0)
		goto out;
	rc = 1;
	if (db_res_rows(res) == 0) {
		/* Purged between the two statements: as good as in flight; the client retries. */
		l->res->outcome = STORE_IDEM_IN_USE;
		goto out;
	}
	state = db_res_get(res, 0, 1);
	created = db_res_int(res, 0, 4);
	if (created + STORE_IDEM_KEEP_MS <= l->now_ms ||
	    (strcmp(state, STATE_IN_FLIGHT) == 0 && created + STORE_IDEM_STALE_MS <= l->now_ms)) {
		/* Expired, or abandoned by a request that died: this request takes the key. */
		if (db_query(db, take_over, upd, 4, NULL) < 0) {
			rc = -1;
			goto out;
		}
		l->res->outcome = STORE_IDEM_RESERVED;
		rc = 0;
	} else if (db_res_len(res, 0, 0) != 32 ||
		   !util_mem_equal(db_res_get(res, 0, 0), l->hash, 32)) {
		l->res->outcome = STORE_IDEM_REUSED;
	} else if (strcmp(state, STATE_DONE) != 0) {
		l->res->outcome = STORE_IDEM_IN_USE;
	} else {
		body = db_res_get(res, 0, 3);
		l->res->outcome = STORE_IDEM_REPLAY;
		l->res->status = (int)db_res_int(res, 0, 2);
		l->res->body = xstrdup(body ? body : "");
	}
out:
	db_res_free(&res);
	return rc;
}

int store_idem_begin(struct db *db, const char *client_id, const char *key,
		     const unsigned char hash[32], int64_t now_ms, struct store_idem_result *res_r)
{
	static const char reserve[] =
		"INSERT INTO idempotency_keys (client_id, idem_key, request_hash, state, created_at)"
		" VALUES (?, ?, ?, '" STATE_IN_FLIGHT "', ?)";
	struct db_arg ins[] = { DB_STR(client_id), DB_STR(key), DB_BLOB(hash, 32), DB_INT(now_ms) };
	struct idem_lookup l = { client_id, key, hash, now_ms, res_r };

	memset(res_r, 0, sizeof *res_r);
	if (db_query(db, reserve, ins, 4, NULL) == 0) {
		res_r->outcome = STORE_IDEM_RESERVED;
		return 0;
	}
	if (db_errno(db) != DB_ER_DUP_ENTRY)
		return -1;
	if (store_tx_run(db, examine, &l) < 0) {
		store_idem_result_free(res_r);
		return -1;
	}
	return 0;
}

void store_idem_result_free(struct store_idem_result *res)
{
	free(res->body);
	memset(res, 0, sizeof *res);
}

int store_idem_done(struct db *db, const char *client_id, const char *key, int status,
		    const char *body, const char *case_id)
{
	static const char sql[] =
		"UPDATE idempotency_keys SET state = '" STATE_DONE "', response_status = ?,"
		" response_body = ?, case_id = ? WHERE client_id = ? AND idem_key = ?";
	struct db_arg args[] = { DB_INT(status), DB_STR(body), DB_STR(case_id), DB_STR(client_id),
				 DB_STR(key) };

	return db_query(db, sql, args, 5, NULL);
}

int store_idem_abandon(struct db *db, const char *client_id, const char *key)
{
	static const char sql[] =
		"DELETE FROM idempotency_keys WHERE client_id = ? AND idem_key = ?"
		" AND state = '" STATE_IN_FLIGHT "'";
	struct db_arg args[] = { DB_STR(client_id), DB_STR(key) };

	return db_query(db, sql, args, 2, NULL);
}
