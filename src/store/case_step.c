/* case_step.c: the worker's reads and transitions of a case (tables cases, messages,
 * attachments, input_requests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/case_step.h"
#include "store/db.h"
#include "store/lease.h"
#include "store/outbox.h"
#include "store/tx.h"

/* Columns of read_sql, in order. */
enum {
	COL_ID, COL_STATUS, COL_ATTEMPT_COUNT, COL_FOLLOW_UPS_SENT, COL_MAX_ATTEMPTS,
	COL_DELAY_H, COL_VERSION, COL_NEXT_ACTION_AT, COL_ADDRESS, COL_GOAL, COL_COUNTERPARTY,
	COL_PERSONA, COL_CONSTRAINTS, COL_RESULT_SCHEMA, COL_LEASE_OWNER, COL_LEASE_UNTIL,
	COL_HAS_MESSAGES, COL_HAS_ANSWERS, COL_CLIENT_ID, COL_CHANNEL, COL_SEND_WINDOW,
};

/* The two EXISTS let a case without history skip the three history reads: they walk
 * messages_case and input_requests_case and stop at the first row. */
static const char read_sql[] =
	"SELECT id, status, attempt_count, follow_ups_sent, max_attempts, follow_up_delay_hours,"
	" version, next_action_at, counterparty_address, goal, counterparty, sender_persona,"
	" constraints_json, result_schema, lease_owner, lease_until,"
	" EXISTS (SELECT 1 FROM messages m WHERE m.case_id = cases.id),"
	" EXISTS (SELECT 1 FROM input_requests r WHERE r.case_id = cases.id"
	" AND r.status = 'RESOLVED'), client_id, channel, send_window"
	" FROM cases WHERE id IN (" STORE_IN_LIST ")";

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void fill_case(const struct db_res *res, size_t i, struct store_case *c)
{
	snprintf(c->id, sizeof c->id, "%s", db_res_get(res, i, COL_ID));
	c->attempt_count = db_res_int(res, i, COL_ATTEMPT_COUNT);
	c->follow_ups_sent = db_res_int(res, i, COL_FOLLOW_UPS_SENT);
	c->max_attempts = db_res_int(res, i, COL_MAX_ATTEMPTS);
	c->follow_up_delay_hours = db_res_int(res, i, COL_DELAY_H);
	c->version = db_res_int(res, i, COL_VERSION);
	c->next_action_at = db_res_int(res, i, COL_NEXT_ACTION_AT);
	c->counterparty_address = xstrdup(db_res_get(res, i, COL_ADDRESS));
	c->goal = xstrdup(db_res_get(res, i, COL_GOAL));
	c->counterparty = xstrdup(db_res_get(res, i, COL_COUNTERPARTY));
	c->sender_persona = xstrdup(db_res_get(res, i, COL_PERSONA));
	c->constraints = dup_or_null(db_res_get(res, i, COL_CONSTRAINTS));
	c->result_schema = dup_or_null(db_res_get(res, i, COL_RESULT_SCHEMA));
	c->send_window = dup_or_null(db_res_get(res, i, COL_SEND_WINDOW));
	c->has_messages = db_res_int(res, i, COL_HAS_MESSAGES) != 0;
	c->has_answers = db_res_int(res, i, COL_HAS_ANSWERS) != 0;
	snprintf(c->client_id, sizeof c->client_id, "%s", db_res_get(res, i, COL_CLIENT_ID));
	c->sms = strcmp(db_res_get(res, i, COL_CHANNEL), "SMS") == 0;
}

int store_case_lease(struct db *db, const char *owner, int64_t until_ms, int64_t now_ms,
		     const char *const *ids, size_t n, enum store_case_lease_state *states_r,
		     struct store_case *rows_r)
{
	static const char lease_sql[] =
		"UPDATE cases SET lease_owner = ?, lease_until = ? WHERE id IN (" STORE_IN_LIST ")"
		" AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?)";
	struct db_arg a[2 + STORE_IN_MAX + 2];
	struct db_res *res = NULL;

