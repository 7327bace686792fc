/* cmd-client.c: 'offloadctl client': create and list clients, rotate a client's webhook
 * signing secret.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/plans.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "store/clients.h"

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

static const struct ctl_verb verbs[] = {
	{ "create", cmd_client_create },
	{ "list", cmd_client_list },
	{ "rotate-secret", cmd_client_rotate_secret },
	{ NULL, NULL },
};

const struct ctl_group ctl_group_client = {
	"client",
	"  client create --name NAME --plan PLAN    create a client; prints its id and webhook\n"
	"                                           secret (shown once). PLAN: SANDBOX, PAYG,\n"
	"                                           BASE_PRO or UNLIMITED\n"
	"  client list                              list clients\n"
	"  client rotate-secret CLIENT_ID [--finish]\n"
	"                                           new webhook secret (shown once); both are\n"
	"                                           used to sign until --finish\n",
	verbs,
};
