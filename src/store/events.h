/* events.h: the internal work queue (table events): queueing work for a case. */
#ifndef OFFLOAD_STORE_EVENTS_H
#define OFFLOAD_STORE_EVENTS_H

#include <stdint.h>

#include "store/types.h"

struct db;

/*
 * Queues one pending event of type for case_id, due at available_at_ms. payload_json is a
 * JSON text or NULL. Meant to run inside the caller's transaction, so the event commits
 * with the change that caused it. Returns 0, or -1 with the error in db_error(db).
 */
int store_event_enqueue(struct db *db, const char *case_id, enum store_event_type type,
			const char *payload_json, int64_t available_at_ms, int64_t now_ms);

#endif
