/* sms.c: SMS numbers, opt-outs, incoming SMS and delivery reports (tables of sql/010_sms.sql). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"
#include "store/events.h"
#include "store/sms.h"
#include "store/tx.h"
#include "store/types.h"

int store_sms_lock_number(struct db *db, const char *number, int64_t now_ms)
{
	static const char sql[] =
		"INSERT INTO sms_numbers (number, touched_at) VALUES (?, ?)"
		" ON DUPLICATE KEY UPDATE touched_at = VALUES(touched_at)";
	struct db_arg a[] = { DB_STR(number), DB_INT(now_ms) };

	return db_query(db, sql, a, 2, NULL);
}

int store_sms_opted_out(struct db *db, const char *number)
{
	static const char sql[] = "SELECT 1 FROM sms_optouts WHERE number = ?";
	struct db_arg a[] = { DB_STR(number) };
	struct db_res *res = NULL;
	int found;

	if (db_query(db, sql, a, 1, &res) < 0)
		return -1;
	found = db_res_rows(res) > 0;
	db_res_free(&res);
	return found;
}

/* store_sms_open_case; with lock, the case row is locked (FOR UPDATE) until the transaction
 * ends, so an erasure of the case (which locks the row first) waits for what is stored for
 * it, and then removes it too, or runs first and leaves no case to store for. */
static int open_case(struct db *db, const char *number, char case_id_r[37],
		     int64_t *created_at_r, int lock)
{
	/* The unique key cases_sms_open_number. */
	static const char sql[] = "SELECT id, created_at FROM cases WHERE sms_open_number = ?";
	static const char lock_sql[] =
		"SELECT id, created_at FROM cases WHERE sms_open_number = ? FOR UPDATE";
	struct db_arg a[] = { DB_STR(number) };
	struct db_res *res = NULL;

	if (case_id_r)
		case_id_r[0] = '\0';
	if (db_query(db, lock ? lock_sql : sql, a, 1, &res) < 0)
		return -1;
	if (db_res_rows(res) == 0) {
		db_res_free(&res);
		return 0;
	}
	if (case_id_r)
		snprintf(case_id_r, 37, "%s", db_res_get(res, 0, 0));
	if (created_at_r)
		*created_at_r = db_res_int(res, 0, 1);
	db_res_free(&res);
	return 1;
}

int store_sms_open_case(struct db *db, const char *number, char case_id_r[37],
			int64_t *created_at_r)
{
	return open_case(db, number, case_id_r, created_at_r, 0);
}

/* {"messageRowId": row} plus "diagnostic" when given, malloc'd. */
static char *event_payload(int64_t row, const char *diagnostic)
{
	json_object *o = json_object_new_object();
	char *text;

	json_object_object_add(o, "messageRowId", json_object_new_int64(row));
	if (diagnostic)
		json_object_object_add(o, "diagnostic", json_object_new_string(diagnostic));
	text = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}

struct incoming_tx {
	const struct store_sms_incoming *in;
	char case_id[37];
	int64_t row;
};

static const char *intent_kind(enum store_sms_intent intent, int matched)
{
	switch (intent) {
	case STORE_SMS_STOP:
		return "opt_out";
	case STORE_SMS_START:
		return matched ? "reply" : "opt_in";
	default:
		return "reply";
	}
}

static int incoming_run(struct db *db, void *arg)
{
	static const char insert_sql[] =
		"INSERT INTO messages (case_id, direction, kind, message_id, from_addr, to_addr,"
		" subject, body_text, created_at, channel, kannel_id)"
		" VALUES (?, 'inbound', ?, ?, ?, ?, '', ?, ?, 'SMS', ?)";
	static const char optout_sql[] =
		"INSERT INTO sms_optouts (number, since, case_id, keyword) VALUES (?, ?, ?, ?)"
		" ON DUPLICATE KEY UPDATE case_id = COALESCE(VALUES(case_id), case_id)";
	static const char optin_sql[] = "DELETE FROM sms_optouts WHERE number = ?";
	struct incoming_tx *t = arg;
	const struct store_sms_incoming *in = t->in;
	char *message_id = NULL, *payload = NULL;
	const char *case_id;
	int matched, rc = -1;

	t->case_id[0] = '\0';
	t->row = 0;
	matched = 0;
	if (!in->unmatchable) {
		if (store_sms_lock_number(db, in->from, in->now_ms) < 0)
			return -1;
		matched = open_case(db, in->from, t->case_id, NULL, 1);
		if (matched < 0)
			return -1;
	}
	case_id = matched ? t->case_id : NULL;
	message_id = xasprintf("sms.%s", in->kannel_id);
	{
		struct db_arg a[] = {
			DB_STR(case_id), DB_STR(intent_kind(in->intent, matched)), DB_STR(message_id),
			DB_STR(in->from), DB_STR(in->to), DB_STR(in->text), DB_INT(in->now_ms),
			DB_STR(in->kannel_id),
		};

		if (db_query(db, insert_sql, a, sizeof a / sizeof a[0], NULL) < 0)
			goto out;
	}
	t->row = db_insert_id(db);
	if (in->unmatchable) {
		/* No number to record an opt-out for. */
	} else if (in->intent == STORE_SMS_STOP) {
		struct db_arg a[4];

		a[0] = DB_STR(in->from);
		a[1] = DB_INT(in->now_ms);
		a[2] = DB_STR(case_id);
		a[3] = DB_STR(in->keyword);
		if (db_query(db, optout_sql, a, 4, NULL) < 0)
			goto out;
	} else if (in->intent == STORE_SMS_START) {
		struct db_arg a[] = { DB_STR(in->from) };

		if (db_query(db, optin_sql, a, 1, NULL) < 0)
			goto out;
	}
	if (matched) {
		enum store_event_type type = in->intent == STORE_SMS_STOP ? EVENT_SMS_OPT_OUT
									  : EVENT_REPLY_RECEIVED;

		payload = event_payload(t->row, NULL);
		if (store_event_enqueue(db, case_id, type, payload, in->now_ms, in->now_ms) < 0)
			goto out;
	}
	rc = 0;
out:
	free(message_id);
	free(payload);
	return rc;
}

