/* ingest.c: inbound mail: GMime parsing, classification (reply, auto-reply, DSN, ARF),
 * text extraction, matching to a case and storing the message, its attachments and event.
 * Over 900 lines on purpose for now: the split along its seams (text handling, reports,
 * MIME parsing, matching, file writing) is issue 13, scheduled after this round moved its
 * SQL into src/store/messages.c and added the bounce-tag and Authentication-Results hooks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <json-c/json.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/ingest.h"
#include "mail/authres.h"
#include "mail/verp.h"
#include "store/messages.h"

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
#define MAX_ADDR_FIELD 512
#define MAX_DIAGNOSTIC 2000

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

/* ---- strings ---- */

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	len = max;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	return len;
}

/*
 * A newly allocated valid UTF-8 copy of len bytes. Bytes that are not UTF-8 are read as
 * Windows-1252 (what undeclared 8-bit mail nearly always is), else replaced by U+FFFD.
 * NUL bytes are dropped.
 */
static char *utf8_dup(const char *s, size_t len)
{
	char *clean = xmalloc(len + 1), *out;
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (s[i] != '\0')
			clean[n++] = s[i];
	clean[n] = '\0';
	if (g_utf8_validate(clean, (gssize)n, NULL))
		return clean;
	{
		gchar *conv = g_convert(clean, (gssize)n, "UTF-8", "WINDOWS-1252", NULL, NULL, NULL);

		if (conv && g_utf8_validate(conv, -1, NULL)) {
			out = xstrdup(conv);
		} else {
			gchar *valid = g_utf8_make_valid(clean, (gssize)n);

			out = xstrdup(valid);
			g_free(valid);
		}
		g_free(conv);
	}
	free(clean);
	return out;
}

static char *utf8_dup0(const char *s)
{
	return s ? utf8_dup(s, strlen(s)) : xstrdup("");
}

/* Replaces control characters (C0, DEL, C1) by spaces; for one-line fields. */
static void one_line(char *s)
{
	unsigned char *p = (unsigned char *)s;

	for (; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			p[0] = ' ', p[1] = ' ';
	}
}

/* Cuts s in place to at most max bytes at a character boundary. */
static void cut_in_place(char *s, size_t max)
{
	s[utf8_cut(s, strlen(s), max)] = '\0';
}

static char *trim_dup(const char *s, size_t len)
{
	const char *t;
	size_t tl;

	util_trim(s, len, &t, &tl);
	return xstrndup(t, tl);
}

static void lower_ascii(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static int starts_with_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* ASCII-case-insensitive search of needle in the first len bytes of hay. */
static const char *find_ci(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return hay + i;
	return NULL;
}

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
static int id_usable(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MAX_ID_LEN)
		return 0;
	for (; *id; id++)
		if ((unsigned char)*id <= 0x20 || (unsigned char)*id >= 0x7f || *id == '<' || *id == '>')
			return 0;
	return 1;
}

/* ---- text: line endings, HTML, quoted history ---- */

/* CRLF and lone CR become LF; C0 controls other than TAB and LF are dropped. */
static char *text_normalise(const char *s)
{
	size_t len = strlen(s), n = 0;
	char *out = xmalloc(len + 1);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r') {
			out[n++] = '\n';
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
		} else if (c >= 0x20 || c == '\t' || c == '\n') {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return out;
}

struct html_out {
	struct buf b;
	int line_start;    /* nothing visible since the last newline */
	int pending_space; /* collapsed whitespace waiting for the next visible character */
	int pre;           /* inside <pre>: whitespace is kept */
};

static void html_put(struct html_out *h, const char *s, size_t n)
{
	if (h->pending_space && !h->line_start)
		buf_append(&h->b, " ", 1);
	h->pending_space = 0;
	buf_append(&h->b, s, n);
	h->line_start = 0;
}

static void html_newline(struct html_out *h)
{
	buf_append(&h->b, "\n", 1);
	h->line_start = 1;
	h->pending_space = 0;
}

/* A block boundary: a newline unless we are at the start of a line already. */
static void html_block(struct html_out *h)
{
	if (!h->line_start)
		html_newline(h);
}

static void html_space(struct html_out *h, char c)
{
	if (h->pre) {
		if (c == '\n')
			html_newline(h);
		else if (c != '\r')
			html_put(h, " ", 1);
		return;
	}
	h->pending_space = 1;
}

/* A visible space (&nbsp;): keeps an otherwise empty paragraph as a blank line. */
static void html_nbsp(struct html_out *h)
{
	html_put(h, " ", 1);
}

