/* main.c: offload-worker: one pass over due work (or a loop of passes), then exit. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/agent.h"
#include "common/cfg.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/compose.h"
#include "mail/imap.h"
#include "mail/ingest.h"
#include "mail/smtp.h"
#include "store/db.h"
#include "store/events.h"
#include "webhook/deliver.h"
#include "worker/sender.h"
#include "worker/window.h"
#include "worker/worker.h"

#define MAX_CONCURRENCY 64

/* The work of one pass, shared by its threads. Each thread claims its own batches on its
 * own connection; the lock guards only these fields, never a database call. */
struct pass {
	pthread_mutex_t lock;
	int64_t deadline_ms;       /* stop claiming after this */
	int64_t last_schedule_ms;  /* when a thread last started the follow-up scan */
	struct store_due_cursor due_cursor; /* where the follow-up scan goes on */
	int claim_failed;
	int drained;               /* a claim found nothing due */
	int batch_size;
	struct cfg *cfg;
	const struct worker_settings *settings;
	int64_t follow_up_batch;
	struct worker_stats total;
	int follow_ups;
	int failed_threads;
	char db_error[512];        /* the first "cannot connect" of this pass, for its summary */
	char owner[64];            /* host:pid:random; each thread leases as owner:t<n> */
};

/* A thread could not open its database connection: logged once per pass (every thread
 * fails the same way), kept for the pass summary. */
static void pass_db_unavailable(struct pass *p, const char *err)
{
	int first;

	pthread_mutex_lock(&p->lock);
	first = !p->db_error[0];
	if (first)
		snprintf(p->db_error, sizeof p->db_error, "%s", err);
	pthread_mutex_unlock(&p->lock);
	if (first)
		log_error("%s", err);
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: offload-worker [-c FILE] [--once | --loop SECONDS] [--budget SECONDS] [--verbose]\n"
		"\n"
		"Works the due cases of Offload: reads new mail over IMAP (when [mail] imap_url is\n"
		"set), turns due follow-ups into events, claims due events\n"
		"(FOR UPDATE SKIP LOCKED with a lease), sends the outreach, follow-ups and replies\n"
		"over SMTP (each client's mail with its own sender identity when it has one, from\n"
		"'offloadctl client set'; SMS cases through Kannel's sendsms; holding those that fall\n"
		"outside the case's send window until it opens) and moves each case on, then delivers\n"
		"due webhooks, forgets Idempotency-Keys older than 24 h and deletes finished cases\n"
		"older than [retention] finished_days (at most 500 a pass). Several workers may run\n"
		"at once.\n"
		"\n"
		"  -c, --config FILE   configuration file (default: $OFFLOAD_CONFIG, then\n"
		"                      " SYSCONFDIR "/offload/offload.conf)\n"
		"      --once          one pass, then exit (the default; the systemd timer runs it)\n"
		"      --loop SECONDS  a pass every SECONDS until SIGTERM (for development)\n"
		"      --budget SECONDS  stop claiming work after this long (default [worker] budget_s)\n"
		"  -v, --verbose       log more\n"
		"  -h, --help          this text\n"
		"\n"
		"Keys read: [worker] concurrency budget_s lease_s batch max_event_attempts\n"
		"send_window timezone,\n"
		"[mail] smtp_url smtp_user smtp_password from_address inbox_address domain timeout_s\n"
		"imap_url imap_user imap_password imap_batch max_message_bytes, [files] dir,\n"
		"[webhook] * (delivery), [agent] *, [sms] *, [retention] finished_days, [database] *.\n"
		"Progress goes to stderr: a line per case transition and\n"
		"a summary line per pass. Exit status: 0 the pass ran, 1 it could not (configuration,\n"
		"database), 2 bad usage.\n");
}

/* Due follow-ups become events before a claim, at most once a second for the whole pass
 * (one thread does it; the others go on claiming). */
static void schedule_follow_ups(struct pass *p, struct worker_ctx *w, int64_t now)
{
	struct store_due_cursor cur;
	int n = 0, mine = 0;

	pthread_mutex_lock(&p->lock);
	if (now - p->last_schedule_ms >= 1000) {
		p->last_schedule_ms = now;
		cur = p->due_cursor;
		mine = 1;
	}
	pthread_mutex_unlock(&p->lock);
	if (!mine)
		return;
	if (store_event_schedule_follow_ups(w->db, now, (int)p->follow_up_batch, &cur, &n) < 0)
		return;
	pthread_mutex_lock(&p->lock);
	p->due_cursor = cur;
	p->follow_ups += n;
	pthread_mutex_unlock(&p->lock);
}

/* Claims a batch for this thread: 1 with *evs_r and *n_r (n ≥ 1), 0 when the pass is over
 * for this thread (nothing due, the budget spent, a stop, or claiming failed). */
