/* test-validate.c: unit tests for request body validation (src/api/validate_*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/validate.h"
#include "test.h"

#define S(lit) lit, sizeof(lit) - 1

/* Every field, plus unknown fields at each level that must not reach the stored JSON. */
static const char full_body[] =
	"{\"channel\":\"EMAIL\",\"clientReferenceId\":\"ref-1\","
	"\"goal\":{\"objective\":\"Collect a signed W-9\","
	"\"knowledge\":{\"vendorId\":\"V-1\",\"notes\":[\"a/b\",\"c\"]},\"extra\":1},"
	"\"counterparty\":{\"address\":\"jane.doe@example.com\",\"name\":\"Jane Doe\","
	"\"company\":\"Acme\",\"timezone\":\"Europe/Berlin\",\"customData\":{\"vendorCode\":\"A1\"},"
	"\"extra\":true},"
	"\"senderPersona\":{\"name\":\"Sam\",\"role\":\"AP clerk\",\"company\":\"Us Inc\","
	"\"tone\":\"friendly\",\"extra\":\"x\"},"
	"\"constraints\":[\"Be polite\",\"No attachments\"],"
	"\"maxAttempts\":5,\"followUpDelayHours\":48,"
	"\"resultSchema\":{\"type\":\"object\",\"properties\":{\"tin\":{\"type\":\"string\"}}},"
	"\"clientWebhookUrl\":\"https://hooks.example.com/offload?x=1\","
	"\"metadata\":{\"k\":\"v\",\"n\":1},\"unknownTop\":123}";

static json_object *parse_ok(const char *text)
{
	json_object *obj = NULL;
	char err[256] = "";

	if (validate_parse_json(text, strlen(text), &obj, err, sizeof err) < 0) {
		fprintf(stderr, "cannot parse test body: %s\n", err);
		abort();
	}
	return obj;
}

static int is_zero(const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return 0;
	return 1;
}

static void test_full_body(void)
{
	json_object *body = parse_ok(full_body);
	struct case_input in;
	char err[256] = "";

	test_begin("validate_case: full body");
	test_assert(validate_case(body, &in, err, sizeof err) == 0);
	test_assert_str(in.channel, "EMAIL");
	test_assert_str(in.client_reference_id, "ref-1");
	test_assert_str(in.counterparty_address, "jane.doe@example.com");
	test_assert_str(in.goal_json,
			"{\"objective\":\"Collect a signed W-9\","
			"\"knowledge\":{\"vendorId\":\"V-1\",\"notes\":[\"a/b\",\"c\"]}}");
	test_assert_str(in.counterparty_json,
			"{\"address\":\"jane.doe@example.com\",\"name\":\"Jane Doe\","
			"\"company\":\"Acme\",\"timezone\":\"Europe/Berlin\","
			"\"customData\":{\"vendorCode\":\"A1\"}}");
	test_assert_str(in.persona_json, "{\"name\":\"Sam\",\"role\":\"AP clerk\","
					 "\"company\":\"Us Inc\",\"tone\":\"friendly\"}");
	test_assert_str(in.constraints_json, "[\"Be polite\",\"No attachments\"]");
	test_assert_str(in.result_schema_json,
			"{\"type\":\"object\",\"properties\":{\"tin\":{\"type\":\"string\"}}}");
	test_assert_str(in.metadata_json, "{\"k\":\"v\",\"n\":1}");
	test_assert_str(in.client_webhook_url, "https://hooks.example.com/offload?x=1");
	test_assert(in.max_attempts == 5);
	test_assert(in.follow_up_delay_hours == 48);
	test_assert(in.send_window_json == NULL);
	case_input_free(&in);
	test_assert(is_zero(&in, sizeof in));
	case_input_free(&in); /* twice is harmless */
	test_end();
	json_object_put(body);
}

static void test_send_window(void)
{
	json_object *body = parse_ok(full_body);
	struct case_input in;
	char err[256] = "";

	test_begin("validate_case: sendWindow kept as given, with only its members");
	json_object_object_add(body, "sendWindow",
			       parse_ok("{\"end\":\"17:30\",\"days\":[\"SUN\",\"WED\"],"
					"\"start\":\"08:00\",\"tz\":\"x\"}"));
	test_assert(validate_case(body, &in, err, sizeof err) == 0);
	test_assert_str(in.send_window_json,
			"{\"days\":[\"SUN\",\"WED\"],\"start\":\"08:00\",\"end\":\"17:30\"}");
	case_input_free(&in);
	test_assert(is_zero(&in, sizeof in));
	test_end();
	json_object_put(body);
}

static void test_minimal_body(void)
{
	/* Optional fields given as null count as absent; strings are stored as given. */
	json_object *body = parse_ok(
		"{\"channel\":\"EMAIL\",\"goal\":{\"objective\":\"  padded \\u00e9 \",\"knowledge\":null},"
		"\"counterparty\":{\"address\":\"a@b.co\",\"name\":\" A \",\"company\":null,"
		"\"timezone\":null,\"customData\":null},\"senderPersona\":{\"name\":\"S\",\"role\":null},"
		"\"clientReferenceId\":null,\"constraints\":null,\"maxAttempts\":null,"
		"\"followUpDelayHours\":null,\"resultSchema\":null,\"clientWebhookUrl\":null,"
		"\"metadata\":null}");
	struct case_input in;
	char err[256] = "";

	test_begin("validate_case: minimal body and defaults");
	test_assert(validate_case(body, &in, err, sizeof err) == 0);
	test_assert_str(in.channel, "EMAIL");
	test_assert(in.client_reference_id == NULL);
	test_assert_str(in.goal_json, "{\"objective\":\"  padded \xc3\xa9 \"}");
	test_assert_str(in.counterparty_json, "{\"address\":\"a@b.co\",\"name\":\" A \"}");
	test_assert_str(in.persona_json, "{\"name\":\"S\"}");
	test_assert(in.constraints_json == NULL);
	test_assert(in.result_schema_json == NULL);
	test_assert(in.metadata_json == NULL);
	test_assert(in.client_webhook_url == NULL);
	test_assert(in.max_attempts == 3);
	test_assert(in.follow_up_delay_hours == 72);
	case_input_free(&in);
	test_end();
	json_object_put(body);

	body = parse_ok("{\"channel\":\"EMAIL\",\"goal\":{\"objective\":\"x\","
			"\"knowledge\":\"plain text\"},\"counterparty\":{\"address\":\"a@b\","
			"\"name\":\"A\"},\"senderPersona\":{\"name\":\"S\"},\"constraints\":[],"
			"\"maxAttempts\":0,\"followUpDelayHours\":1}");
	test_begin("validate_case: knowledge as string, empty constraints, lower bounds");
	test_assert(validate_case(body, &in, err, sizeof err) == 0);
	test_assert_str(in.goal_json, "{\"objective\":\"x\",\"knowledge\":\"plain text\"}");
	test_assert_str(in.constraints_json, "[]");
	test_assert(in.max_attempts == 0);
	test_assert(in.follow_up_delay_hours == 1);
	case_input_free(&in);
	test_end();
	json_object_put(body);
}

