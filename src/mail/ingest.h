/* ingest.h: inbound mail, one path for IMAP and the MTA pipe: parse, classify, match, store. */
#ifndef OFFLOAD_INGEST_H
#define OFFLOAD_INGEST_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* Default cap on a whole raw message, in bytes (50 MiB). */
#define INGEST_DEFAULT_MAX_BYTES ((size_t)50 * 1024 * 1024)
/* At most this many attachments are kept from one message; the rest are counted only. */
#define INGEST_MAX_ATTACHMENTS 100
/* body_text and quoted_text are each cut (at a character boundary) to this many bytes. */
#define INGEST_MAX_TEXT ((size_t)4 * 1024 * 1024)

/* What a message is, as stored in messages.kind. */
enum ingest_kind {
	INGEST_KIND_REPLY,      /* a person's message: the case hears about it */
	INGEST_KIND_AUTO_REPLY, /* RFC 3834 auto-reply, out-of-office, bulk: recorded only */
	INGEST_KIND_DSN,        /* RFC 3464 report with a recipient whose Action is failed */
	INGEST_KIND_DSN_OTHER,  /* RFC 3464 report without a failure (delayed, delivered…) */
	INGEST_KIND_ARF,        /* RFC 5965 feedback (complaint) report */
};

/* "reply", "auto_reply", "dsn", "dsn_other" or "arf" (static storage). */
const char *ingest_kind_name(enum ingest_kind kind);

struct ingest_attachment {
	char *name;         /* safe file name: UTF-8, no path, no control chars, ≤ 255 bytes */
	char *content_type; /* "type/subtype", lower case ASCII */
	unsigned char *data; /* the decoded bytes (NUL-terminated for convenience) */
	size_t size;        /* bytes in data */
	char sha256[65];    /* lowercase hex of data */
};

/*
 * A parsed message. Every string is valid UTF-8 (message ids are printable ASCII) and owned
 * by the struct; ingest_mail_free releases them all.
 */
struct ingest_mail {
	char *message_id;        /* without <>; synthesised when missing or unusable */
	int message_id_synthesised; /* 1 when message_id is "missing-<sha256>@offload.invalid" */
	char *in_reply_to;       /* the first In-Reply-To id without <>, or NULL */
	char **references;       /* References ids without <>, oldest first as in the header */
	size_t n_references;
	char *from_addr;         /* the first From mailbox's address ("" when it has none) */
	char *from_name;         /* its display name, or NULL */
	char **to_addrs;         /* To addresses (groups flattened) */
	size_t n_to;
	char **cc_addrs;         /* Cc addresses */
	size_t n_cc;
	char **delivered_to;     /* Delivered-To, X-Original-To and Envelope-To addresses */
	size_t n_delivered_to;
	char *to_display;        /* the To field for people: "Name <addr>, addr", or "" */
	char *subject;           /* decoded; "" when absent */
	int64_t date_ms;         /* the Date field in Unix ms, or 0 when absent or unreadable */
	enum ingest_kind kind;
	char *body_text;         /* the new text of the message, trimmed; "" when none */
	char *quoted_text;       /* the quoted history from its first line on, or NULL */
	/* Reports (dsn, dsn_other, arf): */
	char *original_message_id; /* Message-ID of the message the report is about, or NULL */
	char *diagnostic;        /* dsn: "rcpt: status S: Diagnostic-Code"; arf: its fields */
	char *report_recipient;  /* dsn: the Final-Recipient address concerned, or NULL */
	char *report_status;     /* dsn: its Status (e.g. "5.1.1"), or NULL */
	char *feedback_type;     /* arf: Feedback-Type, lower case (e.g. "abuse"), or NULL */
	struct ingest_attachment *attachments; /* document order; none for reports */
	size_t n_attachments;
	size_t n_attachments_dropped; /* attachments past INGEST_MAX_ATTACHMENTS, not kept */
};

/*
 * Parses one RFC 5322 message of len bytes (any line endings; NUL bytes allowed) into
 * *out, which it fills from zero. GMime must have been initialised (g_mime_init) by the
 * program. No database, no files: safe to call from tests and from several threads.
 * The caller bounds len (ingest_store applies ingest_settings.max_bytes first).
 * Returns 0, or -1 with *error_r (static text) when the input is not a mail message
 * (empty, no header, no From mailbox); *out then holds nothing to free, though calling
 * ingest_mail_free on it is harmless.
 */
