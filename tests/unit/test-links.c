/* test-links.c: signed download links: round trip, tampering, expiry. */
#include <stdio.h>
#include <string.h>

#include "common/links.h"
#include "common/util.h"
#include "test.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
static const char id[] = "4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b";

static void test_round_trip(void)
{
	char sig[LINKS_SIG_SIZE];

	test_begin("links: a fresh link verifies");
	links_sign(key, sizeof key, id, 2000000000, sig);
	test_assert(strlen(sig) == LINKS_SIG_SIZE - 1);
	test_assert(strchr(sig, '=') == NULL && strchr(sig, '+') == NULL && strchr(sig, '/') == NULL);
	test_assert(links_verify(key, sizeof key, id, "2000000000", sig, 1999999999) == LINKS_VALID);
	test_assert(links_verify(key, sizeof key, id, "2000000000", sig, 2000000000) == LINKS_VALID);
	test_end();
}

static void test_known_value(void)
{
	char sig[LINKS_SIG_SIZE], want[LINKS_SIG_SIZE];
	unsigned char mac[32];
	const char msg[] = "/files/4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8b\n1774111320";

	test_begin("links: the signature is HMAC-SHA256 over \"/files/{id}\\n{expires}\"");
	links_sign(key, sizeof key, id, 1774111320, sig);
	util_hmac_sha256(key, sizeof key, msg, sizeof msg - 1, mac);
	util_base64url(mac, sizeof mac, want);
	test_assert_str(sig, want);
	test_end();
}

static void test_tampering(void)
{
	char sig[LINKS_SIG_SIZE], bad[LINKS_SIG_SIZE];
	const unsigned char other_key[32] = "ffffffffffffffffffffffffffffffff";

	test_begin("links: any altered part is refused");
	links_sign(key, sizeof key, id, 2000000000, sig);
	memcpy(bad, sig, sizeof bad);
	bad[0] = bad[0] == 'A' ? 'B' : 'A';
	test_assert(links_verify(key, sizeof key, id, "2000000000", bad, 0) == LINKS_BAD);
	test_assert(links_verify(key, sizeof key, id, "2000000001", sig, 0) == LINKS_BAD);
	test_assert(links_verify(key, sizeof key, "4fc5a0c2-1d2e-4b7a-9a51-3c2d1e0f9a8c",
				 "2000000000", sig, 0) == LINKS_BAD);
	test_assert(links_verify(other_key, sizeof other_key, id, "2000000000", sig, 0) == LINKS_BAD);
	/* Same number written differently is a different link. */
	test_assert(links_verify(key, sizeof key, id, "02000000000", sig, 0) == LINKS_BAD);
	test_assert(links_verify(key, sizeof key, id, "2000000000 ", sig, 0) == LINKS_BAD);
	test_assert(links_verify(key, sizeof key, id, "-1", sig, 0) == LINKS_BAD);
	test_assert(links_verify(key, sizeof key, id, "", sig, 0) == LINKS_BAD);
	test_assert(links_verify(key, sizeof key, id, NULL, sig, 0) == LINKS_BAD);
	test_assert(links_verify(key, sizeof key, id, "2000000000", NULL, 0) == LINKS_BAD);
	test_assert(links_verify(key, sizeof key, id, "2000000000", "short", 0) == LINKS_BAD);
	test_end();
}

static void test_expiry(void)
{
	char sig[LINKS_SIG_SIZE];

	test_begin("links: an expired link is told apart from a forged one");
	links_sign(key, sizeof key, id, 1000, sig);
	test_assert(links_verify(key, sizeof key, id, "1000", sig, 1001) == LINKS_EXPIRED);
	test_assert(links_verify(key, sizeof key, id, "1000", sig, 1000) == LINKS_VALID);
	/* An altered expiry on an expired link is forged, not expired. */
	test_assert(links_verify(key, sizeof key, id, "999", sig, 1001) == LINKS_BAD);
	test_end();
}

int main(void)
{
	test_round_trip();
	test_known_value();
	test_tampering();
	test_expiry();
	return test_done();
}
