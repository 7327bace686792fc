/* queue.h: the internal event queue: claiming with SKIP LOCKED and leases, finishing, retrying. */
#ifndef OFFLOAD_QUEUE_H
#define OFFLOAD_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* An event this worker holds the lease of. */
struct queue_event {
	int64_t id;
	char case_id[37];
	char type[33];
	char *payload;   /* JSON text or NULL; owned */
	int64_t attempts; /* after this claim: identifies the lease together with the owner */
};

/*
 * Turns due follow-ups (RUNNING cases whose next_action_at has passed) into FOLLOW_UP_DUE
 * events, at most limit, never two pending for one case. Sets *n_r. 0 or -1.
 */
int queue_schedule_follow_ups(struct db *db, int64_t now_ms, int limit, int *n_r);

/*
 * Claims up to limit due events, at most one per case, and leases both the event and its
 * case to owner until now_ms + lease_ms, in one short transaction (SELECT … FOR UPDATE SKIP
 * LOCKED, then UPDATE, then COMMIT): no lock outlives the call. An event whose case is
 * leased by another worker is put back for a second. Returns 0 with *events_r (free with
 * queue_events_free) and *n_r, or -1.
 */
int queue_claim(struct db *db, const char *owner, int64_t now_ms, int64_t lease_ms, int limit,
		struct queue_event **events_r, size_t *n_r);
void queue_events_free(struct queue_event **events, size_t n);

/*
 * Inside the caller's transaction: marks the event done and releases the case lease, if the
 * lease is still ours. Returns 1 done, 0 the lease was lost (roll back), -1 error.
 */
int queue_finish_in_tx(struct db *db, const struct queue_event *ev, const char *owner,
		       int64_t now_ms);

/* Marks the event done on its own (nothing else to commit). 0 or -1. */
int queue_finish(struct db *db, const struct queue_event *ev, const char *owner, int64_t now_ms);

/*
 * Gives the event back to be tried again at available_at (the error kept for the operator)
 * and releases the case lease; after max_attempts the event is marked dead instead.
 * 0 or -1.
 */
int queue_retry(struct db *db, const struct queue_event *ev, const char *owner,
		int64_t available_at, const char *error, int64_t max_attempts);

/* Backoff for a temporary failure after attempts tries: 30 s doubling to 1 h, ±20 %. */
int64_t queue_backoff_ms(int64_t attempts);

#endif
