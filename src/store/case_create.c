/* case_create.c: POST /cases in batches: caps, case rows, CASE_CREATED events, one transaction. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/plans.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/case_create.h"
#include "store/db.h"
#include "store/idempotency.h"
#include "store/sms.h"
#include "store/tx.h"
#include "store/types.h"

/*
 * The admitted cases go in multi-row INSERTs (see insert_cases). db.c caches statements by
 * the address of their text, so the text for each row count is built once and kept for the
 * life of the process. (Sending the rows as one JSON parameter through JSON_TABLE measured 30
 * to 80 % more server CPU per case than VALUES lists.)
 */
#define CASE_PARAMS 19
#define EVENT_PARAMS 4

#define CASE_INSERT \
	"INSERT INTO cases (id, client_id, client_reference_id, status, channel, created_at," \
	" updated_at, next_action_at, attempt_count, max_attempts, follow_up_delay_hours," \
	" counterparty_address, goal, counterparty, sender_persona, constraints_json," \
	" result_schema, metadata, client_webhook_url, send_window) VALUES "
#define CASE_ROW "(?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define EVENT_INSERT "INSERT INTO events (case_id, type, state, available_at, created_at) VALUES "
#define EVENT_ROW "(?, ?, 'pending', ?, ?)"

static char *insert_cases_sql[STORE_CASE_BATCH_MAX + 1];
static char *insert_events_sql[STORE_CASE_BATCH_MAX + 1];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

/* "HEAD ROW,ROW,…" with n rows, allocated once (never freed: the statement cache keys). */
static char *multi_row(const char *head, const char *row, size_t n)
{
	size_t hl = strlen(head), rl = strlen(row);
	char *sql = xmalloc(hl + n * (rl + 1) + 1), *p = sql;

	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		memcpy(p, row, rl);
		p += rl;
	}
	*p = '\0';
	return sql;
}

static void build_sql(void)
{
	for (size_t n = 1; n <= STORE_CASE_BATCH_MAX; n *= 2) {
		insert_cases_sql[n] = multi_row(CASE_INSERT, CASE_ROW, n);
		insert_events_sql[n] = multi_row(EVENT_INSERT, EVENT_ROW, n);
	}
}

/* One client's usage in one UTC month (doc/api.md, "Limits"), counted once per batch. */
struct usage {
	const char *client_id;
	int64_t start, end;   /* the month */
	int64_t created;      /* cases created in the month, before this batch (deleted ones too) */
	int64_t finished;     /* billable cases finished in the month (deleted ones too) */
	int64_t admitted;     /* cases of this batch admitted so far */
};

struct batch {
	struct store_case_create *const *items;
	size_t n;
	struct usage *usage;  /* one per distinct (client, month) with a cap */
	size_t n_usage;
	const struct store_case_new **admitted; /* the cases to insert, in order */
};

/* Binds row's columns for CASE_ROW at args. */
static void case_args(const struct store_case_new *c, struct db_arg *args)
{
	struct db_arg row[CASE_PARAMS] = {
		DB_STR(c->id), DB_STR(c->client_id), DB_STR(c->client_reference_id),
		DB_STR(store_case_status_name(CASE_CREATED)), DB_STR(c->channel), DB_INT(c->now_ms),
		DB_INT(c->now_ms), DB_INT(OFFLOAD_NEVER_MS), DB_INT(c->max_attempts),
		DB_INT(c->follow_up_delay_hours), DB_STR(c->counterparty_address),
		DB_STR(c->goal_json), DB_STR(c->counterparty_json), DB_STR(c->persona_json),
		DB_STR(c->constraints_json), DB_STR(c->result_schema_json), DB_STR(c->metadata_json),
		DB_STR(c->client_webhook_url), DB_STR(c->send_window_json),
	};

	memcpy(args, row, sizeof row);
}

/* The largest power of two not above n (n >= 1). */
static size_t chunk_of(size_t n)
{
	size_t k = 1;

	while (k * 2 <= n)
		k *= 2;
	return k;
}

/* Inserts cases[0..n-1] (n <= STORE_CASE_BATCH_MAX) and their CASE_CREATED events. Rows go
 * in chunks of powers of two (13 = 8 + 4 + 1), so that a connection prepares at most
 * 2 x 7 distinct statements however the batch sizes vary, at most 7 round trips per table. */
