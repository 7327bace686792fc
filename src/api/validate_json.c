/* validate_json.c: parsing a request body as JSON (validate_parse_json): size and depth
 * bounds, strict UTF-8, and the RFC 8259 rules json-c lets through.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/validate.h"
#include "api/validate_field.h"

static int is_json_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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
int val_utf8_valid(const unsigned char *s, size_t len)
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
		val_fail(err, errlen, "body: must be at most %d bytes", VALIDATE_MAX_BODY);
		goto out;
	}
	/* RFC 8259 §8.1: a parser may ignore a byte order mark. */
	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
		body += 3;
		len -= 3;
	}
	if (only_json_ws(body, len)) {
		val_fail(err, errlen, "body: must be a JSON object");
		goto out;
	}
	if (!val_utf8_valid((const unsigned char *)body, len)) {
		val_fail(err, errlen, "body: not valid UTF-8");
		goto out;
	}
	tok = json_tokener_new_ex(VALIDATE_MAX_DEPTH);
	if (!tok)
		val_no_memory();
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
		val_fail(err, errlen, "body: nested too deeply");
		goto out;
	}
	if (jerr == json_tokener_error_parse_utf8_string) {
		val_fail(err, errlen, "body: not valid UTF-8");
		goto out;
	}
	if (jerr != json_tokener_success || end > len || !only_json_ws(body + end, len - end)) {
		val_fail(err, errlen, "body: not valid JSON");
		goto out;
	}
	text_error = json_text_check(body, len);
	if (text_error) {
		val_fail(err, errlen, "%s", text_error);
		goto out;
	}
	if (val_require_object(obj, err, errlen) < 0)
		goto out;
	*out = obj;
	obj = NULL;
	rc = 0;
out:
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
	return rc;
}
