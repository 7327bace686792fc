/* caseview.c: the case object of GET /cases/{id}, its attachments and its transcript. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/caseview.h"
#include "store/db.h"

/* The case columns, the input request, and whether there are attachments: most cases have
 * none, and then a case is one round trip. (Aggregating the attachments into a JSON array
 * in the same statement measured 3-4x slower than a second query.) COL_* index into it. */
#define CASE_COLUMNS \
	"c.id, c.client_id, c.client_reference_id, c.status, c.channel, c.created_at," \
	" c.updated_at, c.next_action_at, c.attempt_count, c.max_attempts," \
	" c.follow_up_delay_hours, c.goal, c.counterparty, c.sender_persona, c.constraints_json," \
	" c.result_schema, c.metadata, c.result_status, c.result, c.failure_reason," \
	" c.client_webhook_url, r.id, r.question, r.status, r.requested_at," \
	" c.attachment_count > 0, c.send_window"

static const char case_sql[] =
	"SELECT " CASE_COLUMNS
	" FROM cases c LEFT JOIN input_requests r ON r.id = c.input_request_id WHERE c.id = ?";

enum {
	COL_ID, COL_CLIENT, COL_REF, COL_STATUS, COL_CHANNEL, COL_CREATED, COL_UPDATED,
	COL_NEXT, COL_ATTEMPTS, COL_MAX_ATTEMPTS, COL_DELAY, COL_GOAL, COL_COUNTERPARTY,
	COL_PERSONA, COL_CONSTRAINTS, COL_SCHEMA, COL_METADATA, COL_RESULT_STATUS, COL_RESULT,
	COL_FAILURE, COL_WEBHOOK, COL_IR_ID, COL_IR_QUESTION, COL_IR_STATUS, COL_IR_AT,
	COL_HAS_ATTACHMENTS, COL_SEND_WINDOW,
};

static void add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

