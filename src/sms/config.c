/* config.c: the [sms] section of offload.conf (man offload.conf(5)). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/xalloc.h"
#include "sms/config.h"

/* The value of [sms] key, or NULL when unset or empty; malloc'd. */
static char *get(struct cfg *cfg, const char *key)
{
	const char *v = cfg_get(cfg, "sms", key, "");

	return *v ? xstrdup(v) : NULL;
}

int sms_config_url_safe(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-._~", *s))
			return 0;
	return 1;
}

static int is_http_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

int sms_config_load(struct cfg *cfg, struct sms_config *c, const char **error_r)
{
	memset(c, 0, sizeof *c);
	if (cfg_get_int(cfg, "sms", "max_segments", SMS_DEFAULT_MAX_SEGMENTS, 1, 10,
			&c->max_segments, error_r) < 0 ||
	    cfg_get_int(cfg, "sms", "timeout_ms", SMS_DEFAULT_TIMEOUT_MS, 100, 300000,
			&c->timeout_ms, error_r) < 0 ||
	    cfg_get_secret(cfg, "sms", "secret", &c->secret, error_r) < 0)
		goto fail;
	if (c->secret && !*c->secret) {
		free(c->secret);
		c->secret = NULL;
	}
	if (c->secret && !sms_config_url_safe(c->secret)) {
		*error_r = "[sms] secret_file: the secret must be letters, digits and '-._~' only "
			   "(it travels in Kannel's URLs)";
		goto fail;
	}
	/* The callbacks are not rate-limited: a placeholder ("SECRET") or a short word must not
	 * do (doc/operator-guide.md makes one with "openssl rand -hex 24"). */
	if (c->secret && strlen(c->secret) < SMS_SECRET_MIN) {
		*error_r = "[sms] secret_file: the secret must be at least 16 characters "
			   "(make one with: openssl rand -hex 24)";
		goto fail;
	}
	c->sendsms_url = get(cfg, "sendsms_url");
	if (!c->sendsms_url)
		return 0;
	c->enabled = 1;
	c->username = get(cfg, "username");
	c->sender = get(cfg, "sender");
	c->callback_base = get(cfg, "callback_base");
	if (!is_http_url(c->sendsms_url)) {
		*error_r = "[sms] sendsms_url: must be an http:// or https:// URL";
		goto fail;
	}
	if (!c->sender) {
		*error_r = "[sms] sender: is required when sendsms_url is set";
		goto fail;
	}
	if (!c->callback_base || !is_http_url(c->callback_base)) {
		*error_r = "[sms] callback_base: must be an http:// or https:// URL when "
			   "sendsms_url is set (Kannel's delivery reports come back there)";
		goto fail;
	}
	while (*c->callback_base && c->callback_base[strlen(c->callback_base) - 1] == '/')
		c->callback_base[strlen(c->callback_base) - 1] = '\0';
	if (cfg_get_secret(cfg, "sms", "password", &c->password, error_r) < 0)
		goto fail;
	if (!c->secret) {
		*error_r = "[sms] secret_file: is required when sendsms_url is set (Kannel's "
			   "callbacks are refused without it)";
		goto fail;
	}
	return 0;
fail:
	sms_config_free(c);
	return -1;
}

void sms_config_free(struct sms_config *c)
{
	free(c->sendsms_url);
	free(c->username);
	if (c->password)
		memset(c->password, 0, strlen(c->password));
	free(c->password);
	free(c->sender);
	free(c->callback_base);
	if (c->secret)
		memset(c->secret, 0, strlen(c->secret));
	free(c->secret);
	memset(c, 0, sizeof *c);
}
