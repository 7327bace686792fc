/* admin.c: offloadctl's queries over cases, events and webhook deliveries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/admin.h"
#include "store/db.h"
#include "store/tx.h"

#define N_ARGS(a) (sizeof(a) / sizeof((a)[0]))

static void case_id_read(const struct db_res *res, size_t i, void *row)
{
	char *id = row;

	snprintf(id, 37, "%s", db_res_get(res, i, 0));
}

int store_admin_case_list(struct db *db, const char *client_id,
			  const enum store_case_status *status, int64_t limit, char (**ids_r)[37],
			  size_t *n_r, const char **error_r)
{
	static const char sql[] =
		"SELECT id FROM cases WHERE (? IS NULL OR client_id = ?) AND (? IS NULL OR status = ?)"
		" ORDER BY updated_at DESC, id DESC LIMIT ?";
	const char *st = status ? store_case_status_name(*status) : NULL;
	struct db_arg args[] = { DB_STR(client_id), DB_STR(client_id), DB_STR(st), DB_STR(st),
				 DB_INT(limit) };

	*ids_r = db_query_rows(db, sql, args, N_ARGS(args), sizeof **ids_r, case_id_read, n_r,
			       error_r);
	return *ids_r ? 0 : -1;
}

struct nudge_tx {
	const char *case_id;
	int64_t now_ms;
	int found;                     /* out: the case exists */
	int known;                     /* out: its status is one of enum store_case_status */
	struct store_admin_nudge *out; /* out */
};

static int nudge_tx_run(struct db *db, void *arg)
{
	static const char status[] = "SELECT status FROM cases WHERE id = ?";
	static const char due_now[] =
		"UPDATE cases SET next_action_at = ? WHERE id = ? AND status = ?"
		" AND next_action_at > ?";
	static const char events_now[] =
		"UPDATE events SET available_at = ? WHERE case_id = ? AND state = 'pending'"
		" AND available_at > ? AND lease_owner IS NULL";
	struct nudge_tx *t = arg;
	struct db_arg id[] = { DB_STR(t->case_id) };
	struct db_arg due[] = { DB_INT(t->now_ms), DB_STR(t->case_id),
				DB_STR(store_case_status_name(CASE_RUNNING)), DB_INT(t->now_ms) };
	struct db_arg ev[] = { DB_INT(t->now_ms), DB_STR(t->case_id), DB_INT(t->now_ms) };
	struct db_res *res = NULL;

	t->found = t->known = 0;
	memset(t->out, 0, sizeof *t->out);
	if (db_query(db, status, id, N_ARGS(id), &res) < 0)
		return -1;
	t->found = db_res_rows(res) > 0;
	t->known = t->found &&
		   store_case_status_parse(db_res_get(res, 0, 0), &t->out->status) == 0;
	db_res_free(&res);
	if (!t->known)
		return 1;
	if (db_query(db, due_now, due, N_ARGS(due), NULL) < 0)
		return -1;
	t->out->follow_up_moved = db_affected_rows(db) > 0;
	if (db_query(db, events_now, ev, N_ARGS(ev), NULL) < 0)
		return -1;
	t->out->events_moved = db_affected_rows(db);
	return 0;
}

int store_admin_case_nudge(struct db *db, const char *case_id, int64_t now_ms,
			   struct store_admin_nudge *nudge_r, const char **error_r)
{
	struct nudge_tx t = { .case_id = case_id, .now_ms = now_ms, .out = nudge_r };
	int rc = store_tx_run(db, nudge_tx_run, &t);

	if (rc == 0)
		return 1;
	if (rc == 1 && !t.found)
		return 0;
	*error_r = rc == 1 ? "the case has a status this program does not know" : db_error(db);
	return -1;
}

/* The columns every delivery query selects, in this order (read by delivery_read). */
#define DELIVERY_COLUMNS \
	"event_id, case_id, client_id, event_type, url, state, attempts, next_attempt_at," \
	" last_status_code, last_error, last_response_body, created_at, delivered_at," \
	" lease_owner, lease_until"

/* A nullable text cell, copied; NULL stays NULL. */
static char *dup_or_null(const struct db_res *res, size_t row, size_t col)
{
	const char *v = db_res_get(res, row, col);

	return v ? xstrdup(v) : NULL;
}

