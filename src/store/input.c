/* input.c: the operator's answer to a case's input request (tables input_requests, cases). */
#include <string.h>

#include "store/db.h"
#include "store/events.h"
#include "store/input.h"
#include "store/tx.h"

/* The input request statuses (input_requests.status). */
#define REQUEST_PENDING "PENDING"
#define REQUEST_RESOLVED "RESOLVED"

struct provide {
	const struct store_input_answer *a;
	enum store_input_outcome outcome;
	enum store_case_status status;
};

/* The transaction (store_tx_fn): 0 to commit an accepted answer, 1 to refuse. */
static int provide(struct db *db, void *arg)
{
	static const char lock_case[] =
		"SELECT client_id, status, input_request_id FROM cases WHERE id = ? FOR UPDATE";
	static const char resolve[] =
		"UPDATE input_requests SET status = '" REQUEST_RESOLVED "', resolved_at = ?,"
		" answer = ?, decision = ? WHERE id = ? AND case_id = ?"
		" AND status = '" REQUEST_PENDING "'";
	static const char touch_case[] =
		"UPDATE cases SET updated_at = ?, version = version + 1 WHERE id = ?";
	struct provide *p = arg;
	const struct store_input_answer *a = p->a;
	struct db_arg case_arg[] = { DB_STR(a->case_id) };
	struct db_arg resolve_args[] = { DB_INT(a->now_ms), DB_STR(a->answer),
					 DB_STR(a->decision_json), DB_STR(a->input_request_id),
					 DB_STR(a->case_id) };
	struct db_arg touch_args[] = { DB_INT(a->now_ms), DB_STR(a->case_id) };
	struct db_res *res = NULL;
	const char *current;
	int rc = 1;

	if (db_query(db, lock_case, case_arg, 1, &res) < 0) {
		rc = -1;
		goto out;
	}
	if (db_res_rows(res) == 0) {
		p->outcome = STORE_INPUT_NO_CASE;
		goto out;
	}
	if (strcmp(db_res_get(res, 0, 0), a->client_id) != 0) {
		p->outcome = STORE_INPUT_OTHER_CLIENT;
		goto out;
	}
	if (store_case_status_parse(db_res_get(res, 0, 1), &p->status) < 0 ||
	    p->status != CASE_INPUT_NEEDED) {
		p->outcome = STORE_INPUT_NOT_WAITING;
		goto out;
	}
	current = db_res_get(res, 0, 2);
	if (!current || strcmp(current, a->input_request_id) != 0) {
		p->outcome = STORE_INPUT_MISMATCH;
		goto out;
	}
	/* Resolving only a PENDING request of this case: 0 rows means it was answered. */
	if (db_query(db, resolve, resolve_args, 5, NULL) < 0) {
		rc = -1;
		goto out;
	}
	if (db_affected_rows(db) != 1) {
		p->outcome = STORE_INPUT_NOT_PENDING;
		goto out;
	}
	if (db_query(db, touch_case, touch_args, 2, NULL) < 0 ||
	    store_event_enqueue(db, a->case_id, EVENT_INPUT_PROVIDED, a->event_payload, a->now_ms,
				a->now_ms) < 0) {
		rc = -1;
		goto out;
	}
	p->outcome = STORE_INPUT_ACCEPTED;
	rc = 0;
out:
	db_res_free(&res);
	return rc;
}

int store_input_provide(struct db *db, const struct store_input_answer *a,
			enum store_input_outcome *outcome_r, enum store_case_status *status_r)
{
	struct provide p = { .a = a };

	if (store_tx_run(db, provide, &p) < 0)
		return -1;
	*outcome_r = p.outcome;
	if (status_r)
		*status_r = p.status;
	return 0;
}
