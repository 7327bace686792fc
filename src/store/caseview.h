/* caseview.h: a case as the API shows it (SPEC §3 GET /cases/{id}), built from the database. */
#ifndef OFFLOAD_CASEVIEW_H
#define OFFLOAD_CASEVIEW_H

#include <stddef.h>
#include <json-c/json.h>

struct db;

#define CASEVIEW_TRANSCRIPT 0x1 /* add conversationThread */
#define CASEVIEW_INTERNAL 0x2   /* add clientId and clientWebhookUrl (offloadctl only) */

/* Upper bound on a transcript; a thread beyond it is cut with a marker. */
#define CASEVIEW_MAX_TRANSCRIPT (4 * 1024 * 1024)

/*
 * Loads case_id. Returns 1 and sets *case_r (caller frees with json_object_put) and
 * client_id_r (the owning client), 0 when there is no such case, -1 on a database error
 * (logged). flags: CASEVIEW_*.
 */
int caseview_get(struct db *db, const char *case_id, unsigned flags, json_object **case_r,
		 char client_id_r[37]);

/* What caseview_get_keyed learnt about the API key and the case's owner. */
struct caseview_key {
	char client_id[37];      /* the key's client */
	int active;              /* the key is active */
	char plan[17];           /* the client's plan */
	char case_client_id[37]; /* the case's client; empty when there is no such case */
};

/*
 * GET /cases/{id} in one statement: looks the API key up by its SHA-256 and loads the case
 * with it. Returns 0 when the key is unknown, -1 on a database error (logged), else 1 with
 * *key_r filled and *case_r set (caller frees) only when the key is active and the case
 * exists and belongs to the key's client.
 */
int caseview_get_keyed(struct db *db, const unsigned char key_hash[32], const char *case_id,
		       unsigned flags, struct caseview_key *key_r, json_object **case_r);

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
