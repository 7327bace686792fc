/* cmd-migrate.c: 'offloadctl migrate': applies the SQL migrations not yet applied.
 */
#include <stdio.h>

#include "common/cfg.h"
#include "common/log.h"
#include "ctl/ctl.h"
#include "store/migrate.h"

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

static const struct ctl_verb verbs[] = {
	{ NULL, cmd_migrate },
	{ NULL, NULL },
};

const struct ctl_group ctl_group_migrate = {
	"migrate",
	"  migrate [--dir DIR]                      apply the SQL migrations not yet applied\n",
	verbs,
};
