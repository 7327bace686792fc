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

/* Reads [mail] smtp_url smtp_user smtp_password(_file) timeout_s ca_file bounce_address
 * (default bounces@<[mail] domain>) and the [database] keys (the bounce-tag key is read
 * from the database at the first message). NULL with *error_r on a bad configuration.
 * cfg must outlive the handle. One handle per thread; smtp_free() releases it. */
struct smtp *smtp_new(struct cfg *cfg, const char **error_r);
void smtp_free(struct smtp **s);

/*
 * Where one message goes, when it is not the server's [mail] settings: a client's own
 * sender identity (doc/operator-guide.md, "Sender identities"). Strings are borrowed.
 */
struct smtp_route {
	const char *url;           /* smtp:// or smtps://; NULL: [mail] smtp_url/user/password */
	const char *user;          /* with url: the login, or NULL for none */
	const char *password;      /* with user */
	const char *bounce_domain; /* NULL: the domain of [mail] bounce_address */
};

/*
 * Sends raw (CRLF lines) to rcpt through route (NULL: the server's [mail] settings). The
 * envelope sender is the signed bounce address bounce_address-local+TAG@domain
 * (src/mail/verp.h), its domain route->bounce_domain when set, TAG made from raw's
 * Message-ID and X-Offload-Case as compose_message() writes them; from is used only for a
 * message that has neither. With a user set, TLS is required (mail/tls.h): a server
 * without STARTTLS gets no password and the result is SMTP_TEMPORARY.
 * The handle keeps its connections open between messages, one per distinct (server, user)
 * (up to SMTP_MAX_CONNECTIONS), so a worker thread opens one connection per server in a
 * pass, not one per message. Returns the outcome; reply_r (cap bytes) receives the
 * server's last reply line or the error, in one line, for failureReason and logs.
 */
enum smtp_result smtp_send(struct smtp *s, const struct smtp_route *route, const char *from,
			   const char *rcpt, const char *raw, size_t len, char *reply_r, size_t cap);

/* Distinct (server, user) connections one handle keeps open at once. */
#define SMTP_MAX_CONNECTIONS 16

/* How many connections the handle has opened so far (for the pass summary). */
long smtp_connections(const struct smtp *s);

#endif
