/* authres.c: a reader for RFC 8601 Authentication-Results, enough to judge DMARC and DKIM.
 *
 * No C library in Debian exports one: libopendmarc and libopendkim keep their parsers in
 * the milters (opendmarc-ar.c, opendkim-ar.c), not in the libraries; python3-authres is
 * Python. So this is a small lexer over the grammar of RFC 8601 §2.2 (CFWS with nested
 * comments, quoted strings, "method=result", "ptype.property=pvalue"), in the spirit of
 * opendmarc-ar.c.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "mail/authres.h"

/* Longest field looked at; an MTA's own field is a few hundred bytes. */
#define AUTHRES_MAX_FIELD (64 * 1024)
/* Longest word kept (domains are at most 255). */
#define AUTHRES_MAX_WORD 512

const char *authres_verdict_name(enum authres_verdict v)
{
	switch (v) {
	case AUTHRES_NONE:
		return "none";
	case AUTHRES_FAIL:
		return "fail";
	case AUTHRES_DMARC_PASS:
		return "dmarc=pass";
	case AUTHRES_DKIM_PASS:
		return "dkim=pass";
	}
	return "?";
}

struct lexer {
	const char *p;
};

/* CFWS: white space, line breaks and (nested (comments)) with quoted pairs. -1 when a
 * comment is not closed. */
