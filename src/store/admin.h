/* admin.h: the operator's queries over cases and webhook deliveries (offloadctl case list and
 * nudge, webhook list, show and redeliver). */
#ifndef OFFLOAD_STORE_ADMIN_H
#define OFFLOAD_STORE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "store/types.h"

struct db;

/* Every *error_r below is the database's text, valid until db's next statement. */

/*
 * The ids of the cases of client_id (any client when NULL) in status (any when NULL), most
 * recently updated first, at most limit of them: *ids_r (free() it) holds *n_r ids.
 * 0, or -1 with *error_r.
 */
int store_admin_case_list(struct db *db, const char *client_id,
			  const enum store_case_status *status, int64_t limit, char (**ids_r)[37],
			  size_t *n_r, const char **error_r);

/* What a nudge found and moved. */
struct store_admin_nudge {
	enum store_case_status status; /* the case's status */
	int follow_up_moved;           /* 1 when a RUNNING case's next follow-up became due */
	int64_t events_moved;          /* waiting (pending, unleased) events made due */
};

/*
 * Makes the next action of case_id due at now_ms, in one transaction (store_tx_run): the
 * next follow-up of a RUNNING case, and every pending event of the case not leased by a
 * worker, when they are due later. Returns 1 with *nudge_r filled, 0 when there is no such
 * case, or -1 with *error_r.
 */
int store_admin_case_nudge(struct db *db, const char *case_id, int64_t now_ms,
			   struct store_admin_nudge *nudge_r, const char **error_r);

/* One webhook delivery (a row of the outbox) as the operator sees it. */
struct store_admin_delivery {
	char event_id[129];
	char case_id[37];
	char client_id[37];
	char event_type[33];     /* "case.completed", ... */
	char *url;               /* owned */
	char state[13];          /* pending, delivered or dead */
	int64_t attempts;
	int64_t next_attempt_at_ms;
	int64_t last_status_code; /* -1 when there was no HTTP answer yet */
	char *last_error;        /* owned, or NULL */
	char *last_response_body; /* owned, or NULL */
	int64_t created_at_ms;
	int64_t delivered_at_ms; /* -1 when not delivered */
	char *lease_owner;       /* owned, or NULL when not leased */
	int64_t lease_until_ms;  /* -1 when not leased */
	char *body;              /* the exact envelope sent: store_admin_webhook_get only, else NULL */
};

/*
 * The deliveries of case_id (any when NULL) in state (any when NULL), newest first, at most
 * limit: *rows_r (free with store_admin_deliveries_free) holds *n_r. 0, or -1 with *error_r.
 */
int store_admin_webhook_list(struct db *db, const char *case_id, const char *state,
			     int64_t limit, struct store_admin_delivery **rows_r, size_t *n_r,
			     const char **error_r);

/* The delivery event_id with its body: 1 with *row_r filled (free with
 * store_admin_delivery_clear), 0 when there is none, -1 with *error_r. */
int store_admin_webhook_get(struct db *db, const char *event_id, struct store_admin_delivery *row_r,
			    const char **error_r);

/* Frees what one row owns and zeroes it. */
void store_admin_delivery_clear(struct store_admin_delivery *row);
/* Frees n rows and the array, and clears the caller's pointer. */
void store_admin_deliveries_free(struct store_admin_delivery **rows, size_t n);

/*
 * Makes the delivery event_id pending and due at now_ms whatever its state, clearing its
 * lease (which voids the outcome of an attempt in flight) and delivered_at; the attempt
 * count is reset to 0 unless keep_attempts. 1 done, 0 no such delivery, -1 with *error_r.
 */
int store_admin_webhook_redeliver(struct db *db, const char *event_id, int64_t now_ms,
				  int keep_attempts, const char **error_r);

#endif
