/* case_create.c: POST /cases in batches: caps, case rows, CASE_CREATED events, one transaction. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/plans.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/case_create.h"
#include "store/db.h"
#include "store/idempotency.h"
#include "store/tx.h"
#include "store/types.h"

/*
 * The rows travel as one JSON array in one parameter and JSON_TABLE turns it back into
 * rows: one prepared statement for any batch size (a VALUES list would need one statement
 * per size, 17 parameters a case, more than db.c binds). Every string is a JSON string
 * and comes back byte for byte (JSON_TABLE unescapes it); LONGTEXT columns so that nothing
 * is cut before the table's own types and CHECKs judge it.
 */
static const char insert_cases_sql[] =
	"INSERT INTO cases (id, client_id, client_reference_id, status, channel, created_at,"
	" updated_at, next_action_at, attempt_count, max_attempts, follow_up_delay_hours,"
	" counterparty_address, goal, counterparty, sender_persona, constraints_json,"
	" result_schema, metadata, client_webhook_url)"
	" SELECT j.id, j.client_id, j.ref, ?, j.channel, j.now, j.now, ?, 0, j.max_attempts,"
	" j.delay, j.address, j.goal, j.counterparty, j.persona, j.constraints_json,"
	" j.result_schema, j.metadata, j.webhook"
	" FROM JSON_TABLE(?, '$[*]' COLUMNS ("
	" id LONGTEXT PATH '$.id' ERROR ON EMPTY,"
	" client_id LONGTEXT PATH '$.client_id' ERROR ON EMPTY,"
	" ref LONGTEXT PATH '$.ref',"
	" channel LONGTEXT PATH '$.channel' ERROR ON EMPTY,"
	" now BIGINT PATH '$.now' ERROR ON EMPTY ERROR ON ERROR,"
	" max_attempts INT PATH '$.max_attempts' ERROR ON EMPTY ERROR ON ERROR,"
	" delay INT PATH '$.delay' ERROR ON EMPTY ERROR ON ERROR,"
	" address LONGTEXT PATH '$.address' ERROR ON EMPTY,"
	" goal LONGTEXT PATH '$.goal' ERROR ON EMPTY,"
	" counterparty LONGTEXT PATH '$.counterparty' ERROR ON EMPTY,"
	" persona LONGTEXT PATH '$.persona' ERROR ON EMPTY,"
	" constraints_json LONGTEXT PATH '$.constraints',"
	" result_schema LONGTEXT PATH '$.result_schema',"
	" metadata LONGTEXT PATH '$.metadata',"
	" webhook LONGTEXT PATH '$.webhook')) AS j";

static const char insert_events_sql[] =
	"INSERT INTO events (case_id, type, state, available_at, created_at)"
	" SELECT j.id, ?, 'pending', j.now, j.now"
	" FROM JSON_TABLE(?, '$[*]' COLUMNS ("
	" id LONGTEXT PATH '$.id' ERROR ON EMPTY,"
	" now BIGINT PATH '$.now' ERROR ON EMPTY ERROR ON ERROR)) AS j";

/* One client's usage in one UTC month (SPEC §7), counted once per batch. */
struct usage {
	const char *client_id;
	int64_t start, end;   /* the month */
	int64_t created;      /* cases created in the month, before this batch */
	int64_t finished;     /* billable cases finished in the month */
	int64_t admitted;     /* cases of this batch admitted so far */
};

struct batch {
	struct store_case_create *const *items;
	size_t n;
	struct usage *usage;  /* one per distinct (client, month) with a cap */
	size_t n_usage;
	struct buf cases;     /* the JSON arrays of the admitted cases */
	struct buf events;
};

/* Appends s as a JSON string (RFC 8259 §7): quotes, backslashes and controls escaped. */
static int put_json_str(struct buf *b, const char *s)
{
	const char *run = s;
	char esc[8];

	if (buf_append(b, "\"", 1) < 0)
		return -1;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (buf_append(b, run, (size_t)(s - run)) < 0)
			return -1;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc[2] = '\0';
		} else {
			snprintf(esc, sizeof esc, "\\u%04x", c);
		}
		if (buf_puts(b, esc) < 0)
			return -1;
		run = s + 1;
	}
	if (buf_append(b, run, (size_t)(s - run)) < 0)
		return -1;
	return buf_append(b, "\"", 1);
}

/* Appends ,"name":value with value a JSON string, or null for NULL. */
static int put_field(struct buf *b, const char *name, const char *value)
{
	if (buf_printf(b, ",\"%s\":", name) < 0)
		return -1;
	return value ? put_json_str(b, value) : buf_puts(b, "null");
}

