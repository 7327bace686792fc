/* case_create.h: creating cases (POST /cases) in batches: monthly caps, the case rows, their
 * CASE_CREATED events and the Idempotency-Keys they answer, in one transaction. */
#ifndef OFFLOAD_STORE_CASE_CREATE_H
#define OFFLOAD_STORE_CASE_CREATE_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* Most cases one batch holds. */
#define STORE_CASE_BATCH_MAX 64

/* A new case: the validated fields of a POST /cases body (doc/api.md, "POST /cases"). The
 * strings are borrowed from the caller; NULL where the column is NULL. */
struct store_case_new {
	char id[37];                      /* a fresh v4 UUID */
	const char *client_id;
	const char *client_reference_id;  /* or NULL */
	const char *channel;              /* "EMAIL" or "SMS" */
	int max_attempts;
	int follow_up_delay_hours;
	const char *counterparty_address; /* SMS: the E.164 number (sms/e164.h) */
	const char *goal_json;
	const char *counterparty_json;
	const char *persona_json;
	const char *constraints_json;     /* or NULL */
	const char *result_schema_json;   /* or NULL */
	const char *metadata_json;        /* or NULL */
	const char *client_webhook_url;   /* or NULL */
	const char *send_window_json;     /* the sendWindow as given, or NULL */
	int64_t now_ms;                   /* created_at, updated_at, and when the event is due */
};

/* What became of one case of a batch. */
enum store_case_create_outcome {
	STORE_CASE_CREATE_PENDING, /* not decided yet */
	STORE_CASE_CREATE_CREATED, /* committed, with its event and its Idempotency-Key done */
	STORE_CASE_CREATE_LIMITED, /* refused: the monthly cap is reached; its key forgotten */
	STORE_CASE_CREATE_SMS_BUSY, /* refused: an SMS case to the number is open (busy_since
				     * says since when); its key forgotten */
	STORE_CASE_CREATE_SMS_OPTED_OUT, /* refused: the number opted out; its key forgotten */
	STORE_CASE_CREATE_FAILED,  /* not created: a database error (logged) */
	STORE_CASE_CREATE_UNAVAILABLE, /* not created: the database cannot serve now (down, or
					* a Galera node outside the primary component) */
};

/* One request to create a case, as store_case_create_batch takes it. */
struct store_case_create {
	struct store_case_new row;     /* in */
	int64_t cap;                   /* in: the monthly cap (doc/api.md, "Limits"); < 0: none */
	const char *idem_key;          /* in: the Idempotency-Key it reserved, or NULL */
	const char *idem_body;         /* in: the response to remember with idem_key */
	enum store_case_create_outcome outcome; /* out */
	int64_t busy_since;            /* out, SMS_BUSY: created_at of the open case */
};

/*
 * Creates the cases of items[0..n-1] (1 <= n <= STORE_CASE_BATCH_MAX) in one transaction on db, retried whole on a
 * deadlock or lock wait timeout (store_tx_run). For each distinct client with a cap, it
 * locks the client row (in id order, so concurrent batches never deadlock on them) and
 * counts the cases created, and the billable cases finished, in the UTC month of each
 * case's now_ms (with those of the month's cases deleted since, kept as numbers in
 * usage_deleted by store/erase.h, so deleting cases never lowers a client's usage); the cases are then admitted in array order while both counts plus those
 * already admitted stay under the cap, and the rest are refused (LIMITED, their
 * Idempotency-Key reservation deleted in the same transaction). Before the caps, each SMS
 * case locks its number's row (store/sms.h; numbers in strcmp order) and is refused
 * SMS_OPTED_OUT when the number opted out, SMS_BUSY when an SMS case to it is open or was
 * admitted earlier in the batch: decided under the lock, so two concurrent creations for
 * one number (in any process or host) cannot both be admitted. The admitted cases and
 * their CASE_CREATED events are inserted with multi-row INSERTs, and each one's
 * Idempotency-Key is marked done with idem_body and status 201.
 *
 * When the batch fails for another reason than a lost connection, each case is tried again
 * in a transaction of its own, so that one bad row fails alone. A case that finally fails
 * is FAILED, and its Idempotency-Key reservation is abandoned when the connection allows.
 * Every item gets an outcome other than PENDING. Returns the number of FAILED items.
 */
size_t store_case_create_batch(struct db *db, struct store_case_create *const *items, size_t n);

#endif
