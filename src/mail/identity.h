/* identity.h: checks and derived addresses of a client's sender identity (the From
 * address, reply domain and SMTP settings offloadctl stores; doc/operator-guide.md,
 * "Sender identities"), shared by offloadctl, the worker and the inbound matching. */
#ifndef OFFLOAD_MAIL_IDENTITY_H
#define OFFLOAD_MAIL_IDENTITY_H

#include <stddef.h>

/* Longest SMTP URL and password file path accepted (the columns' sizes). */
#define MAIL_IDENTITY_MAX_URL 1024
#define MAIL_IDENTITY_MAX_PATH 1024
/* Longest password read from a password file, in bytes. */
#define MAIL_IDENTITY_MAX_PASSWORD 1024

/* 1 when s is a From address we can send with: an ASCII addr-spec of at most 254
 * characters (the API's own address check), else 0. */
int mail_identity_address_valid(const char *s);

/* 1 when s is a domain name (RFC 1035 LDH labels, 1-63 characters each, at most 252
 * characters; no IP literal, no trailing dot), else 0. Compare domains in lower case. */
int mail_identity_domain_valid(const char *s);

/*
 * Checks an SMTP URL: smtp:// or smtps:// (any case) with a host, at most
 * MAIL_IDENTITY_MAX_URL characters, no user name or password inside it (the password
 * belongs in a file), no query or fragment. 0, or -1 with *error_r (static text).
 */
int mail_identity_smtp_url_check(const char *url, const char **error_r);

/*
 * Checks a password file: an absolute path of at most MAIL_IDENTITY_MAX_PATH bytes naming
 * a regular file this process can open for reading, not readable or writable by others
 * (mode o+r or o+w refuses it), holding 1 to MAIL_IDENTITY_MAX_PASSWORD bytes on its first
 * line. A file its group may read is accepted with a warning in warning_r (wcap bytes;
 * "" when none). 0, or -1 with the reason in error_r (ecap bytes, naming the path).
 */
int mail_identity_password_file_check(const char *path, char *warning_r, size_t wcap,
				      char *error_r, size_t ecap);

/*
 * Reads the password from path after the same checks: the first line without its line
 * end. 0 with *password_r (the caller clears it with explicit_bzero and frees it), or -1
 * with error_r as above. The password is never logged.
 */
int mail_identity_password_read(const char *path, char **password_r, char *error_r,
				size_t ecap);

/*
 * address with its domain replaced by domain ("local@old" -> "local@domain"); address
 * itself when domain is NULL or "". Returns a malloc'd string, or NULL when address has
 * no '@'.
 */
char *mail_identity_rehome(const char *address, const char *domain);

/* The domain of address after its last '@' (a pointer into address), or "" when none. */
const char *mail_identity_domain_of(const char *address);

#endif
