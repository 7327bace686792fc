/* case_step.h: the worker's reads and transitions of a case: leasing the cases of claimed
 * events, their history (thread, attachments, answers), and one statement per transition. */
#ifndef OFFLOAD_STORE_CASE_STEP_H
#define OFFLOAD_STORE_CASE_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "store/types.h"

struct db;
struct store_lease;

/* A case as the worker reads it when it leases it. */
struct store_case {
	char id[37];
	char client_id[37];            /* whose case: its sender identity (store/senders.h) */
	enum store_case_status status;
	int64_t attempt_count;         /* every outbound message sent */
	int64_t follow_ups_sent;       /* automated follow-ups sent */
	int64_t max_attempts;          /* follow-ups allowed after the first message */
	int64_t follow_up_delay_hours;
	int64_t version;               /* bumped by every change; transitions check it */
	int64_t next_action_at;        /* Unix ms, or OFFLOAD_NEVER_MS */
	char *counterparty_address;
	char *goal;                    /* JSON text */
	char *counterparty;            /* JSON text */
	char *sender_persona;          /* JSON text */
	char *constraints;             /* JSON text or NULL */
	char *result_schema;           /* JSON text or NULL */
	char *send_window;             /* the case's own sendWindow, JSON text, or NULL */
	int has_messages;              /* the thread holds at least one message */
	int has_answers;               /* an input request was answered */
	int sms;                       /* channel SMS (else EMAIL) */
};

/* How a case came out of store_case_lease. */
enum store_case_lease_state {
	STORE_CASE_MISSING, /* no such case (or one in a status the worker does not know) */
	STORE_CASE_LEASED,  /* leased to the caller; the row is filled */
	STORE_CASE_BUSY,    /* another owner holds an unexpired lease */
};

/*
 * Inside the caller's transaction: leases the n cases (distinct ids) to owner until
 * until_ms where no other owner holds an unexpired lease at now_ms, and reads those it got.
 * One UPDATE and one SELECT per STORE_IN_MAX cases; the UPDATE locks them in primary key
 * order, so that two claimers do not deadlock. states_r[i] and rows_r[i] (n each, caller's
 * arrays) answer for ids[i]; free the rows with store_case_free. 0 or -1.
 */
int store_case_lease(struct db *db, const char *owner, int64_t until_ms, int64_t now_ms,
		     const char *const *ids, size_t n, enum store_case_lease_state *states_r,
		     struct store_case *rows_r);

/* Frees what a store_case owns (not c itself). */
void store_case_free(struct store_case *c);

/* One message of a thread, oldest first. */
struct store_thread_message {
	int64_t row;           /* messages.id */
	int outbound;          /* ours (1) or the counterparty's (0) */
	char kind[17];         /* outreach, follow_up, reply, auto_reply, dsn, … */
	char *message_id;      /* without angle brackets */
	char *from_addr;
	char *to_addr;
	char *subject;
	char *body;
	int64_t created_at;
	int64_t sent_at;       /* 0 unless sent */
	int sent;              /* outbound and accepted by the server */
};

/* Metadata of an attachment of an inbound message. */
struct store_attachment_meta {
	int64_t message_row;   /* messages.id it came with (0: none) */
	char *name;
	char *content_type;
	int64_t size;
};

/* An answered input request. */
struct store_answer {
	char *question;
	char *answer;          /* "" when none was stored */
	int64_t resolved_at;
};

/* What the worker shows the agent besides the case. */
struct store_case_history {
	struct store_thread_message *messages;
	size_t n_messages;
	struct store_attachment_meta *attachments;
	size_t n_attachments;
	struct store_answer *answers;
	size_t n_answers;
};

/*
 * Reads the thread (with its attachments) when c->has_messages and the answered input
 * requests when c->has_answers; a case with neither costs no statement. 0 with *h filled
 * (free with store_case_history_free), or -1.
 */
int store_case_history_load(struct db *db, const struct store_case *c,
			    struct store_case_history *h);
/* Frees what h holds and zeroes it (safe on a zeroed h). */
void store_case_history_free(struct store_case_history *h);

/* The new state of a case, written by store_case_transition. */
struct store_transition {
	enum store_case_status status;
	int attempt_inc;            /* added to attempt_count */
	int follow_up_inc;          /* added to follow_ups_sent */
	int64_t next_action_at;
	const char *result_status;  /* NULL: unchanged */
	const char *result_json;    /* NULL: unchanged */
	const char *failure_reason; /* NULL: unchanged */
	int finished;               /* set finished_at */
	const char *question;       /* INPUT_NEEDED: a new PENDING input request with this text */
	int64_t sent_message;       /* > 0: that outbound row becomes 'sent' */
	const char *webhook;        /* case.completed | case.failed | case.input_needed | NULL */
};

/*
 * Commits t for case c (read at version c->version) and finishes the event whose lease is
 * ev (owner), together: the case row, the sent message and the event end in ONE UPDATE
 * (which also releases the case lease when it is owner's); a new input request and the
 * webhook (store/outbox.h) join it in one transaction when t asks for them. Applies only if
 * the case is still at c->version and the event lease is still ours. Deadlocks are retried
 * (store/tx.h). Returns 1 done, 0 the case or the lease changed (nothing written), -1 on a
 * database error.
 */
int store_case_transition(struct db *db, const struct store_case *c,
			  const struct store_transition *t, const struct store_lease *ev,
			  const char *owner, int64_t now_ms);

/*
 * Holds the case of a claimed event until until_ms, when its send window opens (doc/api.md
 * "Send windows"), in ONE UPDATE: the case's next_action_at becomes until_ms (so that
 * nextActionAt shows it; updated_at and version move with it) and its lease is released
 * when it is owner's; the event is given back untried (the claim's attempt not counted),
 * due at until_ms. Applies only if the case is still at c->version and the event lease is
 * still ours. Returns 1 held, 0 the case or the lease changed (nothing written), -1 on a
 * database error.
 */
int store_case_hold(struct db *db, const struct store_case *c, const struct store_lease *ev,
		    const char *owner, int64_t until_ms, int64_t now_ms);

#endif
