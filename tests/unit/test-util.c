/* test-util.c: unit tests for the shared helpers (src/common/util.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "test.h"

/* RFC 4648 §10 test vectors. */
static const struct {
	const char *in, *b64, *b64url;
} rfc4648[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

static void test_base64(void)
{
	static const unsigned char bin[] = { 0xfb, 0xff, 0xbf, 0x00, 0x3e, 0x3f };
	char out[64];
	unsigned char dec[64];
	long n;

	test_begin("util_base64: RFC 4648 vectors");
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		size_t len = util_base64(rfc4648[i].in, strlen(rfc4648[i].in), out);

		test_assert_str(out, rfc4648[i].b64);
		test_assert(len == strlen(rfc4648[i].b64));
	}
	test_end();

	test_begin("util_base64url: RFC 4648 vectors, no padding");
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		size_t len = util_base64url(rfc4648[i].in, strlen(rfc4648[i].in), out);

		test_assert_str(out, rfc4648[i].b64url);
		test_assert(len == strlen(rfc4648[i].b64url));
	}
	test_end();

	test_begin("util_base64 and util_base64url: the two alphabets differ in '+/' vs '-_'");
	test_assert(util_base64(bin, sizeof bin, out) == 8);
	test_assert_str(out, "+/+/AD4/");
	test_assert(util_base64url(bin, sizeof bin, out) == 8);
	test_assert_str(out, "-_-_AD4_");
	test_end();

	test_begin("util_base64_decode: RFC 4648 vectors");
	for (size_t i = 1; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		memset(dec, 0, sizeof dec);
		n = util_base64_decode(rfc4648[i].b64, dec, sizeof dec);
		test_assert(n == (long)strlen(rfc4648[i].in));
		test_assert(n >= 0 && memcmp(dec, rfc4648[i].in, (size_t)n) == 0);
	}
	test_end();

	test_begin("util_base64_decode: round trip of every byte value");
	{
		unsigned char all[256], back[256];
		char enc[4 * ((256 + 2) / 3) + 1];

		for (int i = 0; i < 256; i++)
			all[i] = (unsigned char)i;
		for (size_t len = 0; len <= 256; len += (len < 8 ? 1 : 37)) {
			util_base64(all, len, enc);
			n = util_base64_decode(enc, back, sizeof back);
			if (len == 0)
				continue; /* see the empty-string test below */
			test_assert(n == (long)len);
			test_assert(n == (long)len && memcmp(all, back, len) == 0);
		}
	}
	test_end();

	test_begin("util_base64_decode: bad input");
	test_assert(util_base64_decode("Zg=", dec, sizeof dec) == -1);      /* length not 4k */
	test_assert(util_base64_decode("Zm9", dec, sizeof dec) == -1);      /* missing padding */
	test_assert(util_base64_decode("Zm9v!A==", dec, sizeof dec) == -1); /* bad character */
	test_assert(util_base64_decode("Zm-v", dec, sizeof dec) == -1);     /* base64url alphabet */
	test_assert(util_base64_decode("Zm_v", dec, sizeof dec) == -1);
	test_assert(util_base64_decode("Zm9v\nYmFy", dec, sizeof dec) == -1);
	test_end();

	test_begin("util_base64_decode: output capacity");
	test_assert(util_base64_decode("Zm9vYmFy", dec, 6) == 6);
	test_assert(util_base64_decode("Zm9vYmFy", dec, 5) == -1);
	test_assert(util_base64_decode("Zm9vYg==", dec, 4) == 4);
	test_assert(util_base64_decode("Zm9vYg==", dec, 3) == -1);
	test_end();

	test_begin("util_base64_decode: padding only at the end");
	test_assert(util_base64_decode("Z===", dec, sizeof dec) == -1);
	test_assert(util_base64_decode("====", dec, sizeof dec) == -1);
	test_assert(util_base64_decode("Zg=a", dec, sizeof dec) == -1);
	test_assert(util_base64_decode("Zg==Zg==", dec, sizeof dec) == -1);
	test_end();

	test_begin("util_base64_decode: empty string decodes to nothing");
	n = util_base64_decode("", dec, sizeof dec);
	test_assert(n == 0);
	test_end();
}

