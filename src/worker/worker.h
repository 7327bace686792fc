/* worker.h: what the parts of offload-worker share: settings and the per-thread context. */
#ifndef OFFLOAD_WORKER_H
#define OFFLOAD_WORKER_H

#include <stdint.h>

struct agent;
struct cfg;
struct db;
struct store_event;
struct smtp;
struct worker_senders;

struct worker_settings {
	char *from_address;        /* the service's sender address */
	char *inbox_address;       /* where replies go; plus-addressed per case */
	char *domain;              /* right-hand side of our Message-IDs */
	int64_t lease_ms;          /* how long a claimed event and its case are ours */
	int64_t max_event_attempts;/* after this many tries an event is dead */
};

/* Counters of one thread, summed for the pass summary. */
struct worker_stats {
	int events;      /* events handled to completion */
	int sent;        /* messages accepted by the SMTP server */
	int retried;     /* events given back for a later try */
	int transitions; /* case status changes */
	int64_t smtp_us; /* time spent in SMTP transactions */
	int64_t agent_us; /* time spent drafting and evaluating */
	long smtp_connections; /* SMTP connections opened (one per server and login) */
};

struct worker_ctx {
	struct db *db;
	struct smtp *smtp;
	struct agent *agent;
	struct worker_senders *senders; /* client sender identities met in this pass */
	const struct worker_settings *s;
	char owner[80]; /* lease owner: host:pid:random:t<thread> (at most 64 characters) */
	struct worker_stats stats;
};

/*
 * Advances the case of one claimed event (SPEC §4). Network work (SMTP, agent) happens with
 * no row lock held; each outcome commits with a check that the case did not change under
 * us and that the event lease is still ours. Returns 0 when the event was finished or given
 * back for a retry, -1 when even that failed (the lease then expires and the event returns).
 */
int step_run(struct worker_ctx *w, const struct store_event *ev);

/*
 * The retention pass (worker/retention.c): finishes erasures stopped half-way, then, when
 * days ([retention] finished_days) is above 0, deletes up to STORE_ERASE_PASS_MAX cases that
 * were COMPLETED or FAILED more than that many days before now_ms, with everything kept for
 * them (store/erase.h); files are under cfg's [files] dir. Sets *purged_r to the cases
 * deleted. 0, or -1 when the database failed (logged; what was deleted stays deleted).
 */
int worker_retention_pass(struct cfg *cfg, int64_t days, int64_t now_ms, int *purged_r);

#endif
