/* purge.c: housekeeping deletes (idempotency_keys). */
#include <stdint.h>

#include "store/db.h"
#include "store/purge.h"

#define PURGE_BATCH 1000

int store_purge_idempotency(struct db *db, int64_t before_ms, int64_t *n_r)
{
	static const char sql[] = "DELETE FROM idempotency_keys WHERE created_at <= ? LIMIT 1000";
	struct db_arg a[] = { DB_INT(before_ms) };
	int64_t n;

	*n_r = 0;
	do {
		if (db_query(db, sql, a, 1, NULL) < 0)
			return -1;
		n = db_affected_rows(db);
		*n_r += n;
	} while (n == PURGE_BATCH && *n_r < INT32_MAX - PURGE_BATCH);
	return 0;
}
