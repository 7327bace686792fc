/* smtp.c: SMTP submission through libcurl; the last reply code decides temporary vs permanent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/identity.h"
#include "mail/smtp.h"
#include "mail/tls.h"
#include "mail/verp.h"
#include "store/db.h"
#include "store/mailkeys.h"

struct smtp {
	CURL *h; /* kept between messages so the connection to the server is reused */
	char *url;
	char *user;
	char *password;
	long timeout_s;
	struct cfg *cfg;       /* for the TLS options; outlives the handle */
	char *bounce_address;  /* local@domain: the envelope sender is local+TAG@domain */
	struct db *db;         /* connects once, to read the bounce-tag key */
	unsigned char key[STORE_MAILKEY_LEN];
	int have_key;
	long connections;      /* opened so far (CURLINFO_NUM_CONNECTS summed) */
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
	const char *from = cfg_get(cfg, "mail", "from_address", "offload@localhost");
	const char *from_at = strrchr(from, '@');
	const char *domain = cfg_get(cfg, "mail", "domain", from_at ? from_at + 1 : "localhost");
	const char *bounce = cfg_get(cfg, "mail", "bounce_address", "");
	const char *at;

	if (strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0) {
		*error_r = "[mail] smtp_url: must start with smtp:// or smtps://";
		goto fail;
	}
	if (cfg_get_int(cfg, "mail", "timeout_s", 30, 1, 600, &timeout, error_r) < 0 ||
	    cfg_get_secret(cfg, "mail", "smtp_password", &s->password, error_r) < 0)
		goto fail;
	s->bounce_address = *bounce ? xstrdup(bounce) : xasprintf("bounces@%s", domain);
	at = strrchr(s->bounce_address, '@');
	if (!at || at == s->bounce_address || !at[1] || strpbrk(s->bounce_address, "\r\n <>+\"") ||
	    at - s->bounce_address > VERP_MAX_LOCAL) {
		*error_r = "[mail] bounce_address: must be a plain address local@domain, without '+',"
			   " whose local part has at most 14 characters";
		goto fail;
	}
	s->db = db_new(cfg, error_r);
	if (!s->db)
		goto fail;
	s->url = xstrdup(url);
	s->user = xstrdup(cfg_get(cfg, "mail", "smtp_user", ""));
	s->timeout_s = (long)timeout;
	s->cfg = cfg;
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
	db_close(&s->db);
	explicit_bzero(s->key, sizeof s->key);
	free(s->url);
	free(s->user);
	free(s->bounce_address);
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

/* The value of header name in the header block of raw (unfolded, trimmed, without <>), or
 * NULL. Only for messages compose.c wrote: one field per name. */
