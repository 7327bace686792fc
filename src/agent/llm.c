/* llm.c: the agent behind an OpenAI-compatible Chat Completions endpoint ("The agent" in
 * doc/operator-guide.md): the two calls, their one request-retry loop, the HTTP request and
 * its response. The response_format schemas are in schema-strict.c, the checks of what the
 * model answered in check.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "agent/agent-private.h"
#include "agent/prompt.h"
#include "agent/schema.h"
#include "common/cfg.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/subject.h"
#include "store/agent_calls.h"

#define MAX_ECHO 8000       /* bytes of a bad answer shown back to the model */
#define MAX_SERVER_TEXT 300 /* bytes of a server's error message in our errors */
#define ATTEMPTS 2          /* a bad answer is retried once (doc/operator-guide.md, "The agent") */

struct llm {
	char *url;          /* {base_url}/chat/completions */
	char *model;
	char *auth_header;  /* "Authorization: Bearer …", or NULL without a key */
	int64_t timeout_ms;
	int64_t max_tokens; /* 0: not sent */
	char *temperature;  /* as configured, or NULL: not sent */
	struct prompts *prompts;
	CURL *curl;
	struct buf resp;
	char err[1024];     /* the last error, for *error_r */
};

/* agent_new runs in each worker thread; its error text must outlive the failed handle. */
static _Thread_local char new_error[1024];

/* ------------------------------------------------------------------ configuration */

struct llm *llm_new(struct cfg *cfg, const char **error_r)
{
	const char *base = cfg_get(cfg, "agent", "base_url", "");
	const char *model = cfg_get(cfg, "agent", "model", "");
	const char *temp = cfg_get(cfg, "agent", "temperature", "");
	const char *dir = cfg_get(cfg, "agent", "prompts_dir", PKGDATADIR "/prompts");
	struct llm *l = xcalloc(1, sizeof *l);
	char *key = NULL;
	size_t blen;

	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
		*error_r = "[agent] base_url: must be an http:// or https:// URL (kind = llm)";
		goto fail;
	}
	blen = strlen(base);
	if (blen > 2000 || strpbrk(base, " \t\r\n")) {
		*error_r = "[agent] base_url: must be one URL of at most 2000 bytes";
		goto fail;
	}
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	l->url = xasprintf("%.*s/chat/completions", (int)blen, base);
	if (!*model || strlen(model) > 256) {
		*error_r = "[agent] model: must name the model (kind = llm)";
		goto fail;
	}
	l->model = xstrdup(model);
	if (cfg_get_int(cfg, "agent", "timeout_ms", 60000, 100, 600000, &l->timeout_ms, error_r) < 0 ||
	    cfg_get_int(cfg, "agent", "max_tokens", 2048, 0, 1000000, &l->max_tokens, error_r) < 0)
		goto fail;
	if (*temp) {
		char *end;
		double t;

		errno = 0;
		t = strtod(temp, &end);
		if (errno || *end || end == temp || !(t >= 0 && t <= 2)) {
			*error_r = "[agent] temperature: must be a number from 0 to 2";
			goto fail;
		}
		l->temperature = xstrdup(temp);
	}
	if (cfg_get_secret(cfg, "agent", "api_key", &key, error_r) < 0)
		goto fail;
	if (key && *key) {
		for (const char *p = key; *p; p++)
			if ((unsigned char)*p < 0x21 || (unsigned char)*p == 0x7f) {
				*error_r = "[agent] api_key: must not contain spaces or control characters";
				goto fail;
			}
		l->auth_header = xasprintf("Authorization: Bearer %s", key);
	}
	{
		static const char prefix[] = "[agent] prompts_dir: ";

		memcpy(new_error, prefix, sizeof prefix);
		l->prompts = prompts_load(dir, new_error + sizeof prefix - 1,
					  sizeof new_error - (sizeof prefix - 1));
		if (!l->prompts) {
			*error_r = new_error;
			goto fail;
		}
	}
	l->curl = curl_easy_init();
	if (!l->curl) {
		*error_r = "[agent] could not initialise libcurl";
		goto fail;
	}
	buf_init(&l->resp, LLM_MAX_RESPONSE);
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	return l;
fail:
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	llm_free(&l);
	return NULL;
}

