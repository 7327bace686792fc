/* agent.c: picks the agent the configuration names and checks results against resultSchema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent-private.h"
#include "agent/schema.h"
#include "common/cfg.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "sms/segments.h"

#define PROBLEM_MAX 1500 /* bytes of validation errors quoted in a question */

enum agent_kind {
	AGENT_KIND_MANUAL, /* templates; every reply to the operator */
	AGENT_KIND_LLM,    /* an OpenAI-compatible endpoint */
};

struct agent {
	enum agent_kind kind;
	struct llm *llm; /* AGENT_KIND_LLM */
};

struct agent *agent_new(struct cfg *cfg, const char **error_r)
{
	const char *kind = cfg_get(cfg, "agent", "kind", "manual");
	struct agent *a;

	if (strcmp(kind, "manual") == 0) {
		a = xcalloc(1, sizeof *a);
		a->kind = AGENT_KIND_MANUAL;
		return a;
	}
	if (strcmp(kind, "llm") != 0) {
		*error_r = "[agent] kind: must be \"llm\" or \"manual\"";
		return NULL;
	}
	a = xcalloc(1, sizeof *a);
	a->kind = AGENT_KIND_LLM;
	a->llm = llm_new(cfg, error_r);
	if (!a->llm) {
		free(a);
		return NULL;
	}
	return a;
}

void agent_free(struct agent **a)
{
	if (!*a)
		return;
	llm_free(&(*a)->llm);
	free(*a);
	*a = NULL;
}

int agent_judges_answers(const struct agent *a)
{
	return a->kind == AGENT_KIND_LLM;
}

int agent_draft(struct agent *a, const struct agent_case *c, enum agent_draft_kind kind,
		struct agent_draft *out, const char **error_r)
{
	if (a->kind == AGENT_KIND_LLM)
		return llm_draft(a->llm, c, kind, out, error_r);
	return manual_draft(c, kind, out);
}

void agent_draft_free(struct agent_draft *d)
{
	free(d->subject);
	free(d->body);
	memset(d, 0, sizeof *d);
}

int agent_evaluate(struct agent *a, const struct agent_case *c, struct agent_decision *out,
		   const char **error_r)
{
	if (a->kind == AGENT_KIND_LLM)
		return llm_evaluate(a->llm, c, out, error_r);
	return manual_evaluate(c, out);
}

void agent_decision_free(struct agent_decision *d)
{
	free(d->reply);
	free(d->question);
	free(d->result_json);
	free(d->reason);
	memset(d, 0, sizeof *d);
}

char *agent_result_problem(json_object *result_schema, const char *result_json)
{
	struct schema_errors errs;
	json_object *v = NULL;
	char *text, *q;

	if (!result_schema)
		return NULL;
	if (result_json) {
		v = json_tokener_parse(result_json);
		if (!v && strcmp(result_json, "null") != 0)
			return xstrdup("The result is not valid JSON, so the case was not completed. "
				       "Please send a decision with a result that matches the "
				       "resultSchema, or answer with the missing information.");
	}
	if (schema_validate(result_schema, v, "result", &errs) == 0) {
		schema_errors_free(&errs);
		json_object_put(v);
		return NULL;
	}
	text = schema_errors_text(&errs, PROBLEM_MAX);
	q = xasprintf("The result does not match the resultSchema, so the case was not completed: "
		      "%s. Please provide what is missing (answer with the information, or send a "
		      "decision with a complete result).", text);
	free(text);
	schema_errors_free(&errs);
	json_object_put(v);
	return q;
}

char *agent_latest_inbound(const struct agent_case *c, const char **from_r, size_t max)
{
	size_t n = c->thread ? json_object_array_length(c->thread) : 0;

	*from_r = NULL;
	for (size_t i = n; i-- > 0;) {
		json_object *m = json_object_array_get_idx(c->thread, i), *v;
		const char *body;
		size_t len;

		if (!json_object_object_get_ex(m, "direction", &v) ||
		    strcmp(json_object_get_string(v), "inbound") != 0)
			continue;
		if (json_object_object_get_ex(m, "from", &v) && json_object_is_type(v, json_type_string))
			*from_r = json_object_get_string(v);
		body = json_object_object_get_ex(m, "body", &v) ? json_object_get_string(v) : "";
		len = strlen(body);
		if (len <= max)
			return xstrdup(body);
		max = util_utf8_cut(body, len, max);
		return xasprintf("%.*s\n[...]", (int)max, body);
	}
	return NULL;
}

int agent_sms_fits(const struct agent_case *c, const char *text, char *why, size_t cap)
{
	return sms_text_fits(text, c->sms_max_segments > 0 ? c->sms_max_segments : 1, NULL, NULL,
			     why, cap);
}
