/* ssrf.c: the SSRF guard of webhook delivery: a denylist of address ranges (OWASP "any
 * external host" case) applied to every address a name resolves to. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "webhook/ssrf.h"

/* At most this many addresses of one name are checked and pinned. */
#define SSRF_MAX_ADDRS 32

struct v4_range {
	uint32_t net;
	int bits;
	const char *why;
};

/* IANA IPv4 special-purpose registry (RFC 6890 and successors): nothing here is a public
 * webhook receiver. Order matters only for the reason given. */
static const struct v4_range v4_refused[] = {
	{ 0x00000000, 8, "unspecified (0.0.0.0/8)" },
	{ 0x0a000000, 8, "private (RFC 1918, 10.0.0.0/8)" },
	{ 0x64400000, 10, "shared address space (100.64.0.0/10)" },
	{ 0x7f000000, 8, "loopback (127.0.0.0/8)" },
	{ 0xa9fea9fe, 32, "cloud metadata (169.254.169.254)" },
	{ 0xa9fe0000, 16, "link-local (169.254.0.0/16)" },
	{ 0xac100000, 12, "private (RFC 1918, 172.16.0.0/12)" },
	{ 0xc0000000, 24, "IETF protocol assignments (192.0.0.0/24)" },
	{ 0xc0000200, 24, "documentation (192.0.2.0/24)" },
	{ 0xc0586300, 24, "6to4 relay anycast (192.88.99.0/24)" },
	{ 0xc0a80000, 16, "private (RFC 1918, 192.168.0.0/16)" },
	{ 0xc6120000, 15, "benchmarking (198.18.0.0/15)" },
	{ 0xc6336400, 24, "documentation (198.51.100.0/24)" },
	{ 0xcb007100, 24, "documentation (203.0.113.0/24)" },
	{ 0xe0000000, 4, "multicast (224.0.0.0/4)" },
	{ 0xffffffff, 32, "broadcast (255.255.255.255)" },
	{ 0xf0000000, 4, "reserved (240.0.0.0/4)" },
};

struct v6_range {
	unsigned char net[16];
	int bits;
	const char *why;
};

/* IANA IPv6 special-purpose registry, plus the deprecated site-local block. ::ffff:0:0/96 is
 * not here: it is judged by the IPv4 address inside. */
static const struct v6_range v6_refused[] = {
	{ { 0 }, 128, "unspecified (::)" },
	{ { [15] = 1 }, 128, "loopback (::1)" },
	{ { 0 }, 96, "IPv4-compatible (::/96, deprecated)" },
	{ { 0x00, 0x64, 0xff, 0x9b }, 96, "NAT64 (64:ff9b::/96)" },
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, "local NAT64 (64:ff9b:1::/48)" },
	{ { 0x01, 0x00 }, 64, "discard-only (100::/64)" },
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, "Teredo (2001::/32)" },
	{ { 0x20, 0x01, 0x00, 0x02, 0x00, 0x00 }, 48, "benchmarking (2001:2::/48)" },
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "documentation (2001:db8::/32)" },
	{ { 0x20, 0x02 }, 16, "6to4 (2002::/16)" },
	{ { 0x3f, 0xff }, 20, "documentation (3fff::/20)" },
	{ { 0xfc }, 7, "unique local (fc00::/7)" },
	{ { 0xfe, 0x80 }, 10, "link-local (fe80::/10)" },
	{ { 0xfe, 0xc0 }, 10, "site-local (fec0::/10, deprecated)" },
	{ { 0xff }, 8, "multicast (ff00::/8)" },
};

static const unsigned char v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static const char *v4_refusal(uint32_t a)
{
	for (size_t i = 0; i < sizeof v4_refused / sizeof v4_refused[0]; i++) {
		uint32_t mask = v4_refused[i].bits == 0 ? 0 : 0xffffffffu << (32 - v4_refused[i].bits);

		if ((a & mask) == v4_refused[i].net)
			return v4_refused[i].why;
	}
	return NULL;
}

