/* outbox.c: the webhook outbox: the exact envelope of doc/api.md, "Webhooks", written with
 * the transition. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "common/log.h"
#include "store/caseview.h"
#include "store/db.h"
#include "store/outbox.h"

static void copy_field(json_object *from, json_object *to, const char *key, int when_null)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(from, key, &v))
		return;
	if (!v && !when_null)
		return;
	json_object_object_add(to, key, json_object_get(v));
}

int outbox_case_event(struct db *db, const char *case_id, const char *type, int64_t now_ms)
{
	static const char sql[] =
		"INSERT IGNORE INTO webhook_deliveries (event_id, client_id, case_id, event_type, url,"
		" body, state, attempts, next_attempt_at, created_at)"
		" VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)";
	json_object *c = NULL, *env = NULL, *data, *v, *url = NULL, *ir = NULL;
	char owner[37], event_id[128], type_us[32];
	int64_t updated;
	int terminal = strcmp(type, "case.input_needed") != 0;
	int rc = -1;

	if (caseview_get(db, case_id, CASEVIEW_INTERNAL, &c, owner) != 1)
		goto out;
	if (!json_object_object_get_ex(c, "clientWebhookUrl", &url) || !url) {
		rc = 0;
		goto out;
	}
	json_object_object_get_ex(c, "updatedAt", &v);
	updated = json_object_get_int64(v);
	snprintf(type_us, sizeof type_us, "%s", type);
	for (char *p = type_us; *p; p++)
		if (*p == '.')
			*p = '_';
	snprintf(event_id, sizeof event_id, "evt_%s_%s_%lld", case_id, type_us, (long long)updated);

	data = json_object_new_object();
	copy_field(c, data, "caseId", 1);
	copy_field(c, data, "status", 1);
	copy_field(c, data, "channel", 1);
	copy_field(c, data, "attemptCount", 1);
	copy_field(c, data, "attachments", 1);
	copy_field(c, data, "clientReferenceId", 0);
	copy_field(c, data, "metadata", 0);
	if (terminal) {
		copy_field(c, data, "resultStatus", 1);
		copy_field(c, data, "result", 1);
		copy_field(c, data, "failureReason", 1);
	} else {
		json_object_object_get_ex(c, "inputRequest", &ir);
		json_object_object_add(data, "inputRequest", json_object_get(ir));
		if (ir) {
			json_object_object_add(data, "inputRequestId",
					       json_object_get(json_object_object_get(ir, "id")));
			json_object_object_add(data, "inputRequestStatus",
					       json_object_get(json_object_object_get(ir, "status")));
			json_object_object_add(data, "inputRequestedAt",
					       json_object_get(json_object_object_get(ir, "requestedAt")));
		}
	}
	env = json_object_new_object();
	json_object_object_add(env, "event_id", json_object_new_string(event_id));
	json_object_object_add(env, "event_type", json_object_new_string(type));
	json_object_object_add(env, "timestamp", json_object_new_int64(updated));
	json_object_object_add(env, "data", data);
	{
		struct db_arg args[] = {
			DB_STR(event_id), DB_STR(owner), DB_STR(case_id), DB_STR(type),
			DB_STR(json_object_get_string(url)),
			DB_STR(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE)),
			DB_INT(now_ms), DB_INT(now_ms),
		};

		if (db_query(db, sql, args, 8, NULL) < 0) {
			log_error("outbox: case %s: %s", case_id, db_error(db));
			goto out;
		}
	}
	rc = 0;
out:
	json_object_put(env);
	json_object_put(c);
	return rc;
}
