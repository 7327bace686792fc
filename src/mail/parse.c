/* parse.c: inbound mail as GMime reads it: headers, addresses, classification (reply,
 * auto-reply or report), the body part and the attachments (ingest_parse in ingest.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "mail/ingest-private.h"

/* Message ids longer than this are treated as unusable (messages.message_id is 998). */
#define MAX_ID_LEN 900
/* References kept per message: the newest ones (references_ids is a TEXT column). */
#define MAX_REFERENCES 50
/* Addresses kept per field. */
#define MAX_ADDRS 100
/* MIME nesting we descend into (GMime itself stops near 1024). */
#define MAX_DEPTH 64
/* Leaf parts looked at per message. */
#define MAX_LEAVES 10000
#define MAX_NAME 255
#define MAX_SUBJECT 8192

static void push_str(char ***list, size_t *n, char *s)
{
	*list = xrealloc(*list, (*n + 1) * sizeof **list);
	(*list)[(*n)++] = s;
}

static void free_strs(char ***list, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
}

/* A message id we can store and compare: printable ASCII without <> or spaces. */
int ingest_id_usable(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MAX_ID_LEN)
		return 0;
	for (; *id; id++)
		if ((unsigned char)*id <= 0x20 || (unsigned char)*id >= 0x7f || *id == '<' || *id == '>')
			return 0;
	return 1;
}

/* ---- GMime helpers ---- */

/* The decoded content of a leaf part; caller frees. NULL data means empty. */
unsigned char *ingest_part_bytes(GMimePart *part, size_t *len_r)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *mem;
	GByteArray *arr;
	unsigned char *out;

	*len_r = 0;
	if (!content)
		return xcalloc(1, 1);
	mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(content, mem);
	arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	out = xmalloc(arr->len + 1);
	if (arr->len)
		memcpy(out, arr->data, arr->len);
	out[arr->len] = '\0';
	*len_r = arr->len;
	g_object_unref(mem);
	return out;
}

/* The text of a text part as valid UTF-8 (charset converted by GMime). */
static char *part_text(GMimeObject *obj)
{
	char *text, *out;

	if (!GMIME_IS_TEXT_PART(obj))
		return xstrdup("");
	text = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));
	out = ingest_utf8_dup0(text);
	g_free(text);
	return out;
}

int ingest_ct_is(GMimeObject *obj, const char *type, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);

	return ct && g_mime_content_type_is_type(ct, type, subtype);
}

/* Parses an id list ("<a@b> <c@d>") and calls back with each usable id. */
static void parse_ids(const char *value, void (*cb)(void *ctx, const char *id), void *ctx)
{
	GMimeReferences *refs;

	if (!value)
		return;
	refs = g_mime_references_parse(NULL, value);
	if (!refs)
		return;
	for (int i = 0; i < g_mime_references_length(refs); i++) {
		const char *id = g_mime_references_get_message_id(refs, i);

		if (id && ingest_id_usable(id))
			cb(ctx, id);
	}
	g_mime_references_free(refs);
}

static void first_id_cb(void *ctx, const char *id)
{
	char **first = ctx;

	if (!*first)
		*first = xstrdup(id);
}

static void refs_cb(void *ctx, const char *id)
{
	struct ingest_mail *m = ctx;

	if (m->n_references == MAX_REFERENCES) {
		/* Keep the newest: drop the oldest. */
		free(m->references[0]);
		memmove(m->references, m->references + 1,
			(MAX_REFERENCES - 1) * sizeof *m->references);
		m->n_references--;
	}
	push_str(&m->references, &m->n_references, xstrdup(id));
}

