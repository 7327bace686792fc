/* senders.h: the sender identity of a client (table client_senders): its From address,
 * reply domain and optional SMTP server, as offloadctl sets them and the worker and the
 * inbound matching read them (doc/operator-guide.md, "Sender identities"). */
#ifndef OFFLOAD_STORE_SENDERS_H
#define OFFLOAD_STORE_SENDERS_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* Sizes of the buffers below, terminating NUL included (the columns' maxima + 1). */
#define STORE_SENDER_ADDRESS_SIZE 255
#define STORE_SENDER_DOMAIN_SIZE 254

/* One client's identity. Every string is owned by the struct (store_sender_free); the
 * optional ones are NULL when not set. Never holds a password: only the path of its file. */
struct store_sender {
	char client_id[37];
	char *from_address;       /* the From of the client's mail */
	char *reply_domain;       /* lower case; NULL: replies and bounces use the server's */
	char *smtp_url;           /* smtp:// or smtps://; NULL: the server's [mail] smtp_url */
	char *smtp_user;          /* NULL: no login (only with smtp_url) */
	char *smtp_password_file; /* absolute path (only with smtp_user) */
	int64_t updated_at_ms;
};

/* Frees what s owns and zeroes it. */
void store_sender_free(struct store_sender *s);

/* Reads the identity of client_id into *out (which it fills from zero). 1 found, 0 the
 * client has none, -1 with *error_r (valid until db's next statement). */
int store_sender_get(struct db *db, const char *client_id, struct store_sender *out,
		     const char **error_r);

/* Every identity, by client id, into *rows_r (free with store_senders_free) and *n_r.
 * 0, or -1 with *error_r. */
int store_sender_list(struct db *db, struct store_sender **rows_r, size_t *n_r,
		      const char **error_r);
/* Frees n identities and the array, and clears the caller's pointer. */
void store_senders_free(struct store_sender **rows, size_t n);

/* What store_sender_set found and did. */
enum store_sender_set_result {
	STORE_SENDER_SET = 0,          /* stored (inserted or replaced) */
	STORE_SENDER_NO_CLIENT = 1,    /* no such client: nothing changed */
	STORE_SENDER_DOMAIN_TAKEN = 2, /* another client has this reply domain: nothing changed */
};

/*
 * Stores s as the identity of s->client_id (replacing the one it had), in one transaction
 * (store_tx_run) that first checks the client exists and that no other client uses
 * s->reply_domain (the unique key decides a race). s->updated_at_ms is written as given.
 * For STORE_SENDER_DOMAIN_TAKEN, other_client_r (37 bytes) receives that client's id.
 * Returns the enum value, or -1 with *error_r.
 */
int store_sender_set(struct db *db, const struct store_sender *s, char other_client_r[37],
		     const char **error_r);

/* Removes the identity of client_id: 1 removed, 0 it had none (or no such client), -1 with
 * *error_r. The client's mail uses the server's [mail] settings from the next pass on. */
int store_sender_clear(struct db *db, const char *client_id, const char **error_r);

/* 1 when client_id names a client, 0 not, -1 with *error_r. */
int store_sender_client_exists(struct db *db, const char *client_id, const char **error_r);

/*
 * The reply domain of the case case_id (any case of the id as a string: it is compared
 * exactly). 1 the case exists: its id into case_id_r and its client's reply domain into
 * domain_r ("" when the client has none, so the server's applies); 0 no such case; -1 with
 * *error_r.
 */
int store_sender_case_domain(struct db *db, const char *case_id, char case_id_r[37],
			     char domain_r[STORE_SENDER_DOMAIN_SIZE], const char **error_r);

/*
 * 1 when the case case_id has outbound mail sent with a Message-ID at a domain other than
 * domain (its client's reply domain now): mail that went out before the client had this
 * identity, so the server's addresses were given out for the case. 0 not, -1 with *error_r.
 */
int store_sender_case_mailed_elsewhere(struct db *db, const char *case_id, const char *domain,
				       const char **error_r);

/* 1 when domain (lower case) is some client's reply domain (its id into client_id_r), 0
 * not, -1 with *error_r. */
int store_sender_domain_client(struct db *db, const char *domain, char client_id_r[37],
			       const char **error_r);

#endif
