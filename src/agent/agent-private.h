/* agent-private.h: what agent.c, manual.c, llm.c, schema-strict.c and check.c share: the two
 * agents behind agent.h. */
#ifndef OFFLOAD_AGENT_PRIVATE_H
#define OFFLOAD_AGENT_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "agent/agent.h"

struct cfg;
struct llm;

/* A draft or a reply is never sent beyond these (bytes); a subject is one line. */
#define AGENT_MAX_BODY 20000
#define AGENT_MAX_SUBJECT 200
/* Questions to the operator are cut to this many bytes. */
#define AGENT_MAX_QUESTION 8000
/* Bytes of an LLM response body read, and of an answer looked at. */
#define LLM_MAX_RESPONSE (8 * 1024 * 1024)

/* ---- agent.c */

/* The body of the counterparty's newest inbound message, cut to max bytes on a UTF-8
 * boundary with "[...]" appended when cut; NULL when there is none. Newly allocated. */
char *agent_latest_inbound(const struct agent_case *c, const char **from_r, size_t max);

/* Whether text fits the SMS case c's [sms] max_segments (doc/api.md, SMS): 1 yes; 0 no,
 * with what is wrong in why (cap bytes), e.g. "the text takes 4 SMS segments (GSM-7, 480
 * septets); at most 3 are allowed". */
int agent_sms_fits(const struct agent_case *c, const char *text, char *why, size_t cap);

/* ---- manual.c: templates, and every reply goes to the operator. Never fail. */
int manual_draft(const struct agent_case *c, enum agent_draft_kind kind, struct agent_draft *out);
int manual_evaluate(const struct agent_case *c, struct agent_decision *out);

/* ---- llm.c: an OpenAI-compatible Chat Completions endpoint (doc/operator-guide.md,
 * "The agent"). */

/*
 * Reads [agent] base_url api_key|api_key_file model timeout_ms max_tokens temperature
 * prompts_dir and loads the prompt files. NULL with *error_r (static, or owned by cfg) on a
 * bad configuration. The key is kept in memory only and never appears in any message.
 */
struct llm *llm_new(struct cfg *cfg, const char **error_r);
void llm_free(struct llm **l);
/* The contracts of agent_draft and agent_evaluate; *error_r lives until the next call. */
int llm_draft(struct llm *l, const struct agent_case *c, enum agent_draft_kind kind,
	      struct agent_draft *out, const char **error_r);
int llm_evaluate(struct llm *l, const struct agent_case *c, struct agent_decision *out,
		 const char **error_r);

/* The parts of llm.c, schema-strict.c and check.c the unit tests reach directly. */

/* What one Chat Completions answer said. */
struct llm_response {
	char *content;           /* choices[0].message.content (parts joined), or NULL */
	char *refusal;           /* choices[0].message.refusal, or NULL */
	char finish_reason[32];  /* "stop", "length", ... or "" */
	int64_t prompt_tokens;   /* usage; 0 when the server did not say */
	int64_t completion_tokens;
	int64_t total_tokens;
};

/* Parses a 200 response body. 0, or -1 with the reason in err (the body is not a Chat
 * Completions response: no JSON, no choices, an error object). */
int llm_parse_response(const char *body, size_t len, struct llm_response *r, char *err,
		       size_t err_cap);
void llm_response_free(struct llm_response *r);

/* The request body: model, messages, response_format json_schema NAME with schema (a
 * reference is taken), max_tokens when > 0, temperature when not NULL. Newly allocated. */
char *llm_request_body(const char *model, json_object *messages, const char *name,
		       json_object *schema, int64_t max_tokens, const char *temperature);

/* ---- schema-strict.c */

/* The response_format schemas (doc/operator-guide.md, "The agent"), new references the
 * caller puts. The evaluation's result member is the case's resultSchema made strict (every
 * property required, the optional ones nullable, additionalProperties false), or {summary}
 * without one. */
json_object *llm_schema_draft(void);
json_object *llm_schema_evaluate(json_object *result_schema);
/* Removes the null members v (an answer's result) has for properties that schema (the
 * resultSchema) does not require and whose type does not allow null: the strict form made
 * the model write them. depth is 0 at the top. */
void llm_strip_optional_nulls(json_object *schema, json_object *v, int depth);

/* ---- check.c */

/* 1 when s[from..len) is only white space, else 0. */
int llm_only_space(const char *s, size_t from, size_t len);

/* Outcomes of checking what the model wrote. */
enum llm_check {
	LLM_CHECK_OK,       /* usable: out is filled */
	LLM_CHECK_BAD,      /* not JSON, wrong shape, empty or over-long text, unknown decision */
	LLM_CHECK_RESULT,   /* GOAL_ACHIEVED whose result does not conform to the resultSchema */
};

/* Checks a draft_message answer. *problem_r (newly allocated) says what was wrong. */
enum llm_check llm_check_draft(const char *content, struct agent_draft *out, char **problem_r);
/* Checks an evaluate_thread answer; a result has the nulls of optional members removed
 * before it is validated against result_schema (NULL: any object). */
enum llm_check llm_check_decision(const char *content, json_object *result_schema,
				  struct agent_decision *out, char **problem_r);

#endif
