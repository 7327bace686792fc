/* idempotency.h: Idempotency-Keys of POST /cases (table idempotency_keys; doc/api.md,
 * "Idempotent creation"). */
#ifndef OFFLOAD_STORE_IDEMPOTENCY_H
#define OFFLOAD_STORE_IDEMPOTENCY_H

#include <stdint.h>

struct db;

/* How long a key is remembered, and how long an unfinished one blocks its repeats. */
#define STORE_IDEM_KEEP_MS (24LL * 3600 * 1000)
#define STORE_IDEM_STALE_MS (60LL * 1000)

/* What store_idem_begin found. */
enum store_idem_outcome {
	STORE_IDEM_RESERVED, /* the key is this request's now: create, then store_idem_done */
	STORE_IDEM_REUSED,   /* an earlier request used the key with another body (422) */
	STORE_IDEM_IN_USE,   /* an earlier request with the key is still in flight (409) */
	STORE_IDEM_REPLAY,   /* an earlier request finished: answer what it answered */
};

/* The outcome of store_idem_begin; body is set for STORE_IDEM_REPLAY only. */
struct store_idem_result {
	enum store_idem_outcome outcome;
	int status;  /* the stored HTTP status (REPLAY) */
	char *body;  /* the stored response body, a JSON text (REPLAY); caller frees */
};

/*
 * Reserves key for client_id with the SHA-256 of the request (hash), or reports what an
 * earlier request with the key did. The reservation commits on its own (autocommit), so
 * that a concurrent repeat finds it and is told STORE_IDEM_IN_USE. A key older than
 * STORE_IDEM_KEEP_MS, or left in flight for STORE_IDEM_STALE_MS by a request that died,
 * is taken over. now_ms is the request's clock. Returns 0 with *res_r filled, or -1 on a
 * database error (db_error(db)); not to be called inside a transaction.
 */
int store_idem_begin(struct db *db, const char *client_id, const char *key,
		     const unsigned char hash[32], int64_t now_ms, struct store_idem_result *res_r);

/* Frees what store_idem_begin put in res (safe on a zeroed struct). */
void store_idem_result_free(struct store_idem_result *res);

/*
 * Records the response of the request that holds key (state done): status and body (the
 * whole JSON envelope), and the case it created (case_id, or NULL), so that erasing the case
 * forgets the key too (store/erase.h). Meant for the creating transaction, so it commits
 * with the case. Returns 0, or -1 on a database error.
 */
int store_idem_done(struct db *db, const char *client_id, const char *key, int status,
		    const char *body, const char *case_id);

/*
 * Forgets key while it is still in flight (no case was created), so that the client may
 * retry. Inside a transaction or on its own. Returns 0, or -1 on a database error.
 */
int store_idem_abandon(struct db *db, const char *client_id, const char *key);

#endif
