/* events.c: the internal work queue (table events). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/db.h"
#include "store/events.h"
#include "store/tx.h"

int store_event_enqueue(struct db *db, const char *case_id, enum store_event_type type,
			const char *payload_json, int64_t available_at_ms, int64_t now_ms)
{
	static const char sql[] =
		"INSERT INTO events (case_id, type, payload, state, available_at, created_at)"
		" VALUES (?, ?, ?, 'pending', ?, ?)";
	struct db_arg args[] = {
		DB_STR(case_id), DB_STR(store_event_type_name(type)), DB_STR(payload_json),
		DB_INT(available_at_ms), DB_INT(now_ms),
	};

	return db_query(db, sql, args, sizeof args / sizeof args[0], NULL);
}

void store_events_free(struct store_event **events, size_t n)
{
	if (!*events)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*events)[i].payload);
		store_case_free(&(*events)[i].kase);
	}
	free(*events);
	*events = NULL;
}

/* A due event as selected, before the claim decides about it. */
struct candidate {
	size_t order;       /* position in due order */
	struct store_event ev;
	int claimed;
};

static int by_case_then_order(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;
	int c = strcmp(x->ev.case_id, y->ev.case_id);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int by_order(const void *a, const void *b)
{
	const struct store_event *x = a, *y = b;

	/* The claimed events keep due order; the ids grow with it inside one due time. */
	return x->lease.id < y->lease.id ? -1 : x->lease.id > y->lease.id;
}

struct claim_arg {
	const char *owner;
	int64_t now, until;
	int limit;
	struct store_event *out;
	size_t n_out;
};

static int claim_body(struct db *db, void *arg)
{
	struct claim_arg *x = arg;
	struct db_res *res = NULL;
	struct candidate *cand = NULL;
	const char **ids = NULL;
	size_t *first = NULL;
	enum store_case_lease_state *states = NULL;
	struct store_case *cases = NULL;
	struct store_lease *stamp = NULL;
	int64_t *defer = NULL;
	size_t n, nd = 0, ns = 0, nf = 0;
	int rc = -1;

	store_events_free(&x->out, x->n_out);
	x->n_out = 0;
	if (store_lease_select_due(db, STORE_LEASE_EVENTS, x->now, x->limit, NULL, &res) < 0)
		goto out;
	n = db_res_rows(res);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	cand = xcalloc(n, sizeof *cand);
	for (size_t i = 0; i < n; i++) {
		struct store_event *e = &cand[i].ev;
		const char *payload = db_res_get(res, i, 4);

		cand[i].order = i;
		e->lease.id = db_res_int(res, i, 0);
		e->lease.attempts = db_res_int(res, i, 1) + 1;
		snprintf(e->case_id, sizeof e->case_id, "%s", db_res_get(res, i, 2));
		snprintf(e->type_name, sizeof e->type_name, "%s", db_res_get(res, i, 3));
		e->known_type = store_event_type_parse(e->type_name, &e->type) == 0;
		e->payload = payload ? xstrdup(payload) : NULL;
	}
	db_res_free(&res);
	/* One event per case: the oldest; the others wait for it. */
	qsort(cand, n, sizeof *cand, by_case_then_order);
	ids = xcalloc(n, sizeof *ids);
	first = xcalloc(n, sizeof *first);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(cand[i].ev.case_id, cand[i - 1].ev.case_id) != 0) {
			first[nd] = i;
			ids[nd++] = cand[i].ev.case_id;
		}
	}
	states = xcalloc(nd, sizeof *states);
	cases = xcalloc(nd, sizeof *cases);
	if (store_case_lease(db, x->owner, x->until, x->now, ids, nd, states, cases) < 0)
		goto out;
	stamp = xcalloc(n, sizeof *stamp);
	defer = xcalloc(n, sizeof *defer);
	for (size_t d = 0; d < nd; d++) {
		struct candidate *c = &cand[first[d]];

		if (states[d] == STORE_CASE_BUSY)
			continue;
		c->claimed = 1;
		c->ev.case_found = states[d] == STORE_CASE_LEASED;
		c->ev.kase = cases[d];
		memset(&cases[d], 0, sizeof cases[d]);
		stamp[ns++] = c->ev.lease;
	}
	for (size_t i = 0; i < n; i++)
		if (!cand[i].claimed)
			defer[nf++] = cand[i].ev.lease.id;
	if (store_lease_stamp(db, STORE_LEASE_EVENTS, x->owner, x->until, stamp, ns) < 0)
		goto out;
	/* Another event of the case is being worked: after it, not beside it. */
	if (nf && store_lease_defer(db, STORE_LEASE_EVENTS, defer, nf, x->now + 1000) < 0)
		goto out;
	x->out = xcalloc(ns ? ns : 1, sizeof *x->out);
	for (size_t i = 0; i < n; i++) {
		if (!cand[i].claimed)
			continue;
		x->out[x->n_out++] = cand[i].ev;
		memset(&cand[i].ev, 0, sizeof cand[i].ev);
	}
	qsort(x->out, x->n_out, sizeof *x->out, by_order);
	rc = 0;
