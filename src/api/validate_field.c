/* validate_field.c: the field helpers of the body validators (see validate_field.h):
 * typed member lookups with bounds, string rules, free-form JSON checks, and building the
 * JSON that is stored.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/validate_field.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/xalloc.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A field path for messages about nested values ("goal.knowledge.a[2]"). */
struct path {
	char buf[256];
	size_t len;
};

int val_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int val_require_object(json_object *body, char *err, size_t errlen)
{
	if (!body || !json_object_is_type(body, json_type_object))
		return val_fail(err, errlen, "body: must be a JSON object");
	return 0;
}

/* json-c and libcurl report allocation failure by NULL; the policy is to abort (xalloc.h). */
void val_no_memory(void)
{
	log_error("out of memory");
	abort();
}

static int is_ascii_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int val_has_nul(json_object *str)
{
	return strlen(json_object_get_string(str)) != (size_t)json_object_get_string_len(str);
}

static int is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_ascii_ws((unsigned char)s[i]))
			return 0;
	return 1;
}

static int has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return 1;
	return 0;
}

/* Checks that v is a string obeying flags and max; path names it in the message. */
int val_check_string(json_object *v, const char *path, unsigned flags, size_t max, char *err,
			size_t errlen)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(v, json_type_string))
		return val_fail(err, errlen, "%s: must be a string", path);
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (val_has_nul(v))
		return val_fail(err, errlen, "%s: must not contain NUL bytes", path);
	if ((flags & STR_NONEMPTY) && is_blank(s, len))
		return val_fail(err, errlen, "%s: must not be empty", path);
	if (len > max)
		return val_fail(err, errlen, "%s: must be at most %zu bytes", path, max);
	if ((flags & STR_HEADER) && has_control(s, len))
		return val_fail(err, errlen, "%s: must not contain control characters", path);
	return 0;
}

/* Looks up a string member. *v_r is NULL when an optional member is absent. */
int val_get_string(json_object *obj, const char *key, const char *path, int required,
		      unsigned flags, size_t max, json_object **v_r, char *err, size_t errlen)
{
	json_object *v = jsonutil_member(obj, key);

	*v_r = NULL;
	if (!v)
		return required ? val_fail(err, errlen, "%s: is required", path) : 0;
	if (val_check_string(v, path, flags, max, err, errlen) < 0)
		return -1;
	*v_r = v;
	return 0;
}

/* Looks up an object member. *v_r is NULL when an optional member is absent. */
int val_get_object(json_object *obj, const char *key, const char *path, int required,
		      json_object **v_r, char *err, size_t errlen)
{
	json_object *v = jsonutil_member(obj, key);

	*v_r = NULL;
	if (!v)
		return required ? val_fail(err, errlen, "%s: is required", path) : 0;
	if (!json_object_is_type(v, json_type_object))
		return val_fail(err, errlen, "%s: must be an object", path);
	*v_r = v;
	return 0;
}

/* An optional integer member within [min, max]; def when absent. Only JSON integers count:
 * 3.0 is a double to json-c and is refused like "3". */
int val_get_int(json_object *obj, const char *key, int min, int max, int def, int *out,
		   char *err, size_t errlen)
{
	json_object *v = jsonutil_member(obj, key);
	int64_t n;

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		goto bad;
	/* Values beyond int64 come back clamped to INT64_MIN/INT64_MAX, so still out of range. */
	n = json_object_get_int64(v);
	if (n < min || n > max)
		goto bad;
	*out = (int)n;
	return 0;
bad:
	return val_fail(err, errlen, "%s: must be an integer from %d to %d", key, min, max);
}

static size_t path_push(struct path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to the path (truncating if it is full) and returns the old length for path_pop. */
static size_t path_push(struct path *p, const char *fmt, ...)
{
	size_t old = p->len;
	va_list ap;
	int n;

	if (p->len < sizeof p->buf - 1) {
		va_start(ap, fmt);
		n = vsnprintf(p->buf + p->len, sizeof p->buf - p->len, fmt, ap);
		va_end(ap);
		if (n > 0)
			p->len += (size_t)n < sizeof p->buf - p->len ? (size_t)n
								     : sizeof p->buf - p->len - 1;
	}
	return old;
}

static void path_pop(struct path *p, size_t old)
{
	p->len = old;
	p->buf[old] = '\0';
}

/* Walks any JSON value for strings holding NUL bytes (depth is bounded by the parser). */
static int check_nul_deep(json_object *v, struct path *p, char *err, size_t errlen)
{
	size_t old;
	int rc = 0;

	switch (json_object_get_type(v)) {
	case json_type_string:
		if (val_has_nul(v))
			return val_fail(err, errlen, "%s: must not contain NUL bytes", p->buf);
		return 0;
	case json_type_object: {
		json_object_object_foreach(v, key, child) {
			if (!child)
				continue;
			old = path_push(p, ".%s", key);
			rc = check_nul_deep(child, p, err, errlen);
			path_pop(p, old);
			if (rc < 0)
				return -1;
		}
		return 0;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			old = path_push(p, "[%zu]", i);
			rc = check_nul_deep(json_object_array_get_idx(v, i), p, err, errlen);
			path_pop(p, old);
			if (rc < 0)
				return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* Checks a free-form JSON value (no NUL bytes, serialised size at most max). */
int val_check_free_json(json_object *v, const char *path, size_t max, char *err, size_t errlen)
{
	struct path p;
	const char *json;

	p.len = 0;
	p.buf[0] = '\0';
	path_push(&p, "%s", path);
	if (check_nul_deep(v, &p, err, errlen) < 0)
		return -1;
	json = json_object_to_json_string_ext(v, JSON_FLAGS);
	if (!json)
		val_no_memory();
	if (strlen(json) > max)
		return val_fail(err, errlen, "%s: must be at most %zu bytes", path, max);
	return 0;
}

char *val_members_json(const char *const keys[], json_object *const values[], size_t n)
{
	json_object *o = json_object_new_object();
	char *json;

	if (!o)
		val_no_memory();
	for (size_t i = 0; i < n; i++)
		if (keys[i] && values[i] &&
		    json_object_object_add(o, keys[i], json_object_get(values[i])) < 0)
			val_no_memory();
	json = val_to_json(o);
	json_object_put(o);
	return json;
}

char *val_to_json(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);

	if (!s)
		val_no_memory();
	return xstrdup(s);
}
