/* http.c: FastCGI replies in the two JSON envelopes, header and query access, body reading. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return status >= 500 ? "Internal Server Error" : "Error";
	}
}

static void send_json(struct http_request *r, int status, const char *extra_headers,
		      json_object *envelope)
{
	size_t len;
	const char *text = json_object_to_json_string_length(
		envelope, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	struct buf head;

	/* libfcgi's own printf lacks %zu and friends: format here, then write bytes. */
	buf_init(&head, 16384);
	buf_printf(&head,
		   "Status: %d %s\r\nContent-Type: application/json\r\n"
		   "Content-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n",
		   status, reason(status), len, extra_headers ? extra_headers : "");
	FCGX_PutStr(head.data, (int)head.len, r->t->req.out);
	FCGX_PutStr(text, (int)len, r->t->req.out);
	buf_free(&head);
	r->replied = 1;
	r->status = status;
}

void http_reply_data_text(struct http_request *r, int status, const char *data, size_t len)
{
	static const char open[] = "{\"ok\":true,\"data\":";
	char head[256];
	int n;

	/* libfcgi's own printf lacks %zu and friends: format here, then write bytes. */
	n = snprintf(head, sizeof head,
		     "Status: %d %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n",
		     status, reason(status), sizeof open - 1 + len + 1);
	FCGX_PutStr(head, n, r->t->req.out);
	FCGX_PutStr(open, (int)(sizeof open - 1), r->t->req.out);
	FCGX_PutStr(data, (int)len, r->t->req.out);
	FCGX_PutStr("}", 1, r->t->req.out);
	r->replied = 1;
	r->status = status;
}

void http_reply_data(struct http_request *r, int status, json_object *data)
{
	json_object *env = json_object_new_object();

	json_object_object_add(env, "ok", json_object_new_boolean(1));
	json_object_object_add(env, "data", data ? data : json_object_new_object());
	send_json(r, status, NULL, env);
	json_object_put(env);
}

static void reply_error_v(struct http_request *r, int status, const char *extra_headers,
			  const char *code, const char *fmt, va_list ap)
{
	json_object *env = json_object_new_object(), *err = json_object_new_object();
	char msg[1024];

	vsnprintf(msg, sizeof msg, fmt, ap);
	json_object_object_add(err, "code", json_object_new_string(code));
	json_object_object_add(err, "message", json_object_new_string(msg));
	json_object_object_add(env, "ok", json_object_new_boolean(0));
	json_object_object_add(env, "error", err);
	send_json(r, status, extra_headers, env);
	json_object_put(env);
}

void http_reply_error(struct http_request *r, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(r, status, NULL, code, fmt, ap);
	va_end(ap);
}

void http_reply_error_headers(struct http_request *r, int status, const char *headers,
			      const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(r, status, headers, code, fmt, ap);
	va_end(ap);
}

void http_reply_internal(struct http_request *r, const char *what)
{
	log_error("%s %s: %s", r->method, r->path, what);
	http_reply_error(r, 500, "INTERNAL_ERROR", "internal error; the request was not completed");
}

void http_reply_db_error(struct http_request *r, const char *what)
{
	if (!db_error_is_unavailable(r->t->db)) {
		http_reply_internal(r, what);
		return;
	}
	log_warn("%s %s: database unavailable: %s", r->method, r->path, what);
	http_reply_error(r, 503, "SERVICE_UNAVAILABLE",
			 "the database is unavailable; retry later");
}

void http_reply_headers(struct http_request *r, int status, const char *headers)
{
	struct buf head;

	buf_init(&head, 16384);
	buf_printf(&head, "Status: %d %s\r\n%s\r\n", status, reason(status), headers);
	FCGX_PutStr(head.data, (int)head.len, r->t->req.out);
	buf_free(&head);
	r->replied = 1;
	r->status = status;
}

