/* verp.c: the bounce tag (case id + truncated HMAC of the Message-ID) and the report check. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/verp.h"

/* A case has a few dozen outbound messages at most; a tag is checked against this many. */
#define VERP_MAX_IDS 500
/* Tags looked at in one report, so a crafted report cannot make us hash for long. */
#define VERP_MAX_CANDIDATES 16

static void mac_hex(const unsigned char key[STORE_MAILKEY_LEN], const char *case_id,
		    const char *message_id, char out[2 * VERP_MAC_BYTES + 1])
{
	unsigned char mac[32];
	char *data = xasprintf("offload-bounce-tag-v1\n%s\n%s", case_id, message_id);

	util_hmac_sha256(key, STORE_MAILKEY_LEN, data, strlen(data), mac);
	util_hex(mac, VERP_MAC_BYTES, out);
	free(data);
}

int verp_tag_make(const unsigned char key[STORE_MAILKEY_LEN], const char *case_id,
		  const char *message_id, char tag_r[VERP_TAG_LEN + 1])
{
	char lower[37], mac[2 * VERP_MAC_BYTES + 1];
	size_t k = 0;

	if (!util_uuid_valid(case_id))
		return -1;
	for (size_t i = 0; i < 36; i++)
		lower[i] = (char)tolower((unsigned char)case_id[i]);
	lower[36] = '\0';
	for (size_t i = 0; i < 36; i++)
		if (lower[i] != '-')
			tag_r[k++] = lower[i];
	tag_r[k++] = '.';
	mac_hex(key, lower, message_id, mac);
	memcpy(tag_r + k, mac, sizeof mac);
	return 0;
}

int verp_tag_parse(const char *addr, char case_id_r[37], char tag_r[VERP_TAG_LEN + 1])
{
	const char *at = strrchr(addr, '@'), *plus = NULL;
	size_t k = 0;

	for (const char *p = addr; at && p < at; p++)
		if (*p == '+')
			plus = p;
	if (!at || !plus || at - plus - 1 != VERP_TAG_LEN)
		return 0;
	for (size_t i = 0; i < VERP_TAG_LEN; i++) {
		char c = (char)tolower((unsigned char)plus[1 + i]);

		if (i == 32 ? c != '.' : !isxdigit((unsigned char)c))
			return 0;
		tag_r[i] = c;
	}
	tag_r[VERP_TAG_LEN] = '\0';
	for (size_t i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			case_id_r[k++] = '-';
		case_id_r[k++] = tag_r[i];
	}
	case_id_r[k] = '\0';
	return util_uuid_valid(case_id_r);
}

int verp_tag_check(const unsigned char key[STORE_MAILKEY_LEN], const char *tag,
		   const char *message_id)
{
	char case_id[37], want[VERP_TAG_LEN + 1], addr[VERP_TAG_LEN + 4], parsed[VERP_TAG_LEN + 1];

	snprintf(addr, sizeof addr, "+%s@", tag);
	if (!verp_tag_parse(addr, case_id, parsed) || verp_tag_make(key, case_id, message_id, want) < 0)
		return 0;
	return util_mem_equal(want, parsed, VERP_TAG_LEN);
}

char *verp_address(const char *bounce_address, const char *tag)
{
	const char *at = strrchr(bounce_address, '@');

	if (!at)
		return NULL;
	return xasprintf("%.*s+%s%s", (int)(at - bounce_address), bounce_address, tag, at);
}

int verp_kind_is_report(enum ingest_kind kind)
{
	return kind == INGEST_KIND_DSN || kind == INGEST_KIND_DSN_OTHER || kind == INGEST_KIND_ARF;
}

struct candidates {
	char tags[VERP_MAX_CANDIDATES][VERP_TAG_LEN + 1];
	char cases[VERP_MAX_CANDIDATES][37];
	size_t n;
};

