/* tls.c: TLS is required whenever a password would cross the wire; certificates are verified. */
#include <stddef.h>

#include "common/cfg.h"
#include "mail/tls.h"

void mail_tls_setopt(CURL *h, struct cfg *cfg, int credentials)
{
	const char *ca = cfg_get(cfg, "mail", "ca_file", "");

	/* CURLUSESSL_TRY would send the password in clear to a server (or anyone in between)
	 * that does not announce STARTTLS. */
	curl_easy_setopt(h, CURLOPT_USE_SSL, (long)(credentials ? CURLUSESSL_ALL : CURLUSESSL_TRY));
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca && *ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
}

const char *mail_tls_error(CURLcode cc, int credentials)
{
	switch (cc) {
	case CURLE_USE_SSL_FAILED:
		return credentials ? "the server does not offer STARTTLS; credentials are configured, "
				     "so they are only sent over TLS (nothing was sent)"
				   : "STARTTLS failed";
	case CURLE_PEER_FAILED_VERIFICATION:
		return "the server's TLS certificate could not be verified (see [mail] ca_file)";
	case CURLE_SSL_CONNECT_ERROR:
		return "the TLS handshake failed";
	default:
		return NULL;
	}
}