	memset(rows_r, 0, n * sizeof *rows_r);
	for (size_t i = 0; i < n; i++)
		states_r[i] = STORE_CASE_MISSING;
	for (size_t off = 0; off < n; off += STORE_IN_MAX) {
		size_t k = n - off < STORE_IN_MAX ? n - off : STORE_IN_MAX;

		a[0] = DB_STR(owner);
		a[1] = DB_INT(until_ms);
		for (size_t i = 0; i < STORE_IN_MAX; i++)
			a[2 + i] = i < k ? DB_STR(ids[off + i]) : DB_NULL;
		a[2 + STORE_IN_MAX] = DB_INT(now_ms);
		a[3 + STORE_IN_MAX] = DB_STR(owner);
		if (db_query(db, lease_sql, a, 4 + STORE_IN_MAX, NULL) < 0)
			return -1;
		if (db_query(db, read_sql, a + 2, STORE_IN_MAX, &res) < 0)
			return -1;
		for (size_t r = 0; r < db_res_rows(res); r++) {
			const char *id = db_res_get(res, r, COL_ID);
			const char *lo = db_res_get(res, r, COL_LEASE_OWNER);
			size_t i;

			for (i = off; i < off + k && strcmp(ids[i], id) != 0; i++)
				;
			if (i == off + k)
				continue;
			if (!lo || strcmp(lo, owner) != 0 ||
			    db_res_int(res, r, COL_LEASE_UNTIL) != until_ms) {
				states_r[i] = STORE_CASE_BUSY;
				continue;
			}
			if (store_case_status_parse(db_res_get(res, r, COL_STATUS),
						    &rows_r[i].status) < 0) {
				/* Not a status this worker knows: nothing it could do with the case
				 * (deferring the event would bring it back every second). */
				log_warn("case %s: status %s is not one this worker knows; its event "
					 "is finished without a step", id, db_res_get(res, r, COL_STATUS));
				states_r[i] = STORE_CASE_MISSING;
				continue;
			}
			fill_case(res, r, &rows_r[i]);
			states_r[i] = STORE_CASE_LEASED;
		}
		db_res_free(&res);
	}
	return 0;
}

void store_case_free(struct store_case *c)
{
	free(c->counterparty_address);
	free(c->goal);
	free(c->counterparty);
	free(c->sender_persona);
	free(c->constraints);
	free(c->result_schema);
	free(c->send_window);
	memset(c, 0, sizeof *c);
}

int store_case_history_load(struct db *db, const struct store_case *c,
			    struct store_case_history *h)
{
	static const char thread_sql[] =
		"SELECT id, direction, kind, message_id, from_addr, to_addr, subject, body_text,"
		" created_at, send_state, sent_at FROM messages WHERE case_id = ?"
		" ORDER BY created_at, id";
	/* What came attached to which message: the agent sees names, types and sizes. */
	static const char attachments_sql[] =
		"SELECT message_row_id, name, content_type, size FROM attachments WHERE case_id = ?"
		" ORDER BY received_at, id";
	static const char answers_sql[] =
		"SELECT question, answer, resolved_at FROM input_requests WHERE case_id = ?"
		" AND status = 'RESOLVED' ORDER BY requested_at, id";
	struct db_arg arg[] = { DB_STR(c->id) };
	struct db_res *res = NULL;
	int inbound = 0, rc = -1;

