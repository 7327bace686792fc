/* test-routes.c: offload-api's route table and matcher (src/api/route_match.c): every route
 * by its method and path, parameters, trailing slashes, odd ids, unknown paths (404) and
 * other methods (405 with the Allow list), as doc/api.md describes them. */
#include <stdio.h>
#include <string.h>

#include "api/route_match.h"
#include "test.h"

static const char *params[HTTP_MAX_PARAMS];
static char param_buf[HTTP_MAX_PARAMS][HTTP_MAX_SEGMENT + 1];
static char allow[64];

/* The index of the route for method and path, or ROUTE_NOT_FOUND/ROUTE_METHOD_NOT_ALLOWED. */
static int find(const char *method, const char *path)
{
	memset(params, 0, sizeof params);
	return route_find(method, path, params, param_buf, allow, sizeof allow);
}

/* The pattern of the route found, or "404"/"405". */
static const char *found(const char *method, const char *path)
{
	int i = find(method, path);

	if (i == ROUTE_NOT_FOUND)
		return "404";
	if (i == ROUTE_METHOD_NOT_ALLOWED)
		return "405";
	if (i < 0 || (size_t)i >= route_count)
		return "(bad index)";
	return strcmp(route_table[i].method, method) == 0 ? route_table[i].pattern : "(wrong method)";
}

static const char id[] = "4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b";
static const char id2[] = "0b7c4d1e-2f3a-4b5c-8d6e-7f8091a2b3c4";

