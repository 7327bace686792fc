/* erase.c: deleting a case and everything kept for it, in short transactions, files last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/plans.h"
#include "common/rmfiles.h"
#include "common/xalloc.h"
#include "store/attachments.h"
#include "store/db.h"
#include "store/erase.h"
#include "store/lease.h"
#include "store/tx.h"
#include "store/types.h"

/* MariaDB ER_NO_SUCH_TABLE: a schema before migration 013. */
#define ERASE_ER_NO_SUCH_TABLE 1146

/* The statements below spell their limits out: STORE_ERASE_ROWS per DELETE, and one IN list
 * (STORE_IN_MAX ids) per batch of messages. */
#define ERASE_LIMIT " LIMIT 1000"
_Static_assert(STORE_ERASE_ROWS == 1000, "ERASE_LIMIT must say STORE_ERASE_ROWS");
_Static_assert(STORE_IN_MAX == 32, "the message batch's LIMIT must say STORE_IN_MAX");

static const char *const counter_names[] = {
	[STORE_ERASE_REQUEST] = "cases_deleted_request",
	[STORE_ERASE_RETENTION] = "cases_deleted_retention",
};
static const char *const reason_names[] = {
	[STORE_ERASE_REQUEST] = "request",
	[STORE_ERASE_RETENTION] = "retention",
};

struct begin_arg {
	const char *case_id;
	enum store_erase_reason reason;
	int64_t finished_before;
	int64_t now;
	enum store_erase_begin result; /* out */
	int64_t lease_until;           /* out, BUSY */
};

/*
 * Adds the case of res (the locked row: client_id, created_at, finished_at, result_status)
 * to usage_deleted: created in its month, and finished in its month when billable
 * (doc/api.md, "Plans and usage limits": COMPLETED; FAILED unless BOUNCED, REJECTED or
 * COMPLAINED; the same rule as the count in store/case_create.c). 0 or -1.
 */
static int keep_usage(struct db *db, const struct db_res *res, enum store_case_status status)
{
	static const char sql[] =
		"INSERT INTO usage_deleted (client_id, month, cases_created, cases_finished_billable)"
		" VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE"
		" cases_created = cases_created + VALUES(cases_created),"
		" cases_finished_billable = cases_finished_billable + VALUES(cases_finished_billable)";
	const char *client = db_res_get(res, 0, 4), *rs = db_res_get(res, 0, 6);
	int created = plans_month_key(db_res_int(res, 0, 5)), finished = 0;
	int billable = status == CASE_COMPLETED ||
		       (status == CASE_FAILED && (!rs || (strcmp(rs, "BOUNCED") != 0 &&
							  strcmp(rs, "REJECTED") != 0 &&
							  strcmp(rs, "COMPLAINED") != 0)));

	if (billable && db_res_get(res, 0, 1))
		finished = plans_month_key(db_res_int(res, 0, 1));
	{
		struct db_arg a[] = { DB_STR(client), DB_INT(created), DB_INT(1),
				      DB_INT(finished == created) };

		if (db_query(db, sql, a, 4, NULL) < 0)
			return -1;
	}
	if (finished && finished != created) {
		struct db_arg a[] = { DB_STR(client), DB_INT(finished), DB_INT(0), DB_INT(1) };

		if (db_query(db, sql, a, 4, NULL) < 0)
			return -1;
	}
	return 0;
}

/* Decides from the locked case row; only a case nobody works on goes. */
static int begin_body(struct db *db, void *arg)
{
	static const char lock_sql[] =
		"SELECT status, finished_at, lease_owner, lease_until, client_id, created_at,"
		" result_status FROM cases WHERE id = ? FOR UPDATE";
	static const char pending_sql[] = "SELECT 1 FROM erasures WHERE case_id = ?";
	static const char queue_sql[] =
		"INSERT IGNORE INTO erasures (case_id, reason, requested_at) VALUES (?, ?, ?)";
	/* The only foreign key to a case: its input requests go with the row. */
	static const char requests_sql[] = "DELETE FROM input_requests WHERE case_id = ?";
	static const char case_sql[] = "DELETE FROM cases WHERE id = ?";
	static const char count_sql[] = "UPDATE counters SET value = value + 1 WHERE name = ?";
	struct begin_arg *x = arg;
	struct db_arg id[] = { DB_STR(x->case_id) };
	struct db_res *res = NULL;
	enum store_case_status status;
	int final, leased, eligible;

	if (db_query(db, lock_sql, id, 1, &res) < 0)
		return -1;
	if (db_res_rows(res) == 0) {
		db_res_free(&res);
		if (db_query(db, pending_sql, id, 1, &res) < 0)
			return -1;
		x->result = db_res_rows(res) ? STORE_ERASE_PENDING : STORE_ERASE_NOT_FOUND;
		db_res_free(&res);
		return 1;
	}
	final = store_case_status_parse(db_res_get(res, 0, 0), &status) == 0 &&
		store_case_status_final(status);
	eligible = x->finished_before < 0 ||
		   (final && db_res_get(res, 0, 1) && db_res_int(res, 0, 1) < x->finished_before);
	leased = db_res_get(res, 0, 2) && db_res_get(res, 0, 3) && db_res_int(res, 0, 3) > x->now;
	x->lease_until = db_res_int(res, 0, 3);
	if (!eligible || leased) {
		/* Leased: a worker may be between recording a message and the end of its SMTP
		 * transaction; the case goes once its step is over. */
		x->result = !eligible ? STORE_ERASE_NOT_ELIGIBLE : STORE_ERASE_BUSY;
		db_res_free(&res);
		return 1;
	}
	if (keep_usage(db, res, final ? status : CASE_CREATED) < 0) {
		db_res_free(&res);
		return -1;
	}
	db_res_free(&res);
	{
		struct db_arg q[] = { DB_STR(x->case_id), DB_STR(reason_names[x->reason]),
				      DB_INT(x->now) };
		struct db_arg c[] = { DB_STR(counter_names[x->reason]) };

		if (db_query(db, queue_sql, q, 3, NULL) < 0 ||
		    db_query(db, requests_sql, id, 1, NULL) < 0 ||
		    db_query(db, case_sql, id, 1, NULL) < 0 || db_query(db, count_sql, c, 1, NULL) < 0)
			return -1;
	}
	x->result = STORE_ERASE_BEGUN;
	return 0;
}

