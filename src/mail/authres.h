/* authres.h: replies authenticated by the receiving MTA: the topmost Authentication-Results
 * field (RFC 8601) written by the operator's authserv-id. */
#ifndef OFFLOAD_AUTHRES_H
#define OFFLOAD_AUTHRES_H

#include <stddef.h>

#include "mail/ingest.h"

/* What the trusted field says about a message. */
enum authres_verdict {
	AUTHRES_NONE = 0,      /* no field with that authserv-id: nothing vouches for the mail */
	AUTHRES_FAIL = 1,      /* the field exists but neither DMARC nor aligned DKIM passed */
	AUTHRES_DMARC_PASS = 2, /* dmarc=pass */
	AUTHRES_DKIM_PASS = 3, /* dkim=pass with header.d (or header.i's domain) = the domain */
};

/* "none", "fail", "dmarc=pass" or "dkim=pass" (static storage). */
const char *authres_verdict_name(enum authres_verdict v);

/*
 * Reads the header block of raw (len bytes) and judges the FIRST (topmost) Authentication-
 * Results field whose authserv-id equals authserv_id (case-insensitive); fields further
 * down, with the same id or another, are ignored (anyone can write them). domain is the
 * counterparty's domain that a DKIM pass must be for. Never allocates beyond the header.
 */
enum authres_verdict authres_check(const char *raw, size_t len, const char *authserv_id,
				   const char *domain);

/*
 * Judges one field value (after "Authentication-Results:", unfolded or not). Returns 1
 * with *verdict_r when its authserv-id is authserv_id, 0 when it is another, -1 when the
 * value cannot be parsed (then it is treated as absent).
 */
int authres_judge_value(const char *value, const char *authserv_id, const char *domain,
			enum authres_verdict *verdict_r);

/*
 * The hook of ingest_store for a person's message (reply, auto-reply) that matched case_id
 * and passed the sender rule. With authserv_id NULL or empty: 1 (the sender rule alone
 * decides). Otherwise 1 only when the topmost Authentication-Results field of authserv_id
 * in raw says dmarc=pass, or dkim=pass for the domain of m's From address (which the
 * sender rule has made the counterparty's); else 0, logged as a warning (the message is
 * then kept unmatched).
 */
int authres_reply_trusted(const struct ingest_mail *m, const char *raw, size_t len,
			  const char *authserv_id, const char *case_id);

#endif
