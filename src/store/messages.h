/* messages.h: inbound mail in the messages table: which case a message belongs to, and one
 * transaction storing it with its attachments and the event it causes. */
#ifndef OFFLOAD_STORE_MESSAGES_H
#define OFFLOAD_STORE_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "store/types.h"

struct db;

/* Room for a case's counterparty address (cases.counterparty_address is 254) and its NUL. */
#define STORE_ADDRESS_SIZE 255

/*
 * Looks message_id up among the stored messages, preferring an inbound copy: an inbound
 * message stored before, or one of our own outbound messages come back. Returns 1 when
 * found, with its case in case_id_r ("" when it has none) and *outbound_r set when the row
 * is outbound; 0 when there is no such message; -1 on a database error with *error_r (text
 * in db, valid until its next statement).
 */
int store_message_find(struct db *db, const char *message_id, char case_id_r[37],
		       int *outbound_r, const char **error_r);

/*
 * The case of our outbound message message_id: 1 with case_id_r set, 0 when message_id is
 * none of our outbound messages with a case, -1 on a database error (*error_r as above).
 */
int store_message_outbound_case(struct db *db, const char *message_id, char case_id_r[37],
				const char **error_r);

/*
 * Whether the case case_id (a canonical lower-case UUID, as a plus address carries it)
 * exists: 1 with its id as stored in case_id_r, 0 when not, -1 on a database error.
 */
int store_message_case_exists(struct db *db, const char *case_id, char case_id_r[37],
			      const char **error_r);

/*
 * The counterparty address of case case_id: 1 with the address in addr_r, 0 when there is
 * no such case, -1 on a database error (*error_r as above).
 */
int store_message_case_counterparty(struct db *db, const char *case_id,
				    char addr_r[STORE_ADDRESS_SIZE], const char **error_r);

/* One inbound message as stored in the messages table (direction 'inbound'). Strings are
 * borrowed; NULL stores SQL NULL where the column allows it. */
struct store_inbound_message {
	const char *case_id;        /* the matched case, or NULL: kept unmatched */
	const char *kind;           /* messages.kind: reply, auto_reply, dsn, dsn_other, arf */
	const char *message_id;     /* without <> */
	const char *in_reply_to;    /* the first In-Reply-To id, or NULL */
	const char *references_ids; /* the References ids separated by spaces, or NULL */
	const char *from_addr;      /* "Name <addr>" or "addr" */
	const char *to_addr;        /* the To field for people */
	const char *subject;
	const char *body_text;
	const char *quoted_text;    /* or NULL */
	const char *raw_path;       /* the raw copy, relative to the files directory */
	const char *inbox_id;       /* the mailbox it arrived at (attachments.inbox_id) */
	int64_t received_at_ms;     /* created_at of the row, received_at of its attachments */
};

/* One attachment of a matched message: its row, and its bytes (attachment_chunks) written in
 * the same transaction. */
struct store_inbound_attachment {
	const char *id;           /* attachments.id, a UUID */
	const char *name;         /* the safe file name */
	int64_t size;             /* bytes */
	const char *content_type; /* "type/subtype" */
	const char *sha256;       /* lowercase hex */
	const char *storage_path; /* "" (the bytes are data); a file of [files] dir before sql/009 */
	const void *data;         /* the size bytes */
};

/* The event a matched message causes. Its payload is {"messageRowId": N} plus, for a
 * complaint, "feedbackType" and, for a bounce or a complaint, "diagnostic". */
struct store_inbound_event {
	enum store_event_type type; /* REPLY_RECEIVED, BOUNCE_RECEIVED or COMPLAINT_RECEIVED */
	const char *feedback_type;  /* COMPLAINT_RECEIVED: the Feedback-Type */
	const char *diagnostic;     /* BOUNCE_RECEIVED and COMPLAINT_RECEIVED */
};

enum store_message_result {
	STORE_MESSAGE_STORED,    /* committed */
	STORE_MESSAGE_DUPLICATE, /* an inbound row with this Message-ID was stored meanwhile */
	STORE_MESSAGE_REFUSED,   /* a value the schema refuses: trying again will not help */
	STORE_MESSAGE_ERROR,     /* database trouble that may go away: try again later */
};

/*
 * Stores msg, its n_atts attachment rows (message_row_id = the new row) and, when event is
 * not NULL, a pending event available at received_at_ms, in one transaction (store_tx_run:
 * deadlocks are retried). On STORE_MESSAGE_STORED *row_id_r is the messages row id; on any
 * other result nothing is stored and *error_r is the database's text (valid until db's next
 * statement).
 */
enum store_message_result store_message_insert_inbound(struct db *db,
						       const struct store_inbound_message *msg,
						       const struct store_inbound_attachment *atts,
						       size_t n_atts,
						       const struct store_inbound_event *event,
						       int64_t *row_id_r, const char **error_r);

#endif
