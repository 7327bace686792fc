/* offloadctl.c: the operator's tool: schema migrations, clients, API keys and cases.
 * Over 900 lines on purpose for now: the split into main.c with the command table and one
 * file per command group (client, key, case, webhook) is issue 13; its SQL already moved
 * into src/store/ (admin, clients) under issue 10.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/plans.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/admin.h"
#include "store/agent_calls.h"
#include "store/caseview.h"
#include "store/clients.h"
#include "store/db.h"
#include "store/migrate.h"
#include "webhook/deliver.h"

/* Exit codes: 0 done, 1 failed, 2 bad usage, 3 not found. */
#define EXIT_USAGE 2
#define EXIT_NOT_FOUND 3

#define KEY_PREFIX "ofk_"

struct ctl {
	struct cfg *cfg;
	struct db *db;
	int json;
};

static const char main_usage[] =
	"usage: offloadctl [-c FILE] [--json] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  migrate [--dir DIR]                      apply the SQL migrations not yet applied\n"
	"  client create --name NAME --plan PLAN    create a client; prints its id and webhook\n"
	"                                           secret (shown once). PLAN: SANDBOX, PAYG,\n"
	"                                           BASE_PRO or UNLIMITED\n"
	"  client list                              list clients\n"
	"  key create --client CLIENT_ID            create an API key; prints it (shown once)\n"
	"  key list [--client CLIENT_ID]            list keys (their prefixes, never the keys)\n"
	"  key deactivate KEY_ID                    make a key inactive (403 from then on)\n"
	"  case show CASE_ID [--transcript]         show one case as the API shows it\n"
	"  case list [--client ID] [--status S] [--limit N]\n"
	"                                           list cases, most recently updated first\n"
	"  case nudge CASE_ID                       make the case's next action due now\n"
	"  client rotate-secret CLIENT_ID [--finish]\n"
	"                                           new webhook secret (shown once); both are\n"
	"                                           used to sign until --finish\n"
	"  webhook list [--case ID] [--dead]        list webhook deliveries, newest first\n"
	"  webhook show EVENT_ID                    one delivery with its body and last answer\n"
	"  webhook redeliver EVENT_ID               make a delivery pending and due now\n"
	"  webhook deliver [--once] [--case ID]     deliver the due webhooks now, then exit\n"
	"  idempotency purge                        delete Idempotency-Keys older than 24 h\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE  configuration file (default: $OFFLOAD_CONFIG, then\n"
	"                     " SYSCONFDIR "/offload/offload.conf)\n"
	"  --json             machine-readable output\n"
	"  -v, --verbose      log more\n"
	"  -h, --help         this text; COMMAND --help for one command\n"
	"\n"
	"Exit status: 0 done, 1 failed, 2 bad usage, 3 not found.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "offloadctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'offloadctl --help'.\n");
	return EXIT_USAGE;
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int open_db(struct ctl *ctl)
{
	const char *err;

	ctl->db = db_open(ctl->cfg, &err);
	if (!ctl->db) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* Parses "--name VALUE" style options of a subcommand into values[]; positional
 * arguments go to pos[]. Returns 0, 1 for --help, or EXIT_USAGE. */
struct opt {
	const char *name;
	const char **value; /* NULL for a flag */
	int *flag;
};

static int parse_sub(int argc, char **argv, struct opt *opts, const char **pos, int npos,
		     int *got_pos, int *json)
{
	*got_pos = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		struct opt *o = NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return 1;
		if (strcmp(a, "--json") == 0) {
			*json = 1;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (*got_pos >= npos)
				return usage_error("unexpected argument '%s'", a);
			pos[(*got_pos)++] = a;
			continue;
		}
		for (struct opt *p = opts; p && p->name; p++)
			if (strcmp(p->name, a + 2) == 0)
				o = p;
		if (!o)
			return usage_error("unknown option '%s'", a);
		if (o->flag) {
			*o->flag = 1;
			continue;
		}
		if (i + 1 >= argc)
			return usage_error("option '%s' needs a value", a);
		*o->value = argv[++i];
	}
	return 0;
}

