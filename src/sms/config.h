/* config.h: the [sms] section of offload.conf (man offload.conf(5)): Kannel's sendsms, the
 * sender number, the delivery-report callback, the secret shared with Kannel, the limits. */
#ifndef OFFLOAD_SMS_CONFIG_H
#define OFFLOAD_SMS_CONFIG_H

#include <stdint.h>

struct cfg;

#define SMS_DEFAULT_MAX_SEGMENTS 3
#define SMS_DEFAULT_TIMEOUT_MS 10000

struct sms_config {
	int enabled;            /* sendsms_url is set: the server has an SMS transport */
	char *sendsms_url;      /* smsbox's sendsms, e.g. http://127.0.0.1:13013/cgi-bin/sendsms */
	char *username;         /* sendsms-user username */
	char *password;         /* password, or the contents of password_file; never logged */
	char *sender;           /* the "from" number or short code */
	char *callback_base;    /* where Kannel reaches us, without a trailing '/' */
	char *secret;           /* secret, or the contents of secret_file; NULL: none */
	int64_t max_segments;   /* 1..10 */
	int64_t timeout_ms;     /* the sendsms request, 100..300000 */
};

/* The shortest [sms] secret accepted (doc/operator-guide.md, SMS). */
#define SMS_SECRET_MIN 16

/*
 * Reads [sms] from cfg into *c (free with sms_config_free). Without sendsms_url the
 * channel is off (enabled 0) and only secret/secret_file, max_segments and timeout_ms are
 * read. With it, sender and callback_base are required, callback_base must be an http(s)
 * URL, and the password (password or password_file) must be readable. Returns 0, or -1
 * with *error_r naming the key (static or cfg-owned text).
 */
int sms_config_load(struct cfg *cfg, struct sms_config *c, const char **error_r);
void sms_config_free(struct sms_config *c);

/* 1 when s is non-empty and only letters, digits, '-', '.', '_' and '~' (RFC 3986
 * unreserved): it can go into Kannel's URLs as it is, with no '%' for Kannel to expand. */
int sms_config_url_safe(const char *s);

#endif
