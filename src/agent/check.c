/* check.c: what the model answered, checked before anything is used: one JSON object of
 * the right shape, texts within the limits, a result that conforms to the resultSchema. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent/agent-private.h"
#include "agent/schema.h"
#include "common/util.h"
#include "common/xalloc.h"

/* 1 when s[from..len) is only white space. */
int llm_only_space(const char *s, size_t from, size_t len)
{
	for (size_t i = from; i < len; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
}

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
	if (len > LLM_MAX_RESPONSE) {
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
	if (!llm_only_space(s, json_tokener_get_parse_end(tok), len)) {
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
		llm_strip_optional_nulls(result_schema, result, 0);
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
	case AGENT_NEEDS_INPUT:
		if (blank(question)) {
			*problem_r = xstrdup("the decision was NEEDS_INPUT but there was no inputQuestion");
			goto out;
		}
		out->question = trimmed(question);
		out->question[util_utf8_cut(out->question, strlen(out->question),
					    AGENT_MAX_QUESTION)] = '\0';
		break;
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