const char *http_header(struct http_request *r, const char *cgi_name)
{
	return FCGX_GetParam(cgi_name, r->t->req.envp);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes [s, s+len) into out (cap bytes with the NUL); '+' is a space
 * (application/x-www-form-urlencoded). -1 on a bad escape, a NUL, or overflow. */
static int url_decode_nul(const char *s, size_t len, char *out, size_t cap, char nul_as);

static int url_decode(const char *s, size_t len, char *out, size_t cap)
{
	return url_decode_nul(s, len, out, cap, 0);
}

/* As url_decode; a decoded NUL becomes nul_as unless that is 0 (then -1). */
static int url_decode_nul(const char *s, size_t len, char *out, size_t cap, char nul_as)
{
	size_t o = 0;

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

int http_query_param(const char *query, const char *name, char *out, size_t cap)
{
	size_t name_len = strlen(name);
	const char *p = query;

	if (cap > 0)
		out[0] = '\0';
	if (!p)
		return 0;
	while (*p) {
		const char *amp = strchr(p, '&');
		const char *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *key_end = eq ? eq : end;

		if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
			const char *v = eq ? eq + 1 : end;

			return url_decode(v, (size_t)(end - v), out, cap) < 0 ? -1 : 1;
		}
		p = amp ? amp + 1 : end;
	}
	return 0;
}

int http_query_param_nul(const char *query, const char *name, char nul_as, char *out,
			 size_t cap)
{
	size_t name_len = strlen(name);
	const char *p = query;

	if (cap > 0)
		out[0] = '\0';
	if (!p)
		return 0;
	while (*p) {
		const char *amp = strchr(p, '&');
		const char *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *key_end = eq ? eq : end;

		if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
			const char *v = eq ? eq + 1 : end;

			return url_decode_nul(v, (size_t)(end - v), out, cap, nul_as) < 0 ? -1 : 1;
		}
		p = amp ? amp + 1 : end;
	}
	return 0;
}

int http_query_param_all(const char *query, const char *name, char *out, size_t cap)
{
	size_t name_len = strlen(name), used = 0;
	const char *p = query;
	int found = 0;

	out[0] = '\0';
	if (!p)
		return 0;
	while (*p) {
		const char *amp = strchr(p, '&');
		const char *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *key_end = eq ? eq : end;

		if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
			const char *v = eq ? eq + 1 : end;

			if (found) {
				if (used + 2 > cap)
					return -1;
				out[used++] = ',';
			}
			if (url_decode(v, (size_t)(end - v), out + used, cap - used) < 0)
				return -1;
			used += strlen(out + used);
			found++;
		}
		p = amp ? amp + 1 : end;
	}
	return found;
}

int http_read_body_or_reply(struct http_request *r, size_t max)
{
	const char *cl = http_header(r, "CONTENT_LENGTH");
	int64_t len = 0;
	size_t got = 0;

	if (cl && *cl) {
		for (const char *p = cl; *p; p++) {
			if (!isdigit((unsigned char)*p)) {
				http_reply_error(r, 400, "INVALID_REQUEST", "content-length: malformed");
				return -1;
			}
		}
		if (strlen(cl) > 12 || util_parse_int64(cl, &len) < 0) {
			http_reply_error(r, 413, "PAYLOAD_TOO_LARGE", "request body larger than %zu bytes", max);
			return -1;
		}
	}
	if ((uint64_t)len > max) {
		http_reply_error(r, 413, "PAYLOAD_TOO_LARGE", "request body larger than %zu bytes", max);
		return -1;
	}
	r->body = xmalloc((size_t)len + 1);
	while (got < (size_t)len) {
		int n = FCGX_GetStr(r->body + got, (int)((size_t)len - got), r->t->req.in);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)len) {
		http_reply_error(r, 400, "INVALID_REQUEST", "body: shorter than content-length");
		return -1;
	}
	r->body[got] = '\0';
	r->body_len = got;
	return 0;
}
