/* cmd-case.c: 'offloadctl case': show one case as the API shows it (plus what only the
 * operator sees), list cases, nudge a case's next action to now, and delete a case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "store/admin.h"
#include "store/agent_calls.h"
#include "store/caseview.h"
#include "store/db.h"
#include "store/erase.h"
#include "store/types.h"

static void print_case_human(json_object *c)
{
	json_object *v;

	json_object_object_foreach(c, key, val)
	{
		if (strcmp(key, "conversationThread") == 0)
			continue;
		if (val && (json_object_is_type(val, json_type_object) ||
			    json_object_is_type(val, json_type_array)))
			printf("%-20s %s\n", key,
			       json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN |
									JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			printf("%-20s %s\n", key, val ? json_object_get_string(val) : "null");
	}
	if (json_object_object_get_ex(c, "conversationThread", &v))
		printf("\n%s\n", json_object_get_string(v));
}

/* Adds agentUsage: the totals of the case's LLM calls (sql/005_agent.sql). A database
 * without that table (migrations not applied yet) just shows none. */
static void add_agent_usage(struct ctl *ctl, json_object *c, const char *case_id)
{
	struct store_agent_usage usage;
	const char *err;
	json_object *u;

	if (store_agent_usage_get(ctl->db, case_id, &usage, &err) < 0) {
		log_debug("case %s: no agent usage: %s", case_id, err);
		return;
	}
	u = json_object_new_object();
	json_object_object_add(u, "calls", json_object_new_int64(usage.calls));
	json_object_object_add(u, "promptTokens", json_object_new_int64(usage.prompt_tokens));
	json_object_object_add(u, "completionTokens",
			       json_object_new_int64(usage.completion_tokens));
	json_object_object_add(u, "totalTokens", json_object_new_int64(usage.total_tokens));
	json_object_object_add(u, "latencyMs", json_object_new_int64(usage.latency_ms));
	json_object_object_add(c, "agentUsage", u);
}

