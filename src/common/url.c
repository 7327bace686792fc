/* url.c: the checks an absolute URL goes through before it is stored (see url.h). */
#include <stdlib.h>
#include <strings.h>

#include "common/log.h"
#include "common/url.h"

enum url_check url_check(const char *s, const char *scheme_a, const char *scheme_b,
			 unsigned int curl_flags, CURLU **u_r)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	enum url_check rc;

	if (u_r)
		*u_r = NULL;
	/* RFC 3986 URLs are ASCII; whitespace and controls are never part of one. */
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return URL_BAD_CHARS;
	/* libcurl reports allocation failure by NULL; the policy is to abort (xalloc.h). */
	u = curl_url();
	if (!u) {
		log_error("out of memory");
		abort();
	}
	if (curl_url_set(u, CURLUPART_URL, s, curl_flags) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		rc = URL_NOT_URL;
	else if (strcasecmp(scheme, scheme_a) != 0 && strcasecmp(scheme, scheme_b) != 0)
		rc = URL_BAD_SCHEME;
	else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
		rc = URL_NO_HOST;
	else
		rc = URL_VALID;
	curl_free(scheme);
	curl_free(host);
	if (rc == URL_VALID && u_r)
		*u_r = u;
	else
		curl_url_cleanup(u);
	return rc;
}
