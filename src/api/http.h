/* http.h: the per-thread request context of offload-api and the reply helpers.
 *
 * How the API layer (src/api/) reports failure:
 * - A handler (void, called by routes_dispatch) sends exactly one reply: a success through
 *   http_reply_data*, a failure through http_reply_error* (the client's fault, with a code
 *   and a message naming the field), http_reply_db_error (database: 503 or 500) or
 *   http_reply_internal (500; what went wrong is logged, never shown). routes_dispatch
 *   answers 500 for a handler that sent nothing.
 * - A function named *_or_reply returns 0 when the request may go on, or -1 after it has
 *   sent the reply; the caller then only cleans up and returns, it replies nothing more.
 * - Anything else follows the rest of the code base: 0 or -1 (with a message in an err
 *   buffer or *error_r), and 1/0/-1 for found/absent/failed lookups; a reply is never sent
 *   from those.
 */
#ifndef OFFLOAD_HTTP_H
#define OFFLOAD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "api/http_parse.h"
#include "api/route_match.h"
#include "common/plans.h"
#include "sms/config.h"

struct db;

/* Settings every thread reads; filled once in main before the threads start. */
struct api_settings {
	char *public_base_url; /* without a trailing slash */
	char *files_dir;
	int64_t url_ttl_s;
	int64_t caps[PLAN_COUNT];
	struct sms_config sms;  /* [sms]: the channel on or off, Kannel's secret, the limits */
};

/* One per thread: owns its FastCGI request, its database connection and the signing key. */
struct api_thread {
	FCGX_Request req;
	struct db *db;
	const struct api_settings *settings;
	unsigned char files_key[64];
	size_t files_key_len; /* 0 until loaded from the database */
};

/* One request; lives on the handler's stack for the length of the request. */
struct http_request {
	struct api_thread *t;
	const char *method;
	const char *path;
	const char *query;
	const char *params[HTTP_MAX_PARAMS]; /* path segments matched by '*' (route_find) */
	char param_buf[HTTP_MAX_PARAMS][HTTP_MAX_SEGMENT + 1];
	char *body;                          /* NUL-terminated, NULL when there is none */
	size_t body_len;
	char client_id[37];                  /* set by authentication */
	enum plan plan;
	uint64_t key_generation;             /* db_connections_made() when the key was read */
	int64_t now_ms;                      /* taken once when the request arrived */
	int replied;
	int status;
};

/* Sends {"ok":true,"data":data} with status; consumes data (may be NULL for {}). */
void http_reply_data(struct http_request *r, int status, json_object *data);

/* Sends {"ok":true,"data":DATA} with status, where DATA is len bytes of JSON text (an
 * object) that the caller keeps. */
void http_reply_data_text(struct http_request *r, int status, const char *data, size_t len);

/* Sends {"ok":false,"error":{"code","message"}}; the message is for clients: no internals. */
void http_reply_error(struct http_request *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Same, with extra headers ("Allow: GET\r\n"). */
void http_reply_error_headers(struct http_request *r, int status, const char *headers,
			      const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Sends 500 INTERNAL_ERROR and logs what (never shown to the client). */
void http_reply_internal(struct http_request *r, const char *what);

/* After a failed database call on the request's connection: 503 SERVICE_UNAVAILABLE when
 * the database cannot serve now (db_error_is_unavailable: down, or a Galera node outside
 * the primary component), else 500 as http_reply_internal. what is logged, never shown. */
void http_reply_db_error(struct http_request *r, const char *what);

/* Sends a status line, headers (each "Name: value\r\n", already checked for CR/LF) and no
 * body. For X-Accel-Redirect answers. */
void http_reply_headers(struct http_request *r, int status, const char *headers);

/* A request header (FastCGI HTTP_* variable) by its CGI name, e.g. "HTTP_X_API_KEY". */
const char *http_header(struct http_request *r, const char *cgi_name);

/* Reads the body (Content-Length strictly parsed, at most max bytes) into r->body.
 * Returns 0, or -1 after replying 400/413. */
int http_read_body_or_reply(struct http_request *r, size_t max);

#endif