/* Errors that say the row itself is wrong: trying again will not help. */
static int error_is_permanent(unsigned no)
{
	switch (no) {
	case 1048: /* ER_BAD_NULL_ERROR */
	case 1264: /* ER_WARN_DATA_OUT_OF_RANGE */
	case 1292: /* ER_TRUNCATED_WRONG_VALUE */
	case 1366: /* ER_TRUNCATED_WRONG_VALUE_FOR_FIELD */
	case 1406: /* ER_DATA_TOO_LONG */
	case 4025: /* ER_CONSTRAINT_FAILED */
		return 1;
	default:
		return 0;
	}
}

enum store_sms_result store_sms_incoming_store(struct db *db, const struct store_sms_incoming *in,
					       char case_id_r[37], int64_t *row_r,
					       const char **error_r)
{
	struct incoming_tx t = { .in = in };
	unsigned no;

	case_id_r[0] = '\0';
	if (store_tx_run(db, incoming_run, &t) == 0) {
		memcpy(case_id_r, t.case_id, 37);
		*row_r = t.row;
		return STORE_SMS_STORED;
	}
	*error_r = db_error(db);
	no = db_errno(db);
	if (no == DB_ER_DUP_ENTRY)
		return STORE_SMS_DUPLICATE;
	if (error_is_permanent(no))
		return STORE_SMS_REFUSED;
	return STORE_SMS_ERROR;
}

/* The stored delivery_state of a report type, and whether it fails the case. */
static const char *dlr_state(int type, int *fails_r)
{
	*fails_r = 0;
	switch (type) {
	case STORE_SMS_DLR_DELIVERED:
		return "delivered";
	case STORE_SMS_DLR_UNDELIVERED:
		*fails_r = 1;
		return "undelivered";
	case STORE_SMS_DLR_REJECTED:
		*fails_r = 1;
		return "rejected";
	case STORE_SMS_DLR_QUEUED:
		return "queued";
	case STORE_SMS_DLR_ACCEPTED:
		return "accepted";
	default:
		return "unknown";
	}
}

struct dlr_tx {
	const char *message_id;
	int type;
	const char *report;
	int64_t now_ms;
	int found;
};

static int dlr_run(struct db *db, void *arg)
{
	static const char find_sql[] =
		"SELECT id, case_id, delivery_state FROM messages WHERE message_id = ?"
		" AND direction = 'outbound' AND channel = 'SMS' FOR UPDATE";
	static const char update_sql[] =
		"UPDATE messages SET delivery_state = ?, delivery_at = ?, delivery_report = ?"
		" WHERE id = ?";
	struct dlr_tx *t = arg;
	struct db_arg fa[] = { DB_STR(t->message_id) };
	struct db_res *res = NULL;
	const char *old, *case_id;
	const char *state;
	char *payload = NULL, *diag = NULL;
	int fails, old_final, old_failed, rc = -1;
	int64_t row;

	t->found = 0;
	if (db_query(db, find_sql, fa, 1, &res) < 0)
		return -1;
	if (db_res_rows(res) == 0) {
		db_res_free(&res);
		return 0;
	}
	t->found = 1;
	row = db_res_int(res, 0, 0);
	case_id = db_res_get(res, 0, 1);
	old = db_res_get(res, 0, 2);
	old_final = old && (strcmp(old, "delivered") == 0 || strcmp(old, "undelivered") == 0 ||
			    strcmp(old, "rejected") == 0);
	old_failed = old && (strcmp(old, "undelivered") == 0 || strcmp(old, "rejected") == 0);
	state = dlr_state(t->type, &fails);
	/* Reports can arrive out of order, and Kannel repeats them: the first failure stays
	 * with its text (it failed the case), and a final report is not replaced by an
	 * intermediate one. */
	if (old_failed || (old_final && !fails && strcmp(state, "delivered") != 0)) {
		rc = 0;
		goto out;
	}
	{
		struct db_arg ua[] = { DB_STR(state), DB_INT(t->now_ms), DB_STR(t->report),
				       DB_INT(row) };

		if (db_query(db, update_sql, ua, 4, NULL) < 0)
			goto out;
	}
	/* The first failure report fails the case; Kannel's repeats do not queue more. */
	if (fails && case_id) {
		diag = xasprintf("SMS %s%s%s", state, t->report && *t->report ? ": " : "",
				 t->report ? t->report : "");
		payload = event_payload(row, diag);
		if (store_event_enqueue(db, case_id, EVENT_BOUNCE_RECEIVED, payload, t->now_ms,
					t->now_ms) < 0)
			goto out;
	}
	rc = 0;
out:
	db_res_free(&res);
	free(payload);
	free(diag);
	return rc;
}

