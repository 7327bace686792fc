/* imap.c: IMAP polling by UID through libcurl: UIDVALIDITY, UID SEARCH, UID FETCH, with the
 * progress kept in mailbox_state so nothing is read twice or skipped after a restart. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/imap.h"
#include "mail/tls.h"
#include "mail/ingest.h"
#include "store/mailbox.h"

/* Cap on the untagged lines of EXAMINE (a handful of short lines in practice). */
#define EXAMINE_MAX (64 * 1024)
/* Cap on max_messages: the UIDs of one poll are kept in memory. */
#define POLL_MAX_MESSAGES 10000
/* A fetch may take timeout_s plus the time to move max_bytes at this many bytes/s. */
#define FETCH_MIN_RATE (128 * 1024)

static __thread char imap_error[512];

static const char *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(imap_error, sizeof imap_error, fmt, ap);
	va_end(ap);
	return imap_error;
}

/* The parts of [mail] imap_url we use. */
struct mailbox {
	char *server_url; /* scheme://host[:port]/ */
	char *path;       /* the mailbox as it appears in the URL (percent-encoded) */
	char *name;       /* the mailbox name decoded, for the EXAMINE command */
	char *state_key;  /* mailbox_state.mailbox: user@host:port/path */
	char *lock_name;  /* the name of this mailbox's lease (store_mailbox_lock) */
};

static void mailbox_free(struct mailbox *mb)
{
	free(mb->server_url);
	free(mb->path);
	free(mb->name);
	free(mb->state_key);
	free(mb->lock_name);
	memset(mb, 0, sizeof *mb);
}

/* The mailbox part of a URL path: "/INBOX;UIDVALIDITY=1/;UID=2" → "INBOX". */
static char *path_mailbox(const char *path)
{
	size_t n;

	while (*path == '/')
		path++;
	n = strcspn(path, ";");
	while (n > 0 && path[n - 1] == '/')
		n--;
	return n ? xstrndup(path, n) : xstrdup("INBOX");
}

static int parse_url(const char *url, const char *user, struct mailbox *mb, const char **error_r)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *dpath = NULL;
	char *userinfo = NULL, *key;
	unsigned char digest[32];
	char hex[65];
	int rc = -1;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		*error_r = fail("[mail] imap_url is not a URL");
		goto out;
	}
	if (strcmp(scheme, "imap") != 0 && strcmp(scheme, "imaps") != 0) {
		*error_r = fail("[mail] imap_url must start with imap:// or imaps://");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &userinfo, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &userinfo, 0) == CURLUE_OK) {
		/* Credentials in a URL end up in logs; they have keys of their own. */
		*error_r = fail("[mail] imap_url must not contain a user or password: use imap_user"
				" and imap_password");
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &dpath, CURLU_URLDECODE) != CURLUE_OK) {
		*error_r = fail("[mail] imap_url has no usable path");
		goto out;
	}
	mb->path = path_mailbox(path);
	mb->name = path_mailbox(dpath);
	for (const char *p = mb->name; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*error_r = fail("[mail] imap_url: the mailbox name has control characters");
			goto out;
		}
	}
	mb->server_url = xasprintf("%s://%s%s%s/", scheme, host, port ? ":" : "", port ? port : "");
	key = xasprintf("%s://%s@%s%s%s/%s", scheme, user ? user : "", host, port ? ":" : "",
			port ? port : "", mb->path);
	util_sha256(key, strlen(key), digest);
	util_hex(digest, sizeof digest, hex);
	if (strlen(key) > 255) {
		free(key);
		key = xasprintf("sha256:%s", hex);
	}
	mb->state_key = key;
	/* Lease names are at most 64 characters. */
	mb->lock_name = xasprintf("offload-imap-%.40s", hex);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(dpath);
	curl_free(userinfo);
	if (u)
		curl_url_cleanup(u);
	return rc;
}

/* ---- libcurl plumbing ---- */