/* One change to the full body and the outcome it must have. */
struct case_row {
	const char *path;  /* dotted member path in the full body */
	const char *value; /* JSON text to put there; NULL removes the member */
	const char *error; /* the exact message, or NULL when the body stays valid */
};

#define LONG_A_64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG_B_63 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define LONG_B_61 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const struct case_row case_rows[] = {
	/* channel */
	{ "channel", NULL, "channel: is required" },
	{ "channel", "null", "channel: is required" },
	{ "channel", "\"SMS\"",
	  "channel: SMS is not available on this server (no SMS transport is configured)" },
	{ "channel", "\"email\"", "channel: must be EMAIL or SMS" },
	{ "channel", "\"FAX\"", "channel: must be EMAIL or SMS" },
	{ "channel", "1", "channel: must be EMAIL or SMS" },
	{ "channel", "\"EMAIL\\u0000\"", "channel: must be EMAIL or SMS" },
	/* goal */
	{ "goal", NULL, "goal: is required" },
	{ "goal", "null", "goal: is required" },
	{ "goal", "\"collect\"", "goal: must be an object" },
	{ "goal", "[]", "goal: must be an object" },
	{ "goal.objective", NULL, "goal.objective: is required" },
	{ "goal.objective", "null", "goal.objective: is required" },
	{ "goal.objective", "\"\"", "goal.objective: must not be empty" },
	{ "goal.objective", "\" \\t\\n \"", "goal.objective: must not be empty" },
	{ "goal.objective", "42", "goal.objective: must be a string" },
	{ "goal.objective", "\"a\\u0000b\"", "goal.objective: must not contain NUL bytes" },
	{ "goal.objective", "\"line one\\nline two\"", NULL },
	{ "goal.knowledge", NULL, NULL },
	{ "goal.knowledge", "\"\"", NULL },
	{ "goal.knowledge", "[\"a\"]", "goal.knowledge: must be a string or an object" },
	{ "goal.knowledge", "7", "goal.knowledge: must be a string or an object" },
	{ "goal.knowledge", "\"x\\u0000\"", "goal.knowledge: must not contain NUL bytes" },
	{ "goal.knowledge", "{\"a\":{\"b\":[\"ok\",\"bad\\u0000\"]}}",
	  "goal.knowledge.a.b[1]: must not contain NUL bytes" },
	/* counterparty */
	{ "counterparty", NULL, "counterparty: is required" },
	{ "counterparty", "\"jane@example.com\"", "counterparty: must be an object" },
	{ "counterparty.address", NULL, "counterparty.address: is required" },
	{ "counterparty.address", "null", "counterparty.address: is required" },
	{ "counterparty.address", "[]", "counterparty.address: must be a string" },
	{ "counterparty.address", "\"\"", "counterparty.address: must be an email address" },
	{ "counterparty.address", "\"plain\"", "counterparty.address: must be an email address" },
	{ "counterparty.address", "\"a@@b.com\"",
	  "counterparty.address: must be an email address" },
	{ "counterparty.address", "\"\\\"q\\\"@b.com\"",
	  "counterparty.address: must be an email address" },
	{ "counterparty.address", "\"a@[127.0.0.1]\"",
	  "counterparty.address: must be an email address" },
	{ "counterparty.address", "\"Jane <jane@example.com>\"",
	  "counterparty.address: must be an email address" },
	{ "counterparty.address", "\"jane@example.com\\r\\nBcc: x@evil.test\"",
	  "counterparty.address: must not contain control characters" },
	{ "counterparty.address", "\"jane@example.com\\u0000x\"",
	  "counterparty.address: must not contain NUL bytes" },
	{ "counterparty.address", "\"j\\u00e9@example.com\"",
	  "counterparty.address: must be an email address" },
	{ "counterparty.address", "\"" LONG_A_64 "@" LONG_B_63 "." LONG_B_63 "." LONG_B_61 "\"",
	  NULL },
	{ "counterparty.address", "\"" LONG_A_64 "@" LONG_B_63 "." LONG_B_63 "." LONG_B_61 "b\"",
	  "counterparty.address: must be an email address" },
	{ "counterparty.name", NULL, "counterparty.name: is required" },
	{ "counterparty.name", "\"\"", "counterparty.name: must not be empty" },
	{ "counterparty.name", "\"   \"", "counterparty.name: must not be empty" },
	{ "counterparty.name", "false", "counterparty.name: must be a string" },
	{ "counterparty.name", "\"Jane\\r\\nBcc: x@evil.test\"",
	  "counterparty.name: must not contain control characters" },
	{ "counterparty.name", "\"Jane\\nDoe\"",
	  "counterparty.name: must not contain control characters" },
	{ "counterparty.name", "\"Jane\\tDoe\"",
	  "counterparty.name: must not contain control characters" },
	{ "counterparty.name", "\"Jane\\u007fDoe\"",
	  "counterparty.name: must not contain control characters" },
	{ "counterparty.name", "\"Jane\\u0000Doe\"",
	  "counterparty.name: must not contain NUL bytes" },
	{ "counterparty.name", "\"Ren\\u00e9e M\\u00fcller\"", NULL },
	{ "counterparty.company", "\"Acme\\rInc\"",
	  "counterparty.company: must not contain control characters" },
	{ "counterparty.company", "1", "counterparty.company: must be a string" },
	{ "counterparty.company", "\"\"", NULL },
	{ "counterparty.timezone", "\"UTC\"", NULL },
	{ "counterparty.timezone", "\"America/New_York\"", NULL },
	{ "counterparty.timezone", "\"Etc/GMT+5\"", NULL },
	{ "counterparty.timezone", "\"Mars/Olympus_Mons\"",
	  "counterparty.timezone: must be an IANA time zone name" },
	{ "counterparty.timezone", "\"../../etc/passwd\"",
	  "counterparty.timezone: must be an IANA time zone name" },
	{ "counterparty.timezone", "\"/etc/passwd\"",
	  "counterparty.timezone: must be an IANA time zone name" },
	{ "counterparty.timezone", "\"Europe\"",
	  "counterparty.timezone: must be an IANA time zone name" },
	{ "counterparty.timezone", "\"\"",
	  "counterparty.timezone: must be an IANA time zone name" },
	{ "counterparty.timezone", "\"zone.tab\"",
	  "counterparty.timezone: must be an IANA time zone name" },
	{ "counterparty.timezone", "3", "counterparty.timezone: must be a string" },
	{ "counterparty.customData", "[]", "counterparty.customData: must be an object" },
	{ "counterparty.customData", "{}", NULL },
	{ "counterparty.customData", "{\"foo\":1}",
	  "counterparty.customData.foo: must be a string" },
	{ "counterparty.customData", "{\"ok\":\"x\",\"foo\":null}",
	  "counterparty.customData.foo: must be a string" },
	{ "counterparty.customData", "{\"foo\":{\"a\":\"b\"}}",
	  "counterparty.customData.foo: must be a string" },
	{ "counterparty.customData", "{\"foo\":\"a\\u0000\"}",
	  "counterparty.customData.foo: must not contain NUL bytes" },
	/* senderPersona */
	{ "senderPersona", NULL, "senderPersona: is required" },
	{ "senderPersona", "1", "senderPersona: must be an object" },
	{ "senderPersona.name", NULL, "senderPersona.name: is required" },
	{ "senderPersona.name", "\"\"", "senderPersona.name: must not be empty" },
	{ "senderPersona.name", "\"Sam\\r\\nX-Evil: 1\"",
	  "senderPersona.name: must not contain control characters" },
	{ "senderPersona.role", "\"clerk\\n\"",
	  "senderPersona.role: must not contain control characters" },
	{ "senderPersona.role", "[]", "senderPersona.role: must be a string" },
	{ "senderPersona.company", "\"Us\\nInc\"",
	  "senderPersona.company: must not contain control characters" },
	{ "senderPersona.tone", "\"warm\\nand friendly\"", NULL },
	{ "senderPersona.tone", "\"warm\\u0000\"",
	  "senderPersona.tone: must not contain NUL bytes" },
	{ "senderPersona.tone", "{}", "senderPersona.tone: must be a string" },
	/* clientReferenceId */
	{ "clientReferenceId", "5", "clientReferenceId: must be a string" },
	{ "clientReferenceId", "\"a\\u0000\"", "clientReferenceId: must not contain NUL bytes" },
	/* constraints */
	{ "constraints", "\"be nice\"", "constraints: must be an array of strings" },
	{ "constraints", "[\"a\",\"b\",\"c\",3]", "constraints[3]: must be a string" },
	{ "constraints", "[null]", "constraints[0]: must be a string" },
	{ "constraints", "[\"a\\u0000\"]", "constraints[0]: must not contain NUL bytes" },
	/* maxAttempts */
	{ "maxAttempts", "0", NULL },
	{ "maxAttempts", "20", NULL },
	{ "maxAttempts", "-0", NULL },
	{ "maxAttempts", "21", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "-1", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "3.0", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "3.5", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "\"3\"", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "true", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "1e30", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "99999999999999999999", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "18446744073709551616", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "-99999999999999999999", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "4294967299", "maxAttempts: must be an integer from 0 to 20" },
	{ "maxAttempts", "[]", "maxAttempts: must be an integer from 0 to 20" },
	/* followUpDelayHours */
	{ "followUpDelayHours", "1", NULL },
	{ "followUpDelayHours", "8760", NULL },
	{ "followUpDelayHours", "0", "followUpDelayHours: must be an integer from 1 to 8760" },
	{ "followUpDelayHours", "8761", "followUpDelayHours: must be an integer from 1 to 8760" },
	{ "followUpDelayHours", "24.0", "followUpDelayHours: must be an integer from 1 to 8760" },
	{ "followUpDelayHours", "\"24\"", "followUpDelayHours: must be an integer from 1 to 8760" },
	{ "followUpDelayHours", "1e30", "followUpDelayHours: must be an integer from 1 to 8760" },
	/* resultSchema */
	{ "resultSchema", "\"object\"", "resultSchema: must be an object" },
	{ "resultSchema", "[]", "resultSchema: must be an object" },
	{ "resultSchema", "{}", NULL },
	{ "resultSchema", "{\"enum\":[\"a\\u0000\"]}",
	  "resultSchema.enum[0]: must not contain NUL bytes" },
	/* clientWebhookUrl */
	{ "clientWebhookUrl", "\"http://example.com\"", NULL },
	{ "clientWebhookUrl", "\"http://127.0.0.1:8080/hook\"", NULL },
	{ "clientWebhookUrl", "\"HTTPS://EXAMPLE.COM/x\"", NULL },
	{ "clientWebhookUrl", "\"ftp://example.com/x\"",
	  "clientWebhookUrl: must be an absolute http or https URL" },
	{ "clientWebhookUrl", "\"http://\"",
	  "clientWebhookUrl: must be an absolute http or https URL" },
	{ "clientWebhookUrl", "\"/relative/path\"",
	  "clientWebhookUrl: must be an absolute http or https URL" },
	{ "clientWebhookUrl", "\"example.com/hook\"",
	  "clientWebhookUrl: must be an absolute http or https URL" },
	{ "clientWebhookUrl", "\"http://example.com/a b\"",
	  "clientWebhookUrl: must be an absolute http or https URL" },
	{ "clientWebhookUrl", "\"http://example.com/\\r\\nX: y\"",
	  "clientWebhookUrl: must be an absolute http or https URL" },
	{ "clientWebhookUrl", "\"\"", "clientWebhookUrl: must be an absolute http or https URL" },
	{ "clientWebhookUrl", "1", "clientWebhookUrl: must be a string" },
	/* metadata */
	{ "metadata", "\"x\"", "metadata: must be an object" },
	{ "metadata", "{}", NULL },
	{ "metadata", "{\"deep\":{\"a\":[1,true,null,\"x\\u0000\"]}}",
	  "metadata.deep.a[3]: must not contain NUL bytes" },
	/* sendWindow (the rules themselves: tests/unit/test-sendwindow.c) */
	{ "sendWindow", "null", NULL },
	{ "sendWindow", "{\"days\":[\"SAT\"],\"start\":\"00:00\",\"end\":\"23:59\"}", NULL },
	{ "sendWindow", "\"MON-FRI 09:00-17:00\"", "sendWindow: must be an object" },
	{ "sendWindow", "{\"days\":[\"MON\"],\"start\":\"9:00\",\"end\":\"17:00\"}",
	  "sendWindow.start: must be HH:MM (00:00 to 23:59)" },
	{ "sendWindow", "{\"days\":[\"MON\",\"MON\"],\"start\":\"09:00\",\"end\":\"17:00\"}",
	  "sendWindow.days[1]: MON is listed twice" },
	{ "sendWindow", "{\"days\":[\"MON\"],\"start\":\"18:00\",\"end\":\"17:00\"}",
	  "sendWindow.end: must be later than sendWindow.start" },
	/* unknown fields */
	{ "somethingNew", "{\"a\":[1,2,3]}", NULL },
	{ "goal.priority", "\"high\"", NULL },
};