static void add_candidate(struct candidates *c, const char *addr)
{
	char case_id[37], tag[VERP_TAG_LEN + 1];

	if (c->n == VERP_MAX_CANDIDATES || !verp_tag_parse(addr, case_id, tag))
		return;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->tags[i], tag) == 0)
			return;
	memcpy(c->tags[c->n], tag, sizeof tag);
	memcpy(c->cases[c->n], case_id, sizeof case_id);
	c->n++;
}

/* Every "+TAG@" in raw: a feedback report quotes our envelope sender inside the report. */
static void scan_raw(struct candidates *c, const char *raw, size_t len)
{
	for (size_t i = 0; i + VERP_TAG_LEN + 2 <= len && c->n < VERP_MAX_CANDIDATES; i++) {
		char addr[VERP_TAG_LEN + 3];

		if (raw[i] != '+' || raw[i + 1 + VERP_TAG_LEN] != '@')
			continue;
		memcpy(addr, raw + i, VERP_TAG_LEN + 2);
		addr[VERP_TAG_LEN + 2] = '\0';
		add_candidate(c, addr);
	}
}

/* 1 when tag is valid for one of the case's outbound messages (its id in msgid_r). */
static int tag_valid(struct db *db, const unsigned char *key, const char *case_id,
		     const char *tag, char **msgid_r, const char **error_r)
{
	char **ids = NULL;
	int n = store_outbound_message_ids(db, case_id, VERP_MAX_IDS, &ids, error_r), ok = 0;

	if (n < 0)
		return -1;
	for (int i = 0; i < n && !ok; i++)
		if (verp_tag_check(key, tag, ids[i])) {
			ok = 1;
			*msgid_r = xstrdup(ids[i]);
		}
	store_mailkey_ids_free(&ids, (size_t)n);
	return ok;
}

int verp_report_case(struct db *db, const struct ingest_mail *m, const char *raw, size_t len,
		     char case_id[37], const char **how_r, const char **error_r)
{
	char *const *lists[] = { m->delivered_to, m->to_addrs, m->cc_addrs };
	const size_t counts[] = { m->n_delivered_to, m->n_to, m->n_cc };
	unsigned char key[STORE_MAILKEY_LEN];
	struct candidates c;
	char quoted_case[37];
	char *msgid = NULL;
	int r;

	snprintf(quoted_case, sizeof quoted_case, "%s", case_id);
	case_id[0] = '\0';
	*how_r = "none";
	c.n = 0;
	for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
		for (size_t i = 0; i < counts[l]; i++)
			add_candidate(&c, lists[l][i]);
	if (m->kind == INGEST_KIND_ARF)
		scan_raw(&c, raw, len);
	if (c.n) {
		r = store_mailkey_get(db, key, error_r);
		if (r < 0)
			return -1;
		if (r == 0) {
			log_error("ingest: settings.bounce_tag_key is missing: run offloadctl migrate;"
				  " reports are kept unmatched until then");
			c.n = 0;
		}
	}
	for (size_t i = 0; i < c.n; i++) {
		r = tag_valid(db, key, c.cases[i], c.tags[i], &msgid, error_r);
		if (r < 0) {
			explicit_bzero(key, sizeof key);
			return -1;
		}
		if (r) {
			snprintf(case_id, 37, "%s", c.cases[i]);
			*how_r = "bounce-tag";
			log_info("ingest: %s report message-id=<%s> addressed to the bounce tag of"
				 " <%s> (case %s)", ingest_kind_name(m->kind), m->message_id, msgid,
				 case_id);
			free(msgid);
			break;
		}
		log_warn("ingest: %s report message-id=<%s>: bounce tag %s for case %s is not"
			 " valid (forged or altered)", ingest_kind_name(m->kind), m->message_id,
			 c.tags[i], c.cases[i]);
	}
	explicit_bzero(key, sizeof key);
	if (!*case_id && *quoted_case)
		log_warn("ingest: %s report message-id=<%s> quotes a message of case %s but was not"
			 " sent to a valid bounce tag: kept unmatched (the case is not changed)",
			 ingest_kind_name(m->kind), m->message_id, quoted_case);
	return 0;
}
