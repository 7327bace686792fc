/* cases.c: POST /cases, GET /cases, GET /cases/{id}, its attachment links and POST /cases/{id}/input. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/cases.h"
#include "api/committer.h"
#include "api/files.h"
#include "api/http.h"
#include "api/routes.h"
#include "api/validate.h"
#include "common/links.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/attachments.h"
#include "store/case_create.h"
#include "store/case_list.h"
#include "store/caseview.h"
#include "store/db.h"
#include "store/idempotency.h"
#include "store/input.h"
#include "store/types.h"

/* Parses and validates the body as JSON: 0 with *out, or -1 after replying 400. */
static int parse_body_or_reply(struct http_request *r, json_object **out)
{
	char err[512];

	if (validate_parse_json(r->body, r->body_len, out, err, sizeof err) < 0) {
		http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
		return -1;
	}
	return 0;
}

/* Serialises o with object keys sorted, so that equal requests hash equally whatever the
 * key order or spacing the client used. */
static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void canonical_json(json_object *o, struct buf *out)
{
	if (json_object_is_type(o, json_type_object)) {
		size_t n = (size_t)json_object_object_length(o), i = 0;
		const char **keys = xcalloc(n ? n : 1, sizeof *keys);

		json_object_object_foreach(o, k, v)
		{
			(void)v;
			keys[i++] = k;
		}
		qsort(keys, n, sizeof *keys, key_cmp);
		buf_puts(out, "{");
		for (i = 0; i < n; i++) {
			json_object *key = json_object_new_string(keys[i]);

			buf_printf(out, "%s%s:", i ? "," : "",
				   json_object_to_json_string_ext(key, JSON_C_TO_STRING_PLAIN));
			json_object_put(key);
			canonical_json(json_object_object_get(o, keys[i]), out);
		}
		buf_puts(out, "}");
		free(keys);
	} else if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);

		buf_puts(out, "[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				buf_puts(out, ",");
			canonical_json(json_object_array_get_idx(o, i), out);
		}
		buf_puts(out, "]");
	} else {
		buf_puts(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	}
}

/*
 * doc/api.md, "Idempotent creation": reserves the Idempotency-Key for this request, or
 * answers from what an earlier request with the key did (replay, 409, 422). Returns 0 when
 * the key is this request's now, -1 after replying.
 */
static int idempotency_or_reply(struct http_request *r, const char *key, json_object *body)
{
	struct store_idem_result res;
	unsigned char hash[32];
	struct buf canon;
	int rc = -1;

	buf_init(&canon, 4 * VALIDATE_MAX_BODY);
	buf_puts(&canon, "POST /cases\n");
	canonical_json(body, &canon);
	util_sha256(canon.data, canon.len, hash);
	buf_free(&canon);
	if (store_idem_begin(r->t->db, r->client_id, key, hash, r->now_ms, &res) < 0) {
		http_reply_db_error(r, db_error(r->t->db));
		return -1;
	}
	switch (res.outcome) {
	case STORE_IDEM_RESERVED:
		rc = 0;
		break;
	case STORE_IDEM_REUSED:
		http_reply_error(r, 422, "IDEMPOTENCY_KEY_REUSED",
				 "this Idempotency-Key was used with a different request body");
		break;
	case STORE_IDEM_IN_USE:
		http_reply_error(r, 409, "IDEMPOTENCY_KEY_IN_USE",
				 "a request with this Idempotency-Key is in progress; retry");
		break;
	case STORE_IDEM_REPLAY: {
		json_object *stored = json_tokener_parse(res.body);
		json_object *data = NULL;

		if (stored && json_object_object_get_ex(stored, "data", &data))
			http_reply_data(r, res.status, json_object_get(data));
		else
			http_reply_internal(r, "stored idempotent response is unreadable");
		json_object_put(stored);
		break;
	}
	}
	store_idem_result_free(&res);
	return rc;
}

