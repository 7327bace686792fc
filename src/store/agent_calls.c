/* agent_calls.c: LLM call accounting (sql/005_agent.sql). */
#include "store/agent_calls.h"
#include "store/db.h"

#define N_ARGS(a) (sizeof(a) / sizeof((a)[0]))

int store_agent_call_record(struct db *db, const struct store_agent_call *call,
			    const char **error_r)
{
	static const char sql[] =
		"INSERT INTO agent_calls (case_id, call_name, model, prompt_tokens, completion_tokens,"
		" total_tokens, latency_ms, http_status, outcome, created_at)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	struct db_arg args[] = {
		DB_STR(call->case_id),
		DB_STR(call->call_name),
		DB_STR(call->model),
		DB_INT(call->prompt_tokens),
		DB_INT(call->completion_tokens),
		DB_INT(call->total_tokens),
		DB_INT(call->latency_ms),
		call->http_status ? DB_INT(call->http_status) : DB_NULL,
		DB_STR(call->outcome),
		DB_INT(call->created_at_ms),
	};

	if (db_query(db, sql, args, N_ARGS(args), NULL) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	return 0;
}

int store_agent_usage_get(struct db *db, const char *case_id, struct store_agent_usage *usage_r,
			  const char **error_r)
{
	static const char sql[] =
		"SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),"
		" COALESCE(SUM(total_tokens), 0), COALESCE(SUM(latency_ms), 0)"
		" FROM agent_calls WHERE case_id = ?";
	struct db_arg args[] = { DB_STR(case_id) };
	struct db_res *res = NULL;

	if (db_query(db, sql, args, N_ARGS(args), &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	if (db_res_rows(res) != 1) {
		db_res_free(&res);
		*error_r = "no totals returned";
		return -1;
	}
	usage_r->calls = db_res_int(res, 0, 0);
	usage_r->prompt_tokens = db_res_int(res, 0, 1);
	usage_r->completion_tokens = db_res_int(res, 0, 2);
	usage_r->total_tokens = db_res_int(res, 0, 3);
	usage_r->latency_ms = db_res_int(res, 0, 4);
	db_res_free(&res);
	return 0;
}