/* A nullable integer cell; NULL is -1. */
static int64_t int_or_none(const struct db_res *res, size_t row, size_t col)
{
	return db_res_get(res, row, col) ? db_res_int(res, row, col) : -1;
}

static void copy_cell(char *out, size_t cap, const struct db_res *res, size_t row, size_t col)
{
	snprintf(out, cap, "%s", db_res_text(res, row, col));
}

static void delivery_read(const struct db_res *res, size_t i, void *row)
{
	struct store_admin_delivery *d = row;

	memset(d, 0, sizeof *d);
	copy_cell(d->event_id, sizeof d->event_id, res, i, 0);
	copy_cell(d->case_id, sizeof d->case_id, res, i, 1);
	copy_cell(d->client_id, sizeof d->client_id, res, i, 2);
	copy_cell(d->event_type, sizeof d->event_type, res, i, 3);
	d->url = dup_or_null(res, i, 4);
	if (!d->url)
		d->url = xstrdup("");
	copy_cell(d->state, sizeof d->state, res, i, 5);
	d->attempts = db_res_int(res, i, 6);
	d->next_attempt_at_ms = db_res_int(res, i, 7);
	d->last_status_code = int_or_none(res, i, 8);
	d->last_error = dup_or_null(res, i, 9);
	d->last_response_body = dup_or_null(res, i, 10);
	d->created_at_ms = db_res_int(res, i, 11);
	d->delivered_at_ms = int_or_none(res, i, 12);
	d->lease_owner = dup_or_null(res, i, 13);
	d->lease_until_ms = int_or_none(res, i, 14);
}

int store_admin_webhook_list(struct db *db, const char *case_id, const char *state,
			     int64_t limit, struct store_admin_delivery **rows_r, size_t *n_r,
			     const char **error_r)
{
	static const char sql[] =
		"SELECT " DELIVERY_COLUMNS " FROM webhook_deliveries"
		" WHERE (? IS NULL OR case_id = ?) AND (? IS NULL OR state = ?)"
		" ORDER BY created_at DESC, id DESC LIMIT ?";
	struct db_arg args[] = { DB_STR(case_id), DB_STR(case_id), DB_STR(state), DB_STR(state),
				 DB_INT(limit) };

	*rows_r = db_query_rows(db, sql, args, N_ARGS(args), sizeof **rows_r, delivery_read, n_r,
				error_r);
	return *rows_r ? 0 : -1;
}

int store_admin_webhook_get(struct db *db, const char *event_id, struct store_admin_delivery *row_r,
			    const char **error_r)
{
	static const char sql[] =
		"SELECT " DELIVERY_COLUMNS ", body FROM webhook_deliveries WHERE event_id = ?";
	struct db_arg args[] = { DB_STR(event_id) };
	struct db_res *res;
	int found;

	memset(row_r, 0, sizeof *row_r);
	found = db_query_first(db, sql, args, N_ARGS(args), &res, error_r);
	if (found > 0) {
		delivery_read(res, 0, row_r);
		row_r->body = dup_or_null(res, 0, 15);
		db_res_free(&res);
	}
	return found;
}

void store_admin_delivery_clear(struct store_admin_delivery *row)
{
	free(row->url);
	free(row->last_error);
	free(row->last_response_body);
	free(row->lease_owner);
	free(row->body);
	memset(row, 0, sizeof *row);
}

void store_admin_deliveries_free(struct store_admin_delivery **rows, size_t n)
{
	if (!*rows)
		return;
	for (size_t i = 0; i < n; i++)
		store_admin_delivery_clear(&(*rows)[i]);
	free(*rows);
	*rows = NULL;
}

int store_admin_webhook_redeliver(struct db *db, const char *event_id, int64_t now_ms,
				  int keep_attempts, const char **error_r)
{
	/* Clearing the lease also voids the outcome of an attempt in flight (its lease check
	 * fails), so the delivery is simply tried again. */
	static const char sql[] =
		"UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?,"
		" attempts = IF(? = 1, attempts, 0), lease_owner = NULL, lease_until = NULL,"
		" delivered_at = NULL WHERE event_id = ?";
	struct db_arg args[] = { DB_INT(now_ms), DB_INT(keep_attempts ? 1 : 0), DB_STR(event_id) };

	if (db_query(db, sql, args, N_ARGS(args), NULL) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	return db_affected_rows(db) > 0;
}
