/* validate.c: parsing and validating request bodies (POST /cases, POST /cases/{id}/input).
 * Over 900 lines on purpose for now: one validator per body, sharing the field helpers at
 * the top; the split per body (case, input, headers) is part of issue 13.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "api/validate.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"

#ifndef ZONEINFO_DIR
#define ZONEINFO_DIR "/usr/share/zoneinfo"
#endif

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Caps on the parts of a POST /cases body (bytes). */
#define MAX_OBJECTIVE 10000
#define MAX_KNOWLEDGE 65536
#define MAX_NAME 200
#define MAX_TIMEZONE 64
#define MAX_CUSTOM_KEYS 100
#define MAX_CUSTOM_KEY 100
#define MAX_CUSTOM_VALUE 2000
#define MAX_CLIENT_REF 255
#define MAX_CONSTRAINTS 50
#define MAX_CONSTRAINT 2000
#define MAX_RESULT_SCHEMA 65536
#define MAX_URL 2048
#define MAX_METADATA 16384
#define MAX_EMAIL 254
#define MAX_LOCAL_PART 64
#define MAX_LABEL 63

/* Caps on the parts of a POST /cases/{id}/input body (bytes). */
#define MAX_INPUT_REQUEST_ID 64
#define MAX_PROVIDED_CONTEXT 20000
#define MAX_REPLY 20000
#define MAX_REASON 2000
#define MAX_RESULT 65536

/* Flags for check_string(). */
#define STR_NONEMPTY 0x01 /* empty or whitespace-only is refused */
#define STR_HEADER 0x02   /* may reach a mail header: no control characters at all */

/* A field path for messages about nested values ("goal.knowledge.a[2]"). */
struct path {
	char buf[256];
	size_t len;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* json-c and libcurl report allocation failure by NULL; the policy is to abort (xalloc.h). */
static void no_memory(void)
{
	log_error("out of memory");
	abort();
}

static int is_json_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_ascii_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int only_json_ws(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_json_ws((unsigned char)s[i]))
			return 0;
	return 1;
}

/* RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF. json-c's own
 * check (JSON_TOKENER_VALIDATE_UTF8) lets all three through. */
static int utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i], lo = 0x80, hi = 0xbf;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c == 0xe0) {
			n = 2;
			lo = 0xa0;
		} else if (c == 0xed) {
			n = 2;
			hi = 0x9f;
		} else if (c >= 0xe1 && c <= 0xef) {
			n = 2;
		} else if (c == 0xf0) {
			n = 3;
			lo = 0x90;
		} else if (c >= 0xf1 && c <= 0xf3) {
			n = 3;
		} else if (c == 0xf4) {
			n = 3;
			hi = 0x8f;
		} else {
			return 0;
		}
		if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += n + 1;
	}
	return 1;
}

/*
 * json-c 0.16 accepts, even with JSON_TOKENER_STRICT, a few things RFC 8259 does not:
 * single-quoted names, NaN and Infinity, "1." and raw control characters inside strings.
 * It also cuts member names at an escaped NUL ("k\u0000x" becomes "k"), so such a name
 * cannot be checked later. The text has already been parsed, so its structure is sound
 * and a byte scan that knows whether it is inside a string is enough to catch all of it.
 * Returns NULL, or the message for the client.
 */
static const char *json_text_check(const char *s, size_t len)
{
	int in_string = 0, nul_escape = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (in_string) {
			if (c == '\\') {
				if (len - i > 5 && memcmp(s + i + 1, "u0000", 5) == 0)
					nul_escape = 1;
				i++;
			} else if (c == '"') {
				size_t j = i + 1;

				in_string = 0;
				while (j < len && is_json_ws((unsigned char)s[j]))
					j++;
				if (nul_escape && j < len && s[j] == ':')
					return "body: member names must not contain NUL bytes";
			} else if (c < 0x20) {
				return "body: not valid JSON"; /* RFC 8259 §7: must be escaped */
			}
			continue;
		}
		switch (c) {
		case '"':
			in_string = 1;
			nul_escape = 0;
			break;
		case '.':
			if (i + 1 >= len || s[i + 1] < '0' || s[i + 1] > '9')
				return "body: not valid JSON";
			break;
		case '\'':
		case 'I':
		case 'N':
			return "body: not valid JSON";
		default:
			break;
		}
	}
	return NULL;
}

