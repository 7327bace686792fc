/* fuzz-case.c: libFuzzer target: a POST /cases body (arbitrary bytes) through
 * validate_parse_json and validate_case, checking what a valid case promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/validate.h"
#include "common/log.h"
#include "fuzz.h"
#include "sms/e164.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz-case");
	log_set_level(LOG_LEVEL_ERROR);
	/* channel SMS is validated too (its E.164 address), as on a server with Kannel. */
	validate_set_sms(1);
	return 0;
}

/* When o has the member key, it is a string that is safe in a mail header. */
static void check_header_member(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return;
	fuzz_check(json_object_is_type(v, json_type_string));
	fuzz_check_header_safe(json_object_get_string(v),
			       (size_t)json_object_get_string_len(v));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_object *body = NULL, *cp = NULL, *persona = NULL;
	struct case_input in;
	char err[512];

	err[0] = '\0';
	if (validate_parse_json((const char *)data, size, &body, err, sizeof err) < 0) {
		/* A refusal always says why, naming the body. */
		fuzz_check(body == NULL && strncmp(err, "body: ", 6) == 0);
		return 0;
	}
	fuzz_check(body != NULL && json_object_is_type(body, json_type_object));
	err[0] = '\0';
	if (validate_case(body, &in, err, sizeof err) < 0) {
		fuzz_check(err[0] != '\0' && strchr(err, ':') != NULL);
		json_object_put(body);
		return 0;
	}
	/* A valid case: the address is an addr-spec (channel EMAIL) or a number already in its
	 * stored E.164 form (channel SMS), the stored objects are JSON objects, and no text that
	 * reaches a mail header holds a control character. */
	fuzz_check(in.channel && in.counterparty_address && in.goal_json &&
		   in.counterparty_json && in.persona_json);
	if (strcmp(in.channel, "SMS") == 0) {
		char number[SMS_E164_SIZE];
		const char *why;

		fuzz_check(sms_e164_normalise(in.counterparty_address,
					      strlen(in.counterparty_address), number, &why) == 0 &&
			   strcmp(number, in.counterparty_address) == 0);
	} else {
		fuzz_check(strcmp(in.channel, "EMAIL") == 0);
		fuzz_check(validate_email_address(in.counterparty_address,
						  strlen(in.counterparty_address)));
	}
	fuzz_check(in.max_attempts >= 0 && in.max_attempts <= 20);
	fuzz_check(in.follow_up_delay_hours >= 1 && in.follow_up_delay_hours <= 8760);
	cp = json_tokener_parse(in.counterparty_json);
	persona = json_tokener_parse(in.persona_json);
	fuzz_check(cp && json_object_is_type(cp, json_type_object));
	fuzz_check(persona && json_object_is_type(persona, json_type_object));
	check_header_member(cp, "address");
	check_header_member(cp, "name");
	check_header_member(cp, "company");
	check_header_member(persona, "name");
	check_header_member(persona, "role");
	check_header_member(persona, "company");
	if (in.client_webhook_url)
		fuzz_check(validate_http_url(in.client_webhook_url));
	json_object_put(cp);
	json_object_put(persona);
	case_input_free(&in);
	json_object_put(body);
	return 0;
}
