/* stats.h: the figures GET /metrics reads from the database at scrape time. */
#ifndef OFFLOAD_STORE_STATS_H
#define OFFLOAD_STORE_STATS_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* A count by a stored name (a case status, a delivery state). */
struct store_count {
	char name[33]; /* the value as stored */
	int64_t count;
};

/* The queue and outcome gauges. */
struct store_stats {
	struct store_count *cases; /* cases by status */
	size_t n_cases;
	int64_t events_due;            /* pending internal events whose time has come */
	int64_t events_oldest_due_at;  /* available_at of the oldest of them, Unix ms */
	int has_events_oldest;         /* 0 when none is due */
	struct store_count *deliveries; /* webhook deliveries by state */
	size_t n_deliveries;
	int64_t deliveries_due;        /* pending deliveries whose next attempt is due */
};

/* The agent's language-model calls by call and outcome (doc/operator-guide.md, "The agent"). */
struct store_agent_usage {
	char call[65];      /* draft_message, evaluate_thread, ... */
	char outcome[33];   /* ok, bad_output, ... */
	int64_t calls;
	int64_t prompt_tokens;
	int64_t completion_tokens;
};

/*
 * Reads the gauges with now_ms as the time "due" is measured against. 0 with *s_r filled
 * (free with store_stats_free), or -1 on a database error (*error_r, for logs).
 */
int store_stats_read(struct db *db, int64_t now_ms, struct store_stats *s_r, const char **error_r);
void store_stats_free(struct store_stats *s);

/*
 * The agent accounting rows, sorted by call then outcome. 0 with *rows_r (caller frees;
 * *n_r 0 when there are none or the table does not exist yet, on a schema older than the
 * agent's), or -1 on a database error (*error_r).
 */
int store_stats_agent(struct db *db, struct store_agent_usage **rows_r, size_t *n_r,
		      const char **error_r);

#endif
