/* validate_format.c: the formats of single values: Idempotency-Key, email address, IANA
 * time zone, http(s) URL.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/validate.h"
#include "api/validate_field.h"
#include "common/url.h"

#ifndef ZONEINFO_DIR
#define ZONEINFO_DIR "/usr/share/zoneinfo"
#endif

/* Caps (bytes). */
#define MAX_TIMEZONE 64
#define MAX_EMAIL 254
#define MAX_LOCAL_PART 64
#define MAX_LABEL 63

/* RFC 5322 §3.2.3 atext. */
static int is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* RFC 5322 dot-atom local part: no quoted strings (they cannot be header-safe here). */
static int local_part_valid(const char *s, size_t len)
{
	if (len == 0 || len > MAX_LOCAL_PART || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* RFC 1035 §2.3.1 host name: LDH labels of 1–63 chars, no IP literals. */
static int domain_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || label > MAX_LABEL || s[i - label] == '-' ||
			    s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (is_ldh((unsigned char)s[i])) {
			label++;
		} else {
			return 0;
		}
	}
	return 1;
}

int validate_idempotency_key(const char *key)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t len = strlen(key), chars = 0;

	/* 255 characters are at most 1020 bytes of UTF-8. */
	if (len == 0 || len > 4 * 255 || !val_utf8_valid(s, len))
		return 0;
	for (size_t i = 0; i < len; i++) {
		/* C0 controls and DEL; C1 controls are U+0080..U+009F, 0xC2 0x80..0x9F. */
		if (s[i] < 0x20 || s[i] == 0x7f || (s[i] == 0xc2 && s[i + 1] <= 0x9f))
			return 0;
		if ((s[i] & 0xc0) != 0x80)
			chars++;
	}
	return chars <= 255;
}

int validate_email_address(const char *s, size_t len)
{
	const char *at;

	if (!s || len == 0 || len > MAX_EMAIL)
		return 0;
	at = memchr(s, '@', len);
	if (!at)
		return 0;
	return local_part_valid(s, (size_t)(at - s)) &&
	       domain_valid(at + 1, len - (size_t)(at - s) - 1);
}

int validate_timezone(const char *s)
{
	char path[sizeof ZONEINFO_DIR + MAX_TIMEZONE + 2];
	char magic[4];
	struct stat st;
	size_t len;
	int fd = -1, ok = 0;

	if (!s)
		return 0;
	len = strlen(s);
	if (len == 0 || len > MAX_TIMEZONE || s[0] == '/' || s[len - 1] == '/' || strstr(s, "..") ||
	    strstr(s, "//"))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    c != '_' && c != '+' && c != '-' && c != '/')
			return 0;
	}
	snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, s);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	/* RFC 8536 §3.1: a TZif file starts with the magic "TZif". */
	if (read(fd, magic, sizeof magic) != (ssize_t)sizeof magic || memcmp(magic, "TZif", 4) != 0)
		goto out;
	ok = 1;
out:
	if (fd >= 0)
		close(fd);
	return ok;
}

int validate_http_url(const char *s)
{
	const char *authority;
	size_t len;

	if (!s)
		return 0;
	len = strlen(s);
	if (len == 0 || len > VALIDATE_MAX_URL)
		return 0;
	/* curl tolerates "http:/host" and takes "http:///path" as host "path"; RFC 3986 §3.2
	 * wants "//" and then an authority, which a URL to deliver to cannot leave empty. */
	if (strncasecmp(s, "http://", 7) == 0)
		authority = s + 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		authority = s + 8;
	else
		return 0;
	if (*authority == '/' || *authority == '?' || *authority == '#' || *authority == '\0')
		return 0;
	return url_check(s, "http", "https", 0, NULL) == URL_VALID;
}