/* The case of a validated body, for the store; its strings stay in in. */
static void case_row(const struct http_request *r, const struct case_input *in,
		     struct store_case_new *row)
{
	util_uuid_v4(row->id);
	row->client_id = r->client_id;
	row->client_reference_id = in->client_reference_id;
	row->channel = in->channel;
	row->max_attempts = in->max_attempts;
	row->follow_up_delay_hours = in->follow_up_delay_hours;
	row->counterparty_address = in->counterparty_address;
	row->goal_json = in->goal_json;
	row->counterparty_json = in->counterparty_json;
	row->persona_json = in->persona_json;
	row->constraints_json = in->constraints_json;
	row->result_schema_json = in->result_schema_json;
	row->metadata_json = in->metadata_json;
	row->client_webhook_url = in->client_webhook_url;
	row->send_window_json = in->send_window_json;
	row->now_ms = r->now_ms;
}

/* The case is written by the process's group committer (committer.c), together with the
 * cases other threads are creating at the same moment; 201 only once it committed. */
void cases_create(struct http_request *r)
{
	const char *idem_key = http_header(r, "HTTP_IDEMPOTENCY_KEY");
	struct store_case_create item;
	struct case_input in = { 0 };
	json_object *body = NULL, *data;
	char err[512], stored_reply[96];
	int64_t cap = r->t->settings->caps[r->plan];

	if (parse_body_or_reply(r, &body) < 0)
		goto out;
	if (validate_case(body, &in, err, sizeof err) < 0) {
		http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
		goto out;
	}
	if (idem_key && !validate_idempotency_key(idem_key)) {
		http_reply_error(r, 400, "INVALID_REQUEST",
				 "idempotency-key: must be 1 to 255 characters of UTF-8, no control characters");
		goto out;
	}
	if (idem_key && idempotency_or_reply(r, idem_key, body) < 0)
		goto out;
	memset(&item, 0, sizeof item);
	case_row(r, &in, &item.row);
	item.cap = cap;
	if (idem_key) {
		/* The envelope a repeat is answered with (doc/api.md, "Idempotent creation"). */
		snprintf(stored_reply, sizeof stored_reply, "{\"ok\":true,\"data\":{\"caseId\":\"%s\"}}",
			 item.row.id);
		item.idem_key = idem_key;
		item.idem_body = stored_reply;
	}
	committer_create(r->t->db, &item);
	switch (item.outcome) {
	case STORE_CASE_CREATE_CREATED:
		data = json_object_new_object();
		json_object_object_add(data, "caseId", json_object_new_string(item.row.id));
		http_reply_data(r, 201, data);
		break;
	case STORE_CASE_CREATE_LIMITED:
		http_reply_error(r, 429, "USAGE_LIMIT_REACHED",
				 "the %s plan allows %lld cases a month; the limit is reached",
				 plans_name(r->plan), (long long)cap);
		break;
	case STORE_CASE_CREATE_SMS_BUSY: {
		char when[32];

		/* The open case's creation time, never its id: it may be another client's. */
		util_iso8601_ms(item.busy_since, when);
		http_reply_error(r, 409, "COUNTERPARTY_BUSY",
				 "counterparty.address: an SMS case to this number is still open "
				 "(created %s, %lld); one SMS case per number at a time", when,
				 (long long)item.busy_since);
		break;
	}
	case STORE_CASE_CREATE_SMS_OPTED_OUT:
		http_reply_error(r, 409, "RECIPIENT_OPTED_OUT",
				 "counterparty.address: this number opted out of SMS (it answered "
				 "STOP); it can opt in again by sending START");
		break;
	case STORE_CASE_CREATE_UNAVAILABLE:
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", "the database is unavailable; retry later");
		break;
	default:
		http_reply_internal(r, "storing the case failed");
		break;
	}
out:
	case_input_free(&in);
	json_object_put(body);
}

#define LIST_DEFAULT 50

/* Every comma-separated item of list is a status: 0 with the bits of store_case_list_query
 * in *mask_r, or -1. */
static int parse_status_list(const char *list, unsigned *mask_r)
{
	char *save = NULL;
	char copy[256];
	unsigned mask = 0;

	snprintf(copy, sizeof copy, "%s", list);
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		enum store_case_status s;

		if (store_case_status_parse(tok, &s) < 0)
			return -1;
		mask |= 1u << s;
	}
	if (!mask)
		return -1;
	*mask_r = mask;
	return 0;
}

