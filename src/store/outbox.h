/* outbox.h: webhook events written in the same transaction as the case transition
 * (doc/api.md, "Webhooks"). */
#ifndef OFFLOAD_OUTBOX_H
#define OFFLOAD_OUTBOX_H

#include <stdint.h>

struct db;

/*
 * Builds the event of type ("case.completed", "case.failed", "case.input_needed") from the
 * case as it now reads inside the caller's transaction, and queues it for delivery when the
 * case has a clientWebhookUrl. The event_id is deterministic
 * (evt_<caseId>_<type with '.' as '_'>_<updatedAt>), so a repeated transition writes nothing
 * twice. Returns 0 (also when there is no URL), or -1 on a database error.
 */
int outbox_case_event(struct db *db, const char *case_id, const char *type, int64_t now_ms);

#endif