static int put_case(struct buf *b, const struct store_case_new *c)
{
	if (buf_puts(b, b->len > 1 ? ",{\"id\":" : "{\"id\":") < 0 || put_json_str(b, c->id) < 0 ||
	    put_field(b, "client_id", c->client_id) < 0 ||
	    put_field(b, "ref", c->client_reference_id) < 0 ||
	    put_field(b, "channel", c->channel) < 0 ||
	    buf_printf(b, ",\"now\":%" PRId64 ",\"max_attempts\":%d,\"delay\":%d", c->now_ms,
		       c->max_attempts, c->follow_up_delay_hours) < 0 ||
	    put_field(b, "address", c->counterparty_address) < 0 ||
	    put_field(b, "goal", c->goal_json) < 0 ||
	    put_field(b, "counterparty", c->counterparty_json) < 0 ||
	    put_field(b, "persona", c->persona_json) < 0 ||
	    put_field(b, "constraints", c->constraints_json) < 0 ||
	    put_field(b, "result_schema", c->result_schema_json) < 0 ||
	    put_field(b, "metadata", c->metadata_json) < 0 ||
	    put_field(b, "webhook", c->client_webhook_url) < 0 || buf_puts(b, "}") < 0)
		return -1;
	return 0;
}

static int put_event(struct buf *b, const struct store_case_new *c)
{
	if (buf_puts(b, b->len > 1 ? ",{\"id\":" : "{\"id\":") < 0 || put_json_str(b, c->id) < 0 ||
	    buf_printf(b, ",\"now\":%" PRId64 "}", c->now_ms) < 0)
		return -1;
	return 0;
}

static size_t len0(const char *s)
{
	return s ? strlen(s) : 0;
}

size_t store_case_new_size(const struct store_case_new *c)
{
	return 64 + len0(c->client_id) + len0(c->client_reference_id) + len0(c->channel) +
	       len0(c->counterparty_address) + len0(c->goal_json) + len0(c->counterparty_json) +
	       len0(c->persona_json) + len0(c->constraints_json) + len0(c->result_schema_json) +
	       len0(c->metadata_json) + len0(c->client_webhook_url);
}

static int usage_cmp(const void *a, const void *b)
{
	const struct usage *x = a, *y = b;
	int c = strcmp(x->client_id, y->client_id);

	if (c)
		return c;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The usage entry of a client and month, or NULL. */
static struct usage *usage_find(struct batch *b, const char *client_id, int64_t start)
{
	for (size_t i = 0; i < b->n_usage; i++)
		if (b->usage[i].start == start && strcmp(b->usage[i].client_id, client_id) == 0)
			return &b->usage[i];
	return NULL;
}

/*
 * Locks each capped client's row, in id order, and counts its usage in each month the batch
 * needs. The row lock orders concurrent creations of one client (in this process or any
 * other): the counts read after it include every case committed before it was granted.
 */
static int count_usage(struct db *db, struct batch *b)
{
	static const char lock_sql[] = "SELECT id FROM clients WHERE id = ? FOR UPDATE";
	/* Billable: COMPLETED, and FAILED unless the mail system refused or reported it. */
	static const char count_sql[] =
		"SELECT (SELECT COUNT(*) FROM cases WHERE client_id = ? AND created_at >= ?"
		" AND created_at < ?),"
		" (SELECT COUNT(*) FROM cases WHERE client_id = ? AND finished_at >= ?"
		" AND finished_at < ? AND (status = ? OR (status = ? AND (result_status IS NULL"
		" OR result_status NOT IN ('BOUNCED','REJECTED','COMPLAINED')))))";
	struct db_res *res = NULL;

	b->n_usage = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct store_case_create *it = b->items[i];
		int64_t start, end;

		if (it->cap < 0)
			continue;
		plans_month_bounds(it->row.now_ms, &start, &end);
		if (usage_find(b, it->row.client_id, start))
			continue;
		b->usage[b->n_usage++] = (struct usage){ .client_id = it->row.client_id,
							 .start = start, .end = end };
	}
	qsort(b->usage, b->n_usage, sizeof *b->usage, usage_cmp);
	for (size_t i = 0; i < b->n_usage; i++) {
		struct usage *u = &b->usage[i];
		struct db_arg lock[] = { DB_STR(u->client_id) };
		struct db_arg count[] = {
			DB_STR(u->client_id), DB_INT(u->start), DB_INT(u->end),
			DB_STR(u->client_id), DB_INT(u->start), DB_INT(u->end),
			DB_STR(store_case_status_name(CASE_COMPLETED)),
			DB_STR(store_case_status_name(CASE_FAILED)),
		};

		if ((i == 0 || strcmp(u->client_id, b->usage[i - 1].client_id) != 0) &&
		    db_query(db, lock_sql, lock, 1, NULL) < 0)
			return -1;
		if (db_query(db, count_sql, count, sizeof count / sizeof count[0], &res) < 0)
			return -1;
		u->created = db_res_int(res, 0, 0);
		u->finished = db_res_int(res, 0, 1);
		u->admitted = 0;
		db_res_free(&res);
	}
	return 0;
}