int store_erase_begin(struct db *db, const char *case_id, enum store_erase_reason reason,
		      int64_t finished_before_ms, int64_t now_ms, enum store_erase_begin *result_r,
		      int64_t *lease_until_r)
{
	struct begin_arg x = { case_id, reason, finished_before_ms, now_ms, STORE_ERASE_NOT_FOUND, 0 };

	if (store_tx_run(db, begin_body, &x) < 0)
		return -1;
	*result_r = x.result;
	if (lease_until_r)
		*lease_until_r = x.lease_until;
	return 0;
}

/* Runs sql (one DELETE … LIMIT STORE_ERASE_ROWS bound to the case id) until it deletes less
 * than a full batch; each run is its own transaction. 0 or -1. */
static int delete_all(struct db *db, const char *sql, const char *case_id, int64_t *n_r)
{
	struct db_arg a[] = { DB_STR(case_id) };
	int64_t n;

	do {
		if (db_query(db, sql, a, 1, NULL) < 0)
			return -1;
		n = db_affected_rows(db);
		*n_r += n;
	} while (n >= STORE_ERASE_ROWS);
	return 0;
}

int store_erase_rows_and_files(struct db *db, const char *select_sql, const char *delete_sql,
			       const char *files_dir, const char *case_id, int64_t *rows_r,
			       int64_t *files_r, const char **error_r)
{
	struct db_arg sel[] = { DB_STR(case_id) };
	struct db_arg del[1 + STORE_IN_MAX];
	struct db_res *res = NULL;
	char *paths[STORE_IN_MAX];
	size_t n, n_paths;
	int rc = -1, failed = 0;

	for (;;) {
		if (db_query(db, select_sql, sel, 1, &res) < 0) {
			*error_r = db_error(db);
			goto out;
		}
		n = db_res_rows(res);
		if (n == 0)
			break;
		del[0] = DB_STR(case_id);
		for (size_t i = 0; i < STORE_IN_MAX; i++)
			del[1 + i] = i < n ? DB_STR(db_res_get(res, i, 0)) : DB_NULL;
		if (db_query(db, delete_sql, del, 1 + STORE_IN_MAX, NULL) < 0) {
			*error_r = db_error(db);
			goto out;
		}
		*rows_r += db_affected_rows(db);
		n_paths = 0;
		for (size_t i = 0; i < n; i++)
			if (*db_res_text(res, i, 1))
				paths[n_paths++] = xstrdup(db_res_get(res, i, 1));
		db_res_free(&res);
		/* The rows are gone (autocommit): now their files. */
		for (size_t i = 0; i < n_paths; i++) {
			int r = failed ? 0 : rmfiles_one(files_dir, paths[i], error_r);

			*files_r += r > 0;
			failed |= r < 0;
			free(paths[i]);
		}
		if (failed)
			goto out;
	}
	rc = 0;
out:
	db_res_free(&res);
	return rc;
}

/* The messages of the case, STORE_IN_MAX at a time: the rows, then their raw copies. */
static int delete_messages(struct db *db, const char *files_dir, const char *case_id,
			   struct store_erase_counts *n_r, const char **error_r)
{
	static const char select_sql[] =
		"SELECT id, raw_path FROM messages WHERE case_id = ? ORDER BY id LIMIT 32";
	static const char delete_sql[] =
		"DELETE FROM messages WHERE case_id = ? AND id IN (" STORE_IN_LIST ")";

	return store_erase_rows_and_files(db, select_sql, delete_sql, files_dir, case_id,
					  &n_r->messages, &n_r->files, error_r);
}

