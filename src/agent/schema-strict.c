/* schema-strict.c: the response_format schemas of the two LLM calls: a case's resultSchema
 * made strict for Structured Outputs (every property required, the optional ones nullable,
 * additionalProperties false), and the nulls that form makes the model write taken out again.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent/agent-private.h"
#include "agent/schema.h"
#include "common/jsonutil.h"
#include "common/xalloc.h"

static json_object *jstring(const char *s)
{
	return json_object_new_string(s);
}

static json_object *type_pair(const char *t)
{
	json_object *a = json_object_new_array();

	json_object_array_add(a, jstring(t));
	json_object_array_add(a, jstring("null"));
	return a;
}

static json_object *strict_object(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "type", jstring("object"));
	return o;
}

/* Closes a strict object schema: every property required, nothing else allowed. */
static void strict_close(json_object *o, json_object *props)
{
	json_object *req = json_object_new_array();

	json_object_object_foreach(props, name, sub)
	{
		(void)sub;
		json_object_array_add(req, jstring(name));
	}
	json_object_object_add(o, "properties", props);
	json_object_object_add(o, "required", req);
	json_object_object_add(o, "additionalProperties", json_object_new_boolean(0));
}

/* Adds key: {"type": type} to props. */
static void add_typed(json_object *props, const char *key, json_object *type)
{
	json_object *s = json_object_new_object();

	json_object_object_add(s, "type", type);
	json_object_object_add(props, key, s);
}

json_object *llm_schema_draft(void)
{
	json_object *o = strict_object(), *props = json_object_new_object();

	add_typed(props, "subject", jstring("string"));
	add_typed(props, "body", jstring("string"));
	strict_close(o, props);
	return o;
}

static int has_type(json_object *types, const char *t)
{
	if (json_object_is_type(types, json_type_string))
		return strcmp(json_object_get_string(types), t) == 0;
	for (size_t i = 0; json_object_is_type(types, json_type_array) &&
			   i < json_object_array_length(types); i++) {
		json_object *x = json_object_array_get_idx(types, i);

		if (json_object_is_type(x, json_type_string) && strcmp(json_object_get_string(x), t) == 0)
			return 1;
	}
	return 0;
}