/* Sets (or with value NULL removes) the member at a dotted path of obj. */
static void set_path(json_object *obj, const char *path, const char *value)
{
	char buf[128];
	char *key = buf, *dot;
	json_object *parsed;

	snprintf(buf, sizeof buf, "%s", path);
	while ((dot = strchr(key, '.'))) {
		*dot = '\0';
		if (!json_object_object_get_ex(obj, key, &obj) || !obj)
			abort();
		key = dot + 1;
	}
	if (!value)
		json_object_object_del(obj, key);
	else if (strcmp(value, "null") == 0)
		json_object_object_add(obj, key, NULL);
	else if ((parsed = json_tokener_parse(value)) != NULL)
		json_object_object_add(obj, key, parsed);
	else
		abort(); /* a typo in a table row */
}

static void run_case_row(const struct case_row *row)
{
	json_object *body = parse_ok(full_body);
	struct case_input in;
	char name[256], err[256] = "";
	int rc;

	snprintf(name, sizeof name, "validate_case: %s = %s", row->path,
		 row->value ? row->value : "(removed)");
	test_begin(name);
	set_path(body, row->path, row->value);
	memset(&in, 0x5a, sizeof in);
	rc = validate_case(body, &in, err, sizeof err);
	if (row->error) {
		test_assert(rc == -1);
		test_assert_str(err, row->error);
		test_assert(is_zero(&in, sizeof in));
	} else {
		test_assert(rc == 0);
		if (rc != 0)
			fprintf(stderr, "  unexpected error: %s\n", err);
		case_input_free(&in);
	}
	test_end();
	json_object_put(body);
}

