/* routes.c: dispatches a request on the route table (route_match.h) and applies the checks
 * every route shares (cgit's cmd.c is the model). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/cases.h"
#include "api/files.h"
#include "api/http.h"
#include "api/kannel.h"
#include "api/keycache.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "api/validate.h"
#include "common/log.h"
#include "common/util.h"
#include "store/auth.h"
#include "store/db.h"
#include "store/health.h"

static void health_get(struct http_request *r);

/* The handlers, in the order of ROUTE_LIST (route_match.h), so route_table[i] is handlers[i]. */
#define ROUTE_HANDLER(method, pattern, handler, flags) handler,
static void (*const handlers[])(struct http_request *r) = { ROUTE_LIST(ROUTE_HANDLER) };
#undef ROUTE_HANDLER

/* The cheap part of authentication, before any lookup: 0, or -1 after replying 401. */
static int key_present_or_reply(struct http_request *r)
{
	const char *key = http_header(r, "HTTP_X_API_KEY");

	if (!key || !*key || strlen(key) > 256) {
		http_reply_error(r, 401, "UNAUTHORIZED", "missing or unknown x-api-key");
		return -1;
	}
	return 0;
}

/* Answers for a key lookup that found (1), did not find (0) or failed (-1) the key: 0 when
 * the key is known and active, else -1 after replying 401, 403, 500 or 503. */
static int key_state_or_reply(struct http_request *r, int found, const struct store_api_key *k,
			      const char *err)
{
	if (found < 0) {
		http_reply_db_error(r, err);
		return -1;
	}
	if (found == 0) {
		http_reply_error(r, 401, "UNAUTHORIZED", "missing or unknown x-api-key");
		return -1;
	}
	if (!k->active) {
		http_reply_error(r, 403, "FORBIDDEN", "this API key is inactive");
		return -1;
	}
	return 0;
}

/* Looks the key up (through the per-process cache): 0 with r->client_id and r->plan set, or
 * -1 after replying 401/403/500/503. */
static int authenticate_or_reply(struct http_request *r)
{
	const char *key = http_header(r, "HTTP_X_API_KEY");
	struct store_api_key k;
	unsigned char hash[32];
	const char *err = NULL;
	int found;

	if (key_present_or_reply(r) < 0)
		return -1;
	util_sha256(key, strlen(key), hash);
	found = keycache_lookup(r->t->db, hash, &k, &r->key_generation, &err);
	if (key_state_or_reply(r, found, &k, err) < 0)
		return -1;
	memcpy(r->client_id, k.client_id, sizeof r->client_id);
	r->plan = k.plan;
	return 0;
}

int routes_key_recheck_or_reply(struct http_request *r)
{
	const char *key = http_header(r, "HTTP_X_API_KEY");
	struct store_api_key k;
	unsigned char hash[32];
	const char *err = NULL;
	int found;

	if (db_connections_made() == r->key_generation)
		return 0;
	/* The database was reconnected since the key was read: what the cache held may predate
	 * a restart of its data. Read the key again on the new connection. */
	keycache_clear();
	util_sha256(key, strlen(key), hash);
	found = store_api_key_lookup(r->t->db, hash, &k, &err);
	if (key_state_or_reply(r, found, &k, err) < 0)
		return -1;
	if (strcmp(k.client_id, r->client_id) != 0) {
		http_reply_error(r, 403, "FORBIDDEN", "this API key now belongs to another client");
		return -1;
	}
	return 0;
}

/* Content-Type, when given, must be JSON (parameters such as charset allowed). */
static int content_type_or_reply(struct http_request *r)
{
	const char *ct = http_header(r, "CONTENT_TYPE");
	size_t n = strlen("application/json");

	if (!ct || !*ct)
		return 0;
	if (strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
		return 0;
	http_reply_error(r, 400, "INVALID_REQUEST", "content-type: must be application/json");
	return -1;
}

static void health_get(struct http_request *r)
{
	json_object *data;
	const char *why = NULL;
	int ok = store_node_check(r->t->db, NULL, &why);

	if (ok < 0) {
		log_warn("healthz: database unavailable: %s", why);
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", "the database does not answer");
		return;
	}
	if (ok == 0) {
		/* A Galera node outside the primary component or not synced: its data may be
		 * stale, so this host must not be sent traffic (see doc/operator-guide.md). */
		log_warn("healthz: %s", why);
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", "%s", why);
		return;
	}
	data = json_object_new_object();
	json_object_object_add(data, "database", json_object_new_string("ok"));
	http_reply_data(r, 200, data);
}

void routes_dispatch(struct api_thread *t)
{
	struct http_request r;
	const struct route_spec *spec = NULL;
	char allow[64];
	int found;
	int64_t start_us = util_now_us();

	memset(&r, 0, sizeof r);
	r.t = t;
	r.now_ms = util_now_ms();
	r.method = FCGX_GetParam("REQUEST_METHOD", t->req.envp);
	r.path = FCGX_GetParam("DOCUMENT_URI", t->req.envp);
	if (!r.path)
		r.path = FCGX_GetParam("SCRIPT_NAME", t->req.envp);
	r.query = FCGX_GetParam("QUERY_STRING", t->req.envp);
	if (!r.method)
		r.method = "GET";
	if (!r.path)
		r.path = "/";

	found = route_find(r.method, r.path, r.params, r.param_buf, allow, sizeof allow);
	if (found == ROUTE_METHOD_NOT_ALLOWED) {
		char hdr[96];

		snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
		http_reply_error_headers(&r, 405, hdr, "METHOD_NOT_ALLOWED",
					 "%s is not allowed here; allowed: %s", r.method, allow);
		goto out;
	}
	if (found < 0) {
		http_reply_error(&r, 404, "NOT_FOUND", "no such route");
		goto out;
	}
	spec = &route_table[found];
	if ((spec->flags & ROUTE_AUTH) && authenticate_or_reply(&r) < 0)
		goto out;
	if (spec->flags & ROUTE_BODY) {
		if (content_type_or_reply(&r) < 0 ||
		    http_read_body_or_reply(&r, VALIDATE_MAX_BODY) < 0)
			goto out;
	}
	handlers[found](&r);
	if (!r.replied)
		http_reply_internal(&r, "handler sent no reply");
out:
	metrics_observe(r.method, spec ? spec->pattern : NULL, r.status, util_now_us() - start_us);
	free(r.body);
}
