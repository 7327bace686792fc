/* match.c: the case an inbound message belongs to (threading headers, plus address,
 * report) and the sender rule that may refuse it (doc/hostile-input.md). */
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "common/util.h"
#include "mail/ingest-private.h"
#include "store/messages.h"

/* 1 when addr is local+<caseId>@… for an existing case (set in case_id), 0, or -1. */
static int match_plus_address(struct db *db, const char *addr, char case_id[37],
			      const char **error_r)
{
	const char *at = strrchr(addr, '@'), *plus = NULL;
	char tag[37];

	for (const char *p = addr; at && p < at; p++)
		if (*p == '+')
			plus = p;
	if (!at || !plus || at - plus - 1 != 36)
		return 0;
	memcpy(tag, plus + 1, 36);
	tag[36] = '\0';
	if (!util_uuid_valid(tag))
		return 0;
	ingest_lower_ascii(tag);
	return store_message_case_exists(db, tag, case_id, error_r);
}

/* Finds the case of m (see ingest.h for the order). 1 found, 0 not, -1 database error. */
int ingest_match_case(struct db *db, const struct ingest_mail *m, char case_id[37],
		      const char **how_r, const char **error_r)
{
	char *const *lists[] = { m->to_addrs, m->cc_addrs, m->delivered_to };
	const size_t counts[] = { m->n_to, m->n_cc, m->n_delivered_to };
	int r;

	if (m->in_reply_to) {
		*how_r = "in-reply-to";
		if ((r = store_message_outbound_case(db, m->in_reply_to, case_id, error_r)) != 0)
			return r;
	}
	*how_r = "references";
	for (size_t i = m->n_references; i-- > 0;) {
		if (m->in_reply_to && strcmp(m->references[i], m->in_reply_to) == 0)
			continue;
		if ((r = store_message_outbound_case(db, m->references[i], case_id, error_r)) != 0)
			return r;
	}
	*how_r = "plus-address";
	for (size_t l = 0; l < G_N_ELEMENTS(lists); l++)
		for (size_t i = 0; i < counts[l]; i++)
			if ((r = match_plus_address(db, lists[l][i], case_id, error_r)) != 0)
				return r;
	if (m->original_message_id) {
		*how_r = "report";
		if ((r = store_message_outbound_case(db, m->original_message_id, case_id,
						     error_r)) != 0)
			return r;
	}
	*how_r = "none";
	return 0;
}

/*
 * The sender rule (doc/hostile-input.md): a person's message attaches to a case only when
 * its From address is the counterparty's, or at the counterparty's domain. Threading
 * headers and plus addresses can be copied by anyone who saw one of our messages, and a
 * forged "here is the W-9" must not reach another client's case. Delivery and feedback
 * reports come from mail systems and are matched by our own Message-ID inside them.
 * 1 the sender may speak for the case, 0 not, -1 database error.
 */
int ingest_sender_matches_case(struct db *db, const struct ingest_mail *m, const char *case_id,
			       const char **error_r)
{
	char want[STORE_ADDRESS_SIZE];
	const char *want_at, *from_at;
	int r;

	if (m->kind == INGEST_KIND_DSN || m->kind == INGEST_KIND_DSN_OTHER ||
	    m->kind == INGEST_KIND_ARF)
		return 1;
	if (!m->from_addr)
		return 0;
	r = store_message_case_counterparty(db, case_id, want, error_r);
	if (r <= 0)
		return r;
	want_at = strrchr(want, '@');
	from_at = strrchr(m->from_addr, '@');
	return strcasecmp(want, m->from_addr) == 0 ||
	       (want_at && from_at && strcasecmp(want_at, from_at) == 0);
}