static int insert_cases(struct db *db, const struct store_case_new *const *cases, size_t n)
{
	struct db_arg *args = xcalloc(n * CASE_PARAMS, sizeof *args);
	size_t k;
	int rc = -1;

	pthread_once(&sql_once, build_sql);
	for (size_t i = 0; i < n; i += k) {
		k = chunk_of(n - i);
		for (size_t j = 0; j < k; j++)
			case_args(cases[i + j], &args[j * CASE_PARAMS]);
		if (db_query(db, insert_cases_sql[k], args, k * CASE_PARAMS, NULL) < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i += k) {
		k = chunk_of(n - i);
		for (size_t j = 0; j < k; j++) {
			const struct store_case_new *c = cases[i + j];

			args[j * EVENT_PARAMS] = DB_STR(c->id);
			args[j * EVENT_PARAMS + 1] = DB_STR(store_event_type_name(EVENT_CASE_CREATED));
			args[j * EVENT_PARAMS + 2] = DB_INT(c->now_ms);
			args[j * EVENT_PARAMS + 3] = DB_INT(c->now_ms);
		}
		if (db_query(db, insert_events_sql[k], args, k * EVENT_PARAMS, NULL) < 0)
			goto out;
	}
	rc = 0;
out:
	free(args);
	return rc;
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
	/* Billable: COMPLETED, and FAILED unless the mail system refused or reported it. The
	 * cases deleted since (store/erase.h) still count: their usage is kept as numbers. */
	static const char count_sql[] =
		"SELECT (SELECT COUNT(*) FROM cases WHERE client_id = ? AND created_at >= ?"
		" AND created_at < ?),"
		" (SELECT COUNT(*) FROM cases WHERE client_id = ? AND finished_at >= ?"
		" AND finished_at < ? AND (status = ? OR (status = ? AND (result_status IS NULL"
		" OR result_status NOT IN ('BOUNCED','REJECTED','COMPLAINED'))))),"
		" (SELECT cases_created FROM usage_deleted WHERE client_id = ? AND month = ?),"
		" (SELECT cases_finished_billable FROM usage_deleted WHERE client_id = ?"
		" AND month = ?)";
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
			DB_STR(u->client_id), DB_INT(plans_month_key(u->start)),
			DB_STR(u->client_id), DB_INT(plans_month_key(u->start)),
		};

		if ((i == 0 || strcmp(u->client_id, b->usage[i - 1].client_id) != 0) &&
		    db_query(db, lock_sql, lock, 1, NULL) < 0)
			return -1;
		if (db_query(db, count_sql, count, sizeof count / sizeof count[0], &res) < 0)
			return -1;
		u->created = db_res_int(res, 0, 0) + db_res_int(res, 0, 2);
		u->finished = db_res_int(res, 0, 1) + db_res_int(res, 0, 3);
		u->admitted = 0;
		db_res_free(&res);
	}
	return 0;
}

static int is_sms(const struct store_case_create *it)
{
	return strcmp(it->row.channel, "SMS") == 0;
}

static int number_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The SMS rules (doc/api.md, SMS): locks the row of every number the batch's SMS cases go
 * to, in strcmp order, then refuses the cases to a number that opted out or has an open SMS
 * case (create_batch refuses a second case to one number within the batch). Sets the
 * outcome of the refused items only.
 */
static int check_sms(struct db *db, struct batch *b)
{
	const char **numbers = NULL;
	size_t n = 0;
	int rc = -1;

	for (size_t i = 0; i < b->n; i++)
		if (is_sms(b->items[i]))
			n++;
	if (n == 0)
		return 0;
	numbers = xcalloc(n, sizeof *numbers);
	n = 0;
	for (size_t i = 0; i < b->n; i++)
		if (is_sms(b->items[i]))
			numbers[n++] = b->items[i]->row.counterparty_address;
	qsort(numbers, n, sizeof *numbers, number_cmp);
	for (size_t i = 0; i < n; i++)
		if ((i == 0 || strcmp(numbers[i], numbers[i - 1]) != 0) &&
		    store_sms_lock_number(db, numbers[i], b->items[0]->row.now_ms) < 0)
			goto out;
	for (size_t i = 0; i < b->n; i++) {
		struct store_case_create *it = b->items[i];
		const char *number = it->row.counterparty_address;
		int r;

		if (!is_sms(it))
			continue;
		r = store_sms_opted_out(db, number);
		if (r < 0)
			goto out;
		if (r) {
			it->outcome = STORE_CASE_CREATE_SMS_OPTED_OUT;
			continue;
		}
		r = store_sms_open_case(db, number, NULL, &it->busy_since);
		if (r < 0)
			goto out;
		if (r)
			it->outcome = STORE_CASE_CREATE_SMS_BUSY;
	}
	rc = 0;
out:
	free(numbers);
	return rc;
}

