/* validate_field.h: the helpers the body validators (validate_case.c, validate_input.c)
 * and the format checks (validate_format.c) share; internal to src/api/validate_*.c.
 *
 * Conventions: a check returns 0, or -1 with a message for the client in err (at most
 * errlen bytes) that names the field by its path ("counterparty.name: is required").
 * JSON null counts as an absent member. Allocation failure aborts (xalloc.h).
 */
#ifndef OFFLOAD_VALIDATE_FIELD_H
#define OFFLOAD_VALIDATE_FIELD_H

#include <stddef.h>
#include <json-c/json.h>

/* Flags for val_check_string(). */
#define STR_NONEMPTY 0x01 /* empty or whitespace-only is refused */
#define STR_HEADER 0x02   /* may reach a mail header: no control characters at all */

/* Writes the message to err and returns -1. */
int val_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* 0 when body is a JSON object; else -1 with "body: must be a JSON object". */
int val_require_object(json_object *body, char *err, size_t errlen);

/* json-c and libcurl report allocation failure by NULL; the policy is to abort (xalloc.h). */
void val_no_memory(void) __attribute__((noreturn));

/* 1 when s is valid UTF-8 (validate_json.c). */
int val_utf8_valid(const unsigned char *s, size_t len);

/* 1 when the string value str holds a NUL byte. */
int val_has_nul(json_object *str);

/* Checks that v is a string obeying flags and max; path names it in the message. */
int val_check_string(json_object *v, const char *path, unsigned flags, size_t max, char *err,
		     size_t errlen);

/* Looks up a string member. *v_r is NULL when an optional member is absent. */
int val_get_string(json_object *obj, const char *key, const char *path, int required,
		   unsigned flags, size_t max, json_object **v_r, char *err, size_t errlen);

/* Looks up an object member. *v_r is NULL when an optional member is absent. */
int val_get_object(json_object *obj, const char *key, const char *path, int required,
		   json_object **v_r, char *err, size_t errlen);

/* An optional integer member within [min, max]; def when absent. Only JSON integers count:
 * 3.0 is a double to json-c and is refused like "3". */
int val_get_int(json_object *obj, const char *key, int min, int max, int def, int *out,
		char *err, size_t errlen);

/* Checks a free-form JSON value (no NUL bytes, serialised size at most max). */
int val_check_free_json(json_object *v, const char *path, size_t max, char *err, size_t errlen);

/* An object of keys[i]: values[i] (a pair whose key or value is NULL is left out),
 * serialised compactly, in a string the caller frees. */
char *val_members_json(const char *const keys[], json_object *const values[], size_t n);

/* o serialised compactly, in a string the caller frees. */
char *val_to_json(json_object *o);

#endif
