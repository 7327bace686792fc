/* auth.h: API keys as authentication sees them (doc/api.md, "Authentication"): key hash ->
 * client, state, plan. */
#ifndef OFFLOAD_STORE_AUTH_H
#define OFFLOAD_STORE_AUTH_H

#include "common/plans.h"

struct db;

/* One API key and what a request authenticated by it may do. */
struct store_api_key {
	char client_id[37]; /* the client the key belongs to (a UUID) */
	int active;         /* 1 while the key may be used; 0 after offloadctl key deactivate */
	enum plan plan;     /* the client's plan */
};

/*
 * Looks up the key whose SHA-256 is key_hash. Returns 1 with *key_r filled, 0 when no key
 * has that hash, -1 on a database error or a client with an unknown plan (*error_r says
 * which; static or the connection's storage, for logs only).
 */
int store_api_key_lookup(struct db *db, const unsigned char key_hash[32],
			 struct store_api_key *key_r, const char **error_r);

#endif
