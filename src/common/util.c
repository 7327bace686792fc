/* util.c: clock, ids, randomness, encodings, hashing and bounded buffers. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <uuid/uuid.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"

int64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void util_random_bytes(void *buf, size_t len)
{
	if (len > INT_MAX || RAND_bytes(buf, (int)len) != 1) {
		log_error("the random number generator failed");
		abort();
	}
}

void util_uuid_v4(char out[37])
{
	unsigned char b[16];

	/* RFC 9562 §5.4: 122 random bits, version 4, variant 10. */
	util_random_bytes(b, sizeof b);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	uuid_unparse_lower(b, out);
}

int util_uuid_valid(const char *s)
{
	uuid_t u;

	if (strlen(s) != 36)
		return 0;
	return uuid_parse(s, u) == 0;
}

int util_uuid_canonical(const char *s)
{
	if (!util_uuid_valid(s))
		return 0;
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'F')
			return 0;
	return 1;
}

size_t util_base64(const void *in, size_t len, char *out)
{
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

size_t util_base64url(const void *in, size_t len, char *out)
{
	size_t n = util_base64(in, len, out);

	while (n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return n;
}

long util_base64_decode(const char *in, void *out, size_t out_cap)
{
	size_t len = strlen(in);
	unsigned char *tmp;
	int n;
	long rc = -1;

	if (len == 0)
		return 0;
	if (len % 4 != 0 || len > (size_t)INT_MAX)
		return -1;
	/* Padding only at the very end, at most two: EVP_DecodeBlock is lenient about it. */
	for (size_t i = 0; i < len; i++)
		if (in[i] == '=' && (i < len - 2 || (i == len - 2 && in[len - 1] != '=')))
			return -1;
	tmp = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
	if (n < 0)
		goto out;
	/* EVP_DecodeBlock counts padding as zero bytes. */
	if (in[len - 1] == '=')
		n--;
	if (in[len - 2] == '=')
		n--;
	if ((size_t)n > out_cap)
		goto out;
	memcpy(out, tmp, (size_t)n);
	rc = n;
out:
	free(tmp);
	return rc;
}

void util_hex(const void *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

void util_sha256(const void *data, size_t len, unsigned char out[32])
{
	SHA256(data, len, out);
}

void util_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
		      unsigned char out[32])
{
	unsigned int out_len = 32;

	if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len)) {
		log_error("HMAC-SHA256 failed");
		abort();
	}
}

int util_mem_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void util_iso8601_ms(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	char tmp[96];

	gmtime_r(&secs, &tm);
	snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	/* Years beyond 9999 do not occur (the sentinel is 9999-12-31); cut rather than overflow. */
	tmp[31] = '\0';
	memcpy(out, tmp, 32);
}

int util_parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '+')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

void util_trim(const char *s, size_t len, const char **start, size_t *len_r)
{
	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	*start = s;
	*len_r = len;
}

size_t util_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	len = max;
	/* 10xxxxxx is a continuation byte: the character it belongs to starts before it. */
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	return len;
}

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (len > b->max || b->len > b->max - len)
		return -1;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + len + 1)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[512];
	char *big = NULL;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof small)
		return buf_append(b, small, (size_t)n);
	big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}