static int cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
	const char *dir = NULL, *err;
	struct opt opts[] = { { "dir", &dir, NULL }, { NULL, NULL, NULL } };
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl migrate [--dir DIR]\n\n"
		       "Applies the numbered SQL files of DIR (default: [database] migrations_dir,\n"
		       "else " PKGDATADIR "/sql) that are not yet recorded in schema_migrations.\n"
		       "Safe to run again: applied files are skipped.\n");
		return 0;
	}
	if (r)
		return r;
	if (!dir)
		dir = cfg_get(ctl->cfg, "database", "migrations_dir", PKGDATADIR "/sql");
	if (open_db(ctl) < 0)
		return 1;
	if (migrate_run(ctl->db, dir, ctl->json, &n, &err) < 0) {
		log_error("migrate: %s", err);
		return 1;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "applied", json_object_new_int(n));
		print_json(o);
		json_object_put(o);
	} else if (n == 0) {
		printf("schema is up to date\n");
	}
	return 0;
}

static int cmd_client_create(struct ctl *ctl, int argc, char **argv)
{
	const char *name = NULL, *plan_name = NULL, *err;
	struct opt opts[] = { { "name", &name, NULL }, { "plan", &plan_name, NULL },
			      { NULL, NULL, NULL } };
	unsigned char raw[32];
	char secret[64], b64[48], id[37];
	enum plan plan;
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl client create --name NAME --plan PLAN [--json]\n\n"
		       "Creates a client (an account that owns cases and keys). PLAN is SANDBOX,\n"
		       "PAYG, BASE_PRO or UNLIMITED. Prints the client id and its webhook signing\n"
		       "secret (whsec_...); the secret is shown only here.\n");
		return 0;
	}
	if (r)
		return r;
	if (!name || !*name || strlen(name) > 255 || strpbrk(name, "\r\n"))
		return usage_error("--name is required (1-255 characters, one line)");
	if (!plan_name || plans_parse(plan_name, &plan) < 0)
		return usage_error("--plan must be SANDBOX, PAYG, BASE_PRO or UNLIMITED");
	util_random_bytes(raw, sizeof raw);
	util_base64(raw, sizeof raw, b64);
	snprintf(secret, sizeof secret, "whsec_%s", b64);
	util_uuid_v4(id);
	if (open_db(ctl) < 0)
		return 1;
	{
		struct store_client_new c = { .id = id, .name = name, .plan = plans_name(plan),
					      .webhook_secret = secret,
					      .created_at_ms = util_now_ms() };

		if (store_client_create(ctl->db, &c, &err) < 0) {
			log_error("client create: %s", err);
			return 1;
		}
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "clientId", json_object_new_string(id));
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "plan", json_object_new_string(plans_name(plan)));
		json_object_object_add(o, "webhookSecret", json_object_new_string(secret));
		print_json(o);
		json_object_put(o);
	} else {
		printf("client id:      %s\nname:           %s\nplan:           %s\n"
		       "webhook secret: %s\n\nThe webhook secret is shown only now: store it where "
		       "the client's webhook receiver can read it.\n",
		       id, name, plans_name(plan), secret);
	}
	return 0;
}

static int cmd_client_list(struct ctl *ctl, int argc, char **argv)
{
	struct store_client_row *rows = NULL;
	size_t nrows;
	const char *err;
	json_object *arr;
	int n, r = parse_sub(argc, argv, NULL, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl client list [--json]\n\nLists every client.\n");
		return 0;
	}
	if (r)
		return r;
	if (open_db(ctl) < 0)
		return 1;
	if (store_client_list(ctl->db, &rows, &nrows, &err) < 0) {
		log_error("client list: %s", err);
		return 1;
	}
	arr = json_object_new_array();
	if (!ctl->json)
		printf("%-36s  %-10s  %-4s  %s\n", "CLIENT ID", "PLAN", "KEYS", "NAME");
	for (size_t i = 0; i < nrows; i++) {
		const struct store_client_row *c = &rows[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "clientId", json_object_new_string(c->id));
		json_object_object_add(o, "name", json_object_new_string(c->name));
		json_object_object_add(o, "plan", json_object_new_string(c->plan));
		json_object_object_add(o, "createdAt", json_object_new_int64(c->created_at_ms));
		json_object_object_add(o, "activeKeys", json_object_new_int64(c->active_keys));
		json_object_array_add(arr, o);
		if (!ctl->json)
			printf("%-36s  %-10s  %-4lld  %s\n", c->id, c->plan,
			       (long long)c->active_keys, c->name);
	}
	if (ctl->json)
		print_json(arr);
	json_object_put(arr);
	store_client_rows_free(&rows, nrows);
	return 0;
}