static void html_codepoint(struct html_out *h, gunichar cp)
{
	/* HTML5 §13.2.5.80: numeric references to C1 controls mean Windows-1252. */
	static const gunichar c1[32] = {
		0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
		0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
		0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
		0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178,
	};
	char u[8];
	int n;

	if (cp >= 0x80 && cp <= 0x9f)
		cp = c1[cp - 0x80];
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f') {
		html_space(h, (char)cp);
		return;
	}
	if (cp < 0x20 || cp == 0x7f)
		return;
	if (cp == 0xa0) {
		html_nbsp(h);
		return;
	}
	if (cp == 0xad || cp == 0x200b) /* soft hyphen, zero width space */
		return;
	n = g_unichar_to_utf8(cp, u);
	html_put(h, u, (size_t)n);
}

static const struct {
	const char *name;
	gunichar cp;
} html_entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
	{ "nbsp", 0xa0 }, { "shy", 0xad }, { "copy", 0xa9 }, { "reg", 0xae },
	{ "trade", 0x2122 }, { "hellip", 0x2026 }, { "mdash", 0x2014 }, { "ndash", 0x2013 },
	{ "lsquo", 0x2018 }, { "rsquo", 0x2019 }, { "sbquo", 0x201a }, { "ldquo", 0x201c },
	{ "rdquo", 0x201d }, { "bdquo", 0x201e }, { "laquo", 0xab }, { "raquo", 0xbb },
	{ "bull", 0x2022 }, { "middot", 0xb7 }, { "euro", 0x20ac }, { "pound", 0xa3 },
	{ "yen", 0xa5 }, { "cent", 0xa2 }, { "sect", 0xa7 }, { "para", 0xb6 }, { "deg", 0xb0 },
	{ "plusmn", 0xb1 }, { "times", 0xd7 }, { "divide", 0xf7 }, { "frac12", 0xbd },
	{ "zwnj", 0x200c }, { "zwj", 0x200d }, { "ensp", 0x2002 }, { "emsp", 0x2003 },
	{ "thinsp", 0x2009 }, { "iexcl", 0xa1 }, { "iquest", 0xbf }, { "szlig", 0xdf },
	{ "agrave", 0xe0 }, { "aacute", 0xe1 }, { "acirc", 0xe2 }, { "atilde", 0xe3 },
	{ "auml", 0xe4 }, { "aring", 0xe5 }, { "aelig", 0xe6 }, { "ccedil", 0xe7 },
	{ "egrave", 0xe8 }, { "eacute", 0xe9 }, { "ecirc", 0xea }, { "euml", 0xeb },
	{ "igrave", 0xec }, { "iacute", 0xed }, { "icirc", 0xee }, { "iuml", 0xef },
	{ "ntilde", 0xf1 }, { "ograve", 0xf2 }, { "oacute", 0xf3 }, { "ocirc", 0xf4 },
	{ "otilde", 0xf5 }, { "ouml", 0xf6 }, { "oslash", 0xf8 }, { "ugrave", 0xf9 },
	{ "uacute", 0xfa }, { "ucirc", 0xfb }, { "uuml", 0xfc }, { "yacute", 0xfd },
	{ "yuml", 0xff }, { "Agrave", 0xc0 }, { "Aacute", 0xc1 }, { "Acirc", 0xc2 },
	{ "Auml", 0xc4 }, { "Aring", 0xc5 }, { "Ccedil", 0xc7 }, { "Egrave", 0xc8 },
	{ "Eacute", 0xc9 }, { "Ntilde", 0xd1 }, { "Ouml", 0xd6 }, { "Oslash", 0xd8 },
	{ "Uuml", 0xdc },
};

/* Decodes the reference at in[i] == '&'; returns the index after it. */
static size_t html_entity(struct html_out *h, const char *in, size_t len, size_t i)
{
	size_t j = i + 1;

	if (j < len && in[j] == '#') {
		gunichar cp = 0;
		int hex = 0, digits = 0;

		j++;
		if (j < len && (in[j] == 'x' || in[j] == 'X')) {
			hex = 1;
			j++;
		}
		for (; j < len && digits < 8; j++, digits++) {
			int d = g_ascii_xdigit_value(in[j]);

			if (d < 0 || (!hex && d > 9))
				break;
			cp = cp * (hex ? 16 : 10) + (gunichar)d;
		}
		if (digits == 0) {
			html_put(h, "&", 1);
			return i + 1;
		}
		/* More digits than we read: the number is too large to be a character. */
		while (j < len && g_ascii_isxdigit(in[j])) {
			cp = 0x110000;
			j++;
		}
		if (j < len && in[j] == ';')
			j++;
		html_codepoint(h, cp);
		return j;
	}
	{
		char name[12];
		size_t n = 0;

		while (j < len && n < sizeof name - 1 && g_ascii_isalnum(in[j]))
			name[n++] = in[j++];
		name[n] = '\0';
		if (n > 0 && j < len && in[j] == ';') {
			for (size_t k = 0; k < G_N_ELEMENTS(html_entities); k++) {
				if (strcmp(html_entities[k].name, name) == 0) {
					html_codepoint(h, html_entities[k].cp);
					return j + 1;
				}
			}
		}
	}
	html_put(h, "&", 1);
	return i + 1;
}

