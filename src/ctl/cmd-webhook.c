/* cmd-webhook.c: 'offloadctl webhook': list and show webhook deliveries (the outbox),
 * make one pending again, and deliver the due ones now as a worker pass does.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "store/admin.h"
#include "webhook/deliver.h"

/* A time or status code, or null for -1 (none). */
static void add_int_or_null(json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, v >= 0 ? json_object_new_int64(v) : NULL);
}

static void add_str_or_null(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

/* One delivery as JSON; with_body adds the exact envelope. */
static json_object *delivery_json(const struct store_admin_delivery *d, int with_body)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "eventId", json_object_new_string(d->event_id));
	json_object_object_add(o, "caseId", json_object_new_string(d->case_id));
	json_object_object_add(o, "clientId", json_object_new_string(d->client_id));
	json_object_object_add(o, "eventType", json_object_new_string(d->event_type));
	json_object_object_add(o, "url", json_object_new_string(d->url));
	json_object_object_add(o, "state", json_object_new_string(d->state));
	json_object_object_add(o, "attempts", json_object_new_int64(d->attempts));
	if (strcmp(d->state, "pending") == 0)
		add_int_or_null(o, "nextAttemptAt", d->next_attempt_at_ms);
	else
		json_object_object_add(o, "nextAttemptAt", NULL);
	add_int_or_null(o, "lastStatusCode", d->last_status_code);
	add_str_or_null(o, "lastError", d->last_error);
	add_str_or_null(o, "lastResponseBody", d->last_response_body);
	json_object_object_add(o, "createdAt", json_object_new_int64(d->created_at_ms));
	add_int_or_null(o, "deliveredAt", d->delivered_at_ms);
	add_str_or_null(o, "leaseOwner", d->lease_owner);
	add_int_or_null(o, "leaseUntil", d->lease_until_ms);
	if (with_body)
		add_str_or_null(o, "body", d->body);
	return o;
}

static int cmd_webhook_list(struct ctl *ctl, int argc, char **argv)
{
	const char *case_id = NULL, *state = NULL, *limit_s = NULL, *err;
	int dead = 0;
	struct opt opts[] = { { "case", &case_id, NULL }, { "state", &state, NULL },
			      { "dead", NULL, &dead }, { "limit", &limit_s, NULL },
			      { NULL, NULL, NULL } };
	struct store_admin_delivery *rows = NULL;
	size_t nrows;
	json_object *arr;
	int64_t limit = 50;
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl webhook list [--case CASE_ID] [--dead | --state STATE]\n"
		       "                              [--limit N] [--json]\n\n"
		       "Lists webhook deliveries (the outbox), newest first (default limit 50, at\n"
		       "most 10000). STATE: pending (waiting for its first attempt or a retry),\n"
		       "delivered (a 2xx was received) or dead (refused, or retries used up);\n"
		       "--dead is --state dead. Shows attempts, the next attempt (pending) and the\n"
		       "last HTTP status and error; --json adds the response body kept (1 KiB).\n");
		return 0;
	}
	if (r)
		return r;
	if (dead) {
		if (state && strcmp(state, "dead") != 0)
			return usage_error("--dead and --state %s contradict each other", state);
		state = "dead";
	}
	if (state && strcmp(state, "pending") != 0 && strcmp(state, "delivered") != 0 &&
	    strcmp(state, "dead") != 0)
		return usage_error("--state must be pending, delivered or dead");
	if (limit_s && (util_parse_int64(limit_s, &limit) < 0 || limit < 1 || limit > 10000))
		return usage_error("--limit must be from 1 to 10000");
	if (open_db(ctl) < 0)
		return 1;
	if (store_admin_webhook_list(ctl->db, case_id, state, limit, &rows, &nrows, &err) < 0) {
		log_error("webhook list: %s", err);
		return 1;
	}
	arr = json_object_new_array();
	if (!ctl->json)
		printf("%-72s  %-9s  %-5s  %-24s  %s\n", "EVENT ID", "STATE", "TRIES",
		       "NEXT ATTEMPT / DELIVERED", "LAST RESULT");
	for (size_t i = 0; i < nrows; i++) {
		const struct store_admin_delivery *d = &rows[i];
		char when[32] = "-", last[96] = "-";

		json_object_array_add(arr, delivery_json(d, 0));
		if (ctl->json)
			continue;
		if (strcmp(d->state, "pending") == 0)
			util_iso8601_ms(d->next_attempt_at_ms, when);
		else if (d->delivered_at_ms >= 0)
			util_iso8601_ms(d->delivered_at_ms, when);
		if (d->last_error)
			snprintf(last, sizeof last, "%.95s", d->last_error);
		else if (d->last_status_code >= 0)
			snprintf(last, sizeof last, "HTTP %lld", (long long)d->last_status_code);
		printf("%-72s  %-9s  %-5lld  %-24s  %s\n", d->event_id, d->state,
		       (long long)d->attempts, when, last);
	}
	if (ctl->json)
		print_json(arr);
	json_object_put(arr);
	store_admin_deliveries_free(&rows, nrows);
	return 0;
}

