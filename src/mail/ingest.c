/* ingest.c: inbound mail, one path for IMAP and the MTA pipe: parse (parse.c), match
 * (match.c), keep the files (files.c) and store the message, its attachments and event. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/ingest.h"
#include "mail/authres.h"
#include "mail/ingest-private.h"
#include "mail/verp.h"
#include "store/messages.h"

const char *ingest_kind_name(enum ingest_kind kind)
{
	switch (kind) {
	case INGEST_KIND_REPLY:
		return "reply";
	case INGEST_KIND_AUTO_REPLY:
		return "auto_reply";
	case INGEST_KIND_DSN:
		return "dsn";
	case INGEST_KIND_DSN_OTHER:
		return "dsn_other";
	case INGEST_KIND_ARF:
		return "arf";
	}
	return "reply";
}

const char *ingest_result_name(enum ingest_result result)
{
	switch (result) {
	case INGEST_STORED:
		return "stored";
	case INGEST_UNMATCHED:
		return "unmatched";
	case INGEST_DUPLICATE:
		return "duplicate";
	case INGEST_MALFORMED:
		return "malformed";
	case INGEST_TEMPFAIL:
		return "tempfail";
	}
	return "tempfail";
}

/* ---- storing ---- */

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char digest[32];

	util_sha256(data, len, digest);
	util_hex(digest, sizeof digest, out);
}

/* The event a matched message of this kind causes, or -1 for none. */
static int event_type(enum ingest_kind kind, enum store_event_type *type_r)
{
	switch (kind) {
	case INGEST_KIND_REPLY:
		*type_r = EVENT_REPLY_RECEIVED;
		return 0;
	case INGEST_KIND_DSN:
		*type_r = EVENT_BOUNCE_RECEIVED;
		return 0;
	case INGEST_KIND_ARF:
		*type_r = EVENT_COMPLAINT_RECEIVED;
		return 0;
	case INGEST_KIND_AUTO_REPLY:
	case INGEST_KIND_DSN_OTHER:
		break;
	}
	return -1;
}

/* The name of the event a matched message of this kind causes, or NULL. */
static const char *event_name(enum ingest_kind kind)
{
	enum store_event_type type;

	return event_type(kind, &type) == 0 ? store_event_type_name(type) : NULL;
}

/*
 * The one transaction (store/messages.h): the messages row, the attachment rows of a
 * matched message and its event. Returns what the store answered, *row_id_r when stored.
 */
static enum store_message_result store_rows(struct db *db, const struct ingest_settings *s,
					    const struct ingest_mail *m, const char *case_id,
					    const char *raw_rel, char (*att_ids)[37],
					    int64_t now_ms, int64_t *row_id_r,
					    const char **error_r)
{
	const char *matched = *case_id ? case_id : NULL;
	struct store_inbound_message msg = { 0 };
	struct store_inbound_attachment *atts = NULL;
	struct store_inbound_event ev = { 0 };
	size_t n_atts = matched ? m->n_attachments : 0;
	char inbox[255];
	char *from;
	struct buf rb;
	enum store_message_result result;
	int has_event;

	buf_init(&rb, 65000);
	buf_puts(&rb, "");
	for (size_t i = 0; i < m->n_references; i++)
		buf_printf(&rb, "%s%s", rb.len ? " " : "", m->references[i]);
	from = m->from_name ? xasprintf("%s <%s>", m->from_name, m->from_addr)
			    : xstrdup(m->from_addr);
	ingest_cut_in_place(from, MAX_ADDR_FIELD);
	snprintf(inbox, sizeof inbox, "%s", s->inbox_address ? s->inbox_address : "");
	ingest_cut_in_place(inbox, 254);

	msg.case_id = matched;
	msg.kind = ingest_kind_name(m->kind);
	msg.message_id = m->message_id;
	msg.in_reply_to = m->in_reply_to;
	msg.references_ids = *rb.data ? rb.data : NULL;
	msg.from_addr = from;
	msg.to_addr = m->to_display;
	msg.subject = m->subject;
	msg.body_text = m->body_text;
	msg.quoted_text = m->quoted_text;
	msg.raw_path = raw_rel;
	msg.inbox_id = inbox;
	msg.received_at_ms = now_ms;
	atts = xcalloc(n_atts + 1, sizeof *atts);
	for (size_t i = 0; i < n_atts; i++) {
		const struct ingest_attachment *a = &m->attachments[i];

		atts[i].id = att_ids[i];
		atts[i].name = a->name;
		atts[i].size = (int64_t)a->size;
		atts[i].content_type = a->content_type;
		atts[i].sha256 = a->sha256;
		/* The bytes go into the database with the row (any API host serves them). */
		atts[i].storage_path = "";
		atts[i].data = a->data;
	}
	has_event = matched && event_type(m->kind, &ev.type) == 0;
	ev.feedback_type = m->feedback_type;
	ev.diagnostic = m->diagnostic;
	result = store_message_insert_inbound(db, &msg, atts, n_atts, has_event ? &ev : NULL,
					      row_id_r, error_r);
	free(atts);
	free(from);
	buf_free(&rb);
	return result;
}