static int html_is_block(const char *name)
{
	static const char *const blocks[] = {
		"p", "div", "tr", "table", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4",
		"h5", "h6", "blockquote", "hr", "section", "article", "header", "footer", "address",
		"center", "form", "fieldset", "caption", "nav", "aside", "main", "figure",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++)
		if (strcmp(name, blocks[i]) == 0)
			return 1;
	return 0;
}

/* Index after the '>' that closes the tag starting at i (quotes respected), or len. */
static size_t html_tag_end(const char *in, size_t len, size_t i)
{
	char quote = 0;

	for (; i < len; i++) {
		if (quote) {
			if (in[i] == quote)
				quote = 0;
		} else if (in[i] == '"' || in[i] == '\'') {
			quote = in[i];
		} else if (in[i] == '>') {
			return i + 1;
		}
	}
	return len;
}

/*
 * Converts HTML to plain text: script, style, title and head are dropped, tags removed,
 * <br> and block elements become line breaks, entities are decoded, whitespace collapses
 * as a browser would. A small converter on purpose: mail HTML is only read, never shown.
 */
static char *html_to_text(const char *in, size_t len)
{
	struct html_out h = { .line_start = 1 };
	int in_head = 0;
	size_t i = 0;

	/* Every construct produces at most as many bytes as it consumes. */
	buf_init(&h.b, len + 16);
	buf_puts(&h.b, "");
	while (i < len) {
		char c = in[i];

		if (c == '<' && i + 1 < len &&
		    (in[i + 1] == '!' || in[i + 1] == '?' || in[i + 1] == '/' ||
		     g_ascii_isalpha(in[i + 1]))) {
			char name[16];
			size_t n = 0, j = i + 1, end;
			int closing = 0;

			if (len - i >= 4 && memcmp(in + i, "<!--", 4) == 0) {
				const char *e = g_strstr_len(in + i + 4, (gssize)(len - i - 4), "-->");

				i = e ? (size_t)(e - in) + 3 : len;
				continue;
			}
			if (in[j] == '!' || in[j] == '?') {
				i = html_tag_end(in, len, j);
				continue;
			}
			if (in[j] == '/') {
				closing = 1;
				j++;
			}
			while (j < len && (g_ascii_isalnum(in[j]) || in[j] == ':' || in[j] == '-' ||
					   in[j] == '_')) {
				if (n < sizeof name - 1)
					name[n++] = g_ascii_tolower(in[j]);
				j++;
			}
			name[n] = '\0';
			end = html_tag_end(in, len, j);
			if (!closing && (strcmp(name, "script") == 0 || strcmp(name, "style") == 0 ||
					 strcmp(name, "title") == 0)) {
				char close[24];
				const char *e;

				snprintf(close, sizeof close, "</%s", name);
				e = find_ci(in + end, len - end, close);
				i = e ? html_tag_end(in, len, (size_t)(e - in) + 2) : len;
				continue;
			}
			i = end;
			if (strcmp(name, "head") == 0) {
				in_head = !closing;
			} else if (strcmp(name, "body") == 0) {
				in_head = 0;
			} else if (in_head) {
				continue;
			} else if (strcmp(name, "br") == 0) {
				html_newline(&h);
			} else if (strcmp(name, "li") == 0) {
				html_block(&h);
				if (!closing)
					html_put(&h, "- ", 2);
			} else if (strcmp(name, "pre") == 0) {
				html_block(&h);
				h.pre = closing ? 0 : 1;
			} else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0) {
				if (closing)
					h.pending_space = 1;
			} else if (html_is_block(name)) {
				html_block(&h);
			}
			continue;
		}
		if (in_head) {
			i++;
			continue;
		}
		if (c == '&') {
			i = html_entity(&h, in, len, i);
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
			html_space(&h, c);
			i++;
			continue;
		}
		if ((unsigned char)c == 0xc2 && i + 1 < len && (unsigned char)in[i + 1] == 0xa0) {
			html_nbsp(&h);
			i += 2;
			continue;
		}
		html_put(&h, &in[i], 1);
		i++;
	}
	return h.b.data;
}

/*
 * Strips trailing blanks from every line and, when collapse is set, squeezes runs of blank
 * lines into one (HTML paragraphs and spacer paragraphs would otherwise pile them up).
 */