/* Strings over their caps, built at run time. */
static void test_lengths(void)
{
	static const struct {
		const char *path;
		size_t max;
		const char *error;
	} rows[] = {
		{ "goal.objective", 10000, "goal.objective: must be at most 10000 bytes" },
		{ "goal.knowledge", 65536, "goal.knowledge: must be at most 65536 bytes" },
		{ "counterparty.name", 200, "counterparty.name: must be at most 200 bytes" },
		{ "counterparty.company", 200, "counterparty.company: must be at most 200 bytes" },
		{ "senderPersona.name", 200, "senderPersona.name: must be at most 200 bytes" },
		{ "senderPersona.role", 200, "senderPersona.role: must be at most 200 bytes" },
		{ "senderPersona.company", 200,
		  "senderPersona.company: must be at most 200 bytes" },
		{ "senderPersona.tone", 200, "senderPersona.tone: must be at most 200 bytes" },
		{ "clientReferenceId", 255, "clientReferenceId: must be at most 255 bytes" },
		{ "counterparty.customData.foo", 2000,
		  "counterparty.customData.foo: must be at most 2000 bytes" },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		for (size_t extra = 0; extra <= 1; extra++) {
			size_t n = rows[i].max + extra;
			char *value = malloc(n + 3);
			json_object *body = parse_ok(full_body);
			struct case_input in;
			char name[128], err[256] = "";
			int rc;

			value[0] = '"';
			memset(value + 1, 'x', n);
			value[n + 1] = '"';
			value[n + 2] = '\0';
			snprintf(name, sizeof name, "validate_case: %s of %zu bytes", rows[i].path,
				 n);
			test_begin(name);
			set_path(body, rows[i].path, value);
			rc = validate_case(body, &in, err, sizeof err);
			if (extra) {
				test_assert(rc == -1);
				test_assert_str(err, rows[i].error);
			} else {
				test_assert(rc == 0);
				case_input_free(&in);
			}
			test_end();
			json_object_put(body);
			free(value);
		}
	}
}

/* Arrays and objects over their caps. */
static void test_collections(void)
{
	json_object *body, *list, *obj;
	struct case_input in;
	char err[256] = "", key[128];
	char *big;
	int rc;

	test_begin("validate_case: 50 constraints pass, 51 fail");
	body = parse_ok(full_body);
	list = json_object_new_array();
	for (int i = 0; i < 50; i++)
		json_object_array_add(list, json_object_new_string("c"));
	json_object_object_add(body, "constraints", list);
	rc = validate_case(body, &in, err, sizeof err);
	test_assert(rc == 0);
	if (rc == 0)
		case_input_free(&in);
	json_object_array_add(list, json_object_new_string("c"));
	test_assert(validate_case(body, &in, err, sizeof err) == -1);
	test_assert_str(err, "constraints: must have at most 50 items");
	json_object_put(body);
	test_end();

	test_begin("validate_case: a constraint over 2000 bytes");
	body = parse_ok(full_body);
	big = calloc(1, 2002);
	memset(big, 'x', 2001);
	list = json_object_new_array();
	json_object_array_add(list, json_object_new_string("ok"));
	json_object_array_add(list, json_object_new_string(big));
	json_object_object_add(body, "constraints", list);
	test_assert(validate_case(body, &in, err, sizeof err) == -1);
	test_assert_str(err, "constraints[1]: must be at most 2000 bytes");
	free(big);
	json_object_put(body);
	test_end();

	test_begin("validate_case: customData with 100 keys passes, 101 fail");
	body = parse_ok(full_body);
	obj = json_object_new_object();
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		json_object_object_add(obj, key, json_object_new_string("v"));
	}
	set_path(body, "counterparty.customData", "{}");
	json_object_object_get_ex(body, "counterparty", &list);
	json_object_object_add(list, "customData", obj);
	rc = validate_case(body, &in, err, sizeof err);
	test_assert(rc == 0);
	if (rc == 0)
		case_input_free(&in);
	json_object_object_add(obj, "k100", json_object_new_string("v"));
	test_assert(validate_case(body, &in, err, sizeof err) == -1);
	test_assert_str(err, "counterparty.customData: must have at most 100 keys");
	json_object_put(body);
	test_end();

	test_begin("validate_case: customData key over 100 bytes");
	body = parse_ok(full_body);
	memset(key, 'k', 101);
	key[101] = '\0';
	json_object_object_get_ex(body, "counterparty", &list);
	json_object_object_get_ex(list, "customData", &obj);
	json_object_object_add(obj, key, json_object_new_string("v"));
	test_assert(validate_case(body, &in, err, sizeof err) == -1);
	test_assert_str(err, "counterparty.customData: keys must be at most 100 bytes");
	json_object_put(body);
	test_end();

	test_begin("validate_case: serialised caps of knowledge, resultSchema, metadata");
	{
		static const struct {
			const char *field;
			size_t max;
			const char *error;
		} caps[] = {
			{ "goal.knowledge", 65536, "goal.knowledge: must be at most 65536 bytes" },
			{ "resultSchema", 65536, "resultSchema: must be at most 65536 bytes" },
			{ "metadata", 16384, "metadata: must be at most 16384 bytes" },
		};

		for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
			/* {"a":"xxx"} is 8 bytes plus the string: fill to exactly max, then one more. */
			size_t fill = caps[i].max - 8;

			for (size_t extra = 0; extra <= 1; extra++) {
				char *text = malloc(fill + extra + 16);

				memcpy(text, "{\"a\":\"", 6);
				memset(text + 6, 'y', fill + extra);
				memcpy(text + 6 + fill + extra, "\"}", 3);
				body = parse_ok(full_body);
				set_path(body, caps[i].field, text);
				rc = validate_case(body, &in, err, sizeof err);
				if (extra) {
					test_assert(rc == -1);
					test_assert_str(err, caps[i].error);
				} else {
					test_assert(rc == 0);
					if (rc == 0)
						case_input_free(&in);
				}
				json_object_put(body);
				free(text);
			}
		}
	}
	test_end();

	test_begin("validate_case: body that is not an object");
	body = json_object_new_array();
	test_assert(validate_case(body, &in, err, sizeof err) == -1);
	test_assert_str(err, "body: must be a JSON object");
	json_object_put(body);
	test_end();
}

/* Raw bodies through validate_parse_json. */
struct parse_row {
	const char *name;
	const char *text;
	size_t len;
	const char *error; /* NULL: parses to an object */
};