static int v6_in(const unsigned char a[16], const struct v6_range *r)
{
	int full = r->bits / 8, rest = r->bits % 8;

	if (memcmp(a, r->net, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ r->net[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static const char *v6_refusal(const unsigned char a[16])
{
	if (memcmp(a, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
		uint32_t v4 = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 | a[15];

		/* The kernel connects ::ffff:a.b.c.d to a.b.c.d: judge the IPv4 address. */
		return v4_refusal(v4);
	}
	for (size_t i = 0; i < sizeof v6_refused / sizeof v6_refused[0]; i++)
		if (v6_in(a, &v6_refused[i]))
			return v6_refused[i].why;
	return NULL;
}

const char *ssrf_address_refusal(const struct sockaddr *sa)
{
	if (!sa)
		return "no address";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return v4_refusal(ntohl(in->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		return v6_refusal(in6->sin6_addr.s6_addr);
	}
	return "not an IPv4 or IPv6 address";
}

int ssrf_address_allowed(const struct sockaddr *sa)
{
	return ssrf_address_refusal(sa) == NULL;
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const unsigned char one[16] = { [15] = 1 };

		return memcmp(a, one, 16) == 0 ||
		       (memcmp(a, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0 && a[12] == 127);
	}
	return 0;
}

const char *ssrf_policy_refusal(const struct sockaddr *sa, enum ssrf_policy policy)
{
	if (!sa)
		return "no address";
	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return "not an IPv4 or IPv6 address";
	switch (policy) {
	case SSRF_ALLOW_PRIVATE:
		return NULL;
	case SSRF_LOOPBACK_ONLY:
		return is_loopback(sa) ? NULL : "not loopback ([webhook] loopback_only is set)";
	case SSRF_PUBLIC_ONLY:
	default:
		return ssrf_address_refusal(sa);
	}
}

/* Formats the address for CURLOPT_RESOLVE: IPv6 in brackets. */
static int format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char text[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		if (!inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof text))
			return -1;
		return snprintf(out, cap, "%s", text) < (int)cap ? 0 : -1;
	}
	if (!inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof text))
		return -1;
	return snprintf(out, cap, "[%s]", text) < (int)cap ? 0 : -1;
}

int ssrf_resolve(const char *host, enum ssrf_policy policy, char **addrs_r, char *error,
		 size_t error_len)
{
	struct addrinfo hints, *list = NULL;
	struct buf addrs;
	char name[256];
	size_t len = strlen(host);
	int n = 0, e, rc = -1;

	*addrs_r = NULL;
	buf_init(&addrs, SSRF_MAX_ADDRS * (INET6_ADDRSTRLEN + 3));
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof name) {
		snprintf(error, error_len, "host name is empty or too long");
		rc = 0;
		goto out;
	}
	memcpy(name, host, len);
	name[len] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* A test stack must never send even a DNS query outside: literals and localhost only. */
	if (policy == SSRF_LOOPBACK_ONLY && strcasecmp(name, "localhost") != 0)
		hints.ai_flags |= AI_NUMERICHOST;
	e = getaddrinfo(name, NULL, &hints, &list);
	if (e != 0) {
		if (policy == SSRF_LOOPBACK_ONLY && e == EAI_NONAME) {
			snprintf(error, error_len, "refused: %s is not a loopback literal or localhost "
				 "([webhook] loopback_only is set)", name);
			rc = 0;
		} else {
			snprintf(error, error_len, "cannot resolve %s: %s", name, gai_strerror(e));
		}
		goto out;
	}
	/* Every address must pass, not just the first: a name may mix a public address with a
	 * private one and let the connection pick. */
	for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		const char *why = ssrf_policy_refusal(ai->ai_addr, policy);
		char text[INET6_ADDRSTRLEN + 3];

		if (why) {
			if (format_addr(ai->ai_addr, text, sizeof text) < 0)
				snprintf(text, sizeof text, "?");
			snprintf(error, error_len, "refused: %s resolves to %s, %s", name, text, why);
			rc = 0;
			goto out;
		}
		if (n == SSRF_MAX_ADDRS || format_addr(ai->ai_addr, text, sizeof text) < 0)
			continue;
		if ((n > 0 && buf_puts(&addrs, ",") < 0) || buf_puts(&addrs, text) < 0)
			continue;
		n++;
	}
	if (n == 0) {
		snprintf(error, error_len, "cannot resolve %s: no usable address", name);
		goto out;
	}
	*addrs_r = addrs.data;
	addrs.data = NULL;
	rc = 1;
out:
	if (list)
		freeaddrinfo(list);
	buf_free(&addrs);
	return rc;
}
