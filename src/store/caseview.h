/* caseview.h: a case as the API shows it (doc/api.md, "GET /cases/{caseId}"), built from the
 * database. */
#ifndef OFFLOAD_CASEVIEW_H
#define OFFLOAD_CASEVIEW_H

#include <stddef.h>
#include <json-c/json.h>

struct db;
struct buf;

#define CASEVIEW_TRANSCRIPT 0x1 /* add conversationThread */
#define CASEVIEW_INTERNAL 0x2   /* add clientId and clientWebhookUrl (offloadctl only) */

/* Upper bound on a transcript; a thread beyond it is cut with a marker. */
#define CASEVIEW_MAX_TRANSCRIPT (4 * 1024 * 1024)
/* Upper bound on the JSON of one case: the transcript with every byte escaped (6 bytes for
 * a control character), plus the stored objects. */
#define CASEVIEW_MAX_JSON (8 * CASEVIEW_MAX_TRANSCRIPT)

/*
 * Loads case_id. Returns 1 and sets *case_r (caller frees with json_object_put) and
 * client_id_r (the owning client), 0 when there is no such case, -1 on a database error
 * (logged). flags: CASEVIEW_*.
 */
int caseview_get(struct db *db, const char *case_id, unsigned flags, json_object **case_r,
		 char client_id_r[37]);

/*
 * Like caseview_get, but appends the case's JSON text to out (whose maximum should be
 * CASEVIEW_MAX_JSON) without building json-c objects. When only_client is not NULL and the
 * case belongs to another client, nothing is written (client_id_r still says whose it is).
 * Returns 1 (case found; client_id_r set), 0 when there is no such case, -1 on a database
 * error or when the JSON would exceed out's maximum (logged).
 */
int caseview_get_text(struct db *db, const char *case_id, unsigned flags, const char *only_client,
		      struct buf *out, char client_id_r[37]);

/* The attachments array of a case ([] when none): 0, or -1 on a database error. */
int caseview_attachments(struct db *db, const char *case_id, json_object **array_r);

/* One attachment's metadata object, from a row of
 * (id, name, size, content_type, message_id, inbox_id, received_at). */
json_object *caseview_attachment_json(const char *id, const char *name, long long size,
				      const char *type, const char *message_id,
				      const char *inbox_id, long long received_at);

/* The plain-text transcript of a case's messages, oldest first. 0 and *text_r (caller
 * frees), or -1 on a database error. */
int caseview_transcript(struct db *db, const char *case_id, char **text_r);

#endif