static char *tidy_lines(const char *s, int collapse)
{
	size_t len = strlen(s), n = 0;
	char *out = xmalloc(len + 1);
	int blank_run = 0;
	const char *p = s, *end = s + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l;

		if (!eol)
			eol = end;
		l = (size_t)(eol - p);
		while (l > 0 && (p[l - 1] == ' ' || p[l - 1] == '\t'))
			l--;
		if (l == 0) {
			blank_run++;
			if (!collapse || blank_run == 1)
				out[n++] = '\n';
		} else {
			blank_run = 0;
			memcpy(out + n, p, l);
			n += l;
			if (eol < end)
				out[n++] = '\n';
		}
		p = eol + 1;
	}
	out[n] = '\0';
	return out;
}

struct line {
	const char *s; /* trimmed start */
	size_t len;    /* trimmed length */
	size_t off;    /* offset of the untrimmed line in the text */
};

static struct line line_at(const char *t, size_t len, size_t off, size_t *next_r)
{
	const char *eol = memchr(t + off, '\n', len - off);
	size_t end = eol ? (size_t)(eol - t) : len;
	struct line l = { .off = off };

	util_trim(t + off, end - off, &l.s, &l.len);
	*next_r = eol ? end + 1 : len;
	return l;
}

/* "On Mon, 2 Mar 2026 at 09:00, Sam <sam@x> wrote:", possibly wrapped over three lines. */
static int is_attribution(const char *t, size_t len, struct line first, size_t next)
{
	static const char *const starts[] = { "On ", "Le ", "Am ", "El ", "Il ", "Op " };
	static const char *const verbs[] = { " wrote", " a écrit", " schrieb", " escribió",
					     " ha scritto", " schreef" };
	char joined[1024];
	size_t n = 0;
	int ok = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(starts); i++)
		ok |= first.len > 3 && strncmp(first.s, starts[i], 3) == 0;
	if (!ok)
		return 0;
	for (int k = 0; k < 3; k++) {
		size_t room, take;

		if (n)
			joined[n++] = ' ';
		room = sizeof joined - 1 - n; /* n ≤ 2 + 2 * 340 here: never negative */
		take = first.len < room ? first.len : room;
		if (take > 340)
			take = 340;
		memcpy(joined + n, first.s, take);
		n += take;
		joined[n] = '\0';
		if (n > 0 && joined[n - 1] == ':') {
			for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
				if (find_ci(joined, n, verbs[i]))
					return 1;
			return 0;
		}
		if (next >= len)
			return 0;
		first = line_at(t, len, next, &next);
		if (first.len == 0)
			return 0;
	}
	return 0;
}

static int is_original_separator(struct line l)
{
	static const char *const phrases[] = {
		"Original Message", "Forwarded message", "Ursprüngliche Nachricht",
		"Message d'origine", "Mensaje original", "Messaggio originale",
	};

	if (l.len < 3 || strncmp(l.s, "---", 3) != 0)
		return 0;
	for (size_t i = 0; i < G_N_ELEMENTS(phrases); i++)
		if (find_ci(l.s, l.len, phrases[i]))
			return 1;
	return 0;
}

/* Outlook's header block: "From: …" with "Sent: …" (or Date:) within the next lines. */
static int is_outlook_header(const char *t, size_t len, struct line l, size_t next)
{
	static const char *const from[] = { "From:", "Von:", "De :", "De:" };
	static const char *const sent[] = { "Sent:", "Date:", "Gesendet:", "Envoyé :",
					    "Envoyé:", "Enviado:" };
	int ok = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(from); i++)
		ok |= l.len >= strlen(from[i]) && starts_with_ci(l.s, from[i]);
	if (!ok)
		return 0;
	for (int k = 0; k < 4 && next < len; k++) {
		struct line m = line_at(t, len, next, &next);

		for (size_t i = 0; i < G_N_ELEMENTS(sent); i++)
			if (m.len >= strlen(sent[i]) && starts_with_ci(m.s, sent[i]))
				return 1;
	}
	return 0;
}

static int is_rule_line(struct line l)
{
	size_t n = 0;

	if (l.len < 10)
		return 0;
	for (size_t i = 0; i < l.len; i++)
		n += l.s[i] == '_' || l.s[i] == '-';
	return n == l.len;
}

/* The offset where quoted history begins, or len when there is none. */
static size_t quote_start(const char *t, size_t len)
{
	struct line prev = { 0 };
	int have_prev = 0;
	size_t off = 0;

	while (off < len) {
		size_t next;
		struct line l = line_at(t, len, off, &next);

		if (t[off] == '>' || is_attribution(t, len, l, next) || is_original_separator(l))
			return off;
		if (is_outlook_header(t, len, l, next))
			return have_prev && is_rule_line(prev) ? prev.off : off;
		if (l.len > 0) {
			prev = l;
			have_prev = 1;
		}
		off = next;
	}
	return len;
}

