/* smtp.h: sending one message over SMTP with libcurl and classifying the outcome. */
#ifndef OFFLOAD_SMTP_H
#define OFFLOAD_SMTP_H

#include <stddef.h>

struct cfg;
struct smtp;

enum smtp_result {
	SMTP_SENT = 0,       /* the server accepted the message (250 after DATA) */
	SMTP_TEMPORARY = 1,  /* 4xx, connection refused, timeout: retry later, not an attempt */
	SMTP_PERMANENT = 2,  /* 5xx: the recipient or the message is refused for good */
};

/* Reads [mail] smtp_url smtp_user smtp_password(_file) timeout_s. NULL with *error_r on a
 * bad configuration. One handle per thread; smtp_free() releases it. */
struct smtp *smtp_new(struct cfg *cfg, const char **error_r);
void smtp_free(struct smtp **s);

/*
 * Sends raw (CRLF lines) from envelope sender from to rcpt. Returns the outcome; reply_r
 * (cap bytes) receives the server's last reply line or curl's error, for failureReason
 * and logs.
 */
enum smtp_result smtp_send(struct smtp *s, const char *from, const char *rcpt, const char *raw,
			   size_t len, char *reply_r, size_t cap);

#endif
