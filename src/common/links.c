/* links.c: HMAC-SHA256 signed download links; nginx streams the file after we check them. */
#include <stdio.h>
#include <string.h>

#include "common/links.h"
#include "common/util.h"

void links_sign(const void *key, size_t key_len, const char *attachment_id, int64_t expires_s,
		char sig[LINKS_SIG_SIZE])
{
	char msg[256];
	unsigned char mac[32];
	int n;

	n = snprintf(msg, sizeof msg, "/files/%s\n%lld", attachment_id, (long long)expires_s);
	if (n < 0 || (size_t)n >= sizeof msg)
		n = 0; /* ids are bounded by the caller; an oversized one signs to garbage */
	util_hmac_sha256(key, key_len, msg, (size_t)n, mac);
	util_base64url(mac, sizeof mac, sig);
}

enum links_check links_verify(const void *key, size_t key_len, const char *attachment_id,
			      const char *expires, const char *sig, int64_t now_s)
{
	char want[LINKS_SIG_SIZE];
	int64_t exp;

	if (!expires || !sig || strlen(attachment_id) > 64)
		return LINKS_BAD;
	/* Only the canonical spelling we mint: "0200" is not "200". */
	if (util_parse_int64(expires, &exp) < 0 || exp < 0 || (expires[0] == '0' && expires[1]))
		return LINKS_BAD;
	if (strlen(sig) != LINKS_SIG_SIZE - 1)
		return LINKS_BAD;
	links_sign(key, key_len, attachment_id, exp, want);
	if (!util_mem_equal(want, sig, LINKS_SIG_SIZE - 1))
		return LINKS_BAD;
	if (exp < now_s)
		return LINKS_EXPIRED;
	return LINKS_VALID;
}
