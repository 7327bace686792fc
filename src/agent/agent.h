/* agent.h: what writes the messages and judges the replies of a case (doc/operator-guide.md,
 * "The agent"). */
#ifndef OFFLOAD_AGENT_H
#define OFFLOAD_AGENT_H

#include <stddef.h>
#include <json-c/json.h>

struct cfg;
struct agent;
struct db;

/* What kind of message to draft. */
enum agent_draft_kind {
	AGENT_DRAFT_OUTREACH,  /* the first message */
	AGENT_DRAFT_FOLLOW_UP, /* nobody answered: follow-up n of maxAttempts */
	AGENT_DRAFT_REPLY,     /* answer the counterparty's last message */
};

/* The four outcomes of evaluating a thread, and the operator-only WAIT. */
enum agent_decision_kind {
	AGENT_GOAL_ACHIEVED, /* complete with result */
	AGENT_REPLY,         /* send reply */
	AGENT_NEEDS_INPUT,   /* ask the operator question */
	AGENT_REJECTED,      /* fail with reason */
	AGENT_WAIT,          /* operator only: resume the follow-up schedule */
};

/* Everything the agent may see of a case. Borrowed pointers; the caller owns them. */
struct agent_case {
	const char *case_id;
	json_object *goal;           /* {"objective", "knowledge"?} */
	json_object *counterparty;   /* {"address", "name", ...} */
	json_object *persona;        /* {"name", "role"?, "company"?, "tone"?} */
	json_object *constraints;    /* array of strings, or NULL */
	json_object *result_schema;  /* object, or NULL */
	json_object *thread;         /* array of {direction, from, to, subject, body, at} oldest first;
					an inbound message may add attachments [{name, type, size}] */
	json_object *human_answers;  /* array of {question, answer, at} */
	int follow_up_n;             /* for AGENT_DRAFT_FOLLOW_UP: 1..max_attempts */
	int max_attempts;
	const char *first_subject;   /* subject of the first message, or NULL before it */
	int sms;                     /* an SMS case: drafts have no subject and must fit */
	int sms_max_segments;        /* [sms] max_segments (doc/api.md, SMS) */
	struct db *db;               /* when set, every model call is recorded in agent_calls
					(the caller's connection, outside any transaction) */
};

struct agent_draft {
	char *subject; /* one line, UTF-8 */
	char *body;    /* text/plain, UTF-8 */
};

struct agent_decision {
	enum agent_decision_kind kind;
	char *reply;       /* AGENT_REPLY */
	char *question;    /* AGENT_NEEDS_INPUT */
	char *result_json; /* AGENT_GOAL_ACHIEVED: a JSON object */
	char *reason;      /* AGENT_REJECTED */
};

/*
 * Reads [agent] kind (default manual). For kind = llm also base_url, api_key or
 * api_key_file, model, timeout_ms, max_tokens, temperature and prompts_dir (default
 * PKGDATADIR/prompts), and loads the prompt files. NULL with *error_r on a bad
 * configuration (static or cfg-owned text; never the key).
 */
struct agent *agent_new(struct cfg *cfg, const char **error_r);
void agent_free(struct agent **a);

/* Drafts a message. 0, or -1 with *error_r for a temporary failure (retry the event). */
int agent_draft(struct agent *a, const struct agent_case *c, enum agent_draft_kind kind,
		struct agent_draft *out, const char **error_r);
void agent_draft_free(struct agent_draft *d);

/* Evaluates the thread. 0, or -1 with *error_r for a temporary failure. */
int agent_evaluate(struct agent *a, const struct agent_case *c, struct agent_decision *out,
		   const char **error_r);
void agent_decision_free(struct agent_decision *d);

/* 1 when the agent judges threads by itself (llm): an operator's answer without a decision
 * is then given to it and the thread evaluated again (doc/api.md, "Lifecycle"). 0 for the
 * manual agent. */
int agent_judges_answers(const struct agent *a);

/*
 * Checks a GOAL_ACHIEVED result (JSON text; NULL means null) against the case's
 * resultSchema with the subset of doc/api.md, "POST /cases". NULL when it conforms or there
 * is no schema; otherwise a question for the operator naming what is missing
 * ("result.taxId: is required"), newly allocated.
 */
char *agent_result_problem(json_object *result_schema, const char *result_json);

#endif