static void add_addrs(InternetAddressList *list, char ***out, size_t *n, struct buf *display,
		      int depth)
{
	int count = list ? internet_address_list_length(list) : 0;

	for (int i = 0; i < count && *n < MAX_ADDRS; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_GROUP(a)) {
			if (depth < 2)
				add_addrs(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)),
					  out, n, display, depth + 1);
		} else if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
			const char *name = internet_address_get_name(a);
			char *clean;

			if (!addr || !*addr)
				continue;
			clean = ingest_utf8_dup0(addr);
			ingest_one_line(clean);
			if (display) {
				char *nm = name && *name ? ingest_utf8_dup0(name) : NULL;

				if (nm)
					ingest_one_line(nm);
				buf_printf(display, "%s%s%s%s%s", display->len ? ", " : "",
					   nm ? nm : "", nm ? " <" : "", clean, nm ? ">" : "");
				free(nm);
			}
			push_str(out, n, clean);
		}
	}
}

/* Delivered-To, X-Original-To and Envelope-To: the envelope recipient(s), every copy. */
static void add_envelope_rcpts(GMimeObject *obj, struct ingest_mail *m)
{
	GMimeHeaderList *headers = g_mime_object_get_header_list(obj);
	int count = headers ? g_mime_header_list_get_count(headers) : 0;

	for (int i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(headers, i);
		const char *name = g_mime_header_get_name(h);
		const char *value = g_mime_header_get_value(h);
		InternetAddressList *list;

		if (!name || !value || (strcasecmp(name, "Delivered-To") != 0 &&
					strcasecmp(name, "X-Original-To") != 0 &&
					strcasecmp(name, "Envelope-To") != 0))
			continue;
		list = internet_address_list_parse(NULL, value);
		if (list) {
			add_addrs(list, &m->delivered_to, &m->n_delivered_to, NULL, 0);
			g_object_unref(list);
		}
	}
}

/* ---- auto-replies (RFC 3834 and vendor markers) ---- */

static int auto_subject(const char *subject)
{
	static const char *const marks[] = {
		"automatic reply", "auto reply", "autoreply", "auto-reply", "auto response",
		"autoresponse", "out of office", "out of the office", "automatische antwort",
		"abwesenheitsnotiz", "réponse automatique", "respuesta automática",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(marks); i++)
		if (ingest_find_ci(subject, strlen(subject), marks[i]))
			return 1;
	return 0;
}

static int is_auto_reply(GMimeObject *msg, const char *subject)
{
	const char *v;

	/* RFC 3834 §5.1: anything but "no" is automatic. */
	if ((v = g_mime_object_get_header(msg, "Auto-Submitted")) != NULL) {
		char *w = ingest_first_word(v + strspn(v, " \t"));
		int automatic = *w && strcmp(w, "no") != 0;

		free(w);
		if (automatic)
			return 1;
	}
	if ((v = g_mime_object_get_header(msg, "Precedence")) != NULL) {
		char *w = ingest_first_word(v + strspn(v, " \t"));
		int bulk = strcmp(w, "bulk") == 0 || strcmp(w, "junk") == 0 ||
			   strcmp(w, "list") == 0 || strcmp(w, "auto_reply") == 0;

		free(w);
		if (bulk)
			return 1;
	}
	if (g_mime_object_get_header(msg, "X-Autoreply") ||
	    g_mime_object_get_header(msg, "X-Autorespond"))
		return 1;
	/* Exchange: X-Auto-Response-Suppress alone is a request to others, not a marker. */
	if ((g_mime_object_get_header(msg, "X-MS-Exchange-Inbox-Rules-Loop") ||
	     g_mime_object_get_header(msg, "X-Auto-Response-Suppress")) &&
	    auto_subject(subject))
		return 1;
	return 0;
}

/* ---- the MIME tree: body and attachments ---- */

struct walk {
	GMimeObject *leaves[MAX_LEAVES]; /* leaf parts and attached messages, document order */
	size_t n;
};

static void walk_tree(GMimeObject *obj, int depth, struct walk *w)
{
	if (!obj || depth > MAX_DEPTH || w->n == MAX_LEAVES)
		return;
	if (GMIME_IS_MULTIPART(obj)) {
		int count = g_mime_multipart_get_count(GMIME_MULTIPART(obj));

		for (int i = 0; i < count; i++)
			walk_tree(g_mime_multipart_get_part(GMIME_MULTIPART(obj), i), depth + 1, w);
	} else if (GMIME_IS_PART(obj) || GMIME_IS_MESSAGE_PART(obj)) {
		w->leaves[w->n++] = obj;
	}
}

