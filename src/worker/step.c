/* step.c: one event of one case through the lifecycle (doc/api.md, "Lifecycle"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent/agent.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/smtp.h"
#include "mail/subject.h"
#include "sms/segments.h"
#include "store/case_step.h"
#include "store/db.h"
#include "store/events.h"
#include "store/lease.h"
#include "store/messages_out.h"
#include "worker/sender.h"
#include "store/sms.h"
#include "worker/window.h"
#include "worker/worker.h"

#define MAX_REFERENCES 20
#define BAD_DRAFT_TRIES 3

static const char kinds[][12] = { "outreach", "follow_up", "reply" };

/* The case as the worker needs it: the row read at the claim, its JSON parsed, and its
 * history when it has one. */
struct case_row {
	const struct store_case *row;
	const char *id;
	enum store_case_status status;
	json_object *goal, *counterparty, *persona, *constraints, *result_schema;
	/* from the thread */
	json_object *thread;        /* [{direction, kind, from, to, subject, body, at}] */
	json_object *answers;       /* [{question, answer, at}] */
	const char *first_subject;  /* of our first message; lives in hist */
	const char *last_message_id; /* newest message of the thread (either direction) */
	char *references;           /* "<a> <b> …", oldest first, capped */
	int64_t last_outbound_at;   /* sent_at of our newest sent message, 0 when none */
	int replied_since_outbound; /* a real reply arrived after our newest message */
	int sms_max_segments;       /* [sms] max_segments, for an SMS case's texts */
	struct store_case_history hist;
	const struct send_window *window; /* the case's own, else the server's; NULL: none */
	struct send_window own_window;
};

