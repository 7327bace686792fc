/* test-schema.c: unit tests for the resultSchema validator (src/agent/schema.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent/schema.h"
#include "test.h"

/* Validates value_json against schema_json; returns the error text ("" when it conforms)
 * and sets *rc_r. The caller frees the text. */
static char *check(const char *schema_json, const char *value_json, int *rc_r)
{
	json_object *schema = json_tokener_parse(schema_json);
	json_object *value = value_json ? json_tokener_parse(value_json) : NULL;
	struct schema_errors errs;
	char *text;

	if (!schema && strcmp(schema_json, "null") != 0)
		fprintf(stderr, "bad schema in test: %s\n", schema_json);
	if (value_json && !value && strcmp(value_json, "null") != 0)
		fprintf(stderr, "bad value in test: %s\n", value_json);
	*rc_r = schema_validate(schema, value, "result", &errs);
	text = schema_errors_text(&errs, 4000);
	schema_errors_free(&errs);
	json_object_put(schema);
	json_object_put(value);
	return text;
}

/* Asserts the outcome and the exact error text. */
#define expect(schema, value, want_rc, want_text) \
	do { \
		int rc_; \
		char *t_ = check((schema), (value), &rc_); \
		test_assert(rc_ == (want_rc)); \
		test_assert_str(t_, (want_text)); \
		free(t_); \
	} while (0)

static void test_types(void)
{
	test_begin("schema: each type accepts its values and refuses others");
	expect("{\"type\":\"object\"}", "{}", 0, "");
	expect("{\"type\":\"object\"}", "[]", 1, "result: must be an object (got array)");
	expect("{\"type\":\"array\"}", "[1,2]", 0, "");
	expect("{\"type\":\"array\"}", "{}", 1, "result: must be an array (got object)");
	expect("{\"type\":\"string\"}", "\"x\"", 0, "");
	expect("{\"type\":\"string\"}", "1", 1, "result: must be a string (got number)");
	expect("{\"type\":\"number\"}", "1", 0, "");
	expect("{\"type\":\"number\"}", "1.5", 0, "");
	expect("{\"type\":\"number\"}", "\"1\"", 1, "result: must be a number (got string)");
	expect("{\"type\":\"boolean\"}", "true", 0, "");
	expect("{\"type\":\"boolean\"}", "0", 1, "result: must be a boolean (got number)");
	expect("{\"type\":\"null\"}", "null", 0, "");
	expect("{\"type\":\"null\"}", "false", 1, "result: must be null (got boolean)");
	test_end();

	test_begin("schema: integer means an integral value, 1.0 included");
	expect("{\"type\":\"integer\"}", "42", 0, "");
	expect("{\"type\":\"integer\"}", "-7", 0, "");
	expect("{\"type\":\"integer\"}", "1.0", 0, "");
	expect("{\"type\":\"integer\"}", "1.5", 1, "result: must be an integer (got number)");
	expect("{\"type\":\"integer\"}", "1e300", 1, "result: must be an integer (got number)");
	expect("{\"type\":\"integer\"}", "\"3\"", 1, "result: must be an integer (got string)");
	test_end();

	test_begin("schema: type arrays (nullable fields)");
	expect("{\"type\":[\"string\",\"null\"]}", "\"a\"", 0, "");
	expect("{\"type\":[\"string\",\"null\"]}", "null", 0, "");
	expect("{\"type\":[\"string\",\"null\"]}", "3", 1,
	       "result: must be a string or null (got number)");
	expect("{\"type\":[]}", "3", 1, "result: must be of no type (got number)");
	test_end();

	test_begin("schema: no type, unknown type names, non-object schemas");
	expect("{}", "[1, {\"a\": null}]", 0, "");
	expect("{\"type\":\"date\"}", "\"2026-01-01\"", 1, "result: must be date (got string)");
	expect("true", "123", 0, "");
	expect("false", "123", 1, "result: is not allowed");
	expect("\"just a string\"", "123", 0, "");
	expect("null", "{}", 0, "");
	test_end();

	test_begin("schema: a NULL value is JSON null");
	expect("{\"type\":\"object\"}", NULL, 1, "result: must be an object (got null)");
	expect("{\"type\":[\"object\",\"null\"]}", NULL, 0, "");
	test_end();
}

