/* schema.c: a small JSON Schema subset validator for results (doc/api.md, "POST /cases"). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/schema.h"
#include "common/util.h"
#include "common/xalloc.h"

#define ENUM_LIST_MAX 10 /* enum values quoted in a message */

static void add_error(struct schema_errors *errs, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_error(struct schema_errors *errs, const char *path, const char *fmt, ...)
{
	struct schema_error *e;
	va_list ap;
	char *reason;
	int n;

	if (errs->count >= SCHEMA_MAX_ERRORS) {
		errs->dropped++;
		return;
	}
	va_start(ap, fmt);
	n = vasprintf(&reason, fmt, ap);
	va_end(ap);
	if (n < 0)
		reason = xstrdup("is not valid");
	errs->items = xrealloc(errs->items, (errs->count + 1) * sizeof *errs->items);
	e = &errs->items[errs->count++];
	e->path = xstrdup(path);
	e->reason = reason;
}

static const char *type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "boolean";
	case json_type_double:
	case json_type_int:
		return "number";
	case json_type_object:
		return "object";
	case json_type_array:
		return "array";
	case json_type_string:
		return "string";
	}
	return "unknown";
}

/* "a string", "an object": how a type reads in a reason. */
static const char *type_phrase(const char *t)
{
	static const struct {
		const char *name, *phrase;
	} phrases[] = {
		{ "object", "an object" }, { "array", "an array" },   { "string", "a string" },
		{ "number", "a number" },  { "integer", "an integer" }, { "boolean", "a boolean" },
		{ "null", "null" },
	};

	for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
		if (strcmp(phrases[i].name, t) == 0)
			return phrases[i].phrase;
	return t;
}

static int type_matches(const char *t, json_object *v)
{
	enum json_type jt = json_object_get_type(v);

	if (strcmp(t, "null") == 0)
		return jt == json_type_null;
	if (strcmp(t, "boolean") == 0)
		return jt == json_type_boolean;
	if (strcmp(t, "object") == 0)
		return jt == json_type_object;
	if (strcmp(t, "array") == 0)
		return jt == json_type_array;
	if (strcmp(t, "string") == 0)
		return jt == json_type_string;
	if (strcmp(t, "number") == 0)
		return jt == json_type_int || jt == json_type_double;
	if (strcmp(t, "integer") == 0) {
		double d;

		if (jt == json_type_int)
			return 1;
		if (jt != json_type_double)
			return 0;
		/* JSON Schema: 1.0 is an integer; the type is about the value, not the spelling. */
		d = json_object_get_double(v);
		return isfinite(d) && d >= -9.0e18 && d <= 9.0e18 && (double)(long long)d == d;
	}
	return 0;
}

static int is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* JSON equality for enum: numbers by value (1 equals 1.0), objects regardless of key order. */
static int json_equal(json_object *a, json_object *b, int depth)
{
	if (depth > SCHEMA_MAX_DEPTH)
		return 0;
	if (is_number(a) && is_number(b)) {
		if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int))
			return json_object_get_int64(a) == json_object_get_int64(b);
		return json_object_get_double(a) == json_object_get_double(b);
	}
	if (json_object_get_type(a) != json_object_get_type(b))
		return 0;
	switch (json_object_get_type(a)) {
	case json_type_null:
		return 1;
	case json_type_boolean:
		return json_object_get_boolean(a) == json_object_get_boolean(b);
	case json_type_string:
		return json_object_get_string_len(a) == json_object_get_string_len(b) &&
		       memcmp(json_object_get_string(a), json_object_get_string(b),
			      (size_t)json_object_get_string_len(a)) == 0;
	case json_type_array: {
		size_t n = json_object_array_length(a);

		if (n != json_object_array_length(b))
			return 0;
		for (size_t i = 0; i < n; i++)
			if (!json_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i),
					depth + 1))
				return 0;
		return 1;
	}
	case json_type_object: {
		if (json_object_object_length(a) != json_object_object_length(b))
			return 0;
		json_object_object_foreach(a, key, av)
		{
			json_object *bv;

			if (!json_object_object_get_ex(b, key, &bv) || !json_equal(av, bv, depth + 1))
				return 0;
		}
		return 1;
	}
	default:
		return 0;
	}
}