static char *header_value(const char *raw, size_t len, const char *name)
{
	size_t nl = strlen(name), i = 0;

	while (i < len) {
		const char *line = raw + i, *eol = memchr(line, '\n', len - i);
		size_t ll = eol ? (size_t)(eol - line) : len - i;
		struct buf v;

		if (ll == 0 || (ll == 1 && line[0] == '\r'))
			return NULL; /* end of the header */
		i += ll + (eol ? 1 : 0);
		if (ll <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
			continue;
		buf_init(&v, 2048);
		buf_append(&v, line + nl + 1, ll - nl - 1);
		/* folded continuation lines */
		while (i < len && (raw[i] == ' ' || raw[i] == '\t')) {
			const char *c = raw + i, *ce = memchr(c, '\n', len - i);
			size_t cl = ce ? (size_t)(ce - c) : len - i;

			buf_append(&v, c, cl);
			i += cl + (ce ? 1 : 0);
		}
		{
			const char *p = v.data ? v.data : "", *e;
			char *out;

			while (*p == ' ' || *p == '\t' || *p == '<')
				p++;
			e = p + strlen(p);
			while (e > p && strchr(" \t\r>", e[-1]))
				e--;
			out = xstrndup(p, (size_t)(e - p));
			buf_free(&v);
			return out;
		}
	}
	return NULL;
}

/*
 * The envelope sender of raw: bounce_address with the tag of the message (its Message-ID
 * and X-Offload-Case, as compose.c writes them); fallback when raw has neither. NULL with
 * reply_r set when the key cannot be read (a temporary failure).
 */
static char *envelope_sender(struct smtp *s, const char *bounce_address, const char *raw,
			     size_t len, const char *fallback, char *reply_r, size_t cap)
{
	char *msgid = header_value(raw, len, "Message-ID");
	char *case_id = header_value(raw, len, "X-Offload-Case");
	char tag[VERP_TAG_LEN + 1], *out = NULL;

	if (!msgid || !case_id || !util_uuid_valid(case_id)) {
		out = xstrdup(fallback);
		goto out;
	}
	if (!s->have_key) {
		const char *dberr = "";
		int r = store_mailkey_get(s->db, s->key, &dberr);

		if (r <= 0) {
			snprintf(reply_r, cap, "%s", r < 0 ? "the bounce-tag key could not be read "
				 "from the database" : "settings.bounce_tag_key is missing: run "
				 "offloadctl migrate");
			log_warn("smtp: %s%s%s", reply_r, r < 0 ? ": " : "", r < 0 ? dberr : "");
			goto out;
		}
		s->have_key = 1;
		/* The key never changes: the connection is not needed any more. */
		db_close(&s->db);
	}
	if (verp_tag_make(s->key, case_id, msgid, tag) == 0)
		out = verp_address(bounce_address, tag);
	else
		out = xstrdup(fallback);
out:
	free(msgid);
	free(case_id);
	return out;
}

long smtp_connections(const struct smtp *s)
{
	return s->connections;
}

enum smtp_result smtp_send(struct smtp *s, const struct smtp_route *route, const char *from,
			   const char *rcpt, const char *raw, size_t len, char *reply_r, size_t cap)
{
	struct upload up = { raw, len, 0 };
	struct replies replies = { "", 0, 0 };
	struct curl_slist *rcpts = NULL;
	const char *url = route && route->url ? route->url : s->url;
	const char *user = route && route->url ? (route->user ? route->user : "") : s->user;
	const char *password = route && route->url ? route->password : s->password;
	char *bounce = route && route->bounce_domain
			       ? mail_identity_rehome(s->bounce_address, route->bounce_domain)
			       : xstrdup(s->bounce_address);
	char *sender = envelope_sender(s, bounce, raw, len, from, reply_r, cap);
	char *mail_from = NULL;
	long connects = 0;
	char *rcpt_to = xasprintf("<%s>", rcpt);
	enum smtp_result result = SMTP_TEMPORARY;
	const char *tls_error;
	long code = 0;
	CURLcode cc;
	CURL *h;

	if (!sender)
		goto out;
	mail_from = xasprintf("<%s>", sender);
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
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* A connection per distinct server and login stays open in the handle (curl matches
	 * them by scheme, host, port and credentials). */
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)SMTP_MAX_CONNECTIONS);
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
	mail_tls_setopt(h, s->cfg, *user != '\0');
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &replies);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	if (*user) {
		curl_easy_setopt(h, CURLOPT_USERNAME, user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, password ? password : "");
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		s->connections += connects;
	if (cc == CURLE_OK) {
		snprintf(reply_r, cap, "%s", replies.last);
		result = SMTP_SENT;
	} else if (code >= 500 && code < 600) {
		snprintf(reply_r, cap, "%s", replies.last[0] ? replies.last : curl_easy_strerror(cc));
		result = SMTP_PERMANENT;
	} else if ((tls_error = mail_tls_error(cc, *user != '\0')) != NULL) {
		/* The one line the worker logs when it gives the event back. */
		snprintf(reply_r, cap, "%s: %s", url, tls_error);
		result = SMTP_TEMPORARY;
	} else {
		/* 4xx, no answer at all, TLS or network trouble: all worth another try. */
		snprintf(reply_r, cap, "%s%s%s", curl_easy_strerror(cc),
			 replies.last[0] ? ": " : "", replies.last);
		result = SMTP_TEMPORARY;
	}
out:
	curl_slist_free_all(rcpts);
	free(bounce);
	free(sender);
	free(mail_from);
	free(rcpt_to);
	return result;
}
