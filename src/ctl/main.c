/* main.c: offloadctl, the operator's tool: global options, the table of command groups and
 * the dispatch to one group's command. The commands are in cmd-GROUP.c, one file per group;
 * what they share is in ctl.h and ctl.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/log.h"
#include "ctl/ctl.h"
#include "store/db.h"

/* The command groups, in the order 'offloadctl --help' lists them. A new group is one new
 * cmd-GROUP.c defining `const struct ctl_group ctl_group_GROUP` (its verbs and its --help
 * lines), one G(GROUP) line here and one line in Makefile.am's offloadctl_SOURCES; a new
 * command of a group is one function and one line in its file's verbs[]. (And a paragraph
 * in man/offloadctl.1.) */
#define CTL_GROUPS(G)   \
	G(migrate)      \
	G(client)       \
	G(key)          \
	G(case)         \
	G(webhook)      \
	G(idempotency)  \
	G(sms)          \
	/* end of the list: every line above ends with a backslash */

#define CTL_GROUP_DECLARE(group) extern const struct ctl_group ctl_group_##group;
#define CTL_GROUP_ENTRY(group) &ctl_group_##group,
CTL_GROUPS(CTL_GROUP_DECLARE)
static const struct ctl_group *const groups[] = { CTL_GROUPS(CTL_GROUP_ENTRY) };

static void print_usage(FILE *f)
{
	fputs("usage: offloadctl [-c FILE] [--json] COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
		fputs(groups[i]->usage, f);
	fputs("\n"
	      "Options:\n"
	      "  -c, --config FILE  configuration file (default: $OFFLOAD_CONFIG, then\n"
	      "                     " SYSCONFDIR "/offload/offload.conf)\n"
	      "  --json             machine-readable output\n"
	      "  -v, --verbose      log more\n"
	      "  -h, --help         this text; COMMAND --help for one command\n"
	      "\n"
	      "Exit status: 0 done, 1 failed, 2 bad usage, 3 not found.\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		CLI_OPTIONS,
	};
	struct cli cli = { .program = "offloadctl", .usage = print_usage,
			   .usage_status = EXIT_USAGE };
	struct ctl ctl = { 0 };
	const struct ctl_verb *cmd = NULL;
	int c, r, rc = 1, known_group = 0;

	cli_start(&cli);
	/* '+': stop at the first non-option, which is the command. */
	while ((c = getopt_long(argc, argv, "+c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			ctl.json = 1;
			break;
		default:
			if ((r = cli_option(&cli, c)) != CLI_NEXT)
				return r;
		}
	}
	if (optind >= argc) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof groups / sizeof groups[0] && !cmd; i++) {
		if (strcmp(groups[i]->name, argv[optind]) != 0)
			continue;
		known_group = 1;
		for (const struct ctl_verb *v = groups[i]->verbs; v->run && !cmd; v++)
			if (!v->verb || (optind + 1 < argc && strcmp(v->verb, argv[optind + 1]) == 0))
				cmd = v;
	}
	if (!cmd) {
		if (known_group && optind + 1 < argc &&
		    (strcmp(argv[optind + 1], "--help") == 0 || strcmp(argv[optind + 1], "-h") == 0)) {
			print_usage(stdout);
			return 0;
		}
		return usage_error(known_group ? "unknown or missing subcommand for '%s'"
					       : "unknown command '%s'",
				   argv[optind]);
	}
	optind += cmd->verb ? 2 : 1;
	ctl.cfg = cli_config(&cli);
	if (!ctl.cfg)
		return 1;
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
