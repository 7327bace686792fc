/* url.h: the checks an absolute URL from a client or an operator goes through before it is
 * stored (libcurl's URL parser). */
#ifndef OFFLOAD_URL_H
#define OFFLOAD_URL_H

#include <curl/curl.h>

enum url_check {
	URL_VALID = 0,
	URL_BAD_CHARS,	/* a space, a control or a non-ASCII character */
	URL_NOT_URL,	/* libcurl does not take it for an absolute URL */
	URL_BAD_SCHEME, /* a scheme other than the two allowed */
	URL_NO_HOST,	/* no host, or an empty one */
};

/*
 * Checks that s is printable ASCII, an absolute URL whose scheme is scheme_a or scheme_b (any
 * case) and that names a host; curl_flags go to curl_url_set() (CURLU_NON_SUPPORT_SCHEME for a
 * scheme libcurl may be built without). Returns the first of those checks that fails, in the
 * order of enum url_check, or URL_VALID. With u_r not NULL, *u_r is then the parsed URL for
 * the caller's own checks (the caller curl_url_cleanup()s it), and NULL after a failure. The
 * length cap is the caller's. Aborts when out of memory (xalloc.h).
 */
enum url_check url_check(const char *s, const char *scheme_a, const char *scheme_b,
			 unsigned int curl_flags, CURLU **u_r);

#endif