/* The cursor is base64url("<updatedAt>.<caseId>") of the last case of the previous page. */
static int parse_cursor(const char *cursor, int64_t *updated_r, char id_r[37])
{
	char b64[128], raw[96], *dot;
	size_t n = strlen(cursor);
	long len;

	if (n == 0 || n > 100)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = cursor[i];

		b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	while (n % 4)
		b64[n++] = '=';
	b64[n] = '\0';
	len = util_base64_decode(b64, raw, sizeof raw - 1);
	if (len < 0)
		return -1;
	raw[len] = '\0';
	if (strlen(raw) != (size_t)len)
		return -1;
	dot = strchr(raw, '.');
	if (!dot)
		return -1;
	*dot = '\0';
	if (util_parse_int64(raw, updated_r) < 0 || !util_uuid_canonical(dot + 1))
		return -1;
	snprintf(id_r, 37, "%s", dot + 1);
	return 0;
}

/* Reads the query of GET /cases into q: 0, or -1 after replying 400. */
static int list_query_or_reply(struct http_request *r, struct store_case_list_query *q,
			       char ref[512], char cursor_id[37])
{
	char status[256] = "", since_s[32] = "", limit_s[32] = "", cursor[256] = "";
	int64_t limit = LIST_DEFAULT;
	int has_status, has_ref, has_since, has_cursor;

	memset(q, 0, sizeof *q);
	q->client_id = r->client_id;
	has_status = http_query_param_all(r->query, "status", status, sizeof status);
	has_ref = http_query_param(r->query, "clientReferenceId", ref, 512);
	has_since = http_query_param(r->query, "updatedSince", since_s, sizeof since_s);
	has_cursor = http_query_param(r->query, "cursor", cursor, sizeof cursor);
	if (has_status < 0 || (has_status > 0 && parse_status_list(status, &q->statuses) < 0)) {
		char list[128];

		store_case_status_list(list, sizeof list);
		http_reply_error(r, 400, "INVALID_REQUEST", "status: must be %s", list);
		return -1;
	}
	if (has_ref < 0 || strlen(ref) > 255) {
		http_reply_error(r, 400, "INVALID_REQUEST", "clientReferenceId: at most 255 characters");
		return -1;
	}
	q->client_reference_id = has_ref > 0 ? ref : NULL;
	q->has_since = has_since > 0;
	if (has_since < 0 ||
	    (has_since > 0 && (util_parse_int64(since_s, &q->updated_since) < 0 ||
			       q->updated_since < 0))) {
		http_reply_error(r, 400, "INVALID_REQUEST", "updatedSince: must be Unix milliseconds");
		return -1;
	}
	switch (http_query_param(r->query, "limit", limit_s, sizeof limit_s)) {
	case 0:
		break;
	case 1:
		if (util_parse_int64(limit_s, &limit) == 0 && limit >= 1 && limit <= STORE_CASE_LIST_MAX)
			break;
		/* fall through */
	default:
		http_reply_error(r, 400, "INVALID_REQUEST", "limit: must be an integer from 1 to %d",
				 STORE_CASE_LIST_MAX);
		return -1;
	}
	q->limit = (size_t)limit;
	if (has_cursor < 0 ||
	    (has_cursor > 0 && parse_cursor(cursor, &q->cursor_updated_at, cursor_id) < 0)) {
		http_reply_error(r, 400, "INVALID_REQUEST",
				 "cursor: must be the nextCursor of a previous page");
		return -1;
	}
	q->has_cursor = has_cursor > 0;
	q->cursor_id = cursor_id;
	return 0;
}

