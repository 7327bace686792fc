/* attachments-check.c: attachment bytes (attachment_chunks) and named leases against a real
 * MariaDB (the stack's, through OFFLOAD_CONFIG). Run by tests/e2e/test_store_tx.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/util.h"
#include "store/attachments.h"
#include "store/db.h"
#include "store/lease.h"
#include "store/tx.h"
#include "../unit/test.h"

#define BIG (2 * STORE_ATTACHMENT_CHUNK + 1234)

static char case_a[37], case_b[37], att[3][37];
static unsigned char *big;

struct add {
	const char *case_id, *id;
	const unsigned char *data;
	size_t len;
};

/* What ingest does: the row and its bytes in one transaction. */
static int add_tx(struct db *db, void *arg)
{
	static const char sql[] =
		"INSERT INTO attachments (id, case_id, name, size, content_type, sha256, storage_path,"
		" message_id, inbox_id, received_at) VALUES (?, ?, 'x.bin', ?,"
		" 'application/octet-stream', REPEAT('0', 64), '', 'm@x.example', 'i@x.example', 1)";
	struct add *a = arg;
	struct db_arg args[] = { DB_STR(a->id), DB_STR(a->case_id), DB_INT(a->len) };

	if (db_query(db, sql, args, 3, NULL) < 0)
		return -1;
	return store_attachment_bytes_insert(db, a->id, a->data, a->len);
}

struct collect {
	unsigned char *buf;
	size_t len, cap;
	int calls, stop_after;
};

static int collect(void *arg, const void *data, size_t len)
{
	struct collect *c = arg;

	c->calls++;
	if (c->len + len > c->cap)
		return -1;
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	return c->stop_after && c->calls >= c->stop_after ? -1 : 0;
}

static int64_t count(struct db *db, const char *sql, const char *arg)
{
	struct db_arg a[] = { DB_STR(arg) };
	struct db_res *res = NULL;
	int64_t n = -1;

	if (db_query(db, sql, a, 1, &res) == 0 && db_res_rows(res) == 1)
		n = db_res_int(res, 0, 0);
	db_res_free(&res);
	return n;
}

static const char chunks_of[] = "SELECT COUNT(*) FROM attachment_chunks WHERE attachment_id = ?";

static void test_bytes(struct db *db)
{
	struct add adds[3] = {
		{ case_a, att[0], big, BIG },
		{ case_a, att[1], (const unsigned char *)"tiny", 4 },
		{ case_b, att[2], big, 100 },
	};
	struct collect c = { .buf = malloc(BIG + 10), .cap = BIG + 10 };
	const char *err = NULL;

	test_begin("bytes go in as 256 KiB rows with their attachment row, in one transaction");
	for (int i = 0; i < 3; i++)
		test_assert(store_tx_run(db, add_tx, &adds[i]) == 0);
	test_assert(count(db, chunks_of, att[0]) == 3);
	test_assert(count(db, chunks_of, att[1]) == 1);
	test_end();

	test_begin("a stream hands back the bytes in order, one chunk per call");
	test_assert(store_attachment_bytes_stream(db, att[0], BIG, collect, &c, &err) == 0);
	test_assert(c.len == BIG && memcmp(c.buf, big, BIG) == 0);
	test_assert(c.calls == 3);
	test_end();

	test_begin("a sink that stops ends the stream (-2)");
	c.len = 0;
	c.calls = 0;
	c.stop_after = 1;
	test_assert(store_attachment_bytes_stream(db, att[0], BIG, collect, &c, &err) == -2);
	test_assert(c.calls == 1);
	test_end();

	test_begin("missing or short bytes are an error, never a short success");
	c.len = 0;
	c.calls = 0;
	c.stop_after = 0;
	err = NULL;
	test_assert(store_attachment_bytes_stream(db, att[1], 5, collect, &c, &err) == -1);
	test_assert(err != NULL);
	err = NULL;
	test_assert(store_attachment_bytes_stream(db, "00000000-0000-4000-8000-000000000000", 1,
						  collect, &c, &err) == -1);
	test_assert(err != NULL);
	test_end();

	test_begin("erasure: a case's bytes deleted, its rows and other cases' bytes kept");
	test_assert(store_case_attachment_bytes_delete(db, case_a, &err) == 2);
	test_assert(count(db, chunks_of, att[0]) == 0 && count(db, chunks_of, att[1]) == 0);
	test_assert(count(db, chunks_of, att[2]) == 1);
	test_assert(count(db, "SELECT COUNT(*) FROM attachments WHERE case_id = ?", case_a) == 2);
	test_assert(store_case_attachment_bytes_delete(db, case_a, &err) == 2); /* again: harmless */
	test_assert(store_case_attachment_bytes_delete(db, "00000000-0000-4000-8000-000000000000",
						       &err) == 0);
	test_end();
	free(c.buf);
}