/* A file name to show: the last path element, no control characters, ≤ 255 bytes. */
static char *safe_name(const char *raw)
{
	char *name = ingest_utf8_dup0(raw), *base = name, *w, *out;
	const char *t;
	size_t tl;

	for (char *p = name; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	w = base;
	for (unsigned char *r = (unsigned char *)base; *r; r++) {
		if (*r < 0x20 || *r == 0x7f)
			continue;
		if (r[0] == 0xc2 && r[1] >= 0x80 && r[1] <= 0x9f) { /* C1 controls */
			r++;
			continue;
		}
		*w++ = (char)*r;
	}
	*w = '\0';
	util_trim(base, strlen(base), &t, &tl);
	tl = util_utf8_cut(t, tl, MAX_NAME);
	while (tl > 0 && (t[tl - 1] == ' ' || t[tl - 1] == '.'))
		tl--;
	if (tl == 0)
		out = xstrdup("attachment");
	else
		out = xstrndup(t, tl);
	free(name);
	return out;
}

static char *content_type_string(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *type = ct ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
	char *s;

	if (!type || !sub || !*type || !*sub)
		return xstrdup("application/octet-stream");
	s = xasprintf("%s/%s", type, sub);
	ingest_lower_ascii(s);
	for (char *p = s; *p; p++)
		if (!(g_ascii_isalnum(*p) || strchr("!#$&^_.+-/", *p)))
			*p = '_';
	/* Cutting would leave a type without its subtype: too long is simply unknown. */
	if (strlen(s) > 127) {
		free(s);
		return xstrdup("application/octet-stream");
	}
	return s;
}

static void add_attachment(struct ingest_mail *m, GMimeObject *obj, const char *filename,
			   const char *fallback)
{
	struct ingest_attachment *a;
	unsigned char digest[32];

	if (m->n_attachments == INGEST_MAX_ATTACHMENTS) {
		m->n_attachments_dropped++;
		return;
	}
	m->attachments = xrealloc(m->attachments, (m->n_attachments + 1) * sizeof *m->attachments);
	a = &m->attachments[m->n_attachments++];
	memset(a, 0, sizeof *a);
	a->name = safe_name(filename ? filename : fallback);
	a->content_type = content_type_string(obj);
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		GMimeStream *mem = g_mime_stream_mem_new();
		GByteArray *arr;

		if (inner)
			g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
		arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		a->data = xmalloc(arr->len + 1);
		if (arr->len)
			memcpy(a->data, arr->data, arr->len);
		a->data[arr->len] = '\0';
		a->size = arr->len;
		g_object_unref(mem);
	} else {
		a->data = ingest_part_bytes(GMIME_PART(obj), &a->size);
	}
	util_sha256(a->data, a->size, digest);
	util_hex(digest, sizeof digest, a->sha256);
}

