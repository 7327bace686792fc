/* validate_case.c: validating a POST /cases body (validate_case) into a struct case_input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/validate.h"
#include "api/validate_field.h"
#include "common/jsonutil.h"
#include "common/sendwindow.h"
#include "common/xalloc.h"
#include "sms/e164.h"

/* Caps on the parts of a POST /cases body (bytes). */
#define MAX_OBJECTIVE 10000
#define MAX_KNOWLEDGE 65536
#define MAX_NAME 200
#define MAX_CUSTOM_KEYS 100
#define MAX_CUSTOM_KEY 100
#define MAX_CUSTOM_VALUE 2000
#define MAX_CLIENT_REF 255
#define MAX_CONSTRAINTS 50
#define MAX_CONSTRAINT 2000
#define MAX_RESULT_SCHEMA 65536
#define MAX_METADATA 16384

/* Whether this server has an SMS transport ([sms] sendsms_url); set once at startup. */
static int sms_enabled;

void validate_set_sms(int enabled)
{
	sms_enabled = enabled;
}

/* This server's own sender number in E.164 form ("" when [sms] sender is not one). */
static char sms_own_number[SMS_E164_SIZE];

void validate_set_sms_sender(const char *sender)
{
	if (!sender || sms_e164_normalise_loose(sender, sms_own_number) < 0)
		sms_own_number[0] = '\0';
}

static int case_channel(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *v = jsonutil_member(body, "channel");
	const char *s;

	if (!v)
		return val_fail(err, errlen, "channel: is required");
	s = json_object_is_type(v, json_type_string) && !val_has_nul(v) ? json_object_get_string(v)
								    : "";
	if (strcmp(s, "SMS") == 0 && !sms_enabled)
		return val_fail(err, errlen,
			    "channel: SMS is not available on this server (no SMS transport is "
			    "configured)");
	if (strcmp(s, "EMAIL") != 0 && strcmp(s, "SMS") != 0)
		return val_fail(err, errlen, "channel: must be EMAIL or SMS");
	in->channel = xstrdup(s);
	return 0;
}

static int case_goal(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	static const char *const keys[] = { "objective", "knowledge" };
	json_object *goal, *objective, *knowledge;

	if (val_get_object(body, "goal", "goal", 1, &goal, err, errlen) < 0 ||
	    val_get_string(goal, "objective", "goal.objective", 1, STR_NONEMPTY, MAX_OBJECTIVE,
		       &objective, err, errlen) < 0)
		return -1;
	knowledge = jsonutil_member(goal, "knowledge");
	if (knowledge && json_object_is_type(knowledge, json_type_string)) {
		if (val_check_string(knowledge, "goal.knowledge", 0, MAX_KNOWLEDGE, err, errlen) < 0)
			return -1;
	} else if (knowledge && json_object_is_type(knowledge, json_type_object)) {
		if (val_check_free_json(knowledge, "goal.knowledge", MAX_KNOWLEDGE, err, errlen) < 0)
			return -1;
	} else if (knowledge) {
		return val_fail(err, errlen, "goal.knowledge: must be a string or an object");
	}
	{
		json_object *values[] = { objective, knowledge };

		in->goal_json = val_members_json(keys, values, 2);
	}
	return 0;
}