static int cmd_key_create(struct ctl *ctl, int argc, char **argv)
{
	const char *client = NULL, *err;
	struct opt opts[] = { { "client", &client, NULL }, { NULL, NULL, NULL } };
	unsigned char raw[32], hash[32];
	char key[64], b64[48], id[37], prefix[13];
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl key create --client CLIENT_ID [--json]\n\n"
		       "Creates an API key for the client and prints it (ofk_...). Only its SHA-256\n"
		       "is stored: the key is shown only here.\n");
		return 0;
	}
	if (r)
		return r;
	if (!client || !util_uuid_valid(client))
		return usage_error("--client CLIENT_ID is required (a client id from 'client list')");
	if (open_db(ctl) < 0)
		return 1;
	util_random_bytes(raw, sizeof raw);
	util_base64url(raw, sizeof raw, b64);
	snprintf(key, sizeof key, KEY_PREFIX "%s", b64);
	memcpy(prefix, key, sizeof prefix - 1);
	prefix[sizeof prefix - 1] = '\0';
	util_sha256(key, strlen(key), hash);
	util_uuid_v4(id);
	{
		struct store_key_new k = { .id = id, .client_id = client, .hash = hash,
					   .prefix = prefix, .created_at_ms = util_now_ms() };
		int r2 = store_key_create(ctl->db, &k, &err);

		if (r2 <= 0)
			explicit_bzero(key, sizeof key);
		if (r2 < 0) {
			log_error("key create: %s", err);
			return 1;
		}
		if (r2 == 0) {
			log_error("key create: no client %s", client);
			return EXIT_NOT_FOUND;
		}
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "keyId", json_object_new_string(id));
		json_object_object_add(o, "clientId", json_object_new_string(client));
		json_object_object_add(o, "key", json_object_new_string(key));
		print_json(o);
		json_object_put(o);
	} else {
		printf("key id: %s\nclient: %s\nkey:    %s\n\nThe key is shown only now; send it "
		       "in the x-api-key header.\n", id, client, key);
	}
	explicit_bzero(key, sizeof key);
	return 0;
}

static int cmd_key_list(struct ctl *ctl, int argc, char **argv)
{
	const char *client = NULL, *err;
	struct opt opts[] = { { "client", &client, NULL }, { NULL, NULL, NULL } };
	struct store_key_row *rows = NULL;
	size_t nrows;
	json_object *arr;
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl key list [--client CLIENT_ID] [--json]\n\n"
		       "Lists API keys by id and prefix (the keys themselves are not stored).\n");
		return 0;
	}
	if (r)
		return r;
	if (open_db(ctl) < 0)
		return 1;
	if (store_key_list(ctl->db, client, &rows, &nrows, &err) < 0) {
		log_error("key list: %s", err);
		return 1;
	}
	arr = json_object_new_array();
	if (!ctl->json)
		printf("%-36s  %-36s  %-12s  %s\n", "KEY ID", "CLIENT ID", "PREFIX", "STATE");
	for (size_t i = 0; i < nrows; i++) {
		const struct store_key_row *k = &rows[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "keyId", json_object_new_string(k->id));
		json_object_object_add(o, "clientId", json_object_new_string(k->client_id));
		json_object_object_add(o, "prefix", json_object_new_string(k->prefix));
		json_object_object_add(o, "active", json_object_new_boolean(k->active));
		json_object_object_add(o, "createdAt", json_object_new_int64(k->created_at_ms));
		json_object_object_add(o, "deactivatedAt",
				       k->deactivated_at_ms >= 0
					       ? json_object_new_int64(k->deactivated_at_ms)
					       : NULL);
		json_object_array_add(arr, o);
		if (!ctl->json)
			printf("%-36s  %-36s  %-12s  %s\n", k->id, k->client_id, k->prefix,
			       k->active ? "active" : "inactive");
	}
	if (ctl->json)
		print_json(arr);
	json_object_put(arr);
	free(rows);
	return 0;
}