	memset(h, 0, sizeof *h);
	if (c->has_messages) {
		if (db_query(db, thread_sql, arg, 1, &res) < 0)
			goto out;
		h->n_messages = db_res_rows(res);
		h->messages = xcalloc(h->n_messages ? h->n_messages : 1, sizeof *h->messages);
		for (size_t i = 0; i < h->n_messages; i++) {
			struct store_thread_message *m = &h->messages[i];
			const char *state = db_res_get(res, i, 9);

			m->row = db_res_int(res, i, 0);
			m->outbound = strcmp(db_res_get(res, i, 1), "outbound") == 0;
			snprintf(m->kind, sizeof m->kind, "%s", db_res_get(res, i, 2));
			m->message_id = xstrdup(db_res_get(res, i, 3));
			m->from_addr = xstrdup(db_res_get(res, i, 4));
			m->to_addr = xstrdup(db_res_get(res, i, 5));
			m->subject = xstrdup(db_res_get(res, i, 6));
			m->body = xstrdup(db_res_get(res, i, 7));
			m->created_at = db_res_int(res, i, 8);
			m->sent = m->outbound && state && strcmp(state, "sent") == 0;
			m->sent_at = db_res_int(res, i, 10);
			inbound |= !m->outbound;
		}
		db_res_free(&res);
	}
	/* Attachments come only with inbound mail. */
	if (inbound) {
		if (db_query(db, attachments_sql, arg, 1, &res) < 0)
			goto out;
		h->n_attachments = db_res_rows(res);
		h->attachments = xcalloc(h->n_attachments ? h->n_attachments : 1,
					 sizeof *h->attachments);
		for (size_t i = 0; i < h->n_attachments; i++) {
			h->attachments[i].message_row = db_res_int(res, i, 0);
			h->attachments[i].name = xstrdup(db_res_get(res, i, 1));
			h->attachments[i].content_type = xstrdup(db_res_get(res, i, 2));
			h->attachments[i].size = db_res_int(res, i, 3);
		}
		db_res_free(&res);
	}
	if (c->has_answers) {
		if (db_query(db, answers_sql, arg, 1, &res) < 0)
			goto out;
		h->n_answers = db_res_rows(res);
		h->answers = xcalloc(h->n_answers ? h->n_answers : 1, sizeof *h->answers);
		for (size_t i = 0; i < h->n_answers; i++) {
			const char *answer = db_res_get(res, i, 1);

			h->answers[i].question = xstrdup(db_res_get(res, i, 0));
			h->answers[i].answer = xstrdup(answer ? answer : "");
			h->answers[i].resolved_at = db_res_int(res, i, 2);
		}
		db_res_free(&res);
	}
	rc = 0;
out:
	db_res_free(&res);
	if (rc < 0)
		store_case_history_free(h);
	return rc;
}

void store_case_history_free(struct store_case_history *h)
{
	for (size_t i = 0; i < h->n_messages; i++) {
		free(h->messages[i].message_id);
		free(h->messages[i].from_addr);
		free(h->messages[i].to_addr);
		free(h->messages[i].subject);
		free(h->messages[i].body);
	}
	for (size_t i = 0; i < h->n_attachments; i++) {
		free(h->attachments[i].name);
		free(h->attachments[i].content_type);
	}
	for (size_t i = 0; i < h->n_answers; i++) {
		free(h->answers[i].question);
		free(h->answers[i].answer);
	}
	free(h->messages);
	free(h->attachments);
	free(h->answers);
	memset(h, 0, sizeof *h);
}

/* The case part of a transition's UPDATE; the lease of the case is released when it is the
 * caller's (lease_until first: it reads lease_owner before that is cleared). */
#define CASE_SET                                                                            \
	" c.status = ?, c.attempt_count = c.attempt_count + ?,"                              \
	" c.follow_ups_sent = c.follow_ups_sent + ?, c.next_action_at = ?,"                  \
	" c.result_status = COALESCE(?, c.result_status), c.result = COALESCE(?, c.result),"  \
	" c.failure_reason = COALESCE(?, c.failure_reason),"                                 \
	" c.finished_at = IF(?, ?, c.finished_at),"                                          \
	" c.input_request_id = COALESCE(?, c.input_request_id), c.updated_at = ?,"           \
	" c.version = c.version + 1,"                                                         \
	" c.lease_until = IF(c.lease_owner <=> ?, NULL, c.lease_until),"                      \
	" c.lease_owner = IF(c.lease_owner <=> ?, NULL, c.lease_owner),"                      \
	" e.state = 'done', e.done_at = ?, e.lease_owner = NULL, e.lease_until = NULL"
#define CASE_WHERE " WHERE c.id = ? AND c.version = ? AND e.id = ? AND " STORE_LEASE_HELD("e.")

/* One statement: the case, the event's end, and (with a sent message) the message. */
static const char transition_sql[] = "UPDATE cases c, events e SET" CASE_SET CASE_WHERE;
static const char transition_sent_sql[] =
	"UPDATE cases c, events e, messages m SET" CASE_SET
	", m.send_state = 'sent', m.sent_at = ?" CASE_WHERE " AND m.id = ?";

struct transition_arg {
	const struct store_case *c;
	const struct store_transition *t;
	const struct store_lease *ev;
	const char *owner;
	int64_t now;
	char request_id[37];
};

