/* mailbox.c: IMAP polling progress (mailbox_state) and the per-mailbox lease. */
#include "store/db.h"
#include "store/lease.h"
#include "store/mailbox.h"

#define N_ARGS(a) (sizeof(a) / sizeof((a)[0]))

int store_mailbox_state_load(struct db *db, const char *mailbox,
			     struct store_mailbox_state *state_r, const char **error_r)
{
	static const char sql[] =
		"SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = ?";
	struct db_arg args[] = { DB_STR(mailbox) };
	struct db_res *res;
	int found = db_query_first(db, sql, args, N_ARGS(args), &res, error_r);

	if (found > 0) {
		state_r->uidvalidity = db_res_int(res, 0, 0);
		state_r->last_uid = db_res_int(res, 0, 1);
		db_res_free(&res);
	}
	return found;
}

int store_mailbox_state_save(struct db *db, const char *mailbox,
			     const struct store_mailbox_state *state, int64_t now_ms,
			     const char **error_r)
{
	static const char sql[] =
		"INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at)"
		" VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE uidvalidity = VALUES(uidvalidity),"
		" last_uid = VALUES(last_uid), updated_at = VALUES(updated_at)";
	struct db_arg args[] = { DB_STR(mailbox), DB_INT(state->uidvalidity),
				 DB_INT(state->last_uid), DB_INT(now_ms) };

	if (db_query(db, sql, args, N_ARGS(args), NULL) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	return 0;
}

void store_mailbox_owner(char out[STORE_MAILBOX_OWNER_SIZE])
{
	store_named_lease_owner(out, STORE_MAILBOX_OWNER_SIZE);
}

int store_mailbox_lock(struct db *db, const char *lock_name, const char *owner, int64_t now_ms,
		       int64_t until_ms, const char **error_r)
{
	int got = store_named_lease_take(db, lock_name, owner, now_ms, until_ms, NULL, NULL);

	if (got < 0)
		*error_r = db_error(db);
	return got;
}

void store_mailbox_unlock(struct db *db, const char *lock_name, const char *owner)
{
	store_named_lease_release(db, lock_name, owner);
}