static const struct parse_row parse_rows[] = {
	{ "empty", S(""), "body: must be a JSON object" },
	{ "whitespace only", S(" \r\n\t"), "body: must be a JSON object" },
	{ "array", S("[1,2]"), "body: must be a JSON object" },
	{ "number", S("123"), "body: must be a JSON object" },
	{ "string", S("\"x\""), "body: must be a JSON object" },
	{ "null", S("null"), "body: must be a JSON object" },
	{ "true", S("true"), "body: must be a JSON object" },
	{ "empty object", S("{}"), NULL },
	{ "object with whitespace around", S(" \n{ \"a\" : [ 1 , 2 ] }\r\n\t "), NULL },
	{ "byte order mark", S("\xef\xbb\xbf{}"), NULL },
	{ "UTF-8 text", S("{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}"), NULL },
	{ "escaped slash and unicode", S("{\"a\":\"\\/\\u00e9\\ud83d\\ude00\"}"), NULL },
	{ "trailing garbage", S("{} x"), "body: not valid JSON" },
	{ "two objects", S("{}{}"), "body: not valid JSON" },
	{ "trailing comma", S("{\"a\":1,}"), "body: not valid JSON" },
	{ "truncated", S("{\"a\":1"), "body: not valid JSON" },
	{ "truncated string", S("{\"a\":\"x"), "body: not valid JSON" },
	{ "single quotes", S("{'a':1}"), "body: not valid JSON" },
	{ "single-quoted value", S("{\"a\":'b'}"), "body: not valid JSON" },
	{ "unquoted name", S("{a:1}"), "body: not valid JSON" },
	{ "comment", S("{/*x*/}"), "body: not valid JSON" },
	{ "NaN", S("{\"a\":NaN}"), "body: not valid JSON" },
	{ "Infinity", S("{\"a\":Infinity}"), "body: not valid JSON" },
	{ "-Infinity", S("{\"a\":-Infinity}"), "body: not valid JSON" },
	{ "number ending in a dot", S("{\"a\":1.}"), "body: not valid JSON" },
	{ "dot then exponent", S("{\"a\":1.e5}"), "body: not valid JSON" },
	{ "leading zero", S("{\"a\":01}"), "body: not valid JSON" },
	{ "plus sign", S("{\"a\":+1}"), "body: not valid JSON" },
	{ "exponent forms", S("{\"a\":1E5,\"b\":-1.5e-3,\"c\":0.0}"), NULL },
	{ "bad escape", S("{\"a\":\"\\x\"}"), "body: not valid JSON" },
	{ "raw tab in string", S("{\"a\":\"x\ty\"}"), "body: not valid JSON" },
	{ "raw newline in string", S("{\"a\":\"x\ny\"}"), "body: not valid JSON" },
	{ "raw NUL in string", S("{\"a\":\"x\0y\"}"), "body: not valid JSON" },
	{ "NUL after the object", S("{}\0"), "body: not valid JSON" },
	{ "invalid UTF-8 byte", S("{\"a\":\"\xff\"}"), "body: not valid UTF-8" },
	{ "truncated UTF-8 sequence", S("{\"a\":\"\xc3\"}"), "body: not valid UTF-8" },
	{ "bad continuation byte", S("{\"a\":\"\xc3\x28\"}"), "body: not valid UTF-8" },
	{ "overlong encoding", S("{\"a\":\"\xc0\xaf\"}"), "body: not valid UTF-8" },
	{ "encoded surrogate", S("{\"a\":\"\xed\xa0\x80\"}"), "body: not valid UTF-8" },
	{ "above U+10FFFF", S("{\"a\":\"\xf4\x90\x80\x80\"}"), "body: not valid UTF-8" },
	{ "invalid UTF-8 outside strings", S("{}\xfe"), "body: not valid UTF-8" },
	{ "latin-1 text", S("{\"a\":\"caf\xe9\"}"), "body: not valid UTF-8" },
	/* json-c cuts member names at an escaped NUL, so they are refused while parsing. */
	{ "NUL in a member name", S("{\"a\\u0000b\":1}"),
	  "body: member names must not contain NUL bytes" },
	{ "NUL in a nested member name", S("{\"x\":[{\"k\\u0000\" : \"v\"}]}"),
	  "body: member names must not contain NUL bytes" },
	{ "NUL in a name and in its value", S("{\"a\\u0000\":\"\\u0000\",\"b\":1}"),
	  "body: member names must not contain NUL bytes" },
	{ "escaped NUL in a value", S("{\"a\":\"x\\u0000\",\"b\":[\"\\u0000\"]}"), NULL },
	{ "escaped backslash before u0000", S("{\"\\\\u0000\":1}"), NULL },
};

static void run_parse_row(const struct parse_row *row)
{
	json_object *obj = (json_object *)1;
	char name[128], err[256] = "";
	int rc;

	snprintf(name, sizeof name, "validate_parse_json: %s", row->name);
	test_begin(name);
	rc = validate_parse_json(row->text, row->len, &obj, err, sizeof err);
	if (row->error) {
		test_assert(rc == -1);
		test_assert(obj == NULL);
		test_assert_str(err, row->error);
	} else {
		test_assert(rc == 0);
		test_assert(obj != NULL && json_object_is_type(obj, json_type_object));
		if (rc != 0)
			fprintf(stderr, "  unexpected error: %s\n", err);
		json_object_put(obj);
	}
	test_end();
}

/* levels nested objects: {"a":{"a":...{}...}}. */
static char *nested(int levels)
{
	char *s = malloc((size_t)levels * 6 + 1), *p = s;

	for (int i = 0; i < levels - 1; i++) {
		memcpy(p, "{\"a\":", 5);
		p += 5;
	}
	memcpy(p, "{}", 2);
	p += 2;
	for (int i = 0; i < levels - 1; i++)
		*p++ = '}';
	*p = '\0';
	return s;
}

static void test_depth(void)
{
	static const struct {
		int levels;
		int ok;
	} rows[] = { { 1, 1 }, { 31, 1 }, { 32, 1 }, { 33, 0 }, { 34, 0 }, { 1000, 0 } };
	json_object *obj;
	char err[256], name[64];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *text = nested(rows[i].levels);
		int rc;

		snprintf(name, sizeof name, "validate_parse_json: %d levels of nesting",
			 rows[i].levels);
		test_begin(name);
		err[0] = '\0';
		rc = validate_parse_json(text, strlen(text), &obj, err, sizeof err);
		if (rows[i].ok) {
			test_assert(rc == 0);
			if (rc == 0)
				json_object_put(obj);
		} else {
			test_assert(rc == -1);
			test_assert_str(err, "body: nested too deeply");
		}
		test_end();
		free(text);
	}

	test_begin("validate_parse_json: 33 levels of arrays");
	{
		char text[80];

		memset(text, '[', 33);
		memset(text + 33, ']', 33);
		text[66] = '\0';
		test_assert(validate_parse_json(text, 66, &obj, err, sizeof err) == -1);
		test_assert_str(err, "body: nested too deeply");
	}
	test_end();

	test_begin("validate_parse_json: body over 256 KiB");
	{
		size_t n = VALIDATE_MAX_BODY + 1;
		char *text = malloc(n);

		memset(text, ' ', n);
		text[0] = '{';
		text[n - 1] = '}';
		test_assert(validate_parse_json(text, n, &obj, err, sizeof err) == -1);
		test_assert_str(err, "body: must be at most 262144 bytes");
		text[n - 2] = '}';
		test_assert(validate_parse_json(text, n - 1, &obj, err, sizeof err) == 0);
		json_object_put(obj);
		free(text);
	}
	test_end();

	test_begin("validate_parse_json: a small error buffer is not overrun");
	{
		char small[8];

		memset(small, 'z', sizeof small);
		test_assert(validate_parse_json("[]", 2, &obj, small, 5) == -1);
		test_assert_str(small, "body");
		test_assert(small[5] == 'z');
	}
	test_end();
}

