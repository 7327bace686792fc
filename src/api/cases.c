/* cases.c: POST /cases, GET /cases/{id}, its attachment links and POST /cases/{id}/input. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/cases.h"
#include "api/files.h"
#include "api/http.h"
#include "api/routes.h"
#include "api/validate.h"
#include "common/links.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/attachments.h"
#include "store/caseview.h"
#include "store/db.h"

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

/*
 * SPEC §7: refuse when the cases created this UTC month, or the billable cases finished
 * this month, have reached the plan's cap. Runs inside the creating transaction after
 * locking the client row, so concurrent creations of one client count one after another.
 * Returns 1 when under the cap, 0 when at it, -1 on a database error.
 */
static int under_cap(struct http_request *r, int64_t cap)
{
	static const char lock_sql[] = "SELECT id FROM clients WHERE id = ? FOR UPDATE";
	static const char created_sql[] =
		"SELECT COUNT(*) FROM cases WHERE client_id = ? AND created_at >= ? AND created_at < ?";
	/* Billable: COMPLETED, and FAILED unless the mail system refused or reported it. */
	static const char finished_sql[] =
		"SELECT COUNT(*) FROM cases WHERE client_id = ? AND finished_at >= ?"
		" AND finished_at < ? AND (status = 'COMPLETED' OR (status = 'FAILED' AND"
		" (result_status IS NULL OR result_status NOT IN ('BOUNCED','REJECTED','COMPLAINED'))))";
	struct db *db = r->t->db;
	struct db_res *res = NULL;
	int64_t start, end;
	struct db_arg args[3];

	plans_month_bounds(r->now_ms, &start, &end);
	args[0] = DB_STR(r->client_id);
	args[1] = DB_INT(start);
	args[2] = DB_INT(end);
	if (db_query(db, lock_sql, args, 1, &res) < 0)
		return -1;
	db_res_free(&res);
	if (db_query(db, created_sql, args, 3, &res) < 0)
		return -1;
	if (db_res_int(res, 0, 0) >= cap) {
		db_res_free(&res);
		return 0;
	}
	db_res_free(&res);
	if (db_query(db, finished_sql, args, 3, &res) < 0)
		return -1;
	if (db_res_int(res, 0, 0) >= cap) {
		db_res_free(&res);
		return 0;
	}
	db_res_free(&res);
	return 1;
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

/* How long an Idempotency-Key is remembered, and how long an unfinished one blocks. */
#define IDEM_KEEP_MS (24LL * 3600 * 1000)
#define IDEM_STALE_MS (60LL * 1000)

enum idem_state {
	IDEM_NONE,    /* no header: create as usual */
	IDEM_NEW,     /* the key is ours now: create, then record the response */
	IDEM_REPLIED, /* a reply was sent (replay, 409, 422, 400 or 500) */
};

/*
 * SPEC §3 [beyond]: reserves the Idempotency-Key for this request, or answers from what an
 * earlier request with the key did. The reservation commits on its own, so a concurrent
 * repeat sees it and gets 409 IDEMPOTENCY_KEY_IN_USE.
 */
static enum idem_state idempotency_begin(struct http_request *r, const char *key,
					 const unsigned char hash[32])
{
	static const char reserve[] =
		"INSERT INTO idempotency_keys (client_id, idem_key, request_hash, state, created_at)"
		" VALUES (?, ?, ?, 'in_flight', ?)";
	static const char load[] =
		"SELECT request_hash, state, response_status, response_body, created_at"
		" FROM idempotency_keys WHERE client_id = ? AND idem_key = ? FOR UPDATE";
	static const char take_over[] =
		"UPDATE idempotency_keys SET request_hash = ?, state = 'in_flight', response_status = NULL,"
		" response_body = NULL, created_at = ? WHERE client_id = ? AND idem_key = ?";
	struct db *db = r->t->db;
	struct db_arg ins[] = { DB_STR(r->client_id), DB_STR(key), DB_BLOB(hash, 32),
				DB_INT(r->now_ms) };
	struct db_arg sel[] = { DB_STR(r->client_id), DB_STR(key) };
	struct db_arg upd[] = { DB_BLOB(hash, 32), DB_INT(r->now_ms), DB_STR(r->client_id),
				DB_STR(key) };
	struct db_res *res = NULL;
	enum idem_state st = IDEM_REPLIED;
	int64_t created;
	const char *state;

	if (db_query(db, reserve, ins, 4, NULL) == 0)
		return IDEM_NEW;
	if (db_errno(db) != DB_ER_DUP_ENTRY) {
		http_reply_internal(r, db_error(db));
		return IDEM_REPLIED;
	}
	if (db_begin(db) < 0 || db_query(db, load, sel, 2, &res) < 0) {
		db_rollback(db);
		http_reply_internal(r, db_error(db));
		return IDEM_REPLIED;
	}
	if (db_res_rows(res) == 0) {
		/* Purged between the two statements: a fresh request. */
		db_res_free(&res);
		db_rollback(db);
		http_reply_error(r, 409, "IDEMPOTENCY_KEY_IN_USE",
				 "a request with this Idempotency-Key is in progress; retry");
		return IDEM_REPLIED;
	}
	state = db_res_get(res, 0, 1);
	created = db_res_int(res, 0, 4);
	if (created + IDEM_KEEP_MS <= r->now_ms ||
	    (strcmp(state, "in_flight") == 0 && created + IDEM_STALE_MS <= r->now_ms)) {
		/* Expired, or abandoned by a request that died: this request takes the key. */
		if (db_query(db, take_over, upd, 4, NULL) < 0 || db_commit(db) < 0) {
			db_rollback(db);
			http_reply_internal(r, db_error(db));
		} else {
			st = IDEM_NEW;
		}
		db_res_free(&res);
		return st;
	}
	if (db_res_len(res, 0, 0) != 32 || !util_mem_equal(db_res_get(res, 0, 0), hash, 32)) {
		http_reply_error(r, 422, "IDEMPOTENCY_KEY_REUSED",
				 "this Idempotency-Key was used with a different request body");
	} else if (strcmp(state, "done") != 0) {
		http_reply_error(r, 409, "IDEMPOTENCY_KEY_IN_USE",
				 "a request with this Idempotency-Key is in progress; retry");
	} else {
		json_object *body = json_tokener_parse(db_res_get(res, 0, 3));
		json_object *data = NULL;

		if (body && json_object_object_get_ex(body, "data", &data)) {
			http_reply_data(r, (int)db_res_int(res, 0, 2), json_object_get(data));
		} else {
			http_reply_internal(r, "stored idempotent response is unreadable");
		}
		json_object_put(body);
	}
	db_res_free(&res);
	db_rollback(db);
	return IDEM_REPLIED;
}

/* Forgets the reservation when no case was created, so that the client may retry. */
static void idempotency_abandon(struct http_request *r, const char *key)
{
	static const char sql[] =
		"DELETE FROM idempotency_keys WHERE client_id = ? AND idem_key = ? AND state = 'in_flight'";
	struct db_arg args[] = { DB_STR(r->client_id), DB_STR(key) };

	if (db_query(r->t->db, sql, args, 2, NULL) < 0)
		log_warn("forgetting Idempotency-Key: %s", db_error(r->t->db));
}

void cases_create(struct http_request *r)
{
	static const char idem_done[] =
		"UPDATE idempotency_keys SET state = 'done', response_status = 201, response_body = ?"
		" WHERE client_id = ? AND idem_key = ?";
	const char *idem_key = http_header(r, "HTTP_IDEMPOTENCY_KEY");
	enum idem_state idem = IDEM_NONE;
	char *stored_reply = NULL;
	static const char insert_case[] =
		"INSERT INTO cases (id, client_id, client_reference_id, status, channel, created_at,"
		" updated_at, next_action_at, attempt_count, max_attempts, follow_up_delay_hours,"
		" counterparty_address, goal, counterparty, sender_persona, constraints_json,"
		" result_schema, metadata, client_webhook_url)"
		" VALUES (?, ?, ?, 'CREATED', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	static const char insert_event[] =
		"INSERT INTO events (case_id, type, state, available_at, created_at)"
		" VALUES (?, 'CASE_CREATED', 'pending', ?, ?)";
	struct db *db = r->t->db;
	struct case_input in;
	json_object *body = NULL, *data;
	char err[512], case_id[37];
	int64_t cap = r->t->settings->caps[r->plan];
	int have_input = 0;

	if (parse_body_or_reply(r, &body) < 0)
		goto out;
	if (validate_case(body, &in, err, sizeof err) < 0) {
		http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
		goto out;
	}
	have_input = 1;
	util_uuid_v4(case_id);
	if (idem_key) {
		unsigned char hash[32];
		struct buf canon;

		if (!*idem_key || strlen(idem_key) > 255) {
			http_reply_error(r, 400, "INVALID_REQUEST",
					 "idempotency-key: must be 1 to 255 characters");
			goto out;
		}
		buf_init(&canon, 4 * VALIDATE_MAX_BODY);
		buf_puts(&canon, "POST /cases\n");
		canonical_json(body, &canon);
		util_sha256(canon.data, canon.len, hash);
		buf_free(&canon);
		idem = idempotency_begin(r, idem_key, hash);
		if (idem == IDEM_REPLIED)
			goto out;
	}
	{
		json_object *env = json_object_new_object(), *d = json_object_new_object();

		json_object_object_add(d, "caseId", json_object_new_string(case_id));
		json_object_object_add(env, "ok", json_object_new_boolean(1));
		json_object_object_add(env, "data", d);
		stored_reply = xstrdup(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
		json_object_put(env);
	}

	for (int attempt = 0; attempt < 3; attempt++) {
		struct db_arg cargs[] = {
			DB_STR(case_id), DB_STR(r->client_id), DB_STR(in.client_reference_id),
			DB_STR(in.channel), DB_INT(r->now_ms), DB_INT(r->now_ms),
			DB_INT(OFFLOAD_NEVER_MS), DB_INT(in.max_attempts),
			DB_INT(in.follow_up_delay_hours), DB_STR(in.counterparty_address),
			DB_STR(in.goal_json), DB_STR(in.counterparty_json), DB_STR(in.persona_json),
			DB_STR(in.constraints_json), DB_STR(in.result_schema_json),
			DB_STR(in.metadata_json), DB_STR(in.client_webhook_url),
		};
		struct db_arg eargs[] = { DB_STR(case_id), DB_INT(r->now_ms), DB_INT(r->now_ms) };
		struct db_arg iargs[] = { DB_STR(stored_reply), DB_STR(r->client_id), DB_STR(idem_key) };
		int ok;

		if (db_begin(db) < 0)
			break;
		if (cap >= 0) {
			ok = under_cap(r, cap);
			if (ok == 0) {
				db_rollback(db);
				if (idem == IDEM_NEW)
					idempotency_abandon(r, idem_key);
				http_reply_error(r, 429, "USAGE_LIMIT_REACHED",
						 "the %s plan allows %lld cases a month; the limit is reached",
						 plans_name(r->plan), (long long)cap);
				goto out;
			}
			if (ok < 0)
				goto failed;
		}
		/* The case, its first event and the remembered response commit together. */
		if (db_query(db, insert_case, cargs, sizeof cargs / sizeof cargs[0], NULL) < 0 ||
		    db_query(db, insert_event, eargs, 3, NULL) < 0 ||
		    (idem == IDEM_NEW && db_query(db, idem_done, iargs, 3, NULL) < 0) ||
		    db_commit(db) < 0)
			goto failed;
		data = json_object_new_object();
		json_object_object_add(data, "caseId", json_object_new_string(case_id));
		http_reply_data(r, 201, data);
		goto out;
failed:
		db_rollback(db);
		/* A deadlock rolls the whole transaction back: retrying it is the documented fix. */
		if (db_errno(db) != DB_ER_LOCK_DEADLOCK)
			break;
	}
	if (idem == IDEM_NEW)
		idempotency_abandon(r, idem_key);
	http_reply_internal(r, db_error(db));
out:
	free(stored_reply);
	if (have_input)
		case_input_free(&in);
	json_object_put(body);
}

#define LIST_MAX 200
#define LIST_DEFAULT 50

static const char *const statuses[] = { "CREATED", "RUNNING", "INPUT_NEEDED", "COMPLETED", "FAILED" };

/* Every comma-separated item of list is a status. */
static int valid_status_list(char *list)
{
	char *save = NULL;
	char copy[256];

	snprintf(copy, sizeof copy, "%s", list);
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int ok = 0;

		for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
			ok |= strcmp(tok, statuses[i]) == 0;
		if (!ok)
			return 0;
	}
	return list[0] != '\0';
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
	if (util_parse_int64(raw, updated_r) < 0 || !util_uuid_valid(dot + 1))
		return -1;
	snprintf(id_r, 37, "%s", dot + 1);
	return 0;
}

void cases_list(struct http_request *r)
{
	static const char sql[] =
		"SELECT id, updated_at FROM cases WHERE client_id = ?"
		" AND (? IS NULL OR FIND_IN_SET(status, ?) > 0)"
		" AND (? IS NULL OR client_reference_id = ?)"
		" AND (? IS NULL OR updated_at >= ?)"
		" AND (? IS NULL OR updated_at < ? OR (updated_at = ? AND id < ?))"
		" ORDER BY updated_at DESC, id DESC LIMIT ?";
	char status[256] = "", ref[512] = "", since_s[32] = "", limit_s[32] = "", cursor[256] = "",
	     cursor_id[37] = "";
	int64_t since = 0, limit = LIST_DEFAULT, cur_updated = 0;
	int has_status, has_ref, has_since, has_cursor;
	struct db_res *res = NULL;
	json_object *cases = NULL, *data;
	size_t rows;

	has_status = http_query_param_all(r->query, "status", status, sizeof status);
	has_ref = http_query_param(r->query, "clientReferenceId", ref, sizeof ref);
	has_since = http_query_param(r->query, "updatedSince", since_s, sizeof since_s);
	has_cursor = http_query_param(r->query, "cursor", cursor, sizeof cursor);
	if (has_status < 0 || (has_status > 0 && !valid_status_list(status))) {
		http_reply_error(r, 400, "INVALID_REQUEST",
				 "status: must be CREATED, RUNNING, INPUT_NEEDED, COMPLETED or FAILED");
		return;
	}
	if (has_ref < 0 || strlen(ref) > 255) {
		http_reply_error(r, 400, "INVALID_REQUEST", "clientReferenceId: at most 255 characters");
		return;
	}
	if (has_since < 0 || (has_since > 0 && (util_parse_int64(since_s, &since) < 0 || since < 0))) {
		http_reply_error(r, 400, "INVALID_REQUEST", "updatedSince: must be Unix milliseconds");
		return;
	}
	switch (http_query_param(r->query, "limit", limit_s, sizeof limit_s)) {
	case 0:
		break;
	case 1:
		if (util_parse_int64(limit_s, &limit) == 0 && limit >= 1 && limit <= LIST_MAX)
			break;
		/* fall through */
	default:
		http_reply_error(r, 400, "INVALID_REQUEST", "limit: must be an integer from 1 to %d",
				 LIST_MAX);
		return;
	}
	if (has_cursor < 0 || (has_cursor > 0 && parse_cursor(cursor, &cur_updated, cursor_id) < 0)) {
		http_reply_error(r, 400, "INVALID_REQUEST",
				 "cursor: must be the nextCursor of a previous page");
		return;
	}
	{
		struct db_arg args[] = {
			DB_STR(r->client_id),
			has_status > 0 ? DB_STR(status) : DB_NULL, DB_STR(status),
			has_ref > 0 ? DB_STR(ref) : DB_NULL, DB_STR(ref),
			has_since > 0 ? DB_INT(since) : DB_NULL, DB_INT(since),
			has_cursor > 0 ? DB_INT(cur_updated) : DB_NULL, DB_INT(cur_updated),
			DB_INT(cur_updated), DB_STR(cursor_id),
			DB_INT(limit + 1),
		};

		if (db_query(r->t->db, sql, args, sizeof args / sizeof args[0], &res) < 0) {
			http_reply_internal(r, db_error(r->t->db));
			return;
		}
	}
	rows = db_res_rows(res);
	cases = json_object_new_array();
	for (size_t i = 0; i < rows && i < (size_t)limit; i++) {
		json_object *c = NULL;
		char owner[37];

		if (caseview_get(r->t->db, db_res_get(res, i, 0), 0, &c, owner) != 1) {
			json_object_put(cases);
			db_res_free(&res);
			http_reply_internal(r, "loading a listed case failed");
			return;
		}
		json_object_array_add(cases, c);
	}
	data = json_object_new_object();
	json_object_object_add(data, "cases", cases);
	if (rows > (size_t)limit) {
		char raw[96], enc[160];
		int n = snprintf(raw, sizeof raw, "%s.%s", db_res_get(res, (size_t)limit - 1, 1),
				 db_res_get(res, (size_t)limit - 1, 0));

		util_base64url(raw, (size_t)n, enc);
		json_object_object_add(data, "nextCursor", json_object_new_string(enc));
	} else {
		json_object_object_add(data, "nextCursor", NULL);
	}
	db_res_free(&res);
	http_reply_data(r, 200, data);
}

/*
 * Loads the case named by the first path parameter and checks that it belongs to the
 * caller. Returns 1 with *case_r (when case_r is not NULL), or -1 after replying
 * 404/403/500. A malformed id is simply not found.
 */
static int own_case_or_reply(struct http_request *r, unsigned flags, json_object **case_r)
{
	char owner[37];
	json_object *c = NULL;
	int found;

	if (!util_uuid_valid(r->params[0])) {
		http_reply_error(r, 404, "CASE_NOT_FOUND", "no case with this id");
		return -1;
	}
	found = caseview_get(r->t->db, r->params[0], flags, &c, owner);
	if (found < 0) {
		http_reply_internal(r, "loading a case failed");
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
	return 1;
}

/* SPEC §3: the value trimmed and lower-cased must equal "true". */
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
	found = util_uuid_valid(r->params[0])
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
	if (!util_uuid_valid(r->params[1])) {
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
	static const char lock_case[] =
		"SELECT client_id, status, input_request_id FROM cases WHERE id = ? FOR UPDATE";
	static const char load_request[] =
		"SELECT status FROM input_requests WHERE id = ? AND case_id = ?";
	static const char resolve[] =
		"UPDATE input_requests SET status = 'RESOLVED', resolved_at = ?, answer = ?,"
		" decision = ? WHERE id = ? AND status = 'PENDING'";
	static const char touch_case[] =
		"UPDATE cases SET updated_at = ?, version = version + 1 WHERE id = ?";
	static const char insert_event[] =
		"INSERT INTO events (case_id, type, payload, state, available_at, created_at)"
		" VALUES (?, 'INPUT_PROVIDED', ?, 'pending', ?, ?)";
	struct db *db = r->t->db;
	struct input_input in;
	struct db_res *res = NULL;
	json_object *body = NULL, *payload = NULL, *data;
	char err[512];
	int have_input = 0;

	if (parse_body_or_reply(r, &body) < 0)
		goto out;
	if (validate_input(body, &in, err, sizeof err) < 0) {
		http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
		goto out;
	}
	have_input = 1;
	if (!util_uuid_valid(r->params[0])) {
		http_reply_error(r, 404, "CASE_NOT_FOUND", "no case with this id");
		goto out;
	}
	payload = json_object_new_object();
	json_object_object_add(payload, "inputRequestId", json_object_new_string(in.input_request_id));
	if (in.decision_json)
		json_object_object_add(payload, "decision", json_tokener_parse(in.decision_json));

	for (int attempt = 0; attempt < 3; attempt++) {
		struct db_arg case_arg[] = { DB_STR(r->params[0]) };
		struct db_arg req_args[] = { DB_STR(in.input_request_id), DB_STR(r->params[0]) };
		struct db_arg resolve_args[] = { DB_INT(r->now_ms), DB_STR(in.provided_context),
						 DB_STR(in.decision_json), DB_STR(in.input_request_id) };
		struct db_arg touch_args[] = { DB_INT(r->now_ms), DB_STR(r->params[0]) };
		struct db_arg event_args[] = {
			DB_STR(r->params[0]),
			DB_STR(json_object_to_json_string_ext(payload, JSON_C_TO_STRING_PLAIN)),
			DB_INT(r->now_ms), DB_INT(r->now_ms),
		};
		const char *current;

		/* The case row lock orders concurrent answers: the second sees RESOLVED. */
		if (db_begin(db) < 0 || db_query(db, lock_case, case_arg, 1, &res) < 0)
			goto failed;
		if (db_res_rows(res) == 0) {
			db_rollback(db);
			http_reply_error(r, 404, "CASE_NOT_FOUND", "no case with this id");
			goto out;
		}
		if (strcmp(db_res_get(res, 0, 0), r->client_id) != 0) {
			db_rollback(db);
			http_reply_error(r, 403, "FORBIDDEN", "this case belongs to another client");
			goto out;
		}
		if (strcmp(db_res_get(res, 0, 1), "INPUT_NEEDED") != 0) {
			db_rollback(db);
			http_reply_error(r, 409, "CASE_NOT_WAITING_FOR_INPUT",
					 "the case is %s, not INPUT_NEEDED", db_res_get(res, 0, 1));
			goto out;
		}
		current = db_res_get(res, 0, 2);
		if (!current || strcmp(current, in.input_request_id) != 0) {
			db_rollback(db);
			http_reply_error(r, 409, "INPUT_REQUEST_MISMATCH",
					 "inputRequestId does not name the case's current input request");
			goto out;
		}
		db_res_free(&res);
		if (db_query(db, load_request, req_args, 2, &res) < 0)
			goto failed;
		if (db_res_rows(res) == 0 || strcmp(db_res_get(res, 0, 0), "PENDING") != 0) {
			db_rollback(db);
			http_reply_error(r, 409, "INPUT_REQUEST_NOT_PENDING",
					 "this input request was already answered");
			goto out;
		}
		db_res_free(&res);
		if (db_query(db, resolve, resolve_args, 4, NULL) < 0)
			goto failed;
		if (db_affected_rows(db) != 1) {
			db_rollback(db);
			http_reply_error(r, 409, "INPUT_REQUEST_NOT_PENDING",
					 "this input request was already answered");
			goto out;
		}
		if (db_query(db, touch_case, touch_args, 2, NULL) < 0 ||
		    db_query(db, insert_event, event_args, 4, NULL) < 0 || db_commit(db) < 0)
			goto failed;
		data = json_object_new_object();
		json_object_object_add(data, "caseId", json_object_new_string(r->params[0]));
		json_object_object_add(data, "inputRequestId",
				       json_object_new_string(in.input_request_id));
		json_object_object_add(data, "accepted", json_object_new_boolean(1));
		http_reply_data(r, 202, data);
		goto out;
failed:
		db_res_free(&res);
		db_rollback(db);
		if (db_errno(db) != DB_ER_LOCK_DEADLOCK)
			break;
	}
	http_reply_internal(r, db_error(db));
out:
	db_res_free(&res);
	if (have_input)
		input_input_free(&in);
	json_object_put(payload);
	json_object_put(body);
}
