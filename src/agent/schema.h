/* schema.h: checks a JSON value against the JSON Schema subset a case's resultSchema may use. */
#ifndef OFFLOAD_SCHEMA_H
#define OFFLOAD_SCHEMA_H

#include <stddef.h>
#include <json-c/json.h>

/* At most this many errors are kept; the rest are only counted. */
#define SCHEMA_MAX_ERRORS 32
/* Schemas and values nested deeper than this are refused rather than walked. */
#define SCHEMA_MAX_DEPTH 64

struct schema_error {
	char *path;   /* "result.items[2].name" */
	char *reason; /* "is required", "must be a string", ... */
};

struct schema_errors {
	struct schema_error *items; /* count entries, oldest first */
	size_t count;
	size_t dropped;             /* errors found beyond SCHEMA_MAX_ERRORS */
};

/*
 * Validates value against schema, naming the value root in paths ("result"). The keywords
 * checked are type (object, array, string, number, integer, boolean, null, or an array of
 * them), properties, required, enum, items (one schema, or an array for positions) and
 * additionalProperties (false or a schema); every other keyword is ignored, and a schema
 * that is not an object (or is true) accepts everything. A NULL value is JSON null.
 * errs is filled (the caller frees it with schema_errors_free, also after a 0 return).
 * Returns 0 when the value conforms, 1 when it does not.
 */
int schema_validate(json_object *schema, json_object *value, const char *root,
		    struct schema_errors *errs);

/* The errors as one line, "path: reason; path: reason", at most max_bytes long (cut on a
 * UTF-8 boundary with "..."), newly allocated; "" when there are none. */
char *schema_errors_text(const struct schema_errors *errs, size_t max_bytes);

void schema_errors_free(struct schema_errors *errs);

#endif
