/* deliver.c: the webhook outbox's delivery side: leased claims, signed POSTs through the SSRF
 * guard, outcomes, retries (doc/api.md, "Webhooks"). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"
#include "store/deliveries.h"
#include "store/idempotency.h"
#include "store/purge.h"
#include "webhook/deliver.h"
#include "webhook/ssrf.h"

#define WEBHOOK_MAX_BATCH 100
/* Standard Webhooks: secrets are 24 to 64 bytes; older ones may be shorter. */
#define WEBHOOK_MAX_KEY 64
/* A Retry-After longer than this is not honoured beyond it. */
#define WEBHOOK_MAX_RETRY_AFTER_S 86400

struct settings {
	struct webhook_schedule schedule;
	int64_t connect_timeout_s;
	int64_t timeout_s;
	int64_t batch;
	enum ssrf_policy policy;
	const char *user_agent; /* lives as long as the cfg */
};

/* What one POST came to. */
struct attempt {
	long status;            /* HTTP status; 0 when no response arrived */
	int refused;            /* bad URL or SSRF refusal: dead at once, nothing was sent */
	int64_t retry_after_s;  /* from a Retry-After header in seconds; 0 when none */
	char error[600];        /* why it failed; empty on success */
	struct buf body;        /* the first WEBHOOK_KEEP_BODY bytes of the response */
};

/* International names as curl will look them up (CURLU_PUNYCODE: libcurl 7.88), so that the
 * pinned CURLOPT_RESOLVE entry is the one curl uses. */
#ifdef CURLU_PUNYCODE
#define HOST_FLAGS CURLU_PUNYCODE
#else
#define HOST_FLAGS 0
#endif

/* The socket callback's view: the policy, and why it refused (NULL until it does). */
struct guard {
	enum ssrf_policy policy;
	const char *refused;
};