static int cmd_webhook_show(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *err;
	struct store_admin_delivery d;
	json_object *o;
	int found, n, r = parse_sub(argc, argv, NULL, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl webhook show EVENT_ID [--json]\n\n"
		       "Shows one webhook delivery: its state and history, and the exact body that\n"
		       "is signed and sent on every attempt.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1)
		return usage_error("webhook show needs an EVENT_ID (from 'webhook list')");
	if (open_db(ctl) < 0)
		return 1;
	found = store_admin_webhook_get(ctl->db, pos[0], &d, &err);
	if (found < 0) {
		log_error("webhook show: %s", err);
		return 1;
	}
	if (found == 0) {
		log_error("no webhook delivery %s", pos[0]);
		return EXIT_NOT_FOUND;
	}
	o = delivery_json(&d, 1);
	if (ctl->json) {
		print_json(o);
	} else {
		json_object_object_foreach(o, key, val)
		{
			printf("%-17s %s\n", key, val ? json_object_get_string(val) : "null");
		}
	}
	json_object_put(o);
	store_admin_delivery_clear(&d);
	return 0;
}

static int cmd_webhook_redeliver(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *err;
	int keep = 0, found;
	struct opt opts[] = { { "keep-attempts", NULL, &keep }, { NULL, NULL, NULL } };
	int64_t now = util_now_ms();
	int n, r = parse_sub(argc, argv, opts, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl webhook redeliver EVENT_ID [--keep-attempts] [--json]\n\n"
		       "Makes the delivery pending and due now, whatever its state (dead, delivered\n"
		       "or pending); the next worker pass (or 'webhook deliver') sends it again with\n"
		       "the same webhook-id, so receivers can tell it is a repeat. The attempt count\n"
		       "is reset to 0, so the whole retry schedule applies again; --keep-attempts\n"
		       "keeps it (a dead delivery then dies again at its next failure). The last\n"
		       "status, error and response stay until the next attempt replaces them.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1)
		return usage_error("webhook redeliver needs an EVENT_ID (from 'webhook list')");
	if (open_db(ctl) < 0)
		return 1;
	found = store_admin_webhook_redeliver(ctl->db, pos[0], now, keep, &err);
	if (found < 0) {
		log_error("webhook redeliver: %s", err);
		return 1;
	}
	if (found == 0) {
		log_error("no webhook delivery %s", pos[0]);
		return EXIT_NOT_FOUND;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "eventId", json_object_new_string(pos[0]));
		json_object_object_add(o, "state", json_object_new_string("pending"));
		json_object_object_add(o, "nextAttemptAt", json_object_new_int64(now));
		json_object_object_add(o, "attemptsReset", json_object_new_boolean(!keep));
		print_json(o);
		json_object_put(o);
	} else {
		printf("webhook %s is pending and due now%s\n", pos[0],
		       keep ? " (attempts kept)" : " (attempts reset to 0)");
	}
	return 0;
}

static int cmd_webhook_deliver(struct ctl *ctl, int argc, char **argv)
{
	const char *case_id = NULL, *budget_s = NULL;
	int once = 0;
	struct opt opts[] = { { "once", NULL, &once }, { "case", &case_id, NULL },
			      { "budget", &budget_s, NULL }, { NULL, NULL, NULL } };
	struct webhook_stats st;
	char owner[64], host[64] = "host";
	int64_t budget = 60;
	int n, rc, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl webhook deliver [--once] [--case CASE_ID] [--budget SECONDS]\n"
		       "                                 [--json]\n\n"
		       "Delivers the due webhook deliveries once, the way the worker does in each\n"
		       "pass ([webhook] settings apply: retry_schedule_s, timeouts, allow_private),\n"
		       "and exits; --once is the default and only mode. --case limits it to one\n"
		       "case's deliveries. No new request starts after --budget seconds (default\n"
		       "60). Prints how many were delivered, failed (to be retried) and dead.\n"
		       "Exit status 1 on database trouble.\n");
		return 0;
	}
	if (r)
		return r;
	(void)once;
	if (budget_s && (util_parse_int64(budget_s, &budget) < 0 || budget < 1 || budget > 86400))
		return usage_error("--budget must be from 1 to 86400 seconds");
	if (case_id && !util_uuid_valid(case_id))
		return usage_error("--case needs a case id");
	if (open_db(ctl) < 0)
		return 1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl initialisation failed");
		return 1;
	}
	gethostname(host, sizeof host - 1);
	snprintf(owner, sizeof owner, "%.40s:%d:offloadctl", host, (int)getpid());
	rc = webhook_deliver_due_case(ctl->db, ctl->cfg, owner, util_now_ms() + budget * 1000,
				      case_id, &st);
	curl_global_cleanup();
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "delivered", json_object_new_int(st.delivered));
		json_object_object_add(o, "failed", json_object_new_int(st.failed));
		json_object_object_add(o, "dead", json_object_new_int(st.dead));
		json_object_object_add(o, "ok", json_object_new_boolean(rc == 0));
		print_json(o);
		json_object_put(o);
	} else {
		printf("webhooks: %d delivered, %d failed (will be retried), %d dead%s\n",
		       st.delivered, st.failed, st.dead, rc < 0 ? " (stopped: database trouble)" : "");
	}
	return rc < 0 ? 1 : 0;
}

static const struct ctl_verb verbs[] = {
	{ "list", cmd_webhook_list },
	{ "show", cmd_webhook_show },
	{ "redeliver", cmd_webhook_redeliver },
	{ "deliver", cmd_webhook_deliver },
	{ NULL, NULL },
};

const struct ctl_group ctl_group_webhook = {
	"webhook",
	"  webhook list [--case ID] [--dead]        list webhook deliveries, newest first\n"
	"  webhook show EVENT_ID                    one delivery with its body and last answer\n"
	"  webhook redeliver EVENT_ID               make a delivery pending and due now\n"
	"  webhook deliver [--once] [--case ID]     deliver the due webhooks now, then exit\n",
	verbs,
};
