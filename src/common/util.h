/* util.h: small shared helpers: clock, ids, randomness, encodings, hashing, bounded buffers. */
#ifndef OFFLOAD_UTIL_H
#define OFFLOAD_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* "No time scheduled" (doc/api.md, "Requests and responses"). */
#define OFFLOAD_NEVER_MS INT64_C(253402300799999)

/* Wall clock in Unix milliseconds. Take it once per request or step and pass it down. */
int64_t util_now_ms(void);
/* Monotonic microseconds, for measuring durations only. */
int64_t util_now_us(void);

/* Writes a random lowercase v4 UUID (36 chars + NUL) into out. */
void util_uuid_v4(char out[37]);
/* 1 when s is a lowercase or uppercase canonical UUID of exactly 36 chars, else 0. */
int util_uuid_valid(const char *s);
/* 1 when s is a UUID as the service writes it (doc/api.md, "Requests and responses":
 * lowercase hex), else 0. The API
 * takes ids only in this form, so an id in capitals is not found (the id columns compare
 * without case). */
int util_uuid_canonical(const char *s);

/* Fills buf with cryptographically strong random bytes; aborts if the RNG fails. */
void util_random_bytes(void *buf, size_t len);

/* Standard base64 with padding. out must hold 4*((len+2)/3)+1 bytes. Returns the length. */
size_t util_base64(const void *in, size_t len, char *out);
/* base64url without padding. out must hold 4*((len+2)/3)+1 bytes. Returns the length. */
size_t util_base64url(const void *in, size_t len, char *out);
/* Decodes standard base64 (padding required). Returns the length, or -1 on bad input or when
 * the result would exceed out_cap. */
long util_base64_decode(const char *in, void *out, size_t out_cap);
/* Lowercase hex. out must hold 2*len+1 bytes. */
void util_hex(const void *in, size_t len, char *out);

void util_sha256(const void *data, size_t len, unsigned char out[32]);
void util_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
		      unsigned char out[32]);
/* Constant-time comparison of equal-length buffers: 1 when equal. */
int util_mem_equal(const void *a, const void *b, size_t len);

/* Formats Unix ms as ISO 8601 UTC with milliseconds ("2026-03-21T16:42:00.000Z"). */
void util_iso8601_ms(int64_t ms, char out[32]);

/* Parses a whole decimal integer (optional leading '-'), no spaces, no trailing bytes.
 * Returns 0 and sets *out, or -1. */
int util_parse_int64(const char *s, int64_t *out);

/* Returns s without leading and trailing ASCII whitespace: *start and *len describe it. */
void util_trim(const char *s, size_t len, const char **start, size_t *len_r);

/* The length of s (len bytes) cut to at most max bytes without splitting a UTF-8 sequence:
 * len when len <= max, else max moved back to the start of the character at s[max] (so
 * s[max] must be readable; continuation bytes only, as in malformed input, give 0). */
size_t util_utf8_cut(const char *s, size_t len, size_t max);

/* A growable string with a fixed maximum, set at init (like curl's dynbuf). */
struct buf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;   /* bytes used, without the NUL */
	size_t cap;   /* bytes allocated */
	size_t max;   /* appends that would exceed this fail */
};

void buf_init(struct buf *b, size_t max);
/* Returns 0, or -1 when the maximum would be exceeded (the buffer is unchanged). */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