static int skip_cfws(struct lexer *lx)
{
	for (;;) {
		while (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r' || *lx->p == '\n')
			lx->p++;
		if (*lx->p != '(')
			return 0;
		{
			int depth = 0;

			do {
				if (*lx->p == '\0')
					return -1;
				if (*lx->p == '\\' && lx->p[1])
					lx->p++;
				else if (*lx->p == '(')
					depth++;
				else if (*lx->p == ')')
					depth--;
				lx->p++;
			} while (depth > 0);
		}
	}
}

static int is_word_char(char c)
{
	return c && !strchr(" \t\r\n();=\"", c);
}

/* A word or a quoted string into out (cut at AUTHRES_MAX_WORD). 1 read, 0 none here, -1 bad. */
static int read_value(struct lexer *lx, char out[AUTHRES_MAX_WORD])
{
	size_t n = 0;

	if (skip_cfws(lx) < 0)
		return -1;
	if (*lx->p == '"') {
		lx->p++;
		while (*lx->p && *lx->p != '"') {
			if (*lx->p == '\\' && lx->p[1])
				lx->p++;
			if (n + 1 < AUTHRES_MAX_WORD)
				out[n++] = *lx->p;
			lx->p++;
		}
		if (*lx->p != '"')
			return -1;
		lx->p++;
		out[n] = '\0';
		return 1;
	}
	while (is_word_char(*lx->p)) {
		if (n + 1 < AUTHRES_MAX_WORD)
			out[n++] = *lx->p;
		lx->p++;
	}
	out[n] = '\0';
	return n > 0;
}

/* The punctuation c next (after CFWS): consumes it and returns 1, else 0 (-1 bad CFWS). */
static int next_is(struct lexer *lx, char c)
{
	if (skip_cfws(lx) < 0)
		return -1;
	if (*lx->p != c)
		return 0;
	lx->p++;
	return 1;
}

/* "user@example.com", "@example.com" or "example.com" is for domain. */
static int identity_is_for(const char *value, const char *domain)
{
	const char *at = strrchr(value, '@');

	return strcasecmp(at ? at + 1 : value, domain) == 0;
}

int authres_judge_value(const char *value, const char *authserv_id, const char *domain,
			enum authres_verdict *verdict_r)
{
	struct lexer lx = { value };
	char word[AUTHRES_MAX_WORD], method[AUTHRES_MAX_WORD], result[AUTHRES_MAX_WORD];
	int dmarc_pass = 0, dkim_pass = 0, r;

	if (read_value(&lx, word) != 1)
		return -1;
	if (strcasecmp(word, authserv_id) != 0)
		return 0;
	/* From here the field is ours: whatever cannot be read vouches for nothing. */
	*verdict_r = AUTHRES_FAIL;
	/* An optional authres-version (digits) before the first ";". */
	r = read_value(&lx, word);
	if (r < 0 || (r == 1 && strspn(word, "0123456789") != strlen(word)))
		return 1;
	while ((r = next_is(&lx, ';')) == 1) {
		char *slash;
		int dkim_ok;

		if (read_value(&lx, method) != 1)
			return 1;
		if (next_is(&lx, '=') != 1) {
			if (strcasecmp(method, "none") == 0)
				continue; /* no-result */
			return 1;
		}
		if (read_value(&lx, result) != 1)
			return 1;
		slash = strchr(method, '/'); /* method "/" version */
		if (slash)
			*slash = '\0';
		dkim_ok = 0;
		/* reasonspec and propspecs up to the next ";" */
		for (;;) {
			char val[AUTHRES_MAX_WORD];

			r = read_value(&lx, word);
			if (r < 0)
				return 1;
			if (r == 0)
				break;
			if (next_is(&lx, '=') != 1 || read_value(&lx, val) < 0)
				return 1;
			if (strcasecmp(method, "dkim") == 0 &&
			    (strcasecmp(word, "header.d") == 0 || strcasecmp(word, "header.i") == 0) &&
			    identity_is_for(val, domain))
				dkim_ok = 1;
		}
		if (strcasecmp(method, "dmarc") == 0 && strcasecmp(result, "pass") == 0)
			dmarc_pass = 1;
		if (strcasecmp(method, "dkim") == 0 && strcasecmp(result, "pass") == 0 && dkim_ok)
			dkim_pass = 1;
	}
	if (r < 0 || *lx.p != '\0')
		return 1;
	*verdict_r = dmarc_pass ? AUTHRES_DMARC_PASS : dkim_pass ? AUTHRES_DKIM_PASS : AUTHRES_FAIL;
	return 1;
}

enum authres_verdict authres_check(const char *raw, size_t len, const char *authserv_id,
				   const char *domain)
{
	static const char name[] = "Authentication-Results:";
	const size_t nl = sizeof name - 1;
	size_t i = 0;

	while (i < len) {
		size_t start = i, end;

		if (raw[i] == '\n' || (raw[i] == '\r' && i + 1 < len && raw[i + 1] == '\n'))
			break; /* the blank line: end of the header */
		/* one field: this line and its continuation lines */
		end = i;
		for (;;) {
			const char *eol = memchr(raw + end, '\n', len - end);

			end = eol ? (size_t)(eol - raw) + 1 : len;
			if (end >= len || (raw[end] != ' ' && raw[end] != '\t'))
				break;
		}
		i = end;
		if (end - start > nl && end - start <= AUTHRES_MAX_FIELD &&
		    strncasecmp(raw + start, name, nl) == 0) {
			char *value = xstrndup(raw + start + nl, end - start - nl);
			enum authres_verdict v = AUTHRES_NONE;
			int r;

			/* NUL bytes would hide the rest of the field from the lexer. */
			r = memchr(raw + start, '\0', end - start) ? -1
			    : authres_judge_value(value, authserv_id, domain, &v);
			free(value);
			if (r == 1)
				return v;
		}
	}
	return AUTHRES_NONE;
}

int authres_reply_trusted(const struct ingest_mail *m, const char *raw, size_t len,
			  const char *authserv_id, const char *case_id)
{
	const char *at;
	enum authres_verdict v;

	if (!authserv_id || !*authserv_id)
		return 1;
	at = m->from_addr ? strrchr(m->from_addr, '@') : NULL;
	v = authres_check(raw, len, authserv_id, at ? at + 1 : "");
	if (v == AUTHRES_DMARC_PASS || v == AUTHRES_DKIM_PASS)
		return 1;
	log_warn("ingest: message-id=<%s> names case %s but %s's Authentication-Results say %s"
		 " (want dmarc=pass, or dkim=pass for %s): kept unmatched",
		 m->message_id, case_id, authserv_id,
		 v == AUTHRES_NONE ? "nothing (no such field)" : "no pass",
		 at ? at + 1 : "the sender's domain");
	return 0;
}