static void test_hex_and_hashes(void)
{
	static const unsigned char bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	unsigned char md[32];
	char hex[65];

	test_begin("util_hex: lowercase, NUL-terminated");
	util_hex(bytes, sizeof bytes, hex);
	test_assert_str(hex, "00017f80abff");
	util_hex(bytes, 0, hex);
	test_assert_str(hex, "");
	test_end();

	test_begin("util_sha256: FIPS 180-2 vectors");
	util_sha256("", 0, md);
	util_hex(md, 32, hex);
	test_assert_str(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	util_sha256("abc", 3, md);
	util_hex(md, 32, hex);
	test_assert_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	util_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, md);
	util_hex(md, 32, hex);
	test_assert_str(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	test_end();

	test_begin("util_hmac_sha256: RFC 4231 test cases 1, 2 and 6");
	{
		unsigned char key1[20], key6[131];

		memset(key1, 0x0b, sizeof key1);
		util_hmac_sha256(key1, sizeof key1, "Hi There", 8, md);
		util_hex(md, 32, hex);
		test_assert_str(hex,
				"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
		util_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, md);
		util_hex(md, 32, hex);
		test_assert_str(hex,
				"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
		/* A key longer than the block size is hashed first. */
		memset(key6, 0xaa, sizeof key6);
		util_hmac_sha256(key6, sizeof key6,
				 "Test Using Larger Than Block-Size Key - Hash Key First", 54, md);
		util_hex(md, 32, hex);
		test_assert_str(hex,
				"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	}
	test_end();

	test_begin("util_mem_equal");
	test_assert(util_mem_equal("abc", "abc", 3));
	test_assert(!util_mem_equal("abc", "abd", 3));
	test_assert(util_mem_equal("a", "b", 0));
	test_end();
}

static int is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_uuid(void)
{
	char a[37], b[37];

	test_begin("util_uuid_v4: format, version and variant");
	for (int round = 0; round < 200; round++) {
		util_uuid_v4(a);
		test_assert(strlen(a) == 36);
		for (int i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				test_assert(a[i] == '-');
			else
				test_assert(is_lower_hex(a[i]));
		}
		test_assert(a[14] == '4');
		test_assert(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
		test_assert(util_uuid_valid(a));
	}
	util_uuid_v4(b);
	test_assert(strcmp(a, b) != 0);
	test_end();

	test_begin("util_uuid_canonical: lowercase only");
	test_assert(util_uuid_canonical("4fc5a9f0-1b2c-4d3e-8f40-5a6b7c8d9e0f"));
	test_assert(!util_uuid_canonical("4FC5A9F0-1B2C-4D3E-8F40-5A6B7C8D9E0F"));
	test_assert(!util_uuid_canonical("4fc5a9f0-1b2c-4d3e-8f40-5a6b7c8d9e0F"));
	test_assert(!util_uuid_canonical("not-a-uuid"));
	test_end();

	test_begin("util_uuid_valid");
	test_assert(util_uuid_valid("4fc5a9f0-1b2c-4d3e-8f40-5a6b7c8d9e0f"));
	test_assert(util_uuid_valid("4FC5A9F0-1B2C-4D3E-8F40-5A6B7C8D9E0F"));
	test_assert(!util_uuid_valid(""));
	test_assert(!util_uuid_valid("not-a-uuid"));
	test_assert(!util_uuid_valid("4fc5a9f0-1b2c-4d3e-8f40-5a6b7c8d9e0"));   /* 35 chars */
	test_assert(!util_uuid_valid("4fc5a9f0-1b2c-4d3e-8f40-5a6b7c8d9e0f0")); /* 37 chars */
	test_assert(!util_uuid_valid("4fc5a9f0x1b2c-4d3e-8f40-5a6b7c8d9e0f"));
	test_assert(!util_uuid_valid("4fc5a9f0-1b2c-4d3e-8f40-5a6b7c8d9e0g"));
	test_assert(!util_uuid_valid("{fc5a9f0-1b2c-4d3e-8f40-5a6b7c8d9e0f}"));
	test_assert(!util_uuid_valid("4fc5a9f01b2c4d3e8f405a6b7c8d9e0f0000"));
	test_assert(!util_uuid_valid(" 4fc5a9f0-1b2c-4d3e-8f40-5a6b7c8d9e0"));
	test_end();
}

static void test_time(void)
{
	static const struct {
		int64_t ms;
		const char *want;
	} rows[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 1774111320000, "2026-03-21T16:42:00.000Z" },
		{ 1774111320123, "2026-03-21T16:42:00.123Z" },
		{ 951782400000, "2000-02-29T00:00:00.000Z" },
		{ 253402300799999, "9999-12-31T23:59:59.999Z" },
		{ -1, "1969-12-31T23:59:59.999Z" },
	};
	char out[32];
	int64_t now;

	test_begin("util_iso8601_ms");
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		util_iso8601_ms(rows[i].ms, out);
		test_assert_str(out, rows[i].want);
	}
	test_end();

	test_begin("util_now_ms: after 2024 and before the sentinel");
	now = util_now_ms();
	test_assert(now > INT64_C(1704067200000));
	test_assert(now < OFFLOAD_NEVER_MS);
	test_end();
}

static void test_parse_int64(void)
{
	static const struct {
		const char *s;
		int ok;
		int64_t want;
	} rows[] = {
		{ "0", 1, 0 },
		{ "1", 1, 1 },
		{ "-1", 1, -1 },
		{ "-0", 1, 0 },
		{ "007", 1, 7 },
		{ "9223372036854775807", 1, INT64_MAX },
		{ "-9223372036854775808", 1, INT64_MIN },
		{ "9223372036854775808", 0, 0 },
		{ "-9223372036854775809", 0, 0 },
		{ "99999999999999999999999", 0, 0 },
		{ "", 0, 0 },
		{ " 1", 0, 0 },
		{ "1 ", 0, 0 },
		{ "\t1", 0, 0 },
		{ "1\n", 0, 0 },
		{ "+1", 0, 0 },
		{ "-", 0, 0 },
		{ "--1", 0, 0 },
		{ "1.0", 0, 0 },
		{ "1e3", 0, 0 },
		{ "0x10", 0, 0 },
		{ "12abc", 0, 0 },
		{ "abc", 0, 0 },
	};

	test_begin("util_parse_int64");
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int64_t n = 12345;
		int rc = util_parse_int64(rows[i].s, &n);

		if (rows[i].ok) {
			test_assert(rc == 0 && n == rows[i].want);
		} else {
			test_assert(rc == -1);
			test_assert(n == 12345); /* untouched on error */
		}
		if ((rc == 0) != rows[i].ok)
			fprintf(stderr, "  \"%s\": rc %d\n", rows[i].s, rc);
	}
	test_assert(util_parse_int64(NULL, &(int64_t){ 0 }) == -1);
	test_end();
}

static void test_trim(void)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
		{ "", "" },
		{ "abc", "abc" },
		{ "  abc  ", "abc" },
		{ "\t\r\n abc \v\f\n", "abc" },
		{ "a b", "a b" },
		{ " \t\n ", "" },
		{ "  a\n\nb  ", "a\n\nb" },
	};
	const char *start;
	size_t len;

	test_begin("util_trim");
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		util_trim(rows[i].in, strlen(rows[i].in), &start, &len);
		test_assert(len == strlen(rows[i].want));
		test_assert(strncmp(start, rows[i].want, len) == 0);
		test_assert(start >= rows[i].in && start + len <= rows[i].in + strlen(rows[i].in));
	}
	/* Only the given length is looked at. */
	util_trim("  ab  cd", 6, &start, &len);
	test_assert(len == 2 && strncmp(start, "ab", 2) == 0);
	/* Non-ASCII bytes are not whitespace. */
	util_trim("\xc2\xa0x\xc2\xa0", 5, &start, &len);
	test_assert(len == 5);
	test_end();
}

