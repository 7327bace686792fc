/* lease.c: the lease engine shared by the event queue and the webhook outbox. */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "store/db.h"
#include "store/lease.h"

/* The statements of one queue; each walks the primary key or the queue's due index
 * (events_due, webhook_deliveries_due: (state, due column, id)). */
struct queue_sql {
	const char *due;
	const char *due_case; /* NULL: the queue is not scanned per case */
	const char *stamp;
	const char *defer;
	const char *finish;
	const char *retry;
	const char *release;
};

static const struct queue_sql queues[] = {
	[STORE_LEASE_EVENTS] = {
		.due = "SELECT id, attempts, case_id, type, payload FROM events"
		       " WHERE state = 'pending' AND available_at <= ?"
		       " ORDER BY available_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
		.stamp = "UPDATE events SET lease_owner = ?, lease_until = ?, available_at = ?,"
			 " attempts = attempts + 1 WHERE id IN (" STORE_IN_LIST ")",
		.defer = "UPDATE events SET available_at = ? WHERE id IN (" STORE_IN_LIST ")",
		.finish = "UPDATE events SET state = 'done', done_at = ?, lease_owner = NULL,"
			  " lease_until = NULL WHERE id = ? AND " STORE_LEASE_HELD(""),
		.retry = "UPDATE events SET available_at = ?, last_error = ?, lease_owner = NULL,"
			 " lease_until = NULL, state = IF(?, 'dead', 'pending')"
			 " WHERE id = ? AND " STORE_LEASE_HELD(""),
		.release = "UPDATE events SET available_at = ?, attempts = attempts - 1,"
			   " lease_owner = NULL, lease_until = NULL WHERE id = ? AND "
			   STORE_LEASE_HELD(""),
	},
	[STORE_LEASE_DELIVERIES] = {
		.due = "SELECT id, attempts FROM webhook_deliveries WHERE state = 'pending'"
		       " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
		       " FOR UPDATE SKIP LOCKED",
		.due_case = "SELECT id, attempts FROM webhook_deliveries WHERE case_id = ?"
			    " AND state = 'pending' AND next_attempt_at <= ?"
			    " ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
		.stamp = "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?,"
			 " next_attempt_at = ?, attempts = attempts + 1 WHERE id IN ("
			 STORE_IN_LIST ")",
		.defer = "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN ("
			 STORE_IN_LIST ")",
		.finish = "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ?,"
			  " next_attempt_at = 253402300799999, last_status_code = ?,"
			  " last_error = NULL, last_response_body = ?, lease_owner = NULL,"
			  " lease_until = NULL WHERE id = ? AND " STORE_LEASE_HELD(""),
		.retry = "UPDATE webhook_deliveries SET next_attempt_at = ?, last_error = ?,"
			 " last_status_code = ?, last_response_body = ?, lease_owner = NULL,"
			 " lease_until = NULL, state = IF(?, 'dead', 'pending')"
			 " WHERE id = ? AND " STORE_LEASE_HELD(""),
		.release = "UPDATE webhook_deliveries SET next_attempt_at = ?,"
			   " attempts = attempts - 1, lease_owner = NULL, lease_until = NULL"
			   " WHERE id = ? AND " STORE_LEASE_HELD(""),
	},
};

int store_lease_select_due(struct db *db, enum store_lease_queue q, int64_t now_ms, int64_t limit,
			   const char *case_id, struct db_res **res_r)
{
	const struct queue_sql *s = &queues[q];

	if (case_id && s->due_case) {
		struct db_arg a[] = { DB_STR(case_id), DB_INT(now_ms), DB_INT(limit) };

		return db_query(db, s->due_case, a, 3, res_r);
	} else {
		struct db_arg a[] = { DB_INT(now_ms), DB_INT(limit) };

		return db_query(db, s->due, a, 2, res_r);
	}
}

/* Runs sql (leading fixed arguments, then one IN list) over ids in chunks. 0 or -1. */
static int run_in_chunks(struct db *db, const char *sql, const struct db_arg *fixed, size_t nfixed,
			 const int64_t *ids, size_t n)
{
	struct db_arg a[4 + STORE_IN_MAX];

	for (size_t off = 0; off < n; off += STORE_IN_MAX) {
		for (size_t i = 0; i < nfixed; i++)
			a[i] = fixed[i];
		for (size_t i = 0; i < STORE_IN_MAX; i++)
			a[nfixed + i] = off + i < n ? DB_INT(ids[off + i]) : DB_NULL;
		if (db_query(db, sql, a, nfixed + STORE_IN_MAX, NULL) < 0)
			return -1;
	}
	return 0;
}

