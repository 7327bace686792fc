/* identity.c: sender identity checks (addresses, domains, SMTP URLs, password files). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/validate.h"
#include "common/url.h"
#include "common/xalloc.h"
#include "mail/identity.h"

int mail_identity_address_valid(const char *s)
{
	return s && validate_email_address(s, strlen(s));
}

int mail_identity_domain_valid(const char *s)
{
	char addr[300];
	size_t len;

	if (!s)
		return 0;
	len = strlen(s);
	/* The domain of an addr-spec of at most 254 characters: "x@" leaves 252. */
	if (len == 0 || len > 252)
		return 0;
	snprintf(addr, sizeof addr, "x@%s", s);
	return validate_email_address(addr, len + 2);
}

int mail_identity_smtp_url_check(const char *url, const char **error_r)
{
	CURLU *u = NULL;
	char *user = NULL, *password = NULL, *query = NULL, *fragment = NULL, *path = NULL;
	size_t path_len = 0;
	int rc = -1;

	if (!url || !*url || strlen(url) > MAIL_IDENTITY_MAX_URL) {
		*error_r = "must be an smtp:// or smtps:// URL of at most 1024 characters";
		return -1;
	}
	switch (url_check(url, "smtp", "smtps", CURLU_NON_SUPPORT_SCHEME, &u)) {
	case URL_VALID:
		break;
	case URL_BAD_CHARS:
		*error_r = "must not contain spaces, control or non-ASCII characters";
		return -1;
	case URL_NOT_URL:
		*error_r = "is not a URL (expected smtp://HOST[:PORT] or smtps://HOST[:PORT])";
		return -1;
	case URL_BAD_SCHEME:
		*error_r = "must start with smtp:// or smtps://";
		return -1;
	case URL_NO_HOST:
		*error_r = "has no host";
		return -1;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
		*error_r = "must not hold a user name or password (use --smtp-user and "
			   "--smtp-password-file)";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK) {
		*error_r = "must not have a query or fragment";
		goto out;
	}
	/* libcurl sends the decoded path as the EHLO name: no control or non-ASCII bytes in it,
	 * percent-encoded or not (libcurl would refuse them only when sending). */
	if (curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK) {
		*error_r = "must not hold control or non-ASCII characters, even percent-encoded";
		goto out;
	}
	path_len = strlen(path);
	for (size_t i = 0; i < path_len; i++)
		if ((unsigned char)path[i] <= ' ' || (unsigned char)path[i] >= 0x7f) {
			*error_r = "must not hold control or non-ASCII characters, even "
				   "percent-encoded";
			goto out;
		}
	rc = 0;
out:
	curl_free(user);
	if (password) {
		explicit_bzero(password, strlen(password));
		curl_free(password);
	}
	curl_free(query);
	curl_free(fragment);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

/* Opens path after the checks of mail_identity_password_file_check: the fd, or -1. */
static int open_checked(const char *path, char *warning_r, size_t wcap, char *error_r,
			size_t ecap)
{
	struct stat st;
	int fd;

	if (warning_r && wcap)
		warning_r[0] = '\0';
	if (!path || path[0] != '/' || strlen(path) > MAIL_IDENTITY_MAX_PATH) {
		snprintf(error_r, ecap, "%s: must be an absolute path of at most %d bytes",
			 path ? path : "(none)", MAIL_IDENTITY_MAX_PATH);
		return -1;
	}
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f) {
			snprintf(error_r, ecap, "the path must not contain control characters");
			return -1;
		}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(error_r, ecap, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(error_r, ecap, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		snprintf(error_r, ecap, "%s: readable or writable by every user (mode %04o): "
			 "make it readable only by the service user (chmod 0600 or 0640)", path,
			 (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if ((st.st_mode & S_IRGRP) && warning_r && wcap)
		snprintf(warning_r, wcap, "%s: its group (gid %u) may read it too (mode %04o); "
			 "mode 0600 owned by the service user keeps it to that user", path,
			 (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
	return fd;
fail:
	close(fd);
	return -1;
}

/* The first line of fd (at most MAIL_IDENTITY_MAX_PASSWORD bytes): 0 with *out, or -1. */
static int read_first_line(int fd, const char *path, char **out, char *error_r, size_t ecap)
{
	char buf[MAIL_IDENTITY_MAX_PASSWORD + 2];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(error_r, ecap, "%s: %s", path, strerror(errno));
			explicit_bzero(buf, sizeof buf);
			return -1;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 0 || len > MAIL_IDENTITY_MAX_PASSWORD) {
		snprintf(error_r, ecap, "%s: %s", path, len == 0 ? "holds no password (the first "
			 "line is empty)" : "the password is longer than 1024 bytes");
		explicit_bzero(buf, sizeof buf);
		return -1;
	}
	*out = xstrndup(buf, len);
	explicit_bzero(buf, sizeof buf);
	return 0;
}

int mail_identity_password_file_check(const char *path, char *warning_r, size_t wcap,
				      char *error_r, size_t ecap)
{
	char *pw = NULL;
	int fd = open_checked(path, warning_r, wcap, error_r, ecap), rc;

	if (fd < 0)
		return -1;
	rc = read_first_line(fd, path, &pw, error_r, ecap);
	close(fd);
	if (pw) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	return rc;
}

int mail_identity_password_read(const char *path, char **password_r, char *error_r,
				size_t ecap)
{
	int fd = open_checked(path, NULL, 0, error_r, ecap), rc;

	*password_r = NULL;
	if (fd < 0)
		return -1;
	rc = read_first_line(fd, path, password_r, error_r, ecap);
	close(fd);
	return rc;
}

char *mail_identity_rehome(const char *address, const char *domain)
{
	const char *at = strrchr(address, '@');

	if (!at)
		return NULL;
	if (!domain || !*domain)
		return xstrdup(address);
	return xasprintf("%.*s@%s", (int)(at - address), address, domain);
}

const char *mail_identity_domain_of(const char *address)
{
	const char *at = address ? strrchr(address, '@') : NULL;

	return at ? at + 1 : "";
}