static void test_objects(void)
{
	static const char w9[] =
		"{\"type\":\"object\",\"properties\":{\"signedW9Received\":{\"type\":\"boolean\"},"
		"\"receivedAt\":{\"type\":\"string\"},\"taxId\":{\"type\":\"string\"}},"
		"\"required\":[\"signedW9Received\",\"taxId\"]}";

	test_begin("schema: required names every missing member with its path");
	expect(w9, "{\"signedW9Received\":true,\"taxId\":\"12-3456789\"}", 0, "");
	expect(w9, "{\"signedW9Received\":true}", 1, "result.taxId: is required");
	expect(w9, "{}", 1, "result.signedW9Received: is required; result.taxId: is required");
	test_end();

	test_begin("schema: properties are checked when present, optional ones may be absent");
	expect(w9, "{\"signedW9Received\":\"yes\",\"taxId\":\"1\"}", 1,
	       "result.signedW9Received: must be a boolean (got string)");
	expect(w9, "{\"signedW9Received\":true,\"taxId\":\"1\",\"receivedAt\":5}", 1,
	       "result.receivedAt: must be a string (got number)");
	expect(w9, "{\"signedW9Received\":true,\"taxId\":\"1\",\"receivedAt\":null}", 1,
	       "result.receivedAt: must be a string (got null)");
	test_end();

	test_begin("schema: members not in properties are allowed unless additionalProperties says no");
	expect(w9, "{\"signedW9Received\":true,\"taxId\":\"1\",\"note\":\"x\"}", 0, "");
	expect("{\"type\":\"object\",\"properties\":{\"a\":{}},\"additionalProperties\":false}",
	       "{\"a\":1,\"b\":2}", 1, "result.b: is not allowed");
	expect("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
	       "{\"a\":1,\"b\":\"2\"}", 1, "result.b: must be an integer (got string)");
	expect("{\"type\":\"object\",\"additionalProperties\":true}", "{\"a\":1}", 0, "");
	test_end();

	test_begin("schema: required and properties only apply to objects");
	expect("{\"required\":[\"a\"],\"properties\":{\"a\":{\"type\":\"string\"}}}", "5", 0, "");
	test_end();

	test_begin("schema: nested objects give dotted paths");
	expect("{\"type\":\"object\",\"required\":[\"vendor\"],\"properties\":{\"vendor\":"
	       "{\"type\":\"object\",\"required\":[\"address\"],\"properties\":{\"address\":"
	       "{\"type\":\"object\",\"required\":[\"city\",\"zip\"],\"properties\":{\"zip\":"
	       "{\"type\":\"string\"}}}}}}}",
	       "{\"vendor\":{\"address\":{\"zip\":12345}}}", 1,
	       "result.vendor.address.city: is required; "
	       "result.vendor.address.zip: must be a string (got number)");
	test_end();

	test_begin("schema: property names that are not identifiers are quoted");
	expect("{\"required\":[\"tax id\",\"a\\\"b\",\"_ok$1\"]}", "{}", 1,
	       "result[\"tax id\"]: is required; result[\"a\\\"b\"]: is required; "
	       "result._ok$1: is required");
	test_end();
}