static void add_int(json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

json_object *caseview_attachment_json(const char *id, const char *name, long long size,
				      const char *type, const char *message_id,
				      const char *inbox_id, long long received_at)
{
	json_object *a = json_object_new_object();

	add_str(a, "attachmentId", id);
	add_str(a, "name", name);
	add_int(a, "size", size);
	add_str(a, "type", type);
	add_str(a, "messageId", message_id);
	add_str(a, "inboxId", inbox_id);
	add_int(a, "receivedAt", received_at);
	return a;
}

int caseview_attachments(struct db *db, const char *case_id, json_object **array_r)
{
	static const char sql[] =
		"SELECT id, name, size, content_type, message_id, inbox_id, received_at"
		" FROM attachments WHERE case_id = ? ORDER BY received_at, id";
	struct db_arg args[] = { DB_STR(case_id) };
	struct db_res *res = NULL;
	json_object *arr;

	if (db_query(db, sql, args, 1, &res) < 0) {
		log_error("loading attachments of case %s: %s", case_id, db_error(db));
		return -1;
	}
	arr = json_object_new_array();
	for (size_t i = 0; i < db_res_rows(res); i++)
		json_object_array_add(arr, caseview_attachment_json(
			db_res_get(res, i, 0), db_res_get(res, i, 1), db_res_int(res, i, 2),
			db_res_get(res, i, 3), db_res_get(res, i, 4), db_res_get(res, i, 5),
			db_res_int(res, i, 6)));
	db_res_free(&res);
	*array_r = arr;
	return 0;
}

int caseview_transcript(struct db *db, const char *case_id, char **text_r)
{
	static const char sql[] =
		"SELECT created_at, direction, from_addr, to_addr, subject, body_text, channel"
		" FROM messages WHERE case_id = ? ORDER BY created_at, id";
	static const char cut[] = "\n\n[transcript truncated]";
	struct db_arg args[] = { DB_STR(case_id) };
	struct db_res *res = NULL;
	struct buf out;

	if (db_query(db, sql, args, 1, &res) < 0) {
		log_error("loading messages of case %s: %s", case_id, db_error(db));
		return -1;
	}
	buf_init(&out, CASEVIEW_MAX_TRANSCRIPT);
	buf_puts(&out, "");
	for (size_t i = 0; i < db_res_rows(res); i++) {
		char when[32];

		/* An SMS has no subject (doc/api.md, SMS): its line is left out. */
		int sms = strcmp(db_res_get(res, i, 6), "SMS") == 0;

		util_iso8601_ms(db_res_int(res, i, 0), when);
		if (buf_printf(&out, "%s--- %s %s ---\nFrom: %s\nTo: %s\n%s%s%s\n%s",
			       i ? "\n\n" : "", when, db_res_get(res, i, 1), db_res_get(res, i, 2),
			       db_res_get(res, i, 3), sms ? "" : "Subject: ",
			       sms ? "" : db_res_get(res, i, 4), sms ? "" : "\n",
			       db_res_get(res, i, 5)) < 0) {
			out.max += sizeof cut;
			buf_puts(&out, cut);
			break;
		}
	}
	db_res_free(&res);
	*text_r = out.data;
	return 0;
}

/* JSON text written straight into a buffer: the case is mostly stored JSON (validated by
 * the columns' CHECK (JSON_VALID(...))), copied as it is instead of parsed and printed again. */
struct jw {
	struct buf *b;
	int failed; /* the buffer's maximum was reached */
};

static void jw_raw(struct jw *w, const char *s, size_t len)
{
	if (!w->failed && buf_append(w->b, s, len) < 0)
		w->failed = 1;
}

static void jw_lit(struct jw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

/* A JSON string with the escapes json-c writes (no escaped slashes). */
static void jw_str(struct jw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	if (!s) {
		jw_lit(w, "null");
		return;
	}
	jw_raw(w, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[7];
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jw_raw(w, run, (size_t)(s - run));
		run = s + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		jw_raw(w, esc, n);
	}
	jw_raw(w, run, (size_t)(s - run));
	jw_raw(w, "\"", 1);
}

static void jw_int(struct jw *w, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof num, "%lld", (long long)v);

	jw_raw(w, num, (size_t)n);
}

/* ,"key": */
static void jw_key(struct jw *w, const char *key)
{
	jw_raw(w, ",\"", 2);
	jw_lit(w, key);
	jw_raw(w, "\":", 2);
}

/* Stored JSON as it is, or null. */
static void jw_stored(struct jw *w, const char *text)
{
	jw_lit(w, text ? text : "null");
}

static void jw_key_str(struct jw *w, const char *key, const char *v)
{
	jw_key(w, key);
	jw_str(w, v);
}

static void jw_key_int(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_int(w, v);
}

static void jw_key_stored(struct jw *w, const char *key, const char *text)
{
	jw_key(w, key);
	jw_stored(w, text);
}

static int write_attachments(struct db *db, const char *case_id, struct jw *w)
{
	static const char sql[] =
		"SELECT id, name, size, content_type, message_id, inbox_id, received_at"
		" FROM attachments WHERE case_id = ? ORDER BY received_at, id";
	struct db_arg args[] = { DB_STR(case_id) };
	struct db_res *res = NULL;

	if (db_query(db, sql, args, 1, &res) < 0) {
		log_error("loading attachments of case %s: %s", case_id, db_error(db));
		return -1;
	}
	jw_raw(w, "[", 1);
	for (size_t i = 0; i < db_res_rows(res); i++) {
		jw_lit(w, i ? ",{\"attachmentId\":" : "{\"attachmentId\":");
		jw_str(w, db_res_get(res, i, 0));
		jw_key_str(w, "name", db_res_get(res, i, 1));
		jw_key_int(w, "size", db_res_int(res, i, 2));
		jw_key_str(w, "type", db_res_get(res, i, 3));
		jw_key_str(w, "messageId", db_res_get(res, i, 4));
		jw_key_str(w, "inboxId", db_res_get(res, i, 5));
		jw_key_int(w, "receivedAt", db_res_int(res, i, 6));
		jw_raw(w, "}", 1);
	}
	jw_raw(w, "]", 1);
	db_res_free(&res);
	return 0;
}

#define GET(col) db_res_get(res, 0, (col))
#define GETI(col) db_res_int(res, 0, (col))

/* The case object from its row (the field order of doc/api.md, "GET /cases/{caseId}"); -1 on
 * a database error. */
static int write_case(struct db *db, const struct db_res *res, unsigned flags, struct jw *w)
{
	const char *id = GET(COL_ID);

	jw_lit(w, "{\"caseId\":");
	jw_str(w, id);
	if (flags & CASEVIEW_INTERNAL)
		jw_key_str(w, "clientId", GET(COL_CLIENT));
	if (GET(COL_REF))
		jw_key_str(w, "clientReferenceId", GET(COL_REF));
	jw_key_str(w, "status", GET(COL_STATUS));
	jw_key_str(w, "channel", GET(COL_CHANNEL));
	jw_key_int(w, "createdAt", GETI(COL_CREATED));
	jw_key_int(w, "updatedAt", GETI(COL_UPDATED));
	jw_key_int(w, "nextActionAt", GETI(COL_NEXT));
	jw_key_int(w, "attemptCount", GETI(COL_ATTEMPTS));
	jw_key_int(w, "maxAttempts", GETI(COL_MAX_ATTEMPTS));
	jw_key_int(w, "followUpDelayHours", GETI(COL_DELAY));
	/* Only when the case has its own (doc/api.md "Send windows"); the server's default
	 * window is the worker's configuration, not part of the case. */
	if (GET(COL_SEND_WINDOW))
		jw_key_stored(w, "sendWindow", GET(COL_SEND_WINDOW));
	jw_key_stored(w, "goal", GET(COL_GOAL));
	jw_key_stored(w, "counterparty", GET(COL_COUNTERPARTY));
	jw_key_stored(w, "senderPersona", GET(COL_PERSONA));
	if (GET(COL_CONSTRAINTS))
		jw_key_stored(w, "constraints", GET(COL_CONSTRAINTS));
	if (GET(COL_SCHEMA))
		jw_key_stored(w, "resultSchema", GET(COL_SCHEMA));
	jw_key(w, "attachments");
	if (!GETI(COL_HAS_ATTACHMENTS))
		jw_raw(w, "[]", 2);
	else if (write_attachments(db, id, w) < 0)
		return -1;
	jw_key_str(w, "resultStatus", GET(COL_RESULT_STATUS));
	jw_key_stored(w, "result", GET(COL_RESULT));
	jw_key(w, "inputRequest");
	if (GET(COL_IR_ID)) {
		jw_lit(w, "{\"id\":");
		jw_str(w, GET(COL_IR_ID));
		jw_key_str(w, "question", GET(COL_IR_QUESTION));
		jw_key_str(w, "status", GET(COL_IR_STATUS));
		jw_key_int(w, "requestedAt", GETI(COL_IR_AT));
		jw_raw(w, "}", 1);
	} else {
		jw_lit(w, "null");
	}
	jw_key_str(w, "failureReason", GET(COL_FAILURE));
	jw_key_stored(w, "metadata", GET(COL_METADATA));
	if (flags & CASEVIEW_INTERNAL)
		jw_key_str(w, "clientWebhookUrl", GET(COL_WEBHOOK));
	if (flags & CASEVIEW_TRANSCRIPT) {
		char *transcript = NULL;

		if (caseview_transcript(db, id, &transcript) < 0)
			return -1;
		jw_key_str(w, "conversationThread", transcript);
		free(transcript);
	}
	jw_raw(w, "}", 1);
	return 0;
}

int caseview_get_text(struct db *db, const char *case_id, unsigned flags, const char *only_client,
		      struct buf *out, char client_id_r[37])
{
	struct db_arg args[] = { DB_STR(case_id) };
	struct db_res *res = NULL;
	struct jw w = { .b = out, .failed = 0 };
	int rc = -1;

	if (db_query(db, case_sql, args, 1, &res) < 0) {
		log_error("loading case %s: %s", case_id, db_error(db));
		goto out;
	}
	if (db_res_rows(res) == 0) {
		rc = 0;
		goto out;
	}
	snprintf(client_id_r, 37, "%s", GET(COL_CLIENT));
	rc = 1;
	/* Another client's case is not built at all: nothing of it may leak. */
	if (only_client && strcmp(client_id_r, only_client) != 0)
		goto out;
	if (write_case(db, res, flags, &w) < 0) {
		rc = -1;
		goto out;
	}
	if (w.failed) {
		log_error("case %s: its JSON is larger than %zu bytes", case_id, out->max);
		rc = -1;
	}
out:
	db_res_free(&res);
	return rc;
}

int caseview_get(struct db *db, const char *case_id, unsigned flags, json_object **case_r,
		 char client_id_r[37])
{
	struct buf out;
	int rc;

	buf_init(&out, CASEVIEW_MAX_JSON);
	rc = caseview_get_text(db, case_id, flags, NULL, &out, client_id_r);
	if (rc == 1) {
		*case_r = json_tokener_parse(out.data);
		if (!*case_r) {
			log_error("case %s: stored JSON does not parse", case_id);
			rc = -1;
		}
	}
	buf_free(&out);
	return rc;
}