static void test_utf8_cut(void)
{
	/* "aé€😀": a (1 byte), é (2), € (3), 😀 (4); 10 bytes, characters start at 0 1 3 6. */
	static const char s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	static const size_t want[] = { 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10 };
	static const char bad[] = "\x80\x80\x80x";

	test_begin("util_utf8_cut: never splits a character, keeps whole ones");
	for (size_t max = 0; max <= 10; max++)
		test_assert(util_utf8_cut(s, 10, max) == want[max]);
	/* Longer limits than the text change nothing. */
	test_assert(util_utf8_cut(s, 10, 11) == 10);
	test_assert(util_utf8_cut(s, 10, (size_t)-1) == 10);
	test_assert(util_utf8_cut("", 0, 0) == 0);
	test_assert(util_utf8_cut("abc", 3, 2) == 2);
	/* Only len bytes are the text: a cut inside them looks at the byte after the cut. */
	test_assert(util_utf8_cut(s, 3, 2) == 1);
	test_assert(util_utf8_cut(s, 3, 3) == 3);
	test_end();

	test_begin("util_utf8_cut: malformed input, a run of continuation bytes, is cut away whole");
	test_assert(util_utf8_cut(bad, 4, 2) == 0);
	test_assert(util_utf8_cut(bad, 4, 3) == 3);
	test_end();
}

