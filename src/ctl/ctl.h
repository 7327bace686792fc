/* ctl.h: what offloadctl's command files share: the context a command runs with, the exit
 * codes, the subcommand option parser and the output helpers (ctl.c), and the shape of a
 * command group, which main.c's table lists (one cmd-GROUP.c file per group).
 */
#ifndef OFFLOAD_CTL_H
#define OFFLOAD_CTL_H

#include <json-c/json.h>

struct cfg;
struct db;

/* Exit codes: 0 done, 1 failed, 2 bad usage, 3 not found. */
#define EXIT_USAGE 2
#define EXIT_NOT_FOUND 3

struct ctl {
	struct cfg *cfg;
	struct db *db; /* NULL until the command calls open_db() */
	int json;
};

/* One command: "offloadctl GROUP VERB ARGS"; run gets ARGS and returns the exit code. */
struct ctl_verb {
	const char *verb; /* NULL: the group is this one command ("offloadctl migrate") */
	int (*run)(struct ctl *ctl, int argc, char **argv);
};

/* A command group, defined by its cmd-GROUP.c as ctl_group_GROUP. */
struct ctl_group {
	const char *name;
	const char *usage;	     /* its lines of the "Commands:" part of 'offloadctl --help' */
	const struct ctl_verb *verbs; /* ends with an entry whose run is NULL */
};

/* Prints "offloadctl: MESSAGE" and a pointer to --help on stderr; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints o as pretty JSON on stdout (the --json output). */
void print_json(json_object *o);

/* Connects ctl->db; logs why not and returns -1 on failure. */
int open_db(struct ctl *ctl);

/* Parses "--name VALUE" style options of a subcommand into values[]; positional
 * arguments go to pos[]. Returns 0, 1 for --help, or EXIT_USAGE. */
struct opt {
	const char *name;
	const char **value; /* NULL for a flag */
	int *flag;
};

int parse_sub(int argc, char **argv, struct opt *opts, const char **pos, int npos, int *got_pos,
	      int *json);

#endif