static void test_leases(struct db *db)
{
	static const char name[] = "attachments-check-lease";
	char me[STORE_NAMED_LEASE_OWNER_MAX + 1], other[STORE_NAMED_LEASE_OWNER_MAX + 1];
	char holder[STORE_NAMED_LEASE_OWNER_MAX + 1];
	int64_t now = util_now_ms(), expires = 0;

	store_named_lease_owner(me, sizeof me);
	store_named_lease_owner(other, sizeof other);
	test_begin("named lease: owners are distinct per call; taken when free, renewed by its owner");
	test_assert(strcmp(me, other) != 0);
	test_assert(store_named_lease_take(db, name, me, now, now + 60000, NULL, NULL) == 1);
	test_assert(store_named_lease_take(db, name, me, now, now + 120000, NULL, NULL) == 1);
	test_end();

	test_begin("named lease: refused to another owner while valid, naming the holder and expiry");
	test_assert(store_named_lease_take(db, name, other, now + 1000, now + 5000, holder,
					   &expires) == 0);
	test_assert_str(holder, me);
	test_assert(expires == now + 120000);
	test_end();

	test_begin("named lease: taken over once expired; the old owner's release does nothing");
	test_assert(store_named_lease_take(db, name, other, now + 130000, now + 190000, NULL,
					   NULL) == 1);
	test_assert(store_named_lease_release(db, name, me) == 0);
	test_assert(store_named_lease_take(db, name, me, now + 131000, now + 200000, holder,
					   NULL) == 0);
	test_assert_str(holder, other);
	test_end();

	test_begin("named lease: released by its owner, then free for anyone");
	test_assert(store_named_lease_release(db, name, other) == 0);
	test_assert(count(db, "SELECT COUNT(*) FROM named_leases WHERE name = ?", name) == 0);
	test_assert(store_named_lease_take(db, name, me, now, now + 1000, NULL, NULL) == 1);
	test_assert(store_named_lease_release(db, name, me) == 0);
	test_end();
}

int main(void)
{
	struct db *db = NULL;
	struct cfg *cfg;
	const char *err;

	cfg = cfg_load(NULL, &err);
	if (!cfg) {
		fprintf(stderr, "attachments-check: %s\n", err);
		return 2;
	}
	if (db_library_init() < 0 || !(db = db_open(cfg, &err))) {
		fprintf(stderr, "attachments-check: %s\n", err);
		return 2;
	}
	util_uuid_v4(case_a);
	util_uuid_v4(case_b);
	for (int i = 0; i < 3; i++)
		util_uuid_v4(att[i]);
	big = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (unsigned char)(i * 7 + i / 1000);
	test_bytes(db);
	test_leases(db);
	for (int i = 0; i < 3; i++) {
		db_query(db, "DELETE FROM attachment_chunks WHERE attachment_id = ?",
			 (struct db_arg[]){ DB_STR(att[i]) }, 1, NULL);
		db_query(db, "DELETE FROM attachments WHERE id = ?", (struct db_arg[]){ DB_STR(att[i]) },
			 1, NULL);
	}
	free(big);
	db_close(&db);
	db_library_end();
	cfg_free(&cfg);
	return test_done();
}
