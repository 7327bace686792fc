/* kannel.c: one sendsms request to Kannel's smsbox (libcurl). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "sms/config.h"
#include "sms/kannel.h"
#include "sms/keywords.h"

/* Kannel's answer is one short line; more is kept out of memory. */
struct answer {
	struct buf body;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n, room = a->body.max - a->body.len;

	buf_append(&a->body, data, len < room ? len : room);
	return len;
}

/* Appends "&name=escaped(value)" (or "?name=" first) to url. 0, or -1 when too long. */
static int add_param(CURL *curl, struct buf *url, const char *name, const char *value)
{
	char *esc = curl_easy_escape(curl, value ? value : "", 0);
	int rc;

	if (!esc)
		return -1;
	rc = buf_printf(url, "%c%s=%s", strchr(url->data, '?') ? '&' : '?', name, esc);
	curl_free(esc);
	return rc;
}

/* reason = prefix + Kannel's text (one line, valid UTF-8, bounded). */
static void set_reason(char *reason, size_t cap, const char *prefix, const struct buf *body)
{
	char *clean = NULL;
	const char *t = "";
	size_t tlen = 0;
	int repaired;

	if (body->data) {
		clean = sms_utf8_repair(body->data, body->len, &repaired);
		for (char *p = clean; *p; p++)
			if (*p == '\r' || *p == '\n' || *p == '\t')
				*p = ' ';
		util_trim(clean, strlen(clean), &t, &tlen);
	}
	snprintf(reason, cap, "%s%s%.*s", prefix, tlen ? ": " : "", (int)tlen, t);
	free(clean);
}

enum sms_send_result sms_kannel_send(const struct sms_config *c, const char *to,
				     const char *text, enum sms_coding coding,
				     const char *message_id, char *reason, size_t cap)
{
	struct answer a;
	struct buf url, dlr;
	CURL *curl = curl_easy_init();
	CURLcode cc;
	long status = 0;
	char code[4], prefix[96];
	enum sms_send_result r = SMS_SEND_TEMPORARY;

	buf_init(&a.body, SMS_KANNEL_REASON_MAX);
	buf_init(&url, 64 * 1024);
	buf_init(&dlr, 4096);
	if (!curl) {
		snprintf(reason, cap, "libcurl could not start a request");
		goto out;
	}
	/* The secret and our message id are URL-safe (sms_config_load checks the secret), so
	 * the dlr-url holds no '%' of its own for Kannel to take as one of its escapes. */
	buf_printf(&dlr, "%s/kannel/dlr?secret=%s&msg=%s&type=%%d&reply=%%A", c->callback_base,
		   c->secret ? c->secret : "", message_id);
	snprintf(code, sizeof code, "%d", (int)coding);
	if (buf_puts(&url, c->sendsms_url) < 0 || add_param(curl, &url, "username", c->username) < 0 ||
	    add_param(curl, &url, "password", c->password) < 0 ||
	    add_param(curl, &url, "from", c->sender) < 0 || add_param(curl, &url, "to", to) < 0 ||
	    add_param(curl, &url, "text", text) < 0 ||
	    add_param(curl, &url, "charset", "UTF-8") < 0 ||
	    add_param(curl, &url, "coding", code) < 0 ||
	    add_param(curl, &url, "dlr-mask", "19") < 0 ||
	    add_param(curl, &url, "dlr-url", dlr.data) < 0) {
		snprintf(reason, cap, "the sendsms request would be too long");
		r = SMS_SEND_PERMANENT;
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url.data);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		/* curl's text names the host and the failure, never the URL's query. */
		snprintf(reason, cap, "Kannel sendsms: %s", curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	snprintf(prefix, sizeof prefix, "Kannel sendsms answered %ld", status);
	set_reason(reason, cap, prefix, &a.body);
	if (status >= 200 && status < 300)
		r = SMS_SEND_SENT;
	else if (status >= 400 && status < 500)
		r = SMS_SEND_PERMANENT;
	else
		r = SMS_SEND_TEMPORARY;
out:
	if (curl)
		curl_easy_cleanup(curl);
	/* The URL holds the password and the secret. */
	if (url.data)
		memset(url.data, 0, url.len);
	if (dlr.data)
		memset(dlr.data, 0, dlr.len);
	buf_free(&url);
	buf_free(&dlr);
	buf_free(&a.body);
	return r;
}
