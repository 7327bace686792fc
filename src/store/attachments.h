/* attachments.h: attachment lookups of the API (doc/api.md, "Attachments"), their bytes
 * (table attachment_chunks), and the key that signs download links. */
#ifndef OFFLOAD_STORE_ATTACHMENTS_H
#define OFFLOAD_STORE_ATTACHMENTS_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* The bytes of an attachment are rows of attachment_chunks of this many bytes (the last one
 * shorter): a download holds one in memory at a time, and no row comes near a Galera
 * writeset limit (doc/operator-guide.md, "Scaling out"). */
#define STORE_ATTACHMENT_CHUNK (256 * 1024)

/* One row of attachments; the sizes follow the columns of sql/001_init.sql (utf8mb4
 * columns hold up to 4 bytes per character). */
struct store_attachment {
	char id[37];                 /* attachmentId */
	char case_id[37];            /* the case it belongs to */
	char name[255 * 4 + 1];      /* file name from the mail, UTF-8 */
	int64_t size;                /* bytes */
	char content_type[256];      /* MIME type, ASCII */
	char sha256[65];             /* of the bytes, lowercase hex */
	char storage_path[512 * 4 + 1]; /* "": bytes in attachment_chunks; else a file of
					 * [files] dir (stored before sql/009) */
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
 * Inside the caller's transaction (the one that inserts the attachments row): stores len
 * bytes of data as the chunks of attachment_id. 0, or -1 (db_error()).
 */
int store_attachment_bytes_insert(struct db *db, const char *attachment_id, const void *data,
				  size_t len);

/* Receives the bytes of a download in order; returns 0 to go on, -1 to stop. */
typedef int store_attachment_sink(void *arg, const void *data, size_t len);

/*
 * Hands the size bytes of attachment_id to sink, one chunk (one query) at a time. Returns
 * 0; -1 on a database error (*error_r) or when a chunk is missing or of the wrong size
 * (*error_r says so); -2 when sink stopped.
 */
int store_attachment_bytes_stream(struct db *db, const char *attachment_id, int64_t size,
				  store_attachment_sink *sink, void *arg, const char **error_r);

/*
 * Deletes the bytes of every attachment of case_id (store_attachments_delete_case calls it
 * first; the attachments rows and any files of [files] dir stay), one transaction per
 * attachment so that no writeset grows with the case. Returns the number of attachments whose bytes were
 * deleted, or -1 on a database error (*error_r). Safe to run again after a failure.
 */
int store_case_attachment_bytes_delete(struct db *db, const char *case_id, const char **error_r);

/*
 * Reads the key that signs /files/ links (settings.files_signing_key, shared by every API
 * host) into key_r (cap bytes). Returns 1 with *len_r, 0 when it is missing or not between
 * 16 and cap bytes long (run offloadctl migrate), -1 on a database error (*error_r).
 */
int store_files_signing_key(struct db *db, unsigned char *key_r, size_t cap, size_t *len_r,
			    const char **error_r);

/*
 * Deletes every attachment of case_id (an erasure, store/erase.h): the bytes
 * (store_case_attachment_bytes_delete), then the rows, up to STORE_IN_MAX per statement,
 * each statement its own transaction; the file of each row
 * (storage_path under files_dir) once its row is gone; then what is left in
 * files_dir/<caseId>/ (bytes written by an inbound delivery that never committed) and the
 * directory. Safe to run again after a crash or an error. Adds the rows deleted to *rows_r
 * and the files removed to *files_r. Returns 0, or -1 with *error_r (for logs).
 */
int store_attachments_delete_case(struct db *db, const char *files_dir, const char *case_id,
				  int64_t *rows_r, int64_t *files_r, const char **error_r);

#endif
