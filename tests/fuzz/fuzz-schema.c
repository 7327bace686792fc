/* fuzz-schema.c: libFuzzer target: the resultSchema subset check. The input is a JSON
 * array [schema, value]; anything else is used as a schema checked against itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent/schema.h"
#include "common/log.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz-schema");
	log_set_level(LOG_LEVEL_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok;
	json_object *doc, *schema, *value;
	struct schema_errors errs;
	char *text;
	int r;

	/* Schemas and operator results reach schema_validate through validate_parse_json, which
	 * refuses invalid UTF-8 (its own RFC 3629 check: json-c's lets overlong forms and
	 * surrogates through). The LLM's answer does not: see doc/hostile-input.md, bug 5. */
	if (size > 65536 || !fuzz_utf8_valid(data, size))
		return 0;
	/* Deeper than SCHEMA_MAX_DEPTH, so that the schema's own depth cap is exercised. */
	tok = json_tokener_new_ex(SCHEMA_MAX_DEPTH * 2);
	fuzz_check(tok != NULL);
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	doc = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	if (!doc && json_tokener_get_error(tok) == json_tokener_continue)
		doc = json_tokener_parse_ex(tok, "", 1);
	json_tokener_free(tok);
	if (!doc)
		return 0;
	if (json_object_is_type(doc, json_type_array) && json_object_array_length(doc) == 2) {
		schema = json_object_array_get_idx(doc, 0);
		value = json_object_array_get_idx(doc, 1);
	} else {
		schema = value = doc;
	}
	memset(&errs, 0, sizeof errs);
	r = schema_validate(schema, value, "result", &errs);
	fuzz_check(r == 0 || r == 1);
	fuzz_check(errs.count <= SCHEMA_MAX_ERRORS);
	fuzz_check(r == 1 || (errs.count == 0 && errs.dropped == 0));
	fuzz_check(r == 0 || errs.count > 0);
	for (size_t i = 0; i < errs.count; i++)
		fuzz_check(errs.items[i].path && errs.items[i].reason &&
			   strncmp(errs.items[i].path, "result", 6) == 0);
	for (size_t max = 0; max <= 64; max += 16) {
		text = schema_errors_text(&errs, max);
		fuzz_check(text != NULL);
		if (max > 0)
			fuzz_check(strlen(text) <= max);
		fuzz_check(fuzz_utf8_valid((const unsigned char *)text, strlen(text)));
		free(text);
	}
	text = schema_errors_text(&errs, 100000);
	fuzz_check(text != NULL);
	free(text);
	schema_errors_free(&errs);
	json_object_put(doc);
	return 0;
}