static void case_row_free(struct case_row *c)
{
	json_object_put(c->goal);
	json_object_put(c->counterparty);
	json_object_put(c->persona);
	json_object_put(c->constraints);
	json_object_put(c->result_schema);
	json_object_put(c->thread);
	json_object_put(c->answers);
	free(c->references);
	store_case_history_free(&c->hist);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *parse_or_null(const char *text)
{
	return text ? json_tokener_parse(text) : NULL;
}

/* The thread as the agent sees it, from the history. */
static void build_thread(struct case_row *c)
{
	const struct store_case_history *h = &c->hist;
	size_t first_ref = h->n_messages > MAX_REFERENCES ? h->n_messages - MAX_REFERENCES : 0;
	struct buf refs;

	c->thread = json_object_new_array();
	buf_init(&refs, 64 * 1024);
	buf_puts(&refs, "");
	for (size_t i = 0; i < h->n_messages; i++) {
		const struct store_thread_message *s = &h->messages[i];
		json_object *m;

		/* An outbound message never accepted by the server is not part of the thread. */
		if (s->outbound && !s->sent)
			continue;
		m = json_object_new_object();
		json_object_object_add(m, "direction",
				       json_object_new_string(s->outbound ? "outbound" : "inbound"));
		json_object_object_add(m, "kind", json_object_new_string(s->kind));
		json_object_object_add(m, "from", json_object_new_string(s->from_addr));
		json_object_object_add(m, "to", json_object_new_string(s->to_addr));
		if (!c->row->sms)
			json_object_object_add(m, "subject", json_object_new_string(s->subject));
		json_object_object_add(m, "body", json_object_new_string(s->body));
		json_object_object_add(m, "at", json_object_new_int64(s->created_at));
		for (size_t a = 0; a < h->n_attachments; a++) {
			const struct store_attachment_meta *att = &h->attachments[a];
			json_object *list, *one;

			if (att->message_row != s->row)
				continue;
			if (!json_object_object_get_ex(m, "attachments", &list)) {
				list = json_object_new_array();
				json_object_object_add(m, "attachments", list);
			}
			one = json_object_new_object();
			json_object_object_add(one, "name", json_object_new_string(att->name));
			json_object_object_add(one, "type", json_object_new_string(att->content_type));
			json_object_object_add(one, "size", json_object_new_int64(att->size));
			json_object_array_add(list, one);
		}
		json_object_array_add(c->thread, m);
		if (s->outbound && !c->first_subject)
			c->first_subject = s->subject;
		if (s->outbound) {
			c->last_outbound_at = s->sent_at;
			c->replied_since_outbound = 0;
		} else if (strcmp(s->kind, "reply") == 0) {
			c->replied_since_outbound = 1;
		}
		/* Delivery reports are not part of the conversation we answer in. */
		if (s->outbound || strcmp(s->kind, "reply") == 0 || strcmp(s->kind, "auto_reply") == 0) {
			c->last_message_id = s->message_id;
			if (i >= first_ref)
				buf_printf(&refs, "%s<%s>", refs.len ? " " : "", s->message_id);
		}
	}
	c->references = refs.data;
}

/* Prepares the case of ev (read at the claim) for a step: its history is read only when it
 * has one (a new case costs no statement here). 0, or -1 on a database error. */
static int load_case(struct worker_ctx *w, const struct store_event *ev, struct case_row *c)
{
	const struct store_case *r = &ev->kase;

	memset(c, 0, sizeof *c);
	c->row = r;
	c->id = r->id;
	c->sms_max_segments = (int)w->s->sms.max_segments;
	c->status = r->status;
	c->goal = parse_or_null(r->goal);
	c->counterparty = parse_or_null(r->counterparty);
	c->persona = parse_or_null(r->sender_persona);
	c->constraints = parse_or_null(r->constraints);
	c->result_schema = parse_or_null(r->result_schema);
	if (r->send_window && send_window_from_text(r->send_window, &c->own_window) == 0)
		c->window = &c->own_window;
	else if (r->send_window)
		log_warn("case %s: its stored sendWindow is not a valid window; using the server's "
			 "default (if any)", r->id);
	if (!c->window && w->s->has_send_window)
		c->window = &w->s->send_window;
	if (store_case_history_load(w->db, r, &c->hist) < 0)
		return -1;
	build_thread(c);
	c->answers = json_object_new_array();
	for (size_t i = 0; i < c->hist.n_answers; i++) {
		const struct store_answer *s = &c->hist.answers[i];
		json_object *a = json_object_new_object();

		json_object_object_add(a, "question", json_object_new_string(s->question));
		json_object_object_add(a, "answer", json_object_new_string(s->answer));
		json_object_object_add(a, "at", json_object_new_int64(s->resolved_at));
		json_object_array_add(c->answers, a);
	}
	return 0;
}

static void agent_view(const struct case_row *c, struct db *db, struct agent_case *ac)
{
	memset(ac, 0, sizeof *ac);
	ac->db = db;
	ac->case_id = c->id;
	ac->goal = c->goal;
	ac->counterparty = c->counterparty;
	ac->persona = c->persona;
	ac->constraints = c->constraints;
	ac->result_schema = c->result_schema;
	ac->thread = c->thread;
	ac->human_answers = c->answers;
	ac->max_attempts = (int)c->row->max_attempts;
	ac->follow_up_n = (int)c->row->follow_ups_sent + 1;
	ac->first_subject = c->first_subject;
	ac->sms = c->row->sms;
	ac->sms_max_segments = c->sms_max_segments;
}

/*
 * Commits t: the case update (only if the case is still at the version we read), a new
 * input request, the message now sent, the webhook, and the end of the event, together.
 * 1 done, 0 the case or the lease changed under us (nothing written), -1 error.
 */
static int apply(struct worker_ctx *w, const struct store_event *ev, const struct case_row *c,
		 const struct store_transition *t, int64_t now)
{
	int r = store_case_transition(w->db, c->row, t, &ev->lease, w->owner, now);

	if (r < 0) {
		log_warn("case %s: committing the step failed: %s", c->id, db_error(w->db));
		return -1;
	}
	if (r == 1 && t->status != c->status) {
		w->stats.transitions++;
		log_info("case %s: %s -> %s%s%s", c->id, store_case_status_name(c->status),
			 store_case_status_name(t->status), t->result_status ? " " : "",
			 t->result_status ? t->result_status : "");
	}
	return r;
}

/* Gives the event back for later; logs why. Returns 0 (the event is handled), or -1 when
 * even that failed (the lease then expires and the event returns). */
static int retry_later(struct worker_ctx *w, const struct store_event *ev, int64_t now,
		       int64_t delay_ms, const char *why)
{
	int dead = ev->lease.attempts >= w->s->max_event_attempts;

	log_warn("case %s: %s: %s; retrying in %llds", ev->case_id, ev->type_name, why,
		 (long long)(delay_ms / 1000));
	if (dead)
		log_error("event %lld (%s) of case %s is dead after %lld attempts: %s",
			  (long long)ev->lease.id, ev->type_name, ev->case_id,
			  (long long)ev->lease.attempts, why);
	w->stats.retried++;
	if (store_event_retry(w->db, ev, w->owner, now + delay_ms, why, dead) < 0) {
		log_warn("giving event %lld back: %s", (long long)ev->lease.id, db_error(w->db));
		return -1;
	}
	return 0;
}

static int finish_noop(struct worker_ctx *w, const struct store_event *ev, int64_t now,
		       const char *why)
{
	log_debug("case %s: %s: nothing to do (%s)", ev->case_id, ev->type_name, why);
	w->stats.events++;
	if (store_event_finish(w->db, ev, w->owner, now) < 0) {
		log_warn("finishing event %lld: %s", (long long)ev->lease.id, db_error(w->db));
		return -1;
	}
	return 0;
}

/* Commits t (apply) and counts the event; a case that changed under us gives the event back
 * for a second try a moment later (why says what was in progress). 0, or -1. */
static int commit_step(struct worker_ctx *w, const struct store_event *ev,
		       const struct case_row *c, const struct store_transition *t, int64_t now,
		       const char *why)
{
	switch (apply(w, ev, c, t, now)) {
	case 1:
		w->stats.events++;
		return 0;
	case 0:
		return retry_later(w, ev, now, 1000, why);
	default:
		return -1;
	}
}

/*
 * The first instant at or after t at which c may send (doc/api.md "Send windows"): t when
 * no window applies. The window is read in counterparty.timezone, else in [worker]
 * timezone; a counterparty zone the tz database does not know (it was checked when the case
 * was created, so tzdata lost it since) falls back to [worker] timezone, with a warning.
 */
static int64_t sendable_at(struct worker_ctx *w, const struct case_row *c, int64_t t)
{
	const char *name;
	struct window_zone *own = NULL;
	int64_t at;

	if (!c->window)
		return t;
	name = jstr(c->counterparty, "timezone");
	if (name && !(own = window_zone_open(name)))
		log_warn("case %s: counterparty.timezone %s is not in the tz database; its send "
			 "window is read in [worker] timezone %s", c->id, name, w->s->zone_name);
	at = window_next_open(c->window, own ? own : w->s->zone, t);
	window_zone_free(&own);
	if (at < 0) {
		log_warn("case %s: its send window does not open in the next two weeks; not "
			 "waiting for it", c->id);
		return t;
	}
	return at;
}

/* 1 when an earlier try of ev got its message accepted and died before committing: only
 * the bookkeeping is left, which no window holds back. */
static int already_sent(struct worker_ctx *w, const struct store_event *ev)
{
	struct store_outbound o;
	int sent;

	if (ev->lease.attempts <= 1)
		return 0;
	memset(&o, 0, sizeof o);
	sent = store_outbound_find(w->db, ev->lease.id, &o) == 1 && o.sent;
	store_outbound_free(&o);
	return sent;
}

/* Holds the message of kind that ev would send now until the window opens at until: the
 * event comes back then, and nextActionAt says so. 0, or -1 (the lease then expires). */
static int hold(struct worker_ctx *w, const struct store_event *ev, const struct case_row *c,
		enum agent_draft_kind kind, int64_t until, int64_t now)
{
	char when[32];

	switch (store_case_hold(w->db, c->row, &ev->lease, w->owner, until, now)) {
	case 1:
		break;
	case 0:
		return retry_later(w, ev, now, 1000, "the case changed");
	default:
		log_warn("case %s: holding the %s for its send window: %s", c->id, kinds[kind],
			 db_error(w->db));
		return -1;
	}
	util_iso8601_ms(until, when);
	log_info("case %s: %s held until %s (outside its send window)", c->id, kinds[kind], when);
	w->stats.events++;
	w->stats.held++;
	return 0;
}

enum send_outcome {
	SEND_OK,        /* accepted by the server: o->row is the message to mark sent */
	SEND_HANDLED,   /* temporary failure or conflict: the event was given back */
	SEND_REJECTED,  /* permanent refusal: reason in the buffer */
	SEND_BAD_DRAFT, /* the agent keeps writing unusable drafts: question in the buffer */
	SEND_OPTED_OUT, /* an SMS case whose number opted out: nothing is sent */
	SEND_ERROR,     /* database trouble (giving the event back included): the lease will expire */
};

/* Records o before the SMTP transaction (doc/operator-guide.md, "The worker timer"), if the
 * case is unchanged. 1 recorded, 0 the case changed, -1 error. */
static int record_outbound(struct worker_ctx *w, const struct store_event *ev,
			   const struct case_row *c, const struct worker_sender *snd,
			   const char *kind, struct store_outbound *o, int64_t now)
{
	const char *from_name = jstr(c->persona, "name");
	char *from = c->row->sms ? xstrdup(w->s->sms.sender)
				 : xasprintf("%s <%s>", from_name ? from_name : "", snd->from_address);
	int r = store_outbound_record(w->db, c->id, c->row->version, ev->lease.id, kind, from,
				      c->row->counterparty_address, o, now);

	free(from);
	return r;
}

static int timed_draft(struct worker_ctx *w, const struct agent_case *ac,
		       enum agent_draft_kind kind, struct agent_draft *d, const char **err)
{
	int64_t t0 = util_now_us();
	int r = agent_draft(w->agent, ac, kind, d, err);

	w->stats.agent_us += util_now_us() - t0;
	return r;
}

static int operator_decision(const struct store_event *ev, struct agent_decision *d);

/* 1 when ev carries the operator's decision (POST /cases/{id}/input with "decision"). */
static int from_operator(const struct store_event *ev)
{
	struct agent_decision d;
	int r;

	if (ev->type != EVENT_INPUT_PROVIDED)
		return 0;
	r = operator_decision(ev, &d);
	agent_decision_free(&d);
	return r;
}

/*
 * Sends a message in the case's thread: drafts it (or takes text, for an operator's reply),
 * records it, sends it over SMTP (an SMS case through Kannel), and reports the outcome. An
 * earlier try of the same event that recorded a message is reused with the same Message-ID,
 * so a crash between recording and sending costs no duplicate, and one after sending costs
 * at most one (for SMS, none once Kannel's delivery report for it has arrived).
 */
static enum send_outcome send_message(struct worker_ctx *w, const struct store_event *ev,
				      const struct case_row *c, enum agent_draft_kind kind,
				      const char *text, struct store_outbound *o, char *reason,
				      size_t reason_cap, int64_t now)
{
	struct agent_case ac;
	struct agent_draft d = { NULL, NULL };
	const struct worker_sender *snd = NULL;
	const char *err = NULL;
	enum smtp_result sr;
	enum sms_coding coding;
	char why[256] = "";
	int found, sms = c->row->sms;

	memset(o, 0, sizeof *o);
	/* The client's sender identity, else the server's [mail] settings (an SMS case's
	 * sender is [sms] sender). */
	if (worker_sender_get(w->senders, w->db, w->s, c->row->client_id, &snd) < 0) {
		log_warn("case %s: reading the sender identity: %s", c->id, db_error(w->db));
		return SEND_ERROR;
	}
	if (!sms && snd->error) {
		return retry_later(w, ev, now, store_lease_backoff_ms(ev->lease.attempts),
				   snd->error) < 0 ? SEND_ERROR : SEND_HANDLED;
	}
	if (sms) {
		int opted;

		if (!w->s->sms.enabled) {
			return retry_later(w, ev, now, store_lease_backoff_ms(ev->lease.attempts),
					   "an SMS case, and this worker has no SMS transport "
					   "([sms] sendsms_url)") < 0 ? SEND_ERROR : SEND_HANDLED;
		}
		/* Nothing more goes to a number that opted out, whatever was due. */
		opted = store_sms_opted_out(w->db, c->row->counterparty_address);
		if (opted < 0) {
			log_warn("case %s: reading the opt-outs: %s", c->id, db_error(w->db));
			return SEND_ERROR;
		}
		if (opted)
			return SEND_OPTED_OUT;
	}
	/* Only a later claim of the event can find a message an earlier try recorded. */
	found = ev->lease.attempts > 1 ? store_outbound_find(w->db, ev->lease.id, o) : 0;

	if (found < 0) {
		log_warn("case %s: looking for an earlier try: %s", c->id, db_error(w->db));
		return SEND_ERROR;
	}
	if (found && o->sent)
		return SEND_OK;
	if (found && sms) {
		/* A delivery report names the message: Kannel took it before the crash. */
		int reported = store_sms_outbound_reported(w->db, o->row);

		if (reported < 0) {
			log_warn("case %s: looking for a delivery report: %s", c->id, db_error(w->db));
			return SEND_ERROR;
		}
		if (reported) {
			log_info("case %s: SMS %s was taken by Kannel before (a delivery report "
				 "names it); not sent again", c->id, o->message_id);
			return SEND_OK;
		}
	}
	if (!found) {
		unsigned char rnd[4];
		char hex[9];

		agent_view(c, w->db, &ac);
		if (text) {
			d.subject = sms ? xstrdup("")
				  : mail_reply_subject(c->first_subject ? c->first_subject : "our request");
			d.body = xstrdup(text);
			/* The operator's own text would only come back the same: too long, the
			 * operator is asked again at once. The agent's reply is tried again. */
			if (sms && !worker_sms_text_fits(w, d.body, &coding, why, sizeof why) &&
			    from_operator(ev)) {
				agent_draft_free(&d);
				snprintf(reason, reason_cap, "The reply cannot be sent as an SMS: %s. "
					 "Answer with a decision: REPLY with a shorter text, or REJECTED.",
					 why);
				return SEND_BAD_DRAFT;
			}
		} else if (timed_draft(w, &ac, kind, &d, &err) < 0) {
			return retry_later(w, ev, now, store_lease_backoff_ms(ev->lease.attempts),
					   err ? err : "drafting failed") < 0 ? SEND_ERROR : SEND_HANDLED;
		}
		if (sms) {
			/* An SMS has no subject; its text must fit (doc/api.md, SMS). */
			free(d.subject);
			d.subject = xstrdup("");
			if (!worker_sms_text_fits(w, d.body, &coding, why, sizeof why)) {
				free(d.body);
				d.body = NULL;
			}
		}
		if (!d.subject || (!sms && !*d.subject) || !d.body || !*d.body ||
		    strpbrk(d.subject, "\r\n")) {
			agent_draft_free(&d);
			/* A draft that stays unusable will not mend by waiting: after a few tries a
			 * person writes the message instead. */
			if (ev->lease.attempts >= BAD_DRAFT_TRIES) {
				snprintf(reason, reason_cap, "The agent could not write a usable %s "
					 "%s after %d tries%s%s. Answer with a decision: REPLY with the "
					 "text to send, or REJECTED.", kinds[kind],
					 sms ? "SMS" : "message", BAD_DRAFT_TRIES, *why ? ": " : "", why);
				return SEND_BAD_DRAFT;
			}
			return retry_later(w, ev, now, store_lease_backoff_ms(ev->lease.attempts),
					   *why ? why : "the draft was empty or malformed") < 0
				       ? SEND_ERROR : SEND_HANDLED;
		}
		if (sms) {
			/* Kannel gets it in the dlr-url: a plain UUID needs no escaping. */
			char id[37];

			util_uuid_v4(id);
			o->message_id = xstrdup(id);
		} else {
			util_random_bytes(rnd, sizeof rnd);
			util_hex(rnd, sizeof rnd, hex);
			o->message_id = xasprintf("%s.%lld.%s@%s", c->id,
						  (long long)c->row->attempt_count + 1, hex,
						  snd->msgid_domain);
		}
		o->subject = d.subject;
		o->body = d.body;
		d.subject = d.body = NULL;
		if (c->last_message_id && !sms) {
			o->in_reply_to = xstrdup(c->last_message_id);
			o->references = xstrdup(c->references);
		}
		switch (record_outbound(w, ev, c, snd, kinds[kind], o, now)) {
		case 1:
			break;
		case 0:
			return retry_later(w, ev, now, 1000, "the case changed while drafting") < 0
				       ? SEND_ERROR : SEND_HANDLED;
		default:
			log_warn("case %s: recording the outbound message: %s", c->id, db_error(w->db));
			return SEND_ERROR;
		}
	}

	sr = sms ? worker_send_sms(w, c->row->counterparty_address, o, reason, reason_cap)
		 : worker_send_mail(w, snd, c->id, jstr(c->persona, "name"), jstr(c->counterparty, "name"),
				    c->row->counterparty_address, o, reason, reason_cap, now);
	if (sr == SMTP_SENT) {
		w->stats.sent++;
		log_info("case %s: sent %s %s<%s>", c->id, kinds[kind], sms ? "SMS " : "",
			 o->message_id);
		return SEND_OK;
	}
	if (store_outbound_note_error(w->db, o->row, reason, sr == SMTP_PERMANENT) < 0)
		log_warn("case %s: noting the send error: %s", c->id, db_error(w->db));
	if (sr == SMTP_PERMANENT)
		return SEND_REJECTED;
	return retry_later(w, ev, now, store_lease_backoff_ms(ev->lease.attempts), reason) < 0
		       ? SEND_ERROR : SEND_HANDLED;
}

/* The commit after a successful send lost a race: keep the fact that it was sent. */
static void keep_sent(struct worker_ctx *w, int64_t row, int64_t now)
{
	if (store_outbound_mark_sent(w->db, row, now) < 0)
		log_warn("marking message %lld sent: %s", (long long)row, db_error(w->db));
}

/* Sends, then commits ok_t (with the message marked sent) or the REJECTED failure. */
static int send_and_apply(struct worker_ctx *w, const struct store_event *ev,
			  const struct case_row *c, enum agent_draft_kind kind, const char *text,
			  struct store_transition *ok_t, int64_t now)
{
	struct store_outbound o;
	char reason[600] = "";
	int64_t open_at = sendable_at(w, c, now);
	int r;

	/* Outside the window nothing is drafted or sent: the event waits for the opening (a
	 * reply decided by the agent is decided again then, on the thread as it stands). */
	if (open_at > now && !already_sent(w, ev))
		return hold(w, ev, c, kind, open_at, now);
	switch (send_message(w, ev, c, kind, text, &o, reason, sizeof reason, now)) {
	case SEND_OK:
		ok_t->sent_message = o.row;
		r = apply(w, ev, c, ok_t, now);
		/* Either way the message went out: keep that, so the retry does not send it again. */
		if (r <= 0)
			keep_sent(w, o.row, now);
		if (r == 1)
			w->stats.events++;
		else if (r == 0)
			r = retry_later(w, ev, now, 1000, "the case changed while sending");
		break;
	case SEND_REJECTED: {
		struct store_transition t = {
			.status = CASE_FAILED, .next_action_at = OFFLOAD_NEVER_MS,
			.result_status = "REJECTED", .failure_reason = reason, .finished = 1,
			.webhook = "case.failed",
		};

		r = commit_step(w, ev, c, &t, now, "the case changed while sending");
		break;
	}
	case SEND_OPTED_OUT: {
		struct store_transition t = {
			.status = CASE_FAILED, .next_action_at = OFFLOAD_NEVER_MS,
			.result_status = "failed_rejected",
			.failure_reason = "recipient opted out by SMS", .finished = 1,
			.webhook = "case.failed",
		};

		log_info("case %s: the number opted out of SMS; nothing sent", c->id);
		r = commit_step(w, ev, c, &t, now, "the case changed");
		break;
	}
	case SEND_BAD_DRAFT: {
		struct store_transition t = {
			.status = CASE_INPUT_NEEDED, .next_action_at = OFFLOAD_NEVER_MS,
			.question = reason, .webhook = "case.input_needed",
		};

		log_warn("case %s: %s", c->id, reason);
		r = commit_step(w, ev, c, &t, now, "the case changed");
		break;
	}
	case SEND_HANDLED:
		w->stats.events++;
		r = 0;
		break;
	default:
		r = -1;
	}
	store_outbound_free(&o);
	return r < 0 ? -1 : 0;
}

/* When the next follow-up is due after from: followUpDelayHours later, in a send window. */
static int64_t follow_up_after(struct worker_ctx *w, const struct case_row *c, int64_t from)
{
	return sendable_at(w, c, from + c->row->follow_up_delay_hours * 3600000);
}

/* The case fails: FAILED, finished, the case.failed webhook. */
static void case_fails(struct store_transition *t, const char *result_status, const char *reason)
{
	t->status = CASE_FAILED;
	t->result_status = result_status;
	t->failure_reason = reason;
	t->finished = 1;
	t->webhook = "case.failed";
}

/* The case waits for the operator's answer to question. */
static void case_asks(struct store_transition *t, const char *question)
{
	t->status = CASE_INPUT_NEEDED;
	t->question = question;
	t->webhook = "case.input_needed";
}

static int on_case_created(struct worker_ctx *w, const struct store_event *ev,
			   const struct case_row *c, int64_t now)
{
	struct store_transition t = {
		.status = CASE_RUNNING, .attempt_inc = 1,
		.next_action_at = follow_up_after(w, c, now),
	};

	if (c->status != CASE_CREATED)
		return finish_noop(w, ev, now, "the case is no longer CREATED");
	return send_and_apply(w, ev, c, AGENT_DRAFT_OUTREACH, NULL, &t, now);
}

static int on_follow_up_due(struct worker_ctx *w, const struct store_event *ev,
			    const struct case_row *c, int64_t now)
{
	struct store_transition t = { 0 };

	if (c->status != CASE_RUNNING)
		return finish_noop(w, ev, now, "the case is not RUNNING");
	if (c->row->next_action_at > now)
		return finish_noop(w, ev, now, "rescheduled since");
	if (c->replied_since_outbound) {
		/* The reply's own event decides what happens next. */
		t.status = CASE_RUNNING;
		t.next_action_at = OFFLOAD_NEVER_MS;
	} else if (c->row->follow_ups_sent >= c->row->max_attempts) {
		t.next_action_at = OFFLOAD_NEVER_MS;
		case_fails(&t, "max_retries", "no reply after the last follow-up");
	} else {
		t.status = CASE_RUNNING;
		t.attempt_inc = 1;
		t.follow_up_inc = 1;
		t.next_action_at = follow_up_after(w, c, now);
		return send_and_apply(w, ev, c, AGENT_DRAFT_FOLLOW_UP, NULL, &t, now);
	}
	return commit_step(w, ev, c, &t, now, "the case changed");
}

/* Applies a decision (the agent's or the operator's). */
static int decide(struct worker_ctx *w, const struct store_event *ev, const struct case_row *c,
		  const struct agent_decision *d, int64_t now)
{
	struct store_transition t = { .next_action_at = OFFLOAD_NEVER_MS };
	char *problem = NULL;
	int r;

	switch (d->kind) {
	case AGENT_GOAL_ACHIEVED:
		/* doc/api.md, "Lifecycle": a result that does not conform to resultSchema
		 * completes nothing; the operator is asked for what is missing instead. */
		problem = agent_result_problem(c->result_schema, d->result_json ? d->result_json : "{}");
		if (problem) {
			case_asks(&t, problem);
			break;
		}
		t.status = CASE_COMPLETED;
		t.result_status = "goal_achieved";
		t.result_json = d->result_json ? d->result_json : "{}";
		t.finished = 1;
		t.webhook = "case.completed";
		break;
	case AGENT_REJECTED:
		case_fails(&t, "failed_rejected", d->reason ? d->reason : "the counterparty declined");
		break;
	case AGENT_NEEDS_INPUT:
		case_asks(&t, d->question ? d->question : "The agent could not decide; please advise.");
		break;
	case AGENT_WAIT:
		/* The follow-up schedule as it was before the pause (due now if that passed). */
		t.status = CASE_RUNNING;
		t.next_action_at = follow_up_after(w, c, c->last_outbound_at ? c->last_outbound_at : now);
		break;
	case AGENT_REPLY:
		t.status = CASE_RUNNING;
		t.attempt_inc = 1;
		t.next_action_at = follow_up_after(w, c, now);
		return send_and_apply(w, ev, c, AGENT_DRAFT_REPLY, d->reply, &t, now);
	}
	r = commit_step(w, ev, c, &t, now, "the case changed");
	free(problem);
	return r;
}

/* The agent judges the thread into *d: 0, or -1 with *err_r (the step is retried later).
 * WAIT is the operator's word only: the agent's becomes NEEDS_INPUT. */
static int evaluate(struct worker_ctx *w, const struct case_row *c, struct agent_decision *d,
		    const char **err_r)
{
	struct agent_case ac;
	int64_t t0;
	int r;

	*err_r = NULL;
	agent_view(c, w->db, &ac);
	t0 = util_now_us();
	r = agent_evaluate(w->agent, &ac, d, err_r);
	w->stats.agent_us += util_now_us() - t0;
	if (r < 0) {
		if (!*err_r)
			*err_r = "evaluation failed";
		return -1;
	}
	if (d->kind == AGENT_WAIT)
		d->kind = AGENT_NEEDS_INPUT;
	return 0;
}

static int on_reply(struct worker_ctx *w, const struct store_event *ev, const struct case_row *c,
		    int64_t now)
{
	struct agent_decision d;
	const char *err;
	int r;

	if (c->status != CASE_RUNNING)
		return finish_noop(w, ev, now, "the case is not RUNNING; the reply stays in the thread");
	if (evaluate(w, c, &d, &err) < 0)
		return retry_later(w, ev, now, store_lease_backoff_ms(ev->lease.attempts), err);
	r = decide(w, ev, c, &d, now);
	agent_decision_free(&d);
	return r;
}

/* The operator's decision from the event payload: 1 read, 0 none. */
static int operator_decision(const struct store_event *ev, struct agent_decision *d)
{
	json_object *p = parse_or_null(ev->payload), *dec = NULL, *v;
	const char *outcome;
	int r = 0;

	memset(d, 0, sizeof *d);
	if (!p || !json_object_object_get_ex(p, "decision", &dec) || !dec)
		goto out;
	outcome = jstr(dec, "outcome");
	if (!outcome)
		goto out;
	if (strcmp(outcome, "GOAL_ACHIEVED") == 0) {
		d->kind = AGENT_GOAL_ACHIEVED;
		if (json_object_object_get_ex(dec, "result", &v) && v)
			d->result_json = xstrdup(json_object_to_json_string_ext(
				v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (strcmp(outcome, "REPLY") == 0) {
		d->kind = AGENT_REPLY;
		d->reply = jstr(dec, "reply") ? xstrdup(jstr(dec, "reply")) : NULL;
	} else if (strcmp(outcome, "REJECTED") == 0) {
		d->kind = AGENT_REJECTED;
		d->reason = jstr(dec, "reason") ? xstrdup(jstr(dec, "reason")) : NULL;
	} else if (strcmp(outcome, "WAIT") == 0) {
		d->kind = AGENT_WAIT;
	} else {
		goto out;
	}
	r = 1;
out:
	json_object_put(p);
	return r;
}

static int on_input(struct worker_ctx *w, const struct store_event *ev, const struct case_row *c,
		    int64_t now)
{
	struct agent_decision d;
	int decided, r;

	if (c->status != CASE_INPUT_NEEDED)
		return finish_noop(w, ev, now, "the case is not waiting for input");
	decided = operator_decision(ev, &d);
	if (!decided && !agent_judges_answers(w->agent)) {
		/* Without a decision the answer is context: the manual agent cannot judge the
		 * thread again, so the case resumes its schedule. */
		d.kind = AGENT_WAIT;
	} else if (!decided) {
		/* doc/api.md, "Lifecycle": the answer is context for the agent, which judges
		 * the thread again. */
		const char *err;

		if (evaluate(w, c, &d, &err) < 0)
			return retry_later(w, ev, now, store_lease_backoff_ms(ev->lease.attempts),
					   err);
	}
	if (d.kind == AGENT_REPLY && (!d.reply || !*d.reply)) {
		agent_decision_free(&d);
		d.kind = AGENT_WAIT;
	}
	r = decide(w, ev, c, &d, now);
	agent_decision_free(&d);
	return r;
}

static int on_report(struct worker_ctx *w, const struct store_event *ev, const struct case_row *c,
		     const char *result_status, int64_t now)
{
	json_object *p = parse_or_null(ev->payload);
	const char *diag = jstr(p, "diagnostic");
	struct store_transition t = {
		.status = CASE_FAILED, .next_action_at = OFFLOAD_NEVER_MS,
		.result_status = result_status, .finished = 1, .webhook = "case.failed",
		.failure_reason = diag && *diag ? diag : result_status,
	};
	int r;

	if (c->status == CASE_COMPLETED || c->status == CASE_FAILED) {
		json_object_put(p);
		return finish_noop(w, ev, now, "the case is already final");
	}
	r = commit_step(w, ev, c, &t, now, "the case changed");
	json_object_put(p);
	return r;
}

/* The counterparty answered STOP (doc/api.md, SMS): the opt-out is recorded already. */
static int on_sms_opt_out(struct worker_ctx *w, const struct store_event *ev,
			  const struct case_row *c, int64_t now)
{
	struct store_transition t = {
		.status = CASE_FAILED, .next_action_at = OFFLOAD_NEVER_MS,
		.result_status = "failed_rejected", .failure_reason = "recipient opted out by SMS",
		.finished = 1, .webhook = "case.failed",
	};

	if (c->status == CASE_COMPLETED || c->status == CASE_FAILED)
		return finish_noop(w, ev, now, "the case is already final");
	return commit_step(w, ev, c, &t, now, "the case changed");
}

static int on_bounce(struct worker_ctx *w, const struct store_event *ev, const struct case_row *c,
		     int64_t now)
{
	return on_report(w, ev, c, "BOUNCED", now);
}

static int on_complaint(struct worker_ctx *w, const struct store_event *ev,
			const struct case_row *c, int64_t now)
{
	return on_report(w, ev, c, "COMPLAINED", now);
}

/* The step of each event type (store/types.h); a type without one is finished as unknown. */
static int (*const steps[EVENT_TYPE_COUNT])(struct worker_ctx *w, const struct store_event *ev,
					     const struct case_row *c, int64_t now) = {
	[EVENT_CASE_CREATED] = on_case_created,
	[EVENT_FOLLOW_UP_DUE] = on_follow_up_due,
	[EVENT_REPLY_RECEIVED] = on_reply,
	[EVENT_INPUT_PROVIDED] = on_input,
	[EVENT_BOUNCE_RECEIVED] = on_bounce,
	[EVENT_COMPLAINT_RECEIVED] = on_complaint,
	[EVENT_SMS_OPT_OUT] = on_sms_opt_out,
};

int step_run(struct worker_ctx *w, const struct store_event *ev)
{
	struct case_row c;
	int64_t now = util_now_ms();
	int rc;

	if (!ev->case_found)
		return finish_noop(w, ev, now, "no such case");
	if (!ev->known_type || (unsigned)ev->type >= EVENT_TYPE_COUNT || !steps[ev->type])
		return finish_noop(w, ev, now, "unknown event type");
	if (load_case(w, ev, &c) < 0) {
		log_warn("case %s: loading: %s", ev->case_id, db_error(w->db));
		case_row_free(&c);
		return retry_later(w, ev, now, store_lease_backoff_ms(ev->lease.attempts),
				   "the database failed");
	}
	rc = steps[ev->type](w, ev, &c, now);
	case_row_free(&c);
	return rc;
}