/* Whether an item was refused, so that its Idempotency-Key is forgotten. */
static int refused(enum store_case_create_outcome o)
{
	return o == STORE_CASE_CREATE_LIMITED || o == STORE_CASE_CREATE_SMS_BUSY ||
	       o == STORE_CASE_CREATE_SMS_OPTED_OUT;
}

/* The transaction (store_tx_fn): decides every item from scratch, then writes. */
static int create_batch(struct db *db, void *arg)
{
	struct batch *b = arg;
	size_t admitted = 0;

	for (size_t i = 0; i < b->n; i++)
		b->items[i]->outcome = STORE_CASE_CREATE_PENDING;
	if (check_sms(db, b) < 0 || count_usage(db, b) < 0)
		return -1;
	for (size_t i = 0; i < b->n; i++) {
		struct store_case_create *it = b->items[i];

		if (it->outcome != STORE_CASE_CREATE_PENDING)
			continue;
		/* An SMS case admitted earlier in this batch to the same number goes first. */
		for (size_t j = 0; is_sms(it) && j < i; j++) {
			const struct store_case_create *e = b->items[j];

			if (is_sms(e) && e->outcome == STORE_CASE_CREATE_CREATED &&
			    strcmp(e->row.counterparty_address, it->row.counterparty_address) == 0) {
				it->outcome = STORE_CASE_CREATE_SMS_BUSY;
				it->busy_since = e->row.now_ms;
				break;
			}
		}
		if (it->outcome != STORE_CASE_CREATE_PENDING)
			continue;
		if (it->cap >= 0) {
			int64_t start, end;
			struct usage *u;

			plans_month_bounds(it->row.now_ms, &start, &end);
			u = usage_find(b, it->row.client_id, start);
			if (u->created + u->admitted >= it->cap || u->finished >= it->cap) {
				it->outcome = STORE_CASE_CREATE_LIMITED;
				continue;
			}
			u->admitted++;
		}
		it->outcome = STORE_CASE_CREATE_CREATED;
		b->admitted[admitted++] = &it->row;
	}
	if (insert_cases(db, b->admitted, admitted) < 0)
		return -1;
	for (size_t i = 0; i < b->n; i++) {
		const struct store_case_create *it = b->items[i];

		if (!it->idem_key)
			continue;
		if (it->outcome == STORE_CASE_CREATE_CREATED &&
		    store_idem_done(db, it->row.client_id, it->idem_key, 201, it->idem_body,
				    it->row.id) < 0)
			return -1;
		if (refused(it->outcome) &&
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
	b.admitted = xcalloc(n, sizeof *b.admitted);
	rc = store_tx_run(db, create_batch, &b);
	free(b.admitted);
	free(b.usage);
	return rc == 0 ? 0 : -1;
}

/* The item could not be created: say so and forget its Idempotency-Key reservation. */
static void fail_item(struct db *db, struct store_case_create *it,
		      enum store_case_create_outcome why)
{
	it->outcome = why;
	if (it->idem_key && store_idem_abandon(db, it->row.client_id, it->idem_key) < 0)
		log_warn("forgetting Idempotency-Key: %s", db_error(db));
}

size_t store_case_create_batch(struct db *db, struct store_case_create *const *items, size_t n)
{
	size_t failed = 0;
	int unavailable;

	for (size_t i = 0; i < n; i++)
		items[i]->outcome = STORE_CASE_CREATE_PENDING;
	if (run_batch(db, items, n) == 0)
		return 0;
	log_error("creating %zu case%s: %s", n, n == 1 ? "" : "s", db_error(db));
	/* Taken before forgetting the keys: those statements replace the last error. */
	unavailable = db_error_is_unavailable(db);
	if (n == 1 || unavailable) {
		/* Nothing to single out, or the server is gone: nothing else would get through. */
		for (size_t i = 0; i < n; i++)
			fail_item(db, items[i], unavailable ? STORE_CASE_CREATE_UNAVAILABLE
							    : STORE_CASE_CREATE_FAILED);
		return n;
	}
	/* One bad row fails the whole statement: try each case alone, so it fails alone. */
	for (size_t i = 0; i < n; i++) {
		if (run_batch(db, &items[i], 1) == 0)
			continue;
		log_error("creating case %s alone: %s", items[i]->row.id, db_error(db));
		fail_item(db, items[i], db_error_is_unavailable(db) ? STORE_CASE_CREATE_UNAVAILABLE
								     : STORE_CASE_CREATE_FAILED);
		failed++;
	}
	return failed;
}
