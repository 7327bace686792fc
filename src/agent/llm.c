/* llm.c: the agent behind an OpenAI-compatible Chat Completions endpoint (SPEC §6, REFERENCES §8).
 * Over 900 lines on purpose for now: its seams (the strict-schema transform, the answer
 * checks, one request-retry loop) are split out under issue 13, done after the store layer
 * moved its SQL out (issue 10) so the two changes did not collide.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "agent/agent-private.h"
#include "agent/prompt.h"
#include "agent/schema.h"
#include "common/cfg.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/agent_calls.h"

#define MAX_RESPONSE (8 * 1024 * 1024) /* bytes of a response body we read */
#define MAX_ECHO 8000                  /* bytes of a bad answer shown back to the model */
#define MAX_SERVER_TEXT 300            /* bytes of a server's error message in our errors */
#define ATTEMPTS 2                     /* a bad answer is retried once (SPEC §6) */

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
	buf_init(&l->resp, MAX_RESPONSE);
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

/* ------------------------------------------------------------------ schemas */

static json_object *jstring(const char *s)
{
	return json_object_new_string(s);
}

static json_object *type_pair(const char *t)
{
	json_object *a = json_object_new_array();

	json_object_array_add(a, jstring(t));
	json_object_array_add(a, jstring("null"));
	return a;
}

static json_object *strict_object(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "type", jstring("object"));
	return o;
}

/* Closes a strict object schema: every property required, nothing else allowed. */
static void strict_close(json_object *o, json_object *props)
{
	json_object *req = json_object_new_array();

	json_object_object_foreach(props, name, sub)
	{
		(void)sub;
		json_object_array_add(req, jstring(name));
	}
	json_object_object_add(o, "properties", props);
	json_object_object_add(o, "required", req);
	json_object_object_add(o, "additionalProperties", json_object_new_boolean(0));
}

