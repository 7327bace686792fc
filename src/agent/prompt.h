/* prompt.h: the prompt files, and a case written out as text for the model with untrusted text fenced. */
#ifndef OFFLOAD_PROMPT_H
#define OFFLOAD_PROMPT_H

#include <stddef.h>

struct agent_case;
struct prompts;

/* The prompt files, by the name they have in [agent] prompts_dir. */
enum prompt_id {
	PROMPT_SYSTEM,   /* system.txt: role, persona, constraints, hard rules, the fence rule */
	PROMPT_DRAFT,    /* draft_message.txt: write the next email */
	PROMPT_EVALUATE, /* evaluate_thread.txt: judge the thread and decide */
	PROMPT_COUNT,
};

/* A prompt file is at most this big; a rendered prompt at most PROMPT_MAX_RENDERED. */
#define PROMPT_MAX_FILE (64 * 1024)
#define PROMPT_MAX_RENDERED (1024 * 1024)
/* Of the thread, each message body and the whole are cut to these many bytes. */
#define PROMPT_MAX_MESSAGE (20 * 1024)
#define PROMPT_MAX_THREAD (256 * 1024)

/*
 * Reads system.txt, draft_message.txt and evaluate_thread.txt from dir. Each may use
 * {{name}} placeholders from the list prompt_var_names(); an unknown name, a file without
 * the placeholders it must have ({{boundary}} in the system prompt, {{thread}} in the
 * others), or a missing file is an error: NULL with the reason written into err.
 */
struct prompts *prompts_load(const char *dir, char *err, size_t err_cap);
void prompts_free(struct prompts **p);

/* Values of the placeholders for one call. Every member is a NUL-terminated string the
 * caller owns; prompt_vars_case fills the case-derived ones, the caller the rest. */
struct prompt_vars {
	char *boundary;       /* the random marker of this call's data fences */
	char *persona_name;   /* who writes */
	char *persona;        /* name, role, company: one per line */
	char *tone;
	char *constraints;    /* "- a\n- b" or a sentence saying there are none */
	char *objective;      /* the goal */
	char *knowledge;      /* goal.knowledge as text or pretty JSON */
	char *counterparty;   /* name, company, address, timezone, customData */
	char *result_schema;  /* pretty JSON, or a sentence saying there is none */
	char *answers;        /* every question to the operator (fenced) and its answer */
	char *thread;         /* the messages, oldest first; the counterparty's fenced */
	char *task;           /* draft_message: what to write (outreach, follow-up n of m, reply) */
	char *subject_rule;   /* draft_message: what the subject must be */
	char *channel_rules;  /* "" for email; for an SMS case, the length and form an SMS has */
};

/* The placeholder names, NULL-terminated, in the order of struct prompt_vars. */
const char *const *prompt_var_names(void);

/* Fills every case-derived member of v, with a fresh random boundary that occurs nowhere
 * in the case's text; task and subject_rule are set to "". Free with prompt_vars_free. */
/* (channel_rules is case-derived: empty for email; for SMS, the segment limit of
 * c->sms_max_segments in characters, no subject, plain short text.) */
void prompt_vars_case(const struct agent_case *c, struct prompt_vars *v);
void prompt_vars_free(struct prompt_vars *v);

/* Renders a prompt: every {{name}} replaced by its value in one pass (values are never
 * scanned for placeholders). Newly allocated; the caller frees it. Text beyond
 * PROMPT_MAX_RENDERED is cut. */
char *prompt_render(const struct prompts *p, enum prompt_id id, const struct prompt_vars *v);

/* The fence lines of a boundary, for tests: "----- BEGIN UNTRUSTED DATA <b> -----". */
#define PROMPT_FENCE_BEGIN "----- BEGIN UNTRUSTED DATA "
#define PROMPT_FENCE_END "----- END UNTRUSTED DATA "

#endif
