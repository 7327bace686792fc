/* prompt.c: prompt files with {{placeholders}}, and the case as the model reads it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/prompt.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "sms/segments.h"

#define NAME_MAX_LEN 32

struct prompts {
	char *text[PROMPT_COUNT];
};

static const char *const file_names[PROMPT_COUNT] = {
	"system.txt",
	"draft_message.txt",
	"evaluate_thread.txt",
};

static const char *const var_names[] = {
	"boundary", "persona_name", "persona", "tone", "constraints", "objective", "knowledge",
	"counterparty", "result_schema", "answers", "thread", "task", "subject_rule",
	"channel_rules", NULL,
};

static const size_t var_offsets[] = {
	offsetof(struct prompt_vars, boundary),      offsetof(struct prompt_vars, persona_name),
	offsetof(struct prompt_vars, persona),       offsetof(struct prompt_vars, tone),
	offsetof(struct prompt_vars, constraints),   offsetof(struct prompt_vars, objective),
	offsetof(struct prompt_vars, knowledge),     offsetof(struct prompt_vars, counterparty),
	offsetof(struct prompt_vars, result_schema), offsetof(struct prompt_vars, answers),
	offsetof(struct prompt_vars, thread),        offsetof(struct prompt_vars, task),
	offsetof(struct prompt_vars, subject_rule),  offsetof(struct prompt_vars, channel_rules),
};

/* What each file must contain, so that an edited prompt cannot silently drop it. */
static const char *const must_have[PROMPT_COUNT][3] = {
	{ "boundary", NULL },
	{ "thread", "task", NULL },
	{ "thread", "result_schema", NULL },
};

const char *const *prompt_var_names(void)
{
	return var_names;
}

static int var_index(const char *name, size_t len)
{
	for (int i = 0; var_names[i]; i++)
		if (strlen(var_names[i]) == len && memcmp(var_names[i], name, len) == 0)
			return i;
	return -1;
}

static char **var_slot(struct prompt_vars *v, int i)
{
	return (char **)((char *)v + var_offsets[i]);
}

static const char *var_value(const struct prompt_vars *v, int i)
{
	const char *s = *(char *const *)((const char *)v + var_offsets[i]);

	return s ? s : "";
}

/* Checks the placeholders of a template: 0, or -1 with the reason in err. */
static int check_template(const char *name, const char *text, enum prompt_id id, char *err,
			  size_t err_cap)
{
	int seen[sizeof var_names / sizeof var_names[0]] = { 0 };
	const char *p = text;

	while ((p = strstr(p, "{{")) != NULL) {
		const char *end = strstr(p + 2, "}}");
		int i;

		if (!end || end - (p + 2) > NAME_MAX_LEN) {
			snprintf(err, err_cap, "%s: \"{{\" without a closing \"}}\"", name);
			return -1;
		}
		i = var_index(p + 2, (size_t)(end - (p + 2)));
		if (i < 0) {
			snprintf(err, err_cap, "%s: unknown placeholder {{%.*s}}", name,
				 (int)(end - (p + 2)), p + 2);
			return -1;
		}
		seen[i] = 1;
		p = end + 2;
	}
	for (int k = 0; must_have[id][k]; k++)
		if (!seen[var_index(must_have[id][k], strlen(must_have[id][k]))]) {
			snprintf(err, err_cap, "%s: must contain {{%s}}", name, must_have[id][k]);
			return -1;
		}
	return 0;
}

static char *read_file(const char *path, char *err, size_t err_cap)
{
	FILE *f = fopen(path, "r");
	char *data;
	size_t len;

	if (!f) {
		snprintf(err, err_cap, "%s: %s", path, strerror(errno));
		return NULL;
	}
	data = xmalloc(PROMPT_MAX_FILE + 1);
	len = fread(data, 1, PROMPT_MAX_FILE + 1, f);
	if (ferror(f) || len > PROMPT_MAX_FILE) {
		snprintf(err, err_cap, "%s: %s", path,
			 ferror(f) ? "read error" : "larger than 64 KiB");
		fclose(f);
		free(data);
		return NULL;
	}
	fclose(f);
	data[len] = '\0';
	if (strlen(data) != len) {
		snprintf(err, err_cap, "%s: contains a NUL byte", path);
		free(data);
		return NULL;
	}
	return data;
}

struct prompts *prompts_load(const char *dir, char *err, size_t err_cap)
{
	struct prompts *p = xcalloc(1, sizeof *p);

