/* purge.h: housekeeping deletes of the worker: rows kept only for a while. */
#ifndef OFFLOAD_STORE_PURGE_H
#define OFFLOAD_STORE_PURGE_H

#include <stdint.h>

struct db;

/*
 * Deletes Idempotency-Keys created at or before before_ms, at most 1000 rows per
 * statement (idempotency_keys_created) so that no statement holds many locks, until none
 * is left. Returns 0 with *n_r the rows deleted, or -1 (what was deleted stays deleted).
 */
int store_purge_idempotency(struct db *db, int64_t before_ms, int64_t *n_r);

#endif