int webhook_schedule_parse(const char *text, struct webhook_schedule *s, const char **error_r)
{
	const char *p = text;

	s->n = 0;
	for (;;) {
		int64_t v = 0;
		int digits = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		while (*p >= '0' && *p <= '9') {
			if (v > WEBHOOK_MAX_WAIT_S) {
				*error_r = "each wait must be 1 to 604800 seconds";
				return -1;
			}
			v = v * 10 + (*p - '0');
			digits++;
			p++;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (digits == 0 || (*p != ',' && *p != '\0')) {
			*error_r = "must be whole seconds separated by commas, e.g. 5,300,1800";
			return -1;
		}
		if (v < 1 || v > WEBHOOK_MAX_WAIT_S) {
			*error_r = "each wait must be 1 to 604800 seconds";
			return -1;
		}
		if (s->n == WEBHOOK_MAX_RETRIES) {
			*error_r = "at most 64 retries";
			return -1;
		}
		s->waits_s[s->n++] = v;
		if (*p == '\0')
			return 0;
		p++;
	}
}

int64_t webhook_retry_wait_ms(const struct webhook_schedule *s, int64_t attempts, uint32_t random)
{
	int64_t base, spread;

	if (attempts < 1 || (uint64_t)attempts > s->n)
		return -1;
	base = s->waits_s[attempts - 1] * 1000;
	/* ±10 % so that deliveries that failed together do not all come back together. */
	spread = base / 10;
	return base + ((int64_t)random - INT64_C(0x80000000)) * spread / INT64_C(0x80000000);
}

/* Decodes "whsec_<base64>" (the prefix optional) into key. Returns the length or -1. */
static long secret_key(const char *secret, unsigned char key[WEBHOOK_MAX_KEY])
{
	long n;

	if (strncmp(secret, "whsec_", 6) == 0)
		secret += 6;
	n = util_base64_decode(secret, key, WEBHOOK_MAX_KEY);
	return n >= 1 ? n : -1;
}

static int sign_one(const char *secret, const char *msg_id, const char *ts, const void *body,
		    size_t body_len, struct buf *out)
{
	unsigned char key[WEBHOOK_MAX_KEY], mac[32];
	char b64[48];
	long key_len = secret_key(secret, key);
	struct buf content;
	int rc = -1;

	if (key_len < 0)
		return -1;
	/* The signed content is "id.timestamp.body" over the exact body bytes sent. */
	buf_init(&content, strlen(msg_id) + strlen(ts) + body_len + 3);
	if (buf_printf(&content, "%s.%s.", msg_id, ts) < 0 ||
	    (body_len && buf_append(&content, body, body_len) < 0))
		goto out;
	util_hmac_sha256(key, (size_t)key_len, content.data, content.len, mac);
	util_base64(mac, sizeof mac, b64);
	if (buf_printf(out, "%sv1,%s", out->len ? " " : "", b64) < 0)
		goto out;
	rc = 0;
out:
	explicit_bzero(key, sizeof key);
	buf_free(&content);
	return rc;
}

int webhook_sign(const char *secret, const char *previous, const char *msg_id,
		 int64_t timestamp_s, const void *body, size_t body_len, char *out, size_t cap)
{
	struct buf sig;
	char ts[24];
	int rc = -1;

	snprintf(ts, sizeof ts, "%lld", (long long)timestamp_s);
	buf_init(&sig, cap ? cap - 1 : 0);
	if (!secret || sign_one(secret, msg_id, ts, body, body_len, &sig) < 0)
		goto out;
	if (previous && *previous && sign_one(previous, msg_id, ts, body, body_len, &sig) < 0)
		goto out;
	if (sig.len + 1 > cap)
		goto out;
	memcpy(out, sig.data, sig.len + 1);
	rc = 0;
out:
	buf_free(&sig);
	return rc;
}

static int load_settings(struct cfg *cfg, struct settings *s)
{
	const char *err = NULL;
	const char *text = cfg_get(cfg, "webhook", "retry_schedule_s", WEBHOOK_DEFAULT_SCHEDULE);
	int allow_private = 0, loopback_only = 0;

	if (webhook_schedule_parse(text, &s->schedule, &err) < 0) {
		log_error("%s: [webhook] retry_schedule_s: %s", cfg_path(cfg), err);
		return -1;
	}
	if (cfg_get_int(cfg, "webhook", "connect_timeout_s", 5, 1, 300, &s->connect_timeout_s,
			&err) < 0 ||
	    cfg_get_int(cfg, "webhook", "timeout_s", 15, 1, 600, &s->timeout_s, &err) < 0 ||
	    cfg_get_int(cfg, "webhook", "batch", 10, 1, WEBHOOK_MAX_BATCH, &s->batch, &err) < 0 ||
	    cfg_get_bool(cfg, "webhook", "allow_private", 0, &allow_private, &err) < 0 ||
	    cfg_get_bool(cfg, "webhook", "loopback_only", 0, &loopback_only, &err) < 0) {
		log_error("%s: %s", cfg_path(cfg), err);
		return -1;
	}
	/* loopback_only is the stricter of the two: it wins. */
	s->policy = loopback_only ? SSRF_LOOPBACK_ONLY :
		    allow_private ? SSRF_ALLOW_PRIVATE : SSRF_PUBLIC_ONLY;
	s->user_agent = cfg_get(cfg, "webhook", "user_agent", "Offload-Webhooks/" PACKAGE_VERSION);
	if (strpbrk(s->user_agent, "\r\n")) {
		log_error("%s: [webhook] user_agent: must be one line", cfg_path(cfg));
		return -1;
	}
	return 0;
}

/* Length of the well-formed UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

/* A receiver's bytes made storable in a utf8mb4 TEXT column: invalid UTF-8 and NUL become '?'.
 * Returns a newly allocated string. */
static char *storable_text(const char *in, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		size_t n = in[i] ? utf8_seq((const unsigned char *)in + i, len - i) : 0;

		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, in + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct attempt *a = userp;
	size_t len = size * nmemb;
	size_t room = WEBHOOK_KEEP_BODY - a->body.len;

	/* Keep the start, swallow the rest: refusing it would turn a 2xx into an error. */
	if (room > 0)
		buf_append(&a->body, data, len < room ? len : room);
	return len;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct attempt *a = userp;
	size_t len = size * nmemb;
	static const char name[] = "retry-after:";
	char value[24];
	size_t i = sizeof name - 1, n = 0;

	if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
		while (i < len && (data[i] == ' ' || data[i] == '\t'))
			i++;
		while (i < len && n < sizeof value - 1 && isdigit((unsigned char)data[i]))
			value[n++] = data[i++];
		value[n] = '\0';
		/* Only delta-seconds; an HTTP-date is ignored (the schedule applies). */
		if (n > 0 && n < 10)
			a->retry_after_s = strtoll(value, NULL, 10);
	}
	return len;
}