int ingest_parse(const char *raw, size_t len, struct ingest_mail *out, const char **error_r);

/* Frees everything ingest_parse stored in m and zeroes it. NULL is allowed. */
void ingest_mail_free(struct ingest_mail *m);

struct ingest_settings {
	const char *files_dir;     /* [files] dir: raw mail and unparsed mail */
	const char *inbox_address; /* the mailbox mail arrives at (attachments.inbox_id) */
	size_t max_bytes;          /* cap on a raw message; 0 means INGEST_DEFAULT_MAX_BYTES */
	const char *authserv_id;   /* [mail] authserv_id: replies need its Authentication-Results
				    * to pass (mail/authres.h); NULL or "" for the sender rule only */
};

enum ingest_result {
	INGEST_STORED,    /* matched to a case and stored; its event (if any) is queued */
	INGEST_UNMATCHED, /* stored with no case (case_id NULL) and logged as a warning */
	INGEST_DUPLICATE, /* this Message-ID is stored already (inbound, or one of our own
			   * outbound messages come back): nothing stored */
	INGEST_MALFORMED, /* not a mail message (or too large): raw kept under unparsed/ */
	INGEST_TEMPFAIL,  /* database or disk trouble: nothing stored; deliver it again later */
};

/* "stored", "unmatched", "duplicate", "malformed" or "tempfail" (static storage). */
const char *ingest_result_name(enum ingest_result result);

/*
 * Parses, matches and stores one inbound message.
 *
 * Matching, first hit wins: In-Reply-To, then each References id newest first, against
 * the Message-IDs of outbound messages; then a plus address local+<caseId>@domain in To,
 * Cc or Delivered-To naming an existing case at its reply domain (its client's sender
 * identity's, else the domain of s->inbox_address; store/senders.h); then, for reports,
 * the Message-ID of the original message inside the report. The reply-domain rule then
 * applies to a person's message: one whose To or Cc holds a case address at another of
 * our domains (another client's reply domain, or the server's when the case's client has
 * its own) is stored unmatched (logged), so a reply to one client's address never
 * attaches to another client's case. The sender rule then applies: a person's message
 * (reply, auto-reply) stays with the case only when its From address is the case's
 * counterparty address or at the same domain; otherwise it is stored unmatched (logged),
 * because anyone who saw one of our messages can copy its ids; with s->authserv_id set it
 * also needs that MTA's topmost Authentication-Results to pass (mail/authres.h). Delivery
 * and feedback reports are exempt from the sender rule but belong to a case only at a
 * valid signed bounce address (mail/verp.h: verp_report_case); one that merely quotes our
 * Message-ID is stored unmatched.
 *
 * Storing: the raw message goes to files_dir/raw/<caseId or "unmatched">/<sha256>.eml;
 * then one transaction (store_message_insert_inbound: a deadlock or lock wait timeout is
 * retried) inserts the messages row (direction 'inbound'), one attachments
 * row per attachment of a matched message that is not an auto-reply (its bytes in the
 * same transaction, as rows of attachment_chunks; the raw copy keeps the attachments of
 * other mail) and, for a matched reply, dsn or arf, an events row:
 * REPLY_RECEIVED {"messageRowId": N},
 * BOUNCE_RECEIVED {"messageRowId": N, "diagnostic": "..."} or
 * COMPLAINT_RECEIVED {"messageRowId": N, "feedbackType": "...", "diagnostic": "..."},
 * state 'pending', available at now_ms. Auto-replies and dsn_other get no event. When the
 * transaction fails, the raw copy written for it is removed.
 *
 * Malformed input (and input over max_bytes) is written to files_dir/unparsed/<sha256>.eml.
 * A database error that will not go away by retrying (a value the schema refuses) also
 * keeps the raw message under unparsed/ and returns INGEST_MALFORMED, so that one bad
 * message cannot block a mailbox.
 *
 * case_id_r receives the case id ("" when there is none; for a duplicate, the case of the
 * stored copy). Logs one line per message. Safe to call again with the same message after
 * INGEST_TEMPFAIL.
 */
enum ingest_result ingest_store(struct db *db, const struct ingest_settings *s, const char *raw,
				size_t len, int64_t now_ms, char case_id_r[37]);

#endif
