/* cmd-idempotency.c: 'offloadctl idempotency purge': deletes the Idempotency-Keys of
 * POST /cases that are 24 hours old or older, as every worker pass does.
 */
#include <stdio.h>

#include "common/util.h"
#include "ctl/ctl.h"
#include "webhook/deliver.h"

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

static const struct ctl_verb verbs[] = {
	{ "purge", cmd_idempotency_purge },
	{ NULL, NULL },
};

const struct ctl_group ctl_group_idempotency = {
	"idempotency",
	"  idempotency purge                        delete Idempotency-Keys older than 24 h\n",
	verbs,
};
