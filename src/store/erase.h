/* erase.h: deleting a case with everything kept for it (an erasure request, or the retention
 * of finished cases; doc/operator-guide.md, "Retention and erasure"). */
#ifndef OFFLOAD_STORE_ERASE_H
#define OFFLOAD_STORE_ERASE_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* Most rows one DELETE statement removes, and most cases one retention pass deletes. */
#define STORE_ERASE_ROWS 1000
#define STORE_ERASE_PASS_MAX 500

/* Why a case is deleted: kept on the erasure while it runs, and counted apart in /metrics. */
enum store_erase_reason {
	STORE_ERASE_REQUEST,   /* offloadctl case delete */
	STORE_ERASE_RETENTION, /* [retention] finished_days */
};

/* What store_erase_begin found. */
enum store_erase_begin {
	STORE_ERASE_BEGUN,        /* the case row is gone; its erasure is queued: finish it */
	STORE_ERASE_PENDING,      /* no case row, but its erasure was begun earlier: finish it */
	STORE_ERASE_NOT_FOUND,    /* no such case, and no erasure of it */
	STORE_ERASE_BUSY,         /* a worker holds the case's lease until *lease_until_r */
	STORE_ERASE_NOT_ELIGIBLE, /* retention: the case is not finished before the cutoff */
};

/*
 * Begins erasing case_id, in one transaction (store_tx_run): locks the case row; when a
 * worker holds an unexpired lease on the case at now_ms it stops there (BUSY: the worker may
 * be sending mail for the case; wait until *lease_until_r and try again). Otherwise it queues
 * the erasure (table erasures: the case id, reason and now_ms only), adds the case to the
 * usage of deleted cases (usage_deleted: the monthly caps still count it), deletes the
 * case's input requests and the case row, and counts the case in /metrics. From its commit on, the case
 * is not found by the API, and no worker can lease it, record a message for it or finish it
 * (those all need the case row), and inbound mail cannot attach to it (store/messages.h): no
 * further mail goes out for it. With finished_before_ms >= 0 (retention) the case is taken
 * only if it is COMPLETED or FAILED with finished_at before that time (NOT_ELIGIBLE
 * otherwise). Returns 0 with *result_r, or -1 on a database error (db_error(db)).
 */
int store_erase_begin(struct db *db, const char *case_id, enum store_erase_reason reason,
		      int64_t finished_before_ms, int64_t now_ms, enum store_erase_begin *result_r,
		      int64_t *lease_until_r);

/* Rows and files store_erase_finish removed. */
struct store_erase_counts {
	int64_t messages;      /* messages rows, in and out */
	int64_t attachments;   /* attachments rows */
	int64_t events;        /* internal events */
	int64_t deliveries;    /* webhook deliveries */
	int64_t agent_calls;   /* agent accounting rows */
	int64_t idempotency;   /* Idempotency-Keys that created the case */
	int64_t files;         /* files removed from the files directory */
};

/*
 * Deletes the rows of one table that belong to case_id, STORE_IN_MAX per statement (each its
 * own transaction), and once a batch's rows are gone the file each names (a path under
 * files_dir; NULL or "" names none). select_sql reads "id, path" of the case's rows with
 * LIMIT 32 (STORE_IN_MAX); delete_sql is "... WHERE case_id = ? AND id IN (" STORE_IN_LIST
 * ")". Both are literals (db_query caches by them). Adds the rows deleted to *rows_r and the
 * files removed to *files_r. Returns 0, or -1 with *error_r; a file that cannot be removed
 * stops it after its batch. Used for messages (raw copies) and attachments.
 */
int store_erase_rows_and_files(struct db *db, const char *select_sql, const char *delete_sql,
			       const char *files_dir, const char *case_id, int64_t *rows_r,
			       int64_t *files_r, const char **error_r);

/*
 * Finishes the erasure of case_id begun by store_erase_begin: deletes every remaining row
 * keyed by the case (messages, attachments through store_attachments_delete_case, events,
 * webhook deliveries, agent calls, Idempotency-Keys), each DELETE at most STORE_ERASE_ROWS
 * rows, its own short transaction; removes the files of those rows once their rows are gone,
 * then what is left in files_dir/raw/<caseId>/ and files_dir/<caseId>/ (files written by an
 * inbound delivery that never committed); and last the queue entry. Safe to run again, and
 * at the same time as another run for the same case: a run that stops half-way (crash,
 * database error) leaves the queue entry, and store_erase_pending finds it again. Adds what
 * it removed to *n_r (zero it first). Returns 0, or -1 with *error_r (for logs: a database
 * or file error, no case content).
 */
int store_erase_finish(struct db *db, const char *files_dir, const char *case_id,
		       struct store_erase_counts *n_r, const char **error_r);

/* Case ids, read by the two lookups below (n entries; free with free()). */
typedef char store_case_id[37];

/*
 * Up to limit (<= STORE_ERASE_PASS_MAX) cases COMPLETED or FAILED with finished_at before
 * before_ms, read along the index cases_status_finished (a range per status, never a scan of
 * every old case). 0 with *ids_r (NULL when *n_r is 0), or -1.
 */
int store_erase_expired(struct db *db, int64_t before_ms, size_t limit, store_case_id **ids_r,
			size_t *n_r);

/*
 * Up to limit erasures begun at or before begun_before_ms and not finished (a crash, or a
 * database error, stopped them), oldest first. 0 with *ids_r (NULL when *n_r is 0), or -1.
 */
int store_erase_pending(struct db *db, int64_t begun_before_ms, size_t limit,
			store_case_id **ids_r, size_t *n_r);

/* The cases deleted so far by each reason (table counters), for /metrics. 0, or -1. A
 * schema without the table (before migration 013) reads as 0 and 0. */
int store_erase_counted(struct db *db, int64_t *request_r, int64_t *retention_r);

#endif