static void test_arrays_and_enums(void)
{
	test_begin("schema: items checks every element with its index");
	expect("{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", "[\"a\",\"b\"]", 0, "");
	expect("{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", "[\"a\",2,\"c\",false]", 1,
	       "result[1]: must be a string (got number); result[3]: must be a string (got boolean)");
	expect("{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"name\"]}}",
	       "[{\"name\":\"x\"},{}]", 1, "result[1].name: is required");
	expect("{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}}",
	       "[[1],[2,\"x\"]]", 1, "result[1][1]: must be an integer (got string)");
	test_end();

	test_begin("schema: positional items constrain their positions only");
	expect("{\"items\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "[\"a\",1,true]", 0, "");
	expect("{\"items\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "[1]", 1,
	       "result[0]: must be a string (got number)");
	test_end();

	test_begin("schema: enum compares JSON values");
	expect("{\"enum\":[\"a\",\"b\"]}", "\"b\"", 0, "");
	expect("{\"enum\":[\"a\",\"b\"]}", "\"c\"", 1, "result: must be one of \"a\", \"b\"");
	expect("{\"enum\":[1,2]}", "2.0", 0, "");
	expect("{\"enum\":[1,2]}", "\"1\"", 1, "result: must be one of 1, 2");
	expect("{\"enum\":[null,true]}", "null", 0, "");
	expect("{\"enum\":[{\"a\":1,\"b\":[1,2]}]}", "{\"b\":[1,2],\"a\":1}", 0, "");
	expect("{\"enum\":[{\"a\":1,\"b\":[1,2]}]}", "{\"b\":[2,1],\"a\":1}", 1,
	       "result: must be one of {\"a\":1,\"b\":[1,2]}");
	expect("{\"enum\":[[1,2]]}", "[1,2,3]", 1, "result: must be one of [1,2]");
	expect("{\"type\":\"string\",\"enum\":[\"W-9\",\"W-8BEN\"]}", "\"W-9\"", 0, "");
	expect("{\"type\":\"string\",\"enum\":[\"W-9\"]}", "5", 1,
	       "result: must be a string (got number)");
	test_end();

	test_begin("schema: a long enum is listed in part");
	expect("{\"enum\":[1,2,3,4,5,6,7,8,9,10,11,12]}", "0", 1,
	       "result: must be one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ...");
	test_end();
}

static void test_limits(void)
{
	struct schema_errors errs;
	json_object *schema, *value;
	char *text;
	int rc;

	test_begin("schema: at most SCHEMA_MAX_ERRORS errors are kept, the rest counted");
	schema = json_tokener_parse("{\"type\":\"array\",\"items\":{\"type\":\"string\"}}");
	value = json_object_new_array();
	for (int i = 0; i < SCHEMA_MAX_ERRORS + 8; i++)
		json_object_array_add(value, json_object_new_int(i));
	rc = schema_validate(schema, value, "result", &errs);
	test_assert(rc == 1);
	test_assert(errs.count == SCHEMA_MAX_ERRORS);
	test_assert(errs.dropped == 8);
	text = schema_errors_text(&errs, 100000);
	test_assert(strstr(text, "; and 8 more") != NULL);
	free(text);
	test_end();

	test_begin("schema: the error text is cut on a UTF-8 boundary");
	text = schema_errors_text(&errs, 40);
	test_assert(strlen(text) <= 40);
	test_assert(strcmp(text + strlen(text) - 3, "...") == 0);
	free(text);
	schema_errors_free(&errs);
	json_object_put(schema);
	json_object_put(value);
	{
		json_object *s = json_tokener_parse("{\"required\":[\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"]}");
		json_object *v = json_object_new_object();

		schema_validate(s, v, "result", &errs);
		/* "result[\"éééé\"]: is required": cut inside the é's must not split one. */
		for (size_t max = 4; max < 40; max++) {
			char *t = schema_errors_text(&errs, max);
			size_t n = strlen(t) - 3;

			test_assert(strlen(t) <= max);
			test_assert(n == 0 || ((unsigned char)t[n] & 0xc0) != 0x80);
			free(t);
		}
		schema_errors_free(&errs);
		json_object_put(s);
		json_object_put(v);
	}
	test_end();

	test_begin("schema: nesting deeper than SCHEMA_MAX_DEPTH is refused, not walked");
	{
		json_object *s = json_object_new_object(), *v = json_object_new_array();
		json_object *sp = s, *vp = v;

		for (int i = 0; i < SCHEMA_MAX_DEPTH + 5; i++) {
			json_object *ns = json_object_new_object(), *nv = json_object_new_array();

			json_object_object_add(sp, "items", ns);
			json_object_array_add(vp, nv);
			sp = ns;
			vp = nv;
		}
		rc = schema_validate(s, v, "result", &errs);
		test_assert(rc == 1);
		test_assert(errs.count == 1 && strstr(errs.items[0].reason, "too deeply") != NULL);
		schema_errors_free(&errs);
		json_object_put(s);
		json_object_put(v);
	}
	test_end();

	test_begin("schema: errors of a conforming value are empty and freeing is safe twice");
	schema = json_tokener_parse("{\"type\":\"object\"}");
	value = json_object_new_object();
	test_assert(schema_validate(schema, value, "x", &errs) == 0);
	test_assert(errs.count == 0 && errs.dropped == 0);
	text = schema_errors_text(&errs, 10);
	test_assert_str(text, "");
	free(text);
	schema_errors_free(&errs);
	schema_errors_free(&errs);
	json_object_put(schema);
	json_object_put(value);
	test_end();
}

int main(void)
{
	test_types();
	test_objects();
	test_arrays_and_enums();
	test_limits();
	return test_done();
}