/* A concrete path for a pattern: each '*' replaced by an id. */
static void concrete(const char *pattern, char *out, size_t cap)
{
	size_t o = 0;

	for (const char *p = pattern; *p && o + 40 < cap; p++) {
		if (*p == '*') {
			memcpy(out + o, id, sizeof id - 1);
			o += sizeof id - 1;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

static void test_every_route(void)
{
	char path[256];

	test_begin("routes: every route in the table is found by its own method and path");
	test_assert(route_count >= 8);
	for (size_t i = 0; i < route_count; i++) {
		int got;

		concrete(route_table[i].pattern, path, sizeof path);
		got = find(route_table[i].method, path);
		if (got != (int)i)
			fprintf(stderr, "  %s %s: got %d, want %zu\n", route_table[i].method, path,
				got, i);
		test_assert(got == (int)i);
		/* Every '*' became a parameter holding the id. */
		for (size_t k = 0, n = 0; route_table[i].pattern[k]; k++) {
			if (route_table[i].pattern[k] != '*')
				continue;
			test_assert(n < HTTP_MAX_PARAMS);
			if (n < HTTP_MAX_PARAMS)
				test_assert_str(params[n], id);
			n++;
		}
	}
	test_end();

	test_begin("routes: the table: methods are GET or POST, patterns absolute, no duplicates");
	for (size_t i = 0; i < route_count; i++) {
		test_assert(strcmp(route_table[i].method, "GET") == 0 ||
			    strcmp(route_table[i].method, "POST") == 0);
		test_assert(route_table[i].pattern[0] == '/');
		for (size_t j = i + 1; j < route_count; j++)
			test_assert(strcmp(route_table[i].method, route_table[j].method) != 0 ||
				    strcmp(route_table[i].pattern, route_table[j].pattern) != 0);
	}
	test_end();
}

static void test_known_routes(void)
{
	char path[256];

	test_begin("routes: the documented routes (doc/api.md)");
	test_assert_str(found("GET", "/cases"), "/cases");
	test_assert_str(found("POST", "/cases"), "/cases");
	test_assert_str(found("GET", "/cases/abc"), "/cases/*");
	test_assert_str(found("POST", "/cases/abc/input"), "/cases/*/input");
	test_assert_str(found("GET", "/cases/abc/attachments/def"), "/cases/*/attachments/*");
	test_assert_str(found("GET", "/files/abc"), "/files/*");
	test_assert_str(found("GET", "/healthz"), "/healthz");
	test_assert_str(found("GET", "/metrics"), "/metrics");
	test_assert_str(found("GET", "/kannel/incoming"), "/kannel/incoming");
	test_assert_str(found("GET", "/kannel/dlr"), "/kannel/dlr");
	test_end();

	test_begin("routes: two parameters, in order");
	snprintf(path, sizeof path, "/cases/%s/attachments/%s", id, id2);
	test_assert_str(found("GET", path), "/cases/*/attachments/*");
	test_assert_str(params[0], id);
	test_assert_str(params[1], id2);
	test_end();

	test_begin("routes: a key and a body are asked for where doc/api.md says");
	for (size_t i = 0; i < route_count; i++) {
		const struct route_spec *r = &route_table[i];
		/* Signed links, health, metrics, and Kannel's callbacks (a shared secret). */
		int open = strcmp(r->pattern, "/healthz") == 0 || strcmp(r->pattern, "/metrics") == 0 ||
			   strcmp(r->pattern, "/files/*") == 0 || strncmp(r->pattern, "/kannel/", 8) == 0;

		if (strncmp(r->pattern, "/cases", 6) == 0)
			test_assert(r->flags & ROUTE_AUTH);
		if (open)
			test_assert(!(r->flags & ROUTE_AUTH));
		/* A JSON body exactly on the POSTs. */
		test_assert(!!(r->flags & ROUTE_BODY) == (strcmp(r->method, "POST") == 0));
	}
	test_end();
}

static void test_trailing_slashes(void)
{
	test_begin("routes: a trailing slash is another path: 404");
	test_assert_str(found("GET", "/cases/"), "404");
	test_assert_str(found("POST", "/cases/"), "404");
	test_assert_str(found("GET", "/cases/abc/"), "404");
	test_assert_str(found("POST", "/cases/abc/input/"), "404");
	test_assert_str(found("GET", "/cases/abc/attachments/"), "404");
	test_assert_str(found("GET", "/cases/abc/attachments/def/"), "404");
	test_assert_str(found("GET", "/healthz/"), "404");
	test_assert_str(found("GET", "/kannel/"), "404");
	test_assert_str(found("GET", "/kannel/dlr/"), "404");
	test_assert_str(found("GET", "/metrics/"), "404");
	test_assert_str(found("GET", "/files/"), "404");
	test_assert_str(found("GET", "/files/abc/"), "404");
	test_assert_str(found("GET", "//cases"), "404");
	test_end();
}

static void test_odd_ids(void)
{
	char path[HTTP_MAX_SEGMENT + 64];

	test_begin("routes: an id of any shape names the route (the handler answers 404 for it)");
	test_assert_str(found("GET", "/cases/not-a-uuid"), "/cases/*");
	test_assert_str(params[0], "not-a-uuid");
	test_assert_str(found("GET", "/cases/%00"), "/cases/*");
	test_assert_str(params[0], "%00");
	test_assert_str(found("GET", "/cases/.."), "/cases/*");
	test_assert_str(params[0], "..");
	test_assert_str(found("GET", "/cases/\xff\xfe"), "/cases/*");
	test_assert_str(params[0], "\xff\xfe");
	test_assert_str(found("GET", "/cases/a b"), "/cases/*");
	test_assert_str(params[0], "a b");
	test_end();

	test_begin("routes: an empty segment matches nothing");
	test_assert_str(found("GET", "/cases//attachments/x"), "404");
	test_assert_str(found("POST", "/cases//input"), "404");
	test_assert_str(found("GET", "/cases/x/attachments//"), "404");
	test_end();

	test_begin("routes: an id of HTTP_MAX_SEGMENT bytes is kept, a longer one becomes \"\"");
	memcpy(path, "/cases/", 7);
	memset(path + 7, 'a', HTTP_MAX_SEGMENT);
	path[7 + HTTP_MAX_SEGMENT] = '\0';
	test_assert_str(found("GET", path), "/cases/*");
	test_assert(params[0] && strlen(params[0]) == HTTP_MAX_SEGMENT);
	path[7 + HTTP_MAX_SEGMENT] = 'a';
	path[8 + HTTP_MAX_SEGMENT] = '\0';
	test_assert_str(found("GET", path), "/cases/*");
	test_assert_str(params[0], "");
	/* Overlong and followed by the rest of a longer route. */
	strcpy(path + 8 + HTTP_MAX_SEGMENT, "/input");
	test_assert_str(found("POST", path), "/cases/*/input");
	test_assert_str(params[0], "");
	test_end();

	test_begin("routes: more segments than any pattern: 404");
	test_assert_str(found("GET", "/cases/a/b"), "404");
	test_assert_str(found("GET", "/cases/a/attachments/b/c"), "404");
	test_assert_str(found("GET", "/files/a/b"), "404");
	test_end();
}

static void test_unknown_paths(void)
{
	test_begin("routes: unknown paths are 404 whatever the method");
	test_assert_str(found("GET", "/"), "404");
	test_assert_str(found("GET", ""), "404");
	test_assert_str(found("GET", "/v1/cases"), "404");
	test_assert_str(found("GET", "/case"), "404");
	test_assert_str(found("GET", "/casesx"), "404");
	test_assert_str(found("GET", "/Cases"), "404");
	test_assert_str(found("GET", "/cases/abc/inputs"), "404");
	test_assert_str(found("GET", "/cases/abc/attachment/def"), "404");
	test_assert_str(found("GET", "/health"), "404");
	test_assert_str(found("GET", "/healthzz"), "404");
	test_assert_str(found("DELETE", "/nowhere"), "404");
	test_assert_str(found("TRACE", "/v1/cases"), "404");
	test_assert(allow[0] == '\0');
	test_end();
}

static void test_method_not_allowed(void)
{
	test_begin("routes: a known path with another method: 405 and the methods it has");
	test_assert_str(found("DELETE", "/cases"), "405");
	test_assert_str(allow, "GET, POST");
	test_assert_str(found("PUT", "/cases"), "405");
	test_assert_str(allow, "GET, POST");
	test_assert_str(found("POST", "/cases/abc"), "405");
	test_assert_str(allow, "GET");
	test_assert_str(found("GET", "/cases/abc/input"), "405");
	test_assert_str(allow, "POST");
	test_assert_str(found("POST", "/cases/abc/attachments/def"), "405");
	test_assert_str(allow, "GET");
	test_assert_str(found("POST", "/healthz"), "405");
	test_assert_str(allow, "GET");
	test_assert_str(found("DELETE", "/files/abc"), "405");
	test_assert_str(allow, "GET");
	test_assert_str(found("POST", "/kannel/dlr"), "405");
	test_assert_str(allow, "GET");
	test_end();

	test_begin("routes: methods are case-sensitive; HEAD is not GET");
	test_assert_str(found("get", "/cases"), "405");
	test_assert_str(allow, "GET, POST");
	test_assert_str(found("HEAD", "/healthz"), "405");
	test_assert_str(allow, "GET");
	test_assert_str(found("", "/healthz"), "405");
	test_assert_str(found("GETX", "/healthz"), "405");
	test_end();

	test_begin("routes: the Allow list is cut to its buffer, never overrun");
	{
		char small[6];
		char big[8] = "xxxxxxx";
		int got;

		memset(small, 'x', sizeof small);
		got = route_find("DELETE", "/cases", params, param_buf, small, sizeof small);
		test_assert(got == ROUTE_METHOD_NOT_ALLOWED);
		test_assert(memchr(small, '\0', sizeof small) != NULL);
		test_assert(strncmp(small, "GET", 3) == 0);
		got = route_find("DELETE", "/cases", params, param_buf, big, 0);
		test_assert(got == ROUTE_METHOD_NOT_ALLOWED);
		test_assert_str(big, "xxxxxxx");
	}
	test_end();
}

static void test_match(void)
{
	const char *p[HTTP_MAX_PARAMS];
	char buf[HTTP_MAX_PARAMS][HTTP_MAX_SEGMENT + 1];

	test_begin("routes: route_match on its own");
	test_assert(route_match("/a", "/a", p, buf) == 1);
	test_assert(route_match("/a", "/ab", p, buf) == 0);
	test_assert(route_match("/ab", "/a", p, buf) == 0);
	test_assert(route_match("/*", "/x", p, buf) == 1);
	test_assert_str(p[0], "x");
	test_assert(route_match("/*", "/", p, buf) == 0);
	test_assert(route_match("/*/*", "/x/y", p, buf) == 1);
	test_assert_str(p[0], "x");
	test_assert_str(p[1], "y");
	/* More '*' than HTTP_MAX_PARAMS never matches (and never writes past the arrays). */
	test_assert(route_match("/*/*/*", "/x/y/z", p, buf) == 0);
	test_end();
}

int main(void)
{
	test_every_route();
	test_known_routes();
	test_trailing_slashes();
	test_odd_ids();
	test_unknown_paths();
	test_method_not_allowed();
	test_match();
	return test_done();
}
