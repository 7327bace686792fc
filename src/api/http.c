/* http.c: FastCGI replies in the two JSON envelopes, header access, body reading (the pure
 * parsing is in http_parse.c). */
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

int http_read_body_or_reply(struct http_request *r, size_t max)
{
	size_t len, got = 0;

	switch (http_content_length(http_header(r, "CONTENT_LENGTH"), max, &len)) {
	case 0:
		break;
	case HTTP_LENGTH_MALFORMED:
		http_reply_error(r, 400, "INVALID_REQUEST", "content-length: malformed");
		return -1;
	default:
		http_reply_error(r, 413, "PAYLOAD_TOO_LARGE", "request body larger than %zu bytes", max);
		return -1;
	}
	r->body = xmalloc(len + 1);
	while (got < len) {
		int n = FCGX_GetStr(r->body + got, (int)(len - got), r->t->req.in);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != len) {
		http_reply_error(r, 400, "INVALID_REQUEST", "body: shorter than content-length");
		return -1;
	}
	r->body[got] = '\0';
	r->body_len = got;
	return 0;
}