static int cmd_key_deactivate(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *err;
	int found, n, r = parse_sub(argc, argv, NULL, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl key deactivate KEY_ID [--json]\n\n"
		       "Makes the key inactive: requests with it get 403 FORBIDDEN from then on.\n"
		       "The client's cases and other keys are not affected.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1 || !util_uuid_valid(pos[0]))
		return usage_error("key deactivate needs a KEY_ID (from 'key list')");
	if (open_db(ctl) < 0)
		return 1;
	found = store_key_deactivate(ctl->db, pos[0], util_now_ms(), &err);
	if (found < 0) {
		log_error("key deactivate: %s", err);
		return 1;
	}
	if (found == 0) {
		log_error("key deactivate: no key %s", pos[0]);
		return EXIT_NOT_FOUND;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "keyId", json_object_new_string(pos[0]));
		json_object_object_add(o, "active", json_object_new_boolean(0));
		print_json(o);
		json_object_put(o);
	} else {
		printf("key %s is inactive\n", pos[0]);
	}
	return 0;
}

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
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl case list [--client ID] [--status STATUS] [--limit N] [--json]\n\n"
		       "Lists cases, most recently updated first (default limit 50, at most 10000).\n"
		       "STATUS: CREATED, RUNNING, INPUT_NEEDED, COMPLETED or FAILED.\n");
		return 0;
	}
	if (r)
		return r;
	if (status && store_case_status_parse(status, &st) < 0)
		return usage_error("--status must be CREATED, RUNNING, INPUT_NEEDED, COMPLETED or "
				   "FAILED");
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

static int cmd_client_rotate_secret(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *err;
	int fin = 0, force = 0, in_rotation = 0;
	struct opt opts[] = { { "finish", NULL, &fin }, { "force", NULL, &force },
			      { NULL, NULL, NULL } };
	unsigned char raw[32];
	char secret[64], b64[48];
	int n, rc = 1, r = parse_sub(argc, argv, opts, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl client rotate-secret CLIENT_ID [--force] [--json]\n"
		       "       offloadctl client rotate-secret CLIENT_ID --finish [--json]\n\n"
		       "Starts a rotation of the client's webhook signing secret: a new secret\n"
		       "(whsec_...) is made current and printed (shown only here) and the old one is\n"
		       "kept as the previous secret. Until the rotation is finished every delivery\n"
		       "carries two signatures, one per secret, so the receiver verifies with either\n"
		       "while it switches. A rotation already in progress is refused (its previous\n"
		       "secret would be lost) unless --force.\n"
		       "--finish: forgets the previous secret; deliveries carry one signature again.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1 || !util_uuid_valid(pos[0]))
		return usage_error("client rotate-secret needs a CLIENT_ID (from 'client list')");
	if (fin && force)
		return usage_error("--finish and --force do not go together");
	if (open_db(ctl) < 0)
		return 1;
	util_random_bytes(raw, sizeof raw);
	util_base64(raw, sizeof raw, b64);
	snprintf(secret, sizeof secret, "whsec_%s", b64);
	switch (store_client_rotate_secret(ctl->db, pos[0], secret, fin, force, &in_rotation,
					   &err)) {
	case STORE_ROTATION_DONE:
		break;
	case STORE_ROTATION_NO_CLIENT:
		log_error("no client %s", pos[0]);
		rc = EXIT_NOT_FOUND;
		goto out;
	case STORE_ROTATION_BUSY:
		log_error("client %s: a secret rotation is already in progress; finish it with "
			  "--finish first (or --force to drop the older secret)", pos[0]);
		goto out;
	default:
		log_error("client rotate-secret: %s", err);
		goto out;
	}
	if (fin) {
		if (ctl->json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "clientId", json_object_new_string(pos[0]));
			json_object_object_add(o, "rotationFinished", json_object_new_boolean(1));
			print_json(o);
			json_object_put(o);
		} else {
			printf("client %s: %s\n", pos[0],
			       in_rotation ? "previous webhook secret forgotten; one signature from now on"
					   : "no rotation was in progress");
		}
		rc = 0;
		goto out;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "clientId", json_object_new_string(pos[0]));
		json_object_object_add(o, "webhookSecret", json_object_new_string(secret));
		print_json(o);
		json_object_put(o);
	} else {
		printf("client %s\nnew webhook secret: %s\n\nThe new secret is shown only now. "
		       "Deliveries are signed with both the new and the previous secret until you "
		       "run:\n  offloadctl client rotate-secret %s --finish\n", pos[0], secret, pos[0]);
	}
	rc = 0;