struct conn {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	long timeout_s;
};

static size_t write_buf(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;

	/* Returning less than n aborts the transfer (CURLE_WRITE_ERROR). */
	return buf_append(b, data, n) < 0 ? 0 : n;
}

/* The new UIDs of a UID SEARCH answer, parsed as it streams in (it can be long). */
struct search {
	int64_t last;     /* UIDs at or below this were handled before */
	int64_t *uids;    /* the smallest new UIDs, ascending */
	size_t n, cap;
	int more;         /* new UIDs beyond cap exist */
	char head[9];     /* the start of the current line */
	size_t head_len;
	int is_search;    /* the current line is "* SEARCH …" */
	int in_number;
	int64_t number;
};

static void search_add(struct search *s, int64_t uid)
{
	size_t i;

	/* RFC 3501 §6.4.8: "n:*" always matches the highest UID, even when it is below n. */
	if (uid <= s->last)
		return;
	if (s->n == s->cap) {
		s->more = 1;
		if (uid >= s->uids[s->n - 1])
			return;
		s->n--;
	}
	for (i = s->n; i > 0 && s->uids[i - 1] > uid; i--)
		s->uids[i] = s->uids[i - 1];
	if (i > 0 && s->uids[i - 1] == uid) {
		/* Already listed: undo the shift. */
		memmove(s->uids + i, s->uids + i + 1, (s->n - i) * sizeof *s->uids);
		return;
	}
	s->uids[i] = uid;
	s->n++;
}

static void search_end_number(struct search *s)
{
	if (s->in_number && s->number > 0)
		search_add(s, s->number);
	s->in_number = 0;
	s->number = 0;
}

static size_t write_search(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct search *s = userdata;
	size_t n = size * nmemb;

	for (size_t i = 0; i < n; i++) {
		char c = data[i];

		if (c == '\n') {
			search_end_number(s);
			s->head_len = 0;
			s->is_search = 0;
			continue;
		}
		if (s->head_len < sizeof s->head) {
			s->head[s->head_len++] = c;
			if (s->head_len == sizeof s->head)
				s->is_search = strncasecmp(s->head, "* SEARCH ", sizeof s->head) == 0;
			continue;
		}
		if (!s->is_search)
			continue;
		if (c >= '0' && c <= '9') {
			/* UIDs are 32-bit (RFC 3501 §2.3.1.1); anything longer is noise. */
			if (s->number < INT64_C(100000000000))
				s->number = s->number * 10 + (c - '0');
			s->in_number = 1;
		} else {
			search_end_number(s);
		}
	}
	return n;
}

/* Options every request shares. */
static void conn_reset(struct conn *c, const char *url, long timeout_s)
{
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, timeout_s);
	c->errbuf[0] = '\0';
}

static const char *curl_text(const struct conn *c, CURLcode code)
{
	return c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
}