int store_lease_stamp(struct db *db, enum store_lease_queue q, const char *owner, int64_t until_ms,
		      const struct store_lease *rows, size_t n)
{
	struct db_arg fixed[] = { DB_STR(owner), DB_INT(until_ms), DB_INT(until_ms) };
	int64_t ids[STORE_IN_MAX];

	for (size_t off = 0; off < n; off += STORE_IN_MAX) {
		size_t k = n - off < STORE_IN_MAX ? n - off : STORE_IN_MAX;

		for (size_t i = 0; i < k; i++)
			ids[i] = rows[off + i].id;
		if (run_in_chunks(db, queues[q].stamp, fixed, 3, ids, k) < 0)
			return -1;
	}
	return 0;
}

int store_lease_defer(struct db *db, enum store_lease_queue q, const int64_t *ids, size_t n,
		      int64_t due_ms)
{
	struct db_arg fixed[] = { DB_INT(due_ms) };

	return run_in_chunks(db, queues[q].defer, fixed, 1, ids, n);
}

/* 1 when the statement just run changed the leased row, 0 when it matched nothing. */
static int held(struct db *db, int r)
{
	if (r < 0)
		return -1;
	return db_affected_rows(db) == 1 ? 1 : 0;
}

int store_lease_finish(struct db *db, enum store_lease_queue q, const struct store_lease *l,
		       const char *owner, int64_t now_ms, const struct store_lease_outcome *o)
{
	if (q == STORE_LEASE_EVENTS) {
		struct db_arg a[] = { DB_INT(now_ms), DB_INT(l->id), DB_STR(owner),
				      DB_INT(l->attempts) };

		return held(db, db_query(db, queues[q].finish, a, 4, NULL));
	} else {
		struct db_arg a[] = {
			DB_INT(now_ms), o && o->status_code ? DB_INT(o->status_code) : DB_NULL,
			DB_STR(o ? o->response_body : NULL), DB_INT(l->id), DB_STR(owner),
			DB_INT(l->attempts),
		};

		return held(db, db_query(db, queues[q].finish, a, 6, NULL));
	}
}

int store_lease_retry(struct db *db, enum store_lease_queue q, const struct store_lease *l,
		      const char *owner, int64_t due_ms, const struct store_lease_outcome *o,
		      int dead)
{
	const char *error = o ? o->error : NULL;

	if (q == STORE_LEASE_EVENTS) {
		struct db_arg a[] = { DB_INT(due_ms), DB_STR(error), DB_INT(dead != 0), DB_INT(l->id),
				      DB_STR(owner), DB_INT(l->attempts) };

		return held(db, db_query(db, queues[q].retry, a, 6, NULL));
	} else {
		struct db_arg a[] = {
			DB_INT(due_ms), DB_STR(error),
			o && o->status_code ? DB_INT(o->status_code) : DB_NULL,
			DB_STR(o ? o->response_body : NULL), DB_INT(dead != 0), DB_INT(l->id),
			DB_STR(owner), DB_INT(l->attempts),
		};

		return held(db, db_query(db, queues[q].retry, a, 8, NULL));
	}
}

int store_lease_release(struct db *db, enum store_lease_queue q, const struct store_lease *l,
			const char *owner, int64_t due_ms)
{
	struct db_arg a[] = { DB_INT(due_ms), DB_INT(l->id), DB_STR(owner), DB_INT(l->attempts) };

	return held(db, db_query(db, queues[q].release, a, 4, NULL));
}

int64_t store_lease_backoff_ms(int64_t attempts)
{
	int64_t base = 30000;
	unsigned char r;

	for (int64_t i = 1; i < attempts && base < 3600000; i++)
		base *= 2;
	if (base > 3600000)
		base = 3600000;
	util_random_bytes(&r, 1);
	/* ±20 % so that many cases failing together do not retry together. */
	return base + (base * ((int64_t)r - 128)) / 640;
}