out:
	explicit_bzero(secret, sizeof secret);
	explicit_bzero(raw, sizeof raw);
	return rc;
}

static int cmd_idempotency_purge(struct ctl *ctl, int argc, char **argv)
{
	int n, purged, r = parse_sub(argc, argv, NULL, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl idempotency purge [--json]\n\n"
		       "Deletes the Idempotency-Keys of POST /cases that are 24 hours old or older\n"
		       "(the worker does this on every pass). Prints how many were deleted.\n");
		return 0;
	}
	if (r)
		return r;
	if (open_db(ctl) < 0)
		return 1;
	purged = webhook_purge_idempotency(ctl->db, util_now_ms());
	if (purged < 0)
		return 1;
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "purged", json_object_new_int(purged));
		print_json(o);
		json_object_put(o);
	} else {
		printf("%d Idempotency-Key(s) purged\n", purged);
	}
	return 0;
}

struct command {
	const char *group, *verb;
	int (*run)(struct ctl *ctl, int argc, char **argv);
};

static const struct command commands[] = {
	{ "migrate", NULL, cmd_migrate },
	{ "client", "create", cmd_client_create },
	{ "client", "list", cmd_client_list },
	{ "key", "create", cmd_key_create },
	{ "key", "list", cmd_key_list },
	{ "key", "deactivate", cmd_key_deactivate },
	{ "case", "show", cmd_case_show },
	{ "case", "list", cmd_case_list },
	{ "case", "nudge", cmd_case_nudge },
	{ "client", "rotate-secret", cmd_client_rotate_secret },
	{ "webhook", "list", cmd_webhook_list },
	{ "webhook", "show", cmd_webhook_show },
	{ "webhook", "redeliver", cmd_webhook_redeliver },
	{ "webhook", "deliver", cmd_webhook_deliver },
	{ "idempotency", "purge", cmd_idempotency_purge },
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { 0 };
	const char *config_path = NULL, *err;
	const struct command *cmd = NULL;
	int c, rc = 1, known_group = 0;

	log_init("offloadctl");
	/* '+': stop at the first non-option, which is the command. */
	while ((c = getopt_long(argc, argv, "+c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			fputs(main_usage, stdout);
			return 0;
		case 'V':
			printf("offloadctl %s\n", PACKAGE_VERSION);
			return 0;
		default:
			fputs(main_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(main_usage, stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(commands[i].group, argv[optind]) != 0)
			continue;
		known_group = 1;
		if (!commands[i].verb ||
		    (optind + 1 < argc && strcmp(commands[i].verb, argv[optind + 1]) == 0)) {
			cmd = &commands[i];
			break;
		}
	}
	if (!cmd) {
		if (known_group && optind + 1 < argc &&
		    (strcmp(argv[optind + 1], "--help") == 0 || strcmp(argv[optind + 1], "-h") == 0)) {
			fputs(main_usage, stdout);
			return 0;
		}
		return usage_error(known_group ? "unknown or missing subcommand for '%s'"
					       : "unknown command '%s'",
				   argv[optind]);
	}
	optind += cmd->verb ? 2 : 1;
	ctl.cfg = cfg_load(config_path, &err);
	if (!ctl.cfg) {
		log_error("%s", err);
		return 1;
	}
	if (db_library_init() < 0) {
		log_error("MariaDB client library initialisation failed");
		goto out;
	}
	rc = cmd->run(&ctl, argc - optind, argv + optind);
	db_close(&ctl.db);
	db_library_end();
out:
	cfg_free(&ctl.cfg);
	return rc;
}
