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
	" EXISTS (SELECT 1 FROM attachments a WHERE a.case_id = c.id)"

static const char case_sql[] =
	"SELECT " CASE_COLUMNS
	" FROM cases c LEFT JOIN input_requests r ON r.id = c.input_request_id WHERE c.id = ?";

/* The API key, its client's plan and the case together: GET /cases/{id} in one statement. */
static const char keyed_case_sql[] =
	"SELECT k.client_id, k.active, cl.plan, " CASE_COLUMNS
	" FROM api_keys k JOIN clients cl ON cl.id = k.client_id"
	" LEFT JOIN cases c ON c.id = ?"
	" LEFT JOIN input_requests r ON r.id = c.input_request_id"
	" WHERE k.key_hash = ?";

enum {
	COL_ID, COL_CLIENT, COL_REF, COL_STATUS, COL_CHANNEL, COL_CREATED, COL_UPDATED,
	COL_NEXT, COL_ATTEMPTS, COL_MAX_ATTEMPTS, COL_DELAY, COL_GOAL, COL_COUNTERPARTY,
	COL_PERSONA, COL_CONSTRAINTS, COL_SCHEMA, COL_METADATA, COL_RESULT_STATUS, COL_RESULT,
	COL_FAILURE, COL_WEBHOOK, COL_IR_ID, COL_IR_QUESTION, COL_IR_STATUS, COL_IR_AT,
	COL_HAS_ATTACHMENTS,
};