static int transition_body(struct db *db, void *arg)
{
	static const char new_request[] =
		"INSERT INTO input_requests (id, case_id, question, status, requested_at)"
		" VALUES (?, ?, ?, 'PENDING', ?)";
	struct transition_arg *x = arg;
	const struct store_transition *t = x->t;
	struct db_arg a[] = {
		DB_STR(store_case_status_name(t->status)), DB_INT(t->attempt_inc),
		DB_INT(t->follow_up_inc), DB_INT(t->next_action_at), DB_STR(t->result_status),
		DB_STR(t->result_json), DB_STR(t->failure_reason), DB_INT(t->finished),
		DB_INT(x->now), t->question ? DB_STR(x->request_id) : DB_NULL, DB_INT(x->now),
		DB_STR(x->owner), DB_STR(x->owner), DB_INT(x->now),
		/* the sent message's SET (only in transition_sent_sql) */
		DB_INT(x->now),
		/* WHERE */
		DB_STR(x->c->id), DB_INT(x->c->version), DB_INT(x->ev->id), DB_STR(x->owner),
		DB_INT(x->ev->attempts), DB_INT(t->sent_message),
	};
	size_t n = sizeof a / sizeof a[0];
	int r;

	if (t->sent_message > 0) {
		r = db_query(db, transition_sent_sql, a, n, NULL);
	} else {
		/* Without the message: drop its SET value and its WHERE value. */
		memmove(&a[14], &a[15], (n - 16) * sizeof a[0]);
		r = db_query(db, transition_sql, a, n - 2, NULL);
	}
	if (r < 0)
		return -1;
	if (db_affected_rows(db) < 1)
		return 1; /* the case moved on, or the lease is gone */
	if (t->question) {
		struct db_arg q[] = { DB_STR(x->request_id), DB_STR(x->c->id), DB_STR(t->question),
				      DB_INT(x->now) };

		if (db_query(db, new_request, q, 4, NULL) < 0)
			return -1;
	}
	if (t->webhook && outbox_case_event(db, x->c->id, t->webhook, x->now) < 0)
		return -1;
	return 0;
}

int store_case_transition(struct db *db, const struct store_case *c,
			  const struct store_transition *t, const struct store_lease *ev,
			  const char *owner, int64_t now_ms)
{
	struct transition_arg x = { c, t, ev, owner, now_ms, "" };
	int r;

	if (t->question)
		util_uuid_v4(x.request_id);
	/* Alone, the UPDATE is its own transaction: no START TRANSACTION and COMMIT round
	 * trips on the common path (a message sent, nothing else to write). */
	if (t->question || t->webhook)
		r = store_tx_run(db, transition_body, &x);
	else
		r = store_tx_run_single(db, transition_body, &x);
	if (r < 0)
		return -1;
	return r == 0 ? 1 : 0;
}

struct hold_arg {
	const struct store_case *c;
	const struct store_lease *ev;
	const char *owner;
	int64_t until, now;
};

static int hold_body(struct db *db, void *arg)
{
	/* The event's release is store_lease_release's, joined to the case's update so that
	 * the two cannot part (an event due at the opening with the case showing another time). */
	static const char sql[] =
		"UPDATE cases c, events e SET c.next_action_at = ?, c.updated_at = ?,"
		" c.version = c.version + 1,"
		" c.lease_until = IF(c.lease_owner <=> ?, NULL, c.lease_until),"
		" c.lease_owner = IF(c.lease_owner <=> ?, NULL, c.lease_owner),"
		" e.available_at = ?, e.attempts = e.attempts - 1, e.lease_owner = NULL,"
		" e.lease_until = NULL" CASE_WHERE;
	struct hold_arg *x = arg;
	struct db_arg a[] = {
		DB_INT(x->until), DB_INT(x->now), DB_STR(x->owner), DB_STR(x->owner),
		DB_INT(x->until), DB_STR(x->c->id), DB_INT(x->c->version), DB_INT(x->ev->id),
		DB_STR(x->owner), DB_INT(x->ev->attempts),
	};

	if (db_query(db, sql, a, sizeof a / sizeof a[0], NULL) < 0)
		return -1;
	return db_affected_rows(db) < 1 ? 1 : 0;
}

int store_case_hold(struct db *db, const struct store_case *c, const struct store_lease *ev,
		    const char *owner, int64_t until_ms, int64_t now_ms)
{
	struct hold_arg x = { c, ev, owner, until_ms, now_ms };
	int r = store_tx_run_single(db, hold_body, &x);

	if (r < 0)
		return -1;
	return r == 0 ? 1 : 0;
}
