/* stats.c: counts over cases, events, webhook deliveries and agent calls for /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/db.h"
#include "store/stats.h"

/* MariaDB ER_NO_SUCH_TABLE: a schema older than the agent's accounting table. */
#define STATS_ER_NO_SUCH_TABLE 1146

static void read_counts(const struct db_res *res, struct store_count **out, size_t *n)
{
	size_t rows = db_res_rows(res);

	*out = xcalloc(rows ? rows : 1, sizeof **out);
	for (size_t i = 0; i < rows; i++) {
		snprintf((*out)[i].name, sizeof (*out)[i].name, "%s", db_res_text(res, i, 0));
		(*out)[i].count = db_res_int(res, i, 1);
	}
	*n = rows;
}

int store_stats_read(struct db *db, int64_t now_ms, struct store_stats *s_r, const char **error_r)
{
	static const char cases_sql[] = "SELECT status, COUNT(*) FROM cases GROUP BY status";
	static const char due_sql[] =
		"SELECT COUNT(*), MIN(available_at) FROM events"
		" WHERE state = 'pending' AND available_at <= ?";
	static const char hooks_sql[] =
		"SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state";
	static const char hooks_due_sql[] =
		"SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?";
	struct db_res *cases = NULL, *due = NULL, *hooks = NULL, *hooks_due = NULL;
	struct db_arg now[] = { DB_INT(now_ms) };
	int rc = -1;

	memset(s_r, 0, sizeof *s_r);
	if (db_query(db, cases_sql, NULL, 0, &cases) < 0 || db_query(db, due_sql, now, 1, &due) < 0 ||
	    db_query(db, hooks_sql, NULL, 0, &hooks) < 0 ||
	    db_query(db, hooks_due_sql, now, 1, &hooks_due) < 0) {
		*error_r = db_error(db);
		goto out;
	}
	read_counts(cases, &s_r->cases, &s_r->n_cases);
	read_counts(hooks, &s_r->deliveries, &s_r->n_deliveries);
	s_r->events_due = db_res_int(due, 0, 0);
	s_r->has_events_oldest = db_res_get(due, 0, 1) != NULL;
	s_r->events_oldest_due_at = db_res_int(due, 0, 1);
	s_r->deliveries_due = db_res_int(hooks_due, 0, 0);
	rc = 0;
out:
	db_res_free(&cases);
	db_res_free(&due);
	db_res_free(&hooks);
	db_res_free(&hooks_due);
	return rc;
}

void store_stats_free(struct store_stats *s)
{
	free(s->cases);
	free(s->deliveries);
	memset(s, 0, sizeof *s);
}

static void agent_usage_read(const struct db_res *res, size_t i, void *row)
{
	struct store_agent_usage *u = row;

	snprintf(u->call, sizeof u->call, "%s", db_res_text(res, i, 0));
	snprintf(u->outcome, sizeof u->outcome, "%s", db_res_text(res, i, 1));
	u->calls = db_res_int(res, i, 2);
	u->prompt_tokens = db_res_int(res, i, 3);
	u->completion_tokens = db_res_int(res, i, 4);
}

int store_stats_agent(struct db *db, struct store_agent_usage **rows_r, size_t *n_r,
		      const char **error_r)
{
	/* A scan of the table: fine for a scrape every few seconds up to some millions of calls. */
	static const char sql[] =
		"SELECT call_name, outcome, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)"
		" FROM agent_calls GROUP BY call_name, outcome ORDER BY call_name, outcome";

	*rows_r = db_query_rows(db, sql, NULL, 0, sizeof **rows_r, agent_usage_read, n_r, error_r);
	if (*rows_r || db_errno(db) == STATS_ER_NO_SUCH_TABLE)
		return 0;
	return -1;
}
