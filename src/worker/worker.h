/* worker.h: what the parts of offload-worker share: settings and the per-thread context. */
#ifndef OFFLOAD_WORKER_H
#define OFFLOAD_WORKER_H

#include <stdint.h>

#include "common/sendwindow.h"
#include "mail/smtp.h"
#include "sms/config.h"
#include "sms/segments.h"

struct agent;
struct cfg;
struct db;
struct store_event;
struct smtp;
struct worker_sender;
struct worker_senders;
struct store_outbound;
struct window_zone;

struct worker_settings {
	char *from_address;        /* the service's sender address */
	char *inbox_address;       /* where replies go; plus-addressed per case */
	char *domain;              /* right-hand side of our Message-IDs */
	int64_t lease_ms;          /* how long a claimed event and its case are ours */
	int64_t max_event_attempts;/* after this many tries an event is dead */
	struct sms_config sms;     /* [sms]: Kannel's sendsms, the sender number, the limits */
	/* Send windows (doc/api.md "Send windows"; [worker] send_window and timezone). */
	int has_send_window;       /* [worker] send_window is set: cases without their own */
	struct send_window send_window; /* the server's default window */
	struct window_zone *zone;  /* [worker] timezone: for cases without counterparty.timezone */
	char *zone_name;
};

/* Counters of one thread, summed for the pass summary. */
struct worker_stats {
	int events;      /* events handled to completion */
	int sent;        /* messages accepted by the SMTP server or Kannel */
	int retried;     /* events given back for a later try */
	int transitions; /* case status changes */
	int held;        /* messages held for their send window */
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
 * Advances the case of one claimed event (doc/api.md, "Lifecycle"). Network work (SMTP,
 * agent) happens with no row lock held; each outcome commits with a check that the case did
 * not change under us and that the event lease is still ours. Returns 0 when the event was
 * finished or given back for a retry, -1 when even that failed (the lease then expires and
 * the event returns).
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
/* ---- send.c: the transports of send_message (step.c). */

/* Whether an SMS text fits [sms] max_segments (doc/api.md, SMS): 1 yes; 0 no, with what is
 * wrong in why (cap bytes). *coding_r is the coding to send it in (set whenever the text
 * is valid UTF-8, even when it is too long). */
int worker_sms_text_fits(const struct worker_ctx *w, const char *text, enum sms_coding *coding_r,
			 char *why, size_t cap);

/* Writes o as a mail from the persona from_name at snd's From address to to_name <to_addr>
 * (replies come back plus-addressed to case_id at snd's reply address) and sends it over
 * w's SMTP connection on snd's route. The refusal or failure text goes to reason. A
 * message that cannot be written is SMTP_PERMANENT. */
enum smtp_result worker_send_mail(struct worker_ctx *w, const struct worker_sender *snd,
				  const char *case_id, const char *from_name,
				  const char *to_name, const char *to_addr,
				  const struct store_outbound *o, char *reason, size_t reason_cap,
				  int64_t now);

/* Sends o's body as an SMS to the number to through Kannel (sms/kannel.h), in the coding
 * its text needs, with o's message id in the delivery-report URL; the result in SMTP's
 * terms (sent, temporary, permanent), Kannel's text in reason. */
enum smtp_result worker_send_sms(struct worker_ctx *w, const char *to,
				 const struct store_outbound *o, char *reason, size_t reason_cap);

#endif
