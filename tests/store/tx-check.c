/* tx-check.c: checks store_tx_run and the store's name tables against a real MariaDB
 * (the stack's, through OFFLOAD_CONFIG). Run by tests/e2e/test_store_tx.py. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "store/db.h"
#include "store/tx.h"
#include "store/types.h"
#include "../unit/test.h"

static struct cfg *cfg;

/* Two rows of the settings table the check owns; removed at the end. */
static const char row_a[] = "tx-check-a", row_b[] = "tx-check-b";

struct locker {
	struct db *db;
	const char *first, *second;
	pthread_barrier_t *both_hold_first; /* both transactions hold their first row */
	int runs;			    /* how often the body ran */
	int rc;
};

static int lock_two(struct db *db, void *arg)
{
	static const char sql[] = "UPDATE settings SET value = ? WHERE name = ?";
	struct locker *l = arg;
	struct db_arg a[] = { DB_STR("1"), DB_STR(l->first) };
	struct db_arg b[] = { DB_STR("2"), DB_STR(l->second) };

	l->runs++;
	if (db_query(db, sql, a, 2, NULL) < 0)
		return -1;
	/* Only the first run waits for the other: then each holds what the other wants. */
	if (l->runs == 1)
		pthread_barrier_wait(l->both_hold_first);
	return db_query(db, sql, b, 2, NULL) < 0 ? -1 : 0;
}

static void *run_locker(void *arg)
{
	struct locker *l = arg;

	l->rc = store_tx_run(l->db, lock_two, l);
	return NULL;
}

static int insert_runs;

static int insert_row(struct db *db, void *arg)
{
	static const char sql[] = "INSERT INTO settings (name, value) VALUES (?, 'x')";
	struct db_arg a[] = { DB_STR(arg) };

	insert_runs++;
	return db_query(db, sql, a, 1, NULL) < 0 ? -1 : 0;
}

static int refuse(struct db *db, void *arg)
{
	static const char sql[] = "UPDATE settings SET value = 'changed' WHERE name = ?";
	struct db_arg a[] = { DB_STR(arg) };

	if (db_query(db, sql, a, 1, NULL) < 0)
		return -1;
	return 1;
}

static int64_t count_value(struct db *db, const char *name, const char *value)
{
	static const char sql[] = "SELECT COUNT(*) FROM settings WHERE name = ? AND value = ?";
	struct db_arg a[] = { DB_STR(name), DB_STR(value) };
	struct db_res *res = NULL;
	int64_t n = -1;

	if (db_query(db, sql, a, 2, &res) == 0)
		n = db_res_int(res, 0, 0);
	db_res_free(&res);
	return n;
}

static void test_names(void)
{
	enum store_case_status s;
	enum store_event_type t;

	test_begin("status and event names round-trip; unknown names are refused");
	for (int i = 0; i < CASE_STATUS_COUNT; i++) {
		test_assert(store_case_status_parse(store_case_status_name(i), &s) == 0);
		test_assert((int)s == i);
	}
	for (int i = 0; i < EVENT_TYPE_COUNT; i++) {
		test_assert(store_event_type_parse(store_event_type_name(i), &t) == 0);
		test_assert((int)t == i);
	}
	test_assert_str(store_case_status_name(CASE_INPUT_NEEDED), "INPUT_NEEDED");
	test_assert_str(store_event_type_name(EVENT_FOLLOW_UP_DUE), "FOLLOW_UP_DUE");
	test_assert(store_case_status_parse("running", &s) < 0);
	test_assert(store_case_status_parse("RUNNING ", &s) < 0);
	test_assert(store_case_status_parse(NULL, &s) < 0);
	test_assert(store_event_type_parse("", &t) < 0);
	test_assert(store_case_status_final(CASE_COMPLETED) && store_case_status_final(CASE_FAILED));
	test_assert(!store_case_status_final(CASE_RUNNING) && !store_case_status_final(CASE_CREATED));
	test_end();
}

static void test_deadlock(struct db *setup, struct db *d1, struct db *d2)
{
	static const char ins[] =
		"INSERT INTO settings (name, value) VALUES (?, '0') ON DUPLICATE KEY UPDATE value = '0'";
	pthread_barrier_t barrier;
	struct locker l1 = { .db = d1, .first = row_a, .second = row_b, .both_hold_first = &barrier };
	struct locker l2 = { .db = d2, .first = row_b, .second = row_a, .both_hold_first = &barrier };
	pthread_t t1, t2;

	test_begin("a real deadlock: the victim's transaction runs again and both commit");
	test_assert(db_query(setup, ins, (struct db_arg[]){ DB_STR(row_a) }, 1, NULL) == 0);
	test_assert(db_query(setup, ins, (struct db_arg[]){ DB_STR(row_b) }, 1, NULL) == 0);
	pthread_barrier_init(&barrier, NULL, 2);
	pthread_create(&t1, NULL, run_locker, &l1);
	pthread_create(&t2, NULL, run_locker, &l2);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	pthread_barrier_destroy(&barrier);
	test_assert(l1.rc == 0 && l2.rc == 0);
	/* Exactly one of them was chosen as the victim and ran twice. */
	test_assert(l1.runs + l2.runs == 3);
	/* The one that ran last wrote both rows: one row holds 1, the other 2. */
	test_assert(count_value(setup, row_a, "1") + count_value(setup, row_a, "2") == 1);
	test_assert(count_value(setup, row_b, "1") + count_value(setup, row_b, "2") == 1);
	test_end();
}

static void test_not_retried(struct db *db)
{
	int rc;

	test_begin("a duplicate key is returned at once, not retried");
	rc = store_tx_run(db, insert_row, (void *)row_a); /* row_a exists */
	test_assert(rc == -1);
	test_assert(insert_runs == 1);
	test_assert(db_errno(db) == DB_ER_DUP_ENTRY);
	test_assert(!store_tx_retryable(db));
	test_end();

	test_begin("the body's refusal (1) rolls back what it wrote");
	rc = store_tx_run(db, refuse, (void *)row_b);
	test_assert(rc == 1);
	test_assert(count_value(db, row_b, "changed") == 0);
	test_end();
}

int main(void)
{
	static const char del[] = "DELETE FROM settings WHERE name IN (?, ?)";
	struct db *setup = NULL, *d1 = NULL, *d2 = NULL;
	const char *err;

	cfg = cfg_load(NULL, &err);
	if (!cfg) {
		fprintf(stderr, "tx-check: %s\n", err);
		return 2;
	}
	if (db_library_init() < 0 || !(setup = db_open(cfg, &err)) || !(d1 = db_open(cfg, &err)) ||
	    !(d2 = db_open(cfg, &err))) {
		fprintf(stderr, "tx-check: %s\n", err);
		return 2;
	}
	test_names();
	test_deadlock(setup, d1, d2);
	test_not_retried(setup);
	db_query(setup, del, (struct db_arg[]){ DB_STR(row_a), DB_STR(row_b) }, 2, NULL);
	db_close(&d1);
	db_close(&d2);
	db_close(&setup);
	db_library_end();
	cfg_free(&cfg);
	return test_done();
}
