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
#include "store/erase.h"
#include "store/health.h"
#include "store/stats.h"
#include "store/types.h"

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

/* Counts as a gauge family; every name in always[] appears, 0 when absent. */
static void put_counts(struct buf *out, const char *name, const char *label,
		       const struct store_count *rows, size_t n, const char *const *always)
{
	for (size_t k = 0; always[k]; k++) {
		int64_t v = 0;

		for (size_t i = 0; i < n; i++)
			if (strcmp(rows[i].name, always[k]) == 0)
				v = rows[i].count;
		buf_printf(out, "%s{%s=\"%s\"} %lld\n", name, label, always[k], (long long)v);
	}
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		while (always[k] && strcmp(always[k], rows[i].name) != 0)
			k++;
		if (always[k])
			continue;
		buf_printf(out, "%s{%s=\"", name, label);
		put_label(out, rows[i].name);
		buf_printf(out, "\"} %lld\n", (long long)rows[i].count);
	}
}

/* Agent calls and tokens from the accounting table (doc/operator-guide.md,
 * "The agent"). 0 (also when the table does not
 * exist yet), or -1 when the query failed. */
static int put_agent(struct buf *out, struct db *db)
{
	struct store_agent_usage *rows = NULL;
	const char *err = NULL;
	size_t n;

	if (store_stats_agent(db, &rows, &n, &err) < 0) {
		log_warn("metrics: %s", err);
		return -1;
	}
	put_help(out, "offload_agent_calls_total", "counter",
		 "Calls to the agent's language model, by call and outcome.");
	for (size_t i = 0; i < n; i++) {
		buf_puts(out, "offload_agent_calls_total{call=\"");
		put_label(out, rows[i].call);
		buf_puts(out, "\",outcome=\"");
		put_label(out, rows[i].outcome);
		buf_printf(out, "\"} %lld\n", (long long)rows[i].calls);
	}
	put_help(out, "offload_agent_tokens_total", "counter",
		 "Tokens used by the agent's language model, by call and kind (prompt, completion).");
	/* Rows come sorted by call: sum the outcomes of each call. */
	for (size_t i = 0; i < n;) {
		const char *call = rows[i].call;
		int64_t prompt = 0, completion = 0;

		for (; i < n && strcmp(rows[i].call, call) == 0; i++) {
			prompt += rows[i].prompt_tokens;
			completion += rows[i].completion_tokens;
		}
		buf_puts(out, "offload_agent_tokens_total{call=\"");
		put_label(out, call);
		buf_printf(out, "\",kind=\"prompt\"} %lld\n", (long long)prompt);
		buf_puts(out, "offload_agent_tokens_total{call=\"");
		put_label(out, call);
		buf_printf(out, "\",kind=\"completion\"} %lld\n", (long long)completion);
	}
	free(rows);
	return 0;
}

/* The database node's Galera state (all 0 on a server without Galera). 0, or -1. */
static int put_node(struct buf *out, struct db *db)
{
	struct store_node_state st;
	const char *why = NULL;

	if (store_node_check(db, &st, &why) < 0) {
		log_warn("metrics: %s", why);
		return -1;
	}
	put_help(out, "offload_cluster_wsrep_on", "gauge",
		 "1 when the database replicates with Galera (the rest is 0 otherwise).");
	buf_printf(out, "offload_cluster_wsrep_on %d\n", st.wsrep_on);
	put_help(out, "offload_cluster_node_ready", "gauge",
		 "1 when this host's node is ready (wsrep_ready = ON).");
	buf_printf(out, "offload_cluster_node_ready %d\n", st.ready);
	put_help(out, "offload_cluster_node_state", "gauge",
		 "wsrep_local_state of this host's node: 4 = synced, 2 = donor, 1 = joining.");
	buf_printf(out, "offload_cluster_node_state %lld\n", (long long)st.local_state);
	put_help(out, "offload_cluster_primary", "gauge",
		 "1 when this host's node is in the cluster's primary component.");
	buf_printf(out, "offload_cluster_primary %d\n", st.primary);
	put_help(out, "offload_cluster_size", "gauge", "Nodes in this node's cluster view.");
	buf_printf(out, "offload_cluster_size %lld\n", (long long)st.cluster_size);
	return 0;
}

/* The database gauges. 0, or -1 when a query failed (nothing written then). */
static int put_database(struct buf *out, struct db *db, int64_t now_ms)
{
	const char *statuses[CASE_STATUS_COUNT + 1];
	static const char *const states[] = { "pending", "delivered", "dead", NULL };
	struct store_stats st;
	const char *err = NULL;
	int64_t oldest, by_request, by_retention;

	if (store_stats_read(db, now_ms, &st, &err) < 0) {
		log_warn("metrics: %s", err);
		return -1;
	}
	put_help(out, "offload_cases", "gauge", "Cases by status.");
	for (int i = 0; i <= CASE_STATUS_COUNT; i++)
		statuses[i] = i < CASE_STATUS_COUNT ? store_case_status_name(i) : NULL;
	put_counts(out, "offload_cases", "status", st.cases, st.n_cases, statuses);
	put_help(out, "offload_events_due", "gauge",
		 "Internal events waiting for the worker whose time has come (due backlog).");
	buf_printf(out, "offload_events_due %lld\n", (long long)st.events_due);
	oldest = st.has_events_oldest ? st.events_oldest_due_at : now_ms;
	put_help(out, "offload_events_due_age_seconds", "gauge",
		 "How long the oldest due event has been waiting (0 when none).");
	buf_printf(out, "offload_events_due_age_seconds %.3f\n",
		   (double)(now_ms > oldest ? now_ms - oldest : 0) / 1e3);
	put_help(out, "offload_webhook_deliveries", "gauge",
		 "Webhook deliveries by state: pending (incl. retrying), delivered, dead.");
	put_counts(out, "offload_webhook_deliveries", "state", st.deliveries, st.n_deliveries, states);
	put_help(out, "offload_webhook_deliveries_due", "gauge",
		 "Pending webhook deliveries whose next attempt is due.");
	buf_printf(out, "offload_webhook_deliveries_due %lld\n", (long long)st.deliveries_due);
	store_stats_free(&st);
	if (store_erase_counted(db, &by_request, &by_retention) < 0) {
		log_warn("metrics: %s", db_error(db));
		return -1;
	}
	put_help(out, "offload_cases_purged_total", "counter",
		 "Cases deleted with everything kept for them, by reason: request (offloadctl case "
		 "delete) or retention ([retention] finished_days).");
	buf_printf(out, "offload_cases_purged_total{reason=\"request\"} %lld\n",
		   (long long)by_request);
	buf_printf(out, "offload_cases_purged_total{reason=\"retention\"} %lld\n",
		   (long long)by_retention);
	if (put_node(out, db) < 0)
		return -1;
	return put_agent(out, db);
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
