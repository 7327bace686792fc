/* verp.h: signed bounce addresses (VERP with a tag, as in BATV): bounces+<tag>@domain names
 * one outbound message, and only a report sent to a valid tag is believed. */
#ifndef OFFLOAD_VERP_H
#define OFFLOAD_VERP_H

#include <stddef.h>

#include "mail/ingest.h"
#include "store/mailkeys.h"

struct db;

/* The tag: the case id as 32 hex digits, '.', 16 hex digits of HMAC-SHA256. */
#define VERP_TAG_LEN 49
/* The HMAC covers the case id and the Message-ID; 64 bits are kept. */
#define VERP_MAC_BYTES 8
/* An RFC 5321 local part is at most 64 octets: local + '+' + tag. */
#define VERP_MAX_LOCAL (64 - 1 - VERP_TAG_LEN)

/*
 * Writes the tag of the message message_id (without <>) of case case_id (a lowercase
 * UUID) signed with key into tag_r. Returns 0, or -1 when case_id is not a UUID.
 */
int verp_tag_make(const unsigned char key[STORE_MAILKEY_LEN], const char *case_id,
		  const char *message_id, char tag_r[VERP_TAG_LEN + 1]);

/*
 * Finds a tag in the address addr ("local+TAG@domain", any case). Returns 1 with the case
 * id it names (lowercase, with dashes) in case_id_r and the tag (lowercase) in tag_r, or 0
 * when addr has no tag of that shape. Says nothing about the signature.
 */
int verp_tag_parse(const char *addr, char case_id_r[37], char tag_r[VERP_TAG_LEN + 1]);

/* 1 when tag (as from verp_tag_parse) is the tag of message_id under key, else 0.
 * Constant time in the MAC. */
int verp_tag_check(const unsigned char key[STORE_MAILKEY_LEN], const char *tag,
		   const char *message_id);

/*
 * The envelope sender for tag: bounce_address "local@domain" becomes "local+TAG@domain".
 * Returns a malloc'd string, or NULL when bounce_address has no '@'.
 */
char *verp_address(const char *bounce_address, const char *tag);

/* 1 for the kinds that come from mail systems (dsn, dsn_other, arf), else 0. */
int verp_kind_is_report(enum ingest_kind kind);

/*
 * The hook of ingest_store for reports. A report belongs to the case of a valid tag found
 * in the addresses it was delivered to (Delivered-To, X-Original-To, Envelope-To, To, Cc)
 * or, for a feedback report (ARF), anywhere in raw (the reported message's Return-Path
 * and Original-Mail-From carry our envelope sender); a report with no valid tag belongs to
 * no case, whatever Message-ID it quotes. On return case_id holds the case ("" for none)
 * and *how_r says why ("bounce-tag" or "none"); a report that named a case by Message-ID
 * only is logged as a warning. Returns 0, or -1 on a database error (*error_r).
 */
int verp_report_case(struct db *db, const struct ingest_mail *m, const char *raw, size_t len,
		     char case_id[37], const char **how_r, const char **error_r);

#endif