void llm_free(struct llm **lp)
{
	struct llm *l = *lp;

	if (!l)
		return;
	free(l->url);
	free(l->model);
	if (l->auth_header) {
		explicit_bzero(l->auth_header, strlen(l->auth_header));
		free(l->auth_header);
	}
	free(l->temperature);
	prompts_free(&l->prompts);
	if (l->curl)
		curl_easy_cleanup(l->curl);
	buf_free(&l->resp);
	free(l);
	*lp = NULL;
}

/* ------------------------------------------------------------------ request and response */

char *llm_request_body(const char *model, json_object *messages, const char *name,
		       json_object *schema, int64_t max_tokens, const char *temperature)
{
	json_object *o = json_object_new_object(), *rf = json_object_new_object();
	json_object *js = json_object_new_object();
	char *body;

	json_object_object_add(o, "model", json_object_new_string(model));
	json_object_object_add(o, "messages", json_object_get(messages));
	json_object_object_add(rf, "type", json_object_new_string("json_schema"));
	json_object_object_add(js, "name", json_object_new_string(name));
	json_object_object_add(js, "schema", json_object_get(schema));
	json_object_object_add(js, "strict", json_object_new_boolean(1));
	json_object_object_add(rf, "json_schema", js);
	json_object_object_add(o, "response_format", rf);
	if (max_tokens > 0)
		json_object_object_add(o, "max_tokens", json_object_new_int64(max_tokens));
	if (temperature)
		json_object_object_add(o, "temperature",
				       json_object_new_double_s(strtod(temperature, NULL), temperature));
	json_object_object_add(o, "stream", json_object_new_boolean(0));
	body = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return body;
}

static json_object *message(const char *role, const char *content)
{
	json_object *m = json_object_new_object();

	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "content", json_object_new_string(content));
	return m;
}


