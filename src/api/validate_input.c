/* validate_input.c: validating a POST /cases/{id}/input body (validate_input): the answer
 * to an input request and the operator's optional decision.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/validate.h"
#include "api/validate_field.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "common/xalloc.h"

/* Caps on the parts of a POST /cases/{id}/input body (bytes). */
#define MAX_INPUT_REQUEST_ID 64
#define MAX_PROVIDED_CONTEXT 20000
#define MAX_REPLY 20000
#define MAX_REASON 2000
#define MAX_RESULT 65536

/* A required string, trimmed of ASCII whitespace, non-empty and at most max bytes. */
static int get_trimmed(json_object *body, const char *key, size_t max, char **out, char *err,
		       size_t errlen)
{
	json_object *v;
	const char *start;
	size_t len;

	if (val_get_string(body, key, key, 1, STR_NONEMPTY, SIZE_MAX, &v, err, errlen) < 0)
		return -1;
	util_trim(json_object_get_string(v), (size_t)json_object_get_string_len(v), &start, &len);
	if (len > max)
		return val_fail(err, errlen, "%s: must be at most %zu bytes", key, max);
	*out = xstrndup(start, len);
	return 0;
}

static int input_decision(json_object *body, struct input_input *in, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum input_outcome outcome;
	} outcomes[] = {
		{ "GOAL_ACHIEVED", INPUT_OUTCOME_GOAL_ACHIEVED },
		{ "REPLY", INPUT_OUTCOME_REPLY },
		{ "REJECTED", INPUT_OUTCOME_REJECTED },
		{ "WAIT", INPUT_OUTCOME_WAIT },
	};
	json_object *decision, *outcome, *result = NULL, *text = NULL;
	const char *text_key = NULL;

	in->outcome = INPUT_OUTCOME_NONE;
	if (val_get_object(body, "decision", "decision", 0, &decision, err, errlen) < 0)
		return -1;
	if (!decision)
		return 0;
	outcome = jsonutil_member(decision, "outcome");
	if (!outcome)
		return val_fail(err, errlen, "decision.outcome: is required");
	for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
		if (json_object_is_type(outcome, json_type_string) && !val_has_nul(outcome) &&
		    strcmp(json_object_get_string(outcome), outcomes[i].name) == 0)
			in->outcome = outcomes[i].outcome;
	switch (in->outcome) {
	case INPUT_OUTCOME_GOAL_ACHIEVED:
		if (val_get_object(decision, "result", "decision.result", 1, &result, err,
			       errlen) < 0 ||
		    val_check_free_json(result, "decision.result", MAX_RESULT, err, errlen) < 0)
			return -1;
		break;
	case INPUT_OUTCOME_REPLY:
		text_key = "reply";
		if (val_get_string(decision, "reply", "decision.reply", 1, STR_NONEMPTY, MAX_REPLY,
			       &text, err, errlen) < 0)
			return -1;
		break;
	case INPUT_OUTCOME_REJECTED:
		text_key = "reason";
		if (val_get_string(decision, "reason", "decision.reason", 1, STR_NONEMPTY, MAX_REASON,
			       &text, err, errlen) < 0)
			return -1;
		break;
	case INPUT_OUTCOME_WAIT:
		break;
	case INPUT_OUTCOME_NONE:
		return val_fail(err, errlen,
				"decision.outcome: must be one of GOAL_ACHIEVED, REPLY, REJECTED, WAIT");
	}
	{
		const char *keys[] = { "outcome", "result", text_key };
		json_object *values[] = { outcome, result, text };

		in->decision_json = val_members_json(keys, values, 3);
	}
	return 0;
}

int validate_input(json_object *body, struct input_input *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (val_require_object(body, err, errlen) < 0)
		return -1;
	if (get_trimmed(body, "inputRequestId", MAX_INPUT_REQUEST_ID, &out->input_request_id, err,
			errlen) < 0 ||
	    get_trimmed(body, "providedContext", MAX_PROVIDED_CONTEXT, &out->provided_context, err,
			errlen) < 0 ||
	    input_decision(body, out, err, errlen) < 0) {
		input_input_free(out);
		return -1;
	}
	return 0;
}

void input_input_free(struct input_input *in)
{
	if (!in)
		return;
	free(in->input_request_id);
	free(in->provided_context);
	free(in->decision_json);
	memset(in, 0, sizeof *in);
}
