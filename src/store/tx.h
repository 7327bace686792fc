/* tx.h: the one transaction helper: begin, run, commit, and retry what a retry fixes. */
#ifndef OFFLOAD_STORE_TX_H
#define OFFLOAD_STORE_TX_H

struct db;

/* How often a transaction is tried before the error is returned. */
#define STORE_TX_TRIES 5

/*
 * The body of a transaction. It runs its statements on db and returns 0 to commit, 1 to
 * roll back without an error (a refusal decided inside, such as a cap that is reached), or
 * -1 on a database error (db_errno(db) tells which). It may run more than once: it must
 * start from arg as the caller set it each time (reset any output it accumulates).
 */
typedef int store_tx_fn(struct db *db, void *arg);

/*
 * Runs fn between START TRANSACTION and COMMIT. When the server rolled the transaction
 * back for a reason that trying again fixes (store_tx_retryable), the whole transaction
 * runs again, up to STORE_TX_TRIES times, after a short randomised pause that grows with
 * each try. Returns 0 (committed), 1 (fn asked for a rollback, done), or -1 with the last
 * error in db_error()/db_errno(). A lost connection at COMMIT is not retried: the commit
 * may have happened.
 */
int store_tx_run(struct db *db, store_tx_fn *fn, void *arg);

/*
 * The same policy for a body that is ONE statement run in autocommit mode (no START
 * TRANSACTION/COMMIT round trips: the statement is its own transaction): fn runs again
 * when the statement was rolled back for a retryable reason. fn must send exactly one
 * data-changing statement (reads before it are allowed). Returns fn's 0 or 1, or -1.
 */
int store_tx_run_single(struct db *db, store_tx_fn *fn, void *arg);

/*
 * 1 when the last error of db rolled back a transaction that may simply be run again:
 * a deadlock (1213; also what a Galera node returns when certification fails or a
 * replicated write aborts a local transaction) or a lock wait timeout (1205).
 */
int store_tx_retryable(const struct db *db);

#endif
