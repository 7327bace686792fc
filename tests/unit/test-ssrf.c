/* test-ssrf.c: unit tests of the webhook address check. Addresses are literals only: nothing
 * here opens a socket or sends a DNS query. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "test.h"
#include "webhook/ssrf.h"

/* Builds a sockaddr from an IPv4 or IPv6 literal; aborts the test program on a typo. */
static const struct sockaddr *addr(const char *text)
{
	static struct sockaddr_storage ss;

	memset(&ss, 0, sizeof ss);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1) {
			fprintf(stderr, "bad literal in test: %s\n", text);
			abort();
		}
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		if (inet_pton(AF_INET, text, &in->sin_addr) != 1) {
			fprintf(stderr, "bad literal in test: %s\n", text);
			abort();
		}
	}
	return (const struct sockaddr *)&ss;
}

/* Checks that every literal in list gets the verdict want (1 allowed, 0 refused), and that
 * a refusal names the expected kind (reason contains why). */
static void expect(const char *const *list, int want, const char *why)
{
	for (size_t i = 0; list[i]; i++) {
		const struct sockaddr *sa = addr(list[i]);
		int got = ssrf_address_allowed(sa);
		const char *reason = ssrf_address_refusal(addr(list[i]));

		if (got != want) {
			fprintf(stderr, "  %s: allowed=%d, want %d (%s)\n", list[i], got, want,
				reason ? reason : "no reason");
			test_assert(got == want);
		}
		if (!want && (!reason || (why && !strstr(reason, why)))) {
			fprintf(stderr, "  %s: reason \"%s\", want it to mention \"%s\"\n", list[i],
				reason ? reason : "(null)", why);
			test_assert(!"refusal reason");
		}
		if (want && reason) {
			fprintf(stderr, "  %s: allowed but reason \"%s\"\n", list[i], reason);
			test_assert(!"allowed with a reason");
		}
	}
}

#define REFUSED(name, why, ...) \
	do { \
		static const char *const l_[] = { __VA_ARGS__, NULL }; \
		test_begin(name); \
		expect(l_, 0, why); \
		test_end(); \
	} while (0)

static void test_public(void)
{
	static const char *const v4[] = {
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "9.255.255.255", "11.0.0.0",
		"100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0",
		"169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
		"192.0.1.255", "192.0.3.0", "192.167.255.255", "192.169.0.0", "198.17.255.255",
		"198.20.0.0", "223.255.255.255", NULL,
	};
	static const char *const v6[] = {
		"2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001::200e",
		"2001:1::1", "2001:db7:ffff::1", "2003::1", "2001:4::1", "fbff:ffff::1",
		"::ffff:8.8.8.8", "::ffff:93.184.216.34", "64:ff9a:ffff::1", "3ffe::1", NULL,
	};

	test_begin("public IPv4 addresses (and the edges of refused ranges) are allowed");
	expect(v4, 1, NULL);
	test_end();
	test_begin("public IPv6 addresses (and IPv4-mapped public ones) are allowed");
	expect(v6, 1, NULL);
	test_end();
}

static void test_v4_ranges(void)
{
	REFUSED("0.0.0.0/8 unspecified", "unspecified", "0.0.0.0", "0.1.2.3", "0.255.255.255");
	REFUSED("127.0.0.0/8 loopback", "loopback", "127.0.0.1", "127.0.0.0", "127.1.2.3",
		"127.255.255.255");
	REFUSED("10.0.0.0/8 private", "RFC 1918", "10.0.0.0", "10.0.0.1", "10.255.255.255");
	REFUSED("172.16.0.0/12 private", "RFC 1918", "172.16.0.0", "172.16.0.1", "172.20.1.1",
		"172.31.255.255");
	REFUSED("192.168.0.0/16 private", "RFC 1918", "192.168.0.0", "192.168.1.1",
		"192.168.255.255");
	REFUSED("100.64.0.0/10 shared (CGNAT)", "shared", "100.64.0.0", "100.64.0.1",
		"100.100.100.200", "100.127.255.255");
	REFUSED("169.254.0.0/16 link-local", "link-local", "169.254.0.0", "169.254.0.1",
		"169.254.255.255", "169.254.170.2");
	REFUSED("169.254.169.254 cloud metadata", "metadata", "169.254.169.254");
	REFUSED("224.0.0.0/4 multicast", "multicast", "224.0.0.0", "224.0.0.1", "239.255.255.250",
		"239.255.255.255");
	REFUSED("255.255.255.255 broadcast", "broadcast", "255.255.255.255");
	REFUSED("240.0.0.0/4 reserved", "reserved", "240.0.0.0", "250.1.2.3", "255.255.255.254");
	REFUSED("192.0.0.0/24 IETF protocol assignments", "IETF", "192.0.0.0", "192.0.0.170",
		"192.0.0.255");
	REFUSED("documentation ranges", "documentation", "192.0.2.1", "198.51.100.7",
		"203.0.113.255");
	REFUSED("198.18.0.0/15 benchmarking", "benchmarking", "198.18.0.0", "198.19.255.255");
	REFUSED("192.88.99.0/24 6to4 relay", "6to4", "192.88.99.1");
}

