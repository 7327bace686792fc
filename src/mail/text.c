/* text.c: the text of inbound mail: UTF-8 cleaning, line endings, HTML to text and the
 * split of a reply from the quoted history under it (src/mail/ingest-private.h). */
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "mail/ingest-private.h"

/* ---- strings ---- */

/*
 * A newly allocated valid UTF-8 copy of len bytes. Bytes that are not UTF-8 are read as
 * Windows-1252 (what undeclared 8-bit mail nearly always is), else replaced by U+FFFD.
 * NUL bytes are dropped.
 */
char *ingest_utf8_dup(const char *s, size_t len)
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

char *ingest_utf8_dup0(const char *s)
{
	return s ? ingest_utf8_dup(s, strlen(s)) : xstrdup("");
}

/* Replaces control characters (C0, DEL, C1) by spaces; for one-line fields. */
void ingest_one_line(char *s)
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
void ingest_cut_in_place(char *s, size_t max)
{
	s[util_utf8_cut(s, strlen(s), max)] = '\0';
}

char *ingest_trim_dup(const char *s, size_t len)
{
	const char *t;
	size_t tl;

	util_trim(s, len, &t, &tl);
	return xstrndup(t, tl);
}

void ingest_lower_ascii(char *s)
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
const char *ingest_find_ci(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return hay + i;
	return NULL;
}

/* ---- text: line endings, HTML, quoted history ---- */

/* CRLF and lone CR become LF; C0 controls other than TAB and LF are dropped. */
char *ingest_text_normalise(const char *s)
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
char *ingest_html_to_text(const char *in, size_t len)
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
				e = ingest_find_ci(in + end, len - end, close);
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
char *ingest_tidy_lines(const char *s, int collapse)
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

struct line ingest_line_at(const char *t, size_t len, size_t off, size_t *next_r)
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
				if (ingest_find_ci(joined, n, verbs[i]))
					return 1;
			return 0;
		}
		if (next >= len)
			return 0;
		first = ingest_line_at(t, len, next, &next);
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
		if (ingest_find_ci(l.s, l.len, phrases[i]))
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
		struct line m = ingest_line_at(t, len, next, &next);

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
		struct line l = ingest_line_at(t, len, off, &next);

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
void ingest_split_quoted(const char *t, char **body_r, char **quoted_r)
{
	size_t len = strlen(t), cut = quote_start(t, len);
	const char *b;
	size_t bl;

	util_trim(t, cut, &b, &bl);
	if (cut == len || bl == 0) {
		/* No history, or nothing before it (an interleaved reply): keep it all. */
		*body_r = ingest_trim_dup(t, len);
		*quoted_r = NULL;
		return;
	}
	*body_r = xstrndup(b, bl);
	*quoted_r = ingest_trim_dup(t + cut, len - cut);
	if (**quoted_r == '\0') {
		free(*quoted_r);
		*quoted_r = NULL;
	}
}
