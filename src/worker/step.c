/* step.c: one event of one case through the lifecycle of SPEC §4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "agent/agent.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/compose.h"
#include "mail/smtp.h"
#include "store/db.h"
#include "store/outbox.h"
#include "worker/queue.h"
#include "worker/worker.h"

#define MAX_REFERENCES 20
#define BAD_DRAFT_TRIES 3

/* The case as the worker needs it, read at the start of the step. */
struct case_row {
	char id[37];
	char status[17];
	int64_t attempt_count, follow_ups_sent, max_attempts, delay_h, version, next_action_at;
	char *address;
	json_object *goal, *counterparty, *persona, *constraints, *result_schema;
	/* from the thread */
	json_object *thread;        /* [{direction, kind, from, to, subject, body, at}] */
	json_object *answers;       /* [{question, answer, at}] */
	char *first_subject;        /* of our first message */
	char *last_message_id;      /* newest message of the thread (either direction) */
	char *references;           /* "<a> <b> …", oldest first, capped */
	int64_t last_outbound_at;   /* sent_at of our newest sent message, 0 when none */
	int replied_since_outbound; /* a real reply arrived after our newest message */
};

/* What a step decided: the new state of the case, committed in one transaction. */
struct transition {
	const char *status;
	int attempt_inc, follow_up_inc;
	int64_t next_action_at;
	const char *result_status;  /* NULL: unchanged */
	const char *result_json;    /* NULL: unchanged */
	const char *failure_reason; /* NULL: unchanged */
	int finished;               /* set finished_at */
	const char *question;       /* INPUT_NEEDED: a new input request with this question */
	int64_t sent_message;       /* > 0: that outbound row becomes sent */
	const char *webhook;        /* case.completed | case.failed | case.input_needed | NULL */
};

