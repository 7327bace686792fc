/* retention.c: the worker's purge of old finished cases ([retention] finished_days) and of
 * erasures a crash left half done (doc/operator-guide.md, "Retention and erasure"). */
#include <stdlib.h>

#include "common/cfg.h"
#include "common/log.h"
#include "store/db.h"
#include "store/erase.h"
#include "worker/worker.h"

/* An erasure begun this long ago and still queued was stopped half-way: finish it. (A
 * younger one may still be running in offloadctl; finishing it twice would be harmless.) */
#define RESUME_AFTER_MS (10 * 60 * 1000)

/* Finishes the erasure of id; 1 done, 0 failed (logged). */
static int finish(struct db *db, const char *files_dir, const char *id)
{
	struct store_erase_counts n = { 0 };
	const char *err = NULL;

	if (store_erase_finish(db, files_dir, id, &n, &err) < 0) {
		log_warn("retention: case %s: deleting stopped (it is finished later): %s", id,
			 err ? err : "unknown error");
		return 0;
	}
	return 1;
}

int worker_retention_pass(struct cfg *cfg, int64_t days, int64_t now_ms, int *purged_r)
{
	const char *files_dir = cfg_get(cfg, "files", "dir", "/var/lib/offload/files");
	store_case_id *ids = NULL;
	struct db *db = NULL;
	const char *err = NULL;
	size_t n = 0;
	int resumed = 0, rc = -1;

	*purged_r = 0;
	db = db_open(cfg, &err);
	if (!db) {
		log_error("%s", err);
		return -1;
	}
	if (store_erase_pending(db, now_ms - RESUME_AFTER_MS, STORE_ERASE_PASS_MAX, &ids, &n) < 0)
		goto db_error;
	for (size_t i = 0; i < n; i++)
		resumed += finish(db, files_dir, ids[i]);
	if (resumed)
		log_info("retention: finished %d erasures a crash or an error had stopped", resumed);
	free(ids);
	ids = NULL;
	if (days > 0) {
		int64_t before = now_ms - days * 86400000;

		/* At most STORE_ERASE_PASS_MAX cases a pass, however many are due: the next
		 * passes take the rest. */
		if (store_erase_expired(db, before, STORE_ERASE_PASS_MAX, &ids, &n) < 0)
			goto db_error;
		for (size_t i = 0; i < n; i++) {
			enum store_erase_begin r;

			if (store_erase_begin(db, ids[i], STORE_ERASE_RETENTION, before, now_ms, &r,
					      NULL) < 0)
				goto db_error;
			/* BUSY (a worker is finishing a late event), NOT_ELIGIBLE, NOT_FOUND: another
			 * pass decides; PENDING: another worker began it, this one helps. */
			if (r != STORE_ERASE_BEGUN && r != STORE_ERASE_PENDING)
				continue;
			if (finish(db, files_dir, ids[i]) && r == STORE_ERASE_BEGUN) {
				log_debug("retention: case %s erased", ids[i]);
				(*purged_r)++;
			}
		}
		if (n)
			log_info("retention: purged %d cases finished more than %lld days ago%s",
				 *purged_r, (long long)days,
				 n == STORE_ERASE_PASS_MAX ? " (more remain for the next pass)" : "");
	}
	rc = 0;
	goto out;
db_error:
	log_warn("retention: %s", db_error(db));
out:
	free(ids);
	db_close(&db);
	return rc;
}
