/* reports.c: delivery status notifications (RFC 3464) and feedback reports (RFC 5965):
 * their kind, diagnostic and the Message-ID of the message they are about. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "mail/ingest-private.h"

#define MAX_DIAGNOSTIC 2000

/* ---- reports (RFC 3464, RFC 5965) ---- */

/* One block of "Name: value" fields, as in message/delivery-status. */
#define BLOCK_MAX_FIELDS 40
struct field_block {
	char *names[BLOCK_MAX_FIELDS];
	char *values[BLOCK_MAX_FIELDS]; /* unfolded, whitespace collapsed, trimmed */
	size_t n;
};

#define MAX_BLOCKS 50

static void blocks_free(struct field_block *blocks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < blocks[i].n; k++) {
			free(blocks[i].names[k]);
			free(blocks[i].values[k]);
		}
	}
}

static void collapse_ws(char *s)
{
	char *w = s;
	int space = 0;

	for (char *r = s; *r; r++) {
		if (*r == ' ' || *r == '\t' || *r == '\n') {
			space = 1;
			continue;
		}
		if (space && w != s)
			*w++ = ' ';
		space = 0;
		*w++ = *r;
	}
	*w = '\0';
}

/*
 * Splits the body of a message/delivery-status or message/feedback-report part into
 * blocks of fields (RFC 3464 §2.1: blank lines separate the per-message block from the
 * per-recipient ones; continuation lines start with white space). Returns the count.
 */
static size_t parse_field_blocks(const char *raw, size_t len, struct field_block *blocks)
{
	char *text = ingest_utf8_dup(raw, len), *norm = ingest_text_normalise(text);
	size_t nb = 0, tl = strlen(norm), off = 0;
	struct field_block *cur = NULL;

	free(text);
	while (off < tl) {
		size_t next;
		struct line l = ingest_line_at(norm, tl, off, &next);
		const char *colon;

		if (l.len == 0) {
			cur = NULL;
		} else if ((norm[off] == ' ' || norm[off] == '\t') && cur && cur->n > 0) {
			char *v = xasprintf("%s %.*s", cur->values[cur->n - 1],
					    (int)(l.len > 4096 ? 4096 : l.len), l.s);

			ingest_cut_in_place(v, 4096);
			free(cur->values[cur->n - 1]);
			cur->values[cur->n - 1] = v;
		} else if ((colon = memchr(l.s, ':', l.len)) != NULL && colon > l.s) {
			if (!cur) {
				if (nb == MAX_BLOCKS)
					break;
				cur = &blocks[nb++];
				cur->n = 0;
			}
			if (cur->n < BLOCK_MAX_FIELDS) {
				cur->names[cur->n] = ingest_trim_dup(l.s, (size_t)(colon - l.s));
				cur->values[cur->n] = ingest_trim_dup(colon + 1,
								      l.len - (size_t)(colon + 1 - l.s));
				ingest_cut_in_place(cur->names[cur->n], 200);
				ingest_cut_in_place(cur->values[cur->n], 4096);
				cur->n++;
			}
		}
		off = next;
	}
	for (size_t i = 0; i < nb; i++)
		for (size_t k = 0; k < blocks[i].n; k++)
			collapse_ws(blocks[i].values[k]);
	free(norm);
	return nb;
}

static const char *block_get(const struct field_block *b, const char *name)
{
	for (size_t k = 0; k < b->n; k++)
		if (strcasecmp(b->names[k], name) == 0)
			return b->values[k];
	return NULL;
}

/* "rfc822; bob@example.org" → "bob@example.org" (RFC 3464 §2.3.2 address-type). */
static char *strip_addr_type(const char *v)
{
	const char *semi = strchr(v, ';');
	const char *a = semi ? semi + 1 : v;

	return ingest_trim_dup(a, strlen(a));
}

/* The first word of a field value, lower case, without comments: "failed (x)" → "failed". */
char *ingest_first_word(const char *v)
{
	size_t n = strcspn(v, " \t(;");
	char *w = xstrndup(v, n);

	ingest_lower_ascii(w);
	return w;
}

/* The Message-ID inside an original-message part (message/rfc822 or text/rfc822-headers). */
static char *original_id(GMimeObject *part)
{
	const char *id = NULL;
	char *out = NULL;

	if (GMIME_IS_MESSAGE_PART(part)) {
		GMimeMessage *orig = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));

		id = orig ? g_mime_message_get_message_id(orig) : NULL;
		if (id && ingest_id_usable(id))
			out = xstrdup(id);
	} else if (GMIME_IS_PART(part) && (ingest_ct_is(part, "text", "rfc822-headers") ||
					    ingest_ct_is(part, "message", "global-headers") ||
					    ingest_ct_is(part, "message", "rfc822") ||
					    ingest_ct_is(part, "message", "global"))) {
		size_t len;
		unsigned char *bytes = ingest_part_bytes(GMIME_PART(part), &len);
		GMimeStream *stream = g_mime_stream_mem_new();
		GMimeParser *parser;
		GMimeMessage *orig;

		/* A header block alone: end it, so GMime sees a complete (empty-bodied) message. */
		g_mime_stream_write(stream, (const char *)bytes, len);
		g_mime_stream_write_string(stream, "\n\n");
		g_mime_stream_seek(stream, 0, GMIME_STREAM_SEEK_SET);
		parser = g_mime_parser_new_with_stream(stream);
		orig = g_mime_parser_construct_message(parser, NULL);
		id = orig ? g_mime_message_get_message_id(orig) : NULL;
		if (id && ingest_id_usable(id))
			out = xstrdup(id);
		if (orig)
			g_object_unref(orig);
		g_object_unref(parser);
		g_object_unref(stream);
		free(bytes);
	}
	return out;
}