/* Chooses the body text and collects the attachments of a non-report message. */
static void read_parts(GMimeObject *top, struct ingest_mail *m, char **text_r, int *html_r)
{
	struct walk *w = xcalloc(1, sizeof *w);
	GMimeObject *plain = NULL, *html = NULL, *weak = NULL, *body;

	walk_tree(top, 0, w);
	for (size_t i = 0; i < w->n; i++) {
		GMimeObject *o = w->leaves[i];

		if (!GMIME_IS_PART(o))
			continue;
		if (!g_mime_part_is_attachment(GMIME_PART(o)) && !g_mime_part_get_filename(GMIME_PART(o))) {
			if (!plain && ingest_ct_is(o, "text", "plain"))
				plain = o;
			else if (!html && ingest_ct_is(o, "text", "html"))
				html = o;
		} else if (!weak && !g_mime_part_is_attachment(GMIME_PART(o)) &&
			   (ingest_ct_is(o, "text", "plain") || ingest_ct_is(o, "text", "html"))) {
			/* Some mailers name their only text part; it is still the body. */
			weak = o;
		}
	}
	body = plain ? plain : html ? html : weak;
	*html_r = body && ingest_ct_is(body, "text", "html");
	*text_r = body ? part_text(body) : xstrdup("");
	for (size_t i = 0; i < w->n; i++) {
		GMimeObject *o = w->leaves[i];

		if (o == body)
			continue;
		if (GMIME_IS_MESSAGE_PART(o)) {
			GMimeContentDisposition *disp = g_mime_object_get_content_disposition(o);
			const char *fn = disp ? g_mime_content_disposition_get_parameter(disp, "filename")
					      : NULL;

			if (!fn)
				fn = g_mime_object_get_content_type_parameter(o, "name");
			if (fn || (disp && g_mime_content_disposition_is_attachment(disp)))
				add_attachment(m, o, fn, "message.eml");
			continue;
		}
		{
			GMimePart *p = GMIME_PART(o);
			const char *fn = g_mime_part_get_filename(p);

			/* Inline text alternatives are not attachments; anything else is. */
			if (fn || g_mime_part_is_attachment(p) || !ingest_ct_is(o, "text", "*"))
				add_attachment(m, o, fn, "attachment");
		}
	}
	free(w);
}

static char *synthesised_id(const char *raw, size_t len)
{
	unsigned char digest[32];
	char hex[65];

	util_sha256(raw, len, digest);
	util_hex(digest, sizeof digest, hex);
	return xasprintf("missing-%s@offload.invalid", hex);
}

void ingest_mail_free(struct ingest_mail *m)
{
	if (!m)
		return;
	free(m->message_id);
	free(m->in_reply_to);
	free_strs(&m->references, &m->n_references);
	free(m->from_addr);
	free(m->from_name);
	free_strs(&m->to_addrs, &m->n_to);
	free_strs(&m->cc_addrs, &m->n_cc);
	free_strs(&m->delivered_to, &m->n_delivered_to);
	free(m->to_display);
	free(m->subject);
	free(m->body_text);
	free(m->quoted_text);
	free(m->original_message_id);
	free(m->diagnostic);
	free(m->report_recipient);
	free(m->report_status);
	free(m->feedback_type);
	for (size_t i = 0; i < m->n_attachments; i++) {
		free(m->attachments[i].name);
		free(m->attachments[i].content_type);
		free(m->attachments[i].data);
	}
	free(m->attachments);
	memset(m, 0, sizeof *m);
}

static void first_mailbox(InternetAddressList *list, struct ingest_mail *m, int depth)
{
	int count = list ? internet_address_list_length(list) : 0;

	for (int i = 0; i < count && !m->from_addr; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_GROUP(a) && depth < 2) {
			first_mailbox(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), m,
				      depth + 1);
		} else if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
			const char *name = internet_address_get_name(a);

			if (!addr || !*addr)
				continue;
			m->from_addr = ingest_utf8_dup0(addr);
			ingest_one_line(m->from_addr);
			ingest_cut_in_place(m->from_addr, 320);
			if (name && *name) {
				m->from_name = ingest_utf8_dup0(name);
				ingest_one_line(m->from_name);
				ingest_cut_in_place(m->from_name, 160);
			}
		}
	}
}

