/* case.c: the case of one event as step.c works on it (worker/case.h). */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent/agent.h"
#include "common/log.h"
#include "common/util.h"
#include "store/events.h"
#include "worker/case.h"
#include "worker/worker.h"

#define MAX_REFERENCES 20

void step_case_free(struct case_row *c)
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

const char *step_jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

json_object *step_json_parse(const char *text)
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

int step_case_load(struct worker_ctx *w, const struct store_event *ev, struct case_row *c)
{
	const struct store_case *r = &ev->kase;

	memset(c, 0, sizeof *c);
	c->row = r;
	c->id = r->id;
	c->sms_max_segments = (int)w->s->sms.max_segments;
	c->status = r->status;
	c->goal = step_json_parse(r->goal);
	c->counterparty = step_json_parse(r->counterparty);
	c->persona = step_json_parse(r->sender_persona);
	c->constraints = step_json_parse(r->constraints);
	c->result_schema = step_json_parse(r->result_schema);
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

void step_agent_view(const struct case_row *c, struct db *db, struct agent_case *ac)
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