static void append_field(struct buf *b, const struct field_block *blk, const char *name)
{
	const char *v = block_get(blk, name);

	if (v && *v)
		buf_printf(b, "%s%s: %s", b->len ? "; " : "", name, v);
}

/*
 * Reads a multipart/report: kind, diagnostic, original Message-ID. Returns the child that
 * carries the human-readable text (the first one), or NULL.
 */
GMimeObject *ingest_read_report(GMimeMultipart *report, const char *report_type,
				struct ingest_mail *m)
{
	int count = g_mime_multipart_get_count(report);
	int is_dsn = strcasecmp(report_type, "delivery-status") == 0 ||
		     strcasecmp(report_type, "global-delivery-status") == 0;
	GMimeObject *human = count > 0 ? g_mime_multipart_get_part(report, 0) : NULL;

	m->kind = is_dsn ? INGEST_KIND_DSN_OTHER : INGEST_KIND_ARF;
	for (int i = 1; i < count; i++) {
		GMimeObject *part = g_mime_multipart_get_part(report, i);
		struct field_block blocks[MAX_BLOCKS];
		size_t nb, len;
		unsigned char *bytes;

		if (!m->original_message_id)
			m->original_message_id = original_id(part);
		if (!GMIME_IS_PART(part))
			continue;
		if (is_dsn && (ingest_ct_is(part, "message", "delivery-status") ||
			       ingest_ct_is(part, "message", "global-delivery-status"))) {
			const struct field_block *failed = NULL, *first = NULL;
			struct buf d;

			bytes = ingest_part_bytes(GMIME_PART(part), &len);
			nb = parse_field_blocks((const char *)bytes, len, blocks);
			free(bytes);
			/* RFC 3464 §2.3.3: Action is per recipient; only "failed" is a bounce. */
			for (size_t b = 1; b < nb; b++) {
				const char *action = block_get(&blocks[b], "Action");
				char *w = action ? ingest_first_word(action) : NULL;

				if (!first && block_get(&blocks[b], "Final-Recipient"))
					first = &blocks[b];
				if (w && strcmp(w, "failed") == 0 && !failed)
					failed = &blocks[b];
				free(w);
			}
			if (failed)
				m->kind = INGEST_KIND_DSN;
			if (!failed)
				failed = first;
			if (failed && !m->diagnostic) {
				const char *rcpt = block_get(failed, "Final-Recipient");
				const char *status = block_get(failed, "Status");
				const char *code = block_get(failed, "Diagnostic-Code");
				const char *action = block_get(failed, "Action");

				if (!rcpt)
					rcpt = block_get(failed, "Original-Recipient");
				m->report_recipient = rcpt ? strip_addr_type(rcpt) : NULL;
				m->report_status = status ? ingest_first_word(status) : NULL;
				buf_init(&d, 4 * 4096 + 1024);
				buf_puts(&d, m->report_recipient ? m->report_recipient : "(unknown recipient)");
				if (action && m->kind != INGEST_KIND_DSN)
					buf_printf(&d, ": action %s", action);
				if (m->report_status)
					buf_printf(&d, ": status %s", m->report_status);
				if (code)
					buf_printf(&d, ": %s", code);
				m->diagnostic = d.data;
				ingest_cut_in_place(m->diagnostic, MAX_DIAGNOSTIC);
			}
			blocks_free(blocks, nb);
		} else if (!is_dsn && ingest_ct_is(part, "message", "feedback-report") && !m->feedback_type &&
			   !m->diagnostic) {
			struct buf d;
			const char *ft;

			bytes = ingest_part_bytes(GMIME_PART(part), &len);
			nb = parse_field_blocks((const char *)bytes, len, blocks);
			free(bytes);
			if (nb > 0) {
				ft = block_get(&blocks[0], "Feedback-Type");
				m->feedback_type = ft ? ingest_first_word(ft) : NULL;
				buf_init(&d, 7 * 4096 + 1024);
				buf_puts(&d, "");
				append_field(&d, &blocks[0], "Feedback-Type");
				append_field(&d, &blocks[0], "User-Agent");
				append_field(&d, &blocks[0], "Original-Mail-From");
				append_field(&d, &blocks[0], "Original-Rcpt-To");
				append_field(&d, &blocks[0], "Source-IP");
				append_field(&d, &blocks[0], "Reported-Domain");
				m->diagnostic = d.data;
				ingest_cut_in_place(m->diagnostic, MAX_DIAGNOSTIC);
			}
			blocks_free(blocks, nb);
		}
	}
	if (m->kind == INGEST_KIND_ARF && !m->feedback_type)
		m->feedback_type = xstrdup("unknown");
	if (m->diagnostic && !*m->diagnostic) {
		free(m->diagnostic);
		m->diagnostic = NULL;
	}
	return human;
}