void cases_list(struct http_request *r)
{
	struct store_case_list_query q;
	struct store_case_list_row rows[STORE_CASE_LIST_MAX];
	char ref[512] = "", cursor_id[37] = "";
	json_object *cases = NULL, *data;
	size_t n;
	int more;

	if (list_query_or_reply(r, &q, ref, cursor_id) < 0)
		return;
	if (store_case_list(r->t->db, &q, rows, &n, &more) < 0) {
		http_reply_db_error(r, db_error(r->t->db));
		return;
	}
	cases = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *c = NULL;
		char owner[37];
		int found = caseview_get(r->t->db, rows[i].id, 0, &c, owner);

		if (found < 0) {
			json_object_put(cases);
			http_reply_db_error(r, "loading a listed case failed");
			return;
		}
		/* found == 0: erased (offloadctl case delete) since the list was read. */
		if (found > 0)
			json_object_array_add(cases, c);
	}
	data = json_object_new_object();
	json_object_object_add(data, "cases", cases);
	if (more) {
		char raw[96], enc[160];
		int len = snprintf(raw, sizeof raw, "%lld.%s", (long long)rows[n - 1].updated_at,
				   rows[n - 1].id);

		util_base64url(raw, (size_t)len, enc);
		json_object_object_add(data, "nextCursor", json_object_new_string(enc));
	} else {
		json_object_object_add(data, "nextCursor", NULL);
	}
	http_reply_data(r, 200, data);
}

/*
 * Loads the case named by the first path parameter and checks that it belongs to the
 * caller. Returns 0 with *case_r (when case_r is not NULL), or -1 after replying
 * 404/403/500. A malformed id is simply not found.
 */
static int own_case_or_reply(struct http_request *r, unsigned flags, json_object **case_r)
{
	char owner[37];
	json_object *c = NULL;
	int found;

	if (!util_uuid_canonical(r->params[0])) {
		http_reply_error(r, 404, "CASE_NOT_FOUND", "no case with this id");
		return -1;
	}
	found = caseview_get(r->t->db, r->params[0], flags, &c, owner);
	if (found < 0) {
		http_reply_db_error(r, "loading a case failed");
		return -1;
	}
	if (found == 0) {
		http_reply_error(r, 404, "CASE_NOT_FOUND", "no case with this id");
		return -1;
	}
	if (strcmp(owner, r->client_id) != 0) {
		json_object_put(c);
		http_reply_error(r, 403, "FORBIDDEN", "this case belongs to another client");
		return -1;
	}
	if (case_r)
		*case_r = c;
	else
		json_object_put(c);
	return 0;
}

/* doc/api.md, "GET /cases/{caseId}": the value trimmed and lower-cased must equal "true". */
static int wants_transcript(const char *query)
{
	char v[64];
	const char *t;
	size_t len;

	if (http_query_param(query, "includeTranscript", v, sizeof v) != 1)
		return 0;
	util_trim(v, strlen(v), &t, &len);
	return len == 4 && strncasecmp(t, "true", 4) == 0;
}

/* The hot read: the key came from the per-process cache, so this is one statement (the case
 * with its input request) plus one for the attachments when the case has any. */
void cases_get(struct http_request *r)
{
	unsigned flags = wants_transcript(r->query) ? CASEVIEW_TRANSCRIPT : 0;
	struct buf out;
	char owner[37];
	int found;

	buf_init(&out, CASEVIEW_MAX_JSON);
	/* A malformed id cannot match: simply not found. */
	found = util_uuid_canonical(r->params[0])
			? caseview_get_text(r->t->db, r->params[0], flags, r->client_id, &out, owner)
			: 0;
	if (found >= 0 && routes_key_recheck_or_reply(r) < 0)
		goto out;
	if (found < 0)
		http_reply_db_error(r, "loading a case failed");
	else if (found == 0)
		http_reply_error(r, 404, "CASE_NOT_FOUND", "no case with this id");
	else if (strcmp(owner, r->client_id) != 0)
		http_reply_error(r, 403, "FORBIDDEN", "this case belongs to another client");
	else
		http_reply_data_text(r, 200, out.data, out.len);
out:
	buf_free(&out);
}