/* The transaction (store_tx_fn): decides every item from scratch, then writes. */
static int create_batch(struct db *db, void *arg)
{
	struct batch *b = arg;
	size_t admitted = 0;

	buf_reset(&b->cases);
	buf_reset(&b->events);
	if (count_usage(db, b) < 0)
		return -1;
	buf_puts(&b->cases, "[");
	buf_puts(&b->events, "[");
	for (size_t i = 0; i < b->n; i++) {
		struct store_case_create *it = b->items[i];
		struct usage *u = NULL;

		if (it->cap >= 0) {
			int64_t start, end;

			plans_month_bounds(it->row.now_ms, &start, &end);
			u = usage_find(b, it->row.client_id, start);
			if (u->created + u->admitted >= it->cap || u->finished >= it->cap) {
				it->outcome = STORE_CASE_CREATE_LIMITED;
				continue;
			}
			u->admitted++;
		}
		it->outcome = STORE_CASE_CREATE_CREATED;
		if (put_case(&b->cases, &it->row) < 0 || put_event(&b->events, &it->row) < 0) {
			log_error("case batch: the rows do not fit in the statement");
			return -1;
		}
		admitted++;
	}
	if (buf_puts(&b->cases, "]") < 0 || buf_puts(&b->events, "]") < 0)
		return -1;
	if (admitted > 0) {
		struct db_arg cargs[] = {
			DB_STR(store_case_status_name(CASE_CREATED)), DB_INT(OFFLOAD_NEVER_MS),
			DB_STRN(b->cases.data, b->cases.len),
		};
		struct db_arg eargs[] = {
			DB_STR(store_event_type_name(EVENT_CASE_CREATED)),
			DB_STRN(b->events.data, b->events.len),
		};

		if (db_query(db, insert_cases_sql, cargs, 3, NULL) < 0)
			return -1;
		if ((size_t)db_affected_rows(db) != admitted) {
			log_error("case batch: %" PRId64 " cases inserted of %zu",
				  db_affected_rows(db), admitted);
			return -1;
		}
		if (db_query(db, insert_events_sql, eargs, 2, NULL) < 0)
			return -1;
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct store_case_create *it = b->items[i];

		if (!it->idem_key)
			continue;
		if (it->outcome == STORE_CASE_CREATE_CREATED &&
		    store_idem_done(db, it->row.client_id, it->idem_key, 201, it->idem_body) < 0)
			return -1;
		if (it->outcome == STORE_CASE_CREATE_LIMITED &&
		    store_idem_abandon(db, it->row.client_id, it->idem_key) < 0)
			return -1;
	}
	return 0;
}

/* One transaction for items[0..n-1]: 0 committed (every outcome set), or -1. */
static int run_batch(struct db *db, struct store_case_create *const *items, size_t n)
{
	struct batch b = { .items = items, .n = n };
	int rc;

	b.usage = xcalloc(n, sizeof *b.usage);
	/* The biggest statement the server takes is its max_allowed_packet (16 MiB by default). */
	buf_init(&b.cases, 64 * 1024 * 1024);
	buf_init(&b.events, 64 * 1024 * 1024);
	rc = store_tx_run(db, create_batch, &b);
	buf_free(&b.cases);
	buf_free(&b.events);
	free(b.usage);
	return rc == 0 ? 0 : -1;
}

/* The item could not be created: say so and forget its Idempotency-Key reservation. */
static void fail_item(struct db *db, struct store_case_create *it)
{
	it->outcome = STORE_CASE_CREATE_FAILED;
	if (it->idem_key && store_idem_abandon(db, it->row.client_id, it->idem_key) < 0)
		log_warn("forgetting Idempotency-Key: %s", db_error(db));
}

size_t store_case_create_batch(struct db *db, struct store_case_create *const *items, size_t n)
{
	size_t failed = 0;

	for (size_t i = 0; i < n; i++)
		items[i]->outcome = STORE_CASE_CREATE_PENDING;
	if (run_batch(db, items, n) == 0)
		return 0;
	log_error("creating %zu case%s: %s", n, n == 1 ? "" : "s", db_error(db));
	if (n == 1 || db_error_is_connection(db)) {
		/* Nothing to single out, or the server is gone: nothing else would get through. */
		for (size_t i = 0; i < n; i++)
			fail_item(db, items[i]);
		return n;
	}
	/* One bad row fails the whole statement: try each case alone, so it fails alone. */
	for (size_t i = 0; i < n; i++) {
		if (run_batch(db, &items[i], 1) == 0)
			continue;
		log_error("creating case %s alone: %s", items[i]->row.id, db_error(db));
		fail_item(db, items[i]);
		failed++;
	}
	return failed;
}
