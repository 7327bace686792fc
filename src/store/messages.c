/* messages.c: inbound mail in the messages table: matching lookups and the ingest transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/xalloc.h"
#include "store/attachments.h"
#include "store/db.h"
#include "store/events.h"
#include "store/messages.h"
#include "store/tx.h"

#define N_ARGS(a) (sizeof(a) / sizeof((a)[0]))

/* Runs sql with the one argument arg and copies the first column of its first row into out
 * (size bytes). 1 when that cell exists and is not NULL, 0 when not, -1 with *error_r. */
static int first_text(struct db *db, const char *sql, const char *arg, char *out, size_t size,
		      const char **error_r)
{
	struct db_arg args[] = { DB_STR(arg) };
	struct db_res *res;
	const char *v;
	int found = db_query_first(db, sql, args, N_ARGS(args), &res, error_r);

	if (found <= 0)
		return found;
	v = db_res_get(res, 0, 0);
	if (v)
		snprintf(out, size, "%s", v);
	db_res_free(&res);
	return v != NULL;
}

int store_message_find(struct db *db, const char *message_id, char case_id_r[37],
		       int *outbound_r, const char **error_r)
{
	static const char sql[] =
		"SELECT case_id, direction FROM messages WHERE message_id = ?"
		" ORDER BY direction = 'inbound' DESC LIMIT 1";
	struct db_arg args[] = { DB_STR(message_id) };
	struct db_res *res;
	int found = db_query_first(db, sql, args, N_ARGS(args), &res, error_r);

	if (found > 0) {
		const char *c = db_res_get(res, 0, 0), *d = db_res_get(res, 0, 1);

		snprintf(case_id_r, 37, "%s", c ? c : "");
		*outbound_r = d && strcmp(d, "outbound") == 0;
		db_res_free(&res);
	}
	return found;
}

int store_message_outbound_case(struct db *db, const char *message_id, char case_id_r[37],
				const char **error_r)
{
	static const char sql[] =
		"SELECT case_id FROM messages WHERE message_id = ? AND direction = 'outbound'"
		" AND case_id IS NOT NULL LIMIT 1";

	return first_text(db, sql, message_id, case_id_r, 37, error_r);
}

int store_message_case_exists(struct db *db, const char *case_id, char case_id_r[37],
			      const char **error_r)
{
	static const char sql[] = "SELECT id FROM cases WHERE id = ?";

	return first_text(db, sql, case_id, case_id_r, 37, error_r);
}

int store_message_case_counterparty(struct db *db, const char *case_id,
				    char addr_r[STORE_ADDRESS_SIZE], const char **error_r)
{
	static const char sql[] = "SELECT counterparty_address FROM cases WHERE id = ?";

	return first_text(db, sql, case_id, addr_r, STORE_ADDRESS_SIZE, error_r);
}

/* The event payload names the new messages row, so it is built inside the transaction. */
static char *event_payload(const struct store_inbound_event *ev, int64_t row_id)
{
	json_object *o = json_object_new_object();
	char *text;

	json_object_object_add(o, "messageRowId", json_object_new_int64(row_id));
	if (ev->type == EVENT_COMPLAINT_RECEIVED)
		json_object_object_add(o, "feedbackType",
				       json_object_new_string(ev->feedback_type ? ev->feedback_type
										: "unknown"));
	if (ev->type == EVENT_BOUNCE_RECEIVED || ev->type == EVENT_COMPLAINT_RECEIVED)
		json_object_object_add(o, "diagnostic",
				       json_object_new_string(ev->diagnostic ? ev->diagnostic : ""));
	text = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}

struct inbound_tx {
	const struct store_inbound_message *msg;
	const struct store_inbound_attachment *atts;
	size_t n_atts;
	const struct store_inbound_event *event;
	int64_t row_id; /* out */
	int case_gone;  /* out: the matched case was deleted meanwhile */
};

