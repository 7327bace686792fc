/* cli.h: how every Offload program starts (offload-api, offload-worker, offload-inbound,
 * offloadctl): its log identity, the options they share (-c/--config, -v/--verbose,
 * -h/--help, -V/--version) and loading the configuration. Each program keeps its own
 * option table, usage text and exit statuses.
 *
 *	struct cli cli = { .program = "offload-x", .usage = usage, .usage_status = 2 };
 *
 *	cli_start(&cli);
 *	while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
 *		switch (c) {
 *		case 'o': (the program's own options first)
 *			...
 *			break;
 *		default:
 *			if ((r = cli_option(&cli, c)) != CLI_NEXT)
 *				return r;
 *		}
 *	}
 *	cfg = cli_config(&cli);   (or cli_config_no_operands, for a program without operands)
 */
#ifndef OFFLOAD_CLI_H
#define OFFLOAD_CLI_H

#include <stdio.h>

struct cfg;

struct cli {
	const char *program;	/* "offload-worker": the log identity and --version */
	void (*usage)(FILE *f); /* prints the program's usage to f */
	int usage_status;	/* the exit status for bad usage: 2, or EX_USAGE for an MTA */
	int writes_files;	/* 1: files it writes are 0640, directories 0750 (umask 027) */
	const char *config_path; /* -c FILE, else NULL */
};

/* Sets the log identity and, for a program that writes files, the umask. */
void cli_start(struct cli *cli);

/* The shared long options and the terminator, to end a program's option table (with the
 * short options "c:vhV"):
 *	static const struct option opts[] = { { "once", no_argument, NULL, 'o' }, CLI_OPTIONS };
 * offload-inbound, a mail filter without --version, writes its own. */
#define CLI_OPTIONS                                                                   \
	{ "config", required_argument, NULL, 'c' }, { "verbose", no_argument, NULL, 'v' }, \
	{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },          \
	{ NULL, 0, NULL, 0 }

#define CLI_NEXT (-1) /* cli_option handled the option: parsing goes on */

/* For an answer c of getopt_long that is not one of the program's own options: handles the
 * shared ones ('c', 'v', 'h', 'V'); anything else is bad usage (usage on stderr). Returns
 * CLI_NEXT, or the exit status the program returns now (0 after --help or --version,
 * usage_status after a bad option). */
int cli_option(struct cli *cli, int c);

/* After the options of a program that takes no operands: cli_config() into *cfg_r and
 * CLI_NEXT; else the exit status the program returns now (usage_status after usage on
 * stderr when an operand is left, 1 when the configuration does not load). */
int cli_config_no_operands(const struct cli *cli, int argc, struct cfg **cfg_r);

/* Loads the configuration (-c, else $OFFLOAD_CONFIG, else the default: cfg_load), or
 * logs why not and returns NULL. */
struct cfg *cli_config(const struct cli *cli);

#endif
