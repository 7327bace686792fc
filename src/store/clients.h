/* clients.h: clients and their API keys as the operator administers them (offloadctl):
 * creating and listing clients, rotating a webhook secret, creating, listing and
 * deactivating keys. */
#ifndef OFFLOAD_STORE_CLIENTS_H
#define OFFLOAD_STORE_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* A new client. Strings are borrowed. */
struct store_client_new {
	const char *id;             /* a UUID */
	const char *name;           /* 1-255 characters */
	const char *plan;           /* plans_name() */
	const char *webhook_secret; /* "whsec_..." */
	int64_t created_at_ms;
};

/* One client as listed. */
struct store_client_row {
	char id[37];
	char *name;          /* owned by the row */
	char plan[17];
	int64_t created_at_ms;
	int64_t active_keys; /* its keys that are active */
};

/* One API key as listed (never the key: only its first characters). */
struct store_key_row {
	char id[37];
	char client_id[37];
	char prefix[17];
	int active;               /* 1 active, 0 deactivated */
	int64_t created_at_ms;
	int64_t deactivated_at_ms; /* -1 while active (never deactivated) */
};

/* A new API key. Strings are borrowed. */
struct store_key_new {
	const char *id;               /* a UUID */
	const char *client_id;        /* an existing client */
	const unsigned char *hash;    /* the SHA-256 of the key, 32 bytes */
	const char *prefix;           /* the key's first characters, for people */
	int64_t created_at_ms;
};

/* What a secret rotation found and did. */
enum store_rotation {
	STORE_ROTATION_DONE,      /* rotated (new secret current, old kept), or finished */
	STORE_ROTATION_NO_CLIENT, /* no such client: nothing changed */
	STORE_ROTATION_BUSY,      /* a rotation is in progress and force was not given */
};

/* Inserts a client. 0, or -1 with *error_r (the database's text, valid until db's next
 * statement; so are all *error_r below). */
int store_client_create(struct db *db, const struct store_client_new *c, const char **error_r);

/* Every client, oldest first, into *rows_r (free with store_client_rows_free) and *n_r.
 * 0, or -1 with *error_r. */
int store_client_list(struct db *db, struct store_client_row **rows_r, size_t *n_r,
		      const char **error_r);
/* Frees n rows from store_client_list and the array, and clears the caller's pointer. */
void store_client_rows_free(struct store_client_row **rows, size_t n);

/*
 * Webhook secret rotation of client_id in one transaction (store_tx_run). With finish set:
 * forgets the previous secret. Otherwise: makes new_secret current and keeps the current one
 * as the previous secret, unless a rotation is already in progress (a previous secret is
 * kept) and force is 0 (STORE_ROTATION_BUSY). *in_rotation_r tells whether a rotation was
 * in progress before. Returns the enum value, or -1 with *error_r.
 */
int store_client_rotate_secret(struct db *db, const char *client_id, const char *new_secret,
			       int finish, int force, int *in_rotation_r, const char **error_r);

/* Inserts key when its client exists: 1 created, 0 no such client, -1 with *error_r. */
int store_key_create(struct db *db, const struct store_key_new *key, const char **error_r);

/* The keys of client_id (every key when NULL), oldest first, into *rows_r (free with
 * free()) and *n_r. 0, or -1 with *error_r. */
int store_key_list(struct db *db, const char *client_id, struct store_key_row **rows_r,
		   size_t *n_r, const char **error_r);

/* Makes key_id inactive, stamping now_ms unless it was deactivated before. 1 done (also when
 * it was inactive already), 0 no such key, -1 with *error_r. */
int store_key_deactivate(struct db *db, const char *key_id, int64_t now_ms,
			 const char **error_r);

#endif
