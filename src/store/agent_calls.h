/* agent_calls.h: the accounting of LLM agent calls (table agent_calls) and their totals. */
#ifndef OFFLOAD_STORE_AGENT_CALLS_H
#define OFFLOAD_STORE_AGENT_CALLS_H

#include <stdint.h>

struct db;

/* One call to the model, as recorded. Strings are borrowed. */
struct store_agent_call {
	const char *case_id;       /* the case the call was for */
	const char *call_name;     /* "draft_message", "evaluate_thread" */
	const char *model;         /* the model asked */
	int64_t prompt_tokens;     /* as the server reported them (0 when it did not) */
	int64_t completion_tokens;
	int64_t total_tokens;
	int64_t latency_ms;        /* from the request to the end of the answer */
	long http_status;          /* the answer's status, or 0 when there was none (NULL) */
	const char *outcome;       /* ok, bad_output, result_mismatch, refused, truncated,
				      http_error, timeout, connection_error, bad_response */
	int64_t created_at_ms;
};

/* What the calls of one case add up to. */
struct store_agent_usage {
	int64_t calls;             /* number of calls recorded */
	int64_t prompt_tokens;     /* sums over those calls */
	int64_t completion_tokens;
	int64_t total_tokens;
	int64_t latency_ms;
};

/* Records call (autocommit: outside any transaction of the caller's). 0, or -1 with
 * *error_r (the database's text, valid until db's next statement). */
int store_agent_call_record(struct db *db, const struct store_agent_call *call,
			    const char **error_r);

/* Sums the recorded calls of case_id into *usage_r (all 0 when none). 0, or -1 with
 * *error_r (also when the table does not exist: migrations not applied yet). */
int store_agent_usage_get(struct db *db, const char *case_id, struct store_agent_usage *usage_r,
			  const char **error_r);

#endif