out:
	db_res_free(&res);
	if (cand)
		for (size_t i = 0; i < n; i++) {
			free(cand[i].ev.payload);
			store_case_free(&cand[i].ev.kase);
		}
	if (cases)
		for (size_t d = 0; d < nd; d++)
			store_case_free(&cases[d]);
	free(cand);
	free(ids);
	free(first);
	free(states);
	free(cases);
	free(stamp);
	free(defer);
	return rc;
}

int store_event_claim(struct db *db, const char *owner, int64_t now_ms, int64_t lease_ms,
		      int limit, struct store_event **events_r, size_t *n_r)
{
	struct claim_arg x = { owner, now_ms, now_ms + lease_ms, limit, NULL, 0 };

	*events_r = NULL;
	*n_r = 0;
	if (store_tx_run(db, claim_body, &x) != 0) {
		store_events_free(&x.out, x.n_out);
		return -1;
	}
	if (x.n_out == 0)
		store_events_free(&x.out, 0);
	*events_r = x.out;
	*n_r = x.n_out;
	return 0;
}

/* Releases the case lease of ev when it is owner's. 0 or -1. */
static int release_case(struct db *db, const struct store_event *ev, const char *owner)
{
	static const char sql[] =
		"UPDATE cases SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?";
	struct db_arg a[] = { DB_STR(ev->case_id), DB_STR(owner) };

	return db_query(db, sql, a, 2, NULL);
}

struct end_arg {
	const struct store_event *ev;
	const char *owner;
	int64_t at;
	const char *error;
	int retry, dead;
	int held; /* out: 1 the event lease was ours */
};

static int end_body(struct db *db, void *arg)
{
	struct end_arg *x = arg;
	struct store_lease_outcome o = { x->error, 0, NULL };
	int r;

	if (x->retry)
		r = store_lease_retry(db, STORE_LEASE_EVENTS, &x->ev->lease, x->owner, x->at, &o,
				      x->dead);
	else
		r = store_lease_finish(db, STORE_LEASE_EVENTS, &x->ev->lease, x->owner, x->at, NULL);
	if (r < 0)
		return -1;
	x->held = r;
	if (r == 0)
		return 0;
	return release_case(db, x->ev, x->owner) < 0 ? -1 : 0;
}

int store_event_finish(struct db *db, const struct store_event *ev, const char *owner,
		       int64_t now_ms)
{
	struct end_arg x = { ev, owner, now_ms, NULL, 0, 0, 0 };

	if (store_tx_run(db, end_body, &x) != 0)
		return -1;
	return x.held;
}

int store_event_retry(struct db *db, const struct store_event *ev, const char *owner,
		      int64_t available_at_ms, const char *error, int dead)
{
	struct end_arg x = { ev, owner, available_at_ms, error, 1, dead, 0 };

	if (store_tx_run(db, end_body, &x) != 0)
		return -1;
	return x.held;
}