	for (int i = 0; i < PROMPT_COUNT; i++) {
		char *path = xasprintf("%s/%s", dir, file_names[i]);

		p->text[i] = read_file(path, err, err_cap);
		if (p->text[i] && check_template(path, p->text[i], (enum prompt_id)i, err, err_cap) < 0) {
			free(p->text[i]);
			p->text[i] = NULL;
		}
		free(path);
		if (!p->text[i]) {
			prompts_free(&p);
			return NULL;
		}
	}
	return p;
}

void prompts_free(struct prompts **p)
{
	if (!*p)
		return;
	for (int i = 0; i < PROMPT_COUNT; i++)
		free((*p)->text[i]);
	free(*p);
	*p = NULL;
}

char *prompt_render(const struct prompts *p, enum prompt_id id, const struct prompt_vars *v)
{
	const char *t = p->text[id], *s;
	struct buf b;

	buf_init(&b, PROMPT_MAX_RENDERED);
	buf_puts(&b, "");
	while ((s = strstr(t, "{{")) != NULL) {
		const char *end = strstr(s + 2, "}}");
		int i = end ? var_index(s + 2, (size_t)(end - (s + 2))) : -1;

		if (i < 0) { /* checked at load; kept as text all the same */
			buf_append(&b, t, (size_t)(s + 2 - t));
			t = s + 2;
			continue;
		}
		buf_append(&b, t, (size_t)(s - t));
		if (buf_puts(&b, var_value(v, i)) < 0)
			buf_puts(&b, "\n[... left out: the prompt is too long]\n");
		t = end + 2;
	}
	buf_puts(&b, t);
	return b.data;
}

/* ------------------------------------------------------------------ case text */

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static const char *pretty(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Appends s, cut to max bytes on a UTF-8 boundary with a note. */
static void append_capped(struct buf *b, const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len <= max) {
		buf_puts(b, s);
		return;
	}
	buf_append(b, s, util_utf8_cut(s, len, max));
	buf_puts(b, "\n[... the rest is left out: too long]");
}

/* "Attachments: a.pdf (application/pdf, 48213 bytes)" from a thread message's optional
 * attachments array [{name, type, size}]; the names come from the sender, so this goes
 * inside the fence. */
static void attachment_line(struct buf *b, json_object *atts)
{
	size_t n = json_object_is_type(atts, json_type_array) ? json_object_array_length(atts) : 0;

	for (size_t i = 0; i < n && i < 50; i++) {
		json_object *a = json_object_array_get_idx(atts, i), *size;
		const char *name = get_str(a, "name"), *type = get_str(a, "type");

		buf_printf(b, "%s%s (%s", i ? ", " : "Attachments: ", name ? name : "unnamed",
			   type ? type : "unknown type");
		if (json_object_object_get_ex(a, "size", &size))
			buf_printf(b, ", %lld bytes", (long long)json_object_get_int64(size));
		buf_puts(b, ")");
	}
	if (n)
		buf_puts(b, "\n");
}

static void fence(struct buf *b, const char *boundary, const char *from, const char *subject,
		  json_object *attachments, const char *body)
{
	buf_printf(b, "%s%s -----\n", PROMPT_FENCE_BEGIN, boundary);
	if (from)
		buf_printf(b, "From: %s\n", from);
	if (subject)
		buf_printf(b, "Subject: %s\n", subject);
	attachment_line(b, attachments);
	if (from || subject || attachments)
		buf_puts(b, "\n");
	append_capped(b, body ? body : "", PROMPT_MAX_MESSAGE);
	buf_printf(b, "\n%s%s -----\n", PROMPT_FENCE_END, boundary);
}

static int mentions(json_object *o, const char *key, const char *needle)
{
	const char *s = get_str(o, key);

	return s && strstr(s, needle);
}

/* 1 when the boundary occurs in any text that will be fenced or printed near a fence. */
static int boundary_used(const struct agent_case *c, const char *boundary)
{
	size_t n = c->thread ? json_object_array_length(c->thread) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(c->thread, i);

		json_object *atts;

		if (mentions(m, "from", boundary) || mentions(m, "subject", boundary) ||
		    mentions(m, "body", boundary))
			return 1;
		if (json_object_object_get_ex(m, "attachments", &atts) &&
		    strstr(json_object_to_json_string(atts), boundary))
			return 1;
	}
	n = c->human_answers ? json_object_array_length(c->human_answers) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(c->human_answers, i);

		if (mentions(a, "question", boundary) || mentions(a, "answer", boundary))
			return 1;
	}
	return 0;
}

static const char *inbound_kind(const char *kind)
{
	if (!kind || strcmp(kind, "reply") == 0)
		return "a reply from the counterparty";
	if (strcmp(kind, "auto_reply") == 0)
		return "an automatic reply (out-of-office or similar), not written by a person";
	return "a delivery report from a mail server";
}