int validate_parse_json(const char *body, size_t len, json_object **out, char *err, size_t errlen)
{
	struct json_tokener *tok = NULL;
	json_object *obj = NULL;
	enum json_tokener_error jerr;
	const char *text_error;
	size_t end;
	int rc = -1;

	*out = NULL;
	if (!body)
		len = 0;
	if (len > VALIDATE_MAX_BODY) {
		fail(err, errlen, "body: must be at most %d bytes", VALIDATE_MAX_BODY);
		goto out;
	}
	/* RFC 8259 §8.1: a parser may ignore a byte order mark. */
	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
		body += 3;
		len -= 3;
	}
	if (only_json_ws(body, len)) {
		fail(err, errlen, "body: must be a JSON object");
		goto out;
	}
	if (!utf8_valid((const unsigned char *)body, len)) {
		fail(err, errlen, "body: not valid UTF-8");
		goto out;
	}
	tok = json_tokener_new_ex(VALIDATE_MAX_DEPTH);
	if (!tok)
		no_memory();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* The input is complete: a final NUL ends a bare number or reports truncation. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	if (jerr == json_tokener_error_depth) {
		fail(err, errlen, "body: nested too deeply");
		goto out;
	}
	if (jerr == json_tokener_error_parse_utf8_string) {
		fail(err, errlen, "body: not valid UTF-8");
		goto out;
	}
	if (jerr != json_tokener_success || end > len || !only_json_ws(body + end, len - end)) {
		fail(err, errlen, "body: not valid JSON");
		goto out;
	}
	text_error = json_text_check(body, len);
	if (text_error) {
		fail(err, errlen, "%s", text_error);
		goto out;
	}
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		fail(err, errlen, "body: must be a JSON object");
		goto out;
	}
	*out = obj;
	obj = NULL;
	rc = 0;
out:
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

/* ---- helpers for fields ------------------------------------------------------------ */

/* The member key of obj; JSON null counts as absent (NULL). */
static json_object *member(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

static int has_nul(json_object *str)
{
	return strlen(json_object_get_string(str)) != (size_t)json_object_get_string_len(str);
}

static int is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_ascii_ws((unsigned char)s[i]))
			return 0;
	return 1;
}

static int has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return 1;
	return 0;
}

/* Checks that v is a string obeying flags and max; path names it in the message. */
static int check_string(json_object *v, const char *path, unsigned flags, size_t max, char *err,
			size_t errlen)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(v, json_type_string))
		return fail(err, errlen, "%s: must be a string", path);
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (has_nul(v))
		return fail(err, errlen, "%s: must not contain NUL bytes", path);
	if ((flags & STR_NONEMPTY) && is_blank(s, len))
		return fail(err, errlen, "%s: must not be empty", path);
	if (len > max)
		return fail(err, errlen, "%s: must be at most %zu bytes", path, max);
	if ((flags & STR_HEADER) && has_control(s, len))
		return fail(err, errlen, "%s: must not contain control characters", path);
	return 0;
}

/* Looks up a string member. *v_r is NULL when an optional member is absent. */
static int get_string(json_object *obj, const char *key, const char *path, int required,
		      unsigned flags, size_t max, json_object **v_r, char *err, size_t errlen)
{
	json_object *v = member(obj, key);

	*v_r = NULL;
	if (!v)
		return required ? fail(err, errlen, "%s: is required", path) : 0;
	if (check_string(v, path, flags, max, err, errlen) < 0)
		return -1;
	*v_r = v;
	return 0;
}