/* The final check: curl asks for a socket to each address it is about to connect to. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct guard *g = clientp;
	const char *why;

	if (purpose != CURLSOCKTYPE_IPCXN) {
		g->refused = "unexpected socket type";
		return CURL_SOCKET_BAD;
	}
	why = ssrf_policy_refusal(&addr->addr, g->policy);
	if (why) {
		g->refused = why;
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype, addr->protocol);
}

static int is_ip_literal(const char *host)
{
	unsigned char tmp[16];

	return host[0] == '[' || inet_pton(AF_INET, host, tmp) == 1;
}

/*
 * Checks url (scheme, host, SSRF guard) and fills the CURLOPT_RESOLVE entry that pins the
 * checked addresses. 0 ready, 1 refused (a->error says why), -1 failed for now.
 */
static int prepare_url(const struct settings *s, const char *url, struct curl_slist **resolve_r,
		       struct attempt *a)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *addrs = NULL;
	char *entry = NULL;
	int r, rc = -1;

	if (!u)
		goto out;
	if (strpbrk(url, "\r\n") || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, HOST_FLAGS) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		snprintf(a->error, sizeof a->error, "refused: the URL is not a valid absolute URL");
		a->refused = 1;
		rc = 1;
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		snprintf(a->error, sizeof a->error, "refused: only http and https URLs are allowed");
		a->refused = 1;
		rc = 1;
		goto out;
	}
	r = ssrf_resolve(host, s->policy, &addrs, a->error, sizeof a->error);
	if (r <= 0) {
		a->refused = r == 0;
		rc = r == 0 ? 1 : -1;
		goto out;
	}
	/* Connect to the addresses just checked, never to a second answer of the resolver (DNS
	 * rebinding). A literal is not looked up by curl at all. */
	if (!is_ip_literal(host)) {
		entry = xasprintf("%s:%s:%s", host, port, addrs);
		*resolve_r = curl_slist_append(NULL, entry);
		if (!*resolve_r)
			goto out;
	}
	rc = 0;
out:
	if (rc < 0 && !a->error[0])
		snprintf(a->error, sizeof a->error, "out of memory preparing the request");
	free(entry);
	free(addrs);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/*
 * POSTs body to url once, signed for msg_id with the secret(s). Fills a. Never touches the
 * database.
 */
static void post_once(const struct settings *s, const char *url, const char *msg_id,
		      const char *secret, const char *previous, const char *body,
		      size_t body_len, struct attempt *a)
{
	struct curl_slist *headers = NULL, *resolve = NULL;
	struct guard guard = { s->policy, NULL };
	char sig[256], line[400], errbuf[CURL_ERROR_SIZE] = "";
	int64_t ts = util_now_ms() / 1000;
	CURL *h = NULL;
	CURLcode code;
	int r;

	r = prepare_url(s, url, &resolve, a);
	if (r != 0)
		goto out;
	/* Standard Webhooks: the id must not contain '.', nor anything that breaks a header. */
	if (strpbrk(msg_id, ".\r\n") || strlen(msg_id) > 200) {
		snprintf(a->error, sizeof a->error, "refused: the event id cannot be sent as webhook-id");
		a->refused = 1;
		goto out;
	}
	if (!secret || webhook_sign(secret, previous, msg_id, ts, body, body_len, sig, sizeof sig) < 0) {
		snprintf(a->error, sizeof a->error,
			 "the client's webhook secret is missing or malformed (rotate it with "
			 "offloadctl client rotate-secret)");
		goto out;
	}
	h = curl_easy_init();
	if (!h) {
		snprintf(a->error, sizeof a->error, "curl_easy_init failed");
		goto out;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	snprintf(line, sizeof line, "webhook-id: %s", msg_id);
	headers = curl_slist_append(headers, line);
	snprintf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts);
	headers = curl_slist_append(headers, line);
	snprintf(line, sizeof line, "webhook-signature: %s", sig);
	headers = curl_slist_append(headers, line);
	/* No "Expect: 100-continue" round trip: receivers answer the POST directly. */
	headers = curl_slist_append(headers, "Expect:");
	if (!headers) {
		snprintf(a->error, sizeof a->error, "out of memory preparing the request");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	/* The checked addresses only: no proxy from the environment, the pinned resolution,
	 * and a last check on every socket. */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (resolve)
		curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &guard);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)s->connect_timeout_s);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)s->timeout_s);
	curl_easy_setopt(h, CURLOPT_USERAGENT, s->user_agent);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	code = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	if (guard.refused) {
		snprintf(a->error, sizeof a->error, "refused at connect: %s", guard.refused);
		a->refused = 1;
		a->status = 0;
	} else if (code == CURLE_OPERATION_TIMEDOUT) {
		snprintf(a->error, sizeof a->error, "timed out (connect %llds, whole request %llds): %s",
			 (long long)s->connect_timeout_s, (long long)s->timeout_s,
			 errbuf[0] ? errbuf : curl_easy_strerror(code));
	} else if (code != CURLE_OK) {
		snprintf(a->error, sizeof a->error, "%s%s%s", curl_easy_strerror(code),
			 errbuf[0] ? ": " : "", errbuf);
	} else if (a->status >= 300 && a->status < 400) {
		snprintf(a->error, sizeof a->error, "HTTP %ld: redirects are not followed", a->status);
	} else if (a->status < 200 || a->status >= 300) {
		snprintf(a->error, sizeof a->error, "HTTP %ld", a->status);
	}
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	curl_slist_free_all(resolve);
}

