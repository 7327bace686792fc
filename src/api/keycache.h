/* keycache.h: the per-process API-key cache of offload-api (SPEC §2: a key's state may be
 * remembered for at most 1 s, and never across a restart of the database's data). */
#ifndef OFFLOAD_KEYCACHE_H
#define OFFLOAD_KEYCACHE_H

#include <stdint.h>

#include "store/auth.h"

struct db;

/* How long an entry is used, counted from the moment its database read started. */
#define KEYCACHE_TTL_US 1000000

/*
 * The state of the key whose SHA-256 is key_hash: from the cache when an entry read less
 * than KEYCACHE_TTL_US ago (monotonic clock, from when the read started) exists and no
 * connection to the database has been (re)established by this process since; otherwise
 * read with db and remembered. Unknown keys are not remembered (a key created a moment ago
 * works at once). Thread-safe.
 * Returns 1 with *key_r, 0 for an unknown key, -1 on a database error (*error_r for logs).
 * *generation_r is db_connections_made() as it was before the entry was read: a caller
 * that sees it change during its request knows the database was reconnected meanwhile.
 */
int keycache_lookup(struct db *db, const unsigned char key_hash[32], struct store_api_key *key_r,
		    uint64_t *generation_r, const char **error_r);

/* Forgets every entry (tests, or a caller that learnt the database changed). */
void keycache_clear(void);

#endif
