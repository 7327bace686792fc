/* queue.c: claiming due events with FOR UPDATE SKIP LOCKED and leases (REFERENCES §3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"
#include "worker/queue.h"

int queue_schedule_follow_ups(struct db *db, int64_t now_ms, int limit, int *n_r)
{
	/* The due scan walks the cases_due index (status, next_action_at, id). */
	static const char due[] =
		"SELECT id FROM cases WHERE status = 'RUNNING' AND next_action_at <= ?"
		" ORDER BY next_action_at, id LIMIT ? FOR UPDATE SKIP LOCKED";
	static const char insert[] =
		"INSERT INTO events (case_id, type, state, available_at, created_at)"
		" SELECT ?, 'FOLLOW_UP_DUE', 'pending', ?, ? FROM DUAL WHERE NOT EXISTS"
		" (SELECT 1 FROM events WHERE case_id = ? AND type = 'FOLLOW_UP_DUE'"
		" AND state = 'pending')";
	struct db_arg args[2] = { DB_INT(now_ms), DB_INT(limit) };
	struct db_res *res = NULL;
	int n = 0;

	*n_r = 0;
	if (db_begin(db) < 0)
		return -1;
	if (db_query(db, due, args, 2, &res) < 0)
		goto fail;
	for (size_t i = 0; i < db_res_rows(res); i++) {
		const char *id = db_res_get(res, i, 0);
		struct db_arg a[] = { DB_STR(id), DB_INT(now_ms), DB_INT(now_ms), DB_STR(id) };

		if (db_query(db, insert, a, 4, NULL) < 0)
			goto fail;
		n += (int)db_affected_rows(db);
	}
	db_res_free(&res);
	if (db_commit(db) < 0)
		goto fail;
	*n_r = n;
	return 0;
fail:
	log_warn("scheduling follow-ups: %s", db_error(db));
	db_res_free(&res);
	db_rollback(db);
	return -1;
}

static int case_id_cmp(const void *a, const void *b)
{
	const struct queue_event *x = a, *y = b;

	return strcmp(x->case_id, y->case_id);
}

int queue_claim(struct db *db, const char *owner, int64_t now_ms, int64_t lease_ms, int limit,
		struct queue_event **events_r, size_t *n_r)
{
	static const char due[] =
		"SELECT id, case_id, type, payload, attempts FROM events"
		" WHERE state = 'pending' AND available_at <= ?"
		" ORDER BY available_at, id LIMIT ? FOR UPDATE SKIP LOCKED";
	static const char lease_case[] =
		"UPDATE cases SET lease_owner = ?, lease_until = ? WHERE id = ?"
		" AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?)";
	/* The lease is the event's own available_at: a crashed worker's event comes due again. */
	static const char lease_event[] =
		"UPDATE events SET lease_owner = ?, lease_until = ?, available_at = ?,"
		" attempts = attempts + 1 WHERE id = ?";
	static const char defer_event[] = "UPDATE events SET available_at = ? WHERE id = ?";
	struct queue_event *evs = NULL, *out = NULL;
	struct db_res *res = NULL;
	size_t n = 0, kept = 0;
	int64_t until = now_ms + lease_ms;