static void test_v6_ranges(void)
{
	REFUSED("::1 loopback", "loopback", "::1");
	REFUSED(":: unspecified", "unspecified", "::");
	REFUSED("::/96 IPv4-compatible", "IPv4-compatible", "::127.0.0.1", "::8.8.8.8", "::2",
		"::ffff");
	REFUSED("::ffff:0:0/96 mapped loopback", "loopback", "::ffff:127.0.0.1", "::ffff:7f00:1",
		"::ffff:127.255.0.1");
	REFUSED("::ffff:0:0/96 mapped private", "RFC 1918", "::ffff:10.0.0.1", "::ffff:172.16.0.1",
		"::ffff:192.168.1.1");
	REFUSED("::ffff:0:0/96 mapped metadata and others", NULL, "::ffff:169.254.169.254",
		"::ffff:0.0.0.0", "::ffff:100.64.0.1", "::ffff:224.0.0.1",
		"::ffff:255.255.255.255");
	REFUSED("fe80::/10 link-local", "link-local", "fe80::", "fe80::1", "febf:ffff::1");
	REFUSED("fc00::/7 unique local", "unique local", "fc00::", "fc00::1", "fd00::1",
		"fd00:ec2::254", "fdff:ffff:ffff::1");
	REFUSED("ff00::/8 multicast", "multicast", "ff00::", "ff02::1", "ff05::1:3", "ffff::1");
	REFUSED("64:ff9b::/96 NAT64", "NAT64", "64:ff9b::", "64:ff9b::7f00:1", "64:ff9b::808:808");
	REFUSED("64:ff9b:1::/48 local NAT64", "NAT64", "64:ff9b:1::1");
	REFUSED("2002::/16 6to4", "6to4", "2002::", "2002:7f00:1::1", "2002:ffff::1");
	REFUSED("2001::/32 Teredo", "Teredo", "2001::", "2001:0:4136:e378::1");
	REFUSED("fec0::/10 site-local", "site-local", "fec0::1", "feff::1");
	REFUSED("IPv6 documentation", "documentation", "2001:db8::1", "2001:db8:ffff::1", "3fff::1");
	REFUSED("100::/64 discard-only", "discard", "100::1");
	REFUSED("2001:2::/48 benchmarking", "benchmarking", "2001:2::1");
}

static void test_other_families(void)
{
	struct sockaddr_storage ss;

	test_begin("other address families and NULL are refused");
	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	test_assert(ssrf_address_allowed((struct sockaddr *)&ss) == 0);
	test_assert(ssrf_address_refusal(NULL) != NULL);
	test_assert(ssrf_policy_refusal((struct sockaddr *)&ss, SSRF_ALLOW_PRIVATE) != NULL);
	test_end();
}

