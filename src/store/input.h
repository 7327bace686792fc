/* input.h: the operator's answer to a case's input request (POST /cases/{id}/input). */
#ifndef OFFLOAD_STORE_INPUT_H
#define OFFLOAD_STORE_INPUT_H

#include <stdint.h>

#include "store/types.h"

struct db;

/* An answer to store. Strings are borrowed. */
struct store_input_answer {
	const char *case_id;
	const char *client_id;        /* the caller: the case must be its own */
	const char *input_request_id;
	const char *answer;           /* providedContext */
	const char *decision_json;    /* the decision object, or NULL */
	const char *event_payload;    /* the INPUT_PROVIDED event's payload, a JSON text */
	int64_t now_ms;
};

/* What store_input_provide did. */
enum store_input_outcome {
	STORE_INPUT_ACCEPTED,     /* resolved, case touched, INPUT_PROVIDED queued */
	STORE_INPUT_NO_CASE,      /* no case with this id */
	STORE_INPUT_OTHER_CLIENT, /* the case belongs to another client */
	STORE_INPUT_NOT_WAITING,  /* the case is not INPUT_NEEDED (its status in *status_r) */
	STORE_INPUT_MISMATCH,     /* the id is not the case's current input request */
	STORE_INPUT_NOT_PENDING,  /* the input request was already answered */
};

/*
 * In one transaction (store_tx_run): locks the case row, which orders concurrent answers
 * (the second sees the request RESOLVED), checks it, resolves the input request with the
 * answer and the decision, bumps the case's updated_at and version, and queues the
 * INPUT_PROVIDED event with a's payload. Nothing is written unless the outcome is
 * STORE_INPUT_ACCEPTED. Returns 0 with *outcome_r (and *status_r for NOT_WAITING), or -1 on
 * a database error (db_error(db)).
 */
int store_input_provide(struct db *db, const struct store_input_answer *a,
			enum store_input_outcome *outcome_r, enum store_case_status *status_r);

#endif