json_object *llm_schema_draft(void)
{
	json_object *o = strict_object(), *props = json_object_new_object(), *s;

	s = json_object_new_object();
	json_object_object_add(s, "type", jstring("string"));
	json_object_object_add(props, "subject", s);
	s = json_object_new_object();
	json_object_object_add(s, "type", jstring("string"));
	json_object_object_add(props, "body", s);
	strict_close(o, props);
	return o;
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int has_type(json_object *types, const char *t)
{
	if (json_object_is_type(types, json_type_string))
		return strcmp(json_object_get_string(types), t) == 0;
	for (size_t i = 0; json_object_is_type(types, json_type_array) &&
			   i < json_object_array_length(types); i++) {
		json_object *x = json_object_array_get_idx(types, i);

		if (json_object_is_type(x, json_type_string) && strcmp(json_object_get_string(x), t) == 0)
			return 1;
	}
	return 0;
}

static int in_required(json_object *schema, const char *name)
{
	json_object *req;

	if (!json_object_object_get_ex(schema, "required", &req) ||
	    !json_object_is_type(req, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(req); i++) {
		json_object *x = json_object_array_get_idx(req, i);

		if (json_object_is_type(x, json_type_string) && strcmp(json_object_get_string(x), name) == 0)
			return 1;
	}
	return 0;
}

static void add_type(json_object *types, const char *t)
{
	if (!has_type(types, t))
		json_object_array_add(types, jstring(t));
}

/*
 * The strict form of one resultSchema node (REFERENCES §8): the same types, properties,
 * items, enum and description, with every property required (the optional ones nullable)
 * and additionalProperties false. Other keywords are left out: servers differ in what
 * they accept beyond this subset, and the result is validated here anyway.
 */
static json_object *strict_of(json_object *s, int nullable, int depth)
{
	json_object *out = json_object_new_object(), *types = json_object_new_array();
	json_object *kw, *en = NULL;

	if (!json_object_is_type(s, json_type_object) || depth > SCHEMA_MAX_DEPTH)
		s = NULL;
	if (s && json_object_object_get_ex(s, "type", &kw)) {
		if (json_object_is_type(kw, json_type_string))
			add_type(types, json_object_get_string(kw));
		for (size_t i = 0; json_object_is_type(kw, json_type_array) &&
				   i < json_object_array_length(kw); i++)
			if (json_object_is_type(json_object_array_get_idx(kw, i), json_type_string))
				add_type(types,
					 json_object_get_string(json_object_array_get_idx(kw, i)));
	}
	if (s && json_object_object_get_ex(s, "enum", &kw) && json_object_is_type(kw, json_type_array))
		en = kw;
	if (json_object_array_length(types) == 0) {
		if (en) {
			static const char *const names[] = { "null", "boolean", "number", "number",
							     "object", "array", "string" };

			for (size_t i = 0; i < json_object_array_length(en); i++)
				add_type(types, names[json_object_get_type(json_object_array_get_idx(en, i))]);
		} else if (s && json_object_object_get_ex(s, "properties", NULL)) {
			add_type(types, "object");
		} else if (s && json_object_object_get_ex(s, "items", NULL)) {
			add_type(types, "array");
		} else {
			/* Any value: strict schemas need a type; the scalars cover what a form holds. */
			add_type(types, "string");
			add_type(types, "number");
			add_type(types, "boolean");
		}
	}
	if (nullable)
		add_type(types, "null");
	if (json_object_array_length(types) == 1) {
		json_object_object_add(out, "type",
				       json_object_get(json_object_array_get_idx(types, 0)));
		json_object_put(types);
	} else {
		json_object_object_add(out, "type", types);
	}
	if (s && json_object_object_get_ex(s, "description", &kw) &&
	    json_object_is_type(kw, json_type_string))
		json_object_object_add(out, "description", json_object_get(kw));
	if (en) {
		json_object *e = json_object_new_array();
		int null_seen = 0;

		for (size_t i = 0; i < json_object_array_length(en); i++) {
			json_object *x = json_object_array_get_idx(en, i);

			null_seen |= x == NULL;
			json_object_array_add(e, json_object_get(x));
		}
		if (nullable && !null_seen)
			json_object_array_add(e, NULL);
		json_object_object_add(out, "enum", e);
	}
	if (has_type(member(out, "type"), "object")) {
		json_object *props = json_object_new_object(), *sp = NULL;

		if (s && json_object_object_get_ex(s, "properties", &sp) &&
		    json_object_is_type(sp, json_type_object)) {
			json_object_object_foreach(sp, name, sub)
			json_object_object_add(props, name,
					       strict_of(sub, !in_required(s, name), depth + 1));
		}
		/* Without properties a strict object can only be empty; said in the README. */
		strict_close(out, props);
	}
	if (has_type(member(out, "type"), "array")) {
		json_object *items = NULL;

		if (s)
			json_object_object_get_ex(s, "items", &items);
		json_object_object_add(out, "items",
				       strict_of(json_object_is_type(items, json_type_object) ? items : NULL,
						 0, depth + 1));
	}
	return out;
}

json_object *llm_schema_evaluate(json_object *result_schema)
{
	json_object *o = strict_object(), *props = json_object_new_object(), *s, *en, *result;

	s = json_object_new_object();
	json_object_object_add(s, "type", jstring("string"));
	en = json_object_new_array();
	json_object_array_add(en, jstring("GOAL_ACHIEVED"));
	json_object_array_add(en, jstring("REPLY"));
	json_object_array_add(en, jstring("NEEDS_INPUT"));
	json_object_array_add(en, jstring("REJECTED"));
	json_object_object_add(s, "enum", en);
	json_object_object_add(props, "decision", s);
	s = json_object_new_object();
	json_object_object_add(s, "type", type_pair("string"));
	json_object_object_add(props, "reply", s);
	s = json_object_new_object();
	json_object_object_add(s, "type", type_pair("string"));
	json_object_object_add(props, "inputQuestion", s);
	if (result_schema) {
		result = strict_of(result_schema, 1, 0);
		if (!has_type(member(result, "type"), "object")) {
			/* SPEC §6: result is an object or null, whatever the schema says. */
			json_object_put(result);
			result = json_object_new_object();
			json_object_object_add(result, "type", type_pair("object"));
			strict_close(result, json_object_new_object());
		}
	} else {
		json_object *rp = json_object_new_object();

		s = json_object_new_object();
		json_object_object_add(s, "type", jstring("string"));
		json_object_object_add(rp, "summary", s);
		result = json_object_new_object();
		json_object_object_add(result, "type", type_pair("object"));
		strict_close(result, rp);
	}
	json_object_object_add(props, "result", result);
	s = json_object_new_object();
	json_object_object_add(s, "type", type_pair("string"));
	json_object_object_add(props, "reason", s);
	strict_close(o, props);
	return o;
}

/* Removes null members the model gave for optional properties (strict schemas make it
 * write them), so that the original resultSchema judges what is left. */
static void strip_optional_nulls(json_object *schema, json_object *v, int depth)
{
	json_object *props, *items, *kw;

	if (!json_object_is_type(schema, json_type_object) || depth > SCHEMA_MAX_DEPTH)
		return;
	if (json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(schema, "properties", &props) &&
	    json_object_is_type(props, json_type_object)) {
		char *drop[64];
		size_t n = 0;

		json_object_object_foreach(v, name, pv)
		{
			json_object *sub = NULL;

			if (!json_object_object_get_ex(props, name, &sub))
				continue;
			if (pv == NULL && !in_required(schema, name) && n < sizeof drop / sizeof drop[0]) {
				int allows_null = json_object_object_get_ex(sub, "type", &kw) &&
						  has_type(kw, "null");

				if (!allows_null)
					drop[n++] = xstrdup(name);
				continue;
			}
			strip_optional_nulls(sub, pv, depth + 1);
		}
		for (size_t i = 0; i < n; i++) {
			json_object_object_del(v, drop[i]);
			free(drop[i]);
		}
	}
	if (json_object_is_type(v, json_type_array) && json_object_object_get_ex(schema, "items", &items))
		for (size_t i = 0; i < json_object_array_length(v); i++)
			strip_optional_nulls(items, json_object_array_get_idx(v, i), depth + 1);
}

/* ------------------------------------------------------------------ request and response */

char *llm_request_body(const char *model, json_object *messages, const char *name,
		       json_object *schema, int64_t max_tokens, const char *temperature)
{
	json_object *o = json_object_new_object(), *rf = json_object_new_object();
	json_object *js = json_object_new_object();
	char *body;

	json_object_object_add(o, "model", jstring(model));
	json_object_object_add(o, "messages", json_object_get(messages));
	json_object_object_add(rf, "type", jstring("json_schema"));
	json_object_object_add(js, "name", jstring(name));
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

	json_object_object_add(m, "role", jstring(role));
	json_object_object_add(m, "content", jstring(content));
	return m;
}

/* 1 when s[from..len) is only white space. */
static int only_space(const char *s, size_t from, size_t len)
{
	for (size_t i = from; i < len; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
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
	if (len > MAX_RESPONSE || len > (size_t)INT32_MAX) {
		snprintf(err, err_cap, "the response is too large");
		goto out;
	}
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object) ||
	    !only_space(body, json_tokener_get_parse_end(tok), len)) {
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

			buf_init(&b, MAX_RESPONSE);
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

/* ------------------------------------------------------------------ checking answers */

/* Parses the model's JSON, tolerating a ```json fence around it (models without a grammar
 * like to add one). NULL with *problem_r when it is not one JSON object. */
static json_object *parse_content(const char *content, char **problem_r)
{
	const char *s = content, *e;
	json_tokener *tok;
	json_object *o;
	size_t len;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	if (e - s >= 6 && strncmp(s, "```", 3) == 0 && strncmp(e - 3, "```", 3) == 0) {
		const char *nl = memchr(s, '\n', (size_t)(e - s));

		if (nl) {
			s = nl + 1;
			e -= 3;
		}
	}
	len = (size_t)(e - s);
	if (len == 0) {
		*problem_r = xstrdup("the answer was empty");
		return NULL;
	}
	if (len > MAX_RESPONSE) {
		*problem_r = xstrdup("the answer was too long");
		return NULL;
	}
	tok = json_tokener_new();
	/* The model's text becomes the operator's question: it must be valid UTF-8. */
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		json_tokener_free(tok);
		*problem_r = xstrdup("the answer was not valid JSON");
		return NULL;
	}
	if (!only_space(s, json_tokener_get_parse_end(tok), len)) {
		json_object_put(o);
		json_tokener_free(tok);
		*problem_r = xstrdup("the answer had text after the JSON object");
		return NULL;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*problem_r = xstrdup("the answer was JSON but not an object");
		return NULL;
	}
	return o;
}

/* A string member: 1 string (in *s_r), 0 null or absent, -1 another type. */
static int opt_string(json_object *o, const char *key, const char **s_r)
{
	json_object *v;

	*s_r = NULL;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*s_r = json_object_get_string(v);
	return 1;
}

static int blank(const char *s)
{
	for (; s && *s; s++)
		if (!isspace((unsigned char)*s))
			return 0;
	return 1;
}

static char *trimmed(const char *s)
{
	const char *t;
	size_t n;

	util_trim(s, strlen(s), &t, &n);
	return xstrndup(t, n);
}

enum llm_check llm_check_draft(const char *content, struct agent_draft *out, char **problem_r)
{
	json_object *o = parse_content(content ? content : "", problem_r);
	const char *subject, *body;
	enum llm_check rc = LLM_CHECK_BAD;

	memset(out, 0, sizeof *out);
	if (!o)
		return LLM_CHECK_BAD;
	if (opt_string(o, "subject", &subject) != 1 || opt_string(o, "body", &body) != 1) {
		*problem_r = xstrdup("the answer must have \"subject\" and \"body\", both strings");
		goto out;
	}
	if (blank(subject) || blank(body)) {
		*problem_r = xstrdup(blank(subject) ? "the subject was empty" : "the body was empty");
		goto out;
	}
	if (strpbrk(subject, "\r\n")) {
		*problem_r = xstrdup("the subject must be one line (it had a line break)");
		goto out;
	}
	if (strlen(subject) > AGENT_MAX_SUBJECT) {
		*problem_r = xasprintf("the subject was longer than %d bytes", AGENT_MAX_SUBJECT);
		goto out;
	}
	if (strlen(body) > AGENT_MAX_BODY) {
		*problem_r = xasprintf("the body was longer than %d bytes", AGENT_MAX_BODY);
		goto out;
	}
	out->subject = trimmed(subject);
	out->body = trimmed(body);
	rc = LLM_CHECK_OK;
out:
	json_object_put(o);
	return rc;
}

enum llm_check llm_check_decision(const char *content, json_object *result_schema,
				  struct agent_decision *out, char **problem_r)
{
	static const char *const names[] = { "GOAL_ACHIEVED", "REPLY", "NEEDS_INPUT", "REJECTED" };
	static const enum agent_decision_kind kinds[] = { AGENT_GOAL_ACHIEVED, AGENT_REPLY,
							  AGENT_NEEDS_INPUT, AGENT_REJECTED };
	json_object *o = parse_content(content ? content : "", problem_r), *result = NULL;
	const char *decision, *reply, *question, *reason;
	enum llm_check rc = LLM_CHECK_BAD;
	size_t k;

	memset(out, 0, sizeof *out);
	if (!o)
		return LLM_CHECK_BAD;
	if (opt_string(o, "decision", &decision) != 1) {
		*problem_r = xstrdup("the answer had no \"decision\" string");
		goto out;
	}
	for (k = 0; k < sizeof names / sizeof names[0]; k++)
		if (strcmp(decision, names[k]) == 0)
			break;
	if (k == sizeof names / sizeof names[0]) {
		*problem_r = xasprintf("the decision \"%.60s\" is not one of GOAL_ACHIEVED, REPLY, "
				       "NEEDS_INPUT, REJECTED", decision);
		goto out;
	}
	if (opt_string(o, "reply", &reply) < 0 || opt_string(o, "inputQuestion", &question) < 0 ||
	    opt_string(o, "reason", &reason) < 0) {
		*problem_r = xstrdup("\"reply\", \"inputQuestion\" and \"reason\" must each be a "
				     "string or null");
		goto out;
	}
	if (json_object_object_get_ex(o, "result", &result) && result &&
	    !json_object_is_type(result, json_type_object)) {
		*problem_r = xstrdup("\"result\" must be an object or null");
		goto out;
	}
	out->kind = kinds[k];
	switch (out->kind) {
	case AGENT_GOAL_ACHIEVED: {
		struct schema_errors errs;

		if (!result) {
			*problem_r = xstrdup("result: must be an object (got null)");
			rc = LLM_CHECK_RESULT;
			goto out;
		}
		strip_optional_nulls(result_schema, result, 0);
		if (result_schema && schema_validate(result_schema, result, "result", &errs) != 0) {
			*problem_r = schema_errors_text(&errs, 1500);
			schema_errors_free(&errs);
			rc = LLM_CHECK_RESULT;
			goto out;
		}
		if (result_schema)
			schema_errors_free(&errs);
		out->result_json = xstrdup(json_object_to_json_string_ext(
			result, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		break;
	}
	case AGENT_REPLY:
		if (blank(reply)) {
			*problem_r = xstrdup("the decision was REPLY but the reply text was empty");
			goto out;
		}
		if (strlen(reply) > AGENT_MAX_BODY) {
			*problem_r = xasprintf("the reply was longer than %d bytes", AGENT_MAX_BODY);
			goto out;
		}
		out->reply = trimmed(reply);
		break;
	case AGENT_NEEDS_INPUT: {
		size_t n;

		if (blank(question)) {
			*problem_r = xstrdup("the decision was NEEDS_INPUT but there was no inputQuestion");
			goto out;
		}
		out->question = trimmed(question);
		n = strlen(out->question);
		if (n > AGENT_MAX_QUESTION) {
			n = AGENT_MAX_QUESTION;
			while (n > 0 && ((unsigned char)out->question[n] & 0xc0) == 0x80)
				n--;
			out->question[n] = '\0';
		}
		break;
	}
	case AGENT_REJECTED:
		out->reason = !blank(reason) ? trimmed(reason)
					     : xstrdup("the counterparty declined (the agent gave no reason)");
		break;
	case AGENT_WAIT:
		break;
	}
	rc = LLM_CHECK_OK;
out:
	if (rc != LLM_CHECK_OK)
		agent_decision_free(out);
	json_object_put(o);
	return rc;
}

/* ------------------------------------------------------------------ HTTP */

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	if (buf_append(b, data, size * n) < 0)
		return 0; /* over MAX_RESPONSE: curl stops with a write error */
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
		size_t n = strlen(content);

		if (n > MAX_ECHO) {
			n = MAX_ECHO;
			while (n > 0 && ((unsigned char)content[n] & 0xc0) == 0x80)
				n--;
		}
		text = xstrndup(content, n);
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

static char *thread_subject(const char *first)
{
	if (strncasecmp(first, "Re:", 3) == 0)
		return xstrdup(first);
	return xasprintf("Re: %s", first);
}

int llm_draft(struct llm *l, const struct agent_case *c, enum agent_draft_kind kind,
	      struct agent_draft *out, const char **error_r)
{
	struct prompt_vars v;
	json_object *messages = json_object_new_array(), *schema = llm_schema_draft();
	char *sys, *user, *problem = NULL, *forced = NULL;
	int rc = -1;

	memset(out, 0, sizeof *out);
	prompt_vars_case(c, &v);
	free(v.task);
	v.task = draft_task(c, kind);
	free(v.subject_rule);
	if (kind != AGENT_DRAFT_OUTREACH && c->first_subject && *c->first_subject) {
		/* Mail clients thread by subject too: a follow-up or reply keeps the first one. */
		forced = thread_subject(c->first_subject);
		v.subject_rule = xasprintf("The subject must be exactly: %s", forced);
	} else {
		v.subject_rule = xstrdup("Write a short, specific subject line (under 80 characters).");
	}
	sys = prompt_render(l->prompts, PROMPT_SYSTEM, &v);
	user = prompt_render(l->prompts, PROMPT_DRAFT, &v);
	json_object_array_add(messages, message("system", sys));
	json_object_array_add(messages, message("user", user));
	for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
		char *body = llm_request_body(l->model, messages, "draft_message", schema, l->max_tokens,
					      l->temperature);
		struct llm_response r;
		const char *early;
		long status;
		int64_t latency;
		int ok;

		ok = call(l, c, "draft_message", body, &r, &status, &latency);
		free(body);
		if (ok < 0)
			goto out;
		free(problem);
		problem = NULL;
		early = answer_problem(&r);
		if (early && r.refusal)
			problem = xasprintf("the model refused: %.300s", r.refusal);
		else if (early)
			problem = xstrdup("the answer was cut off (finish_reason length; raise [agent] "
					  "max_tokens?)");
		else if (llm_check_draft(r.content, out, &problem) == LLM_CHECK_OK) {
			record_call(l, c, "draft_message", &r, status, latency, "ok");
			llm_response_free(&r);
			if (forced) {
				free(out->subject);
				out->subject = forced;
				forced = NULL;
			}
			rc = 0;
			goto out;
		}
		record_call(l, c, "draft_message", &r, status, latency, early ? early : "bad_output");
		log_warn("case %s: draft_message: unusable answer (%s)%s", c->case_id, problem,
			 attempt + 1 < ATTEMPTS ? "; asking again" : "");
		add_correction(messages, r.content, problem,
			       "The subject must be one line of at most 200 bytes and the body "
			       "non-empty plain text of at most 20000 bytes.");
		llm_response_free(&r);
	}
	/* SPEC §6: an empty or over-long draft is never sent; the event is tried again later. */
	snprintf(l->err, sizeof l->err, "draft_message: no usable draft after %d tries: %s", ATTEMPTS,
		 problem);
out:
	if (rc < 0)
		*error_r = l->err;
	free(problem);
	free(forced);
	free(sys);
	free(user);
	json_object_put(messages);
	json_object_put(schema);
	prompt_vars_free(&v);
	return rc;
}

/* The honest question after two unusable evaluations. */
static char *undecided_question(const struct agent_case *c, enum llm_check last, const char *problem)
{
	const char *from = NULL;
	char *latest = agent_latest_inbound(c, &from, 4000), *q;

	if (last == LLM_CHECK_RESULT)
		q = xasprintf("The result does not match the resultSchema, so the case was not "
			      "completed: %s. Please provide what is missing (answer with the "
			      "information, or send a decision with a complete result).%s%s%s%s",
			      problem, latest ? "\n\nThe latest message from " : "",
			      latest ? (from ? from : "the counterparty") : "", latest ? ":\n\n" : "",
			      latest ? latest : "");
	else
		q = xasprintf("The agent could not decide: %s. Please read the latest message and "
			      "answer, or decide with a decision (GOAL_ACHIEVED with a result, REPLY "
			      "with the text, REJECTED with a reason, or WAIT).%s%s%s%s",
			      problem, latest ? "\n\nThe latest message from " : "",
			      latest ? (from ? from : "the counterparty") : "", latest ? ":\n\n" : "",
			      latest ? latest : "");
	free(latest);
	return q;
}

int llm_evaluate(struct llm *l, const struct agent_case *c, struct agent_decision *out,
		 const char **error_r)
{
	struct prompt_vars v;
	json_object *messages = json_object_new_array(), *schema = llm_schema_evaluate(c->result_schema);
	char *sys, *user, *problem = NULL;
	enum llm_check last = LLM_CHECK_BAD;
	int rc = -1;

	memset(out, 0, sizeof *out);
	prompt_vars_case(c, &v);
	sys = prompt_render(l->prompts, PROMPT_SYSTEM, &v);
	user = prompt_render(l->prompts, PROMPT_EVALUATE, &v);
	json_object_array_add(messages, message("system", sys));
	json_object_array_add(messages, message("user", user));
	for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
		char *body = llm_request_body(l->model, messages, "evaluate_thread", schema,
					      l->max_tokens, l->temperature);
		struct llm_response r;
		const char *early, *outcome;
		long status;
		int64_t latency;
		int ok;

		ok = call(l, c, "evaluate_thread", body, &r, &status, &latency);
		free(body);
		if (ok < 0)
			goto out;
		free(problem);
		problem = NULL;
		early = answer_problem(&r);
		if (early && r.refusal) {
			problem = xasprintf("the model refused: %.300s", r.refusal);
			last = LLM_CHECK_BAD;
		} else if (early) {
			problem = xstrdup("the answer was cut off (finish_reason length)");
			last = LLM_CHECK_BAD;
		} else {
			last = llm_check_decision(r.content, c->result_schema, out, &problem);
		}
		if (last == LLM_CHECK_OK) {
			record_call(l, c, "evaluate_thread", &r, status, latency, "ok");
			llm_response_free(&r);
			rc = 0;
			goto out;
		}
		outcome = early ? early : last == LLM_CHECK_RESULT ? "result_mismatch" : "bad_output";
		record_call(l, c, "evaluate_thread", &r, status, latency, outcome);
		log_warn("case %s: evaluate_thread: unusable answer (%s)%s", c->case_id, problem,
			 attempt + 1 < ATTEMPTS ? "; asking again" : "");
		add_correction(messages, r.content, problem,
			       last == LLM_CHECK_RESULT
				       ? "With GOAL_ACHIEVED, \"result\" must match the result schema "
					 "given above exactly. If the conversation does not contain "
					 "what it needs, decide NEEDS_INPUT or REPLY instead."
				       : "\"decision\" must be one of GOAL_ACHIEVED, REPLY, NEEDS_INPUT, "
					 "REJECTED, with \"reply\" for REPLY, \"inputQuestion\" for "
					 "NEEDS_INPUT, \"result\" for GOAL_ACHIEVED and \"reason\" for "
					 "REJECTED.");
		llm_response_free(&r);
	}
	/* SPEC §6: never success after two bad answers; a person looks at it. */
	out->kind = AGENT_NEEDS_INPUT;
	out->question = undecided_question(c, last, problem);
	log_info("case %s: evaluate_thread: no usable decision after %d tries; asking the operator",
		 c->case_id, ATTEMPTS);
	rc = 0;
out:
	if (rc < 0)
		*error_r = l->err;
	free(problem);
	free(sys);
	free(user);
	json_object_put(messages);
	json_object_put(schema);
	prompt_vars_free(&v);
	return rc;
}