static void test_email(void)
{
	static const char *const good[] = {
		"a@b",
		"jane.doe@example.com",
		"x+tag@sub.example.co.uk",
		"o'brien@example.ie",
		"a!#$%&'*+-/=?^_`{|}~@example.com",
		"UPPER@EXAMPLE.COM",
		"user@xn--bcher-kva.de",
		"1@2.3",
		"a@a-b.c-d",
		LONG_A_64 "@example.com",
		"a@" LONG_B_63 ".com",
	};
	static const char *const bad[] = {
		"",
		"plain",
		"@example.com",
		"a@",
		"a@@b.com",
		"a@b@c.com",
		".a@b.com",
		"a.@b.com",
		"a..b@c.com",
		"\"quoted\"@example.com",
		"\"a b\"@example.com",
		"a@[127.0.0.1]",
		"a@[IPv6:::1]",
		"a@-b.com",
		"a@b-.com",
		"a@b..com",
		"a@.b.com",
		"a@b.com.",
		"a b@c.com",
		"a@b .com",
		" a@b.com",
		"a@b.com ",
		"a\r\n@b.com",
		"a@b.com\r\nBcc: x@y.com",
		"a@b.com\n",
		"a\t@b.com",
		"j\xc3\xa9@example.com",
		"a@ex\xc3\xa4mple.com",
		"a@b_c.com",
		"a(comment)@b.com",
		"a,b@c.com",
		"a;b@c.com",
		"<a@b.com>",
		"a@b.com>",
		LONG_A_64 "a@example.com",
		"a@" LONG_B_63 "b.com",
	};
	char long_ok[300], long_bad[300];

	test_begin("validate_email_address: good addresses");
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (!validate_email_address(good[i], strlen(good[i]))) {
			fprintf(stderr, "  refused: %s\n", good[i]);
			test_assert(!"a good address was refused");
		}
	}
	test_end();

	test_begin("validate_email_address: bad addresses");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (validate_email_address(bad[i], strlen(bad[i]))) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			test_assert(!"a bad address was accepted");
		}
	}
	/* A NUL inside the given length is not part of any address. */
	test_assert(!validate_email_address("a@b.com\0x", 9));
	test_assert(validate_email_address("a@b.com\0x", 7));
	test_end();

	test_begin("validate_email_address: 254 bytes pass, 255 fail");
	/* 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254 */
	snprintf(long_ok, sizeof long_ok, "%s@%s.%s.%.61s", LONG_A_64, LONG_B_63, LONG_B_63,
		 LONG_B_63);
	test_assert(strlen(long_ok) == 254);
	test_assert(validate_email_address(long_ok, strlen(long_ok)));
	snprintf(long_bad, sizeof long_bad, "%s@%s.%s.%.62s", LONG_A_64, LONG_B_63, LONG_B_63,
		 LONG_B_63);
	test_assert(strlen(long_bad) == 255);
	test_assert(!validate_email_address(long_bad, strlen(long_bad)));
	test_end();
}

static void test_timezone(void)
{
	static const char *const good[] = {
		"UTC",       "Europe/Berlin", "America/New_York", "America/Argentina/Buenos_Aires",
		"Etc/GMT+5", "Etc/GMT-14",    "Asia/Kolkata",
	};
	static const char *const bad[] = {
		"",
		"utc/",
		"Mars/Olympus_Mons",
		"Europe",
		"Europe/",
		"/UTC",
		"/etc/passwd",
		"../../../../etc/passwd",
		"Europe/../UTC",
		"Europe//Berlin",
		"./UTC",
		"Europe/Berlin ",
		" UTC",
		"Europe\\Berlin",
		"UTC\n",
		"zone.tab",
		"tzdata.zi",
		"iso3166.tab",
		"Europe/Berlin\xc3\xa9",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};

	test_begin("validate_timezone: zones in the system database");
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (!validate_timezone(good[i])) {
			fprintf(stderr, "  refused: %s\n", good[i]);
			test_assert(!"a good zone was refused");
		}
	}
	test_end();

	test_begin("validate_timezone: names that are not zones");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (validate_timezone(bad[i])) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			test_assert(!"a bad zone was accepted");
		}
	}
	test_end();
}

static void test_url(void)
{
	static const char *const good[] = {
		"http://example.com",
		"https://example.com/",
		"https://hooks.example.com:8443/a/b?c=d&e=f#frag",
		"http://127.0.0.1:9/hook",
		"http://[::1]:8080/x",
		"HTTPS://EXAMPLE.COM/X",
		"http://user:pw@example.com/",
		"http://localhost/%20encoded",
	};
	static const char *const bad[] = {
		"",
		"ftp://example.com/file",
		"file:///etc/passwd",
		"gopher://example.com/",
		"javascript:alert(1)",
		"mailto:a@b.com",
		"http://",
		"https://",
		"http:///path",
		"http://?q",
		"http://#f",
		"http://:80/",
		"http:/example.com",
		"http:example.com",
		"//example.com/x",
		"/relative",
		"example.com",
		"http://exa mple.com/",
		"http://example.com/a b",
		" http://example.com/",
		"http://example.com/ ",
		"http://example.com/\r\nX-Injected: 1",
		"http://example.com/\t",
		"http://example.com/\x7f",
		"http://ex\xc3\xa4mple.com/",
		"http://example.com:99999/",
		"http://example.com:port/",
		"http://[zz]/",
	};
	char *long_url;

	test_begin("validate_http_url: good URLs");
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (!validate_http_url(good[i])) {
			fprintf(stderr, "  refused: %s\n", good[i]);
			test_assert(!"a good URL was refused");
		}
	}
	test_end();

	test_begin("validate_http_url: bad URLs");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (validate_http_url(bad[i])) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			test_assert(!"a bad URL was accepted");
		}
	}
	test_end();

	test_begin("validate_http_url: 2048 chars pass, 2049 fail");
	long_url = malloc(2050);
	memcpy(long_url, "https://example.com/", 20);
	memset(long_url + 20, 'a', 2048 - 20);
	long_url[2048] = '\0';
	test_assert(validate_http_url(long_url));
	long_url[2048] = 'a';
	long_url[2049] = '\0';
	test_assert(!validate_http_url(long_url));
	free(long_url);
	test_end();

	test_begin("validate_case: clientWebhookUrl over 2048 bytes");
	{
		json_object *body = parse_ok(full_body);
		struct case_input in;
		char err[256], *text = malloc(2100);

		memcpy(text, "\"https://example.com/", 21);
		memset(text + 21, 'a', 2049 - 20);
		memcpy(text + 21 + 2049 - 20, "\"", 2);
		set_path(body, "clientWebhookUrl", text);
		test_assert(validate_case(body, &in, err, sizeof err) == -1);
		test_assert_str(err, "clientWebhookUrl: must be at most 2048 bytes");
		free(text);
		json_object_put(body);
	}
	test_end();
}