static int cmd_case_show(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	int transcript = 0;
	struct opt opts[] = { { "transcript", NULL, &transcript }, { NULL, NULL, NULL } };
	json_object *c = NULL;
	char owner[37];
	int n, found, r = parse_sub(argc, argv, opts, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl case show CASE_ID [--transcript] [--json]\n\n"
		       "Shows a case as GET /cases/{id} does, plus its client id and webhook URL\n"
		       "and agentUsage (LLM calls, tokens and latency in ms, summed);\n"
		       "--transcript adds the conversation.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1)
		return usage_error("case show needs a CASE_ID");
	if (!util_uuid_valid(pos[0])) {
		log_error("no case %s", pos[0]);
		return EXIT_NOT_FOUND;
	}
	if (open_db(ctl) < 0)
		return 1;
	found = caseview_get(ctl->db, pos[0],
			     CASEVIEW_INTERNAL | (transcript ? CASEVIEW_TRANSCRIPT : 0), &c, owner);
	if (found < 0)
		return 1;
	if (found == 0) {
		log_error("no case %s", pos[0]);
		return EXIT_NOT_FOUND;
	}
	add_agent_usage(ctl, c, pos[0]);
	if (ctl->json)
		print_json(c);
	else
		print_case_human(c);
	json_object_put(c);
	return 0;
}

static int cmd_case_list(struct ctl *ctl, int argc, char **argv)
{
	const char *client = NULL, *status = NULL, *limit_s = NULL, *err;
	struct opt opts[] = { { "client", &client, NULL }, { "status", &status, NULL },
			      { "limit", &limit_s, NULL }, { NULL, NULL, NULL } };
	enum store_case_status st;
	char (*ids)[37] = NULL;
	size_t nids;
	json_object *arr;
	int64_t limit = 50;
	char statuses[128];
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	store_case_status_list(statuses, sizeof statuses);
	if (r == 1) {
		printf("usage: offloadctl case list [--client ID] [--status STATUS] [--limit N] [--json]\n\n"
		       "Lists cases, most recently updated first (default limit 50, at most 10000).\n"
		       "STATUS: %s.\n", statuses);
		return 0;
	}
	if (r)
		return r;
	if (status && store_case_status_parse(status, &st) < 0)
		return usage_error("--status must be %s", statuses);
	if (limit_s && (util_parse_int64(limit_s, &limit) < 0 || limit < 1 || limit > 10000))
		return usage_error("--limit must be from 1 to 10000");
	if (open_db(ctl) < 0)
		return 1;
	if (store_admin_case_list(ctl->db, client, status ? &st : NULL, limit, &ids, &nids,
				  &err) < 0) {
		log_error("case list: %s", err);
		return 1;
	}
	arr = json_object_new_array();
	if (!ctl->json)
		printf("%-36s  %-12s  %-8s  %-24s  %s\n", "CASE ID", "STATUS", "ATTEMPTS",
		       "UPDATED", "COUNTERPARTY");
	for (size_t i = 0; i < nids; i++) {
		json_object *c = NULL, *v;
		char owner[37], when[32];

		if (caseview_get(ctl->db, ids[i], CASEVIEW_INTERNAL, &c, owner) != 1)
			continue;
		if (ctl->json) {
			json_object_array_add(arr, c);
			continue;
		}
		json_object_object_get_ex(c, "updatedAt", &v);
		util_iso8601_ms(json_object_get_int64(v), when);
		{
			json_object *cst, *at, *cp, *addr = NULL;

			json_object_object_get_ex(c, "status", &cst);
			json_object_object_get_ex(c, "attemptCount", &at);
			json_object_object_get_ex(c, "counterparty", &cp);
			if (cp)
				json_object_object_get_ex(cp, "address", &addr);
			printf("%-36s  %-12s  %-8d  %-24s  %s\n", ids[i],
			       json_object_get_string(cst), json_object_get_int(at), when,
			       addr ? json_object_get_string(addr) : "");
		}
		json_object_put(c);
	}
	if (ctl->json)
		print_json(arr);
	json_object_put(arr);
	free(ids);
	return 0;
}

static int cmd_case_nudge(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *err;
	struct store_admin_nudge nudge;
	int found, n, r = parse_sub(argc, argv, NULL, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl case nudge CASE_ID [--json]\n\n"
		       "Makes the case's next action due now: a RUNNING case's next follow-up, and\n"
		       "any event of the case waiting for a retry. The next worker pass acts on it.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1)
		return usage_error("case nudge needs a CASE_ID");
	if (!util_uuid_valid(pos[0])) {
		log_error("no case %s", pos[0]);
		return EXIT_NOT_FOUND;
	}
	if (open_db(ctl) < 0)
		return 1;
	found = store_admin_case_nudge(ctl->db, pos[0], util_now_ms(), &nudge, &err);
	if (found < 0) {
		log_error("case nudge: %s", err);
		return 1;
	}
	if (found == 0) {
		log_error("no case %s", pos[0]);
		return EXIT_NOT_FOUND;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "caseId", json_object_new_string(pos[0]));
		json_object_object_add(o, "status",
				       json_object_new_string(store_case_status_name(nudge.status)));
		json_object_object_add(o, "followUpDueNow",
				       json_object_new_boolean(nudge.follow_up_moved));
		json_object_object_add(o, "eventsDueNow", json_object_new_int64(nudge.events_moved));
		print_json(o);
		json_object_put(o);
	} else {
		printf("case %s (%s): %s; %lld waiting event(s) due now\n", pos[0],
		       store_case_status_name(nudge.status),
		       nudge.follow_up_moved ? "next follow-up due now"
					     : "no follow-up scheduled to move",
		       (long long)nudge.events_moved);
	}
	return 0;
}

/* How often the lease of a worker busy with the case is looked at again, in ms. */
#define DELETE_POLL_MS 250

static void print_deleted(const struct ctl *ctl, const char *id, int resumed,
			  const struct store_erase_counts *n)
{
	json_object *o;

	if (!ctl->json) {
		printf("case %s deleted%s: %lld messages, %lld attachments, %lld files, %lld events, "
		       "%lld webhook deliveries, %lld agent calls, %lld Idempotency-Keys\n", id,
		       resumed ? " (an earlier delete had begun it)" : "", (long long)n->messages,
		       (long long)n->attachments, (long long)n->files, (long long)n->events,
		       (long long)n->deliveries, (long long)n->agent_calls,
		       (long long)n->idempotency);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "caseId", json_object_new_string(id));
	json_object_object_add(o, "deleted", json_object_new_boolean(1));
	json_object_object_add(o, "resumed", json_object_new_boolean(resumed));
	json_object_object_add(o, "messages", json_object_new_int64(n->messages));
	json_object_object_add(o, "attachments", json_object_new_int64(n->attachments));
	json_object_object_add(o, "files", json_object_new_int64(n->files));
	json_object_object_add(o, "events", json_object_new_int64(n->events));
	json_object_object_add(o, "webhookDeliveries", json_object_new_int64(n->deliveries));
	json_object_object_add(o, "agentCalls", json_object_new_int64(n->agent_calls));
	json_object_object_add(o, "idempotencyKeys", json_object_new_int64(n->idempotency));
	print_json(o);
	json_object_put(o);
}

static int cmd_case_delete(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *wait_s = NULL, *err = NULL, *files_dir;
	struct opt opts[] = { { "wait", &wait_s, NULL }, { NULL, NULL, NULL } };
	struct store_erase_counts counts = { 0 };
	enum store_erase_begin begun;
	int64_t wait_s_n = 600, deadline, lease_until = 0;
	char when[32];
	int n, said = 0, r = parse_sub(argc, argv, opts, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl case delete CASE_ID [--wait SECONDS] [--json]\n\n"
		       "Deletes the case, whatever its status, with everything kept for it: its\n"
		       "messages, raw mail and attachment files, input requests, events, webhook\n"
		       "deliveries, agent call records and the Idempotency-Key that created it (an\n"
		       "erasure request). An open case sends no further mail. When a worker is\n"
		       "working on the case, waits until its step is over, at most --wait seconds\n"
		       "(default 600; 0: do not wait), and otherwise fails having deleted nothing.\n"
		       "The case's usage still counts against its client's monthly cap. Running it\n"
		       "again finishes a delete that stopped half-way.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1)
		return usage_error("case delete needs a CASE_ID");
	if (!util_uuid_canonical(pos[0]))
		return usage_error("'%.64s' is not a CASE_ID (a lowercase UUID, as 'case list' shows "
				   "it)", pos[0]);
	if (wait_s && (util_parse_int64(wait_s, &wait_s_n) < 0 || wait_s_n < 0 || wait_s_n > 86400))
		return usage_error("--wait must be from 0 to 86400 seconds");
	if (open_db(ctl) < 0)
		return 1;
	files_dir = cfg_get(ctl->cfg, "files", "dir", "/var/lib/offload/files");
	deadline = util_now_ms() + wait_s_n * 1000;
	for (;;) {
		int64_t now = util_now_ms();

		if (store_erase_begin(ctl->db, pos[0], STORE_ERASE_REQUEST, -1, now, &begun,
				      &lease_until) < 0) {
			log_error("case delete: %s", db_error(ctl->db));
			return 1;
		}
		if (begun != STORE_ERASE_BUSY)
			break;
		util_iso8601_ms(lease_until, when);
		if (now >= deadline) {
			log_error("case %s: a worker is working on it (its lease ends at %s); nothing "
				  "was deleted: try again, or with a longer --wait", pos[0], when);
			return 1;
		}
		if (!said++)
			log_info("case %s: waiting for the worker working on it (its lease ends at %s)",
				 pos[0], when);
		usleep(DELETE_POLL_MS * 1000);
	}
	if (begun == STORE_ERASE_NOT_FOUND) {
		log_error("no case %s", pos[0]);
		return EXIT_NOT_FOUND;
	}
	if (store_erase_finish(ctl->db, files_dir, pos[0], &counts, &err) < 0) {
		log_error("case %s: the case is gone, but deleting what was kept for it stopped: %s; "
			  "run the command again (or a worker pass finishes it within minutes)", pos[0],
			  err ? err : "unknown error");
		return 1;
	}
	log_info("case %s erased", pos[0]);
	print_deleted(ctl, pos[0], begun == STORE_ERASE_PENDING, &counts);
	return 0;
}

static const struct ctl_verb verbs[] = {
	{ "show", cmd_case_show },
	{ "list", cmd_case_list },
	{ "nudge", cmd_case_nudge },
	{ "delete", cmd_case_delete },
	{ NULL, NULL },
};

const struct ctl_group ctl_group_case = {
	"case",
	"  case show CASE_ID [--transcript]         show one case as the API shows it\n"
	"  case list [--client ID] [--status S] [--limit N]\n"
	"                                           list cases, most recently updated first\n"
	"  case nudge CASE_ID                       make the case's next action due now\n"
	"  case delete CASE_ID [--wait SECONDS]     delete the case with everything kept for it\n",
	verbs,
};
