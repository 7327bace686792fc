/* keycache.h: the per-process API-key cache of offload-api (doc/api.md,
 * "Authentication"; doc/operator-guide.md, "API hosts and workers": a key's state may be
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

/*
 * The table itself (keycache_lookup uses these; so does the unit test). keycache_get: 1
 * with *key_r and *generation_r when key_hash has an entry read less than KEYCACHE_TTL_US
 * before now_us (monotonic) under this generation, else 0. keycache_put: remembers key as
 * read at read_at_us under generation (replacing whatever shares its slot, unless that is
 * a fresher entry of the same key).
 */
int keycache_get(const unsigned char key_hash[32], int64_t now_us, uint64_t generation,
		 struct store_api_key *key_r, uint64_t *generation_r);
void keycache_put(const unsigned char key_hash[32], const struct store_api_key *key,
		  int64_t read_at_us, uint64_t generation);

/* Forgets every entry (tests, or a caller that learnt the database changed). */
void keycache_clear(void);

#endif