enum outcome {
	OUTCOME_DELIVERED, /* a 2xx */
	OUTCOME_RETRY,     /* failed; next_attempt_at set from the schedule */
	OUTCOME_DEAD,      /* no further attempt */
};

/* Writes the outcome if the lease is still ours: 1 written, 0 the lease was lost (another
 * worker or a redeliver took the delivery over), -1 database error. */
static int record(struct db *db, const char *owner, const struct store_lease *c, enum outcome o,
		  int64_t now_ms, int64_t next_ms, const struct attempt *a, const char *event_id)
{
	char *body = a->body.len ? storable_text(a->body.data, a->body.len) : NULL;
	char *error = a->error[0] ? storable_text(a->error, strlen(a->error)) : NULL;
	int rc;

	if (o == OUTCOME_DELIVERED)
		rc = store_delivery_delivered(db, c, owner, now_ms, a->status, body);
	else
		rc = store_delivery_failed(db, c, owner, next_ms, a->status, error, body,
					   o == OUTCOME_DEAD);
	if (rc < 0)
		log_warn("webhook %s: recording the outcome: %s", event_id, db_error(db));
	else if (rc == 0)
		log_warn("webhook %s: lease lost before the outcome was recorded (the delivery was "
			 "taken over or redelivered)", event_id);
	free(body);
	free(error);
	return rc;
}