/* The decimal number at s, ended by a non-digit: 0 and *out (> 0), or -1. */
static int parse_number(const char *s, int64_t *out)
{
	int64_t v = 0;
	int digits = 0;

	for (; *s >= '0' && *s <= '9' && digits < 12; s++, digits++)
		v = v * 10 + (*s - '0');
	if (digits == 0 || digits == 12 || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* EXAMINE (read-only SELECT) to learn the mailbox's UIDVALIDITY. 0 or -1. */
static int imap_uidvalidity(struct conn *c, const struct mailbox *mb, int64_t *uidvalidity_r,
			    const char **error_r)
{
	struct buf quoted, out;
	const char *p;
	char *cmd;
	CURLcode code;
	int rc = -1;

	/* RFC 3501 §4.3: a quoted string escapes " and \. */
	buf_init(&quoted, 4096);
	buf_puts(&quoted, "\"");
	for (p = mb->name; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_append(&quoted, "\\", 1);
		buf_append(&quoted, p, 1);
	}
	buf_puts(&quoted, "\"");
	cmd = xasprintf("EXAMINE %s", quoted.data);
	buf_init(&out, EXAMINE_MAX);
	buf_puts(&out, "");
	conn_reset(c, mb->server_url, c->timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, cmd);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_buf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &out);
	code = curl_easy_perform(c->curl);
	if (code != CURLE_OK) {
		*error_r = fail("IMAP EXAMINE %s at %s failed: %s", mb->name, mb->server_url,
				curl_text(c, code));
		goto out;
	}
	p = out.data ? strcasestr(out.data, "[UIDVALIDITY ") : NULL;
	if (!p || parse_number(p + 13, uidvalidity_r) < 0) {
		*error_r = fail("IMAP EXAMINE %s at %s: no UIDVALIDITY in the answer", mb->name,
				mb->server_url);
		goto out;
	}
	rc = 0;
out:
	free(cmd);
	buf_free(&quoted);
	buf_free(&out);
	return rc;
}

/* UID SEARCH for the UIDs above last; curl SELECTs the mailbox and checks UIDVALIDITY. */
static int imap_search(struct conn *c, const struct mailbox *mb, int64_t uidvalidity,
		       struct search *s, const char **error_r)
{
	char *url = xasprintf("%s%s;UIDVALIDITY=%lld", mb->server_url, mb->path,
			      (long long)uidvalidity);
	char *cmd = xasprintf("UID SEARCH UID %lld:*", (long long)s->last + 1);
	CURLcode code;
	int rc = -1;

	conn_reset(c, url, c->timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, cmd);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_search);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, s);
	code = curl_easy_perform(c->curl);
	search_end_number(s);
	if (code != CURLE_OK) {
		*error_r = fail("IMAP UID SEARCH in %s at %s failed: %s", mb->name, mb->server_url,
				curl_text(c, code));
		goto out;
	}
	rc = 0;
out:
	free(url);
	free(cmd);
	return rc;
}

enum fetch_result {
	FETCH_OK,        /* the message is in *raw */
	FETCH_TOO_LARGE, /* larger than max_bytes: not read */
	FETCH_GONE,      /* no message with that UID any more (expunged) */
	FETCH_MOVED,     /* UIDVALIDITY changed under us */
	FETCH_ERROR,     /* the server or the network failed */
};

static enum fetch_result imap_fetch(struct conn *c, const struct mailbox *mb,
				    int64_t uidvalidity, int64_t uid, size_t max_bytes,
				    struct buf *raw, const char **error_r)
{
	char *url = xasprintf("%s%s;UIDVALIDITY=%lld/;UID=%lld", mb->server_url, mb->path,
			      (long long)uidvalidity, (long long)uid);
	enum fetch_result result = FETCH_ERROR;
	long budget = c->timeout_s + (long)(max_bytes / FETCH_MIN_RATE);
	CURLcode code;

	buf_init(raw, max_bytes);
	conn_reset(c, url, budget);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_buf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, raw);
	code = curl_easy_perform(c->curl);
	switch (code) {
	case CURLE_OK:
		result = FETCH_OK;
		break;
	case CURLE_WRITE_ERROR:
		result = FETCH_TOO_LARGE;
		break;
	case CURLE_REMOTE_FILE_NOT_FOUND:
		/* curl says so both for a vanished UID and for a changed UIDVALIDITY. */
		result = strstr(c->errbuf, "UIDVALIDITY") ? FETCH_MOVED : FETCH_GONE;
		break;
	default:
		*error_r = fail("IMAP UID FETCH %lld in %s at %s failed: %s", (long long)uid,
				mb->name, mb->server_url, curl_text(c, code));
		break;
	}
	if (result != FETCH_OK)
		buf_free(raw);
	free(url);
	return result;
}

