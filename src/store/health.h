/* health.h: whether this host's database node can serve (a single server, or a Galera node
 * that is synced in the primary component). */
#ifndef OFFLOAD_STORE_HEALTH_H
#define OFFLOAD_STORE_HEALTH_H

#include <stdint.h>

struct db;

/* The node's replication state; all zero/empty on a server without Galera. */
struct store_node_state {
	int wsrep_on;             /* the server replicates with Galera */
	int ready;                /* wsrep_ready = ON: the node accepts queries */
	int64_t local_state;      /* wsrep_local_state: 4 = synced */
	int64_t cluster_size;     /* wsrep_cluster_size */
	int primary;              /* wsrep_cluster_status = Primary */
};

/*
 * Reads the node's state in one statement. Returns 1 when the node may serve (no Galera,
 * or ready, synced and in the primary component), 0 when it may not (*why_r says why in a
 * few words, static text), or -1 on a database error (*why_r holds the error, for logs).
 * state_r may be NULL.
 */
int store_node_check(struct db *db, struct store_node_state *state_r, const char **why_r);

#endif
