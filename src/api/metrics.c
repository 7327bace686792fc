/* metrics.c: Prometheus metrics of offload-api: in-memory request series, database gauges. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "api/metrics.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"

/* Series are (method, route, status): the methods and routes are fixed lists and statuses a
 * few dozen, so this bound is never reached in practice; beyond it requests are only counted
 * in offload_http_requests_unrecorded_total. */
#define METRICS_MAX_SERIES 1024
#define METRICS_MAX_OUTPUT (8 * 1024 * 1024)

/* Upper bounds of the latency buckets, in microseconds (+Inf is implicit). */
static const int64_t bucket_us[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
#define N_BUCKETS (sizeof bucket_us / sizeof bucket_us[0])

/* Clients choose the method string: only these become label values. */
static const char *const methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
};
#define N_METHODS (sizeof methods / sizeof methods[0])

struct series {
	unsigned method;          /* index into methods[] */
	const char *route;        /* a route pattern (static) or "(unmatched)" */
	int status;
	uint64_t count;
	uint64_t sum_us;
	uint64_t buckets[N_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
};

/* One table for all threads under one mutex: the critical section is a short scan and a few
 * increments, far below the cost of the FastCGI round trip around it. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series table[METRICS_MAX_SERIES];
static size_t n_series;
static uint64_t unrecorded;

static unsigned method_index(const char *method)
{
	for (unsigned i = 0; i < N_METHODS - 1; i++)
		if (method && strcmp(method, methods[i]) == 0)
			return i;
	return N_METHODS - 1;
}

void metrics_observe(const char *method, const char *route, int status, int64_t duration_us)
{
	unsigned m = method_index(method);
	struct series *s = NULL;
	size_t b = 0;

	if (!route)
		route = "(unmatched)";
	if (duration_us < 0)
		duration_us = 0;
	while (b < N_BUCKETS && duration_us > bucket_us[b])
		b++;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_series; i++) {
		if (table[i].method == m && table[i].status == status &&
		    (table[i].route == route || strcmp(table[i].route, route) == 0)) {
			s = &table[i];
			break;
		}
	}
	if (!s && n_series < METRICS_MAX_SERIES) {
		s = &table[n_series++];
		s->method = m;
		s->route = route;
		s->status = status;
	}
	if (s) {
		s->count++;
		s->sum_us += (uint64_t)duration_us;
		s->buckets[b]++;
	} else {
		unrecorded++;
	}
	pthread_mutex_unlock(&lock);
}

/* A label value with the exposition format's escapes (backslash, quote, newline). */
static void put_label(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			buf_puts(out, "\\n");
		else
			buf_append(out, v, 1);
	}
}