static int claim_batch(struct pass *p, struct worker_ctx *w, struct store_event **evs_r,
		       size_t *n_r)
{
	int64_t now = util_now_ms();
	int over;

	pthread_mutex_lock(&p->lock);
	over = p->drained || p->claim_failed || stop_requested || now >= p->deadline_ms;
	pthread_mutex_unlock(&p->lock);
	if (over)
		return 0;
	schedule_follow_ups(p, w, now);
	if (store_event_claim(w->db, w->owner, now, p->settings->lease_ms, p->batch_size, evs_r,
			      n_r) < 0) {
		pthread_mutex_lock(&p->lock);
		p->claim_failed = 1;
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	if (*n_r == 0) {
		store_events_free(evs_r, 0);
		pthread_mutex_lock(&p->lock);
		p->drained = 1;
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	return 1;
}

struct thread_arg {
	struct pass *pass;
	int index;
};

static void *work(void *arg)
{
	struct thread_arg *ta = arg;
	struct pass *p = ta->pass;
	struct worker_ctx w;
	struct store_event *evs = NULL;
	size_t n = 0;
	const char *err;

	memset(&w, 0, sizeof w);
	/* A lease owner per thread: a case leased by one thread is not worked by another. */
	snprintf(w.owner, sizeof w.owner, "%s:t%d", p->owner, ta->index);
	w.s = p->settings;
	w.db = db_open(p->cfg, &err);
	if (!w.db) {
		pass_db_unavailable(p, err);
		goto out;
	}
	w.smtp = smtp_new(p->cfg, &err);
	w.agent = agent_new(p->cfg, &err);
	w.senders = worker_senders_new();
	if (!w.smtp || !w.agent) {
		log_error("%s: %s", cfg_path(p->cfg), err);
		goto out;
	}
	while (claim_batch(p, &w, &evs, &n)) {
		/* A claimed batch is worked to its end, budget or not: its leases would
		 * otherwise hold its cases for lease_s. */
		for (size_t i = 0; i < n; i++)
			if (step_run(&w, &evs[i]) < 0)
				log_warn("case %s: event %lld left to its lease", evs[i].case_id,
					 (long long)evs[i].lease.id);
		store_events_free(&evs, n);
	}
out:
	pthread_mutex_lock(&p->lock);
	if (!w.db || !w.smtp || !w.agent)
		p->failed_threads++;
	p->total.events += w.stats.events;
	p->total.sent += w.stats.sent;
	p->total.retried += w.stats.retried;
	p->total.transitions += w.stats.transitions;
	p->total.held += w.stats.held;
	p->total.smtp_us += w.stats.smtp_us;
	p->total.agent_us += w.stats.agent_us;
	p->total.smtp_connections += w.smtp ? smtp_connections(w.smtp) : 0;
	pthread_mutex_unlock(&p->lock);
	worker_senders_free(&w.senders);
	agent_free(&w.agent);
	smtp_free(&w.smtp);
	db_close(&w.db);
	return NULL;
}

/* Reads new mail from IMAP into the database (replies become events for this pass).
 * 0, or -1 when the mailbox or the database could not be used (the pass goes on). */
static int poll_mail(struct cfg *cfg, const struct worker_settings *s, int64_t max_messages)
{
	struct ingest_settings is;
	struct imap_stats st;
	struct db *db;
	const char *err = NULL;
	int64_t max_bytes;
	int rc;

	if (!*cfg_get(cfg, "mail", "imap_url", ""))
		return 0;
	if (cfg_get_int(cfg, "mail", "max_message_bytes", INGEST_DEFAULT_MAX_BYTES, 1024,
			INT32_MAX, &max_bytes, &err) < 0) {
		log_error("%s: %s", cfg_path(cfg), err);
		return -1;
	}
	db = db_open(cfg, &err);
	if (!db) {
		log_error("%s", err);
		return -1;
	}
	memset(&is, 0, sizeof is);
	is.files_dir = cfg_get(cfg, "files", "dir", "/var/lib/offload/files");
	is.inbox_address = s->inbox_address;
	is.max_bytes = (size_t)max_bytes;
	rc = imap_poll(db, cfg, &is, util_now_ms(), (int)max_messages, &st, &err);
	if (rc < 0)
		log_warn("mail: IMAP poll stopped: %s", err ? err : "unknown error");
	if (st.fetched || rc < 0)
		log_info("mail: %d fetched, %d matched, %d unmatched, %d duplicates, %d malformed, "
			 "%d skipped%s", st.fetched, st.stored, st.unmatched, st.duplicates,
			 st.malformed, st.skipped, st.more ? " (more waiting)" : "");
	db_close(&db);
	return rc;
}

/* Delivers due webhooks (those this pass emitted among them) and forgets old
 * Idempotency-Keys. 0, or -1 on database trouble. */
static int deliver_webhooks(struct cfg *cfg, const char *owner, int64_t deadline_ms)
{
	struct webhook_stats st;
	struct db *db;
	const char *err;
	int rc, purged;

	db = db_open(cfg, &err);
	if (!db) {
		log_error("%s", err);
		return -1;
	}
	/* Webhooks get a little time even when the events used the whole budget. */
	if (deadline_ms < util_now_ms() + 2000)
		deadline_ms = util_now_ms() + 2000;
	rc = webhook_deliver_due(db, cfg, owner, deadline_ms, &st);
	if (st.delivered || st.failed || st.dead)
		log_info("webhooks: %d delivered, %d to retry, %d dead", st.delivered, st.failed,
			 st.dead);
	purged = webhook_purge_idempotency(db, util_now_ms());
	if (purged > 0)
		log_info("forgot %d Idempotency-Keys older than 24 h", purged);
	db_close(&db);
	return rc < 0 || purged < 0 ? -1 : 0;
}

/* One pass: returns 0, or -1 when it could not work at all. */
static int run_pass(struct cfg *cfg, const struct worker_settings *s, int64_t concurrency,
		    int64_t budget_s, int64_t batch, int64_t follow_up_batch, int64_t mail_batch,
		    int64_t retention_days)
{
	struct pass p;
	pthread_t tids[MAX_CONCURRENCY];
	struct thread_arg args[MAX_CONCURRENCY];
	int64_t start = util_now_ms();
	int started = 0, rc = 0, purged = 0;

	char host[40] = "host", held[64] = "";
	unsigned char rnd[4];
	char hex[9];

	memset(&p, 0, sizeof p);
	pthread_mutex_init(&p.lock, NULL);
	gethostname(host, sizeof host - 1);
	util_random_bytes(rnd, sizeof rnd);
	util_hex(rnd, sizeof rnd, hex);
	snprintf(p.owner, sizeof p.owner, "%s:%d:%s", host, (int)getpid(), hex);
	p.cfg = cfg;
	p.settings = s;
	p.deadline_ms = start + budget_s * 1000;
	p.batch_size = (int)batch;
	p.follow_up_batch = follow_up_batch;
	poll_mail(cfg, s, mail_batch);
	for (int i = 0; i < concurrency; i++) {
		args[i].pass = &p;
		args[i].index = i;
		if (pthread_create(&tids[i], NULL, work, &args[i]) != 0) {
			log_error("pthread_create failed");
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (started == 0 || p.failed_threads == started || p.claim_failed)
		rc = -1;
	if (!stop_requested && deliver_webhooks(cfg, p.owner, p.deadline_ms) < 0)
		rc = -1;
	/* After a failed connection the pass already said why: no third try for housekeeping. */
	if (!stop_requested && !p.db_error[0] &&
	    worker_retention_pass(cfg, retention_days, util_now_ms(), &purged) < 0)
		rc = -1;
	if (p.total.held)
		snprintf(held, sizeof held, ", %d held for their send window", p.total.held);
	log_info("pass: %d events, %d sent, %d retried later, %d transitions, %d follow-ups due, "
		 "%d cases purged, %lld ms (threads spent %lld ms in SMTP with %ld connections "
		 "opened, %lld ms in the agent)%s%s%s%s",
		 p.total.events, p.total.sent, p.total.retried, p.total.transitions, p.follow_ups,
		 purged,
		 (long long)(util_now_ms() - start), (long long)(p.total.smtp_us / 1000),
		 p.total.smtp_connections,
		 (long long)(p.total.agent_us / 1000), held,
		 p.db_error[0] ? " (database unavailable: " : p.claim_failed ?
		 " (claiming failed: database trouble)" : (!p.drained && !stop_requested) ?
		 " (budget spent; work remains)" : "", p.db_error, p.db_error[0] ? ")" : "");
	pthread_mutex_destroy(&p.lock);
	return rc;
}

/* [worker] send_window and timezone (doc/operator-guide.md "Send windows"). 0, or -1 with
 * *err naming the key. */
static int load_windows(struct cfg *cfg, struct worker_settings *s, const char **err)
{
	static char msg[400];
	const char *zone = cfg_get(cfg, "worker", "timezone", "UTC");
	const char *spec = cfg_get(cfg, "worker", "send_window", "");
	const char *why = NULL;
	int r;

	s->zone = window_zone_open(zone);
	if (!s->zone) {
		snprintf(msg, sizeof msg, "[worker] timezone: %.64s is not a zone of the system's tz "
			 "database (an IANA name such as Europe/Berlin, or UTC)", zone);
		*err = msg;
		return -1;
	}
	s->zone_name = xstrdup(zone);
	r = send_window_parse_spec(spec, &s->send_window, &why);
	if (r < 0) {
		snprintf(msg, sizeof msg, "[worker] send_window: %s", why);
		*err = msg;
		return -1;
	}
	s->has_send_window = r == 1;
	return 0;
}

static int load_settings(struct cfg *cfg, struct worker_settings *s, const char **err)
{
	const char *from = cfg_get(cfg, "mail", "from_address", "offload@localhost");
	const char *inbox = cfg_get(cfg, "mail", "inbox_address", from);
	const char *at = strrchr(from, '@');
	const char *domain = cfg_get(cfg, "mail", "domain", at ? at + 1 : "localhost");
	int64_t lease_s;

	if (!at || strpbrk(from, "\r\n <>") || strpbrk(inbox, "\r\n <>") || !strchr(inbox, '@') ||
	    strpbrk(domain, "\r\n <>@") || !*domain) {
		*err = "[mail] from_address, inbox_address and domain must be plain addresses/names";
		return -1;
	}
	if (cfg_get_int(cfg, "worker", "lease_s", 300, 10, 86400, &lease_s, err) < 0 ||
	    cfg_get_int(cfg, "worker", "max_event_attempts", 100, 1, 100000,
			&s->max_event_attempts, err) < 0)
		return -1;
	if (sms_config_load(cfg, &s->sms, err) < 0)
		return -1;
	s->lease_ms = lease_s * 1000;
	if (load_windows(cfg, s, err) < 0)
		return -1;
	s->from_address = xstrdup(from);
	s->inbox_address = xstrdup(inbox);
	s->domain = xstrdup(domain);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "loop", required_argument, NULL, 'l' },
		{ "budget", required_argument, NULL, 'b' },
		CLI_OPTIONS,
	};
	struct worker_settings s;
	struct cfg *cfg = NULL;
	struct cli cli = { .program = "offload-worker", .usage = usage, .usage_status = 2,
			   .writes_files = 1 };
	const char *err = NULL, *budget_arg = NULL;
	int64_t loop_s = 0, concurrency, budget_s, batch, follow_up_batch, mail_batch, retention_days;
	int c, r, rc = 1;

	memset(&s, 0, sizeof s);
	cli_start(&cli);
	while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			loop_s = 0;
			break;
		case 'l':
			if (util_parse_int64(optarg, &loop_s) < 0 || loop_s < 1 || loop_s > 86400) {
				fprintf(stderr, "offload-worker: --loop needs 1 to 86400 seconds\n");
				return 2;
			}
			break;
		case 'b':
			budget_arg = optarg;
			break;
		default:
			if ((r = cli_option(&cli, c)) != CLI_NEXT)
				return r;
		}
	}
	if ((r = cli_config_no_operands(&cli, argc, &cfg)) != CLI_NEXT)
		return r;
	if (load_settings(cfg, &s, &err) < 0 ||
	    cfg_get_int(cfg, "worker", "concurrency", 4, 1, MAX_CONCURRENCY, &concurrency, &err) < 0 ||
	    cfg_get_int(cfg, "worker", "budget_s", 25, 1, 86400, &budget_s, &err) < 0 ||
	    cfg_get_int(cfg, "worker", "batch", 16, 1, 1000, &batch, &err) < 0 ||
	    cfg_get_int(cfg, "worker", "follow_up_batch", 500, 1, 100000, &follow_up_batch, &err) < 0 ||
	    cfg_get_int(cfg, "mail", "imap_batch", 200, 1, 100000, &mail_batch, &err) < 0 ||
	    cfg_get_int(cfg, "retention", "finished_days", 0, 0, 36500, &retention_days, &err) < 0) {
		log_error("%s: %s", cfg_path(cfg), err);
		goto out;
	}
	if (budget_arg && (util_parse_int64(budget_arg, &budget_s) < 0 || budget_s < 1)) {
		fprintf(stderr, "offload-worker: --budget needs a positive number of seconds\n");
		rc = 2;
		goto out;
	}
	/* Libraries that are not thread-safe to initialise, before any thread. */
	if (db_library_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("library initialisation failed");
		goto out;
	}
	compose_init();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	do {
		rc = run_pass(cfg, &s, concurrency, budget_s, batch, follow_up_batch, mail_batch,
			      retention_days) < 0 ? 1 : 0;
		for (int64_t i = 0; loop_s && i < loop_s * 10 && !stop_requested; i++)
			usleep(100000);
	} while (loop_s && !stop_requested);
	compose_end();
	curl_global_cleanup();
	db_library_end();
out:
	free(s.from_address);
	free(s.inbox_address);
	free(s.domain);
	sms_config_free(&s.sms);
	free(s.zone_name);
	window_zone_free(&s.zone);
	cfg_free(&cfg);
	return rc;
}
