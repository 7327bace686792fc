/* route_match.h: the route table of offload-api and its matcher, apart from the handlers so
 * that the unit tests link it (tests/unit/test-routes.c). routes.c dispatches on it. */
#ifndef OFFLOAD_ROUTE_MATCH_H
#define OFFLOAD_ROUTE_MATCH_H

#include <stddef.h>

#define HTTP_MAX_PARAMS 2     /* '*' segments in one pattern */
#define HTTP_MAX_SEGMENT 1024 /* longest segment kept as a parameter */

#define ROUTE_AUTH 0x1 /* needs x-api-key */
#define ROUTE_BODY 0x2 /* reads a JSON body */

/*
 * Every route, one line each: X(method, pattern, handler, flags). A '*' in a pattern matches
 * one non-empty path segment; nothing else is special, so a trailing slash is another path
 * (404, doc/api.md "Unknown paths and methods"). Routes with the same pattern sit together,
 * in the order their methods are listed in an Allow header. routes.c expands this list with
 * the handlers; route_match.c reads only the methods, patterns and flags.
 */
#define ROUTE_LIST(X) \
	X("GET", "/cases", cases_list, ROUTE_AUTH) \
	X("POST", "/cases", cases_create, ROUTE_AUTH | ROUTE_BODY) \
	X("GET", "/cases/*", cases_get, ROUTE_AUTH) \
	X("GET", "/cases/*/attachments/*", cases_attachment, ROUTE_AUTH) \
	X("POST", "/cases/*/input", cases_input, ROUTE_AUTH | ROUTE_BODY) \
	X("GET", "/files/*", files_download, 0) \
	X("GET", "/healthz", health_get, 0) \
	X("GET", "/metrics", metrics_get, 0) \
	/* Kannel's callbacks: a shared secret instead of a key (kannel.c). */ \
	X("GET", "/kannel/incoming", kannel_incoming, 0) \
	X("GET", "/kannel/dlr", kannel_dlr, 0)

struct route_spec {
	const char *method;
	const char *pattern;
	unsigned flags;
};

/* ROUTE_LIST in its order. */
extern const struct route_spec route_table[];
extern const size_t route_count;

/*
 * Matches path against one pattern. On a match returns 1 with params[i] pointing into
 * param_buf[i] for each '*' in order; a segment longer than HTTP_MAX_SEGMENT still matches
 * but its parameter is "" (as an id it names nothing). 0 when the path does not match.
 */
int route_match(const char *pattern, const char *path, const char *params[HTTP_MAX_PARAMS],
		char param_buf[HTTP_MAX_PARAMS][HTTP_MAX_SEGMENT + 1]);

#define ROUTE_NOT_FOUND (-1)          /* no route has this path: 404 */
#define ROUTE_METHOD_NOT_ALLOWED (-2) /* the path has other methods: 405 */

/*
 * Finds the route for method and path. Returns its index in route_table with params filled
 * as route_match does; ROUTE_NOT_FOUND; or ROUTE_METHOD_NOT_ALLOWED with the path's methods
 * in allow ("GET, POST", cut to allow_cap bytes with the NUL). Methods compare exactly
 * (HTTP methods are case-sensitive).
 */
int route_find(const char *method, const char *path, const char *params[HTTP_MAX_PARAMS],
	       char param_buf[HTTP_MAX_PARAMS][HTTP_MAX_SEGMENT + 1], char *allow,
	       size_t allow_cap);

#endif
