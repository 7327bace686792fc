/* cases.c: POST /cases, GET /cases/{id}, its attachment links and POST /cases/{id}/input. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/cases.h"
#include "api/files.h"
#include "api/http.h"
#include "api/validate.h"
#include "common/links.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
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

void cases_create(struct http_request *r)
{
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
		int ok;

		if (db_begin(db) < 0)
			break;
		if (cap >= 0) {
			ok = under_cap(r, cap);
			if (ok == 0) {
				db_rollback(db);
				http_reply_error(r, 429, "USAGE_LIMIT_REACHED",
						 "the %s plan allows %lld cases a month; the limit is reached",
						 plans_name(r->plan), (long long)cap);
				goto out;
			}
			if (ok < 0)
				goto failed;
		}
		if (db_query(db, insert_case, cargs, sizeof cargs / sizeof cargs[0], NULL) < 0 ||
		    db_query(db, insert_event, eargs, 3, NULL) < 0 || db_commit(db) < 0)
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
	http_reply_internal(r, db_error(db));
out:
	if (have_input)
		case_input_free(&in);
	json_object_put(body);
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

void cases_get(struct http_request *r)
{
	json_object *c = NULL;
	unsigned flags = wants_transcript(r->query) ? CASEVIEW_TRANSCRIPT : 0;

	if (own_case_or_reply(r, flags, &c) < 0)
		return;
	http_reply_data(r, 200, c);
}

void cases_attachment(struct http_request *r)
{
	static const char sql[] =
		"SELECT id, name, size, content_type, message_id, inbox_id, received_at"
		" FROM attachments WHERE id = ? AND case_id = ?";
	struct db_arg args[2];
	struct db_res *res = NULL;
	const struct api_settings *s = r->t->settings;
	json_object *a;
	char sig[LINKS_SIG_SIZE], when[32];
	int64_t expires_s;
	char *url;

	if (own_case_or_reply(r, 0, NULL) < 0)
		return;
	if (!util_uuid_valid(r->params[1])) {
		http_reply_error(r, 404, "ATTACHMENT_NOT_FOUND", "no attachment with this id in this case");
		return;
	}
	args[0] = DB_STR(r->params[1]);
	args[1] = DB_STR(r->params[0]);
	if (db_query(r->t->db, sql, args, 2, &res) < 0) {
		http_reply_internal(r, db_error(r->t->db));
		return;
	}
	if (db_res_rows(res) == 0) {
		db_res_free(&res);
		http_reply_error(r, 404, "ATTACHMENT_NOT_FOUND", "no attachment with this id in this case");
		return;
	}
	if (files_key_or_reply(r) < 0) {
		db_res_free(&res);
		return;
	}
	a = caseview_attachment_json(db_res_get(res, 0, 0), db_res_get(res, 0, 1),
				     db_res_int(res, 0, 2), db_res_get(res, 0, 3),
				     db_res_get(res, 0, 4), db_res_get(res, 0, 5),
				     db_res_int(res, 0, 6));
	db_res_free(&res);
	expires_s = r->now_ms / 1000 + s->url_ttl_s;
	links_sign(r->t->files_key, r->t->files_key_len, r->params[1], expires_s, sig);
	url = xasprintf("%s/files/%s?expires=%lld&sig=%s", s->public_base_url, r->params[1],
			(long long)expires_s, sig);
	util_iso8601_ms(expires_s * 1000, when);
	json_object_object_add(a, "downloadUrl", json_object_new_string(url));
	json_object_object_add(a, "expiresAt", json_object_new_string(when));
	free(url);
	http_reply_data(r, 200, a);
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
