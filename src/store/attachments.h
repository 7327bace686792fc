/* attachments.h: attachment lookups of the API (doc/api.md, "Attachments") and the key that
 * signs download links. */
#ifndef OFFLOAD_STORE_ATTACHMENTS_H
#define OFFLOAD_STORE_ATTACHMENTS_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* One row of attachments; the sizes follow the columns of sql/001_init.sql (utf8mb4
 * columns hold up to 4 bytes per character). */
struct store_attachment {
	char id[37];                 /* attachmentId */
	char case_id[37];            /* the case it belongs to */
	char name[255 * 4 + 1];      /* file name from the mail, UTF-8 */
	int64_t size;                /* bytes */
	char content_type[256];      /* MIME type, ASCII */
	char storage_path[512 * 4 + 1]; /* relative to [files] dir */
	char message_id[999];        /* Message-ID of the mail it came in */
	char inbox_id[254 * 4 + 1];  /* the mailbox address it arrived at */
	int64_t received_at;         /* Unix ms */
};

/*
 * Loads the attachment attachment_id, if its case exists (not while the case is being
 * erased). Returns 1 with *a_r filled, 0 when there is none, -1
 * on a database error (*error_r, for logs only).
 */
int store_attachment_get(struct db *db, const char *attachment_id, struct store_attachment *a_r,
			 const char **error_r);

/*
 * Reads the key that signs /files/ links (settings.files_signing_key, shared by every API
 * host) into key_r (cap bytes). Returns 1 with *len_r, 0 when it is missing or not between
 * 16 and cap bytes long (run offloadctl migrate), -1 on a database error (*error_r).
 */
int store_files_signing_key(struct db *db, unsigned char *key_r, size_t cap, size_t *len_r,
			    const char **error_r);

/*
 * Deletes every attachment of case_id (an erasure, store/erase.h): the rows, up to
 * STORE_IN_MAX per statement, each statement its own transaction; the file of each row
 * (storage_path under files_dir) once its row is gone; then what is left in
 * files_dir/<caseId>/ (bytes written by an inbound delivery that never committed) and the
 * directory. Safe to run again after a crash or an error. Adds the rows deleted to *rows_r
 * and the files removed to *files_r. Returns 0, or -1 with *error_r (for logs).
 */
int store_attachments_delete_case(struct db *db, const char *files_dir, const char *case_id,
				  int64_t *rows_r, int64_t *files_r, const char **error_r);

#endif
