/* http_parse.c: percent decoding, query parameters and Content-Length (see http_parse.h). */
#include <stddef.h>
#include <string.h>

#include "api/http_parse.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* http_url_decode; a decoded NUL becomes nul_as unless that is 0 (then -1). */
static int url_decode_nul(const char *s, size_t len, char *out, size_t cap, char nul_as)
{
	size_t o = 0;

	if (cap == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0 && nul_as)
			c = (unsigned char)nul_as;
		if (c == 0 || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int http_url_decode(const char *s, size_t len, char *out, size_t cap)
{
	return url_decode_nul(s, len, out, cap, 0);
}

/* Finds the next name=value pair named name in the query string from *p on (NULL: none),
 * moving *p past it: 1 with the raw value in *v_r, *len_r bytes (a bare "name" has ""). */
static int next_param(const char **p, const char *name, const char **v_r, size_t *len_r)
{
	size_t name_len = strlen(name);

	while (*p && **p) {
		const char *amp = strchr(*p, '&');
		const char *end = amp ? amp : *p + strlen(*p);
		const char *eq = memchr(*p, '=', (size_t)(end - *p));
		const char *key_end = eq ? eq : end;
		int match = (size_t)(key_end - *p) == name_len && memcmp(*p, name, name_len) == 0;

		*p = amp ? amp + 1 : end;
		if (match) {
			*v_r = eq ? eq + 1 : end;
			*len_r = (size_t)(end - *v_r);
			return 1;
		}
	}
	return 0;
}

int http_query_param_nul(const char *query, const char *name, char nul_as, char *out,
			 size_t cap)
{
	const char *v;
	size_t len;

	if (cap == 0)
		return -1;
	out[0] = '\0';
	if (!next_param(&query, name, &v, &len))
		return 0;
	return url_decode_nul(v, len, out, cap, nul_as) < 0 ? -1 : 1;
}

int http_query_param(const char *query, const char *name, char *out, size_t cap)
{
	return http_query_param_nul(query, name, 0, out, cap);
}

int http_query_param_all(const char *query, const char *name, char *out, size_t cap)
{
	const char *v;
	size_t len, used = 0;
	int found = 0;

	if (cap == 0)
		return -1;
	out[0] = '\0';
	while (next_param(&query, name, &v, &len)) {
		if (found) {
			if (used + 2 > cap)
				return -1;
			out[used++] = ',';
		}
		if (http_url_decode(v, len, out + used, cap - used) < 0)
			return -1;
		used += strlen(out + used);
		found++;
	}
	return found;
}

int http_content_length(const char *value, size_t max, size_t *len_r)
{
	size_t len = 0;
	int too_large = 0;

	*len_r = 0;
	if (!value)
		return 0;
	for (const char *p = value; *p; p++) {
		size_t d;

		if (*p < '0' || *p > '9')
			return HTTP_LENGTH_MALFORMED;
		d = (size_t)(*p - '0');
		/* Once past max the value only grows: keep checking the digits, stop counting. */
		if (too_large || d > max || len > (max - d) / 10)
			too_large = 1;
		else
			len = len * 10 + d;
	}
	if (too_large)
		return HTTP_LENGTH_TOO_LARGE;
	*len_r = len;
	return 0;
}
