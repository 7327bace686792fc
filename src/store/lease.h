/* lease.h: the one lease engine of the two work queues (events, webhook_deliveries): claim
 * due rows with SELECT … FOR UPDATE SKIP LOCKED and stamp owner and lease end, finish or give
 * back with a check that the lease is still ours, retry with backoff. For store modules. */
#ifndef OFFLOAD_STORE_LEASE_H
#define OFFLOAD_STORE_LEASE_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct db_res;

/* The queues that share the engine. */
enum store_lease_queue {
	STORE_LEASE_EVENTS,     /* table events; due column available_at */
	STORE_LEASE_DELIVERIES, /* table webhook_deliveries; due column next_attempt_at */
};

/* A row one owner holds. The lease is (owner, id, attempts): a later claim of the same row
 * counts another attempt, so a stale holder's writes match nothing. */
struct store_lease {
	int64_t id;
	int64_t attempts; /* attempts after this claim */
};

/* What an attempt came to, kept on the row for the operator (NULL / 0: nothing). Only
 * webhook deliveries keep a status code and a response body. */
struct store_lease_outcome {
	const char *error;         /* why it failed; NULL on success */
	long status_code;          /* HTTP status; 0 when there was none */
	const char *response_body; /* the start of the receiver's answer, or NULL */
};

/* Rows per IN (…) list: claims and follow-up scans send one statement per this many rows. */
#define STORE_IN_MAX 32
#define STORE_IN8_ "?,?,?,?,?,?,?,?"
/* The placeholders of one IN list; unused ones are bound to NULL, which matches nothing. */
#define STORE_IN_LIST STORE_IN8_ "," STORE_IN8_ "," STORE_IN8_ "," STORE_IN8_

/*
 * The lease check, written once: "<p>lease_owner = ? AND <p>attempts = ? AND <p>state =
 * 'pending'" with p a table prefix ("e." or ""); bind owner, then attempts. Statements that
 * finish a leased row together with other work (a case transition) use it in their WHERE.
 */
#define STORE_LEASE_HELD(p) p "lease_owner = ? AND " p "attempts = ? AND " p "state = 'pending'"

/*
 * Inside the caller's transaction: selects up to limit due rows of q (state 'pending', due
 * at or before now_ms, oldest first) with FOR UPDATE SKIP LOCKED, walking the queue's due
 * index. Deliveries may be limited to one case (case_id; NULL: all); events ignore it.
 * Columns: id, attempts (before this claim), then for events case_id, type, payload.
 * Returns 0 with *res_r (free with db_res_free), or -1.
 */
int store_lease_select_due(struct db *db, enum store_lease_queue q, int64_t now_ms, int64_t limit,
			   const char *case_id, struct db_res **res_r);

/*
 * Inside the caller's transaction, after store_lease_select_due: leases the n rows to owner
 * until until_ms (also their due time, so a crashed holder's rows come due again when the
 * lease ends) and counts the attempt. rows[i].attempts must already be the new count.
 * One UPDATE per STORE_IN_MAX rows. 0 or -1.
 */
int store_lease_stamp(struct db *db, enum store_lease_queue q, const char *owner, int64_t until_ms,
		      const struct store_lease *rows, size_t n);

/* Inside the caller's transaction: rows selected but not claimed become due at due_ms,
 * no attempt counted. 0 or -1. */
int store_lease_defer(struct db *db, enum store_lease_queue q, const int64_t *ids, size_t n,
		      int64_t due_ms);

/*
 * Finishes a leased row if the lease is still ours (events: 'done'; deliveries:
 * 'delivered' with o's status code and body). Returns 1 finished, 0 the lease was lost,
 * -1 on a database error.
 */
int store_lease_finish(struct db *db, enum store_lease_queue q, const struct store_lease *l,
		       const char *owner, int64_t now_ms, const struct store_lease_outcome *o);

/*
 * Gives a leased row back after a failed attempt if the lease is still ours: due again at
 * due_ms with o kept, or, when dead, state 'dead' (no further attempt). 1, 0 lost, -1.
 */
int store_lease_retry(struct db *db, enum store_lease_queue q, const struct store_lease *l,
		      const char *owner, int64_t due_ms, const struct store_lease_outcome *o,
		      int dead);

/* Gives a leased row back untried (the attempt is not counted), due at due_ms. 1, 0, -1. */
int store_lease_release(struct db *db, enum store_lease_queue q, const struct store_lease *l,
			const char *owner, int64_t due_ms);

/* Backoff after attempts failed tries of an event: 30 s doubling to 1 h, ±20 %. */
int64_t store_lease_backoff_ms(int64_t attempts);

/*
 * Named leases (table named_leases): a lock with an owner and an expiry, taken and renewed
 * by a transaction on a row, so that it holds across a Galera cluster (GET_LOCK is local
 * to one node). Used for offloadctl migrate's lock and the per-mailbox lock of IMAP
 * polling. A holder that dies leaves the row until it expires; anybody may take it then.
 */
#define STORE_NAMED_LEASE_OWNER_MAX 128

/* CREATE TABLE IF NOT EXISTS for named_leases (offloadctl migrate runs it before taking
 * its own lock, so it is here rather than only in sql/009_attachment_bytes.sql). */
extern const char store_named_lease_table_sql[];

/* A fresh owner name "host:pid:random" for the leases of this process (cap >= 129). */
void store_named_lease_owner(char *out, size_t cap);

/*
 * Takes the lease name (at most 64 ASCII characters) for owner until until_ms, or renews
 * it when owner holds it already, in one transaction (store_tx_run). Returns 1 taken, 0
 * held by somebody else (*holder_r, when not NULL, gets its owner, cap
 * STORE_NAMED_LEASE_OWNER_MAX + 1 bytes, and *expires_r its expiry), -1 on a database
 * error (db_error()).
 */
int store_named_lease_take(struct db *db, const char *name, const char *owner, int64_t now_ms,
			   int64_t until_ms, char *holder_r, int64_t *expires_r);

/* Gives the lease up if owner still holds it. 0, or -1 on a database error (harmless: the
 * lease ends at its expiry anyway). */
int store_named_lease_release(struct db *db, const char *name, const char *owner);

#endif
