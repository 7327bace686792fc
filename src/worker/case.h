/* case.h: the case of one event as step.c works on it (worker/case.c): the row read at the
 * claim, its JSON parsed, its thread and answers as the agent sees them, its send window.
 * Split from step.c, which keeps the lifecycle. */
#ifndef OFFLOAD_WORKER_CASE_H
#define OFFLOAD_WORKER_CASE_H

#include <stdint.h>

#include <json-c/json.h>

#include "common/sendwindow.h"
#include "store/case_step.h"

struct agent_case;
struct db;
struct store_event;
struct worker_ctx;

/* The case as the worker needs it: the row read at the claim, its JSON parsed, and its
 * history when it has one. */
struct case_row {
	const struct store_case *row;
	const char *id;
	enum store_case_status status;
	json_object *goal, *counterparty, *persona, *constraints, *result_schema;
	/* from the thread */
	json_object *thread;        /* [{direction, kind, from, to, subject, body, at}] */
	json_object *answers;       /* [{question, answer, at}] */
	const char *first_subject;  /* of our first message; lives in hist */
	const char *last_message_id; /* newest message of the thread (either direction) */
	char *references;           /* "<a> <b> …", oldest first, capped */
	int64_t last_outbound_at;   /* sent_at of our newest sent message, 0 when none */
	int replied_since_outbound; /* a real reply arrived after our newest message */
	int sms_max_segments;       /* [sms] max_segments, for an SMS case's texts */
	struct store_case_history hist;
	const struct send_window *window; /* the case's own, else the server's; NULL: none */
	struct send_window own_window;
};

/*
 * Prepares the case of ev (read at the claim) for a step: its history is read only when it
 * has one (a new case costs no statement here). 0, or -1 on a database error (db_error of
 * w's connection). Free c with step_case_free either way.
 */
int step_case_load(struct worker_ctx *w, const struct store_event *ev, struct case_row *c);
void step_case_free(struct case_row *c);

/* What the agent may see of c (agent/agent.h), borrowing c's objects; db records the calls. */
void step_agent_view(const struct case_row *c, struct db *db, struct agent_case *ac);

/* The string member key of o, or NULL when o is NULL or the member is absent or not a
 * string. */
const char *step_jstr(json_object *o, const char *key);
/* text parsed as JSON, or NULL when text is NULL or not JSON. */
json_object *step_json_parse(const char *text);

#endif
