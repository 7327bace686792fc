/* test-http.c: offload-api's request parsing (src/api/http_parse.c): percent decoding,
 * query parameters, Content-Length. */
#include <stdio.h>
#include <string.h>

#include "api/http_parse.h"
#include "test.h"

/* Decodes the C string s; returns the result code, the text in out. */
static int dec(const char *s, char *out, size_t cap)
{
	return http_url_decode(s, strlen(s), out, cap);
}

static void test_decode(void)
{
	char out[64];

	test_begin("http: percent decoding, '+' is a space, either case of hex digits");
	test_assert(dec("", out, sizeof out) == 0);
	test_assert_str(out, "");
	test_assert(dec("plain", out, sizeof out) == 0);
	test_assert_str(out, "plain");
	test_assert(dec("a+b%20c", out, sizeof out) == 0);
	test_assert_str(out, "a b c");
	test_assert(dec("%2B%2b%41%7e", out, sizeof out) == 0);
	test_assert_str(out, "++A~");
	test_assert(dec("%25", out, sizeof out) == 0);
	test_assert_str(out, "%");
	/* Encoded separators are data, not structure. */
	test_assert(dec("a%26b%3Dc", out, sizeof out) == 0);
	test_assert_str(out, "a&b=c");
	/* UTF-8 passes through as bytes. */
	test_assert(dec("%C3%A9t%C3%A9", out, sizeof out) == 0);
	test_assert_str(out, "\xc3\xa9t\xc3\xa9");
	test_end();

	test_begin("http: %FF and other high bytes decode to that byte");
	test_assert(dec("%FF%fe%80", out, sizeof out) == 0);
	test_assert(strlen(out) == 3 && (unsigned char)out[0] == 0xff &&
		    (unsigned char)out[1] == 0xfe && (unsigned char)out[2] == 0x80);
	test_end();

	test_begin("http: %00 is refused (no NUL inside a C string)");
	test_assert(dec("%00", out, sizeof out) < 0);
	test_assert(dec("abc%00def", out, sizeof out) < 0);
	test_assert(dec("%0", out, sizeof out) < 0);
	test_end();

	test_begin("http: bad escapes are refused");
	test_assert(dec("%", out, sizeof out) < 0);
	test_assert(dec("%4", out, sizeof out) < 0);
	test_assert(dec("a%", out, sizeof out) < 0);
	test_assert(dec("%zz", out, sizeof out) < 0);
	test_assert(dec("%4g", out, sizeof out) < 0);
	test_assert(dec("%g4", out, sizeof out) < 0);
	test_assert(dec("% 41", out, sizeof out) < 0);
	test_assert(dec("%-1", out, sizeof out) < 0);
	test_assert(dec("%%41", out, sizeof out) < 0);
	test_end();

	test_begin("http: decoding stops at len, not at the NUL");
	test_assert(http_url_decode("abcdef", 3, out, sizeof out) == 0);
	test_assert_str(out, "abc");
	/* An escape cut by len is bad, though the bytes after it would complete it. */
	test_assert(http_url_decode("a%41", 3, out, sizeof out) < 0);
	test_end();
}

static void test_decode_bounds(void)
{
	char out[8];

	test_begin("http: decoding is bounded by cap (the NUL included)");
	memset(out, 'x', sizeof out);
	test_assert(http_url_decode("1234567", 7, out, 8) == 0);
	test_assert_str(out, "1234567");
	test_assert(http_url_decode("12345678", 8, out, 8) < 0);
	/* The bound counts decoded bytes: 7 escapes are 21 characters but fit. */
	test_assert(dec("%41%41%41%41%41%41%41", out, 8) == 0);
	test_assert_str(out, "AAAAAAA");
	test_assert(dec("%41%41%41%41%41%41%41%41", out, 8) < 0);
	test_assert(http_url_decode("", 0, out, 1) == 0);
	test_assert_str(out, "");
	test_assert(http_url_decode("a", 1, out, 1) < 0);
	/* No room even for the NUL. */
	out[0] = 'x';
	test_assert(http_url_decode("", 0, out, 0) < 0);
	test_assert(out[0] == 'x');
	test_end();
}