static int case_custom_data(json_object *data, char *err, size_t errlen)
{
	char path[64 + MAX_CUSTOM_KEY];

	if (json_object_object_length(data) > MAX_CUSTOM_KEYS)
		return val_fail(err, errlen, "counterparty.customData: must have at most %d keys",
			    MAX_CUSTOM_KEYS);
	json_object_object_foreach(data, key, value) {
		if (strlen(key) > MAX_CUSTOM_KEY)
			return val_fail(err, errlen,
				    "counterparty.customData: keys must be at most %d bytes",
				    MAX_CUSTOM_KEY);
		snprintf(path, sizeof path, "counterparty.customData.%s", key);
		if (!value)
			return val_fail(err, errlen, "%s: must be a string", path);
		if (val_check_string(value, path, 0, MAX_CUSTOM_VALUE, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int case_counterparty(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	static const char *const keys[] = { "address", "name", "company", "timezone", "customData" };
	json_object *cp, *address, *name, *company, *zone, *custom, *norm;
	const char *addr, *why;
	char number[SMS_E164_SIZE];

	if (val_get_object(body, "counterparty", "counterparty", 1, &cp, err, errlen) < 0 ||
	    val_get_string(cp, "address", "counterparty.address", 1, STR_HEADER, SIZE_MAX, &address,
		       err, errlen) < 0)
		return -1;
	addr = json_object_get_string(address);
	if (strcmp(in->channel, "SMS") == 0) {
		/* The stored form has no spaces, dashes or dots (doc/api.md, SMS). */
		if (sms_e164_normalise(addr, (size_t)json_object_get_string_len(address), number,
				       &why) < 0)
			return val_fail(err, errlen, "counterparty.address: %s", why);
		/* What we send to our own number comes back from it as a reply: a loop. */
		if (*sms_own_number && strcmp(number, sms_own_number) == 0)
			return val_fail(err, errlen, "counterparty.address: is this server's own SMS "
					"number");
		addr = number;
	} else if (!validate_email_address(addr, (size_t)json_object_get_string_len(address))) {
		return val_fail(err, errlen, "counterparty.address: must be an email address");
	}
	if (val_get_string(cp, "name", "counterparty.name", 1, STR_NONEMPTY | STR_HEADER, MAX_NAME,
		       &name, err, errlen) < 0 ||
	    val_get_string(cp, "company", "counterparty.company", 0, STR_HEADER, MAX_NAME, &company,
		       err, errlen) < 0 ||
	    val_get_string(cp, "timezone", "counterparty.timezone", 0, 0, SIZE_MAX, &zone, err,
		       errlen) < 0)
		return -1;
	if (zone && !validate_timezone(json_object_get_string(zone)))
		return val_fail(err, errlen, "counterparty.timezone: must be an IANA time zone name");
	if (val_get_object(cp, "customData", "counterparty.customData", 0, &custom, err, errlen) < 0 ||
	    (custom && case_custom_data(custom, err, errlen) < 0))
		return -1;
	norm = addr == number ? json_object_new_string(number) : NULL;
	{
		json_object *values[] = { norm ? norm : address, name, company, zone, custom };

		in->counterparty_address = xstrdup(addr);
		in->counterparty_json = val_members_json(keys, values, 5);
	}
	json_object_put(norm);
	return 0;
}

static int case_persona(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "role", "company", "tone" };
	json_object *persona, *values[4];

	if (val_get_object(body, "senderPersona", "senderPersona", 1, &persona, err, errlen) < 0 ||
	    val_get_string(persona, "name", "senderPersona.name", 1, STR_NONEMPTY | STR_HEADER,
		       MAX_NAME, &values[0], err, errlen) < 0 ||
	    val_get_string(persona, "role", "senderPersona.role", 0, STR_HEADER, MAX_NAME,
		       &values[1], err, errlen) < 0 ||
	    val_get_string(persona, "company", "senderPersona.company", 0, STR_HEADER, MAX_NAME,
		       &values[2], err, errlen) < 0 ||
	    val_get_string(persona, "tone", "senderPersona.tone", 0, 0, MAX_NAME, &values[3], err,
		       errlen) < 0)
		return -1;
	in->persona_json = val_members_json(keys, values, 4);
	return 0;
}

static int case_constraints(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *list = jsonutil_member(body, "constraints");
	char path[32];
	size_t n;

	if (!list)
		return 0;
	if (!json_object_is_type(list, json_type_array))
		return val_fail(err, errlen, "constraints: must be an array of strings");
	n = json_object_array_length(list);
	if (n > MAX_CONSTRAINTS)
		return val_fail(err, errlen, "constraints: must have at most %d items",
			    MAX_CONSTRAINTS);
	for (size_t i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(list, i);

		snprintf(path, sizeof path, "constraints[%zu]", i);
		if (!item)
			return val_fail(err, errlen, "%s: must be a string", path);
		if (val_check_string(item, path, 0, MAX_CONSTRAINT, err, errlen) < 0)
			return -1;
	}
	in->constraints_json = val_to_json(list);
	return 0;
}

static int case_client_reference(json_object *body, struct case_input *in, char *err,
				 size_t errlen)
{
	json_object *ref;

	if (val_get_string(body, "clientReferenceId", "clientReferenceId", 0, 0, MAX_CLIENT_REF,
			   &ref, err, errlen) < 0)
		return -1;
	if (ref)
		in->client_reference_id = xstrdup(json_object_get_string(ref));
	return 0;
}

static int case_max_attempts(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	return val_get_int(body, "maxAttempts", 0, 20, 3, &in->max_attempts, err, errlen);
}

static int case_follow_up_delay(json_object *body, struct case_input *in, char *err,
				size_t errlen)
{
	return val_get_int(body, "followUpDelayHours", 1, 8760, 72, &in->follow_up_delay_hours,
			   err, errlen);
}

/* An optional free-form object member key, stored serialised in *out. */
static int case_free_object(json_object *body, const char *key, size_t max, char **out, char *err,
			    size_t errlen)
{
	json_object *v;

	if (val_get_object(body, key, key, 0, &v, err, errlen) < 0 ||
	    (v && val_check_free_json(v, key, max, err, errlen) < 0))
		return -1;
	if (v)
		*out = val_to_json(v);
	return 0;
}

static int case_result_schema(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	return case_free_object(body, "resultSchema", MAX_RESULT_SCHEMA, &in->result_schema_json,
				err, errlen);
}

static int case_webhook_url(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *url;

	if (val_get_string(body, "clientWebhookUrl", "clientWebhookUrl", 0, 0, VALIDATE_MAX_URL,
			   &url, err, errlen) < 0)
		return -1;
	if (url && !validate_http_url(json_object_get_string(url)))
		return val_fail(err, errlen,
				"clientWebhookUrl: must be an absolute http or https URL");
	if (url)
		in->client_webhook_url = xstrdup(json_object_get_string(url));
	return 0;
}

static int case_metadata(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	return case_free_object(body, "metadata", MAX_METADATA, &in->metadata_json, err, errlen);
}

/* sendWindow (doc/api.md "Send windows"): kept with only its documented members, as given. */
static int case_send_window(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *v = jsonutil_member(body, "sendWindow"), *stored = NULL;
	struct send_window w;

	if (!v)
		return 0;
	if (send_window_from_json(v, "sendWindow", &w, &stored, err, errlen) < 0)
		return -1;
	in->send_window_json = val_to_json(stored);
	json_object_put(stored);
	return 0;
}

/* The fields of a POST /cases body, checked in this order; the first failure is the one
 * reported. Each function validates one field (or one object such as counterparty) and
 * stores it in *in; a later one may read what an earlier one stored (in->channel). A new
 * field: one function above and one line here. */
static int (*const case_fields[])(json_object *body, struct case_input *in, char *err,
				  size_t errlen) = {
	case_channel,
	case_goal,
	case_counterparty,
	case_persona,
	case_client_reference,
	case_constraints,
	case_max_attempts,
	case_follow_up_delay,
	case_result_schema,
	case_webhook_url,
	case_metadata,
	case_send_window,
};

int validate_case(json_object *body, struct case_input *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (val_require_object(body, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < sizeof case_fields / sizeof case_fields[0]; i++)
		if (case_fields[i](body, out, err, errlen) < 0) {
			case_input_free(out);
			return -1;
		}
	return 0;
}

void case_input_free(struct case_input *in)
{
	if (!in)
		return;
	free(in->channel);
	free(in->client_reference_id);
	free(in->counterparty_address);
	free(in->goal_json);
	free(in->counterparty_json);
	free(in->persona_json);
	free(in->constraints_json);
	free(in->result_schema_json);
	free(in->metadata_json);
	free(in->client_webhook_url);
	free(in->send_window_json);
	memset(in, 0, sizeof *in);
}
