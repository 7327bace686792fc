/* test-verp.c: signed bounce addresses: the tag's shape, round trip, tampering, parsing. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "mail/verp.h"
#include "test.h"

static const unsigned char key[STORE_MAILKEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char other_key[STORE_MAILKEY_LEN] = "0123456789abcdef0123456789abcdeF";
static const char case_id[] = "4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b";
static const char msgid[] = "4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b.1.0badc0de@offload.test";

static void test_shape(void)
{
	char tag[VERP_TAG_LEN + 1], *addr;

	test_begin("verp: the tag is 32 hex, '.', 16 hex; the address fits a local part");
	test_assert(verp_tag_make(key, case_id, msgid, tag) == 0);
	test_assert(strlen(tag) == VERP_TAG_LEN);
	test_assert(strncmp(tag, "4fc5a0c21d2e4b7a9a513c2d1e0f9a8b.", 33) == 0);
	for (size_t i = 33; i < VERP_TAG_LEN; i++)
		test_assert(isxdigit((unsigned char)tag[i]) && !isupper((unsigned char)tag[i]));
	addr = verp_address("bounces@offload.test", tag);
	test_assert(addr && strncmp(addr, "bounces+", 8) == 0);
	test_assert(addr && strchr(addr, '@') - addr <= 64);
	free(addr);
	test_assert(verp_address("no-at-sign", tag) == NULL);
	test_assert(verp_tag_make(key, "not-a-uuid", msgid, tag) < 0);
	test_end();
}

static void test_known_value(void)
{
	char tag[VERP_TAG_LEN + 1], hex[65];
	unsigned char mac[32];
	const char data[] = "offload-bounce-tag-v1\n4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b\n"
			    "4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b.1.0badc0de@offload.test";

	test_begin("verp: the MAC is HMAC-SHA256 of the documented string, 8 bytes kept");
	util_hmac_sha256(key, sizeof key, data, strlen(data), mac);
	util_hex(mac, 8, hex);
	test_assert(verp_tag_make(key, case_id, msgid, tag) == 0);
	test_assert_str(tag + 33, hex);
	test_end();
}

static void test_round_trip(void)
{
	char tag[VERP_TAG_LEN + 1], ptag[VERP_TAG_LEN + 1], pcase[37], *addr, *upper;

	test_begin("verp: a tag parses back and checks, in any letter case");
	test_assert(verp_tag_make(key, case_id, msgid, tag) == 0);
	addr = verp_address("bounces@offload.test", tag);
	test_assert(verp_tag_parse(addr, pcase, ptag) == 1);
	test_assert_str(pcase, case_id);
	test_assert_str(ptag, tag);
	test_assert(verp_tag_check(key, ptag, msgid) == 1);
	upper = strdup(addr);
	for (char *p = upper; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	test_assert(verp_tag_parse(upper, pcase, ptag) == 1);
	test_assert_str(pcase, case_id);
	test_assert(verp_tag_check(key, ptag, msgid) == 1);
	free(upper);
	free(addr);
	test_end();
}

static void test_tampering(void)
{
	char tag[VERP_TAG_LEN + 1], bad[VERP_TAG_LEN + 1];

	test_begin("verp: another key, message, case or any changed digit fails");
	test_assert(verp_tag_make(key, case_id, msgid, tag) == 0);
	test_assert(verp_tag_check(other_key, tag, msgid) == 0);
	test_assert(verp_tag_check(key, tag, "4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b.2.0badc0de@offload.test") == 0);
	for (size_t i = 0; i < VERP_TAG_LEN; i++) {
		if (i == 32)
			continue;
		memcpy(bad, tag, sizeof bad);
		bad[i] = bad[i] == '0' ? '1' : '0';
		test_assert(verp_tag_check(key, bad, msgid) == 0);
	}
	test_end();
}

static void test_parse_refuses(void)
{
	static const char *const bad[] = {
		"offload@offload.test",
		"offload+4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b@offload.test", /* a reply address */
		"bounces+4fc5a0c21d2e4b7a9a513c2d1e0f9a8b.0123456789abcde@offload.test",
		"bounces+4fc5a0c21d2e4b7a9a513c2d1e0f9a8b.0123456789abcdef0@offload.test",
		"bounces+4fc5a0c21d2e4b7a9a513c2d1e0f9a8bx0123456789abcdef@offload.test",
		"bounces+4fc5a0c21d2e4b7a9a513c2d1e0f9a8g.0123456789abcdef@offload.test",
		"bounces+4fc5a0c21d2e4b7a9a513c2d1e0f9a8b.0123456789abcdef", /* no domain */
		"",
	};
	char pcase[37], ptag[VERP_TAG_LEN + 1];

	test_begin("verp: addresses without a well-formed tag are not tags");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		test_assert(verp_tag_parse(bad[i], pcase, ptag) == 0);
	test_assert(verp_tag_parse("x+y+4fc5a0c21d2e4b7a9a513c2d1e0f9a8b.0123456789abcdef@d", pcase,
				   ptag) == 1);
	test_end();
}

static void test_kinds(void)
{
	test_begin("verp: reports are dsn, dsn_other and arf");
	test_assert(verp_kind_is_report(INGEST_KIND_DSN));
	test_assert(verp_kind_is_report(INGEST_KIND_DSN_OTHER));
	test_assert(verp_kind_is_report(INGEST_KIND_ARF));
	test_assert(!verp_kind_is_report(INGEST_KIND_REPLY));
	test_assert(!verp_kind_is_report(INGEST_KIND_AUTO_REPLY));
	test_end();
}

int main(void)
{
	test_shape();
	test_known_value();
	test_round_trip();
	test_tampering();
	test_parse_refuses();
	test_kinds();
	return test_done();
}