static void test_policies(void)
{
	test_begin("policies: allow_private allows all; loopback_only allows loopback only");
	test_assert(ssrf_policy_refusal(addr("127.0.0.1"), SSRF_PUBLIC_ONLY) != NULL);
	test_assert(ssrf_policy_refusal(addr("8.8.8.8"), SSRF_PUBLIC_ONLY) == NULL);
	test_assert(ssrf_policy_refusal(addr("127.0.0.1"), SSRF_ALLOW_PRIVATE) == NULL);
	test_assert(ssrf_policy_refusal(addr("10.1.2.3"), SSRF_ALLOW_PRIVATE) == NULL);
	test_assert(ssrf_policy_refusal(addr("fd00::1"), SSRF_ALLOW_PRIVATE) == NULL);
	test_assert(ssrf_policy_refusal(addr("127.0.0.1"), SSRF_LOOPBACK_ONLY) == NULL);
	test_assert(ssrf_policy_refusal(addr("127.9.9.9"), SSRF_LOOPBACK_ONLY) == NULL);
	test_assert(ssrf_policy_refusal(addr("::1"), SSRF_LOOPBACK_ONLY) == NULL);
	test_assert(ssrf_policy_refusal(addr("::ffff:127.0.0.1"), SSRF_LOOPBACK_ONLY) == NULL);
	test_assert(ssrf_policy_refusal(addr("8.8.8.8"), SSRF_LOOPBACK_ONLY) != NULL);
	test_assert(ssrf_policy_refusal(addr("10.0.0.1"), SSRF_LOOPBACK_ONLY) != NULL);
	test_assert(ssrf_policy_refusal(addr("::ffff:8.8.8.8"), SSRF_LOOPBACK_ONLY) != NULL);
	test_assert(ssrf_policy_refusal(addr("::"), SSRF_LOOPBACK_ONLY) != NULL);
	test_end();
}

/* ssrf_resolve on literals: getaddrinfo parses them without any lookup. */
static void test_resolve_literals(void)
{
	char err[256], *addrs = NULL;

	test_begin("resolve: literals are checked; the pinned list is formatted for curl");
	test_assert(ssrf_resolve("127.0.0.1", SSRF_PUBLIC_ONLY, &addrs, err, sizeof err) == 0);
	test_assert(addrs == NULL);
	test_assert(strstr(err, "loopback") != NULL);
	test_assert(ssrf_resolve("[::ffff:127.0.0.1]", SSRF_PUBLIC_ONLY, &addrs, err, sizeof err) == 0);
	test_assert(ssrf_resolve("169.254.169.254", SSRF_PUBLIC_ONLY, &addrs, err, sizeof err) == 0);
	test_assert(strstr(err, "metadata") != NULL);
	test_assert(ssrf_resolve("[fd00:ec2::254]", SSRF_PUBLIC_ONLY, &addrs, err, sizeof err) == 0);
	test_assert(ssrf_resolve("127.0.0.1", SSRF_ALLOW_PRIVATE, &addrs, err, sizeof err) == 1);
	test_assert_str(addrs, "127.0.0.1");
	free(addrs);
	addrs = NULL;
	test_assert(ssrf_resolve("[::1]", SSRF_LOOPBACK_ONLY, &addrs, err, sizeof err) == 1);
	test_assert_str(addrs, "[::1]");
	free(addrs);
	addrs = NULL;
	test_assert(ssrf_resolve("93.184.216.34", SSRF_PUBLIC_ONLY, &addrs, err, sizeof err) == 1);
	test_assert_str(addrs, "93.184.216.34");
	free(addrs);
	addrs = NULL;
	test_assert(ssrf_resolve("93.184.216.34", SSRF_LOOPBACK_ONLY, &addrs, err, sizeof err) == 0);
	test_assert(ssrf_resolve("10.0.0.1", SSRF_LOOPBACK_ONLY, &addrs, err, sizeof err) == 0);
	/* Under loopback_only a name is never looked up: refused at once. */
	test_assert(ssrf_resolve("hooks.example.com", SSRF_LOOPBACK_ONLY, &addrs, err, sizeof err) == 0);
	test_assert(strstr(err, "loopback_only") != NULL);
	test_assert(ssrf_resolve("", SSRF_ALLOW_PRIVATE, &addrs, err, sizeof err) == 0);
	test_assert(ssrf_resolve("[]", SSRF_ALLOW_PRIVATE, &addrs, err, sizeof err) == 0);
	test_assert(addrs == NULL);
	test_end();
}

int main(void)
{
	test_public();
	test_v4_ranges();
	test_v6_ranges();
	test_other_families();
	test_policies();
	test_resolve_literals();
	return test_done();
}
