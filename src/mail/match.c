/* match.c: the case an inbound message belongs to (threading headers, plus address,
 * report), the sender rule and the reply-domain rule that may refuse it
 * (doc/hostile-input.md; doc/operator-guide.md, "Sender identities per client"). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "common/log.h"
#include "common/util.h"
#include "mail/identity.h"
#include "mail/ingest-private.h"
#include "store/messages.h"
#include "store/senders.h"

/* Case addresses of another domain looked up in one message, so that a message with
 * thousands of Cc cannot make us query for long. */
#define MAX_DOMAIN_LOOKUPS 16

/* 1 when addr is a case address local+<uuid>@domain: the uuid (lower case) into tag and
 * *domain_r pointing at its domain; else 0. */
static int case_address(const char *addr, char tag[37], const char **domain_r)
{
	const char *at = strrchr(addr, '@'), *plus = NULL;

	for (const char *p = addr; at && p < at; p++)
		if (*p == '+')
			plus = p;
	if (!at || !plus || at - plus - 1 != 36 || !at[1])
		return 0;
	memcpy(tag, plus + 1, 36);
	tag[36] = '\0';
	if (!util_uuid_valid(tag))
		return 0;
	ingest_lower_ascii(tag);
	*domain_r = at + 1;
	return 1;
}

/* The server's reply domain: the domain of the inbox address. */
static const char *server_domain(const struct ingest_settings *s)
{
	return mail_identity_domain_of(s->inbox_address ? s->inbox_address : "");
}

/*
 * 1 when at_domain is the server's domain and the case (whose client has its own reply
 * domain, case_domain) was mailed before the client had it: the case's messages gave out
 * the server's inbox+<caseId>@ address, and a reply to them still belongs to the case
 * (doc/operator-guide.md, "Sender identities per client"). 0 not, -1 error.
 */
static int server_domain_given_out(struct db *db, const struct ingest_settings *s,
				   const char *case_id, const char *case_domain,
				   const char *at_domain, const char **error_r)
{
	if (!*case_domain || strcasecmp(at_domain, server_domain(s)) != 0)
		return 0;
	return store_sender_case_mailed_elsewhere(db, case_id, case_domain, error_r);
}

/*
 * 1 when addr is local+<caseId>@domain for an existing case whose reply domain (its
 * client's, else the server's) is domain (case_id set), 0, or -1. A case address at
 * another domain does not name the case (logged).
 */
static int match_plus_address(struct db *db, const struct ingest_settings *s,
			      const struct ingest_mail *m, const char *addr, char case_id[37],
			      const char **error_r)
{
	char tag[37], found[37], domain[STORE_SENDER_DOMAIN_SIZE];
	const char *at_domain, *want;
	int r;

	if (!case_address(addr, tag, &at_domain))
		return 0;
	r = store_sender_case_domain(db, tag, found, domain, error_r);
	if (r <= 0)
		return r;
	want = *domain ? domain : server_domain(s);
	if (strcasecmp(at_domain, want) != 0 &&
	    (r = server_domain_given_out(db, s, found, domain, at_domain, error_r)) <= 0) {
		if (r < 0)
			return -1;
		log_warn("ingest: message-id=<%s> is addressed to %s, but case %s's reply domain is "
			 "%s, not %s: the address does not name the case", m->message_id, addr, found,
			 want, at_domain);
		return 0;
	}
	snprintf(case_id, 37, "%s", found);
	return 1;
}

/* Finds the case of m (see ingest.h for the order). 1 found, 0 not, -1 database error. */
int ingest_match_case(struct db *db, const struct ingest_settings *s,
		      const struct ingest_mail *m, char case_id[37], const char **how_r,
		      const char **error_r)
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
			if ((r = match_plus_address(db, s, m, lists[l][i], case_id, error_r)) != 0)
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

/*
 * The reply-domain rule (doc/operator-guide.md, "Sender identities per client"): a person's
 * message whose To or Cc holds a case address (local+<uuid>@domain) at one of our domains
 * other than case_id's reply domain (another client's reply domain, or the server's when
 * the case's client has its own) was sent to another client's address and does not
 * belong to case_id, whatever its threading headers say. Delivered-To is not looked at:
 * the MTA may have rewritten it to the server's mailbox. Reports are exempt (their
 * signed bounce tag decides). 1 m may belong to case_id, 0 not (logged), -1 error.
 */
int ingest_reply_domain_matches_case(struct db *db, const struct ingest_settings *s,
				     const struct ingest_mail *m, const char *case_id,
				     const char *how, const char **error_r)
{
	char *const *lists[] = { m->to_addrs, m->cc_addrs };
	const size_t counts[] = { m->n_to, m->n_cc };
	char found[37], domain[STORE_SENDER_DOMAIN_SIZE], tag[37];
	const char *want, *server = server_domain(s);
	int r, lookups = 0;

	if (m->kind == INGEST_KIND_DSN || m->kind == INGEST_KIND_DSN_OTHER ||
	    m->kind == INGEST_KIND_ARF)
		return 1;
	r = store_sender_case_domain(db, case_id, found, domain, error_r);
	if (r <= 0)
		return r;
	want = *domain ? domain : server;
	for (size_t l = 0; l < G_N_ELEMENTS(lists); l++)
		for (size_t i = 0; i < counts[l]; i++) {
			const char *addr = lists[l][i], *at_domain;
			char lower[STORE_SENDER_DOMAIN_SIZE], other[37] = "";
			int ours;

			if (!case_address(addr, tag, &at_domain) || strcasecmp(at_domain, want) == 0)
				continue;
			/* The server's address of this very case, given out before its client
			 * had a reply domain: no other client's address. */
			r = strcmp(tag, found) == 0 ?
				    server_domain_given_out(db, s, found, domain, at_domain, error_r) : 0;
			if (r < 0)
				return -1;
			if (r > 0)
				continue;
			ours = strcasecmp(at_domain, server) == 0;
			if (!ours && strlen(at_domain) < sizeof lower && lookups < MAX_DOMAIN_LOOKUPS) {
				snprintf(lower, sizeof lower, "%s", at_domain);
				ingest_lower_ascii(lower);
				lookups++;
				ours = store_sender_domain_client(db, lower, other, error_r);
				if (ours < 0)
					return -1;
			}
			if (!ours)
				continue;
			log_warn("ingest: message-id=<%s> names case %s (%s) but is addressed to %s, at "
				 "%s%s, not the case's reply domain %s: kept unmatched", m->message_id,
				 case_id, how, addr, *other ? "the reply domain of client " :
				 "the server's domain", other, want);
			return 0;
		}
	return 1;
}
