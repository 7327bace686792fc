/* mailbox.c: IMAP polling progress (mailbox_state) and the per-mailbox named lock. */
#include "store/db.h"
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

int store_mailbox_lock(struct db *db, const char *lock_name, const char **error_r)
{
	static const char sql[] = "SELECT GET_LOCK(?, 0)";
	struct db_arg args[] = { DB_STR(lock_name) };
	struct db_res *res = NULL;
	int got;

	if (db_query(db, sql, args, N_ARGS(args), &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	got = db_res_rows(res) > 0 && db_res_get(res, 0, 0) && db_res_int(res, 0, 0) == 1;
	db_res_free(&res);
	return got;
}

void store_mailbox_unlock(struct db *db, const char *lock_name)
{
	static const char sql[] = "SELECT RELEASE_LOCK(?)";
	struct db_arg args[] = { DB_STR(lock_name) };
	struct db_res *res = NULL;

	if (db_query(db, sql, args, N_ARGS(args), &res) == 0)
		db_res_free(&res);
}