/* POST /cases/{id}/input bodies. */
struct input_row {
	const char *name;
	const char *text;
	const char *error; /* NULL: valid */
	enum input_outcome outcome;
	const char *request_id;
	const char *context;
	const char *decision_json;
};

/* A row for a body that must be refused with error. */
#define BAD(name, text, error)                                                                     \
	{                                                                                          \
		name, text, error, INPUT_OUTCOME_NONE, NULL, NULL, NULL                            \
	}

static const struct input_row input_rows[] = {
	{ "plain answer", "{\"inputRequestId\":\"r1\",\"providedContext\":\"The TIN is 12\"}", NULL,
	  INPUT_OUTCOME_NONE, "r1", "The TIN is 12", NULL },
	{ "trimmed", "{\"inputRequestId\":\" \\tr1\\n\",\"providedContext\":\"\\r\\n  yes  \\n\"}",
	  NULL, INPUT_OUTCOME_NONE, "r1", "yes", NULL },
	{ "inner whitespace kept", "{\"inputRequestId\":\"r1\",\"providedContext\":\"a\\n\\nb\"}",
	  NULL, INPUT_OUTCOME_NONE, "r1", "a\n\nb", NULL },
	{ "decision null",
	  "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":null}", NULL,
	  INPUT_OUTCOME_NONE, "r1", "x", NULL },
	{ "unknown fields ignored",
	  "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"other\":[1]}", NULL,
	  INPUT_OUTCOME_NONE, "r1", "x", NULL },
	BAD("missing inputRequestId", "{\"providedContext\":\"x\"}", "inputRequestId: is required"),
	BAD("null inputRequestId", "{\"inputRequestId\":null,\"providedContext\":\"x\"}",
	    "inputRequestId: is required"),
	BAD("numeric inputRequestId", "{\"inputRequestId\":7,\"providedContext\":\"x\"}",
	    "inputRequestId: must be a string"),
	BAD("blank inputRequestId", "{\"inputRequestId\":\"  \",\"providedContext\":\"x\"}",
	    "inputRequestId: must not be empty"),
	BAD("NUL in inputRequestId", "{\"inputRequestId\":\"r\\u0000\",\"providedContext\":\"x\"}",
	    "inputRequestId: must not contain NUL bytes"),
	BAD("long inputRequestId",
	    "{\"inputRequestId\":\"" LONG_A_64 "a\",\"providedContext\":\"x\"}",
	    "inputRequestId: must be at most 64 bytes"),
	{ "64-byte inputRequestId with padding",
	  "{\"inputRequestId\":\"  " LONG_A_64 "  \",\"providedContext\":\"x\"}", NULL,
	  INPUT_OUTCOME_NONE, LONG_A_64, "x", NULL },
	BAD("missing providedContext", "{\"inputRequestId\":\"r1\"}",
	    "providedContext: is required"),
	BAD("empty providedContext", "{\"inputRequestId\":\"r1\",\"providedContext\":\"\"}",
	    "providedContext: must not be empty"),
	BAD("object providedContext", "{\"inputRequestId\":\"r1\",\"providedContext\":{}}",
	    "providedContext: must be a string"),
	BAD("NUL in providedContext",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"a\\u0000b\"}",
	    "providedContext: must not contain NUL bytes"),
	{ "goal achieved",
	  "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	  "\"GOAL_ACHIEVED\",\"result\":{\"tin\":\"12/3\"},\"reply\":\"ignored\",\"extra\":1}}",
	  NULL, INPUT_OUTCOME_GOAL_ACHIEVED, "r1", "x",
	  "{\"outcome\":\"GOAL_ACHIEVED\",\"result\":{\"tin\":\"12/3\"}}" },
	{ "reply",
	  "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	  "\"REPLY\",\"reply\":\"Thanks!\\nSam\",\"result\":{}}}",
	  NULL, INPUT_OUTCOME_REPLY, "r1", "x",
	  "{\"outcome\":\"REPLY\",\"reply\":\"Thanks!\\nSam\"}" },
	{ "rejected",
	  "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	  "\"REJECTED\",\"reason\":\"vendor refused\"}}",
	  NULL, INPUT_OUTCOME_REJECTED, "r1", "x",
	  "{\"outcome\":\"REJECTED\",\"reason\":\"vendor refused\"}" },
	{ "wait",
	  "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":\"WAIT\","
	  "\"reason\":\"ignored\"}}",
	  NULL, INPUT_OUTCOME_WAIT, "r1", "x", "{\"outcome\":\"WAIT\"}" },
	BAD("decision not an object",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":\"WAIT\"}",
	    "decision: must be an object"),
	BAD("decision without outcome",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{}}",
	    "decision.outcome: is required"),
	BAD("unknown outcome",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	    "\"NEEDS_INPUT\"}}",
	    "decision.outcome: must be one of GOAL_ACHIEVED, REPLY, REJECTED, WAIT"),
	BAD("lower-case outcome",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":\"wait\"}}",
	    "decision.outcome: must be one of GOAL_ACHIEVED, REPLY, REJECTED, WAIT"),
	BAD("numeric outcome",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":1}}",
	    "decision.outcome: must be one of GOAL_ACHIEVED, REPLY, REJECTED, WAIT"),
	BAD("outcome with NUL",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	    "\"WAIT\\u0000x\"}}",
	    "decision.outcome: must be one of GOAL_ACHIEVED, REPLY, REJECTED, WAIT"),
	BAD("goal achieved without result",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	    "\"GOAL_ACHIEVED\"}}",
	    "decision.result: is required"),
	BAD("goal achieved with array result",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	    "\"GOAL_ACHIEVED\",\"result\":[1]}}",
	    "decision.result: must be an object"),
	BAD("goal achieved with NUL in result",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	    "\"GOAL_ACHIEVED\",\"result\":{\"a\":\"\\u0000\"}}}",
	    "decision.result.a: must not contain NUL bytes"),
	BAD("reply without text",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":\"REPLY\"}}",
	    "decision.reply: is required"),
	BAD("blank reply",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":\"REPLY\","
	    "\"reply\":\" \\n \"}}",
	    "decision.reply: must not be empty"),
	BAD("reply not a string",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":\"REPLY\","
	    "\"reply\":{}}}",
	    "decision.reply: must be a string"),
	BAD("rejected without reason",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	    "\"REJECTED\",\"reason\":null}}",
	    "decision.reason: is required"),
	BAD("rejected with empty reason",
	    "{\"inputRequestId\":\"r1\",\"providedContext\":\"x\",\"decision\":{\"outcome\":"
	    "\"REJECTED\",\"reason\":\"\"}}",
	    "decision.reason: must not be empty"),
};

static void run_input_row(const struct input_row *row)
{
	json_object *body = parse_ok(row->text);
	struct input_input in;
	char name[128], err[256] = "";
	int rc;

	snprintf(name, sizeof name, "validate_input: %s", row->name);
	test_begin(name);
	memset(&in, 0x5a, sizeof in);
	rc = validate_input(body, &in, err, sizeof err);
	if (row->error) {
		test_assert(rc == -1);
		test_assert_str(err, row->error);
		test_assert(is_zero(&in, sizeof in));
	} else {
		test_assert(rc == 0);
		if (rc != 0) {
			fprintf(stderr, "  unexpected error: %s\n", err);
		} else {
			test_assert(in.outcome == row->outcome);
			test_assert_str(in.input_request_id, row->request_id);
			test_assert_str(in.provided_context, row->context);
			if (row->decision_json)
				test_assert_str(in.decision_json, row->decision_json);
			else
				test_assert(in.decision_json == NULL);
		}
		input_input_free(&in);
	}
	test_end();
	json_object_put(body);
}