int imap_poll(struct db *db, struct cfg *cfg, const struct ingest_settings *s, int64_t now_ms,
	      int max_messages, struct imap_stats *stats_r, const char **error_r)
{
	const char *url = cfg_get(cfg, "mail", "imap_url", "");
	const char *user = cfg_get(cfg, "mail", "imap_user", NULL);
	struct mailbox mb = { 0 };
	struct conn c = { 0 };
	struct search srch = { 0 };
	char *password = NULL;
	const char *err;
	size_t max_bytes = s->max_bytes ? s->max_bytes : INGEST_DEFAULT_MAX_BYTES;
	struct store_mailbox_state saved = { 0 };
	int64_t timeout_s, uidvalidity, last_uid = 0;
	const char *dberr;
	char owner[STORE_MAILBOX_OWNER_SIZE];
	int64_t lease_ms;
	int found, locked = 0, rc = -1;

	struct ingest_settings sa = *s; /* [mail] authserv_id unless the caller set it */

	if (!sa.authserv_id)
		sa.authserv_id = cfg_get(cfg, "mail", "authserv_id", "");
	memset(stats_r, 0, sizeof *stats_r);
	if (!*url)
		return 0;
	if (user && !*user)
		user = NULL;
	if (cfg_get_int(cfg, "mail", "timeout_s", 30, 1, 3600, &timeout_s, &err) < 0 ||
	    cfg_get_secret(cfg, "mail", "imap_password", &password, &err) < 0) {
		*error_r = fail("%s", err);
		goto out;
	}
	if (parse_url(url, user, &mb, error_r) < 0)
		goto out;
	if (max_messages < 1)
		max_messages = 1;
	if (max_messages > POLL_MAX_MESSAGES)
		max_messages = POLL_MAX_MESSAGES;

	/* The lease outlives the slowest step of the poll (a fetch that stalls for timeout_s
	 * before it fails) and is renewed after each message. */
	lease_ms = (4 * timeout_s + 60) * 1000;
	store_mailbox_owner(owner);
	locked = store_mailbox_lock(db, mb.lock_name, owner, util_now_ms(),
				    util_now_ms() + lease_ms, &dberr);
	if (locked < 0) {
		*error_r = fail("IMAP poll of %s: database: %s", mb.name, dberr);
		locked = 0;
		goto out;
	}
	if (!locked) {
		log_debug("imap: %s%s is being polled by another worker", mb.server_url, mb.path);
		rc = 0;
		goto out;
	}

	c.curl = curl_easy_init();
	if (!c.curl) {
		*error_r = fail("curl_easy_init failed");
		goto out;
	}
	c.timeout_s = (long)timeout_s;
	curl_easy_setopt(c.curl, CURLOPT_PROTOCOLS_STR, "imap,imaps");
	mail_tls_setopt(c.curl, cfg, user != NULL); /* credentials only over TLS (mail/tls.h) */
	curl_easy_setopt(c.curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c.curl, CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
	/* A stalled server fails within timeout_s even while a long fetch may run on. */
	curl_easy_setopt(c.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c.curl, CURLOPT_LOW_SPEED_TIME, (long)timeout_s);
	curl_easy_setopt(c.curl, CURLOPT_ERRORBUFFER, c.errbuf);
	if (user)
		curl_easy_setopt(c.curl, CURLOPT_USERNAME, user);
	if (password)
		curl_easy_setopt(c.curl, CURLOPT_PASSWORD, password);

	if (imap_uidvalidity(&c, &mb, &uidvalidity, error_r) < 0)
		goto out;
	found = store_mailbox_state_load(db, mb.state_key, &saved, &dberr);
	if (found < 0) {
		*error_r = fail("IMAP poll of %s: database: %s", mb.name, dberr);
		goto out;
	}
	last_uid = saved.last_uid;
	if (!found || saved.uidvalidity != uidvalidity) {
		struct store_mailbox_state fresh = { .uidvalidity = uidvalidity, .last_uid = 0 };

		if (found)
			log_warn("imap: %s%s: UIDVALIDITY changed from %lld to %lld; reading the"
				 " mailbox again (copies already stored are recognised)",
				 mb.server_url, mb.path, (long long)saved.uidvalidity,
				 (long long)uidvalidity);
		last_uid = 0;
		if (store_mailbox_state_save(db, mb.state_key, &fresh, now_ms, &dberr) < 0) {
			*error_r = fail("IMAP poll of %s: database: %s", mb.name, dberr);
			goto out;
		}
	}

	srch.last = last_uid;
	srch.cap = (size_t)max_messages;
	srch.uids = xcalloc(srch.cap, sizeof *srch.uids);
	if (imap_search(&c, &mb, uidvalidity, &srch, error_r) < 0)
		goto out;
	log_debug("imap: %s%s: %zu new message(s) after UID %lld%s", mb.server_url, mb.path,
		  srch.n, (long long)last_uid, srch.more ? " (more later)" : "");

	for (size_t i = 0; i < srch.n; i++) {
		int64_t uid = srch.uids[i];
		struct buf raw;
		char case_id[37];
		enum fetch_result fr = imap_fetch(&c, &mb, uidvalidity, uid, max_bytes, &raw, error_r);

		switch (fr) {
		case FETCH_OK: {
			enum ingest_result ir;

			stats_r->fetched++;
			ir = ingest_store(db, &sa, raw.data ? raw.data : "", raw.len, now_ms, case_id);
			buf_free(&raw);
			switch (ir) {
			case INGEST_STORED:
				stats_r->stored++;
				break;
			case INGEST_UNMATCHED:
				stats_r->unmatched++;
				break;
			case INGEST_DUPLICATE:
				stats_r->duplicates++;
				break;
			case INGEST_MALFORMED:
				stats_r->malformed++;
				break;
			case INGEST_TEMPFAIL:
				*error_r = fail("IMAP UID %lld in %s: could not be stored now; it will"
						" be read again", (long long)uid, mb.name);
				goto out;
			}
			break;
		}
		case FETCH_TOO_LARGE:
			log_warn("imap: %s%s UID %lld is larger than %zu bytes: left on the server,"
				 " not ingested", mb.server_url, mb.path, (long long)uid, max_bytes);
			stats_r->skipped++;
			break;
		case FETCH_GONE:
			log_info("imap: %s%s UID %lld disappeared before it was fetched",
				 mb.server_url, mb.path, (long long)uid);
			stats_r->skipped++;
			break;
		case FETCH_MOVED:
			/* The next poll sees the new UIDVALIDITY and starts over. */
			log_warn("imap: %s%s: UIDVALIDITY changed during the poll", mb.server_url,
				 mb.path);
			rc = 0;
			goto out;
		case FETCH_ERROR:
			goto out;
		}
		{
			struct store_mailbox_state done = { .uidvalidity = uidvalidity,
							    .last_uid = uid };

			if (store_mailbox_state_save(db, mb.state_key, &done, now_ms, &dberr) < 0) {
				*error_r = fail("IMAP poll of %s: recording UID %lld: %s", mb.name,
						(long long)uid, dberr);
				goto out;
			}
		}
		switch (store_mailbox_lock(db, mb.lock_name, owner, util_now_ms(),
					   util_now_ms() + lease_ms, &dberr)) {
		case 1:
			break;
		case 0:
			/* Another worker took the mailbox after our lease ran out: leave it the
			 * rest (what it reads again is recognised by Message-ID). */
			log_warn("imap: %s%s: the poll outlived its lease; another worker polls"
				 " it now", mb.server_url, mb.path);
			locked = 0;
			rc = 0;
			goto out;
		default:
			*error_r = fail("IMAP poll of %s: renewing the lease: %s", mb.name, dberr);
			goto out;
		}
	}
	stats_r->more = srch.more;
	rc = 0;
out:
	if (locked)
		store_mailbox_unlock(db, mb.lock_name, owner);
	if (c.curl)
		curl_easy_cleanup(c.curl);
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	free(srch.uids);
	mailbox_free(&mb);
	return rc;
}