static int inbound_tx_run(struct db *db, void *arg)
{
	static const char ins_message[] =
		"INSERT INTO messages (case_id, direction, kind, message_id, in_reply_to,"
		" references_ids, from_addr, to_addr, subject, body_text, quoted_text, created_at,"
		" raw_path) VALUES (?, 'inbound', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	static const char ins_attachment[] =
		"INSERT INTO attachments (id, case_id, message_row_id, name, size, content_type,"
		" sha256, storage_path, message_id, inbox_id, received_at)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	struct inbound_tx *t = arg;
	const struct store_inbound_message *m = t->msg;
	char *payload;
	int rc;

	t->row_id = 0;
	t->case_gone = 0;
	/* The case row is locked first: an erasure (store/erase.h) deletes it under the same
	 * lock, so a message either commits before the erasure begins (and goes with the
	 * case) or finds the case gone and stores nothing for it. */
	if (m->case_id) {
		static const char lock_case[] = "SELECT id FROM cases WHERE id = ? FOR UPDATE";
		struct db_arg args[] = { DB_STR(m->case_id) };
		struct db_res *res = NULL;
		size_t rows;

		if (db_query(db, lock_case, args, 1, &res) < 0)
			return -1;
		rows = db_res_rows(res);
		db_res_free(&res);
		if (rows == 0) {
			t->case_gone = 1;
			return -1;
		}
	}
	{
		struct db_arg args[] = {
			DB_STR(m->case_id),	DB_STR(m->kind),	  DB_STR(m->message_id),
			DB_STR(m->in_reply_to),	DB_STR(m->references_ids), DB_STR(m->from_addr),
			DB_STR(m->to_addr),	DB_STR(m->subject),	  DB_STR(m->body_text),
			DB_STR(m->quoted_text), DB_INT(m->received_at_ms), DB_STR(m->raw_path),
		};

		if (db_query(db, ins_message, args, N_ARGS(args), NULL) < 0)
			return -1;
	}
	t->row_id = db_insert_id(db);
	for (size_t i = 0; i < t->n_atts; i++) {
		const struct store_inbound_attachment *a = &t->atts[i];
		struct db_arg args[] = {
			DB_STR(a->id),		 DB_STR(m->case_id),	 DB_INT(t->row_id),
			DB_STR(a->name),	 DB_INT(a->size),	 DB_STR(a->content_type),
			DB_STR(a->sha256),	 DB_STR(a->storage_path), DB_STR(m->message_id),
			DB_STR(m->inbox_id),	 DB_INT(m->received_at_ms),
		};

		if (db_query(db, ins_attachment, args, N_ARGS(args), NULL) < 0)
			return -1;
		if (a->data && store_attachment_bytes_insert(db, a->id, a->data, (size_t)a->size) < 0)
			return -1;
	}
	if (t->n_atts && m->case_id) {
		static const char count[] =
			"UPDATE cases SET attachment_count = attachment_count + ? WHERE id = ?";
		struct db_arg args[] = { DB_INT(t->n_atts), DB_STR(m->case_id) };

		if (db_query(db, count, args, N_ARGS(args), NULL) < 0)
			return -1;
	}
	if (!t->event)
		return 0;
	payload = event_payload(t->event, t->row_id);
	rc = store_event_enqueue(db, m->case_id, t->event->type, payload, m->received_at_ms,
				 m->received_at_ms);
	free(payload);
	return rc < 0 ? -1 : 0;
}

/* Errors that trying again will not cure: the message has a value the schema refuses. */
static int error_is_permanent(unsigned no)
{
	switch (no) {
	case 1048: /* ER_BAD_NULL_ERROR */
	case 1153: /* ER_NET_PACKET_TOO_LARGE */
	case 1264: /* ER_WARN_DATA_OUT_OF_RANGE */
	case 1292: /* ER_TRUNCATED_WRONG_VALUE */
	case 1366: /* ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: characters the column cannot hold */
	case 1406: /* ER_DATA_TOO_LONG */
	case 4025: /* ER_CONSTRAINT_FAILED: a CHECK constraint */
		return 1;
	default:
		return 0;
	}
}

enum store_message_result store_message_insert_inbound(struct db *db,
						       const struct store_inbound_message *msg,
						       const struct store_inbound_attachment *atts,
						       size_t n_atts,
						       const struct store_inbound_event *event,
						       int64_t *row_id_r, const char **error_r)
{
	struct inbound_tx t = { .msg = msg, .atts = atts, .n_atts = n_atts, .event = event };
	unsigned no;

	if (store_tx_run(db, inbound_tx_run, &t) == 0) {
		*row_id_r = t.row_id;
		return STORE_MESSAGE_STORED;
	}
	if (t.case_gone) {
		/* Delivered again later, the message matches no case and is kept unmatched. */
		*error_r = "the case was deleted while the message was being stored";
		return STORE_MESSAGE_ERROR;
	}
	*error_r = db_error(db);
	no = db_errno(db);
	if (no == DB_ER_DUP_ENTRY)
		return STORE_MESSAGE_DUPLICATE;
	if (error_is_permanent(no))
		return STORE_MESSAGE_REFUSED;
	return STORE_MESSAGE_ERROR;
}