/* Stored JSON was validated on the way in; a NULL here means a damaged row, shown as null. */
static json_object *parse_stored(const char *text)
{
	return text ? json_tokener_parse(text) : NULL;
}

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
		"SELECT created_at, direction, from_addr, to_addr, subject, body_text"
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

		util_iso8601_ms(db_res_int(res, i, 0), when);
		if (buf_printf(&out, "%s--- %s %s ---\nFrom: %s\nTo: %s\nSubject: %s\n\n%s",
			       i ? "\n\n" : "", when, db_res_get(res, i, 1), db_res_get(res, i, 2),
			       db_res_get(res, i, 3), db_res_get(res, i, 4),
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

/* A column of the row at offset base (the keyed query has three columns in front). */
#define GET(col) db_res_get(res, 0, base + (col))
#define GETI(col) db_res_int(res, 0, base + (col))

/* Builds the case object from the row; consumes atts; transcript may be NULL. */
static json_object *build_case(const struct db_res *res, size_t base, unsigned flags,
			       json_object *atts, const char *transcript)
{
	json_object *c = json_object_new_object();

	add_str(c, "caseId", GET(COL_ID));
	if (flags & CASEVIEW_INTERNAL)
		add_str(c, "clientId", GET(COL_CLIENT));
	if (GET(COL_REF))
		add_str(c, "clientReferenceId", GET(COL_REF));
	add_str(c, "status", GET(COL_STATUS));
	add_str(c, "channel", GET(COL_CHANNEL));
	add_int(c, "createdAt", GETI(COL_CREATED));
	add_int(c, "updatedAt", GETI(COL_UPDATED));
	add_int(c, "nextActionAt", GETI(COL_NEXT));
	add_int(c, "attemptCount", GETI(COL_ATTEMPTS));
	add_int(c, "maxAttempts", GETI(COL_MAX_ATTEMPTS));
	add_int(c, "followUpDelayHours", GETI(COL_DELAY));
	json_object_object_add(c, "goal", parse_stored(GET(COL_GOAL)));
	json_object_object_add(c, "counterparty", parse_stored(GET(COL_COUNTERPARTY)));
	json_object_object_add(c, "senderPersona", parse_stored(GET(COL_PERSONA)));
	if (GET(COL_CONSTRAINTS))
		json_object_object_add(c, "constraints", parse_stored(GET(COL_CONSTRAINTS)));
	if (GET(COL_SCHEMA))
		json_object_object_add(c, "resultSchema", parse_stored(GET(COL_SCHEMA)));
	json_object_object_add(c, "attachments", atts ? atts : json_object_new_array());
	add_str(c, "resultStatus", GET(COL_RESULT_STATUS));
	json_object_object_add(c, "result", parse_stored(GET(COL_RESULT)));
	if (GET(COL_IR_ID)) {
		json_object *ir = json_object_new_object();

		add_str(ir, "id", GET(COL_IR_ID));
		add_str(ir, "question", GET(COL_IR_QUESTION));
		add_str(ir, "status", GET(COL_IR_STATUS));
		add_int(ir, "requestedAt", GETI(COL_IR_AT));
		json_object_object_add(c, "inputRequest", ir);
	} else {
		json_object_object_add(c, "inputRequest", NULL);
	}
	add_str(c, "failureReason", GET(COL_FAILURE));
	json_object_object_add(c, "metadata", parse_stored(GET(COL_METADATA)));
	if (flags & CASEVIEW_INTERNAL)
		add_str(c, "clientWebhookUrl", GET(COL_WEBHOOK));
	if (flags & CASEVIEW_TRANSCRIPT)
		add_str(c, "conversationThread", transcript ? transcript : "");
	return c;
}

int caseview_get(struct db *db, const char *case_id, unsigned flags, json_object **case_r,
		 char client_id_r[37])
{
	struct db_arg args[] = { DB_STR(case_id) };
	struct db_res *res = NULL;
	json_object *atts = NULL;
	char *transcript = NULL;
	size_t base = 0;
	int rc = -1;

	if (db_query(db, case_sql, args, 1, &res) < 0) {
		log_error("loading case %s: %s", case_id, db_error(db));
		goto out;
	}
	if (db_res_rows(res) == 0) {
		rc = 0;
		goto out;
	}
	if (GETI(COL_HAS_ATTACHMENTS) && caseview_attachments(db, case_id, &atts) < 0)
		goto out;
	if ((flags & CASEVIEW_TRANSCRIPT) && caseview_transcript(db, case_id, &transcript) < 0)
		goto out;
	snprintf(client_id_r, 37, "%s", GET(COL_CLIENT));
	*case_r = build_case(res, base, flags, atts, transcript);
	atts = NULL;
	rc = 1;
out:
	json_object_put(atts);
	free(transcript);
	db_res_free(&res);
	return rc;
}

int caseview_get_keyed(struct db *db, const unsigned char key_hash[32], const char *case_id,
		       unsigned flags, struct caseview_key *key_r, json_object **case_r)
{
	struct db_arg args[] = { DB_STR(case_id), DB_BLOB(key_hash, 32) };
	struct db_res *res = NULL;
	json_object *atts = NULL;
	char *transcript = NULL;
	size_t base = 3;
	int rc = -1;

	*case_r = NULL;
	memset(key_r, 0, sizeof *key_r);
	if (db_query(db, keyed_case_sql, args, 2, &res) < 0) {
		log_error("loading case %s: %s", case_id, db_error(db));
		goto out;
	}
	if (db_res_rows(res) == 0) {
		rc = 0;
		goto out;
	}
	snprintf(key_r->client_id, sizeof key_r->client_id, "%s", db_res_get(res, 0, 0));
	key_r->active = db_res_int(res, 0, 1) == 1;
	snprintf(key_r->plan, sizeof key_r->plan, "%s", db_res_get(res, 0, 2));
	rc = 1;
	if (!key_r->active || !GET(COL_ID))
		goto out;
	snprintf(key_r->case_client_id, sizeof key_r->case_client_id, "%s", GET(COL_CLIENT));
	/* Another client's case is not built at all: nothing of it may leak. */
	if (strcmp(key_r->case_client_id, key_r->client_id) != 0)
		goto out;
	if ((GETI(COL_HAS_ATTACHMENTS) && caseview_attachments(db, case_id, &atts) < 0) ||
	    ((flags & CASEVIEW_TRANSCRIPT) && caseview_transcript(db, case_id, &transcript) < 0)) {
		rc = -1;
		goto out;
	}
	*case_r = build_case(res, base, flags, atts, transcript);
	atts = NULL;
out:
	json_object_put(atts);
	free(transcript);
	db_res_free(&res);
	return rc;
}