int store_sms_dlr_record(struct db *db, const char *message_id, int type, const char *report,
			 int64_t now_ms)
{
	struct dlr_tx t = { message_id, type, report, now_ms, 0 };

	if (store_tx_run(db, dlr_run, &t) != 0)
		return -1;
	return t.found;
}

int store_sms_outbound_reported(struct db *db, int64_t row)
{
	static const char sql[] =
		"SELECT delivery_state IS NOT NULL FROM messages WHERE id = ?";
	struct db_arg a[] = { DB_INT(row) };
	struct db_res *res = NULL;
	int r;

	if (db_query(db, sql, a, 1, &res) < 0)
		return -1;
	r = db_res_rows(res) > 0 && db_res_int(res, 0, 0) == 1;
	db_res_free(&res);
	return r;
}

static void optout_read(const struct db_res *res, size_t i, void *row)
{
	struct store_sms_optout *o = row;
	const char *c = db_res_get(res, i, 2), *k = db_res_get(res, i, 3);

	o->number = xstrdup(db_res_get(res, i, 0));
	o->since = db_res_int(res, i, 1);
	o->case_id = c ? xstrdup(c) : NULL;
	o->keyword = k ? xstrdup(k) : NULL;
}

int store_sms_optouts_list(struct db *db, size_t max, struct store_sms_optout **list_r,
			   size_t *n_r)
{
	static const char sql[] =
		"SELECT number, since, case_id, keyword FROM sms_optouts ORDER BY since, number"
		" LIMIT ?";
	struct db_arg a[] = { DB_INT((int64_t)max) };

	*list_r = db_query_rows(db, sql, a, 1, sizeof **list_r, optout_read, n_r, NULL);
	return *list_r ? 0 : -1;
}

void store_sms_optouts_free(struct store_sms_optout **list, size_t n)
{
	if (!*list)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*list)[i].number);
		free((*list)[i].case_id);
		free((*list)[i].keyword);
	}
	free(*list);
	*list = NULL;
}

static void unmatched_read(const struct db_res *res, size_t i, void *row)
{
	struct store_sms_unmatched *u = row;
	const char *k = db_res_get(res, i, 3);

	u->received_at = db_res_int(res, i, 0);
	u->from = xstrdup(db_res_get(res, i, 1));
	u->to = xstrdup(db_res_get(res, i, 2));
	u->kannel_id = k ? xstrdup(k) : NULL;
	u->text = xstrdup(db_res_get(res, i, 4));
}

int store_sms_unmatched_list(struct db *db, size_t max, struct store_sms_unmatched **list_r,
			     size_t *n_r)
{
	/* The index messages_channel_unmatched (channel, case_id, created_at). */
	static const char sql[] =
		"SELECT created_at, from_addr, to_addr, kannel_id, body_text FROM messages"
		" WHERE channel = 'SMS' AND case_id IS NULL AND direction = 'inbound'"
		" ORDER BY created_at DESC, id DESC LIMIT ?";
	struct db_arg a[] = { DB_INT((int64_t)max) };

	*list_r = db_query_rows(db, sql, a, 1, sizeof **list_r, unmatched_read, n_r, NULL);
	return *list_r ? 0 : -1;
}

void store_sms_unmatched_free(struct store_sms_unmatched **list, size_t n)
{
	if (!*list)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*list)[i].from);
		free((*list)[i].to);
		free((*list)[i].kannel_id);
		free((*list)[i].text);
	}
	free(*list);
	*list = NULL;
}

struct clear_tx {
	const char *number;
	int64_t now_ms;
	int cleared;
};

static int clear_run(struct db *db, void *arg)
{
	static const char sql[] = "DELETE FROM sms_optouts WHERE number = ?";
	struct clear_tx *t = arg;
	struct db_arg a[] = { DB_STR(t->number) };

	if (store_sms_lock_number(db, t->number, t->now_ms) < 0)
		return -1;
	if (db_query(db, sql, a, 1, NULL) < 0)
		return -1;
	t->cleared = db_affected_rows(db) > 0;
	return 0;
}

int store_sms_optout_clear(struct db *db, const char *number, int64_t now_ms)
{
	struct clear_tx t = { number, now_ms, 0 };

	if (store_tx_run(db, clear_run, &t) != 0)
		return -1;
	return t.cleared;
}