static void put_help(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_series_labels(struct buf *out, const struct series *s)
{
	buf_printf(out, "method=\"%s\",route=\"", methods[s->method]);
	put_label(out, s->route);
	buf_printf(out, "\",status=\"%d\"", s->status);
}

static void put_requests(struct buf *out)
{
	struct series *snap;
	size_t n;
	uint64_t lost;

	pthread_mutex_lock(&lock);
	n = n_series;
	lost = unrecorded;
	snap = xmalloc((n ? n : 1) * sizeof *snap);
	memcpy(snap, table, n * sizeof *snap);
	pthread_mutex_unlock(&lock);

	put_help(out, "offload_http_requests_total", "counter",
		 "Requests answered by offload-api, by method, route pattern and status.");
	for (size_t i = 0; i < n; i++) {
		buf_puts(out, "offload_http_requests_total{");
		put_series_labels(out, &snap[i]);
		buf_printf(out, "} %llu\n", (unsigned long long)snap[i].count);
	}
	put_help(out, "offload_http_request_duration_seconds", "histogram",
		 "Time from routing to the reply, by method, route pattern and status.");
	for (size_t i = 0; i < n; i++) {
		uint64_t cum = 0;

		for (size_t b = 0; b <= N_BUCKETS; b++) {
			cum += snap[i].buckets[b];
			buf_puts(out, "offload_http_request_duration_seconds_bucket{");
			put_series_labels(out, &snap[i]);
			if (b < N_BUCKETS)
				buf_printf(out, ",le=\"%g\"} %llu\n", (double)bucket_us[b] / 1e6,
					   (unsigned long long)cum);
			else
				buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		}
		buf_puts(out, "offload_http_request_duration_seconds_sum{");
		put_series_labels(out, &snap[i]);
		buf_printf(out, "} %.6f\n", (double)snap[i].sum_us / 1e6);
		buf_puts(out, "offload_http_request_duration_seconds_count{");
		put_series_labels(out, &snap[i]);
		buf_printf(out, "} %llu\n", (unsigned long long)snap[i].count);
	}
	put_help(out, "offload_http_requests_unrecorded_total", "counter",
		 "Requests not broken down by series because the series table was full.");
	buf_printf(out, "offload_http_requests_unrecorded_total %llu\n", (unsigned long long)lost);
	free(snap);
}

/* "state count" rows as a gauge family; every name in always[] appears, 0 when absent. */
static void put_counts(struct buf *out, const char *name, const char *label,
		       const struct db_res *res, const char *const *always)
{
	for (size_t k = 0; always[k]; k++) {
		int64_t v = 0;

		for (size_t i = 0; i < db_res_rows(res); i++)
			if (strcmp(db_res_get(res, i, 0), always[k]) == 0)
				v = db_res_int(res, i, 1);
		buf_printf(out, "%s{%s=\"%s\"} %lld\n", name, label, always[k], (long long)v);
	}
	for (size_t i = 0; i < db_res_rows(res); i++) {
		const char *got = db_res_get(res, i, 0);
		size_t k = 0;

		while (always[k] && strcmp(always[k], got) != 0)
			k++;
		if (always[k])
			continue;
		buf_printf(out, "%s{%s=\"", name, label);
		put_label(out, got);
		buf_printf(out, "\"} %lld\n", (long long)db_res_int(res, i, 1));
	}
}

/* MariaDB ER_NO_SUCH_TABLE: a schema older than the agent's accounting table. */
#define METRICS_ER_NO_SUCH_TABLE 1146

/* Agent calls and tokens from the accounting table (SPEC §6). 0 (also when the table does not
 * exist yet), or -1 when the query failed. A scan of the table: fine for a scrape every few
 * seconds up to some millions of calls. */
static int put_agent(struct buf *out, struct db *db)
{
	static const char sql[] =
		"SELECT call_name, outcome, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)"
		" FROM agent_calls GROUP BY call_name, outcome ORDER BY call_name, outcome";
	struct db_res *res = NULL;
	size_t n;

	if (db_query(db, sql, NULL, 0, &res) < 0)
		return db_errno(db) == METRICS_ER_NO_SUCH_TABLE ? 0 : -1;
	n = db_res_rows(res);
	put_help(out, "offload_agent_calls_total", "counter",
		 "Calls to the agent's language model, by call and outcome.");
	for (size_t i = 0; i < n; i++) {
		buf_puts(out, "offload_agent_calls_total{call=\"");
		put_label(out, db_res_get(res, i, 0));
		buf_puts(out, "\",outcome=\"");
		put_label(out, db_res_get(res, i, 1));
		buf_printf(out, "\"} %lld\n", (long long)db_res_int(res, i, 2));
	}
	put_help(out, "offload_agent_tokens_total", "counter",
		 "Tokens used by the agent's language model, by call and kind (prompt, completion).");
	/* Rows come sorted by call: sum the outcomes of each call. */
	for (size_t i = 0; i < n;) {
		const char *call = db_res_get(res, i, 0);
		int64_t prompt = 0, completion = 0;

		for (; i < n && strcmp(db_res_get(res, i, 0), call) == 0; i++) {
			prompt += db_res_int(res, i, 3);
			completion += db_res_int(res, i, 4);
		}
		buf_puts(out, "offload_agent_tokens_total{call=\"");
		put_label(out, call);
		buf_printf(out, "\",kind=\"prompt\"} %lld\n", (long long)prompt);
		buf_puts(out, "offload_agent_tokens_total{call=\"");
		put_label(out, call);
		buf_printf(out, "\",kind=\"completion\"} %lld\n", (long long)completion);
	}
	db_res_free(&res);
	return 0;
}

/* The database gauges. 0, or -1 when a query failed (nothing written then). */
static int put_database(struct buf *out, struct db *db, int64_t now_ms)
{
	static const char cases_sql[] = "SELECT status, COUNT(*) FROM cases GROUP BY status";
	static const char due_sql[] =
		"SELECT COUNT(*), MIN(available_at) FROM events"
		" WHERE state = 'pending' AND available_at <= ?";
	static const char hooks_sql[] =
		"SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state";
	static const char hooks_due_sql[] =
		"SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?";
	static const char *const statuses[] = { "CREATED", "RUNNING", "INPUT_NEEDED", "COMPLETED",
						"FAILED", NULL };
	static const char *const states[] = { "pending", "delivered", "dead", NULL };
	struct db_res *cases = NULL, *due = NULL, *hooks = NULL, *hooks_due = NULL;
	struct db_arg now[] = { DB_INT(now_ms) };
	int64_t oldest;
	int rc = -1;

	if (db_query(db, cases_sql, NULL, 0, &cases) < 0 || db_query(db, due_sql, now, 1, &due) < 0 ||
	    db_query(db, hooks_sql, NULL, 0, &hooks) < 0 ||
	    db_query(db, hooks_due_sql, now, 1, &hooks_due) < 0) {
		log_warn("metrics: %s", db_error(db));
		goto out;
	}
	put_help(out, "offload_cases", "gauge", "Cases by status.");
	put_counts(out, "offload_cases", "status", cases, statuses);
	put_help(out, "offload_events_due", "gauge",
		 "Internal events waiting for the worker whose time has come (due backlog).");
	buf_printf(out, "offload_events_due %lld\n", (long long)db_res_int(due, 0, 0));
	oldest = db_res_get(due, 0, 1) ? db_res_int(due, 0, 1) : now_ms;
	put_help(out, "offload_events_due_age_seconds", "gauge",
		 "How long the oldest due event has been waiting (0 when none).");
	buf_printf(out, "offload_events_due_age_seconds %.3f\n",
		   (double)(now_ms > oldest ? now_ms - oldest : 0) / 1e3);
	put_help(out, "offload_webhook_deliveries", "gauge",
		 "Webhook deliveries by state: pending (incl. retrying), delivered, dead.");
	put_counts(out, "offload_webhook_deliveries", "state", hooks, states);
	put_help(out, "offload_webhook_deliveries_due", "gauge",
		 "Pending webhook deliveries whose next attempt is due.");
	buf_printf(out, "offload_webhook_deliveries_due %lld\n", (long long)db_res_int(hooks_due, 0, 0));
	if (put_agent(out, db) < 0) {
		log_warn("metrics: %s", db_error(db));
		goto out;
	}
	rc = 0;
out:
	db_res_free(&cases);
	db_res_free(&due);
	db_res_free(&hooks);
	db_res_free(&hooks_due);
	return rc;
}

void metrics_get(struct http_request *r)
{
	struct buf out, head, db_part;
	int db_up;

	buf_init(&out, METRICS_MAX_OUTPUT);
	buf_init(&db_part, METRICS_MAX_OUTPUT / 2);
	buf_init(&head, 512);
	put_requests(&out);
	db_up = put_database(&db_part, r->t->db, r->now_ms) == 0;
	if (db_up && db_part.len)
		buf_append(&out, db_part.data, db_part.len);
	put_help(&out, "offload_database_up", "gauge",
		 "1 when the database answered the queries of this scrape.");
	buf_printf(&out, "offload_database_up %d\n", db_up);
	buf_printf(&head,
		   "Status: 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		   "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n", out.len);
	FCGX_PutStr(head.data, (int)head.len, r->t->req.out);
	if (out.len)
		FCGX_PutStr(out.data, (int)out.len, r->t->req.out);
	r->replied = 1;
	r->status = 200;
	buf_free(&head);
	buf_free(&db_part);
	buf_free(&out);
}