struct follow_arg {
	int64_t now;
	int limit;
	struct store_due_cursor cur;  /* where to start */
	struct store_due_cursor next; /* out: where the next call starts */
	int queued;
};

static int follow_body(struct db *db, void *arg)
{
	/* A range of cases_due (status, next_action_at, id) that starts after the cursor. A
	 * case whose FOLLOW_UP_DUE is already pending (waiting for a retry after a failure,
	 * say) is passed over rather than counted in the LIMIT: otherwise the oldest such cases
	 * would fill every read and starve the cases due after them. The check is a scalar
	 * subquery, one events_case_type look-up per case read: MariaDB turns a NOT EXISTS into
	 * NOT IN and may then materialise every pending FOLLOW_UP_DUE event on each scan. */
	static const char due[] =
		"SELECT id, next_action_at FROM cases c WHERE status = 'RUNNING'"
		" AND next_action_at <= ? AND (next_action_at > ? OR (next_action_at = ? AND id > ?))"
		" AND (SELECT e.id FROM events e WHERE e.case_id = c.id AND e.type = 'FOLLOW_UP_DUE'"
		" AND e.state = 'pending' LIMIT 1) IS NULL"
		" ORDER BY next_action_at, id LIMIT ? FOR UPDATE SKIP LOCKED";
	static const char insert[] =
		"INSERT INTO events (case_id, type, state, available_at, created_at)"
		" SELECT c.id, 'FOLLOW_UP_DUE', 'pending', ?, ? FROM cases c"
		" WHERE c.id IN (" STORE_IN_LIST ") AND NOT EXISTS (SELECT 1 FROM events e"
		" WHERE e.case_id = c.id AND e.type = 'FOLLOW_UP_DUE' AND e.state = 'pending')";
	struct follow_arg *x = arg;
	const struct store_due_cursor *in = &x->cur;
	struct db_arg a[] = {
		DB_INT(x->now), DB_INT(in->started ? in->next_action_at : -1),
		DB_INT(in->started ? in->next_action_at : -1), DB_STR(in->started ? in->id : ""),
		DB_INT(x->limit),
	};
	struct db_arg ins[2 + STORE_IN_MAX];
	struct db_res *res = NULL;
	size_t n;
	int rc = -1;

	x->queued = 0;
	if (db_query(db, due, a, 5, &res) < 0)
		goto out;
	n = db_res_rows(res);
	for (size_t off = 0; off < n; off += STORE_IN_MAX) {
		ins[0] = DB_INT(x->now);
		ins[1] = DB_INT(x->now);
		for (size_t i = 0; i < STORE_IN_MAX; i++)
			ins[2 + i] = off + i < n ? DB_STR(db_res_get(res, off + i, 0)) : DB_NULL;
		if (db_query(db, insert, ins, 2 + STORE_IN_MAX, NULL) < 0)
			goto out;
		x->queued += (int)db_affected_rows(db);
	}
	memset(&x->next, 0, sizeof x->next);
	if (n == (size_t)x->limit) {
		/* A full read: there may be more after it; a short one ends the walk. */
		x->next.started = 1;
		x->next.next_action_at = db_res_int(res, n - 1, 1);
		snprintf(x->next.id, sizeof x->next.id, "%s", db_res_get(res, n - 1, 0));
	}
	rc = 0;
out:
	db_res_free(&res);
	return rc;
}

int store_event_schedule_follow_ups(struct db *db, int64_t now_ms, int limit,
				    struct store_due_cursor *cursor, int *n_r)
{
	struct follow_arg x;

	*n_r = 0;
	memset(&x, 0, sizeof x);
	x.now = now_ms;
	x.limit = limit;
	x.cur = *cursor;
	if (store_tx_run(db, follow_body, &x) != 0)
		return -1;
	*cursor = x.next;
	*n_r = x.queued;
	return 0;
}
