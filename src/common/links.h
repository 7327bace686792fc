/* links.h: signed, expiring download links for attachments (/files/{id}?expires=&sig=). */
#ifndef OFFLOAD_LINKS_H
#define OFFLOAD_LINKS_H

#include <stddef.h>
#include <stdint.h>

/* Length of a signature: base64url of 32 bytes, no padding, plus NUL. */
#define LINKS_SIG_SIZE 44

enum links_check {
	LINKS_VALID = 0,    /* signature good and not expired */
	LINKS_BAD = -1,     /* malformed, or the signature does not match */
	LINKS_EXPIRED = -2, /* signature good, expiry in the past */
};

/*
 * Signs "/files/{attachment_id}\n{expires_s}" with HMAC-SHA256 under key and writes the
 * base64url signature (no padding) into sig.
 */
void links_sign(const void *key, size_t key_len, const char *attachment_id, int64_t expires_s,
		char sig[LINKS_SIG_SIZE]);

/*
 * Checks a link's expires and sig query values (as received, may be NULL) for
 * attachment_id at time now_s. The signature is checked first, so an altered expiry is
 * LINKS_BAD, not LINKS_EXPIRED.
 */
enum links_check links_verify(const void *key, size_t key_len, const char *attachment_id,
			      const char *expires, const char *sig, int64_t now_s);

#endif