static void test_input_lengths(void)
{
	static const struct {
		const char *key;
		size_t max;
		const char *error;
	} rows[] = {
		{ "providedContext", 20000, "providedContext: must be at most 20000 bytes" },
		{ "reply", 20000, "decision.reply: must be at most 20000 bytes" },
		{ "reason", 2000, "decision.reason: must be at most 2000 bytes" },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		for (size_t extra = 0; extra <= 1; extra++) {
			size_t n = rows[i].max + extra;
			char *big = malloc(n + 1), name[128], err[256];
			json_object *body, *decision;
			struct input_input in;
			int rc;

			memset(big, 'x', n);
			big[n] = '\0';
			body = parse_ok("{\"inputRequestId\":\"r1\",\"providedContext\":\"x\"}");
			if (strcmp(rows[i].key, "providedContext") == 0) {
				json_object_object_add(body, "providedContext",
						       json_object_new_string(big));
			} else {
				decision = json_object_new_object();
				json_object_object_add(
					decision, "outcome",
					json_object_new_string(strcmp(rows[i].key, "reply") == 0
								       ? "REPLY"
								       : "REJECTED"));
				json_object_object_add(decision, rows[i].key,
						       json_object_new_string(big));
				json_object_object_add(body, "decision", decision);
			}
			snprintf(name, sizeof name, "validate_input: %s of %zu bytes", rows[i].key,
				 n);
			test_begin(name);
			rc = validate_input(body, &in, err, sizeof err);
			if (extra) {
				test_assert(rc == -1);
				test_assert_str(err, rows[i].error);
			} else {
				test_assert(rc == 0);
				if (rc == 0)
					input_input_free(&in);
			}
			test_end();
			json_object_put(body);
			free(big);
		}
	}
}

static void test_idempotency_key(void)
{
	char k[1100];

	test_begin("Idempotency-Key: 1 to 255 characters of UTF-8 without controls");
	test_assert(validate_idempotency_key("order-1"));
	test_assert(!validate_idempotency_key(""));
	memset(k, 'k', 255);
	k[255] = '\0';
	test_assert(validate_idempotency_key(k));
	k[255] = 'k';
	k[256] = '\0';
	test_assert(!validate_idempotency_key(k));
	/* 255 two-byte characters: 510 bytes, still 255 characters */
	for (int i = 0; i < 255; i++)
		memcpy(k + 2 * i, "\xc3\xa9", 2);
	k[510] = '\0';
	test_assert(validate_idempotency_key(k));
	memcpy(k + 510, "\xc3\xa9", 3);
	test_assert(!validate_idempotency_key(k));
	test_assert(validate_idempotency_key("caf\xc3\xa9 \xf0\x9f\x98\x80"));
	test_assert(!validate_idempotency_key("a\tb"));
	test_assert(!validate_idempotency_key("a\x7f"));
	test_assert(!validate_idempotency_key("a\xc2\x85" "b"));    /* NEL, a C1 control */
	test_assert(validate_idempotency_key("a\xc2\xa0" "b"));     /* NO-BREAK SPACE */
	test_assert(!validate_idempotency_key("a\xff" "b"));         /* not UTF-8 */
	test_assert(!validate_idempotency_key("a\xc3"));          /* cut short */
	test_assert(!validate_idempotency_key("\xed\xa0\x80")); /* a surrogate */
	test_end();
}

/* A POST /cases body with channel SMS and counterparty.address addr (JSON text). */
static int sms_case(const char *addr_json, struct case_input *in, char *err, size_t errlen)
{
	char text[512];
	json_object *body;
	int rc;

	snprintf(text, sizeof text,
		 "{\"channel\":\"SMS\",\"goal\":{\"objective\":\"o\"},"
		 "\"counterparty\":{\"address\":%s,\"name\":\"Ann\"},"
		 "\"senderPersona\":{\"name\":\"S\"}}", addr_json);
	body = parse_ok(text);
	rc = validate_case(body, in, err, errlen);
	json_object_put(body);
	return rc;
}

static void test_sms(void)
{
	static const char *const bad[] = {
		"\"15551234567\"", "\"+1555123\"", "\"+1234567890123456\"", "\"+1 (555) 123-4567\"",
		"\"jane@example.com\"", "\"+1555\\n1234567\"", "\"\"", "15551234567",
	};
	struct case_input in;
	char err[256] = "";

	test_begin("validate_case: SMS without a transport is refused, naming the channel");
	validate_set_sms(0);
	test_assert(sms_case("\"+15551234567\"", &in, err, sizeof err) == -1);
	test_assert_str(err, "channel: SMS is not available on this server (no SMS transport is "
			"configured)");
	test_end();

	test_begin("validate_case: SMS with a transport stores the E.164 number without separators");
	validate_set_sms(1);
	test_assert(sms_case("\"+1 555-123.4567\"", &in, err, sizeof err) == 0);
	test_assert_str(in.channel, "SMS");
	test_assert_str(in.counterparty_address, "+15551234567");
	test_assert_str(in.counterparty_json, "{\"address\":\"+15551234567\",\"name\":\"Ann\"}");
	case_input_free(&in);
	test_end();

	test_begin("validate_case: an SMS number that is not E.164 names counterparty.address");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		if (sms_case(bad[i], &in, err, sizeof err) != -1 ||
		    strncmp(err, "counterparty.address: ", 22) != 0) {
			fprintf(stderr, "%s: \"%s\"\n", bad[i], err);
			test_assert(0);
		}
	}
	test_end();

	test_begin("validate_case: EMAIL is unchanged when SMS is on");
	{
		json_object *body = parse_ok("{\"channel\":\"EMAIL\",\"goal\":{\"objective\":\"o\"},"
					     "\"counterparty\":{\"address\":\"+15551234567\","
					     "\"name\":\"A\"},\"senderPersona\":{\"name\":\"S\"}}");

		test_assert(validate_case(body, &in, err, sizeof err) == -1);
		test_assert_str(err, "counterparty.address: must be an email address");
		json_object_put(body);
	}
	test_end();
	validate_set_sms(0);
}

int main(void)
{
	test_full_body();
	test_send_window();
	test_minimal_body();
	for (size_t i = 0; i < sizeof case_rows / sizeof case_rows[0]; i++)
		run_case_row(&case_rows[i]);
	test_lengths();
	test_collections();
	for (size_t i = 0; i < sizeof parse_rows / sizeof parse_rows[0]; i++)
		run_parse_row(&parse_rows[i]);
	test_depth();
	test_email();
	test_timezone();
	test_url();
	for (size_t i = 0; i < sizeof input_rows / sizeof input_rows[0]; i++)
		run_input_row(&input_rows[i]);
	test_input_lengths();
	test_idempotency_key();
	test_sms();
	return test_done();
}
