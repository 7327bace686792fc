/* metrics.h: GET /metrics (Prometheus text format 0.0.4): request counts and latencies kept in
 * process memory, and gauges read from the database at scrape time. */
#ifndef OFFLOAD_METRICS_H
#define OFFLOAD_METRICS_H

#include <stdint.h>

struct http_request;

/*
 * Records one answered request: method (any string; unknown methods are counted as
 * "OTHER"), route (the matched route's pattern, a string that lives for the whole process,
 * or NULL when no route matched), the HTTP status sent (0 when none was recorded) and how
 * long it took in microseconds. Thread-safe; callable from every API thread.
 */
void metrics_observe(const char *method, const char *route, int status, int64_t duration_us);

/*
 * The GET /metrics handler: offload_http_requests_total and
 * offload_http_request_duration_seconds by method, route and status; offload_cases by
 * status; offload_events_due and offload_events_due_age_seconds (the internal queue's due
 * backlog); offload_webhook_deliveries by state and offload_webhook_deliveries_due;
 * offload_agent_calls_total by call and outcome and offload_agent_tokens_total by call and
 * kind (from the agent_calls table, when it exists); offload_database_up. Always 200 text/plain; version=0.0.4 (the database gauges are left
 * out, and offload_database_up is 0, when the database does not answer).
 */
void metrics_get(struct http_request *r);

#endif
