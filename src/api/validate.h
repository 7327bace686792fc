/* validate.h: parsing and validating request bodies (POST /cases, POST /cases/{id}/input),
 * with the rules doc/api.md states for each field.
 *
 * Implemented in: validate_json.c (validate_parse_json), validate_case.c (validate_case),
 * validate_input.c (validate_input), validate_format.c (single values: Idempotency-Key,
 * email address, time zone, URL); validate_field.c holds the helpers they share.
 *
 * Conventions: validators return 0, or -1 with a message for the client in err (at most
 * errlen bytes) that names the field ("counterparty.address: must be an email address");
 * format checks return 1 (valid) or 0.
 */
#ifndef OFFLOAD_VALIDATE_H
#define OFFLOAD_VALIDATE_H

#include <stddef.h>
#include <json-c/json.h>

/* Limits on request bodies (nginx refuses more than 256 KiB before we see it). */
#define VALIDATE_MAX_BODY (256 * 1024)
#define VALIDATE_MAX_DEPTH 32

/* The longest URL validate_http_url accepts (and clientWebhookUrl may be). */
#define VALIDATE_MAX_URL 2048

/* A POST /cases body that passed validation. Strings are owned by this struct. */
struct case_input {
	char *channel;              /* "EMAIL" or "SMS" */
	char *client_reference_id;  /* NULL when absent */
	char *counterparty_address; /* the addr-spec; for SMS the E.164 number, normalised */
	char *goal_json;            /* {"objective":..,"knowledge":..} with only known fields */
	char *counterparty_json;    /* {"address","name","company"?,"timezone"?,"customData"?} */
	char *persona_json;         /* {"name","role"?,"company"?,"tone"?} */
	char *constraints_json;     /* JSON array of strings, or NULL */
	char *result_schema_json;   /* JSON object, or NULL */
	char *metadata_json;        /* JSON object, or NULL */
	char *client_webhook_url;   /* NULL when absent */
	char *send_window_json;     /* {"days","start","end"} as given, or NULL when absent */
	int max_attempts;           /* 0..20, default 3 */
	int follow_up_delay_hours;  /* 1..8760, default 72 */
};

/* The outcome an operator may impose with POST /cases/{id}/input "decision". */
enum input_outcome {
	INPUT_OUTCOME_NONE,          /* no decision: the agent evaluates again */
	INPUT_OUTCOME_GOAL_ACHIEVED, /* complete with result */
	INPUT_OUTCOME_REPLY,         /* send reply */
	INPUT_OUTCOME_REJECTED,      /* fail with reason */
	INPUT_OUTCOME_WAIT,          /* back to RUNNING, follow-up schedule restored */
};

/* A POST /cases/{id}/input body that passed validation. Strings are owned by this struct. */
struct input_input {
	char *input_request_id; /* trimmed */
	char *provided_context; /* trimmed */
	enum input_outcome outcome;
	char *decision_json;    /* the decision object re-serialised, or NULL */
};

/*
 * Parses a request body as JSON: at most VALIDATE_MAX_DEPTH levels, valid UTF-8, nothing
 * but whitespace after the value, and the value must be an object. Returns 0 and sets
 * *out (caller frees with json_object_put), or -1 with a message for the client in err
 * (e.g. "body: must be a JSON object").
 */
int validate_parse_json(const char *body, size_t len, json_object **out, char *err,
			size_t errlen);

/* Whether channel SMS is accepted (the server has [sms] sendsms_url; doc/api.md, SMS). Call
 * once at startup before any thread validates; off by default. */
void validate_set_sms(int enabled);

/* The server's own sender number ([sms] sender), refused as an SMS counterparty. */
void validate_set_sms_sender(const char *sender);

/* Validates a POST /cases body (doc/api.md, POST /cases). 0 and fills *out, or -1 with err naming the
 * field ("counterparty.address: must be an email address"). On -1 *out holds nothing. */
int validate_case(json_object *body, struct case_input *out, char *err, size_t errlen);
void case_input_free(struct case_input *in);

/* Validates a POST /cases/{id}/input body. Same conventions. */
int validate_input(json_object *body, struct input_input *out, char *err, size_t errlen);
void input_input_free(struct input_input *in);

/* 1 when key is a valid Idempotency-Key (doc/api.md, Idempotent creation): 1 to 255 characters (not bytes) of
 * valid UTF-8 with no control characters. */
int validate_idempotency_key(const char *key);

/* 1 when s (len bytes) is an ASCII addr-spec of at most 254 chars with no CR/LF. */
int validate_email_address(const char *s, size_t len);
/* 1 when s names a zone in the system's IANA database (/usr/share/zoneinfo). */
int validate_timezone(const char *s);
/* 1 when s is an absolute http or https URL of at most VALIDATE_MAX_URL chars. */
int validate_http_url(const char *s);

#endif
