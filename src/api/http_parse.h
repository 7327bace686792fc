/* http_parse.h: the pure parsing of offload-api's requests (percent decoding, query
 * parameters, Content-Length), apart from FastCGI so that the unit tests link it
 * (tests/unit/test-http.c). All follow the code base's convention: no reply is sent here. */
#ifndef OFFLOAD_HTTP_PARSE_H
#define OFFLOAD_HTTP_PARSE_H

#include <stddef.h>

/*
 * Percent-decodes the len bytes at s into out (cap bytes with the NUL); '+' is a space
 * (application/x-www-form-urlencoded). Returns 0, or -1 on a bad escape ("%4", "%zz"), an
 * escaped NUL ("%00"), or when the result does not fit (out is then not usable).
 */
int http_url_decode(const char *s, size_t len, char *out, size_t cap);

/*
 * Finds the value of name in the query string, percent-decoded into out (cap bytes with
 * NUL). A key without '=' has the empty value; when the key is repeated, the first one
 * counts. Keys are compared as written (not decoded). Returns 1 found, 0 absent (query
 * NULL or empty included), -1 malformed or too long.
 */
int http_query_param(const char *query, const char *name, char *out, size_t cap);

/*
 * As http_query_param, but a percent-encoded NUL (%00) in the value is decoded as the byte
 * nul_as (not 0) instead of being refused: for text that must be kept whatever it holds.
 */
int http_query_param_nul(const char *query, const char *name, char nul_as, char *out,
			 size_t cap);

/*
 * Appends every value of name in the query string, percent-decoded, to out separated by
 * commas ("a=1&a=2,3" gives "1,2,3"). Returns the number of occurrences, or -1 when one is
 * malformed or the total exceeds cap.
 */
int http_query_param_all(const char *query, const char *name, char *out, size_t cap);

#define HTTP_LENGTH_MALFORMED (-1) /* not a decimal number: 400 */
#define HTTP_LENGTH_TOO_LARGE (-2) /* more than the limit: 413 */

/*
 * Parses a CONTENT_LENGTH value: NULL or "" is 0; otherwise decimal digits only (no sign,
 * no space), leading zeros allowed. Returns 0 with *len_r set, HTTP_LENGTH_MALFORMED, or
 * HTTP_LENGTH_TOO_LARGE when the value exceeds max (however many digits it has).
 */
int http_content_length(const char *value, size_t max, size_t *len_r);

#endif