enum ingest_result ingest_store(struct db *db, const struct ingest_settings *s, const char *raw,
				size_t len, int64_t now_ms, char case_id_r[37])
{
	struct ingest_mail m;
	struct written w = { 0 };
	char sha[65], case_id[37] = "", dup_case[37] = "", raw_rel[128], dir[PATH_MAX];
	char (*att_ids)[37] = NULL;
	const char *err = NULL, *how = "none", *dberr = "unknown error";
	enum store_message_result stored;
	size_t max = s->max_bytes ? s->max_bytes : INGEST_DEFAULT_MAX_BYTES;
	enum ingest_result result = INGEST_TEMPFAIL;
	int64_t row_id = 0;
	int r, created, own = 0;

	memset(&m, 0, sizeof m);
	case_id_r[0] = '\0';
	sha256_hex(raw, len, sha);
	if (len > max) {
		err = "larger than the size limit";
		goto malformed;
	}
	if (ingest_parse(raw, len, &m, &err) < 0)
		goto malformed;

	r = store_message_find(db, m.message_id, dup_case, &own, &dberr);
	if (r < 0)
		goto db_trouble;
	if (r > 0) {
		snprintf(case_id_r, 37, "%s", dup_case);
		log_info("ingest: duplicate case=%s kind=%s message-id=<%s>: %s",
			 *dup_case ? dup_case : "-", ingest_kind_name(m.kind), m.message_id,
			 own ? "our own outbound message came back" : "already stored");
		result = INGEST_DUPLICATE;
		goto out;
	}
	r = ingest_match_case(db, s, &m, case_id, &how, &dberr);
	if (r < 0)
		goto db_trouble;
	/* Reports are believed only at a valid bounce tag (mail/verp.h), never by Message-ID. */
	if (verp_kind_is_report(m.kind) && verp_report_case(db, &m, raw, len, case_id, &how, &dberr) < 0)
		goto db_trouble;
	if (*case_id) {
		r = ingest_sender_matches_case(db, &m, case_id, &dberr);
		if (r < 0)
			goto db_trouble;
		if (r == 0) {
			log_warn("ingest: message-id=<%s> names case %s (%s) but comes from %s, not "
				 "the counterparty's address or domain: kept unmatched",
				 m.message_id, case_id, how, m.from_addr ? m.from_addr : "(no sender)");
			case_id[0] = '\0';
		}
	}
	/* A reply to one client's address never attaches to another client's case. */
	if (*case_id) {
		r = ingest_reply_domain_matches_case(db, s, &m, case_id, how, &dberr);
		if (r < 0)
			goto db_trouble;
		if (r == 0)
			case_id[0] = '\0';
	}
	/* A person's message also needs the receiving MTA's word, when the operator names it. */
	if (*case_id && !verp_kind_is_report(m.kind) &&
	    !authres_reply_trusted(&m, raw, len, s->authserv_id, case_id))
		case_id[0] = '\0';

	snprintf(raw_rel, sizeof raw_rel, "raw/%s/%s.eml", *case_id ? case_id : "unmatched", sha);
	if ((size_t)snprintf(dir, sizeof dir, "%s/raw/%s", s->files_dir,
			     *case_id ? case_id : "unmatched") >= sizeof dir) {
		errno = ENAMETOOLONG;
		goto disk_trouble;
	}
	if (ingest_keep_file(dir, strrchr(raw_rel, '/') + 1, raw, len, &created) < 0)
		goto disk_trouble;
	if (created)
		w.raw_path = xasprintf("%s/%s", s->files_dir, raw_rel);
	/* Only a person's message adds to the case's attachments; the raw copy keeps the
	 * rest (auto-reply logos, files sent to no case). */
	if (!*case_id || m.kind == INGEST_KIND_AUTO_REPLY) {
		for (size_t i = 0; i < m.n_attachments; i++) {
			free(m.attachments[i].name);
			free(m.attachments[i].content_type);
			free(m.attachments[i].data);
		}
		m.n_attachments = 0;
	}
	if (*case_id) {
		att_ids = xcalloc(m.n_attachments + 1, sizeof *att_ids);
		for (size_t i = 0; i < m.n_attachments; i++)
			util_uuid_v4(att_ids[i]);
	}

	stored = store_rows(db, s, &m, case_id, raw_rel, att_ids, now_ms, &row_id, &dberr);
	if (stored != STORE_MESSAGE_STORED) {
		if (stored == STORE_MESSAGE_DUPLICATE) {
			/* Another delivery of this message won the race; its row may name the
			 * same raw file, so that stays. */
			log_info("ingest: duplicate case=%s kind=%s message-id=<%s>: stored meanwhile",
				 *case_id ? case_id : "-", ingest_kind_name(m.kind), m.message_id);
			result = INGEST_DUPLICATE;
			goto out;
		}
		ingest_written_remove_raw(&w);
		if (stored == STORE_MESSAGE_REFUSED) {
			log_error("ingest: message-id=<%s> refused by the database: %s",
				  m.message_id, dberr);
			err = "refused by the database";
			goto malformed;
		}
		goto db_trouble;
	}

	snprintf(case_id_r, 37, "%s", case_id);
	if (*case_id) {
		result = INGEST_STORED;
		log_info("ingest: stored case=%s kind=%s message-id=<%s> row=%lld matched-by=%s"
			 " attachments=%zu%s%s",
			 case_id, ingest_kind_name(m.kind), m.message_id, (long long)row_id, how,
			 m.n_attachments, event_name(m.kind) ? " event=" : "",
			 event_name(m.kind) ? event_name(m.kind) : "");
	} else {
		result = INGEST_UNMATCHED;
		log_warn("ingest: unmatched case=- kind=%s message-id=<%s> row=%lld from=%s: no case"
			 " found; kept as %s",
			 ingest_kind_name(m.kind), m.message_id, (long long)row_id, m.from_addr,
			 raw_rel);
	}
	if (m.n_attachments_dropped)
		log_warn("ingest: message-id=<%s>: %zu attachments over the limit of %d not kept"
			 " as attachments (the raw message has them)",
			 m.message_id, m.n_attachments_dropped, INGEST_MAX_ATTACHMENTS);
	goto out;

malformed:
	if (ingest_keep_unparsed(s, raw, len, sha) < 0) {
		log_warn("ingest: tempfail: cannot keep an unparsable message under %s/unparsed: %s",
			 s->files_dir, strerror(errno));
		result = INGEST_TEMPFAIL;
		goto out;
	}
	result = INGEST_MALFORMED;
	if (len == 0)
		log_warn("ingest: malformed: empty input");
	else
		log_warn("ingest: malformed sha256=%s bytes=%zu: %s; kept as unparsed/%s.eml", sha,
			 len, err ? err : "unreadable", sha);
	goto out;
disk_trouble:
	log_warn("ingest: tempfail message-id=<%s>: writing under %s: %s", m.message_id,
		 s->files_dir, strerror(errno));
	ingest_written_remove_raw(&w);
	result = INGEST_TEMPFAIL;
	goto out;
db_trouble:
	log_warn("ingest: tempfail message-id=<%s>: database: %s", m.message_id, dberr);
	result = INGEST_TEMPFAIL;
out:
	ingest_written_free(&w);
	free(att_ids);
	ingest_mail_free(&m);
	return result;
}