static const char *outbound_kind(const char *kind)
{
	if (kind && strcmp(kind, "outreach") == 0)
		return "your first message";
	if (kind && strcmp(kind, "follow_up") == 0)
		return "your follow-up";
	return "your reply";
}

static char *thread_text(const struct agent_case *c, const char *boundary)
{
	size_t n = c->thread ? json_object_array_length(c->thread) : 0, first = 0, total = 0;
	char **parts = xcalloc(n ? n : 1, sizeof *parts);
	struct buf out;

	/* Newest first within the budget: the latest reply always makes it. */
	for (size_t k = n; k-- > 0;) {
		json_object *m = json_object_array_get_idx(c->thread, k), *at;
		const char *dir = get_str(m, "direction");
		int inbound = dir && strcmp(dir, "inbound") == 0;
		char when[32] = "an unknown time";
		struct buf b;

		if (json_object_object_get_ex(m, "at", &at))
			util_iso8601_ms(json_object_get_int64(at), when);
		buf_init(&b, PROMPT_MAX_MESSAGE + 64 * 1024);
		if (inbound) {
			json_object *atts = NULL;

			json_object_object_get_ex(m, "attachments", &atts);
			buf_printf(&b, "Message %zu of %zu: %s, received %s.\n", k + 1, n,
				   inbound_kind(get_str(m, "kind")), when);
			fence(&b, boundary, get_str(m, "from"), get_str(m, "subject"), atts,
			      get_str(m, "body"));
		} else {
			/* An SMS has no subject: the thread leaves it out. */
			buf_printf(&b, "Message %zu of %zu: %s, sent %s.\n%s%s%s\n", k + 1, n,
				   outbound_kind(get_str(m, "kind")), when,
				   get_str(m, "subject") ? "Subject: " : "",
				   get_str(m, "subject") ? get_str(m, "subject") : "",
				   get_str(m, "subject") ? "\n" : "");
			append_capped(&b, get_str(m, "body") ? get_str(m, "body") : "", PROMPT_MAX_MESSAGE);
			buf_puts(&b, "\n");
		}
		if (total + b.len > PROMPT_MAX_THREAD && k + 1 < n) {
			buf_free(&b);
			first = k + 1;
			break;
		}
		total += b.len;
		parts[k] = b.data;
	}
	buf_init(&out, PROMPT_MAX_THREAD + 64 * 1024);
	buf_puts(&out, "");
	if (n == 0)
		buf_puts(&out, "(No messages yet: nothing has been sent.)\n");
	if (first > 0)
		buf_printf(&out, "(%zu earlier messages are left out: the thread is long.)\n\n", first);
	for (size_t k = first; k < n; k++) {
		buf_printf(&out, "%s%s", k > first ? "\n" : "", parts[k] ? parts[k] : "");
		free(parts[k]);
	}
	for (size_t k = 0; k < first; k++)
		free(parts[k]);
	free(parts);
	return out.data;
}

static char *answers_text(const struct agent_case *c, const char *boundary)
{
	size_t n = c->human_answers ? json_object_array_length(c->human_answers) : 0;
	struct buf b;

	buf_init(&b, PROMPT_MAX_THREAD);
	buf_puts(&b, "");
	if (n == 0) {
		buf_puts(&b, "(None: you have not asked your operator anything yet.)\n");
		return b.data;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(c->human_answers, i);
		const char *ans = get_str(a, "answer");

		buf_printf(&b, "%sQuestion %zu (it may quote the counterparty, so it is fenced as data):\n",
			   i ? "\n" : "", i + 1);
		fence(&b, boundary, NULL, NULL, NULL, get_str(a, "question"));
		buf_printf(&b, "Your operator's answer %zu (trusted: facts and instructions from your "
			   "operator):\n", i + 1);
		append_capped(&b, ans && *ans ? ans : "(empty)", PROMPT_MAX_MESSAGE);
		buf_puts(&b, "\n");
	}
	return b.data;
}

static char *persona_text(json_object *persona)
{
	static const char *const keys[][2] = {
		{ "name", "Name" }, { "role", "Role" }, { "company", "Company" },
	};
	struct buf b;

	buf_init(&b, 64 * 1024);
	buf_puts(&b, "");
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (get_str(persona, keys[i][0]) && *get_str(persona, keys[i][0]))
			buf_printf(&b, "%s%s: %s", b.len ? "\n" : "", keys[i][1],
				   get_str(persona, keys[i][0]));
	return b.data;
}