/* Delivers one claimed delivery and records the outcome. 0, or -1 on database trouble. */
static int deliver_one(struct db *db, const struct settings *s, const char *owner,
		       const struct store_lease *c, struct webhook_stats *st)
{
	struct store_delivery d;
	struct attempt a;
	const char *event_id;
	enum outcome o;
	int64_t now, next = 0;
	uint32_t rnd;
	int r, rc = -1;

	memset(&a, 0, sizeof a);
	buf_init(&a.body, WEBHOOK_KEEP_BODY);
	r = store_delivery_load(db, c, owner, &d);
	if (r < 0) {
		log_warn("webhook delivery %lld: %s", (long long)c->id, db_error(db));
		goto out;
	}
	if (r == 0) {
		rc = 0; /* redelivered or taken over since the claim */
		goto out;
	}
	event_id = d.event_id;
	if (!d.secret)
		snprintf(a.error, sizeof a.error, "the client no longer exists");
	else
		post_once(s, d.url, event_id, d.secret, d.secret_previous, d.body, d.body_len, &a);
	now = util_now_ms();
	util_random_bytes(&rnd, sizeof rnd);
	if (a.refused || !d.secret) {
		o = OUTCOME_DEAD;
	} else if (!a.error[0] && a.status >= 200 && a.status < 300) {
		o = OUTCOME_DELIVERED;
	} else if (a.status == 410) {
		/* Standard Webhooks: 410 Gone means the receiver wants no more of these. */
		snprintf(a.error, sizeof a.error, "HTTP 410 Gone: the receiver asked not to be retried");
		o = OUTCOME_DEAD;
	} else {
		int64_t wait = webhook_retry_wait_ms(&s->schedule, c->attempts, rnd);

		if (wait < 0) {
			size_t len = strlen(a.error);

			snprintf(a.error + len, sizeof a.error - len, " (gave up after %lld attempts)",
				 (long long)c->attempts);
			o = OUTCOME_DEAD;
		} else {
			int64_t after = a.retry_after_s < WEBHOOK_MAX_RETRY_AFTER_S ?
						a.retry_after_s : WEBHOOK_MAX_RETRY_AFTER_S;

			if (after * 1000 > wait)
				wait = after * 1000;
			next = now + wait;
			o = OUTCOME_RETRY;
		}
	}
	r = record(db, owner, c, o, now, next, &a, event_id);
	if (r <= 0) {
		rc = r;
		goto out;
	}
	switch (o) {
	case OUTCOME_DELIVERED:
		st->delivered++;
		log_info("webhook %s: delivered (HTTP %ld, attempt %lld)", event_id, a.status,
			 (long long)c->attempts);
		break;
	case OUTCOME_RETRY:
		st->failed++;
		log_warn("webhook %s: attempt %lld failed: %s; next attempt in %lld s", event_id,
			 (long long)c->attempts, a.error, (long long)((next - now + 999) / 1000));
		break;
	case OUTCOME_DEAD:
		st->dead++;
		log_warn("webhook %s: dead after attempt %lld: %s", event_id, (long long)c->attempts,
			 a.error);
		break;
	}
	rc = 0;
out:
	buf_free(&a.body);
	store_delivery_free(&d);
	return rc;
}

int webhook_deliver_due_case(struct db *db, struct cfg *cfg, const char *owner,
			     int64_t deadline_ms, const char *case_id, struct webhook_stats *stats_r)
{
	struct webhook_stats st = { 0, 0, 0 };
	struct settings s;
	int64_t per_ms;
	int rc = 0;

	memset(&s, 0, sizeof s);
	if (stats_r)
		memset(stats_r, 0, sizeof *stats_r);
	if (load_settings(cfg, &s) < 0)
		return -1;
	/* A lease covers a whole batch done one after another, each at most its timeouts (and
	 * a name lookup), with a margin. */
	per_ms = (s.connect_timeout_s + s.timeout_s) * 1000 + 10000;
	for (;;) {
		struct store_lease *items = NULL;
		size_t n = 0, i = 0;
		int64_t now = util_now_ms();

		if (now >= deadline_ms)
			break;
		if (store_delivery_claim(db, owner, case_id, now, now + s.batch * per_ms + 30000,
					 s.batch, &items, &n) < 0) {
			log_warn("claiming webhook deliveries: %s", db_error(db));
			rc = -1;
			break;
		}
		for (; i < n && rc == 0; i++) {
			if (util_now_ms() >= deadline_ms) {
				/* The budget ran out: due now, the attempt not counted. */
				if (store_delivery_release(db, &items[i], owner, util_now_ms()) < 0)
					log_warn("webhook delivery %lld: giving it back: %s",
						 (long long)items[i].id, db_error(db));
			}
			else if (deliver_one(db, &s, owner, &items[i], &st) < 0)
				rc = -1;
		}
		/* On database trouble the rest stay leased and come due when the lease ends. */
		free(items);
		if (n == 0 || rc < 0)
			break;
	}
	if (stats_r)
		*stats_r = st;
	return rc;
}

int webhook_deliver_due(struct db *db, struct cfg *cfg, const char *owner, int64_t deadline_ms,
			struct webhook_stats *stats_r)
{
	return webhook_deliver_due_case(db, cfg, owner, deadline_ms, NULL, stats_r);
}

int webhook_purge_idempotency(struct db *db, int64_t now_ms)
{
	int64_t total = 0;

	if (store_purge_idempotency(db, now_ms - STORE_IDEM_KEEP_MS, &total) < 0) {
		log_warn("purging Idempotency-Keys: %s", db_error(db));
		return -1;
	}
	if (total > 0)
		log_info("purged %lld Idempotency-Keys older than %lld h", (long long)total,
			 (long long)(STORE_IDEM_KEEP_MS / 3600000));
	return (int)total;
}