void cases_attachment(struct http_request *r)
{
	const struct api_settings *s = r->t->settings;
	struct store_attachment *att = NULL;
	const char *err = NULL;
	json_object *a;
	char sig[LINKS_SIG_SIZE], when[32];
	int64_t expires_s;
	char *url;
	int found;

	if (own_case_or_reply(r, 0, NULL) < 0)
		return;
	if (!util_uuid_canonical(r->params[1])) {
		http_reply_error(r, 404, "ATTACHMENT_NOT_FOUND", "no attachment with this id in this case");
		return;
	}
	att = xmalloc(sizeof *att);
	found = store_attachment_get(r->t->db, r->params[1], att, &err);
	if (found < 0) {
		http_reply_db_error(r, err);
		goto out;
	}
	if (found == 0 || strcmp(att->case_id, r->params[0]) != 0) {
		http_reply_error(r, 404, "ATTACHMENT_NOT_FOUND", "no attachment with this id in this case");
		goto out;
	}
	if (files_key_or_reply(r) < 0)
		goto out;
	a = caseview_attachment_json(att->id, att->name, att->size, att->content_type,
				     att->message_id, att->inbox_id, att->received_at);
	expires_s = r->now_ms / 1000 + s->url_ttl_s;
	links_sign(r->t->files_key, r->t->files_key_len, r->params[1], expires_s, sig);
	url = xasprintf("%s/files/%s?expires=%lld&sig=%s", s->public_base_url, r->params[1],
			(long long)expires_s, sig);
	util_iso8601_ms(expires_s * 1000, when);
	json_object_object_add(a, "downloadUrl", json_object_new_string(url));
	json_object_object_add(a, "expiresAt", json_object_new_string(when));
	free(url);
	http_reply_data(r, 200, a);
out:
	free(att);
}

void cases_input(struct http_request *r)
{
	struct db *db = r->t->db;
	struct store_input_answer a;
	enum store_input_outcome outcome;
	enum store_case_status status;
	struct input_input in = { 0 };
	json_object *body = NULL, *payload = NULL, *data;
	char err[512];

	if (parse_body_or_reply(r, &body) < 0)
		goto out;
	if (validate_input(body, &in, err, sizeof err) < 0) {
		http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
		goto out;
	}
	if (!util_uuid_canonical(r->params[0])) {
		http_reply_error(r, 404, "CASE_NOT_FOUND", "no case with this id");
		goto out;
	}
	payload = json_object_new_object();
	json_object_object_add(payload, "inputRequestId", json_object_new_string(in.input_request_id));
	if (in.decision_json)
		json_object_object_add(payload, "decision", json_tokener_parse(in.decision_json));
	a = (struct store_input_answer){
		.case_id = r->params[0],
		.client_id = r->client_id,
		.input_request_id = in.input_request_id,
		.answer = in.provided_context,
		.decision_json = in.decision_json,
		.event_payload = json_object_to_json_string_ext(payload, JSON_C_TO_STRING_PLAIN),
		.now_ms = r->now_ms,
	};
	if (store_input_provide(db, &a, &outcome, &status) < 0) {
		http_reply_db_error(r, db_error(db));
		goto out;
	}
	switch (outcome) {
	case STORE_INPUT_ACCEPTED:
		data = json_object_new_object();
		json_object_object_add(data, "caseId", json_object_new_string(r->params[0]));
		json_object_object_add(data, "inputRequestId",
				       json_object_new_string(in.input_request_id));
		json_object_object_add(data, "accepted", json_object_new_boolean(1));
		http_reply_data(r, 202, data);
		break;
	case STORE_INPUT_NO_CASE:
		http_reply_error(r, 404, "CASE_NOT_FOUND", "no case with this id");
		break;
	case STORE_INPUT_OTHER_CLIENT:
		http_reply_error(r, 403, "FORBIDDEN", "this case belongs to another client");
		break;
	case STORE_INPUT_NOT_WAITING:
		http_reply_error(r, 409, "CASE_NOT_WAITING_FOR_INPUT",
				 "the case is %s, not INPUT_NEEDED", store_case_status_name(status));
		break;
	case STORE_INPUT_MISMATCH:
		http_reply_error(r, 409, "INPUT_REQUEST_MISMATCH",
				 "inputRequestId does not name the case's current input request");
		break;
	case STORE_INPUT_NOT_PENDING:
		http_reply_error(r, 409, "INPUT_REQUEST_NOT_PENDING",
				 "this input request was already answered");
		break;
	}
out:
	input_input_free(&in);
	json_object_put(payload);
	json_object_put(body);
}
