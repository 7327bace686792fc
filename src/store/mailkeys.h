/* mailkeys.h: the database side of signed bounce addresses: the tag key and the Message-IDs
 * a tag may name. */
#ifndef OFFLOAD_STORE_MAILKEYS_H
#define OFFLOAD_STORE_MAILKEYS_H

#include <stddef.h>

struct db;

/* Bytes of the bounce-tag key (settings.bounce_tag_key, made by sql/006_bounce_tag_key.sql). */
#define STORE_MAILKEY_LEN 32

/*
 * Reads settings.bounce_tag_key into key_r. Returns 1, 0 when the row is missing or has
 * the wrong length (the migration has not run), or -1 on a database error (*error_r).
 */
int store_mailkey_get(struct db *db, unsigned char key_r[STORE_MAILKEY_LEN],
		      const char **error_r);

/*
 * The Message-IDs of the outbound messages of case_id, newest first, at most max of them.
 * Returns the number found (0..max) with *ids_r an array of malloc'd strings the caller
 * frees with store_mailkey_ids_free(), or -1 on a database error (*error_r).
 */
int store_outbound_message_ids(struct db *db, const char *case_id, size_t max, char ***ids_r,
			       const char **error_r);
void store_mailkey_ids_free(char ***ids, size_t n);

#endif