/* A property's path: root.name for identifiers, root["odd name"] otherwise. */
static char *child_path(const char *root, const char *name)
{
	int ident = (name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') ||
		    name[0] == '_' || name[0] == '$';
	json_object *s;
	char *p;

	for (const char *c = name; ident && *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '$'))
			ident = 0;
	if (ident)
		return xasprintf("%s.%s", root, name);
	s = json_object_new_string(name);
	p = xasprintf("%s[%s]", root,
		      json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(s);
	return p;
}

static void check_type(json_object *types, json_object *v, const char *path, int *ok,
		       struct schema_errors *errs)
{
	struct buf msg;

	if (json_object_is_type(types, json_type_string)) {
		if (type_matches(json_object_get_string(types), v))
			return;
		*ok = 0;
		add_error(errs, path, "must be %s (got %s)", type_phrase(json_object_get_string(types)),
			  type_name(v));
		return;
	}
	if (!json_object_is_type(types, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(types); i++) {
		json_object *t = json_object_array_get_idx(types, i);

		if (json_object_is_type(t, json_type_string) &&
		    type_matches(json_object_get_string(t), v))
			return;
	}
	*ok = 0;
	buf_init(&msg, 1024);
	buf_puts(&msg, "must be ");
	for (size_t i = 0, named = 0; i < json_object_array_length(types); i++) {
		json_object *t = json_object_array_get_idx(types, i);

		if (!json_object_is_type(t, json_type_string))
			continue;
		buf_printf(&msg, "%s%s", named++ ? " or " : "", type_phrase(json_object_get_string(t)));
	}
	add_error(errs, path, "%s (got %s)", strcmp(msg.data, "must be ") ? msg.data : "must be of no type",
		  type_name(v));
	buf_free(&msg);
}

static void check_enum(json_object *values, json_object *v, const char *path, int *ok,
		       struct schema_errors *errs)
{
	size_t n;
	struct buf msg;

	if (!json_object_is_type(values, json_type_array))
		return;
	n = json_object_array_length(values);
	for (size_t i = 0; i < n; i++)
		if (json_equal(json_object_array_get_idx(values, i), v, 0))
			return;
	*ok = 0;
	buf_init(&msg, 2048);
	for (size_t i = 0; i < n && i < ENUM_LIST_MAX; i++)
		if (buf_printf(&msg, "%s%s", i ? ", " : "",
			       json_object_to_json_string_ext(json_object_array_get_idx(values, i),
							      JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
			break;
	add_error(errs, path, "must be one of %s%s", msg.data ? msg.data : "(nothing)",
		  n > ENUM_LIST_MAX ? ", ..." : "");
	buf_free(&msg);
}

static int validate(json_object *schema, json_object *v, const char *path, int depth,
		    struct schema_errors *errs);

static void check_object(json_object *schema, json_object *v, const char *path, int depth,
			 struct schema_errors *errs, int *ok)
{
	json_object *props = NULL, *req = NULL, *extra = NULL;

	if (!json_object_object_get_ex(schema, "properties", &props) ||
	    !json_object_is_type(props, json_type_object))
		props = NULL;
	if (json_object_object_get_ex(schema, "required", &req) &&
	    json_object_is_type(req, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(req); i++) {
			json_object *name = json_object_array_get_idx(req, i);
			char *p;

			if (!json_object_is_type(name, json_type_string) ||
			    json_object_object_get_ex(v, json_object_get_string(name), NULL))
				continue;
			*ok = 0;
			p = child_path(path, json_object_get_string(name));
			add_error(errs, p, "is required");
			free(p);
		}
	}
	if (props) {
		json_object_object_foreach(props, name, sub)
		{
			json_object *pv;
			char *p;

			if (!json_object_object_get_ex(v, name, &pv))
				continue;
			p = child_path(path, name);
			if (validate(sub, pv, p, depth + 1, errs))
				*ok = 0;
			free(p);
		}
	}
	if (!json_object_object_get_ex(schema, "additionalProperties", &extra))
		return;
	if (json_object_is_type(extra, json_type_boolean) && json_object_get_boolean(extra))
		return;
	json_object_object_foreach(v, name, pv)
	{
		char *p;

		if (props && json_object_object_get_ex(props, name, NULL))
			continue;
		p = child_path(path, name);
		if (json_object_is_type(extra, json_type_boolean)) {
			*ok = 0;
			add_error(errs, p, "is not allowed");
		} else if (validate(extra, pv, p, depth + 1, errs)) {
			*ok = 0;
		}
		free(p);
	}
}

static void check_items(json_object *items, json_object *v, const char *path, int depth,
			struct schema_errors *errs, int *ok)
{
	size_t n = json_object_array_length(v);

	for (size_t i = 0; i < n; i++) {
		json_object *sub = items;
		char *p;

		if (json_object_is_type(items, json_type_array)) {
			/* The positional (tuple) form: extra elements are unconstrained. */
			if (i >= json_object_array_length(items))
				break;
			sub = json_object_array_get_idx(items, i);
		}
		p = xasprintf("%s[%zu]", path, i);
		if (validate(sub, json_object_array_get_idx(v, i), p, depth + 1, errs))
			*ok = 0;
		free(p);
	}
}

/* 0 conforms, 1 not. */
static int validate(json_object *schema, json_object *v, const char *path, int depth,
		    struct schema_errors *errs)
{
	json_object *kw;
	int ok = 1;

	if (json_object_is_type(schema, json_type_boolean)) {
		if (json_object_get_boolean(schema))
			return 0;
		add_error(errs, path, "is not allowed");
		return 1;
	}
	if (!json_object_is_type(schema, json_type_object))
		return 0;
	if (depth > SCHEMA_MAX_DEPTH) {
		add_error(errs, path, "is nested too deeply to check");
		return 1;
	}
	if (json_object_object_get_ex(schema, "type", &kw)) {
		check_type(kw, v, path, &ok, errs);
		/* The other keywords would only repeat the mismatch. */
		if (!ok)
			return 1;
	}
	if (json_object_object_get_ex(schema, "enum", &kw))
		check_enum(kw, v, path, &ok, errs);
	if (json_object_is_type(v, json_type_object))
		check_object(schema, v, path, depth, errs, &ok);
	if (json_object_is_type(v, json_type_array) && json_object_object_get_ex(schema, "items", &kw))
		check_items(kw, v, path, depth, errs, &ok);
	return ok ? 0 : 1;
}

int schema_validate(json_object *schema, json_object *value, const char *root,
		    struct schema_errors *errs)
{
	memset(errs, 0, sizeof *errs);
	return validate(schema, value, root, 0, errs);
}

char *schema_errors_text(const struct schema_errors *errs, size_t max_bytes)
{
	struct buf b;
	char *s;

	buf_init(&b, (size_t)-1);
	buf_puts(&b, "");
	for (size_t i = 0; i < errs->count; i++)
		buf_printf(&b, "%s%s: %s", i ? "; " : "", errs->items[i].path, errs->items[i].reason);
	if (errs->dropped)
		buf_printf(&b, "; and %zu more", errs->dropped);
	s = b.data;
	if (b.len > max_bytes && max_bytes >= 4) {
		size_t n = util_utf8_cut(s, b.len, max_bytes - 3);

		memcpy(s + n, "...", 4);
	}
	return s;
}

void schema_errors_free(struct schema_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++) {
		free(errs->items[i].path);
		free(errs->items[i].reason);
	}
	free(errs->items);
	memset(errs, 0, sizeof *errs);
}
