/* deliver.h: webhook delivery from the outbox (doc/api.md, "Webhooks"): claim due deliveries
 * with a lease, POST them signed in the Standard Webhooks style, record the outcome, retry on
 * a schedule, give up as 'dead'. Also the purge of expired Idempotency-Keys. */
#ifndef OFFLOAD_DELIVER_H
#define OFFLOAD_DELIVER_H

#include <stddef.h>
#include <stdint.h>

struct cfg;
struct db;

/* The default [webhook] retry_schedule_s: the waits after the 1st, 2nd, … failed attempt
 * (about 23.6 h from the first attempt to the last of 8). */
#define WEBHOOK_DEFAULT_SCHEDULE "5,300,1800,7200,18000,36000,21600"
/* At most this many retries in a schedule; each wait at most a week. */
#define WEBHOOK_MAX_RETRIES 64
#define WEBHOOK_MAX_WAIT_S (7 * 86400)
/* How much of a receiver's response body is kept for the operator. */
#define WEBHOOK_KEEP_BODY 1024

/* What one webhook_deliver_due call did. */
struct webhook_stats {
	int delivered; /* acknowledged with a 2xx */
	int failed;    /* failed, will be retried at the next step of the schedule */
	int dead;      /* refused (SSRF guard, bad URL, 410) or failed for the last time */
};

/* The retry schedule: waits in seconds after each failed attempt. */
struct webhook_schedule {
	int64_t waits_s[WEBHOOK_MAX_RETRIES];
	size_t n;
};

/*
 * Delivers the due webhook deliveries (state 'pending', next_attempt_at <= now) until none is
 * due or deadline_ms (Unix ms) has passed: no new request starts after the deadline, and one
 * in progress is bounded by its own timeout. Each batch is claimed with SELECT … FOR UPDATE
 * SKIP LOCKED in a short transaction that stamps a lease (lease_owner = owner, lease_until and
 * next_attempt_at = the lease end, attempts + 1) and commits; the POSTs happen with no lock
 * held; each outcome is written only if the lease is still ours. Several callers (threads
 * with their own db, or hosts) may run it at once; give each a distinct owner (≤ 64 chars).
 *
 * Configuration ([webhook]): retry_schedule_s, connect_timeout_s (5), timeout_s (15),
 * allow_private (false), loopback_only (false), batch (10), user_agent.
 * Outcomes: any 2xx → 'delivered' (delivered_at); a URL refused by the SSRF guard or that is
 * not http(s), and a 410 Gone → 'dead' at once; anything else (3xx: redirects are never
 * followed) → retried after the schedule's wait ±10 % (or a longer Retry-After, up to 24 h),
 * and 'dead' once the schedule is used up. last_status_code, last_error and the first
 * WEBHOOK_KEEP_BODY bytes of the response body are kept.
 *
 * cfg is read, not kept. stats_r (may be NULL) is zeroed, then counts the outcomes.
 * Returns 0, or -1 on database trouble or a bad [webhook] setting (logged); deliveries
 * claimed but not finished then come due again when their lease ends.
 */
int webhook_deliver_due(struct db *db, struct cfg *cfg, const char *owner, int64_t deadline_ms,
			struct webhook_stats *stats_r);

/* Same, limited to the deliveries of one case (case_id NULL: all). For offloadctl and tests. */
int webhook_deliver_due_case(struct db *db, struct cfg *cfg, const char *owner,
			     int64_t deadline_ms, const char *case_id, struct webhook_stats *stats_r);

/*
 * Deletes Idempotency-Keys created 24 h or more before now_ms (doc/api.md, "Idempotent
 * creation": keys are kept 24 h), in batches of 1000 so no statement holds many locks.
 * Returns the number deleted, or -1 on a database error (logged).
 */
int webhook_purge_idempotency(struct db *db, int64_t now_ms);

/*
 * Parses a schedule: comma-separated whole seconds, each 1..WEBHOOK_MAX_WAIT_S, at most
 * WEBHOOK_MAX_RETRIES, spaces allowed around the commas. Returns 0, or -1 with *error_r set
 * (static string).
 */
int webhook_schedule_parse(const char *text, struct webhook_schedule *s, const char **error_r);

/*
 * The wait before the next attempt after attempts (≥ 1) attempts have failed, in ms: the
 * schedule's entry ±10 % jitter chosen by random (any 32-bit value; 0x80000000 gives the
 * entry exactly). -1 when the schedule is used up (the delivery is dead).
 */
int64_t webhook_retry_wait_ms(const struct webhook_schedule *s, int64_t attempts, uint32_t random);

/*
 * The webhook-signature header value for one attempt: "v1,<base64 HMAC-SHA256(key,
 * msg_id "." timestamp_s "." body)>" where key is the base64-decoded part after "whsec_" of
 * secret (the prefix is optional); with previous (not NULL, not empty) a second signature
 * with that secret follows after a space, so receivers holding either secret verify during a
 * rotation. Writes a NUL-terminated value into out (cap bytes; 128 suffice for two).
 * Returns 0, or -1 when a secret is not valid base64 of 1..64 bytes or out is too small.
 */
int webhook_sign(const char *secret, const char *previous, const char *msg_id,
		 int64_t timestamp_s, const void *body, size_t body_len, char *out, size_t cap);

#endif
