/* messages_out.c: outbound messages of the worker (table messages, direction 'outbound'). */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/db.h"
#include "store/messages_out.h"
#include "store/tx.h"

int store_outbound_find(struct db *db, int64_t event_id, struct store_outbound *o)
{
	/* Walks messages_event (event_id). */
	static const char sql[] =
		"SELECT id, message_id, subject, body_text, in_reply_to, references_ids, send_state"
		" FROM messages WHERE event_id = ? AND direction = 'outbound' ORDER BY id DESC LIMIT 1";
	struct db_arg a[] = { DB_INT(event_id) };
	struct db_res *res = NULL;
	const char *state;

	memset(o, 0, sizeof *o);
	if (db_query(db, sql, a, 1, &res) < 0)
		return -1;
	if (db_res_rows(res) == 0) {
		db_res_free(&res);
		return 0;
	}
	o->row = db_res_int(res, 0, 0);
	o->message_id = xstrdup(db_res_get(res, 0, 1));
	o->subject = xstrdup(db_res_get(res, 0, 2));
	o->body = xstrdup(db_res_get(res, 0, 3));
	o->in_reply_to = db_res_get(res, 0, 4) ? xstrdup(db_res_get(res, 0, 4)) : NULL;
	o->references = db_res_get(res, 0, 5) ? xstrdup(db_res_get(res, 0, 5)) : NULL;
	state = db_res_get(res, 0, 6);
	o->sent = state && strcmp(state, "sent") == 0;
	db_res_free(&res);
	return 1;
}

struct record_arg {
	const struct db_arg *args;
	size_t n;
};

static int record_body(struct db *db, void *arg)
{
	/* The version check and the insert in one statement: the row is written only if the
	 * case did not change since the worker read it. Autocommitted, the statement may be
	 * sent twice (db_query redoes it once on a new connection when the old one died before
	 * the answer came): NOT EXISTS keeps the second from writing the message again. */
	static const char sql[] =
		"INSERT INTO messages (case_id, direction, kind, message_id, in_reply_to,"
		" references_ids, from_addr, to_addr, subject, body_text, send_state, created_at,"
		" event_id, channel) SELECT id, 'outbound', ?, ?, ?, ?, ?, ?, ?, ?, 'sending', ?, ?,"
		" channel"
		" FROM cases WHERE id = ? AND version = ? AND NOT EXISTS (SELECT 1 FROM messages m"
		" WHERE m.event_id = ? AND m.message_id = ?)";
	struct record_arg *r = arg;

	if (db_query(db, sql, r->args, r->n, NULL) < 0)
		return -1;
	return db_affected_rows(db) == 1 ? 0 : 1;
}

int store_outbound_record(struct db *db, const char *case_id, int64_t case_version,
			  int64_t event_id, const char *kind, const char *from_addr,
			  const char *to_addr, struct store_outbound *o, int64_t now_ms)
{
	struct db_arg a[] = {
		DB_STR(kind), DB_STR(o->message_id), DB_STR(o->in_reply_to), DB_STR(o->references),
		DB_STR(from_addr), DB_STR(to_addr), DB_STR(o->subject), DB_STR(o->body),
		DB_INT(now_ms), DB_INT(event_id), DB_STR(case_id), DB_INT(case_version),
		DB_INT(event_id), DB_STR(o->message_id),
	};
	struct record_arg r = { a, sizeof a / sizeof a[0] };

	switch (store_tx_run_single(db, record_body, &r)) {
	case 0:
		o->row = db_insert_id(db);
		return 1;
	case 1:
		return 0;
	default:
		return -1;
	}
}

int store_outbound_mark_sent(struct db *db, int64_t row, int64_t now_ms)
{
	static const char sql[] = "UPDATE messages SET send_state = 'sent', sent_at = ? WHERE id = ?";
	struct db_arg a[] = { DB_INT(now_ms), DB_INT(row) };

	return db_query(db, sql, a, 2, NULL);
}

int store_outbound_note_error(struct db *db, int64_t row, const char *error, int failed)
{
	static const char sql[] = "UPDATE messages SET send_error = ?, send_state = ? WHERE id = ?";
	struct db_arg a[] = { DB_STR(error), DB_STR(failed ? "failed" : "sending"), DB_INT(row) };

	return db_query(db, sql, a, 3, NULL);
}

void store_outbound_free(struct store_outbound *o)
{
	free(o->message_id);
	free(o->subject);
	free(o->body);
	free(o->in_reply_to);
	free(o->references);
	memset(o, 0, sizeof *o);
}
