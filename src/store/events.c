/* events.c: the internal work queue (table events). */
#include "store/db.h"
#include "store/events.h"

int store_event_enqueue(struct db *db, const char *case_id, enum store_event_type type,
			const char *payload_json, int64_t available_at_ms, int64_t now_ms)
{
	static const char sql[] =
		"INSERT INTO events (case_id, type, payload, state, available_at, created_at)"
		" VALUES (?, ?, ?, 'pending', ?, ?)";
	struct db_arg args[] = {
		DB_STR(case_id), DB_STR(store_event_type_name(type)), DB_STR(payload_json),
		DB_INT(available_at_ms), DB_INT(now_ms),
	};

	return db_query(db, sql, args, sizeof args / sizeof args[0], NULL);
}
