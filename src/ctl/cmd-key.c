/* cmd-key.c: 'offloadctl key': create, list and deactivate a client's API keys (only their
 * SHA-256 is stored; a key is shown once, when it is created).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "store/clients.h"

#define KEY_PREFIX "ofk_"

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

static const struct ctl_verb verbs[] = {
	{ "create", cmd_key_create },
	{ "list", cmd_key_list },
	{ "deactivate", cmd_key_deactivate },
	{ NULL, NULL },
};

const struct ctl_group ctl_group_key = {
	"key",
	"  key create --client CLIENT_ID            create an API key; prints it (shown once)\n"
	"  key list [--client CLIENT_ID]            list keys (their prefixes, never the keys)\n"
	"  key deactivate KEY_ID                    make a key inactive (403 from then on)\n",
	verbs,
};
