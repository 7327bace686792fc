/* manual.c: the agent without an LLM: messages from templates, every reply goes to a human. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent-private.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/subject.h"

#define SUBJECT_MAX 120
#define QUOTE_MAX 4000

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
	size_t n;

	/* The first line with text in it: an objective may well start with a line break. */
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	n = strcspn(s, "\r\n");
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return xstrdup("Our request");
	return xstrndup(s, util_utf8_cut(s, n, max));
}

static char *reply_subject(const char *first)
{
	return mail_reply_subject(first && *first ? first : "our request");
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

/* The short SMS templates: head + objective + tail, the objective's first line cut (on a
 * UTF-8 boundary, with "...") until the whole fits [sms] max_segments. */
static char *sms_text(const struct agent_case *c, const char *head, const char *objective,
		      const char *tail)
{
	char why[160];
	char *line = first_line(objective && *objective ? objective : "our request", 1000);
	size_t n = strlen(line);
	char *text = xasprintf("%s%s%s", head, line, tail);

	while (!agent_sms_fits(c, text, why, sizeof why) && n > 0) {
		n = n > 8 ? n - 8 : 0;
		while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80)
			n--;
		free(text);
		text = xasprintf("%s%.*s...%s", head, (int)n, line, tail);
	}
	free(line);
	return text;
}

/* An SMS case: no subject and a short text (the worker checks that it fits). */
static int manual_sms_draft(const struct agent_case *c, enum agent_draft_kind kind,
			    struct agent_draft *out)
{
	const char *objective = get_str(c->goal, "objective");
	const char *name = get_str(c->counterparty, "name");
	const char *me = get_str(c->persona, "name");
	const char *company = get_str(c->persona, "company");
	char *head, *tail;

	if (!me || !*me)
		me = "us";
	out->subject = xstrdup("");
	switch (kind) {
	case AGENT_DRAFT_OUTREACH:
		head = xasprintf("Hi %s, this is %s%s%s about: ", name ? name : "", me,
				 company && *company ? " of " : "", company && *company ? company : "");
		tail = xstrdup(". Could you reply to this text?");
		break;
	case AGENT_DRAFT_FOLLOW_UP:
		head = xasprintf("Hi %s, a reminder (%d of %d) from %s about: ", name ? name : "",
				 c->follow_up_n, c->max_attempts, me);
		tail = xstrdup(". A short reply is all it takes.");
		break;
	default:
		out->body = xasprintf("Thank you for your reply. %s", me);
		return 0;
	}
	out->body = sms_text(c, head, objective, tail);
	free(head);
	free(tail);
	return 0;
}

int manual_draft(const struct agent_case *c, enum agent_draft_kind kind, struct agent_draft *out)
{
	const char *objective = get_str(c->goal, "objective");
	const char *name = get_str(c->counterparty, "name");
	json_object *knowledge = NULL;
	struct buf body;
	char *line;

	memset(out, 0, sizeof *out);
	if (c->sms)
		return manual_sms_draft(c, kind, out);
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

int manual_evaluate(const struct agent_case *c, struct agent_decision *out)
{
	const char *from = NULL;
	char *latest = agent_latest_inbound(c, &from, QUOTE_MAX);
	struct buf q;

	memset(out, 0, sizeof *out);
	/* doc/api.md, "Lifecycle": every real reply pauses the case; the operator decides with
	 * a decision. */
	buf_init(&q, QUOTE_MAX + 1024);
	buf_printf(&q, "%s replied. Decide how to continue (POST /cases/%s/input with a decision: "
		   "GOAL_ACHIEVED with a result, REPLY with the text to send, REJECTED with a "
		   "reason, or WAIT).\n\n", from ? from : "The counterparty", c->case_id);
	if (latest)
		buf_puts(&q, latest);
	free(latest);
	out->kind = AGENT_NEEDS_INPUT;
	out->question = q.data;
	return 0;
}
