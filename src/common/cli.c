/* cli.c: how every Offload program starts: see cli.h. */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/log.h"

void cli_start(struct cli *cli)
{
	log_init(cli->program);
	/* Files and directories we write are 0640/0750 whatever the caller's umask (an MTA's
	 * pipe may run us with 077); the files directory's group (nginx) must read them. */
	if (cli->writes_files)
		umask(027);
}

int cli_option(struct cli *cli, int c)
{
	switch (c) {
	case 'c':
		cli->config_path = optarg;
		return CLI_NEXT;
	case 'v':
		log_set_level(LOG_LEVEL_DEBUG);
		return CLI_NEXT;
	case 'h':
		cli->usage(stdout);
		return 0;
	case 'V':
		printf("%s %s\n", cli->program, PACKAGE_VERSION);
		return 0;
	default:
		cli->usage(stderr);
		return cli->usage_status;
	}
}

int cli_config_no_operands(const struct cli *cli, int argc, struct cfg **cfg_r)
{
	*cfg_r = NULL;
	if (optind != argc) {
		cli->usage(stderr);
		return cli->usage_status;
	}
	*cfg_r = cli_config(cli);
	return *cfg_r ? CLI_NEXT : 1;
}

struct cfg *cli_config(const struct cli *cli)
{
	const char *err;
	struct cfg *cfg = cfg_load(cli->config_path, &err);

	if (!cfg)
		log_error("%s", err);
	return cfg;
}