static void case_row_free(struct case_row *c)
{
	free(c->address);
	json_object_put(c->goal);
	json_object_put(c->counterparty);
	json_object_put(c->persona);
	json_object_put(c->constraints);
	json_object_put(c->result_schema);
	json_object_put(c->thread);
	json_object_put(c->answers);
	free(c->first_subject);
	free(c->last_message_id);
	free(c->references);
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

/* 1 loaded, 0 no such case, -1 error. */
static int load_case(struct worker_ctx *w, const char *case_id, struct case_row *c)
{
	static const char case_sql[] =
		"SELECT status, attempt_count, follow_ups_sent, max_attempts, follow_up_delay_hours,"
		" version, next_action_at, counterparty_address, goal, counterparty, sender_persona,"
		" constraints_json, result_schema FROM cases WHERE id = ?";
	static const char thread_sql[] =
		"SELECT direction, kind, message_id, from_addr, to_addr, subject, body_text,"
		" created_at, send_state, sent_at, id FROM messages WHERE case_id = ?"
		" ORDER BY created_at, id";
	/* What came attached to which message: the agent sees names, types and sizes. */
	static const char attachments_sql[] =
		"SELECT message_row_id, name, content_type, size FROM attachments WHERE case_id = ?"
		" ORDER BY received_at, id";
	static const char answers_sql[] =
		"SELECT question, answer, resolved_at FROM input_requests WHERE case_id = ?"
		" AND status = 'RESOLVED' ORDER BY requested_at, id";
	struct db_arg arg[] = { DB_STR(case_id) };
	struct db_res *res = NULL, *atts = NULL;
	struct buf refs;
	size_t n, first_ref;

	memset(c, 0, sizeof *c);
	snprintf(c->id, sizeof c->id, "%s", case_id);
	if (db_query(w->db, case_sql, arg, 1, &res) < 0)
		return -1;
	if (db_res_rows(res) == 0) {
		db_res_free(&res);
		return 0;
	}
	snprintf(c->status, sizeof c->status, "%s", db_res_get(res, 0, 0));
	c->attempt_count = db_res_int(res, 0, 1);
	c->follow_ups_sent = db_res_int(res, 0, 2);
	c->max_attempts = db_res_int(res, 0, 3);
	c->delay_h = db_res_int(res, 0, 4);
	c->version = db_res_int(res, 0, 5);
	c->next_action_at = db_res_int(res, 0, 6);
	c->address = xstrdup(db_res_get(res, 0, 7));
	c->goal = parse_or_null(db_res_get(res, 0, 8));
	c->counterparty = parse_or_null(db_res_get(res, 0, 9));
	c->persona = parse_or_null(db_res_get(res, 0, 10));
	c->constraints = parse_or_null(db_res_get(res, 0, 11));
	c->result_schema = parse_or_null(db_res_get(res, 0, 12));
	db_res_free(&res);

	if (db_query(w->db, attachments_sql, arg, 1, &atts) < 0)
		return -1;
	if (db_query(w->db, thread_sql, arg, 1, &res) < 0) {
		db_res_free(&atts);
		return -1;
	}
	c->thread = json_object_new_array();
	n = db_res_rows(res);
	first_ref = n > MAX_REFERENCES ? n - MAX_REFERENCES : 0;
	buf_init(&refs, 64 * 1024);
	buf_puts(&refs, "");
	for (size_t i = 0; i < n; i++) {
		const char *dir = db_res_get(res, i, 0), *kind = db_res_get(res, i, 1);
		const char *state = db_res_get(res, i, 8);
		int outbound = strcmp(dir, "outbound") == 0;
		json_object *m;

		/* An outbound message never accepted by the server is not part of the thread. */
		if (outbound && (!state || strcmp(state, "sent") != 0))
			continue;
		m = json_object_new_object();
		json_object_object_add(m, "direction", json_object_new_string(dir));
		json_object_object_add(m, "kind", json_object_new_string(kind));
		json_object_object_add(m, "from", json_object_new_string(db_res_get(res, i, 3)));
		json_object_object_add(m, "to", json_object_new_string(db_res_get(res, i, 4)));
		json_object_object_add(m, "subject", json_object_new_string(db_res_get(res, i, 5)));
		json_object_object_add(m, "body", json_object_new_string(db_res_get(res, i, 6)));
		json_object_object_add(m, "at", json_object_new_int64(db_res_int(res, i, 7)));
		for (size_t a = 0; a < db_res_rows(atts); a++) {
			json_object *list, *one;

			if (db_res_int(atts, a, 0) != db_res_int(res, i, 10))
				continue;
			if (!json_object_object_get_ex(m, "attachments", &list)) {
				list = json_object_new_array();
				json_object_object_add(m, "attachments", list);
			}
			one = json_object_new_object();
			json_object_object_add(one, "name", json_object_new_string(db_res_get(atts, a, 1)));
			json_object_object_add(one, "type", json_object_new_string(db_res_get(atts, a, 2)));
			json_object_object_add(one, "size", json_object_new_int64(db_res_int(atts, a, 3)));
			json_object_array_add(list, one);
		}
		json_object_array_add(c->thread, m);
		if (outbound && !c->first_subject)
			c->first_subject = xstrdup(db_res_get(res, i, 5));
		if (outbound) {
			c->last_outbound_at = db_res_int(res, i, 9);
			c->replied_since_outbound = 0;
		} else if (strcmp(kind, "reply") == 0) {
			c->replied_since_outbound = 1;
		}
		/* Delivery reports are not part of the conversation we answer in. */
		if (outbound || strcmp(kind, "reply") == 0 || strcmp(kind, "auto_reply") == 0) {
			free(c->last_message_id);
			c->last_message_id = xstrdup(db_res_get(res, i, 2));
			if (i >= first_ref)
				buf_printf(&refs, "%s<%s>", refs.len ? " " : "", db_res_get(res, i, 2));
		}
	}
	c->references = refs.data;
	db_res_free(&res);
	db_res_free(&atts);

	if (db_query(w->db, answers_sql, arg, 1, &res) < 0)
		return -1;
	c->answers = json_object_new_array();
	for (size_t i = 0; i < db_res_rows(res); i++) {
		json_object *a = json_object_new_object();

		json_object_object_add(a, "question", json_object_new_string(db_res_get(res, i, 0)));
		json_object_object_add(a, "answer",
				       json_object_new_string(db_res_get(res, i, 1) ? db_res_get(res, i, 1) : ""));
		json_object_object_add(a, "at", json_object_new_int64(db_res_int(res, i, 2)));
		json_object_array_add(c->answers, a);
	}
	db_res_free(&res);
	return 1;
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
	ac->max_attempts = (int)c->max_attempts;
	ac->follow_up_n = (int)c->follow_ups_sent + 1;
	ac->first_subject = c->first_subject;
}

/*
 * Commits t: the case update (only if the case is still at the version we read), a new
 * input request, the message now sent, the webhook, and the end of the event, together.
 * 1 done, 0 the case or the lease changed under us (rolled back), -1 error.
 */
static int apply(struct worker_ctx *w, const struct queue_event *ev, const struct case_row *c,
		 const struct transition *t, int64_t now)
{
	static const char update[] =
		"UPDATE cases SET status = ?, attempt_count = attempt_count + ?,"
		" follow_ups_sent = follow_ups_sent + ?, next_action_at = ?,"
		" result_status = COALESCE(?, result_status), result = COALESCE(?, result),"
		" failure_reason = COALESCE(?, failure_reason),"
		" finished_at = IF(?, ?, finished_at), input_request_id = COALESCE(?, input_request_id),"
		" updated_at = ?, version = version + 1 WHERE id = ? AND version = ?";
	static const char new_request[] =
		"INSERT INTO input_requests (id, case_id, question, status, requested_at)"
		" VALUES (?, ?, ?, 'PENDING', ?)";
	static const char mark_sent[] =
		"UPDATE messages SET send_state = 'sent', sent_at = ? WHERE id = ?";
	char request_id[37];
	int r;

	if (t->question)
		util_uuid_v4(request_id);
	if (db_begin(w->db) < 0)
		return -1;
	{
		struct db_arg a[] = {
			DB_STR(t->status), DB_INT(t->attempt_inc), DB_INT(t->follow_up_inc),
			DB_INT(t->next_action_at), DB_STR(t->result_status), DB_STR(t->result_json),
			DB_STR(t->failure_reason), DB_INT(t->finished), DB_INT(now),
			t->question ? DB_STR(request_id) : DB_NULL, DB_INT(now), DB_STR(c->id),
			DB_INT(c->version),
		};

		if (db_query(w->db, update, a, sizeof a / sizeof a[0], NULL) < 0)
			goto fail;
		if (db_affected_rows(w->db) != 1) {
			db_rollback(w->db);
			return 0;
		}
	}
	if (t->question) {
		struct db_arg a[] = { DB_STR(request_id), DB_STR(c->id), DB_STR(t->question), DB_INT(now) };

		if (db_query(w->db, new_request, a, 4, NULL) < 0)
			goto fail;
	}
	if (t->sent_message > 0) {
		struct db_arg a[] = { DB_INT(now), DB_INT(t->sent_message) };

		if (db_query(w->db, mark_sent, a, 2, NULL) < 0)
			goto fail;
	}
	if (t->webhook && outbox_case_event(w->db, c->id, t->webhook, now) < 0)
		goto fail;
	r = queue_finish_in_tx(w->db, ev, w->owner, now);
	if (r < 0)
		goto fail;
	if (r == 0) {
		db_rollback(w->db);
		return 0;
	}
	if (db_commit(w->db) < 0)
		goto fail;
	if (strcmp(t->status, c->status) != 0) {
		w->stats.transitions++;
		log_info("case %s: %s -> %s%s%s", c->id, c->status, t->status,
			 t->result_status ? " " : "", t->result_status ? t->result_status : "");
	}
	return 1;
fail:
	log_warn("case %s: committing the step failed: %s", c->id, db_error(w->db));
	db_rollback(w->db);
	return -1;
}

/* Gives the event back for later; logs why. Always returns 0 (the event is handled). */
static int retry_later(struct worker_ctx *w, const struct queue_event *ev, int64_t now,
		       int64_t delay_ms, const char *why)
{
	log_warn("case %s: %s: %s; retrying in %llds", ev->case_id, ev->type, why,
		 (long long)(delay_ms / 1000));
	w->stats.retried++;
	if (queue_retry(w->db, ev, w->owner, now + delay_ms, why, w->s->max_event_attempts) < 0)
		return -1;
	return 0;
}

static int finish_noop(struct worker_ctx *w, const struct queue_event *ev, int64_t now,
		       const char *why)
{
	log_debug("case %s: %s: nothing to do (%s)", ev->case_id, ev->type, why);
	w->stats.events++;
	return queue_finish(w->db, ev, w->owner, now);
}

/* Commits t (apply) and counts the event; a case that changed under us gives the event back
 * for a second try a moment later (why says what was in progress). 0, or -1. */
static int commit_step(struct worker_ctx *w, const struct queue_event *ev,
		       const struct case_row *c, const struct transition *t, int64_t now,
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

/* An outbound message as recorded before sending. */
struct outbound {
	int64_t row;
	char *message_id;
	char *subject;
	char *body;
	char *in_reply_to;
	char *references;
	int already_sent;
};

static void outbound_free(struct outbound *o)
{
	free(o->message_id);
	free(o->subject);
	free(o->body);
	free(o->in_reply_to);
	free(o->references);
	memset(o, 0, sizeof *o);
}

/* The outbound message an earlier try of this event recorded: 1 found, 0 none, -1 error. */
static int find_outbound(struct worker_ctx *w, const struct queue_event *ev, struct outbound *o)
{
	static const char sql[] =
		"SELECT id, message_id, subject, body_text, in_reply_to, references_ids, send_state"
		" FROM messages WHERE event_id = ? AND direction = 'outbound' ORDER BY id DESC LIMIT 1";
	struct db_arg a[] = { DB_INT(ev->id) };
	struct db_res *res = NULL;

	memset(o, 0, sizeof *o);
	if (db_query(w->db, sql, a, 1, &res) < 0)
		return -1;
	if (db_res_rows(res) == 0) {
		db_res_free(&res);
		return 0;
	}
	o->row = db_res_int(res, 0, 0);
	o->message_id = xstrdup(db_res_get(res, 0, 1));
	o->subject = xstrdup(db_res_get(res, 0, 2));
	o->body = xstrdup(db_res_get(res, 0, 3));
	o->in_reply_to = db_res_get(res, 0, 4) ? xstrdup(db_res_get(res, 0, 4)) : NULL;
	o->references = db_res_get(res, 0, 5) ? xstrdup(db_res_get(res, 0, 5)) : NULL;
	o->already_sent = db_res_get(res, 0, 6) && strcmp(db_res_get(res, 0, 6), "sent") == 0;
	db_res_free(&res);
	return 1;
}

/* Records the message before the SMTP transaction (SPEC §4.7), if the case is unchanged.
 * 1 recorded, 0 the case changed, -1 error. */
static int record_outbound(struct worker_ctx *w, const struct queue_event *ev,
			   const struct case_row *c, const char *kind, struct outbound *o, int64_t now)
{
	static const char check[] = "SELECT version FROM cases WHERE id = ? FOR UPDATE";
	static const char insert[] =
		"INSERT INTO messages (case_id, direction, kind, message_id, in_reply_to, references_ids,"
		" from_addr, to_addr, subject, body_text, send_state, created_at, event_id)"
		" VALUES (?, 'outbound', ?, ?, ?, ?, ?, ?, ?, ?, 'sending', ?, ?)";
	struct db_arg ca[] = { DB_STR(c->id) };
	struct db_res *res = NULL;
	const char *from_name = jstr(c->persona, "name");
	char *from = xasprintf("%s <%s>", from_name ? from_name : "", w->s->from_address);

	if (db_begin(w->db) < 0 || db_query(w->db, check, ca, 1, &res) < 0)
		goto fail;
	if (db_res_rows(res) == 0 || db_res_int(res, 0, 0) != c->version) {
		db_res_free(&res);
		db_rollback(w->db);
		free(from);
		return 0;
	}
	db_res_free(&res);
	{
		struct db_arg a[] = {
			DB_STR(c->id), DB_STR(kind), DB_STR(o->message_id), DB_STR(o->in_reply_to),
			DB_STR(o->references), DB_STR(from), DB_STR(c->address), DB_STR(o->subject),
			DB_STR(o->body), DB_INT(now), DB_INT(ev->id),
		};

		if (db_query(w->db, insert, a, sizeof a / sizeof a[0], NULL) < 0)
			goto fail;
		o->row = db_insert_id(w->db);
	}
	if (db_commit(w->db) < 0)
		goto fail;
	free(from);
	return 1;
fail:
	log_warn("case %s: recording the outbound message: %s", c->id, db_error(w->db));
	db_rollback(w->db);
	free(from);
	return -1;
}

enum send_outcome {
	SEND_OK,        /* accepted by the server: o->row is the message to mark sent */
	SEND_HANDLED,   /* temporary failure or conflict: the event was given back */
	SEND_REJECTED,  /* permanent refusal: reason in the buffer */
	SEND_BAD_DRAFT, /* the agent keeps writing unusable drafts: question in the buffer */
	SEND_ERROR,     /* database trouble: the lease will expire */
};

static int timed_draft(struct worker_ctx *w, const struct agent_case *ac,
		       enum agent_draft_kind kind, struct agent_draft *d, const char **err)
{
	int64_t t0 = util_now_us();
	int r = agent_draft(w->agent, ac, kind, d, err);

	w->stats.agent_us += util_now_us() - t0;
	return r;
}

/* "Re:" subjects keep one prefix. */
static char *thread_subject(const struct case_row *c, const char *fallback)
{
	const char *s = c->first_subject ? c->first_subject : fallback;

	if (strncasecmp(s, "Re:", 3) == 0)
		return xstrdup(s);
	return xasprintf("Re: %s", s);
}

/*
 * Sends a message in the case's thread: drafts it (or takes text, for an operator's reply),
 * records it, sends it over SMTP, and reports the outcome. An earlier try of the same
 * event that recorded a message is reused with the same Message-ID, so a crash between
 * recording and sending costs no duplicate, and one after sending costs at most one.
 */
static enum send_outcome send_message(struct worker_ctx *w, const struct queue_event *ev,
				      const struct case_row *c, enum agent_draft_kind kind,
				      const char *text, struct outbound *o, char *reason,
				      size_t reason_cap, int64_t now)
{
	static const char kinds[][12] = { "outreach", "follow_up", "reply" };
	static const char note_error[] =
		"UPDATE messages SET send_error = ?, send_state = ? WHERE id = ?";
	struct compose_msg m;
	struct agent_case ac;
	struct agent_draft d = { NULL, NULL };
	const char *err = NULL;
	char *raw = NULL, *reply_to = NULL;
	size_t raw_len = 0;
	enum smtp_result sr;
	enum send_outcome out = SEND_ERROR;
	int found = find_outbound(w, ev, o);

	if (found < 0)
		return SEND_ERROR;
	if (found && o->already_sent)
		return SEND_OK;
	if (!found) {
		unsigned char rnd[4];
		char hex[9];

		agent_view(c, w->db, &ac);
		if (text) {
			d.subject = thread_subject(c, "our request");
			d.body = xstrdup(text);
		} else if (timed_draft(w, &ac, kind, &d, &err) < 0) {
			retry_later(w, ev, now, queue_backoff_ms(ev->attempts), err ? err : "drafting failed");
			return SEND_HANDLED;
		}
		if (!d.subject || !*d.subject || !d.body || !*d.body || strpbrk(d.subject, "\r\n")) {
			agent_draft_free(&d);
			/* A draft that stays unusable will not mend by waiting: after a few tries a
			 * person writes the message instead. */
			if (ev->attempts >= BAD_DRAFT_TRIES) {
				snprintf(reason, reason_cap, "The agent could not write a usable %s "
					 "message after %d tries. Answer with a decision: REPLY with the "
					 "text to send, or REJECTED.", kinds[kind], BAD_DRAFT_TRIES);
				return SEND_BAD_DRAFT;
			}
			retry_later(w, ev, now, queue_backoff_ms(ev->attempts), "the draft was empty or malformed");
			return SEND_HANDLED;
		}
		util_random_bytes(rnd, sizeof rnd);
		util_hex(rnd, sizeof rnd, hex);
		o->message_id = xasprintf("%s.%lld.%s@%s", c->id, (long long)c->attempt_count + 1, hex,
					  w->s->domain);
		o->subject = d.subject;
		o->body = d.body;
		d.subject = d.body = NULL;
		if (c->last_message_id) {
			o->in_reply_to = xstrdup(c->last_message_id);
			o->references = xstrdup(c->references);
		}
		switch (record_outbound(w, ev, c, kinds[kind], o, now)) {
		case 1:
			break;
		case 0:
			retry_later(w, ev, now, 1000, "the case changed while drafting");
			return SEND_HANDLED;
		default:
			return SEND_ERROR;
		}
	}

	{
		const char *at = strrchr(w->s->inbox_address, '@');

		/* Replies come back plus-addressed to the case (DESIGN: Mail). */
		reply_to = at ? xasprintf("%.*s+%s%s", (int)(at - w->s->inbox_address),
					  w->s->inbox_address, c->id, at)
			      : xstrdup(w->s->inbox_address);
	}
	memset(&m, 0, sizeof m);
	m.from_name = jstr(c->persona, "name");
	m.from_addr = w->s->from_address;
	m.reply_to = reply_to;
	m.to_name = jstr(c->counterparty, "name");
	m.to_addr = c->address;
	m.subject = o->subject;
	m.body = o->body;
	m.message_id = o->message_id;
	m.in_reply_to = o->in_reply_to;
	m.references = o->references;
	m.case_id = c->id;
	m.date_ms = now;
	if (compose_message(&m, &raw, &raw_len, &err) < 0) {
		snprintf(reason, reason_cap, "the message could not be written: %s", err);
		out = SEND_REJECTED;
		goto out;
	}
	{
		int64_t t0 = util_now_us();

		sr = smtp_send(w->smtp, w->s->from_address, c->address, raw, raw_len, reason,
			       reason_cap);
		w->stats.smtp_us += util_now_us() - t0;
	}
	if (sr == SMTP_SENT) {
		w->stats.sent++;
		log_info("case %s: sent %s <%s>", c->id, kinds[kind], o->message_id);
		out = SEND_OK;
	} else {
		struct db_arg a[] = { DB_STR(reason), DB_STR(sr == SMTP_PERMANENT ? "failed" : "sending"),
				      DB_INT(o->row) };

		if (db_query(w->db, note_error, a, 3, NULL) < 0)
			log_warn("case %s: noting the send error: %s", c->id, db_error(w->db));
		if (sr == SMTP_PERMANENT) {
			out = SEND_REJECTED;
		} else {
			retry_later(w, ev, now, queue_backoff_ms(ev->attempts), reason);
			out = SEND_HANDLED;
		}
	}
out:
	free(raw);
	free(reply_to);
	agent_draft_free(&d);
	return out;
}

/* The commit after a successful send lost a race: keep the fact that it was sent. */
static void keep_sent(struct worker_ctx *w, int64_t row, int64_t now)
{
	static const char sql[] = "UPDATE messages SET send_state = 'sent', sent_at = ? WHERE id = ?";
	struct db_arg a[] = { DB_INT(now), DB_INT(row) };

	if (db_query(w->db, sql, a, 2, NULL) < 0)
		log_warn("marking message %lld sent: %s", (long long)row, db_error(w->db));
}

/* Sends, then commits ok_t (with the message marked sent) or the REJECTED failure. */
static int send_and_apply(struct worker_ctx *w, const struct queue_event *ev,
			  const struct case_row *c, enum agent_draft_kind kind, const char *text,
			  struct transition *ok_t, int64_t now)
{
	struct outbound o;
	char reason[600] = "";
	int r;

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
		struct transition t = {
			.status = "FAILED", .next_action_at = OFFLOAD_NEVER_MS,
			.result_status = "REJECTED", .failure_reason = reason, .finished = 1,
			.webhook = "case.failed",
		};

		r = commit_step(w, ev, c, &t, now, "the case changed while sending");
		break;
	}
	case SEND_BAD_DRAFT: {
		struct transition t = {
			.status = "INPUT_NEEDED", .next_action_at = OFFLOAD_NEVER_MS,
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
	outbound_free(&o);
	return r < 0 ? -1 : 0;
}

static int on_case_created(struct worker_ctx *w, const struct queue_event *ev,
			   const struct case_row *c, int64_t now)
{
	struct transition t = {
		.status = "RUNNING", .attempt_inc = 1,
		.next_action_at = now + c->delay_h * 3600000,
	};

	if (strcmp(c->status, "CREATED") != 0)
		return finish_noop(w, ev, now, "the case is no longer CREATED");
	return send_and_apply(w, ev, c, AGENT_DRAFT_OUTREACH, NULL, &t, now);
}

static int on_follow_up_due(struct worker_ctx *w, const struct queue_event *ev,
			    const struct case_row *c, int64_t now)
{
	struct transition t = { 0 };

	if (strcmp(c->status, "RUNNING") != 0)
		return finish_noop(w, ev, now, "the case is not RUNNING");
	if (c->next_action_at > now)
		return finish_noop(w, ev, now, "rescheduled since");
	if (c->replied_since_outbound) {
		/* The reply's own event decides what happens next. */
		t.status = "RUNNING";
		t.next_action_at = OFFLOAD_NEVER_MS;
	} else if (c->follow_ups_sent >= c->max_attempts) {
		t.status = "FAILED";
		t.next_action_at = OFFLOAD_NEVER_MS;
		t.result_status = "max_retries";
		t.failure_reason = "no reply after the last follow-up";
		t.finished = 1;
		t.webhook = "case.failed";
	} else {
		t.status = "RUNNING";
		t.attempt_inc = 1;
		t.follow_up_inc = 1;
		t.next_action_at = now + c->delay_h * 3600000;
		return send_and_apply(w, ev, c, AGENT_DRAFT_FOLLOW_UP, NULL, &t, now);
	}
	return commit_step(w, ev, c, &t, now, "the case changed");
}

/* Applies a decision (the agent's or the operator's). */
static int decide(struct worker_ctx *w, const struct queue_event *ev, const struct case_row *c,
		  const struct agent_decision *d, int64_t now)
{
	struct transition t = { .next_action_at = OFFLOAD_NEVER_MS };
	char *problem = NULL;
	int r;

	switch (d->kind) {
	case AGENT_GOAL_ACHIEVED:
		/* SPEC §4.3: a result that does not conform to resultSchema completes nothing;
		 * the operator is asked for what is missing instead. */
		problem = agent_result_problem(c->result_schema, d->result_json ? d->result_json : "{}");
		if (problem) {
			t.status = "INPUT_NEEDED";
			t.question = problem;
			t.webhook = "case.input_needed";
			break;
		}
		t.status = "COMPLETED";
		t.result_status = "goal_achieved";
		t.result_json = d->result_json ? d->result_json : "{}";
		t.finished = 1;
		t.webhook = "case.completed";
		break;
	case AGENT_REJECTED:
		t.status = "FAILED";
		t.result_status = "failed_rejected";
		t.failure_reason = d->reason ? d->reason : "the counterparty declined";
		t.finished = 1;
		t.webhook = "case.failed";
		break;
	case AGENT_NEEDS_INPUT:
		t.status = "INPUT_NEEDED";
		t.question = d->question ? d->question : "The agent could not decide; please advise.";
		t.webhook = "case.input_needed";
		break;
	case AGENT_WAIT:
		/* The follow-up schedule as it was before the pause (due now if that passed). */
		t.status = "RUNNING";
		t.next_action_at = (c->last_outbound_at ? c->last_outbound_at : now) + c->delay_h * 3600000;
		break;
	case AGENT_REPLY:
		t.status = "RUNNING";
		t.attempt_inc = 1;
		t.next_action_at = now + c->delay_h * 3600000;
		return send_and_apply(w, ev, c, AGENT_DRAFT_REPLY, d->reply, &t, now);
	}
	r = commit_step(w, ev, c, &t, now, "the case changed");
	free(problem);
	return r;
}

static int on_reply(struct worker_ctx *w, const struct queue_event *ev, const struct case_row *c,
		    int64_t now)
{
	struct agent_decision d;
	struct agent_case ac;
	const char *err = NULL;
	int64_t t0;
	int r;

	if (strcmp(c->status, "RUNNING") != 0)
		return finish_noop(w, ev, now, "the case is not RUNNING; the reply stays in the thread");
	agent_view(c, w->db, &ac);
	t0 = util_now_us();
	r = agent_evaluate(w->agent, &ac, &d, &err);
	w->stats.agent_us += util_now_us() - t0;
	if (r < 0)
		return retry_later(w, ev, now, queue_backoff_ms(ev->attempts),
				   err ? err : "evaluation failed");
	/* WAIT is the operator's word only. */
	if (d.kind == AGENT_WAIT)
		d.kind = AGENT_NEEDS_INPUT;
	r = decide(w, ev, c, &d, now);
	agent_decision_free(&d);
	return r;
}

/* The operator's decision from the event payload: 1 read, 0 none. */
static int operator_decision(const struct queue_event *ev, struct agent_decision *d)
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

static int on_input(struct worker_ctx *w, const struct queue_event *ev, const struct case_row *c,
		    int64_t now)
{
	struct agent_decision d;
	int decided, r;

	if (strcmp(c->status, "INPUT_NEEDED") != 0)
		return finish_noop(w, ev, now, "the case is not waiting for input");
	decided = operator_decision(ev, &d);
	if (!decided && !agent_judges_answers(w->agent)) {
		/* Without a decision the answer is context: the manual agent cannot judge the
		 * thread again, so the case resumes its schedule. */
		d.kind = AGENT_WAIT;
	} else if (!decided) {
		/* SPEC §4.4: the answer is context for the agent, which judges the thread again. */
		struct agent_case ac;
		const char *err = NULL;
		int64_t t0 = util_now_us();

		agent_view(c, w->db, &ac);
		r = agent_evaluate(w->agent, &ac, &d, &err);
		w->stats.agent_us += util_now_us() - t0;
		if (r < 0)
			return retry_later(w, ev, now, queue_backoff_ms(ev->attempts),
					   err ? err : "evaluation failed");
		if (d.kind == AGENT_WAIT)
			d.kind = AGENT_NEEDS_INPUT;
	}
	if (d.kind == AGENT_REPLY && (!d.reply || !*d.reply)) {
		agent_decision_free(&d);
		d.kind = AGENT_WAIT;
	}
	r = decide(w, ev, c, &d, now);
	agent_decision_free(&d);
	return r;
}

static int on_report(struct worker_ctx *w, const struct queue_event *ev, const struct case_row *c,
		     const char *result_status, int64_t now)
{
	json_object *p = parse_or_null(ev->payload);
	const char *diag = jstr(p, "diagnostic");
	struct transition t = {
		.status = "FAILED", .next_action_at = OFFLOAD_NEVER_MS,
		.result_status = result_status, .finished = 1, .webhook = "case.failed",
		.failure_reason = diag && *diag ? diag : result_status,
	};
	int r;

	if (strcmp(c->status, "COMPLETED") == 0 || strcmp(c->status, "FAILED") == 0) {
		json_object_put(p);
		return finish_noop(w, ev, now, "the case is already final");
	}
	r = commit_step(w, ev, c, &t, now, "the case changed");
	json_object_put(p);
	return r;
}

int step_run(struct worker_ctx *w, const struct queue_event *ev)
{
	struct case_row c;
	int64_t now = util_now_ms();
	int found, rc;

	found = load_case(w, ev->case_id, &c);
	if (found < 0) {
		log_warn("case %s: loading: %s", ev->case_id, db_error(w->db));
		case_row_free(&c);
		return retry_later(w, ev, now, queue_backoff_ms(ev->attempts), "the database failed");
	}
	if (found == 0) {
		case_row_free(&c);
		return finish_noop(w, ev, now, "no such case");
	}
	if (strcmp(ev->type, "CASE_CREATED") == 0)
		rc = on_case_created(w, ev, &c, now);
	else if (strcmp(ev->type, "FOLLOW_UP_DUE") == 0)
		rc = on_follow_up_due(w, ev, &c, now);
	else if (strcmp(ev->type, "REPLY_RECEIVED") == 0)
		rc = on_reply(w, ev, &c, now);
	else if (strcmp(ev->type, "INPUT_PROVIDED") == 0)
		rc = on_input(w, ev, &c, now);
	else if (strcmp(ev->type, "BOUNCE_RECEIVED") == 0)
		rc = on_report(w, ev, &c, "BOUNCED", now);
	else if (strcmp(ev->type, "COMPLAINT_RECEIVED") == 0)
		rc = on_report(w, ev, &c, "COMPLAINED", now);
	else
		rc = finish_noop(w, ev, now, "unknown event type");
	case_row_free(&c);
	return rc;
}