static int in_required(json_object *schema, const char *name)
{
	json_object *req;

	if (!json_object_object_get_ex(schema, "required", &req) ||
	    !json_object_is_type(req, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(req); i++) {
		json_object *x = json_object_array_get_idx(req, i);

		if (json_object_is_type(x, json_type_string) && strcmp(json_object_get_string(x), name) == 0)
			return 1;
	}
	return 0;
}

static void add_type(json_object *types, const char *t)
{
	if (!has_type(types, t))
		json_object_array_add(types, jstring(t));
}

/*
 * The strict form of one resultSchema node (doc/operator-guide.md, "The agent"): the same
 * types, properties, items, enum and description, with every property required (the
 * optional ones nullable) and additionalProperties false. Other keywords are left out:
 * servers differ in what they accept beyond this subset, and the result is validated here
 * anyway.
 */
static json_object *strict_of(json_object *s, int nullable, int depth)
{
	json_object *out = json_object_new_object(), *types = json_object_new_array();
	json_object *kw, *en = NULL;

	if (!json_object_is_type(s, json_type_object) || depth > SCHEMA_MAX_DEPTH)
		s = NULL;
	if (s && json_object_object_get_ex(s, "type", &kw)) {
		if (json_object_is_type(kw, json_type_string))
			add_type(types, json_object_get_string(kw));
		for (size_t i = 0; json_object_is_type(kw, json_type_array) &&
				   i < json_object_array_length(kw); i++)
			if (json_object_is_type(json_object_array_get_idx(kw, i), json_type_string))
				add_type(types,
					 json_object_get_string(json_object_array_get_idx(kw, i)));
	}
	if (s && json_object_object_get_ex(s, "enum", &kw) && json_object_is_type(kw, json_type_array))
		en = kw;
	if (json_object_array_length(types) == 0) {
		if (en) {
			static const char *const names[] = { "null", "boolean", "number", "number",
							     "object", "array", "string" };

			for (size_t i = 0; i < json_object_array_length(en); i++)
				add_type(types, names[json_object_get_type(json_object_array_get_idx(en, i))]);
		} else if (s && json_object_object_get_ex(s, "properties", NULL)) {
			add_type(types, "object");
		} else if (s && json_object_object_get_ex(s, "items", NULL)) {
			add_type(types, "array");
		} else {
			/* Any value: strict schemas need a type; the scalars cover what a form holds. */
			add_type(types, "string");
			add_type(types, "number");
			add_type(types, "boolean");
		}
	}
	if (nullable)
		add_type(types, "null");
	if (json_object_array_length(types) == 1) {
		json_object_object_add(out, "type",
				       json_object_get(json_object_array_get_idx(types, 0)));
		json_object_put(types);
	} else {
		json_object_object_add(out, "type", types);
	}
	if (s && json_object_object_get_ex(s, "description", &kw) &&
	    json_object_is_type(kw, json_type_string))
		json_object_object_add(out, "description", json_object_get(kw));
	if (en) {
		json_object *e = json_object_new_array();
		int null_seen = 0;

		for (size_t i = 0; i < json_object_array_length(en); i++) {
			json_object *x = json_object_array_get_idx(en, i);

			null_seen |= x == NULL;
			json_object_array_add(e, json_object_get(x));
		}
		if (nullable && !null_seen)
			json_object_array_add(e, NULL);
		json_object_object_add(out, "enum", e);
	}
	if (has_type(jsonutil_member(out, "type"), "object")) {
		json_object *props = json_object_new_object(), *sp = NULL;

		if (s && json_object_object_get_ex(s, "properties", &sp) &&
		    json_object_is_type(sp, json_type_object)) {
			json_object_object_foreach(sp, name, sub)
			json_object_object_add(props, name,
					       strict_of(sub, !in_required(s, name), depth + 1));
		}
		/* Without properties a strict object can only be empty; said in the README. */
		strict_close(out, props);
	}
	if (has_type(jsonutil_member(out, "type"), "array")) {
		json_object *items = NULL;

		if (s)
			json_object_object_get_ex(s, "items", &items);
		json_object_object_add(out, "items",
				       strict_of(json_object_is_type(items, json_type_object) ? items : NULL,
						 0, depth + 1));
	}
	return out;
}

json_object *llm_schema_evaluate(json_object *result_schema)
{
	json_object *o = strict_object(), *props = json_object_new_object(), *s, *en, *result;

	s = json_object_new_object();
	json_object_object_add(s, "type", jstring("string"));
	en = json_object_new_array();
	json_object_array_add(en, jstring("GOAL_ACHIEVED"));
	json_object_array_add(en, jstring("REPLY"));
	json_object_array_add(en, jstring("NEEDS_INPUT"));
	json_object_array_add(en, jstring("REJECTED"));
	json_object_object_add(s, "enum", en);
	json_object_object_add(props, "decision", s);
	add_typed(props, "reply", type_pair("string"));
	add_typed(props, "inputQuestion", type_pair("string"));
	if (result_schema) {
		result = strict_of(result_schema, 1, 0);
		if (!has_type(jsonutil_member(result, "type"), "object")) {
			/* doc/api.md, "GET /cases/{caseId}": result is an object or null,
			 * whatever the schema says. */
			json_object_put(result);
			result = json_object_new_object();
			json_object_object_add(result, "type", type_pair("object"));
			strict_close(result, json_object_new_object());
		}
	} else {
		json_object *rp = json_object_new_object();

		add_typed(rp, "summary", jstring("string"));
		result = json_object_new_object();
		json_object_object_add(result, "type", type_pair("object"));
		strict_close(result, rp);
	}
	json_object_object_add(props, "result", result);
	add_typed(props, "reason", type_pair("string"));
	strict_close(o, props);
	return o;
}

/* Removes null members the model gave for optional properties (strict schemas make it
 * write them), so that the original resultSchema judges what is left. */
void llm_strip_optional_nulls(json_object *schema, json_object *v, int depth)
{
	json_object *props, *items, *kw;

	if (!json_object_is_type(schema, json_type_object) || depth > SCHEMA_MAX_DEPTH)
		return;
	if (json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(schema, "properties", &props) &&
	    json_object_is_type(props, json_type_object)) {
		char *drop[64];
		size_t n = 0;

		json_object_object_foreach(v, name, pv)
		{
			json_object *sub = NULL;

			if (!json_object_object_get_ex(props, name, &sub))
				continue;
			if (pv == NULL && !in_required(schema, name) && n < sizeof drop / sizeof drop[0]) {
				int allows_null = json_object_object_get_ex(sub, "type", &kw) &&
						  has_type(kw, "null");

				if (!allows_null)
					drop[n++] = xstrdup(name);
				continue;
			}
			llm_strip_optional_nulls(sub, pv, depth + 1);
		}
		for (size_t i = 0; i < n; i++) {
			json_object_object_del(v, drop[i]);
			free(drop[i]);
		}
	}
	if (json_object_is_type(v, json_type_array) && json_object_object_get_ex(schema, "items", &items))
		for (size_t i = 0; i < json_object_array_length(v); i++)
			llm_strip_optional_nulls(items, json_object_array_get_idx(v, i), depth + 1);
}
