/* manual.c: the agent without an LLM: messages from templates, every reply goes to a human. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "common/cfg.h"
#include "common/util.h"
#include "common/xalloc.h"

#define SUBJECT_MAX 120
#define QUOTE_MAX 4000

struct agent {
	int kind; /* only the manual agent exists so far */
};

struct agent *agent_new(struct cfg *cfg, const char **error_r)
{
	const char *kind = cfg_get(cfg, "agent", "kind", "manual");
	struct agent *a;

	if (strcmp(kind, "manual") != 0) {
		*error_r = "[agent] kind: only \"manual\" is available in this build";
		return NULL;
	}
	a = xcalloc(1, sizeof *a);
	return a;
}

void agent_free(struct agent **a)
{
	free(*a);
	*a = NULL;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The first line of s, cut to max bytes on a UTF-8 boundary. */
static char *first_line(const char *s, size_t max)
{
	size_t n = strcspn(s, "\r\n");

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return xstrndup(s, n);
}

static char *reply_subject(const char *first)
{
	if (!first || !*first)
		return xstrdup("Re: our request");
	if (strncasecmp(first, "Re:", 3) == 0)
		return xstrdup(first);
	return xasprintf("Re: %s", first);
}

static void signature(struct buf *b, json_object *persona)
{
	const char *name = get_str(persona, "name");
	const char *role = get_str(persona, "role");
	const char *company = get_str(persona, "company");

	buf_printf(b, "\n\nBest regards,\n%s", name ? name : "");
	if (role && company)
		buf_printf(b, "\n%s, %s", role, company);
	else if (role || company)
		buf_printf(b, "\n%s", role ? role : company);
	buf_puts(b, "\n");
}

int agent_draft(struct agent *a, const struct agent_case *c, enum agent_draft_kind kind,
		struct agent_draft *out, const char **error_r)
{
	const char *objective = get_str(c->goal, "objective");
	const char *name = get_str(c->counterparty, "name");
	json_object *knowledge = NULL;
	struct buf body;
	char *line;

	(void)a;
	(void)error_r;
	memset(out, 0, sizeof *out);
	buf_init(&body, 1024 * 1024);
	json_object_object_get_ex(c->goal, "knowledge", &knowledge);
	buf_printf(&body, "Hello %s,\n\n", name ? name : "");
	switch (kind) {
	case AGENT_DRAFT_OUTREACH:
		line = first_line(objective ? objective : "Our request", SUBJECT_MAX);
		out->subject = line;
		buf_printf(&body, "I am writing about the following request:\n\n%s",
			   objective ? objective : "");
		if (knowledge && json_object_is_type(knowledge, json_type_string))
			buf_printf(&body, "\n\n%s", json_object_get_string(knowledge));
		buf_puts(&body, "\n\nCould you reply to this email when you can?");
		break;
	case AGENT_DRAFT_FOLLOW_UP:
		out->subject = reply_subject(c->first_subject);
		buf_printf(&body, "I am following up on my earlier message (reminder %d of %d):\n\n%s"
			   "\n\nA short reply to this email is all it takes.",
			   c->follow_up_n, c->max_attempts, objective ? objective : "");
		break;
	case AGENT_DRAFT_REPLY:
		/* The manual agent never decides to reply by itself: the operator's decision
		 * carries the text, and the worker sends it without drafting. */
		out->subject = reply_subject(c->first_subject);
		buf_puts(&body, "Thank you for your reply.");
		break;
	}
	signature(&body, c->persona);
	out->body = body.data;
	return 0;
}

void agent_draft_free(struct agent_draft *d)
{
	free(d->subject);
	free(d->body);
	memset(d, 0, sizeof *d);
}

int agent_evaluate(struct agent *a, const struct agent_case *c, struct agent_decision *out,
		   const char **error_r)
{
	size_t n = c->thread ? json_object_array_length(c->thread) : 0;
	const char *latest = NULL, *from = NULL;
	struct buf q;

	(void)a;
	(void)error_r;
	memset(out, 0, sizeof *out);
	for (size_t i = n; i-- > 0;) {
		json_object *m = json_object_array_get_idx(c->thread, i);
		const char *dir = get_str(m, "direction");

		if (dir && strcmp(dir, "inbound") == 0) {
			latest = get_str(m, "body");
			from = get_str(m, "from");
			break;
		}
	}
	/* SPEC §6: every real reply pauses the case; the operator decides with a decision. */
	buf_init(&q, QUOTE_MAX + 1024);
	buf_printf(&q, "%s replied. Decide how to continue (POST /cases/%s/input with a decision: "
		   "GOAL_ACHIEVED with a result, REPLY with the text to send, REJECTED with a "
		   "reason, or WAIT).\n\n", from ? from : "The counterparty", c->case_id);
	if (latest) {
		size_t len = strlen(latest);

		if (len > QUOTE_MAX) {
			len = QUOTE_MAX;
			while (len > 0 && ((unsigned char)latest[len] & 0xc0) == 0x80)
				len--;
		}
		buf_append(&q, latest, len);
		if (len < strlen(latest))
			buf_puts(&q, "\n[...]");
	}
	out->kind = AGENT_NEEDS_INPUT;
	out->question = q.data;
	return 0;
}

void agent_decision_free(struct agent_decision *d)
{
	free(d->reply);
	free(d->question);
	free(d->result_json);
	free(d->reason);
	memset(d, 0, sizeof *d);
}