int store_erase_finish(struct db *db, const char *files_dir, const char *case_id,
		       struct store_erase_counts *n_r, const char **error_r)
{
	static const char events_sql[] = "DELETE FROM events WHERE case_id = ?" ERASE_LIMIT;
	static const char deliveries_sql[] =
		"DELETE FROM webhook_deliveries WHERE case_id = ?" ERASE_LIMIT;
	static const char calls_sql[] = "DELETE FROM agent_calls WHERE case_id = ?" ERASE_LIMIT;
	static const char idem_sql[] = "DELETE FROM idempotency_keys WHERE case_id = ?" ERASE_LIMIT;
	static const char done_sql[] = "DELETE FROM erasures WHERE case_id = ?";
	/* An SMS opt-out outlives the case (the number stays blocked); it forgets the case. */
	static const char optout_sql[] = "UPDATE sms_optouts SET case_id = NULL WHERE case_id = ?";
	struct db_arg id[] = { DB_STR(case_id) };
	char raw_dir[4096];

	if ((size_t)snprintf(raw_dir, sizeof raw_dir, "%s/raw", files_dir) >= sizeof raw_dir) {
		*error_r = "the files directory's path is too long";
		return -1;
	}
	/* The work queue first: nothing claims the case's events while the rest goes. */
	if (delete_all(db, events_sql, case_id, &n_r->events) < 0 ||
	    delete_all(db, deliveries_sql, case_id, &n_r->deliveries) < 0 ||
	    delete_all(db, calls_sql, case_id, &n_r->agent_calls) < 0 ||
	    delete_all(db, idem_sql, case_id, &n_r->idempotency) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	if (delete_messages(db, files_dir, case_id, n_r, error_r) < 0 ||
	    store_attachments_delete_case(db, files_dir, case_id, &n_r->attachments, &n_r->files,
					  error_r) < 0)
		return -1;
	/* Raw copies no row named: written by a delivery whose transaction never committed. */
	if (rmfiles_dir(raw_dir, case_id, &n_r->files, error_r) < 0)
		return -1;
	if (db_query(db, optout_sql, id, 1, NULL) < 0 || db_query(db, done_sql, id, 1, NULL) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	return 0;
}

/* Reads the first column of res into a fresh id array. */
static void take_ids(struct db_res *res, store_case_id **ids_r, size_t *n_r)
{
	size_t n = db_res_rows(res);

	*n_r = n;
	*ids_r = NULL;
	if (n == 0)
		return;
	*ids_r = xcalloc(n, sizeof **ids_r);
	for (size_t i = 0; i < n; i++)
		snprintf((*ids_r)[i], sizeof (*ids_r)[i], "%s",
			 db_res_get(res, i, 0) ? db_res_get(res, i, 0) : "");
}

int store_erase_expired(struct db *db, int64_t before_ms, size_t limit, store_case_id **ids_r,
			size_t *n_r)
{
	static const char sql[] =
		"SELECT id FROM cases FORCE INDEX (cases_status_finished)"
		" WHERE status IN (?, ?) AND finished_at < ? LIMIT ?";
	struct db_arg a[] = {
		DB_STR(store_case_status_name(CASE_COMPLETED)),
		DB_STR(store_case_status_name(CASE_FAILED)), DB_INT(before_ms),
		DB_INT(limit > STORE_ERASE_PASS_MAX ? STORE_ERASE_PASS_MAX : limit),
	};
	struct db_res *res = NULL;

	*ids_r = NULL;
	*n_r = 0;
	if (db_query(db, sql, a, 4, &res) < 0)
		return -1;
	take_ids(res, ids_r, n_r);
	db_res_free(&res);
	return 0;
}

int store_erase_pending(struct db *db, int64_t begun_before_ms, size_t limit,
			store_case_id **ids_r, size_t *n_r)
{
	static const char sql[] =
		"SELECT case_id FROM erasures WHERE requested_at <= ? ORDER BY requested_at LIMIT ?";
	struct db_arg a[] = { DB_INT(begun_before_ms),
			      DB_INT(limit > STORE_ERASE_PASS_MAX ? STORE_ERASE_PASS_MAX : limit) };
	struct db_res *res = NULL;

	*ids_r = NULL;
	*n_r = 0;
	if (db_query(db, sql, a, 2, &res) < 0)
		return -1;
	take_ids(res, ids_r, n_r);
	db_res_free(&res);
	return 0;
}

int store_erase_counted(struct db *db, int64_t *request_r, int64_t *retention_r)
{
	static const char sql[] = "SELECT name, value FROM counters WHERE name IN (?, ?)";
	struct db_arg a[] = { DB_STR(counter_names[STORE_ERASE_REQUEST]),
			      DB_STR(counter_names[STORE_ERASE_RETENTION]) };
	struct db_res *res = NULL;

	*request_r = *retention_r = 0;
	if (db_query(db, sql, a, 2, &res) < 0)
		return db_errno(db) == ERASE_ER_NO_SUCH_TABLE ? 0 : -1;
	for (size_t i = 0; i < db_res_rows(res); i++) {
		const char *name = db_res_get(res, i, 0);

		if (name && strcmp(name, counter_names[STORE_ERASE_REQUEST]) == 0)
			*request_r = db_res_int(res, i, 1);
		else if (name && strcmp(name, counter_names[STORE_ERASE_RETENTION]) == 0)
			*retention_r = db_res_int(res, i, 1);
	}
	db_res_free(&res);
	return 0;
}
