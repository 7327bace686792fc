/* route_match.c: the route table's patterns and the matcher (see route_match.h). */
#include <stdio.h>
#include <string.h>

#include "api/route_match.h"

#define ROUTE_SPEC(method, pattern, handler, flags) { method, pattern, flags },
const struct route_spec route_table[] = { ROUTE_LIST(ROUTE_SPEC) };
#undef ROUTE_SPEC
const size_t route_count = sizeof route_table / sizeof route_table[0];

int route_match(const char *pattern, const char *path, const char *params[HTTP_MAX_PARAMS],
		char param_buf[HTTP_MAX_PARAMS][HTTP_MAX_SEGMENT + 1])
{
	int n = 0;

	while (*pattern && *path) {
		if (*pattern == '*') {
			const char *end = strchr(path, '/');
			size_t len = end ? (size_t)(end - path) : strlen(path);

			if (len == 0 || n >= HTTP_MAX_PARAMS)
				return 0;
			/* An overlong segment still names this route; as an id it matches nothing. */
			if (len <= HTTP_MAX_SEGMENT)
				memcpy(param_buf[n], path, len);
			param_buf[n][len <= HTTP_MAX_SEGMENT ? len : 0] = '\0';
			params[n] = param_buf[n];
			n++;
			pattern++;
			path += len;
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

/* Whether allow ("GET, POST") lists method already. */
static int listed(const char *allow, const char *method)
{
	size_t len = strlen(method);

	for (const char *p = allow; *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == len && memcmp(p, method, len) == 0)
			return 1;
		if (!end)
			break;
		for (p = end + 1; *p == ' '; p++)
			;
	}
	return 0;
}

int route_find(const char *method, const char *path, const char *params[HTTP_MAX_PARAMS],
	       char param_buf[HTTP_MAX_PARAMS][HTTP_MAX_SEGMENT + 1], char *allow,
	       size_t allow_cap)
{
	size_t used = 0;
	int path_known = 0;

	if (allow_cap > 0)
		allow[0] = '\0';
	for (size_t i = 0; i < route_count; i++) {
		const char *m = route_table[i].method;

		if (!route_match(route_table[i].pattern, path, params, param_buf))
			continue;
		if (strcmp(m, method) == 0) {
			/* The earlier routes' matches wrote params too: this one's are the last. */
			return (int)i;
		}
		path_known = 1;
		if (allow_cap > 0 && !listed(allow, m)) {
			int n = snprintf(allow + used, allow_cap - used, "%s%s", used ? ", " : "", m);

			if (n > 0)
				used += (size_t)n < allow_cap - used ? (size_t)n : allow_cap - used - 1;
		}
	}
	return path_known ? ROUTE_METHOD_NOT_ALLOWED : ROUTE_NOT_FOUND;
}