/* Splits normalised text into the new part and the quoted history (or NULL). */
static void split_quoted(const char *t, char **body_r, char **quoted_r)
{
	size_t len = strlen(t), cut = quote_start(t, len);
	const char *b;
	size_t bl;

	util_trim(t, cut, &b, &bl);
	if (cut == len || bl == 0) {
		/* No history, or nothing before it (an interleaved reply): keep it all. */
		*body_r = trim_dup(t, len);
		*quoted_r = NULL;
		return;
	}
	*body_r = xstrndup(b, bl);
	*quoted_r = trim_dup(t + cut, len - cut);
	if (**quoted_r == '\0') {
		free(*quoted_r);
		*quoted_r = NULL;
	}
}

/* ---- GMime helpers ---- */

/* The decoded content of a leaf part; caller frees. NULL data means empty. */
static unsigned char *part_bytes(GMimePart *part, size_t *len_r)
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
	out = utf8_dup0(text);
	g_free(text);
	return out;
}

static int ct_is(GMimeObject *obj, const char *type, const char *subtype)
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

		if (id && id_usable(id))
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
			clean = utf8_dup0(addr);
			one_line(clean);
			if (display) {
				char *nm = name && *name ? utf8_dup0(name) : NULL;

				if (nm)
					one_line(nm);
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
	char *text = utf8_dup(raw, len), *norm = text_normalise(text);
	size_t nb = 0, tl = strlen(norm), off = 0;
	struct field_block *cur = NULL;

	free(text);
	while (off < tl) {
		size_t next;
		struct line l = line_at(norm, tl, off, &next);
		const char *colon;

		if (l.len == 0) {
			cur = NULL;
		} else if ((norm[off] == ' ' || norm[off] == '\t') && cur && cur->n > 0) {
			char *v = xasprintf("%s %.*s", cur->values[cur->n - 1],
					    (int)(l.len > 4096 ? 4096 : l.len), l.s);

			cut_in_place(v, 4096);
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
				cur->names[cur->n] = trim_dup(l.s, (size_t)(colon - l.s));
				cur->values[cur->n] = trim_dup(colon + 1,
							       l.len - (size_t)(colon + 1 - l.s));
				cut_in_place(cur->names[cur->n], 200);
				cut_in_place(cur->values[cur->n], 4096);
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

	return trim_dup(a, strlen(a));
}

/* The first word of a field value, lower case, without comments: "failed (x)" → "failed". */
static char *first_word(const char *v)
{
	size_t n = strcspn(v, " \t(;");
	char *w = xstrndup(v, n);

	lower_ascii(w);
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
		if (id && id_usable(id))
			out = xstrdup(id);
	} else if (GMIME_IS_PART(part) && (ct_is(part, "text", "rfc822-headers") ||
					    ct_is(part, "message", "global-headers") ||
					    ct_is(part, "message", "rfc822") ||
					    ct_is(part, "message", "global"))) {
		size_t len;
		unsigned char *bytes = part_bytes(GMIME_PART(part), &len);
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
		if (id && id_usable(id))
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
static GMimeObject *read_report(GMimeMultipart *report, const char *report_type,
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
		if (is_dsn && (ct_is(part, "message", "delivery-status") ||
			       ct_is(part, "message", "global-delivery-status"))) {
			const struct field_block *failed = NULL, *first = NULL;
			struct buf d;

			bytes = part_bytes(GMIME_PART(part), &len);
			nb = parse_field_blocks((const char *)bytes, len, blocks);
			free(bytes);
			/* RFC 3464 §2.3.3: Action is per recipient; only "failed" is a bounce. */
			for (size_t b = 1; b < nb; b++) {
				const char *action = block_get(&blocks[b], "Action");
				char *w = action ? first_word(action) : NULL;

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
				m->report_status = status ? first_word(status) : NULL;
				buf_init(&d, 4 * 4096 + 1024);
				buf_puts(&d, m->report_recipient ? m->report_recipient : "(unknown recipient)");
				if (action && m->kind != INGEST_KIND_DSN)
					buf_printf(&d, ": action %s", action);
				if (m->report_status)
					buf_printf(&d, ": status %s", m->report_status);
				if (code)
					buf_printf(&d, ": %s", code);
				m->diagnostic = d.data;
				cut_in_place(m->diagnostic, MAX_DIAGNOSTIC);
			}
			blocks_free(blocks, nb);
		} else if (!is_dsn && ct_is(part, "message", "feedback-report") && !m->feedback_type &&
			   !m->diagnostic) {
			struct buf d;
			const char *ft;

			bytes = part_bytes(GMIME_PART(part), &len);
			nb = parse_field_blocks((const char *)bytes, len, blocks);
			free(bytes);
			if (nb > 0) {
				ft = block_get(&blocks[0], "Feedback-Type");
				m->feedback_type = ft ? first_word(ft) : NULL;
				buf_init(&d, 7 * 4096 + 1024);
				buf_puts(&d, "");
				append_field(&d, &blocks[0], "Feedback-Type");
				append_field(&d, &blocks[0], "User-Agent");
				append_field(&d, &blocks[0], "Original-Mail-From");
				append_field(&d, &blocks[0], "Original-Rcpt-To");
				append_field(&d, &blocks[0], "Source-IP");
				append_field(&d, &blocks[0], "Reported-Domain");
				m->diagnostic = d.data;
				cut_in_place(m->diagnostic, MAX_DIAGNOSTIC);
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

/* ---- auto-replies (RFC 3834 and vendor markers) ---- */

static int auto_subject(const char *subject)
{
	static const char *const marks[] = {
		"automatic reply", "auto reply", "autoreply", "auto-reply", "auto response",
		"autoresponse", "out of office", "out of the office", "automatische antwort",
		"abwesenheitsnotiz", "réponse automatique", "respuesta automática",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(marks); i++)
		if (find_ci(subject, strlen(subject), marks[i]))
			return 1;
	return 0;
}

static int is_auto_reply(GMimeObject *msg, const char *subject)
{
	const char *v;

	/* RFC 3834 §5.1: anything but "no" is automatic. */
	if ((v = g_mime_object_get_header(msg, "Auto-Submitted")) != NULL) {
		char *w = first_word(v + strspn(v, " \t"));
		int automatic = *w && strcmp(w, "no") != 0;

		free(w);
		if (automatic)
			return 1;
	}
	if ((v = g_mime_object_get_header(msg, "Precedence")) != NULL) {
		char *w = first_word(v + strspn(v, " \t"));
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
	char *name = utf8_dup0(raw), *base = name, *w, *out;
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
	tl = utf8_cut(t, tl, MAX_NAME);
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
	lower_ascii(s);
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
		a->data = part_bytes(GMIME_PART(obj), &a->size);
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
			if (!plain && ct_is(o, "text", "plain"))
				plain = o;
			else if (!html && ct_is(o, "text", "html"))
				html = o;
		} else if (!weak && !g_mime_part_is_attachment(GMIME_PART(o)) &&
			   (ct_is(o, "text", "plain") || ct_is(o, "text", "html"))) {
			/* Some mailers name their only text part; it is still the body. */
			weak = o;
		}
	}
	body = plain ? plain : html ? html : weak;
	*html_r = body && ct_is(body, "text", "html");
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
			if (fn || g_mime_part_is_attachment(p) || !ct_is(o, "text", "*"))
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
			m->from_addr = utf8_dup0(addr);
			one_line(m->from_addr);
			cut_in_place(m->from_addr, 320);
			if (name && *name) {
				m->from_name = utf8_dup0(name);
				one_line(m->from_name);
				cut_in_place(m->from_name, 160);
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
	if (id && id_usable(id)) {
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
	cut_in_place(out->to_display, MAX_ADDR_FIELD);
	add_addrs(g_mime_message_get_cc(msg), &out->cc_addrs, &out->n_cc, NULL, 0);
	add_envelope_rcpts(GMIME_OBJECT(msg), out);

	out->subject = utf8_dup0(g_mime_message_get_subject(msg));
	one_line(out->subject);
	cut_in_place(out->subject, MAX_SUBJECT);
	date = g_mime_message_get_date(msg);
	if (date)
		out->date_ms = (int64_t)g_date_time_to_unix(date) * 1000;

	top = g_mime_message_get_mime_part(msg);
	ct = top ? g_mime_object_get_content_type(top) : NULL;
	report_type = ct ? g_mime_content_type_get_parameter(ct, "report-type") : NULL;
	if (top && GMIME_IS_MULTIPART(top) && ct_is(top, "multipart", "report") && report_type &&
	    (strcasecmp(report_type, "delivery-status") == 0 ||
	     strcasecmp(report_type, "global-delivery-status") == 0 ||
	     strcasecmp(report_type, "feedback-report") == 0)) {
		/* Reports first: bounces carry Auto-Submitted too (RFC 3464 §2). */
		text_part = read_report(GMIME_MULTIPART(top), report_type, out);
		{
			struct ingest_mail scratch = { 0 };

			/* The human-readable part only; a report's attachments are not kept. */
			read_parts(text_part, &scratch, &text, &html);
			ingest_mail_free(&scratch);
		}
	} else {
		/* Other reports (read receipts, RFC 8098) are machine-made: auto replies. */
		if (is_auto_reply(GMIME_OBJECT(msg), out->subject) ||
		    (top && ct_is(top, "multipart", "report")))
			out->kind = INGEST_KIND_AUTO_REPLY;
		else
			out->kind = INGEST_KIND_REPLY;
		read_parts(top, out, &text, &html);
	}

	if (html) {
		char *plain = html_to_text(text, strlen(text));
		char *n1 = text_normalise(plain);

		norm = tidy_lines(n1, 1);
		free(plain);
		free(n1);
	} else {
		char *n1 = text_normalise(text);

		norm = tidy_lines(n1, 0);
		free(n1);
	}
	split_quoted(norm, &out->body_text, &out->quoted_text);
	cut_in_place(out->body_text, INGEST_MAX_TEXT);
	if (out->quoted_text)
		cut_in_place(out->quoted_text, INGEST_MAX_TEXT);
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

/* ---- storing ---- */

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char digest[32];

	util_sha256(data, len, digest);
	util_hex(digest, sizeof digest, out);
}

/* Creates one directory with mode 0750 whatever the umask (an MTA may run us with 077,
 * and nginx must read attachments through the group), keeping the setgid bit the parent
 * passes on. 0 (also when it exists), or -1 with errno. */
static int make_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0750) < 0)
		return errno == EEXIST ? 0 : -1;
	/* Only when the umask took bits away: the kernel clears an inherited setgid bit on a
	 * chmod by a process outside the directory's group (the programs set umask 027). */
	if (stat(path, &st) < 0)
		return -1;
	if ((st.st_mode & 0777) != 0750 && chmod(path, 0750 | (st.st_mode & S_ISGID)) < 0)
		return -1;
	return 0;
}

/* mkdir -p; directories it creates get mode 0750. 0, or -1 with errno. */
static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (make_dir(tmp) < 0)
			return -1;
		*p = '/';
	}
	return make_dir(tmp);
}

/* Makes the directory entries of dir durable (a new name is not on disk before this). */
static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Creates path, which must not exist, holding data: mode 0640, fsynced. 0 or -1 (errno). */
static int write_new_file(const char *path, const void *data, size_t len)
{
	const char *p = data;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	int e;

	if (fd < 0)
		return -1;
	/* The umask must not decide who may read attachment bytes (nginx's group). */
	if (fchmod(fd, 0640) < 0)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(path);
	errno = e;
	return -1;
}

/*
 * Stores data as dir/name unless that file exists already: names are content hashes, so
 * an existing file holds the same bytes. Written to a temporary name and linked into
 * place, so a reader never sees a partial file. Sets *created_r when this call made it.
 */
static int keep_file(const char *dir, const char *name, const void *data, size_t len,
		     int *created_r)
{
	char tmp[PATH_MAX], final[PATH_MAX], id[37];
	int e;

	*created_r = 0;
	util_uuid_v4(id);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/.tmp-%s", dir, id) >= sizeof tmp ||
	    (size_t)snprintf(final, sizeof final, "%s/%s", dir, name) >= sizeof final) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mkdir_p(dir) < 0 || write_new_file(tmp, data, len) < 0)
		return -1;
	if (link(tmp, final) == 0) {
		*created_r = 1;
	} else if (errno == EEXIST) {
		*created_r = 0;
	} else if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS) {
		/* A file system without hard links: rename, after checking for the name. */
		struct stat st;

		if (stat(final, &st) < 0) {
			if (rename(tmp, final) < 0)
				goto fail;
			*created_r = 1;
		}
	} else {
		goto fail;
	}
	unlink(tmp);
	if (fsync_dir(dir) < 0) {
		e = errno;
		if (*created_r)
			unlink(final);
		*created_r = 0;
		errno = e;
		return -1;
	}
	return 0;
