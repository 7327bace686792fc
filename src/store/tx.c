/* tx.c: transactions retried the same way everywhere (deadlocks, lock waits, Galera). */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "store/db.h"
#include "store/tx.h"

int store_tx_retryable(const struct db *db)
{
	switch (db_errno(db)) {
	case DB_ER_LOCK_DEADLOCK:
	case DB_ER_LOCK_WAIT_TIMEOUT:
		return 1;
	default:
		return 0;
	}
}

/* Spreads the retries of transactions that collided, so that they do not collide again:
 * about 1, 2, 4, 8 ms, each between half and the whole. */
static void pause_before_retry(int attempt)
{
	static __thread unsigned seed;
	long max_us = 1000L << attempt;
	struct timespec ts;

	if (!seed)
		seed = (unsigned)(uintptr_t)&seed ^ (unsigned)time(NULL);
	max_us = max_us / 2 + rand_r(&seed) % (max_us / 2 + 1);
	ts.tv_sec = 0;
	ts.tv_nsec = max_us * 1000;
	nanosleep(&ts, NULL);
}

/* The one retry policy; begin_commit 0 runs fn as one autocommitted statement. */
static int run(struct db *db, store_tx_fn *fn, void *arg, int begin_commit)
{
	for (int attempt = 0; attempt < STORE_TX_TRIES; attempt++) {
		int rc;

		if (attempt > 0)
			pause_before_retry(attempt - 1);
		if (begin_commit && db_begin(db) < 0)
			return -1;
		rc = fn(db, arg);
		if (!begin_commit && rc >= 0)
			return rc;
		if (begin_commit && rc == 0 && db_commit(db) == 0)
			return 0;
		db_rollback(db);
		if (rc == 1)
			return 1;
		if (!store_tx_retryable(db))
			return -1;
		log_debug("transaction rolled back (%u), trying again", db_errno(db));
	}
	return -1;
}

int store_tx_run(struct db *db, store_tx_fn *fn, void *arg)
{
	return run(db, fn, arg, 1);
}

int store_tx_run_single(struct db *db, store_tx_fn *fn, void *arg)
{
	return run(db, fn, arg, 0);
}
