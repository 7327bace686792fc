/* compose.h: writing an outbound RFC 5322 message with GMime (no hand-written MIME). */
#ifndef OFFLOAD_COMPOSE_H
#define OFFLOAD_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

/* Initialise GMime once in main, before any thread starts; compose_end at exit. */
void compose_init(void);
void compose_end(void);

/* An outbound message. Every string is UTF-8 and must not contain CR or LF (callers
 * validated them; compose refuses them again). */
struct compose_msg {
	const char *from_name;   /* the persona's display name (RFC 2047-encoded as needed) */
	const char *from_addr;   /* the service's address */
	const char *reply_to;    /* the inbox replies should reach, or NULL */
	const char *to_name;     /* the counterparty's name, or NULL */
	const char *to_addr;
	const char *subject;
	const char *body;        /* text/plain, UTF-8; sent quoted-printable */
	const char *message_id;  /* without angle brackets */
	const char *in_reply_to; /* without angle brackets, or NULL for the first message */
	const char *references;  /* "<a@b> <c@d>", or NULL */
	const char *case_id;     /* written as X-Offload-Case */
	int64_t date_ms;
};

/*
 * Serialises m with CRLF line endings, ready for SMTP DATA. Returns 0 and sets *raw_r
 * (caller frees with free()) and *len_r, or -1 with *error_r (static) when a field is
 * unusable.
 */
int compose_message(const struct compose_msg *m, char **raw_r, size_t *len_r,
		    const char **error_r);

#endif
