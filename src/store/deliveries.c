/* deliveries.c: the webhook outbox's delivery side (table webhook_deliveries). */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"
#include "store/deliveries.h"
#include "store/tx.h"

struct claim_arg {
	const char *owner, *case_id;
	int64_t now, until, limit;
	struct store_lease *rows;
	size_t n;
};

static int claim_body(struct db *db, void *arg)
{
	struct claim_arg *x = arg;
	struct db_res *res = NULL;
	int rc = -1;

	free(x->rows);
	x->rows = NULL;
	x->n = 0;
	if (store_lease_select_due(db, STORE_LEASE_DELIVERIES, x->now, x->limit, x->case_id,
				   &res) < 0)
		goto out;
	x->n = db_res_rows(res);
	x->rows = xcalloc(x->n ? x->n : 1, sizeof *x->rows);
	for (size_t i = 0; i < x->n; i++) {
		x->rows[i].id = db_res_int(res, i, 0);
		x->rows[i].attempts = db_res_int(res, i, 1) + 1;
	}
	if (store_lease_stamp(db, STORE_LEASE_DELIVERIES, x->owner, x->until, x->rows, x->n) < 0)
		goto out;
	rc = 0;
out:
	db_res_free(&res);
	return rc;
}

int store_delivery_claim(struct db *db, const char *owner, const char *case_id, int64_t now_ms,
			 int64_t until_ms, int64_t limit, struct store_lease **rows_r, size_t *n_r)
{
	struct claim_arg x = { owner, case_id, now_ms, until_ms, limit, NULL, 0 };

	*rows_r = NULL;
	*n_r = 0;
	if (store_tx_run(db, claim_body, &x) != 0) {
		free(x.rows);
		return -1;
	}
	*rows_r = x.rows;
	*n_r = x.n;
	return 0;
}

int store_delivery_load(struct db *db, const struct store_lease *l, const char *owner,
			struct store_delivery *d)
{
	static const char sql[] =
		"SELECT d.event_id, d.url, d.body, c.webhook_secret, c.webhook_secret_previous"
		" FROM webhook_deliveries d LEFT JOIN clients c ON c.id = d.client_id"
		" WHERE d.id = ? AND " STORE_LEASE_HELD("d.");
	struct db_arg a[] = { DB_INT(l->id), DB_STR(owner), DB_INT(l->attempts) };
	struct db_res *res = NULL;
	const char *s;

	memset(d, 0, sizeof *d);
	if (db_query(db, sql, a, 3, &res) < 0)
		return -1;
	if (db_res_rows(res) == 0) {
		db_res_free(&res);
		return 0;
	}
	d->event_id = xstrdup(db_res_get(res, 0, 0));
	d->url = xstrdup(db_res_get(res, 0, 1));
	d->body_len = db_res_len(res, 0, 2);
	d->body = xmalloc(d->body_len + 1);
	memcpy(d->body, db_res_get(res, 0, 2), d->body_len + 1);
	s = db_res_get(res, 0, 3);
	d->secret = s ? xstrdup(s) : NULL;
	s = db_res_get(res, 0, 4);
	d->secret_previous = s ? xstrdup(s) : NULL;
	db_res_free(&res);
	return 1;
}

void store_delivery_free(struct store_delivery *d)
{
	free(d->event_id);
	free(d->url);
	free(d->body);
	if (d->secret)
		explicit_bzero(d->secret, strlen(d->secret));
	if (d->secret_previous)
		explicit_bzero(d->secret_previous, strlen(d->secret_previous));
	free(d->secret);
	free(d->secret_previous);
	memset(d, 0, sizeof *d);
}

int store_delivery_delivered(struct db *db, const struct store_lease *l, const char *owner,
			     int64_t now_ms, long status, const char *response_body)
{
	struct store_lease_outcome o = { NULL, status, response_body };

	return store_lease_finish(db, STORE_LEASE_DELIVERIES, l, owner, now_ms, &o);
}

int store_delivery_failed(struct db *db, const struct store_lease *l, const char *owner,
			  int64_t next_ms, long status, const char *error,
			  const char *response_body, int dead)
{
	struct store_lease_outcome o = { error, status, response_body };

	return store_lease_retry(db, STORE_LEASE_DELIVERIES, l, owner,
				 dead ? OFFLOAD_NEVER_MS : next_ms, &o, dead);
}

int store_delivery_release(struct db *db, const struct store_lease *l, const char *owner,
			   int64_t now_ms)
{
	return store_lease_release(db, STORE_LEASE_DELIVERIES, l, owner, now_ms);
}