/* Looks up an object member. *v_r is NULL when an optional member is absent. */
static int get_object(json_object *obj, const char *key, const char *path, int required,
		      json_object **v_r, char *err, size_t errlen)
{
	json_object *v = member(obj, key);

	*v_r = NULL;
	if (!v)
		return required ? fail(err, errlen, "%s: is required", path) : 0;
	if (!json_object_is_type(v, json_type_object))
		return fail(err, errlen, "%s: must be an object", path);
	*v_r = v;
	return 0;
}

/* An optional integer member within [min, max]; def when absent. Only JSON integers count:
 * 3.0 is a double to json-c and is refused like "3". */
static int get_int(json_object *obj, const char *key, int min, int max, int def, int *out,
		   char *err, size_t errlen)
{
	json_object *v = member(obj, key);
	int64_t n;

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		goto bad;
	/* Values beyond int64 come back clamped to INT64_MIN/INT64_MAX, so still out of range. */
	n = json_object_get_int64(v);
	if (n < min || n > max)
		goto bad;
	*out = (int)n;
	return 0;
bad:
	return fail(err, errlen, "%s: must be an integer from %d to %d", key, min, max);
}

static size_t path_push(struct path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to the path (truncating if it is full) and returns the old length for path_pop. */
static size_t path_push(struct path *p, const char *fmt, ...)
{
	size_t old = p->len;
	va_list ap;
	int n;

	if (p->len < sizeof p->buf - 1) {
		va_start(ap, fmt);
		n = vsnprintf(p->buf + p->len, sizeof p->buf - p->len, fmt, ap);
		va_end(ap);
		if (n > 0)
			p->len += (size_t)n < sizeof p->buf - p->len ? (size_t)n
								     : sizeof p->buf - p->len - 1;
	}
	return old;
}

static void path_pop(struct path *p, size_t old)
{
	p->len = old;
	p->buf[old] = '\0';
}

/* Walks any JSON value for strings holding NUL bytes (depth is bounded by the parser). */
static int check_nul_deep(json_object *v, struct path *p, char *err, size_t errlen)
{
	size_t old;
	int rc = 0;

	switch (json_object_get_type(v)) {
	case json_type_string:
		if (has_nul(v))
			return fail(err, errlen, "%s: must not contain NUL bytes", p->buf);
		return 0;
	case json_type_object: {
		json_object_object_foreach(v, key, child) {
			if (!child)
				continue;
			old = path_push(p, ".%s", key);
			rc = check_nul_deep(child, p, err, errlen);
			path_pop(p, old);
			if (rc < 0)
				return -1;
		}
		return 0;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			old = path_push(p, "[%zu]", i);
			rc = check_nul_deep(json_object_array_get_idx(v, i), p, err, errlen);
			path_pop(p, old);
			if (rc < 0)
				return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* Checks a free-form JSON value (no NUL bytes, serialised size at most max). */
static int check_free_json(json_object *v, const char *path, size_t max, char *err, size_t errlen)
{
	struct path p;
	const char *json;

	p.len = 0;
	p.buf[0] = '\0';
	path_push(&p, "%s", path);
	if (check_nul_deep(v, &p, err, errlen) < 0)
		return -1;
	json = json_object_to_json_string_ext(v, JSON_FLAGS);
	if (!json)
		no_memory();
	if (strlen(json) > max)
		return fail(err, errlen, "%s: must be at most %zu bytes", path, max);
	return 0;
}

static json_object *new_object(void)
{
	json_object *o = json_object_new_object();

	if (!o)
		no_memory();
	return o;
}

/* Adds a reference to v (when not NULL) under key. */
static void add_member(json_object *o, const char *key, json_object *v)
{
	if (v && json_object_object_add(o, key, json_object_get(v)) < 0)
		no_memory();
}

static char *to_json(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);

	if (!s)
		no_memory();
	return xstrdup(s);
}

/* ---- POST /cases ------------------------------------------------------------------- */

static int case_channel(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *v = member(body, "channel");
	const char *s;

	if (!v)
		return fail(err, errlen, "channel: is required");
	s = json_object_is_type(v, json_type_string) && !has_nul(v) ? json_object_get_string(v)
								    : "";
	if (strcmp(s, "SMS") == 0)
		return fail(err, errlen,
			    "channel: SMS is not available on this server (no SMS transport is "
			    "configured)");
	if (strcmp(s, "EMAIL") != 0)
		return fail(err, errlen, "channel: must be EMAIL or SMS");
	in->channel = xstrdup(s);
	return 0;
}

static int case_goal(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *goal, *objective, *knowledge, *stored = NULL;
	int rc = -1;

	if (get_object(body, "goal", "goal", 1, &goal, err, errlen) < 0 ||
	    get_string(goal, "objective", "goal.objective", 1, STR_NONEMPTY, MAX_OBJECTIVE,
		       &objective, err, errlen) < 0)
		goto out;
	knowledge = member(goal, "knowledge");
	if (knowledge && json_object_is_type(knowledge, json_type_string)) {
		if (check_string(knowledge, "goal.knowledge", 0, MAX_KNOWLEDGE, err, errlen) < 0)
			goto out;
	} else if (knowledge && json_object_is_type(knowledge, json_type_object)) {
		if (check_free_json(knowledge, "goal.knowledge", MAX_KNOWLEDGE, err, errlen) < 0)
			goto out;
	} else if (knowledge) {
		fail(err, errlen, "goal.knowledge: must be a string or an object");
		goto out;
	}
	stored = new_object();
	add_member(stored, "objective", objective);
	add_member(stored, "knowledge", knowledge);
	in->goal_json = to_json(stored);
	rc = 0;
out:
	json_object_put(stored);
	return rc;
}

static int case_custom_data(json_object *data, char *err, size_t errlen)
{
	char path[64 + MAX_CUSTOM_KEY];

	if (json_object_object_length(data) > MAX_CUSTOM_KEYS)
		return fail(err, errlen, "counterparty.customData: must have at most %d keys",
			    MAX_CUSTOM_KEYS);
	json_object_object_foreach(data, key, value) {
		if (strlen(key) > MAX_CUSTOM_KEY)
			return fail(err, errlen,
				    "counterparty.customData: keys must be at most %d bytes",
				    MAX_CUSTOM_KEY);
		snprintf(path, sizeof path, "counterparty.customData.%s", key);
		if (!value)
			return fail(err, errlen, "%s: must be a string", path);
		if (check_string(value, path, 0, MAX_CUSTOM_VALUE, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int case_counterparty(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *cp, *address, *name, *company, *zone, *custom, *stored = NULL;
	const char *addr;
	int rc = -1;

	if (get_object(body, "counterparty", "counterparty", 1, &cp, err, errlen) < 0 ||
	    get_string(cp, "address", "counterparty.address", 1, STR_HEADER, SIZE_MAX, &address,
		       err, errlen) < 0)
		goto out;
	addr = json_object_get_string(address);
	if (!validate_email_address(addr, (size_t)json_object_get_string_len(address))) {
		fail(err, errlen, "counterparty.address: must be an email address");
		goto out;
	}
	if (get_string(cp, "name", "counterparty.name", 1, STR_NONEMPTY | STR_HEADER, MAX_NAME,
		       &name, err, errlen) < 0 ||
	    get_string(cp, "company", "counterparty.company", 0, STR_HEADER, MAX_NAME, &company,
		       err, errlen) < 0 ||
	    get_string(cp, "timezone", "counterparty.timezone", 0, 0, SIZE_MAX, &zone, err,
		       errlen) < 0)
		goto out;
	if (zone && !validate_timezone(json_object_get_string(zone))) {
		fail(err, errlen, "counterparty.timezone: must be an IANA time zone name");
		goto out;
	}
	if (get_object(cp, "customData", "counterparty.customData", 0, &custom, err, errlen) < 0 ||
	    (custom && case_custom_data(custom, err, errlen) < 0))
		goto out;
	stored = new_object();
	add_member(stored, "address", address);
	add_member(stored, "name", name);
	add_member(stored, "company", company);
	add_member(stored, "timezone", zone);
	add_member(stored, "customData", custom);
	in->counterparty_address = xstrdup(addr);
	in->counterparty_json = to_json(stored);
	rc = 0;
out:
	json_object_put(stored);
	return rc;
}

static int case_persona(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *persona, *name, *role, *company, *tone, *stored = NULL;
	int rc = -1;

	if (get_object(body, "senderPersona", "senderPersona", 1, &persona, err, errlen) < 0 ||
	    get_string(persona, "name", "senderPersona.name", 1, STR_NONEMPTY | STR_HEADER,
		       MAX_NAME, &name, err, errlen) < 0 ||
	    get_string(persona, "role", "senderPersona.role", 0, STR_HEADER, MAX_NAME, &role, err,
		       errlen) < 0 ||
	    get_string(persona, "company", "senderPersona.company", 0, STR_HEADER, MAX_NAME,
		       &company, err, errlen) < 0 ||
	    get_string(persona, "tone", "senderPersona.tone", 0, 0, MAX_NAME, &tone, err,
		       errlen) < 0)
		goto out;
	stored = new_object();
	add_member(stored, "name", name);
	add_member(stored, "role", role);
	add_member(stored, "company", company);
	add_member(stored, "tone", tone);
	in->persona_json = to_json(stored);
	rc = 0;
out:
	json_object_put(stored);
	return rc;
}

static int case_constraints(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *list = member(body, "constraints");
	char path[32];
	size_t n;

	if (!list)
		return 0;
	if (!json_object_is_type(list, json_type_array))
		return fail(err, errlen, "constraints: must be an array of strings");
	n = json_object_array_length(list);
	if (n > MAX_CONSTRAINTS)
		return fail(err, errlen, "constraints: must have at most %d items",
			    MAX_CONSTRAINTS);
	for (size_t i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(list, i);

		snprintf(path, sizeof path, "constraints[%zu]", i);
		if (!item)
			return fail(err, errlen, "%s: must be a string", path);
		if (check_string(item, path, 0, MAX_CONSTRAINT, err, errlen) < 0)
			return -1;
	}
	in->constraints_json = to_json(list);
	return 0;
}

static int case_options(json_object *body, struct case_input *in, char *err, size_t errlen)
{
	json_object *ref, *schema, *url, *metadata;

	if (get_string(body, "clientReferenceId", "clientReferenceId", 0, 0, MAX_CLIENT_REF, &ref,
		       err, errlen) < 0 ||
	    case_constraints(body, in, err, errlen) < 0 ||
	    get_int(body, "maxAttempts", 0, 20, 3, &in->max_attempts, err, errlen) < 0 ||
	    get_int(body, "followUpDelayHours", 1, 8760, 72, &in->follow_up_delay_hours, err,
		    errlen) < 0 ||
	    get_object(body, "resultSchema", "resultSchema", 0, &schema, err, errlen) < 0 ||
	    (schema &&
	     check_free_json(schema, "resultSchema", MAX_RESULT_SCHEMA, err, errlen) < 0) ||
	    get_string(body, "clientWebhookUrl", "clientWebhookUrl", 0, 0, MAX_URL, &url, err,
		       errlen) < 0)
		return -1;
	if (url && !validate_http_url(json_object_get_string(url)))
		return fail(err, errlen, "clientWebhookUrl: must be an absolute http or https URL");
	if (get_object(body, "metadata", "metadata", 0, &metadata, err, errlen) < 0 ||
	    (metadata && check_free_json(metadata, "metadata", MAX_METADATA, err, errlen) < 0))
		return -1;
	if (ref)
		in->client_reference_id = xstrdup(json_object_get_string(ref));
	if (schema)
		in->result_schema_json = to_json(schema);
	if (url)
		in->client_webhook_url = xstrdup(json_object_get_string(url));
	if (metadata)
		in->metadata_json = to_json(metadata);
	return 0;
}

int validate_case(json_object *body, struct case_input *out, char *err, size_t errlen)
{
	struct case_input in;
	int rc = -1;

	memset(&in, 0, sizeof in);
	memset(out, 0, sizeof *out);
	if (!body || !json_object_is_type(body, json_type_object)) {
		fail(err, errlen, "body: must be a JSON object");
		goto out;
	}
	if (case_channel(body, &in, err, errlen) < 0 || case_goal(body, &in, err, errlen) < 0 ||
	    case_counterparty(body, &in, err, errlen) < 0 ||
	    case_persona(body, &in, err, errlen) < 0 || case_options(body, &in, err, errlen) < 0)
		goto out;
	*out = in;
	memset(&in, 0, sizeof in);
	rc = 0;
out:
	case_input_free(&in);
	return rc;
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
	memset(in, 0, sizeof *in);
}

/* ---- POST /cases/{id}/input -------------------------------------------------------- */

/* A required string, trimmed of ASCII whitespace, non-empty and at most max bytes. */
static int get_trimmed(json_object *body, const char *key, size_t max, char **out, char *err,
		       size_t errlen)
{
	json_object *v;
	const char *start;
	size_t len;

	if (get_string(body, key, key, 1, STR_NONEMPTY, SIZE_MAX, &v, err, errlen) < 0)
		return -1;
	util_trim(json_object_get_string(v), (size_t)json_object_get_string_len(v), &start, &len);
	if (len > max)
		return fail(err, errlen, "%s: must be at most %zu bytes", key, max);
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
	json_object *decision, *outcome, *result = NULL, *text = NULL, *stored = NULL;
	const char *text_key = NULL;
	int rc = -1;

	in->outcome = INPUT_OUTCOME_NONE;
	if (get_object(body, "decision", "decision", 0, &decision, err, errlen) < 0)
		goto out;
	if (!decision) {
		rc = 0;
		goto out;
	}
	outcome = member(decision, "outcome");
	if (!outcome) {
		fail(err, errlen, "decision.outcome: is required");
		goto out;
	}
	for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
		if (json_object_is_type(outcome, json_type_string) && !has_nul(outcome) &&
		    strcmp(json_object_get_string(outcome), outcomes[i].name) == 0)
			in->outcome = outcomes[i].outcome;
	switch (in->outcome) {
	case INPUT_OUTCOME_GOAL_ACHIEVED:
		if (get_object(decision, "result", "decision.result", 1, &result, err,
			       errlen) < 0 ||
		    check_free_json(result, "decision.result", MAX_RESULT, err, errlen) < 0)
			goto out;
		break;
	case INPUT_OUTCOME_REPLY:
		text_key = "reply";
		if (get_string(decision, "reply", "decision.reply", 1, STR_NONEMPTY, MAX_REPLY,
			       &text, err, errlen) < 0)
			goto out;
		break;
	case INPUT_OUTCOME_REJECTED:
		text_key = "reason";
		if (get_string(decision, "reason", "decision.reason", 1, STR_NONEMPTY, MAX_REASON,
			       &text, err, errlen) < 0)
			goto out;
		break;
	case INPUT_OUTCOME_WAIT:
		break;
	case INPUT_OUTCOME_NONE:
		fail(err, errlen,
		     "decision.outcome: must be one of GOAL_ACHIEVED, REPLY, REJECTED, WAIT");
		goto out;
	}
	stored = new_object();
	add_member(stored, "outcome", outcome);
	add_member(stored, "result", result);
	if (text_key)
		add_member(stored, text_key, text);
	in->decision_json = to_json(stored);
	rc = 0;
out:
	json_object_put(stored);
	return rc;
}

int validate_input(json_object *body, struct input_input *out, char *err, size_t errlen)
{
	struct input_input in;
	int rc = -1;

	memset(&in, 0, sizeof in);
	memset(out, 0, sizeof *out);
	if (!body || !json_object_is_type(body, json_type_object)) {
		fail(err, errlen, "body: must be a JSON object");
		goto out;
	}
	if (get_trimmed(body, "inputRequestId", MAX_INPUT_REQUEST_ID, &in.input_request_id, err,
			errlen) < 0 ||
	    get_trimmed(body, "providedContext", MAX_PROVIDED_CONTEXT, &in.provided_context, err,
			errlen) < 0 ||
	    input_decision(body, &in, err, errlen) < 0)
		goto out;
	*out = in;
	memset(&in, 0, sizeof in);
	rc = 0;
out:
	input_input_free(&in);
	return rc;
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

/* ---- addresses, zones, URLs -------------------------------------------------------- */

/* RFC 5322 §3.2.3 atext. */
static int is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* RFC 5322 dot-atom local part: no quoted strings (they cannot be header-safe here). */
static int local_part_valid(const char *s, size_t len)
{
	if (len == 0 || len > MAX_LOCAL_PART || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* RFC 1035 §2.3.1 host name: LDH labels of 1–63 chars, no IP literals. */
static int domain_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || label > MAX_LABEL || s[i - label] == '-' ||
			    s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (is_ldh((unsigned char)s[i])) {
			label++;
		} else {
			return 0;
		}
	}
	return 1;
}

int validate_idempotency_key(const char *key)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t len = strlen(key), chars = 0;

	/* 255 characters are at most 1020 bytes of UTF-8. */
	if (len == 0 || len > 4 * 255 || !utf8_valid(s, len))
		return 0;
	for (size_t i = 0; i < len; i++) {
		/* C0 controls and DEL; C1 controls are U+0080..U+009F, 0xC2 0x80..0x9F. */
		if (s[i] < 0x20 || s[i] == 0x7f || (s[i] == 0xc2 && s[i + 1] <= 0x9f))
			return 0;
		if ((s[i] & 0xc0) != 0x80)
			chars++;
	}
	return chars <= 255;
}

int validate_email_address(const char *s, size_t len)
{
	const char *at;

	if (!s || len == 0 || len > MAX_EMAIL)
		return 0;
	at = memchr(s, '@', len);
	if (!at)
		return 0;
	return local_part_valid(s, (size_t)(at - s)) &&
	       domain_valid(at + 1, len - (size_t)(at - s) - 1);
}

int validate_timezone(const char *s)
{
	char path[sizeof ZONEINFO_DIR + MAX_TIMEZONE + 2];
	char magic[4];
	struct stat st;
	size_t len;
	int fd = -1, ok = 0;

	if (!s)
		return 0;
	len = strlen(s);
	if (len == 0 || len > MAX_TIMEZONE || s[0] == '/' || s[len - 1] == '/' || strstr(s, "..") ||
	    strstr(s, "//"))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    c != '_' && c != '+' && c != '-' && c != '/')
			return 0;
	}
	snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, s);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	/* RFC 8536 §3.1: a TZif file starts with the magic "TZif". */
	if (read(fd, magic, sizeof magic) != (ssize_t)sizeof magic || memcmp(magic, "TZif", 4) != 0)
		goto out;
	ok = 1;
out:
	if (fd >= 0)
		close(fd);
	return ok;
}

int validate_http_url(const char *s)
{
	CURLU *url = NULL;
	char *scheme = NULL, *host = NULL;
	const char *authority;
	size_t len;
	int ok = 0;

	if (!s)
		return 0;
	len = strlen(s);
	if (len == 0 || len > MAX_URL)
		return 0;
	/* RFC 3986 URLs are ASCII; whitespace and controls are never part of one. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	/* curl tolerates "http:/host" and takes "http:///path" as host "path"; RFC 3986 §3.2
	 * wants "//" and then an authority, which a URL to deliver to cannot leave empty. */
	if (strncasecmp(s, "http://", 7) == 0)
		authority = s + 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		authority = s + 8;
	else
		return 0;
	if (*authority == '/' || *authority == '?' || *authority == '#' || *authority == '\0')
		return 0;
	url = curl_url();
	if (!url)
		no_memory();
	if (curl_url_set(url, CURLUPART_URL, s, 0) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if ((strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) || !host[0])
		goto out;
	ok = 1;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(url);
	return ok;
}
