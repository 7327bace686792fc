/* test-cli.c: unit tests for the start every program shares (src/common/cli.c): the shared
 * options through the real getopt_long, bad usage, the umask, loading the configuration. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/log.h"
#include "test.h"

static int usage_calls;
static FILE *usage_to;

static void usage(FILE *f)
{
	usage_calls++;
	usage_to = f;
}

static const struct option opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "once", no_argument, NULL, 'o' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Parses argv as a program with one own option (--once) does; returns what main would
 * return (-1: go on), with *once set when --once was seen. */
static int parse(struct cli *cli, int argc, char **argv, int *once)
{
	int c, r;

	optind = 0; /* GNU getopt: 0 re-initialises it */
	opterr = 0;
	usage_calls = 0;
	usage_to = NULL;
	*once = 0;
	while ((c = getopt_long(argc, argv, "c:vhVo", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			*once = 1;
			break;
		default:
			if ((r = cli_option(cli, c)) != CLI_NEXT)
				return r;
		}
	}
	return -1;
}

static void test_shared_options(void)
{
	char *argv[] = { "prog", "-c", "/etc/x.conf", "--once", "--verbose", "rest", NULL };
	struct cli cli = { .program = "prog", .usage = usage, .usage_status = 2 };
	int once;

	test_begin("cli: -c, --verbose and the program's own --once");
	log_set_level(LOG_LEVEL_INFO);
	test_assert(parse(&cli, 6, argv, &once) == -1);
	test_assert_str(cli.config_path, "/etc/x.conf");
	test_assert(once == 1);
	test_assert(log_enabled(LOG_LEVEL_DEBUG));
	test_assert(usage_calls == 0);
	test_assert(optind == 5 && strcmp(argv[optind], "rest") == 0);
	log_set_level(LOG_LEVEL_INFO);
	test_end();
}

static void test_help_and_bad_usage(void)
{
	char *help[] = { "prog", "--help", NULL };
	char *bad[] = { "prog", "--bogus", NULL };
	char *missing[] = { "prog", "-c", NULL };
	struct cli cli = { .program = "prog", .usage = usage, .usage_status = 64 };
	int once;

	test_begin("cli: --help is usage on stdout and 0; bad options are usage on stderr");
	test_assert(parse(&cli, 2, help, &once) == 0);
	test_assert(usage_calls == 1 && usage_to == stdout);
	test_assert(parse(&cli, 2, bad, &once) == 64);
	test_assert(usage_calls == 1 && usage_to == stderr);
	test_assert(parse(&cli, 2, missing, &once) == 64);
	test_assert(usage_calls == 1 && usage_to == stderr);
	test_assert(cli.config_path == NULL);
	test_end();
}

static void test_version(void)
{
	char *argv[] = { "prog", "-V", NULL };
	struct cli cli = { .program = "prog", .usage = usage, .usage_status = 2 };
	int once;

	test_begin("cli: -V returns 0 without usage");
	test_assert(parse(&cli, 2, argv, &once) == 0);
	test_assert(usage_calls == 0);
	test_end();
}

static void test_start_umask(void)
{
	struct cli plain = { .program = "prog", .usage = usage, .usage_status = 2 };
	struct cli files = { .program = "prog", .usage = usage, .usage_status = 2,
			     .writes_files = 1 };
	mode_t old;

	test_begin("cli: cli_start sets umask 027 only for a program that writes files");
	umask(077);
	cli_start(&plain);
	old = umask(077);
	test_assert(old == 077);
	cli_start(&files);
	old = umask(077);
	test_assert(old == 027);
	test_end();
}

static void test_config(void)
{
	char path[] = "/tmp/test-cli-XXXXXX";
	struct cli cli = { .program = "prog", .usage = usage, .usage_status = 2 };
	struct cfg *cfg;
	FILE *f;
	int fd;

	test_begin("cli: cli_config loads -c, and fails (NULL) for a named file that is absent");
	fd = mkstemp(path);
	test_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs("[database]\nname = from_cli_test\n", f);
	fclose(f);
	cli.config_path = path;
	cfg = cli_config(&cli);
	test_assert(cfg != NULL);
	if (cfg)
		test_assert_str(cfg_get(cfg, "database", "name", ""), "from_cli_test");
	cfg_free(&cfg);
	unlink(path);
	cfg = cli_config(&cli);
	test_assert(cfg == NULL);
	test_end();
}

static void test_config_no_operands(void)
{
	char path[] = "/tmp/test-cli-XXXXXX";
	struct cli cli = { .program = "prog", .usage = usage, .usage_status = 2 };
	struct cfg *cfg = (struct cfg *)&cli;
	int fd;

	test_begin("cli: cli_config_no_operands refuses an operand, loads the file, or fails with 1");
	fd = mkstemp(path);
	test_assert(fd >= 0);
	close(fd);
	cli.config_path = path;
	usage_calls = 0;
	optind = 2;
	test_assert(cli_config_no_operands(&cli, 3, &cfg) == 2);
	test_assert(cfg == NULL);
	test_assert(usage_calls == 1 && usage_to == stderr);
	test_assert(cli_config_no_operands(&cli, 2, &cfg) == CLI_NEXT);
	test_assert(cfg != NULL);
	cfg_free(&cfg);
	unlink(path);
	test_assert(cli_config_no_operands(&cli, 2, &cfg) == 1);
	test_assert(cfg == NULL);
	test_assert(usage_calls == 1);
	optind = 1;
	test_end();
}

int main(void)
{
	unsetenv("OFFLOAD_CONFIG");
	unsetenv("OFFLOAD_DATABASE_NAME");
	test_shared_options();
	test_help_and_bad_usage();
	test_version();
	test_start_umask();
	test_config();
	test_config_no_operands();
	return test_done();
}
