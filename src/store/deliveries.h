/* deliveries.h: the webhook outbox as its deliverer uses it (table webhook_deliveries):
 * leased claims (store/lease.h), what one delivery needs to be sent, its outcomes. */
#ifndef OFFLOAD_STORE_DELIVERIES_H
#define OFFLOAD_STORE_DELIVERIES_H

#include <stddef.h>
#include <stdint.h>

#include "store/lease.h"

struct db;

/* A held delivery, ready to be sent. Strings owned. */
struct store_delivery {
	char *event_id;        /* the webhook-id */
	char *url;
	char *body;            /* the exact bytes to send */
	size_t body_len;
	char *secret;          /* the client's signing secret; NULL when the client is gone */
	char *secret_previous; /* the one before a rotation, or NULL */
};

/*
 * Claims up to limit due deliveries (of case_id, or all when NULL) for owner until
 * until_ms, in one short transaction (deadlocks retried, store/tx.h). Returns 0 with
 * *rows_r (caller frees with free()) and *n_r, or -1.
 */
int store_delivery_claim(struct db *db, const char *owner, const char *case_id, int64_t now_ms,
			 int64_t until_ms, int64_t limit, struct store_lease **rows_r, size_t *n_r);

/* Reads a held delivery. 1 with *d filled (free with store_delivery_free), 0 when the lease
 * is no longer ours (redelivered or taken over), -1 on a database error. */
int store_delivery_load(struct db *db, const struct store_lease *l, const char *owner,
			struct store_delivery *d);
/* Frees the strings of d (wiping the secrets) and zeroes it. */
void store_delivery_free(struct store_delivery *d);

/* Outcomes, written only while the lease is ours: 1 written, 0 lease lost, -1 error.
 * Delivered: state 'delivered'. Failed: due again at next_ms, or 'dead' when dead. */
int store_delivery_delivered(struct db *db, const struct store_lease *l, const char *owner,
			     int64_t now_ms, long status, const char *response_body);
int store_delivery_failed(struct db *db, const struct store_lease *l, const char *owner,
			  int64_t next_ms, long status, const char *error,
			  const char *response_body, int dead);
/* Gives a held delivery back untried (the attempt not counted), due at now_ms. 1, 0, -1. */
int store_delivery_release(struct db *db, const struct store_lease *l, const char *owner,
			   int64_t now_ms);

#endif