	*events_r = NULL;
	*n_r = 0;
	for (int attempt = 0; attempt < 3; attempt++) {
		struct db_arg args[2] = { DB_INT(now_ms), DB_INT(limit) };

		kept = 0;
		if (db_begin(db) < 0)
			return -1;
		if (db_query(db, due, args, 2, &res) < 0)
			goto fail;
		n = db_res_rows(res);
		evs = xcalloc(n ? n : 1, sizeof *evs);
		out = xcalloc(n ? n : 1, sizeof *out);
		for (size_t i = 0; i < n; i++) {
			evs[i].id = db_res_int(res, i, 0);
			snprintf(evs[i].case_id, sizeof evs[i].case_id, "%s", db_res_get(res, i, 1));
			snprintf(evs[i].type, sizeof evs[i].type, "%s", db_res_get(res, i, 2));
			evs[i].payload = db_res_get(res, i, 3) ? xstrdup(db_res_get(res, i, 3)) : NULL;
			evs[i].attempts = db_res_int(res, i, 4) + 1;
		}
		db_res_free(&res);
		/* Lock cases in one order so that two claiming workers cannot deadlock. */
		qsort(evs, n, sizeof *evs, case_id_cmp);
		for (size_t i = 0; i < n; i++) {
			int dup = kept > 0 && strcmp(out[kept - 1].case_id, evs[i].case_id) == 0;
			struct db_arg lc[] = { DB_STR(owner), DB_INT(until), DB_STR(evs[i].case_id),
					       DB_INT(now_ms), DB_STR(owner) };
			struct db_arg le[] = { DB_STR(owner), DB_INT(until), DB_INT(until),
					       DB_INT(evs[i].id) };
			struct db_arg de[] = { DB_INT(now_ms + 1000), DB_INT(evs[i].id) };

			if (!dup) {
				if (db_query(db, lease_case, lc, 5, NULL) < 0)
					goto fail;
				dup = db_affected_rows(db) == 0;
			}
			if (dup) {
				/* Another event of this case is being worked: after it, not beside it. */
				if (db_query(db, defer_event, de, 2, NULL) < 0)
					goto fail;
				free(evs[i].payload);
				evs[i].payload = NULL;
				continue;
			}
			if (db_query(db, lease_event, le, 4, NULL) < 0)
				goto fail;
			out[kept++] = evs[i];
			evs[i].payload = NULL;
		}
		if (db_commit(db) < 0)
			goto fail;
		free(evs);
		*events_r = out;
		*n_r = kept;
		return 0;
fail:
		db_res_free(&res);
		db_rollback(db);
		for (size_t i = 0; i < n; i++)
			free(evs[i].payload);
		for (size_t i = 0; i < kept; i++)
			free(out[i].payload);
		free(evs);
		free(out);
		evs = out = NULL;
		if (db_errno(db) != DB_ER_LOCK_DEADLOCK && db_errno(db) != DB_ER_LOCK_WAIT_TIMEOUT)
			break;
	}
	log_warn("claiming events: %s", db_error(db));
	return -1;
}

void queue_events_free(struct queue_event **events, size_t n)
{
	if (!*events)
		return;
	for (size_t i = 0; i < n; i++)
		free((*events)[i].payload);
	free(*events);
	*events = NULL;
}

int queue_finish_in_tx(struct db *db, const struct queue_event *ev, const char *owner,
		       int64_t now_ms)
{
	static const char done[] =
		"UPDATE events SET state = 'done', done_at = ?, lease_owner = NULL, lease_until = NULL"
		" WHERE id = ? AND lease_owner = ? AND attempts = ? AND state = 'pending'";
	static const char release[] =
		"UPDATE cases SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?";
	struct db_arg a[] = { DB_INT(now_ms), DB_INT(ev->id), DB_STR(owner), DB_INT(ev->attempts) };
	struct db_arg r[] = { DB_STR(ev->case_id), DB_STR(owner) };

	if (db_query(db, done, a, 4, NULL) < 0)
		return -1;
	if (db_affected_rows(db) != 1)
		return 0;
	if (db_query(db, release, r, 2, NULL) < 0)
		return -1;
	return 1;
}

int queue_finish(struct db *db, const struct queue_event *ev, const char *owner, int64_t now_ms)
{
	int r;

	if (db_begin(db) < 0)
		return -1;
	r = queue_finish_in_tx(db, ev, owner, now_ms);
	if (r < 0 || db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

int queue_retry(struct db *db, const struct queue_event *ev, const char *owner,
		int64_t available_at, const char *error, int64_t max_attempts)
{
	static const char retry[] =
		"UPDATE events SET available_at = ?, last_error = ?, lease_owner = NULL,"
		" lease_until = NULL, state = IF(attempts >= ?, 'dead', 'pending')"
		" WHERE id = ? AND lease_owner = ? AND attempts = ?";
	static const char release[] =
		"UPDATE cases SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?";
	struct db_arg a[] = { DB_INT(available_at), DB_STR(error), DB_INT(max_attempts),
			      DB_INT(ev->id), DB_STR(owner), DB_INT(ev->attempts) };
	struct db_arg r[] = { DB_STR(ev->case_id), DB_STR(owner) };

	if (ev->attempts >= max_attempts)
		log_error("event %lld (%s) of case %s is dead after %lld attempts: %s",
			  (long long)ev->id, ev->type, ev->case_id, (long long)ev->attempts, error);
	if (db_query(db, retry, a, 6, NULL) < 0 || db_query(db, release, r, 2, NULL) < 0) {
		log_warn("giving event %lld back: %s", (long long)ev->id, db_error(db));
		return -1;
	}
	return 0;
}

int64_t queue_backoff_ms(int64_t attempts)
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
