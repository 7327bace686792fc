/* lease.c: the lease engine shared by the event queue and the webhook outbox, and the named
 * leases (named_leases) that stand in for GET_LOCK on a Galera cluster. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "store/db.h"
#include "store/lease.h"
#include "store/tx.h"

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

/* ------------------------------------------------------------------ named leases */

const char store_named_lease_table_sql[] =
	"CREATE TABLE IF NOT EXISTS named_leases ("
	" name VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
	" owner VARCHAR(128) CHARACTER SET ascii NOT NULL,"
	" expires_at BIGINT NOT NULL,"
	" taken_at BIGINT NOT NULL"
	") ENGINE=InnoDB";

void store_named_lease_owner(char *out, size_t cap)
{
	char host[64] = "", id[37];

	if (gethostname(host, sizeof host - 1) < 0)
		snprintf(host, sizeof host, "unknown");
	for (char *p = host; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || *p == ':')
			*p = '_';
	util_uuid_v4(id);
	snprintf(out, cap, "%.60s:%ld:%.8s", host, (long)getpid(), id);
}

struct named_take {
	const char *name, *owner;
	int64_t now_ms, until_ms;
	char holder[STORE_NAMED_LEASE_OWNER_MAX + 1]; /* out */
	int64_t expires;                              /* out */
};

static int named_take_tx(struct db *db, void *arg)
{
	static const char sel[] =
		"SELECT owner, expires_at FROM named_leases WHERE name = ? FOR UPDATE";
	static const char ins[] =
		"INSERT INTO named_leases (name, owner, expires_at, taken_at) VALUES (?, ?, ?, ?)";
	static const char upd[] =
		"UPDATE named_leases SET taken_at = IF(owner = ?, taken_at, ?), owner = ?,"
		" expires_at = ? WHERE name = ?";
	struct named_take *t = arg;
	struct db_arg a_sel[] = { DB_STR(t->name) };
	struct db_res *res = NULL;
	int free_to_take;

	t->holder[0] = '\0';
	t->expires = 0;
	if (db_query(db, sel, a_sel, 1, &res) < 0)
		return -1;
	if (db_res_rows(res) == 0) {
		struct db_arg a[] = { DB_STR(t->name), DB_STR(t->owner), DB_INT(t->until_ms),
				      DB_INT(t->now_ms) };

		db_res_free(&res);
		if (db_query(db, ins, a, 4, NULL) < 0) {
			if (db_errno(db) != DB_ER_DUP_ENTRY)
				return -1;
			snprintf(t->holder, sizeof t->holder, "another owner");
			return 1; /* taken meanwhile */
		}
		return 0;
	}
	snprintf(t->holder, sizeof t->holder, "%s", db_res_get(res, 0, 0) ? db_res_get(res, 0, 0) : "");
	t->expires = db_res_int(res, 0, 1);
	db_res_free(&res);
	free_to_take = strcmp(t->holder, t->owner) == 0 || t->expires <= t->now_ms;
	if (!free_to_take)
		return 1;
	{
		/* taken_at first: the assignments see the columns already assigned. */
		struct db_arg a[] = { DB_STR(t->owner), DB_INT(t->now_ms), DB_STR(t->owner),
				      DB_INT(t->until_ms), DB_STR(t->name) };

		return db_query(db, upd, a, 5, NULL) < 0 ? -1 : 0;
	}
}

int store_named_lease_take(struct db *db, const char *name, const char *owner, int64_t now_ms,
			   int64_t until_ms, char *holder_r, int64_t *expires_r)
{
	struct named_take t = { .name = name, .owner = owner, .now_ms = now_ms, .until_ms = until_ms };
	int rc = store_tx_run(db, named_take_tx, &t);

	if (rc < 0)
		return -1;
	if (rc == 1) {
		if (holder_r)
			snprintf(holder_r, STORE_NAMED_LEASE_OWNER_MAX + 1, "%s", t.holder);
		if (expires_r)
			*expires_r = t.expires;
		return 0;
	}
	return 1;
}

struct named_release {
	const char *name, *owner;
};

static int named_release_tx(struct db *db, void *arg)
{
	static const char sql[] = "DELETE FROM named_leases WHERE name = ? AND owner = ?";
	struct named_release *t = arg;
	struct db_arg a[] = { DB_STR(t->name), DB_STR(t->owner) };

	return db_query(db, sql, a, 2, NULL);
}

int store_named_lease_release(struct db *db, const char *name, const char *owner)
{
	struct named_release t = { name, owner };

	return store_tx_run_single(db, named_release_tx, &t) < 0 ? -1 : 0;
}