static void test_buf(void)
{
	struct buf b;
	char big[1000];

	test_begin("buf: append, puts, printf");
	buf_init(&b, 64);
	test_assert(b.data == NULL && b.len == 0);
	test_assert(buf_puts(&b, "hello") == 0);
	test_assert(buf_append(&b, ", ", 2) == 0);
	test_assert(buf_printf(&b, "%s %d", "world", 42) == 0);
	test_assert_str(b.data, "hello, world 42");
	test_assert(b.len == 15);
	test_assert(buf_append(&b, "", 0) == 0);
	test_assert(b.len == 15);
	buf_reset(&b);
	test_assert(b.len == 0);
	test_assert_str(b.data, "");
	buf_free(&b);
	test_assert(b.data == NULL && b.len == 0 && b.max == 64);
	test_end();

	test_begin("buf: the maximum is exact and a failed append changes nothing");
	buf_init(&b, 10);
	test_assert(buf_puts(&b, "12345") == 0);
	test_assert(buf_puts(&b, "678901") == -1);
	test_assert_str(b.data, "12345");
	test_assert(b.len == 5);
	test_assert(buf_puts(&b, "67890") == 0);
	test_assert_str(b.data, "1234567890");
	test_assert(b.len == 10);
	test_assert(buf_append(&b, "x", 1) == -1);
	test_assert(buf_printf(&b, "%d", 1) == -1);
	test_assert(buf_append(&b, "", 0) == 0);
	test_assert_str(b.data, "1234567890");
	test_assert(b.len == 10);
	buf_free(&b);
	test_end();

	test_begin("buf: lengths that would overflow are refused");
	buf_init(&b, 10);
	test_assert(buf_puts(&b, "abc") == 0);
	test_assert(buf_append(&b, "x", SIZE_MAX) == -1);
	test_assert(buf_append(&b, "x", SIZE_MAX - 2) == -1);
	test_assert_str(b.data, "abc");
	buf_free(&b);
	buf_init(&b, SIZE_MAX);
	test_assert(buf_puts(&b, "abc") == 0);
	test_assert(buf_append(&b, "x", SIZE_MAX - 1) == -1);
	test_assert_str(b.data, "abc");
	buf_free(&b);
	test_end();

	test_begin("buf: printf longer than its stack buffer, and growth");
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	buf_init(&b, 4096);
	test_assert(buf_printf(&b, "<%s>", big) == 0);
	test_assert(b.len == 1001);
	test_assert(b.data[0] == '<' && b.data[1000] == '>' && b.data[1001] == '\0');
	for (int i = 0; i < 3; i++)
		test_assert(buf_puts(&b, big) == 0);
	test_assert(b.len == 3998);
	test_assert(buf_puts(&b, big) == -1);
	test_assert(b.len == 3998);
	test_assert(b.cap >= b.len + 1);
	buf_free(&b);
	buf_init(&b, 1000);
	test_assert(buf_printf(&b, "<%s>", big) == -1);
	test_assert(b.len == 0);
	buf_free(&b);
	test_end();
}

int main(void)
{
	test_base64();
	test_hex_and_hashes();
	test_uuid();
	test_time();
	test_parse_int64();
	test_trim();
	test_utf8_cut();
	test_buf();
	return test_done();
}