static int64_t usage_int(json_object *usage, const char *key)
{
	json_object *v;

	if (!usage || !json_object_object_get_ex(usage, key, &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return 0;
	return json_object_get_int64(v);
}

int llm_parse_response(const char *body, size_t len, struct llm_response *r, char *err,
		       size_t err_cap)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = NULL, *v, *choice, *msg, *usage = NULL;
	int rc = -1;

	memset(r, 0, sizeof *r);
	if (len > LLM_MAX_RESPONSE || len > (size_t)INT32_MAX) {
		snprintf(err, err_cap, "the response is too large");
		goto out;
	}
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object) ||
	    !llm_only_space(body, json_tokener_get_parse_end(tok), len)) {
		snprintf(err, err_cap, "the response is not a JSON object");
		goto out;
	}
	if (json_object_object_get_ex(o, "error", &v) && v) {
		json_object *m = NULL;

		json_object_object_get_ex(v, "message", &m);
		snprintf(err, err_cap, "the server answered with an error: %.*s", MAX_SERVER_TEXT,
			 m && json_object_is_type(m, json_type_string) ? json_object_get_string(m)
								       : "(no message)");
		goto out;
	}
	if (!json_object_object_get_ex(o, "choices", &v) || !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0) {
		snprintf(err, err_cap, "the response has no choices");
		goto out;
	}
	choice = json_object_array_get_idx(v, 0);
	if (!json_object_object_get_ex(choice, "message", &msg) ||
	    !json_object_is_type(msg, json_type_object)) {
		snprintf(err, err_cap, "the response's first choice has no message");
		goto out;
	}
	if (json_object_object_get_ex(choice, "finish_reason", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(r->finish_reason, sizeof r->finish_reason, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(msg, "content", &v)) {
		if (json_object_is_type(v, json_type_string)) {
			r->content = xstrdup(json_object_get_string(v));
		} else if (json_object_is_type(v, json_type_array)) {
			/* Content parts: the text parts in order. */
			struct buf b;

			buf_init(&b, LLM_MAX_RESPONSE);
			buf_puts(&b, "");
			for (size_t i = 0; i < json_object_array_length(v); i++) {
				json_object *part = json_object_array_get_idx(v, i), *t;

				if (json_object_object_get_ex(part, "text", &t) &&
				    json_object_is_type(t, json_type_string))
					buf_puts(&b, json_object_get_string(t));
			}
			r->content = b.data;
		}
	}
	if (json_object_object_get_ex(msg, "refusal", &v) && json_object_is_type(v, json_type_string) &&
	    *json_object_get_string(v))
		r->refusal = xstrdup(json_object_get_string(v));
	json_object_object_get_ex(o, "usage", &usage);
	r->prompt_tokens = usage_int(usage, "prompt_tokens");
	r->completion_tokens = usage_int(usage, "completion_tokens");
	r->total_tokens = usage_int(usage, "total_tokens");
	if (r->total_tokens == 0)
		r->total_tokens = r->prompt_tokens + r->completion_tokens;
	rc = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

void llm_response_free(struct llm_response *r)
{
	free(r->content);
	free(r->refusal);
	memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ HTTP */

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	if (buf_append(b, data, size * n) < 0)
		return 0; /* over LLM_MAX_RESPONSE: curl stops with a write error */
	return size * n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The message of an error body ({"error": {"message"}}), cut, for our own error text. */
static void server_message(const struct buf *b, char *out, size_t cap)
{
	json_object *o = b->data ? json_tokener_parse(b->data) : NULL, *e, *m;

	*out = '\0';
	if (o && json_object_object_get_ex(o, "error", &e)) {
		if (json_object_is_type(e, json_type_string))
			snprintf(out, cap, ": %.*s", MAX_SERVER_TEXT, json_object_get_string(e));
		else if (json_object_object_get_ex(e, "message", &m) &&
			 json_object_is_type(m, json_type_string))
			snprintf(out, cap, ": %.*s", MAX_SERVER_TEXT, json_object_get_string(m));
	}
	json_object_put(o);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

/* Records one call in agent_calls when the case carries a connection. Accounting must
 * never stop the work: a failure is logged and forgotten. */
static void record_call(struct llm *l, const struct agent_case *c, const char *name,
			const struct llm_response *r, long status, int64_t latency_ms,
			const char *outcome)
{
	struct store_agent_call call = {
		.case_id = c->case_id,
		.call_name = name,
		.model = l->model,
		.prompt_tokens = r ? r->prompt_tokens : 0,
		.completion_tokens = r ? r->completion_tokens : 0,
		.total_tokens = r ? r->total_tokens : 0,
		.latency_ms = latency_ms,
		.http_status = status,
		.outcome = outcome,
		.created_at_ms = util_now_ms(),
	};
	const char *err;

	if (!c->db || !c->case_id)
		return;
	if (store_agent_call_record(c->db, &call, &err) < 0)
		log_warn("case %s: recording the %s call: %s", c->case_id, name, err);
}

/* One POST. 0 with *r parsed from a 200 answer (the caller records the call once it has
 * judged the content), or -1 for a temporary failure (recorded here, l->err set). */
static int call(struct llm *l, const struct agent_case *c, const char *name, const char *body,
		struct llm_response *r, long *status_r, int64_t *latency_r)
{
	struct curl_slist *hdrs = NULL;
	char curl_err[CURL_ERROR_SIZE] = "", detail[MAX_SERVER_TEXT + 8];
	const char *outcome = "http_error";
	int64_t t0 = mono_ms();
	long status = 0;
	CURLcode cc;

	memset(r, 0, sizeof *r);
	buf_reset(&l->resp);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (l->auth_header)
		hdrs = curl_slist_append(hdrs, l->auth_header);
	curl_easy_reset(l->curl);
	curl_easy_setopt(l->curl, CURLOPT_URL, l->url);
	curl_easy_setopt(l->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(l->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(l->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(l->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(l->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(l->curl, CURLOPT_WRITEDATA, &l->resp);
	curl_easy_setopt(l->curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(l->curl, CURLOPT_TIMEOUT_MS, (long)l->timeout_ms);
	curl_easy_setopt(l->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(l->timeout_ms < 10000 ? l->timeout_ms : 10000));
	curl_easy_setopt(l->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(l->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(l->curl, CURLOPT_USERAGENT, "offload/" PACKAGE_VERSION);
	cc = curl_easy_perform(l->curl);
	/* The handle outlives this call's header list, body and error buffer. */
	curl_easy_setopt(l->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(l->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	*latency_r = mono_ms() - t0;
	curl_easy_getinfo(l->curl, CURLINFO_RESPONSE_CODE, &status);
	*status_r = status;
	if (cc != CURLE_OK) {
		outcome = cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connection_error";
		snprintf(l->err, sizeof l->err, "%s: the LLM server %s: %s", name,
			 cc == CURLE_OPERATION_TIMEDOUT ? "did not answer in time" : "could not be reached",
			 *curl_err ? curl_err : curl_easy_strerror(cc));
		goto fail;
	}
	if (status != 200) {
		/* 401/403 texts may quote part of the key: never repeat them. */
		if (status == 401 || status == 403)
			*detail = '\0';
		else
			server_message(&l->resp, detail, sizeof detail);
		snprintf(l->err, sizeof l->err, "%s: the LLM server answered HTTP %ld%s", name, status,
			 detail);
		goto fail;
	}
	if (llm_parse_response(l->resp.data ? l->resp.data : "", l->resp.len, r, detail,
			       sizeof detail) < 0) {
		outcome = "bad_response";
		snprintf(l->err, sizeof l->err, "%s: %s", name, detail);
		goto fail;
	}
	return 0;
fail:
	record_call(l, c, name, NULL, status, *latency_r, outcome);
	return -1;
}

/* ------------------------------------------------------------------ the two calls */

/* Asks once more after a bad answer: the answer (cut) and what was wrong with it. */
static void add_correction(json_object *messages, const char *content, const char *problem,
			   const char *what)
{
	char *text;

	if (content && *content) {
		text = xstrndup(content, util_utf8_cut(content, strlen(content), MAX_ECHO));
		json_object_array_add(messages, message("assistant", text));
		free(text);
	}
	text = xasprintf("Your answer could not be used: %s. %s Answer again with one JSON object "
			 "that follows the response schema, and nothing else.", problem, what);
	json_object_array_add(messages, message("user", text));
	free(text);
}

/* Content and problem of a 200 answer before its JSON is looked at. */
static const char *answer_problem(const struct llm_response *r)
{
	if (r->refusal)
		return "refused";
	if (strcmp(r->finish_reason, "length") == 0)
		return "truncated";
	return NULL;
}

/* One of the two calls, for ask(). */
struct ask {
	const char *name;       /* the call's name: response_format name, logs, agent_calls */
	enum prompt_id prompt;  /* the user prompt after the system prompt */
	const char *truncated;  /* the problem of an answer cut off by max_tokens */
	/* Checks the content of an answer into out (llm_check_draft, llm_check_decision). */
	enum llm_check (*check)(const char *content, const struct agent_case *c, void *out,
				char **problem_r);
	const char *hint_bad;    /* what the correction asks for after LLM_CHECK_BAD */
	const char *hint_result; /* ... after LLM_CHECK_RESULT (NULL: the check never says it) */
};

/*
 * The request-retry loop of both calls: posts messages (the conversation so far, added to
 * with each correction) with schema, checks the answer into out, and asks again with the
 * bad answer and what was wrong with it, ATTEMPTS times in all. Each answer is recorded in
 * agent_calls with its outcome. Returns 1 with out filled by a usable answer; 0 when no
 * answer was usable (*last_r: the last check, *problem_r: its problem, newly allocated); -1
 * on a temporary failure (l->err says it).
 */
static int ask(struct llm *l, const struct agent_case *c, const struct ask *a,
	       json_object *messages, json_object *schema, void *out, enum llm_check *last_r,
	       char **problem_r)
{
	enum llm_check last = LLM_CHECK_BAD;
	char *problem = NULL;

	for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
		char *body = llm_request_body(l->model, messages, a->name, schema, l->max_tokens,
					      l->temperature);
		struct llm_response r;
		const char *early, *outcome;
		long status;
		int64_t latency;
		int ok;

		ok = call(l, c, a->name, body, &r, &status, &latency);
		free(body);
		if (ok < 0) {
			free(problem);
			return -1;
		}
		free(problem);
		problem = NULL;
		early = answer_problem(&r);
		if (early && r.refusal) {
			problem = xasprintf("the model refused: %.300s", r.refusal);
			last = LLM_CHECK_BAD;
		} else if (early) {
			problem = xstrdup(a->truncated);
			last = LLM_CHECK_BAD;
		} else {
			last = a->check(r.content, c, out, &problem);
		}
		if (last == LLM_CHECK_OK) {
			record_call(l, c, a->name, &r, status, latency, "ok");
			llm_response_free(&r);
			return 1;
		}
		outcome = early ? early : last == LLM_CHECK_RESULT ? "result_mismatch" : "bad_output";
		record_call(l, c, a->name, &r, status, latency, outcome);
		log_warn("case %s: %s: unusable answer (%s)%s", c->case_id, a->name, problem,
			 attempt + 1 < ATTEMPTS ? "; asking again" : "");
		add_correction(messages, r.content, problem,
			       last == LLM_CHECK_RESULT && a->hint_result ? a->hint_result
									  : a->hint_bad);
		llm_response_free(&r);
	}
	*last_r = last;
	*problem_r = problem;
	return 0;
}

/* ask() with the conversation begun by the system prompt and a->prompt, rendered from v. */
static int ask_prompt(struct llm *l, const struct agent_case *c, const struct ask *a,
		      const struct prompt_vars *v, json_object *schema, void *out,
		      enum llm_check *last_r, char **problem_r)
{
	json_object *messages = json_object_new_array();
	char *sys = prompt_render(l->prompts, PROMPT_SYSTEM, v);
	char *user = prompt_render(l->prompts, a->prompt, v);
	int r;

	json_object_array_add(messages, message("system", sys));
	json_object_array_add(messages, message("user", user));
	r = ask(l, c, a, messages, schema, out, last_r, problem_r);
	free(sys);
	free(user);
	json_object_put(messages);
	return r;
}

static char *draft_task(const struct agent_case *c, enum agent_draft_kind kind)
{
	switch (kind) {
	case AGENT_DRAFT_OUTREACH:
		return xstrdup("the first message to the counterparty. Introduce yourself in a "
			       "sentence, say what you need and why (only as far as the knowledge "
			       "says), and ask for it clearly.");
	case AGENT_DRAFT_FOLLOW_UP:
		return xasprintf("follow-up %d of %d: nobody has answered your earlier message(s). "
				 "Remind the counterparty politely and briefly of what you need; do "
				 "not repeat the whole first message.%s",
				 c->follow_up_n, c->max_attempts,
				 c->follow_up_n >= c->max_attempts
					 ? " This is the last follow-up you will send."
					 : "");
	case AGENT_DRAFT_REPLY:
		break;
	}
	return xstrdup("a reply to the counterparty's latest message that moves toward the goal.");
}

/* What the draft check fills: the usable draft, and for an SMS case the last draft that
 * was usable but too long, kept to be returned when no shorter one comes. */
struct draft_out {
	struct agent_draft *draft;
	struct agent_draft too_long;
};

static enum llm_check check_draft(const char *content, const struct agent_case *c, void *out,
				  char **problem_r)
{
	struct draft_out *d = out;
	enum llm_check r = llm_check_draft(content, d->draft, problem_r);
	char why[200];

	if (r != LLM_CHECK_OK || !c->sms || agent_sms_fits(c, d->draft->body, why, sizeof why))
		return r;
	/* doc/api.md, SMS: the text must fit [sms] max_segments; ask for a shorter one. */
	agent_draft_free(&d->too_long);
	d->too_long = *d->draft;
	memset(d->draft, 0, sizeof *d->draft);
	*problem_r = xasprintf("the body is too long for an SMS: %s", why);
	return LLM_CHECK_BAD;
}

static const struct ask ask_draft = {
	.name = "draft_message",
	.prompt = PROMPT_DRAFT,
	.truncated = "the answer was cut off (finish_reason length; raise [agent] max_tokens?)",
	.check = check_draft,
	.hint_bad = "The subject must be one line of at most 200 bytes and the body non-empty "
		    "plain text of at most 20000 bytes.",
};

int llm_draft(struct llm *l, const struct agent_case *c, enum agent_draft_kind kind,
	      struct agent_draft *out, const char **error_r)
{
	struct prompt_vars v;
	json_object *schema = llm_schema_draft();
	char *problem = NULL, *forced = NULL;
	struct draft_out d = { .draft = out };
	enum llm_check last;
	int rc = -1, r;

	memset(out, 0, sizeof *out);
	prompt_vars_case(c, &v);
	free(v.task);
	v.task = draft_task(c, kind);
	free(v.subject_rule);
	if (c->sms) {
		/* An SMS has no subject; the check wants one line, which the worker drops. */
		v.subject_rule = xstrdup("The subject is not sent (this is an SMS): two or three "
					 "words naming the topic.");
	} else if (kind != AGENT_DRAFT_OUTREACH && c->first_subject && *c->first_subject) {
		/* Mail clients thread by subject too: a follow-up or reply keeps the first one. */
		forced = mail_reply_subject(c->first_subject);
		v.subject_rule = xasprintf("The subject must be exactly: %s", forced);
	} else {
		v.subject_rule = xstrdup("Write a short, specific subject line (under 80 characters).");
	}
	r = ask_prompt(l, c, &ask_draft, &v, schema, &d, &last, &problem);
	if (r < 0)
		goto out;
	if (r == 0 && d.too_long.body) {
		/* An SMS case's drafts stayed too long: the worker treats this one as unusable
		 * (tried again later, then the operator is asked), as it does a bad draft. */
		*out = d.too_long;
		memset(&d.too_long, 0, sizeof d.too_long);
		rc = 0;
		goto out;
	}
	if (r > 0) {
		if (forced) {
			free(out->subject);
			out->subject = forced;
			forced = NULL;
		}
		rc = 0;
		goto out;
	}
	/* doc/operator-guide.md, "The agent": an empty or over-long draft is never sent; the
	 * event is tried again later. */
	snprintf(l->err, sizeof l->err, "draft_message: no usable draft after %d tries: %s", ATTEMPTS,
		 problem);
out:
	if (rc < 0)
		*error_r = l->err;
	agent_draft_free(&d.too_long);
	free(problem);
	free(forced);
	json_object_put(schema);
	prompt_vars_free(&v);
	return rc;
}

/* The honest question after two unusable evaluations. */
static char *undecided_question(const struct agent_case *c, enum llm_check last, const char *problem)
{
	const char *from = NULL;
	char *latest = agent_latest_inbound(c, &from, 4000), *quoted, *q;

	quoted = latest ? xasprintf("\n\nThe latest message from %s:\n\n%s",
				    from ? from : "the counterparty", latest)
			: xstrdup("");
	if (last == LLM_CHECK_RESULT)
		q = xasprintf("The result does not match the resultSchema, so the case was not "
			      "completed: %s. Please provide what is missing (answer with the "
			      "information, or send a decision with a complete result).%s",
			      problem, quoted);
	else
		q = xasprintf("The agent could not decide: %s. Please read the latest message and "
			      "answer, or decide with a decision (GOAL_ACHIEVED with a result, REPLY "
			      "with the text, REJECTED with a reason, or WAIT).%s",
			      problem, quoted);
	free(quoted);
	free(latest);
	return q;
}

static enum llm_check check_decision(const char *content, const struct agent_case *c,
				     void *out, char **problem_r)
{
	struct agent_decision *d = out;
	enum llm_check r = llm_check_decision(content, c->result_schema, out, problem_r);
	char why[200];

	if (r != LLM_CHECK_OK || !c->sms || d->kind != AGENT_REPLY ||
	    agent_sms_fits(c, d->reply, why, sizeof why))
		return r;
	/* doc/api.md, SMS: a reply that does not fit is asked for again (and after the last
	 * try the operator decides, as for any unusable answer). */
	agent_decision_free(d);
	*problem_r = xasprintf("the reply is too long for an SMS: %s", why);
	return LLM_CHECK_BAD;
}

static const struct ask ask_evaluate = {
	.name = "evaluate_thread",
	.prompt = PROMPT_EVALUATE,
	.truncated = "the answer was cut off (finish_reason length)",
	.check = check_decision,
	.hint_bad = "\"decision\" must be one of GOAL_ACHIEVED, REPLY, NEEDS_INPUT, REJECTED, "
		    "with \"reply\" for REPLY, \"inputQuestion\" for NEEDS_INPUT, \"result\" for "
		    "GOAL_ACHIEVED and \"reason\" for REJECTED.",
	.hint_result = "With GOAL_ACHIEVED, \"result\" must match the result schema given above "
		       "exactly. If the conversation does not contain what it needs, decide "
		       "NEEDS_INPUT or REPLY instead.",
};

int llm_evaluate(struct llm *l, const struct agent_case *c, struct agent_decision *out,
		 const char **error_r)
{
	struct prompt_vars v;
	json_object *schema = llm_schema_evaluate(c->result_schema);
	char *problem = NULL;
	enum llm_check last = LLM_CHECK_BAD;
	int rc = -1, r;

	memset(out, 0, sizeof *out);
	prompt_vars_case(c, &v);
	r = ask_prompt(l, c, &ask_evaluate, &v, schema, out, &last, &problem);
	if (r < 0)
		goto out;
	if (r > 0) {
		rc = 0;
		goto out;
	}
	/* doc/operator-guide.md, "The agent": never success after two bad answers; a person
	 * looks at it. */
	out->kind = AGENT_NEEDS_INPUT;
	out->question = undecided_question(c, last, problem);
	log_info("case %s: evaluate_thread: no usable decision after %d tries; asking the operator",
		 c->case_id, ATTEMPTS);
	rc = 0;
out:
	if (rc < 0)
		*error_r = l->err;
	free(problem);
	json_object_put(schema);
	prompt_vars_free(&v);
	return rc;
}
