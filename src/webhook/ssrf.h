/* ssrf.h: which addresses a webhook may reach (doc/api.md, "Webhooks"): the address check
 * and the resolve-then-check step whose result delivery pins with CURLOPT_RESOLVE. */
#ifndef OFFLOAD_SSRF_H
#define OFFLOAD_SSRF_H

#include <stddef.h>

struct sockaddr;

enum ssrf_policy {
	SSRF_PUBLIC_ONLY,   /* the default: only globally routable unicast addresses */
	SSRF_ALLOW_PRIVATE, /* [webhook] allow_private = true: any IPv4 or IPv6 address */
	SSRF_LOOPBACK_ONLY, /* [webhook] loopback_only = true (test stacks): 127/8 and ::1 only */
};

/*
 * 1 when sa (AF_INET or AF_INET6) is a public unicast address a webhook may be sent to, 0
 * when it is loopback, unspecified, private (RFC 1918, fc00::/7), shared (100.64/10),
 * link-local (169.254/16 with the cloud metadata address, fe80::/10), multicast, broadcast,
 * reserved, documentation or benchmarking space, or an IPv6 form that embeds or translates to
 * IPv4 (::ffff:0:0/96 is judged by the IPv4 address inside; ::/96, 64:ff9b::/96, 2002::/16
 * and Teredo are refused outright). Any other address family is refused. Pure: no I/O.
 */
int ssrf_address_allowed(const struct sockaddr *sa);

/*
 * The reason sa is refused under the default policy ("loopback", "private (RFC 1918)", ...),
 * or NULL when ssrf_address_allowed() would return 1. A static string.
 */
const char *ssrf_address_refusal(const struct sockaddr *sa);

/*
 * The same decision under policy: NULL when the address may be reached, else the reason
 * (a static string).
 */
const char *ssrf_policy_refusal(const struct sockaddr *sa, enum ssrf_policy policy);

/*
 * Resolves host (a name, an IPv4 literal, or an IPv6 literal with or without brackets) with
 * getaddrinfo and checks every address under policy; under SSRF_LOOPBACK_ONLY only literals
 * and "localhost" are resolved at all (no DNS query leaves the machine).
 *   1: every address may be reached; *addrs_r is a newly allocated list for CURLOPT_RESOLVE
 *      ("192.0.2.7,[2001:db8::7]", the caller frees it).
 *   0: refused: at least one address may not be reached, or the host is not allowed at all;
 *      error (error_len bytes) says why.
 *  -1: the name did not resolve (may be temporary); error says why.
 */
int ssrf_resolve(const char *host, enum ssrf_policy policy, char **addrs_r, char *error,
		 size_t error_len);

#endif
