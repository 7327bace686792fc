/* messages_out.h: the outbound rows of table messages as the worker writes them: recorded
 * with their Message-ID before the SMTP transaction ('sending'), then 'sent' or 'failed'
 * (doc/operator-guide.md, "The worker timer": a retry after a crash finds and re-sends the
 * same message). */
#ifndef OFFLOAD_STORE_MESSAGES_OUT_H
#define OFFLOAD_STORE_MESSAGES_OUT_H

#include <stdint.h>

struct db;

/* An outbound message, as recorded or to be recorded. Strings owned when read back. */
struct store_outbound {
	int64_t row;       /* messages.id; 0 before it is recorded */
	char *message_id;  /* without angle brackets */
	char *subject;
	char *body;
	char *in_reply_to; /* NULL for the first message of a thread */
	char *references;  /* "<a> <b> …" or NULL */
	int sent;          /* the server accepted it already */
};

/*
 * The newest outbound message an earlier try of event event_id recorded. Returns 1 with *o
 * filled (free with store_outbound_free), 0 when there is none, -1 on a database error.
 */
int store_outbound_find(struct db *db, int64_t event_id, struct store_outbound *o);

/*
 * Records o (state 'sending') for case_id, linked to event_id, if the case is still at
 * version case_version, in one statement. kind: outreach, follow_up or reply; from_addr and
 * to_addr as they go into the headers. Returns 1 with o->row set, 0 when the case changed
 * or this event already recorded o->message_id (nothing written), -1 on a database error.
 * Deadlocks are retried (store/tx.h).
 */
int store_outbound_record(struct db *db, const char *case_id, int64_t case_version,
			  int64_t event_id, const char *kind, const char *from_addr,
			  const char *to_addr, struct store_outbound *o, int64_t now_ms);

/* Marks row sent at now_ms (when the transition that should have done it could not). 0/-1. */
int store_outbound_mark_sent(struct db *db, int64_t row, int64_t now_ms);

/* Keeps the server's refusal on row; failed: it was permanent (state 'failed'), else the
 * row stays 'sending' to be re-sent. 0 or -1. */
int store_outbound_note_error(struct db *db, int64_t row, const char *error, int failed);

/* Frees the strings of o and zeroes it. */
void store_outbound_free(struct store_outbound *o);

#endif