fail:
	e = errno;
	unlink(tmp);
	errno = e;
	return -1;
}

/* Files written for one message, removed again when its transaction fails. */
struct written {
	char *raw_path;                          /* the raw copy, when this call created it */
	char *paths[INGEST_MAX_ATTACHMENTS];     /* attachment files */
	size_t n;
};

static void written_remove_attachments(struct written *w)
{
	for (size_t i = 0; i < w->n; i++) {
		unlink(w->paths[i]);
		free(w->paths[i]);
	}
	w->n = 0;
}

static void written_remove_raw(struct written *w)
{
	if (w->raw_path)
		unlink(w->raw_path);
	free(w->raw_path);
	w->raw_path = NULL;
}

static void written_free(struct written *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->paths[i]);
	w->n = 0;
	free(w->raw_path);
	w->raw_path = NULL;
}

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
	lower_ascii(tag);
	return store_message_case_exists(db, tag, case_id, error_r);
}

/* Finds the case of m (see ingest.h for the order). 1 found, 0 not, -1 database error. */
static int match_case(struct db *db, const struct ingest_mail *m, char case_id[37],
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
static int sender_matches_case(struct db *db, const struct ingest_mail *m, const char *case_id,
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
	char (*storage)[80] = NULL;
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
	cut_in_place(from, MAX_ADDR_FIELD);
	snprintf(inbox, sizeof inbox, "%s", s->inbox_address ? s->inbox_address : "");
	cut_in_place(inbox, 254);

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
	storage = xcalloc(n_atts + 1, sizeof *storage);
	for (size_t i = 0; i < n_atts; i++) {
		const struct ingest_attachment *a = &m->attachments[i];

		snprintf(storage[i], sizeof storage[i], "%s/%s", case_id, att_ids[i]);
		atts[i].id = att_ids[i];
		atts[i].name = a->name;
		atts[i].size = (int64_t)a->size;
		atts[i].content_type = a->content_type;
		atts[i].sha256 = a->sha256;
		atts[i].storage_path = storage[i];
	}
	has_event = matched && event_type(m->kind, &ev.type) == 0;
	ev.feedback_type = m->feedback_type;
	ev.diagnostic = m->diagnostic;
	result = store_message_insert_inbound(db, &msg, atts, n_atts, has_event ? &ev : NULL,
					      row_id_r, error_r);
	free(storage);
	free(atts);
	free(from);
	buf_free(&rb);
	return result;
}

/* Keeps mail we could not store under unparsed/<sha256>.eml. 0 or -1 (errno). */
static int keep_unparsed(const struct ingest_settings *s, const char *raw, size_t len,
			 const char *sha)
{
	char dir[PATH_MAX], name[80];
	int created;

	if (len == 0)
		return 0; /* nothing to keep */
	if ((size_t)snprintf(dir, sizeof dir, "%s/unparsed", s->files_dir) >= sizeof dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(name, sizeof name, "%s.eml", sha);
	return keep_file(dir, name, raw, len, &created);
}

/* Writes the attachment bytes of a matched message under files_dir/<caseId>/. */
static int write_attachments(const struct ingest_settings *s, const struct ingest_mail *m,
			     const char *case_id, char (*att_ids)[37], struct written *w)
{
	char dir[PATH_MAX], path[PATH_MAX];

	if (m->n_attachments == 0)
		return 0;
	if ((size_t)snprintf(dir, sizeof dir, "%s/%s", s->files_dir, case_id) >= sizeof dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mkdir_p(dir) < 0)
		return -1;
	for (size_t i = 0; i < m->n_attachments; i++) {
		util_uuid_v4(att_ids[i]);
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, att_ids[i]) >= sizeof path) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (write_new_file(path, m->attachments[i].data, m->attachments[i].size) < 0)
			return -1;
		w->paths[w->n++] = xstrdup(path);
	}
	return fsync_dir(dir);
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
	r = match_case(db, &m, case_id, &how, &dberr);
	if (r < 0)
		goto db_trouble;
	/* Reports are believed only at a valid bounce tag (mail/verp.h), never by Message-ID. */
	if (verp_kind_is_report(m.kind) && verp_report_case(db, &m, raw, len, case_id, &how, &dberr) < 0)
		goto db_trouble;
	if (*case_id) {
		r = sender_matches_case(db, &m, case_id, &dberr);
		if (r < 0)
			goto db_trouble;
		if (r == 0) {
			log_warn("ingest: message-id=<%s> names case %s (%s) but comes from %s, not "
				 "the counterparty's address or domain: kept unmatched",
				 m.message_id, case_id, how, m.from_addr ? m.from_addr : "(no sender)");
			case_id[0] = '\0';
		}
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
	if (keep_file(dir, strrchr(raw_rel, '/') + 1, raw, len, &created) < 0)
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
		if (write_attachments(s, &m, case_id, att_ids, &w) < 0)
			goto disk_trouble;
	}

	stored = store_rows(db, s, &m, case_id, raw_rel, att_ids, now_ms, &row_id, &dberr);
	if (stored != STORE_MESSAGE_STORED) {
		written_remove_attachments(&w);
		if (stored == STORE_MESSAGE_DUPLICATE) {
			/* Another delivery of this message won the race; its row may name the
			 * same raw file, so that stays. */
			log_info("ingest: duplicate case=%s kind=%s message-id=<%s>: stored meanwhile",
				 *case_id ? case_id : "-", ingest_kind_name(m.kind), m.message_id);
			result = INGEST_DUPLICATE;
			goto out;
		}
		written_remove_raw(&w);
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
	if (keep_unparsed(s, raw, len, sha) < 0) {
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
	written_remove_attachments(&w);
	written_remove_raw(&w);
	result = INGEST_TEMPFAIL;
	goto out;
db_trouble:
	log_warn("ingest: tempfail message-id=<%s>: database: %s", m.message_id, dberr);
	result = INGEST_TEMPFAIL;
out:
	written_free(&w);
	free(att_ids);
	ingest_mail_free(&m);
	return result;
}