int ingest_parse(const char *raw, size_t len, struct ingest_mail *out, const char **error_r)
{
	GMimeStream *stream = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *msg = NULL;
	GMimeObject *top, *text_part = NULL;
	GMimeContentType *ct;
	GDateTime *date;
	const char *id, *report_type;
	char *text = NULL, *norm = NULL;
	struct buf display;
	int html = 0, rc = -1;

	memset(out, 0, sizeof *out);
	if (!raw || len == 0) {
		*error_r = "empty input";
		return -1;
	}
	if (len > (size_t)G_MAXSSIZE) {
		*error_r = "input too large";
		return -1;
	}
	stream = g_mime_stream_mem_new_with_buffer(raw, len);
	parser = g_mime_parser_new_with_stream(stream);
	msg = g_mime_parser_construct_message(parser, NULL);
	if (!msg) {
		*error_r = "not a mail message (no header)";
		goto out;
	}
	first_mailbox(g_mime_message_get_from(msg), out, 0);
	if (!out->from_addr) {
		*error_r = "not a mail message (no From mailbox)";
		goto out;
	}

	id = g_mime_message_get_message_id(msg);
	if (id && ingest_id_usable(id)) {
		out->message_id = xstrdup(id);
	} else {
		out->message_id = synthesised_id(raw, len);
		out->message_id_synthesised = 1;
	}
	parse_ids(g_mime_object_get_header(GMIME_OBJECT(msg), "In-Reply-To"), first_id_cb,
		  &out->in_reply_to);
	parse_ids(g_mime_object_get_header(GMIME_OBJECT(msg), "References"), refs_cb, out);

	buf_init(&display, MAX_ADDR_FIELD * 4);
	buf_puts(&display, "");
	add_addrs(g_mime_message_get_to(msg), &out->to_addrs, &out->n_to, &display, 0);
	out->to_display = display.data;
	ingest_cut_in_place(out->to_display, MAX_ADDR_FIELD);
	add_addrs(g_mime_message_get_cc(msg), &out->cc_addrs, &out->n_cc, NULL, 0);
	add_envelope_rcpts(GMIME_OBJECT(msg), out);

	out->subject = ingest_utf8_dup0(g_mime_message_get_subject(msg));
	ingest_one_line(out->subject);
	ingest_cut_in_place(out->subject, MAX_SUBJECT);
	date = g_mime_message_get_date(msg);
	if (date)
		out->date_ms = (int64_t)g_date_time_to_unix(date) * 1000;

	top = g_mime_message_get_mime_part(msg);
	ct = top ? g_mime_object_get_content_type(top) : NULL;
	report_type = ct ? g_mime_content_type_get_parameter(ct, "report-type") : NULL;
	if (top && GMIME_IS_MULTIPART(top) && ingest_ct_is(top, "multipart", "report") && report_type &&
	    (strcasecmp(report_type, "delivery-status") == 0 ||
	     strcasecmp(report_type, "global-delivery-status") == 0 ||
	     strcasecmp(report_type, "feedback-report") == 0)) {
		/* Reports first: bounces carry Auto-Submitted too (RFC 3464 §2). */
		text_part = ingest_read_report(GMIME_MULTIPART(top), report_type, out);
		{
			struct ingest_mail scratch = { 0 };

			/* The human-readable part only; a report's attachments are not kept. */
			read_parts(text_part, &scratch, &text, &html);
			ingest_mail_free(&scratch);
		}
	} else {
		/* Other reports (read receipts, RFC 8098) are machine-made: auto replies. */
		if (is_auto_reply(GMIME_OBJECT(msg), out->subject) ||
		    (top && ingest_ct_is(top, "multipart", "report")))
			out->kind = INGEST_KIND_AUTO_REPLY;
		else
			out->kind = INGEST_KIND_REPLY;
		read_parts(top, out, &text, &html);
	}

	if (html) {
		char *plain = ingest_html_to_text(text, strlen(text));
		char *n1 = ingest_text_normalise(plain);

		norm = ingest_tidy_lines(n1, 1);
		free(plain);
		free(n1);
	} else {
		char *n1 = ingest_text_normalise(text);

		norm = ingest_tidy_lines(n1, 0);
		free(n1);
	}
	ingest_split_quoted(norm, &out->body_text, &out->quoted_text);
	ingest_cut_in_place(out->body_text, INGEST_MAX_TEXT);
	if (out->quoted_text)
		ingest_cut_in_place(out->quoted_text, INGEST_MAX_TEXT);
	rc = 0;
out:
	free(text);
	free(norm);
	if (msg)
		g_object_unref(msg);
	if (parser)
		g_object_unref(parser);
	if (stream)
		g_object_unref(stream);
	if (rc < 0)
		ingest_mail_free(out);
	return rc;
}
