/* compose.c: outbound messages built with GMime: RFC 2047 names, quoted-printable UTF-8. */
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "common/xalloc.h"
#include "mail/compose.h"

void compose_init(void)
{
	g_mime_init();
}

void compose_end(void)
{
	g_mime_shutdown();
}

static int has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

int compose_message(const struct compose_msg *m, char **raw_r, size_t *len_r,
		    const char **error_r)
{
	GMimeMessage *msg = NULL;
	GMimeTextPart *part = NULL;
	GMimeFormatOptions *fmt = NULL;
	GDateTime *date = NULL;
	GMimeStream *body_stream = NULL;
	GMimeDataWrapper *content = NULL;
	char *text = NULL;
	int rc = -1;

	if (!m->from_addr || !m->to_addr || !m->subject || !m->body || !m->message_id) {
		*error_r = "a required field is missing";
		return -1;
	}
	if (has_crlf(m->from_name) || has_crlf(m->from_addr) || has_crlf(m->reply_to) ||
	    has_crlf(m->to_name) || has_crlf(m->to_addr) || has_crlf(m->subject) ||
	    has_crlf(m->message_id) || has_crlf(m->in_reply_to) || has_crlf(m->references) ||
	    has_crlf(m->case_id)) {
		*error_r = "a header field contains CR or LF";
		return -1;
	}
	msg = g_mime_message_new(TRUE);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, m->from_name, m->from_addr);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, m->to_name, m->to_addr);
	if (m->reply_to)
		g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_REPLY_TO, NULL, m->reply_to);
	g_mime_message_set_subject(msg, m->subject, "utf-8");
	g_mime_message_set_message_id(msg, m->message_id);
	date = g_date_time_new_from_unix_utc(m->date_ms / 1000);
	g_mime_message_set_date(msg, date);
	if (m->in_reply_to) {
		char *irt = xasprintf("<%s>", m->in_reply_to);

		g_mime_object_set_header(GMIME_OBJECT(msg), "In-Reply-To", irt, NULL);
		free(irt);
	}
	if (m->references && *m->references)
		g_mime_object_set_header(GMIME_OBJECT(msg), "References", m->references, NULL);
	if (m->case_id)
		g_mime_object_set_header(GMIME_OBJECT(msg), "X-Offload-Case", m->case_id, NULL);
	/* RFC 3834 §5: we are a person's agent, not an autoresponder; say so explicitly. */
	g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted", "no", NULL);

	/* g_mime_text_part_set_text() would re-encode text that fits Latin-1 as ISO-8859-1;
	 * the body goes in as the UTF-8 bytes it is, labelled so. */
	part = g_mime_text_part_new_with_subtype("plain");
	body_stream = g_mime_stream_mem_new_with_buffer(m->body, strlen(m->body));
	content = g_mime_data_wrapper_new_with_stream(body_stream, GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(GMIME_PART(part), content);
	g_mime_text_part_set_charset(part, "utf-8");
	g_mime_part_set_content_encoding(GMIME_PART(part), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(part));

	fmt = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fmt, GMIME_NEWLINE_FORMAT_DOS);
	text = g_mime_object_to_string(GMIME_OBJECT(msg), fmt);
	if (!text) {
		*error_r = "GMime could not serialise the message";
		goto out;
	}
	*len_r = strlen(text);
	*raw_r = xstrndup(text, *len_r);
	rc = 0;
out:
	g_free(text);
	if (fmt)
		g_mime_format_options_free(fmt);
	if (date)
		g_date_time_unref(date);
	if (content)
		g_object_unref(content);
	if (body_stream)
		g_object_unref(body_stream);
	if (part)
		g_object_unref(part);
	if (msg)
		g_object_unref(msg);
	return rc;
}
