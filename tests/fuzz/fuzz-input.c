/* fuzz-input.c: libFuzzer target: a POST /cases/{id}/input body (arbitrary bytes) through
 * validate_parse_json and validate_input. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/validate.h"
#include "common/log.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz-input");
	log_set_level(LOG_LEVEL_ERROR);
	return 0;
}

/* Trimmed and non-empty, as doc/api.md, "POST /cases/{caseId}/input", says of both strings. */
static void check_trimmed(const char *s)
{
	size_t len;

	fuzz_check(s != NULL);
	len = strlen(s);
	fuzz_check(len > 0);
	fuzz_check(!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[len - 1]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_object *body = NULL, *decision = NULL;
	struct input_input in;
	char err[512];

	if (validate_parse_json((const char *)data, size, &body, err, sizeof err) < 0)
		return 0;
	err[0] = '\0';
	if (validate_input(body, &in, err, sizeof err) < 0) {
		fuzz_check(err[0] != '\0');
		json_object_put(body);
		return 0;
	}
	check_trimmed(in.input_request_id);
	check_trimmed(in.provided_context);
	if (in.outcome == INPUT_OUTCOME_NONE) {
		fuzz_check(in.decision_json == NULL);
	} else {
		fuzz_check(in.decision_json != NULL);
		decision = json_tokener_parse(in.decision_json);
		fuzz_check(decision && json_object_is_type(decision, json_type_object));
		json_object_put(decision);
	}
	input_input_free(&in);
	json_object_put(body);
	return 0;
}
