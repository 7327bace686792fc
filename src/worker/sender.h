/* sender.h: the sender of a case's mail in a worker thread: its client's identity
 * (store/senders.h) when it has one, else the server's [mail] settings. */
#ifndef OFFLOAD_WORKER_SENDER_H
#define OFFLOAD_WORKER_SENDER_H

#include "mail/smtp.h"

struct db;
struct worker_settings;

/* How one client's mail is sent. Strings are owned by the cache entry. */
struct worker_sender {
	char client_id[37];
	int own;                 /* 1: the client has an identity; 0: the server's settings */
	const char *from_address; /* the From address */
	const char *inbox_address; /* replies go to its local part +<caseId> at its domain */
	const char *msgid_domain;  /* right-hand side of Message-IDs */
	const struct smtp_route *route; /* NULL: the server's [mail] SMTP settings */
	const char *error;       /* non-NULL: the identity cannot be used now (its password
				  * file); sending waits, the text says why (no secret in it) */
};

struct worker_senders;

/* A cache for one thread and one pass (identities changed by offloadctl apply from the
 * next pass on). */
struct worker_senders *worker_senders_new(void);
void worker_senders_free(struct worker_senders **c);

/*
 * The sender of client_id's mail, read from the database at the first use in this cache
 * (its SMTP password read from its file then). 0 with *out (valid until the cache is
 * freed), or -1 on a database error (db_error(db)).
 */
int worker_sender_get(struct worker_senders *c, struct db *db, const struct worker_settings *s,
		      const char *client_id, const struct worker_sender **out);

#endif