static char *counterparty_text(json_object *cp)
{
	static const char *const keys[][2] = {
		{ "name", "Name" }, { "company", "Company" }, { "address", "Email address" },
		{ "timezone", "Time zone" },
	};
	json_object *custom;
	struct buf b;

	buf_init(&b, 256 * 1024);
	buf_puts(&b, "");
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (get_str(cp, keys[i][0]) && *get_str(cp, keys[i][0]))
			buf_printf(&b, "%s%s: %s", b.len ? "\n" : "", keys[i][1], get_str(cp, keys[i][0]));
	if (cp && json_object_object_get_ex(cp, "customData", &custom) &&
	    json_object_is_type(custom, json_type_object) && json_object_object_length(custom) > 0)
		buf_printf(&b, "\nOther details: %s", pretty(custom));
	return b.data;
}

static char *constraints_text(json_object *constraints)
{
	size_t n = json_object_is_type(constraints, json_type_array)
			   ? json_object_array_length(constraints) : 0;
	struct buf b;

	buf_init(&b, 256 * 1024);
	buf_puts(&b, "");
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(constraints, i);

		if (json_object_is_type(s, json_type_string))
			buf_printf(&b, "%s- %s", b.len ? "\n" : "", json_object_get_string(s));
	}
	if (b.len == 0)
		buf_puts(&b, "(None beyond the hard rules.)");
	return b.data;
}

static char *knowledge_text(json_object *goal)
{
	json_object *k;

	if (!goal || !json_object_object_get_ex(goal, "knowledge", &k) || !k)
		return xstrdup("(Nothing beyond the goal itself.)");
	if (json_object_is_type(k, json_type_string))
		return xstrdup(json_object_get_string(k));
	return xstrdup(pretty(k));
}

/* What an SMS case's texts must be (doc/api.md, SMS): the model counts characters, not
 * segments, so the limit is given in characters of each alphabet. */
static char *channel_rules(const struct agent_case *c)
{
	int n = c->sms_max_segments > 0 ? c->sms_max_segments : 1;
	int gsm = n == 1 ? SMS_GSM7_SINGLE : SMS_GSM7_MULTI * n;
	int ucs = n == 1 ? SMS_UCS2_SINGLE : SMS_UCS2_MULTI * n;

	if (!c->sms)
		return xstrdup("");
	return xasprintf("This case is carried by SMS, not email: every message you write is "
			 "one text message to the counterparty's phone. It has no subject (the "
			 "\"subject\" field is not sent: put two or three words naming the topic "
			 "there), no greeting line or signature block beyond your name, and it "
			 "must be short: at most %d characters of plain text, counting each of "
			 "\u20ac [ ] { } \\ ^ ~ | as two, or at most %d characters if it uses "
			 "any character outside the GSM 7-bit alphabet (emoji, curly quotes, most "
			 "accented letters), so avoid those. A longer text cannot be sent.", gsm,
			 ucs);
}

void prompt_vars_case(const struct agent_case *c, struct prompt_vars *v)
{
	unsigned char rnd[16];
	char hex[33];
	const char *name = get_str(c->persona, "name"), *tone = get_str(c->persona, "tone");
	const char *objective = get_str(c->goal, "objective");

	memset(v, 0, sizeof *v);
	/* 128 random bits cannot be guessed by a sender; the check is for the impossible case. */
	do {
		util_random_bytes(rnd, sizeof rnd);
		util_hex(rnd, sizeof rnd, hex);
	} while (boundary_used(c, hex));
	v->boundary = xstrdup(hex);
	v->persona_name = xstrdup(name && *name ? name : "the sender");
	v->persona = persona_text(c->persona);
	v->tone = xstrdup(tone && *tone ? tone : "professional, friendly and concise");
	v->constraints = constraints_text(c->constraints);
	v->objective = xstrdup(objective ? objective : "");
	v->knowledge = knowledge_text(c->goal);
	v->counterparty = counterparty_text(c->counterparty);
	v->result_schema = c->result_schema
				   ? xstrdup(pretty(c->result_schema))
				   : xstrdup("(None given: when the goal is achieved, put a short summary "
					     "of what was achieved in result.summary.)");
	v->answers = answers_text(c, hex);
	v->thread = thread_text(c, hex);
	v->task = xstrdup("");
	v->subject_rule = xstrdup("");
	v->channel_rules = channel_rules(c);
}

void prompt_vars_free(struct prompt_vars *v)
{
	for (int i = 0; var_names[i]; i++) {
		char **slot = var_slot(v, i);

		free(*slot);
		*slot = NULL;
	}
}