static void test_query_param(void)
{
	char out[64];

	test_begin("http: query parameters by name");
	test_assert(http_query_param("a=1&b=2&c=3", "b", out, sizeof out) == 1);
	test_assert_str(out, "2");
	test_assert(http_query_param("a=1&b=2&c=3", "a", out, sizeof out) == 1);
	test_assert_str(out, "1");
	test_assert(http_query_param("a=1&b=2&c=3", "c", out, sizeof out) == 1);
	test_assert_str(out, "3");
	test_assert(http_query_param("a=x%20y+z", "a", out, sizeof out) == 1);
	test_assert_str(out, "x y z");
	/* The value may hold '=': only the first one separates. */
	test_assert(http_query_param("cursor=abc==&x=1", "cursor", out, sizeof out) == 1);
	test_assert_str(out, "abc==");
	test_end();

	test_begin("http: absent parameters, NULL and empty queries");
	strcpy(out, "stale");
	test_assert(http_query_param("a=1&b=2", "c", out, sizeof out) == 0);
	test_assert_str(out, "");
	test_assert(http_query_param(NULL, "a", out, sizeof out) == 0);
	test_assert(http_query_param("", "a", out, sizeof out) == 0);
	test_assert(http_query_param("&&&", "a", out, sizeof out) == 0);
	/* Names match whole keys, case-sensitively: no prefix, no suffix. */
	test_assert(http_query_param("ab=1&ba=2&A=3", "a", out, sizeof out) == 0);
	test_assert(http_query_param("limit=5", "limi", out, sizeof out) == 0);
	test_assert(http_query_param("limit=5", "limits", out, sizeof out) == 0);
	/* A key is compared as written: an encoded key is another key. */
	test_assert(http_query_param("%61=1", "a", out, sizeof out) == 0);
	test_end();

	test_begin("http: empty values and keys without '='");
	test_assert(http_query_param("a=&b=2", "a", out, sizeof out) == 1);
	test_assert_str(out, "");
	test_assert(http_query_param("a&b=2", "a", out, sizeof out) == 1);
	test_assert_str(out, "");
	test_assert(http_query_param("b=2&a", "a", out, sizeof out) == 1);
	test_assert_str(out, "");
	test_assert(http_query_param("=1&a=2", "a", out, sizeof out) == 1);
	test_assert_str(out, "2");
	test_assert(http_query_param("=1", "", out, sizeof out) == 1);
	test_assert_str(out, "1");
	test_assert(http_query_param("a=1&&b=2", "b", out, sizeof out) == 1);
	test_assert_str(out, "2");
	test_end();

	test_begin("http: a repeated key: the first one counts");
	test_assert(http_query_param("limit=1&limit=500", "limit", out, sizeof out) == 1);
	test_assert_str(out, "1");
	test_assert(http_query_param("limit=&limit=5", "limit", out, sizeof out) == 1);
	test_assert_str(out, "");
	test_end();

	test_begin("http: a malformed or too long value is -1, not a truncated value");
	test_assert(http_query_param("a=%zz", "a", out, sizeof out) == -1);
	test_assert(http_query_param("a=%00", "a", out, sizeof out) == -1);
	test_assert(http_query_param("a=%4", "a", out, sizeof out) == -1);
	test_assert(http_query_param("a=1234", "a", out, 4) == -1);
	test_assert(http_query_param("a=123", "a", out, 4) == 1);
	test_assert_str(out, "123");
	/* A malformed value of another key does not matter. */
	test_assert(http_query_param("b=%zz&a=1", "a", out, sizeof out) == 1);
	test_assert_str(out, "1");
	test_assert(http_query_param("a=1", "a", out, 0) == -1);
	test_end();
}

static void test_query_param_nul(void)
{
	char out[16];

	test_begin("http: a NUL kept as another byte where the caller asks (Kannel's text)");
	test_assert(http_query_param_nul("text=a%00b&x=1", "text", '\xff', out, sizeof out) == 1);
	test_assert(memcmp(out, "a\xff" "b", 4) == 0);
	test_assert(http_query_param("text=a%00b", "text", out, sizeof out) == -1);
	/* Everything else as http_query_param: bad escapes, overflow, absent. */
	test_assert(http_query_param_nul("text=%0", "text", '\xff', out, sizeof out) == -1);
	test_assert(http_query_param_nul("text=%zz", "text", '\xff', out, sizeof out) == -1);
	test_assert(http_query_param_nul("text=0123456789abcdef", "text", '\xff', out, sizeof out) ==
		    -1);
	test_assert(http_query_param_nul("x=1", "text", '\xff', out, sizeof out) == 0);
	test_assert(http_query_param_nul("text=%00", "text", 0, out, sizeof out) == -1);
	test_end();
}

