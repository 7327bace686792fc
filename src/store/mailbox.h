/* mailbox.h: IMAP polling progress per mailbox (table mailbox_state) and the lease that keeps
 * two workers, on any hosts, from polling one mailbox at once. */
#ifndef OFFLOAD_STORE_MAILBOX_H
#define OFFLOAD_STORE_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* Where polling a mailbox stands. */
struct store_mailbox_state {
	int64_t uidvalidity; /* the mailbox's UIDVALIDITY when last_uid was read */
	int64_t last_uid;    /* the highest UID handed to the ingest code (0: none yet) */
};

/*
 * Loads the state of mailbox (mailbox_state.mailbox, at most 255 characters). Returns 1
 * with *state_r filled, 0 when the mailbox has no state yet, or -1 on a database error with
 * *error_r (the database's text, valid until db's next statement).
 */
int store_mailbox_state_load(struct db *db, const char *mailbox,
			     struct store_mailbox_state *state_r, const char **error_r);

/* Writes (inserts or replaces) the state of mailbox, stamped now_ms. 0, or -1 with *error_r. */
int store_mailbox_state_save(struct db *db, const char *mailbox,
			     const struct store_mailbox_state *state, int64_t now_ms,
			     const char **error_r);

/* Room for an owner name of the lease below, and a fresh one for this process's poll. */
#define STORE_MAILBOX_OWNER_SIZE 129
void store_mailbox_owner(char out[STORE_MAILBOX_OWNER_SIZE]);

/*
 * Takes or renews the lease lock_name (a named lease, src/store/lease.h: a row of
 * named_leases, so it holds across a Galera cluster; at most 64 characters) for owner until
 * until_ms, without waiting. Returns 1 taken, 0 held by another worker, -1 on a database
 * error with *error_r. A worker that dies keeps it until until_ms.
 */
int store_mailbox_lock(struct db *db, const char *lock_name, const char *owner, int64_t now_ms,
		       int64_t until_ms, const char **error_r);

/* Gives lock_name up if owner holds it. A failure leaves it to its expiry, which is
 * harmless, so there is nothing to report. */
void store_mailbox_unlock(struct db *db, const char *lock_name, const char *owner);

#endif
