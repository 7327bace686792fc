/* smtp.c: SMTP submission through libcurl; the last reply code decides temporary vs permanent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/cfg.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/smtp.h"

struct smtp {
	CURL *h; /* kept between messages so the connection to the server is reused */
	char *url;
	char *user;
	char *password;
	long timeout_s;
};

struct upload {
	const char *data;
	size_t len, off;
};

struct replies {
	char last[512]; /* the first refusal (4xx/5xx), else the last reply line */
	int refused;    /* last holds a refusal: QUIT's "221 Bye" must not replace it */
	int in_mail;    /* MAIL FROM was sent: refusals before it (EHLO extensions) don't count */
};

struct smtp *smtp_new(struct cfg *cfg, const char **error_r)
{
	struct smtp *s = xcalloc(1, sizeof *s);
	int64_t timeout;
	const char *url = cfg_get(cfg, "mail", "smtp_url", "smtp://localhost:25");

	if (strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0) {
		*error_r = "[mail] smtp_url: must start with smtp:// or smtps://";
		goto fail;
	}
	if (cfg_get_int(cfg, "mail", "timeout_s", 30, 1, 600, &timeout, error_r) < 0 ||
	    cfg_get_secret(cfg, "mail", "smtp_password", &s->password, error_r) < 0)
		goto fail;
	s->url = xstrdup(url);
	s->user = xstrdup(cfg_get(cfg, "mail", "smtp_user", ""));
	s->timeout_s = (long)timeout;
	return s;
fail:
	smtp_free(&s);
	return NULL;
}

void smtp_free(struct smtp **sp)
{
	struct smtp *s = *sp;

	if (!s)
		return;
	if (s->h)
		curl_easy_cleanup(s->h);
	free(s->url);
	free(s->user);
	if (s->password) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
	}
	free(s);
	*sp = NULL;
}

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nmemb;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/* Keeps the server's last reply line: curl's error text lacks the enhanced status. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct replies *r = arg;
	size_t n = size;

	(void)h;
	if (type == CURLINFO_HEADER_OUT && size >= 10 && strncasecmp(data, "MAIL FROM:", 10) == 0)
		r->in_mail = 1;
	if (type != CURLINFO_HEADER_IN || r->refused)
		return 0;
	while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
		n--;
	if (n >= sizeof r->last)
		n = sizeof r->last - 1;
	memcpy(r->last, data, n);
	r->last[n] = '\0';
	r->refused = r->in_mail && n > 0 && (data[0] == '4' || data[0] == '5');
	return 0;
}

enum smtp_result smtp_send(struct smtp *s, const char *from, const char *rcpt, const char *raw,
			   size_t len, char *reply_r, size_t cap)
{
	struct upload up = { raw, len, 0 };
	struct replies replies = { "", 0, 0 };
	struct curl_slist *rcpts = NULL;
	char *mail_from = xasprintf("<%s>", from);
	char *rcpt_to = xasprintf("<%s>", rcpt);
	enum smtp_result result;
	long code = 0;
	CURLcode cc;
	CURL *h;

	if (!s->h)
		s->h = curl_easy_init();
	h = s->h;
	if (!h) {
		snprintf(reply_r, cap, "curl_easy_init failed");
		result = SMTP_TEMPORARY;
		goto out;
	}
	/* Options start afresh for every message; the open connection stays in the handle. */
	curl_easy_reset(h);
	rcpts = curl_slist_append(rcpts, rcpt_to);
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, mail_from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &up);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, s->timeout_s);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &replies);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	if (*s->user) {
		curl_easy_setopt(h, CURLOPT_USERNAME, s->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, s->password ? s->password : "");
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (cc == CURLE_OK) {
		snprintf(reply_r, cap, "%s", replies.last);
		result = SMTP_SENT;
	} else if (code >= 500 && code < 600) {
		snprintf(reply_r, cap, "%s", replies.last[0] ? replies.last : curl_easy_strerror(cc));
		result = SMTP_PERMANENT;
	} else {
		/* 4xx, no answer at all, TLS or network trouble: all worth another try. */
		snprintf(reply_r, cap, "%s%s%s", curl_easy_strerror(cc),
			 replies.last[0] ? ": " : "", replies.last);
		result = SMTP_TEMPORARY;
	}
out:
	curl_slist_free_all(rcpts);
	free(mail_from);
	free(rcpt_to);
	return result;
}