static void test_query_param_all(void)
{
	char out[16];

	test_begin("http: every value of a repeated key, joined by commas");
	test_assert(http_query_param_all("status=RUNNING&status=FAILED", "status", out, sizeof out) == 2);
	test_assert_str(out, "RUNNING,FAILED");
	test_assert(http_query_param_all("a=1&b=x&a=2,3", "a", out, sizeof out) == 2);
	test_assert_str(out, "1,2,3");
	test_assert(http_query_param_all("a=x%2Cy", "a", out, sizeof out) == 1);
	test_assert_str(out, "x,y");
	strcpy(out, "stale");
	test_assert(http_query_param_all("b=1", "a", out, sizeof out) == 0);
	test_assert_str(out, "");
	test_assert(http_query_param_all(NULL, "a", out, sizeof out) == 0);
	test_assert_str(out, "");
	test_end();

	test_begin("http: empty values keep their place in the list");
	test_assert(http_query_param_all("a=&a=1", "a", out, sizeof out) == 2);
	test_assert_str(out, ",1");
	test_assert(http_query_param_all("a&a", "a", out, sizeof out) == 2);
	test_assert_str(out, ",");
	test_end();

	test_begin("http: the whole list is bounded by cap; a bad value fails it");
	/* 15 characters and the NUL fill 16 bytes exactly. */
	test_assert(http_query_param_all("a=1234567&a=1234567", "a", out, sizeof out) == 2);
	test_assert_str(out, "1234567,1234567");
	test_assert(http_query_param_all("a=1234567&a=12345678", "a", out, sizeof out) == -1);
	test_assert(http_query_param_all("a=12345678&a=1234567", "a", out, sizeof out) == -1);
	test_assert(http_query_param_all("a=123456789012345&a=", "a", out, sizeof out) == -1);
	test_assert(http_query_param_all("a=1&a=%zz", "a", out, sizeof out) == -1);
	test_assert(http_query_param_all("a=%00&a=1", "a", out, sizeof out) == -1);
	test_assert(http_query_param_all("a=1", "a", out, 0) == -1);
	test_end();
}

static void test_content_length(void)
{
	size_t len;

	test_begin("http: Content-Length: absent or empty is 0, digits are the length");
	len = 99;
	test_assert(http_content_length(NULL, 100, &len) == 0 && len == 0);
	len = 99;
	test_assert(http_content_length("", 100, &len) == 0 && len == 0);
	test_assert(http_content_length("0", 100, &len) == 0 && len == 0);
	test_assert(http_content_length("42", 100, &len) == 0 && len == 42);
	test_assert(http_content_length("100", 100, &len) == 0 && len == 100);
	test_assert(http_content_length("262144", 262144, &len) == 0 && len == 262144);
	test_end();

	test_begin("http: Content-Length: anything but decimal digits is malformed (400)");
	test_assert(http_content_length("-1", 100, &len) == HTTP_LENGTH_MALFORMED);
	test_assert(http_content_length("+1", 100, &len) == HTTP_LENGTH_MALFORMED);
	test_assert(http_content_length(" 1", 100, &len) == HTTP_LENGTH_MALFORMED);
	test_assert(http_content_length("1 ", 100, &len) == HTTP_LENGTH_MALFORMED);
	test_assert(http_content_length("1,1", 100, &len) == HTTP_LENGTH_MALFORMED);
	test_assert(http_content_length("0x10", 100, &len) == HTTP_LENGTH_MALFORMED);
	test_assert(http_content_length("1e3", 100, &len) == HTTP_LENGTH_MALFORMED);
	test_assert(http_content_length("12abc", 100, &len) == HTTP_LENGTH_MALFORMED);
	/* Malformed wins over too large: the whole value is checked. */
	test_assert(http_content_length("99999999999999999999x", 100, &len) == HTTP_LENGTH_MALFORMED);
	test_end();

	test_begin("http: Content-Length over the limit is too large (413), without overflow");
	test_assert(http_content_length("101", 100, &len) == HTTP_LENGTH_TOO_LARGE);
	test_assert(http_content_length("262145", 262144, &len) == HTTP_LENGTH_TOO_LARGE);
	test_assert(http_content_length("1000000000000", 262144, &len) == HTTP_LENGTH_TOO_LARGE);
	/* 2^64 and far beyond: no wrap-around to a small length. */
	test_assert(http_content_length("18446744073709551616", 262144, &len) == HTTP_LENGTH_TOO_LARGE);
	test_assert(http_content_length("18446744073709551617", (size_t)-1, &len) == HTTP_LENGTH_TOO_LARGE);
	test_assert(http_content_length("18446744073709551615", (size_t)-1, &len) == 0 &&
		    len == (size_t)-1);
	test_assert(http_content_length("1", 0, &len) == HTTP_LENGTH_TOO_LARGE);
	test_assert(http_content_length("0", 0, &len) == 0 && len == 0);
	test_assert(http_content_length("9", 5, &len) == HTTP_LENGTH_TOO_LARGE);
	test_end();

	test_begin("http: Content-Length with leading zeros is its value (was 413 past 12 digits)");
	test_assert(http_content_length("007", 100, &len) == 0 && len == 7);
	test_assert(http_content_length("0000000000000000000042", 100, &len) == 0 && len == 42);
	test_end();
}

int main(void)
{
	test_decode();
	test_decode_bounds();
	test_query_param();
	test_query_param_nul();
	test_query_param_all();
	test_content_length();
	return test_done();
}
