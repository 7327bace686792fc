/* events.h: the internal work queue (table events): queueing work for a case, claiming due
 * events with their cases under a lease (store/lease.h), finishing and retrying them, and
 * turning due follow-ups into events. */
#ifndef OFFLOAD_STORE_EVENTS_H
#define OFFLOAD_STORE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "store/case_step.h"
#include "store/lease.h"
#include "store/types.h"

struct db;

/*
 * Queues one pending event of type for case_id, due at available_at_ms. payload_json is a
 * JSON text or NULL. Meant to run inside the caller's transaction, so the event commits
 * with the change that caused it. Returns 0, or -1 with the error in db_error(db).
 */
int store_event_enqueue(struct db *db, const char *case_id, enum store_event_type type,
			const char *payload_json, int64_t available_at_ms, int64_t now_ms);

/* An event one owner holds the lease of, with its case as read at the claim. */
struct store_event {
	struct store_lease lease;     /* id and attempts (counting this claim) */
	char case_id[37];
	enum store_event_type type;   /* valid when known_type */
	int known_type;               /* 0: a type this worker does not know */
	char type_name[33];           /* as stored, for logs */
	char *payload;                /* JSON text or NULL; owned */
	int case_found;               /* 0: there is no such case (kase is empty) */
	struct store_case kase;       /* leased to the owner with the event; owned */
};

/*
 * Claims up to limit due events, at most one per case, and leases each with its case to
 * owner until now_ms + lease_ms, in one short transaction (store/lease.h: SELECT … FOR
 * UPDATE SKIP LOCKED, then one UPDATE of the cases, one SELECT of them, one UPDATE of the
 * events for the whole batch; no lock outlives the call). An event whose case another owner
 * holds, or a second event of one case, is put back for a second. Deadlocks are retried
 * (store/tx.h). Returns 0 with *events_r (free with store_events_free; NULL when *n_r is
 * 0) and *n_r, or -1.
 */
int store_event_claim(struct db *db, const char *owner, int64_t now_ms, int64_t lease_ms,
		      int limit, struct store_event **events_r, size_t *n_r);
/* Frees n events (their payloads and cases) and clears *events; NULL is fine. */
void store_events_free(struct store_event **events, size_t n);

/* Marks a held event done with nothing else to commit, and releases its case's lease if it
 * is owner's. 1 done, 0 the lease was lost, -1 on a database error. */
int store_event_finish(struct db *db, const struct store_event *ev, const char *owner,
		       int64_t now_ms);

/*
 * Gives a held event back to be tried at available_at_ms (error kept for the operator), or
 * marks it 'dead' when dead, and releases its case's lease. 1, 0 lease lost, -1.
 */
int store_event_retry(struct db *db, const struct store_event *ev, const char *owner,
		      int64_t available_at_ms, const char *error, int dead);

/* Where the follow-up scan of one process stands: (next_action_at, id) of the last case it
 * read. Zeroed: at the start. */
struct store_due_cursor {
	int64_t next_action_at;
	char id[37];
	int started; /* 0: start from the oldest due case */
};

/*
 * Turns due follow-ups (RUNNING cases whose next_action_at <= now_ms) into FOLLOW_UP_DUE
 * events, never two pending for one case: reads up to limit due cases after *cursor in
 * (next_action_at, id) order (the cases_due index; FOR UPDATE SKIP LOCKED) and queues the
 * events with one INSERT … SELECT per STORE_IN_MAX cases, in one transaction. The cursor
 * moves past what was read, so a backlog larger than limit is walked through instead of
 * read again from its oldest end; after a short read it starts over. Sets *n_r to the events
 * queued. 0 or -1.
 */
int store_event_schedule_follow_ups(struct db *db, int64_t now_ms, int limit,
				    struct store_due_cursor *cursor, int *n_r);

#endif
