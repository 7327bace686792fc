/* ctl.c: the helpers every offloadctl command uses: usage errors, JSON output, opening the
 * database and parsing a subcommand's options (see ctl.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "ctl/ctl.h"
#include "store/db.h"

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "offloadctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'offloadctl --help'.\n");
	return EXIT_USAGE;
}

void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
}

int open_db(struct ctl *ctl)
{
	const char *err;

	ctl->db = db_open(ctl->cfg, &err);
	if (!ctl->db) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

int parse_sub(int argc, char **argv, struct opt *opts, const char **pos, int npos, int *got_pos,
	      int *json)
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
