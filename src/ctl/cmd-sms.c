/* cmd-sms.c: 'offloadctl sms': the SMS opt-out list (numbers that answered STOP) and the
 * incoming SMS that matched no case.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "sms/e164.h"
#include "store/db.h"
#include "store/sms.h"

#define OPTOUT_LIST_MAX 100000

static int optout_list(struct ctl *ctl, int argc, char **argv)
{
	struct store_sms_optout *rows = NULL;
	size_t nrows = 0;
	json_object *arr;
	int n, r = parse_sub(argc, argv, NULL, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl sms optout list [--json]\n\n"
		       "Lists the numbers that opted out of SMS (they answered STOP, STOPALL,\n"
		       "UNSUBSCRIBE, CANCEL, END or QUIT), oldest first: the number, since when, the\n"
		       "word, and the case the STOP ended. No case is created for these numbers and\n"
		       "nothing is sent to them until they send START or UNSTOP, or the opt-out is\n"
		       "cleared with 'offloadctl sms optout clear NUMBER'.\n");
		return 0;
	}
	if (r)
		return r;
	if (open_db(ctl) < 0)
		return 1;
	if (store_sms_optouts_list(ctl->db, OPTOUT_LIST_MAX, &rows, &nrows) < 0) {
		log_error("sms optout list: %s", db_error(ctl->db));
		return 1;
	}
	arr = json_object_new_array();
	if (!ctl->json)
		printf("%-16s  %-24s  %-11s  %s\n", "NUMBER", "SINCE", "WORD", "CASE");
	for (size_t i = 0; i < nrows; i++) {
		const struct store_sms_optout *o = &rows[i];
		json_object *j = json_object_new_object();
		char when[32];

		json_object_object_add(j, "number", json_object_new_string(o->number));
		json_object_object_add(j, "since", json_object_new_int64(o->since));
		json_object_object_add(j, "keyword",
				       o->keyword ? json_object_new_string(o->keyword) : NULL);
		json_object_object_add(j, "caseId",
				       o->case_id ? json_object_new_string(o->case_id) : NULL);
		json_object_array_add(arr, j);
		if (ctl->json)
			continue;
		util_iso8601_ms(o->since, when);
		printf("%-16s  %-24s  %-11s  %s\n", o->number, when, o->keyword ? o->keyword : "-",
		       o->case_id ? o->case_id : "-");
	}
	if (ctl->json)
		print_json(arr);
	json_object_put(arr);
	store_sms_optouts_free(&rows, nrows);
	return 0;
}

static int optout_clear(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *why;
	char number[SMS_E164_SIZE];
	int n, found, r = parse_sub(argc, argv, NULL, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl sms optout clear NUMBER [--json]\n\n"
		       "Lifts the opt-out of NUMBER (E.164; spaces, dashes and dots are ignored), as\n"
		       "if it had sent START: SMS cases to it can be created again. Only do this\n"
		       "when the person asked for it. Exit status 3 when the number has no opt-out.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1)
		return usage_error("sms optout clear needs a NUMBER");
	if (sms_e164_normalise(pos[0], strlen(pos[0]), number, &why) < 0)
		return usage_error("NUMBER %s", why);
	if (open_db(ctl) < 0)
		return 1;
	found = store_sms_optout_clear(ctl->db, number, util_now_ms());
	if (found < 0) {
		log_error("sms optout clear: %s", db_error(ctl->db));
		return 1;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "number", json_object_new_string(number));
		json_object_object_add(o, "cleared", json_object_new_boolean(found));
		print_json(o);
		json_object_put(o);
	} else if (found) {
		printf("opt-out of %s cleared\n", number);
	} else {
		fprintf(stderr, "offloadctl: %s has no opt-out\n", number);
	}
	return found ? 0 : EXIT_NOT_FOUND;
}

static int cmd_sms_optout(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return optout_list(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "clear") == 0)
		return optout_clear(ctl, argc - 1, argv + 1);
	if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
		printf("usage: offloadctl sms optout list [--json]\n"
		       "       offloadctl sms optout clear NUMBER [--json]\n");
		return 0;
	}
	return usage_error("sms optout needs 'list' or 'clear NUMBER'");
}

static int cmd_sms_unmatched(struct ctl *ctl, int argc, char **argv)
{
	const char *limit_s = NULL;
	struct opt opts[] = { { "limit", &limit_s, NULL }, { NULL, NULL, NULL } };
	struct store_sms_unmatched *rows = NULL;
	size_t nrows = 0;
	int64_t limit = 50;
	json_object *arr;
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl sms unmatched [--limit N] [--json]\n\n"
		       "Lists incoming SMS that matched no open SMS case (the sender's number had\n"
		       "none, or was not a phone number), newest first (default limit 50, at most\n"
		       "10000): when, from, to, Kannel's id and the text.\n");
		return 0;
	}
	if (r)
		return r;
	if (limit_s && (util_parse_int64(limit_s, &limit) < 0 || limit < 1 || limit > 10000))
		return usage_error("--limit must be from 1 to 10000");
	if (open_db(ctl) < 0)
		return 1;
	if (store_sms_unmatched_list(ctl->db, (size_t)limit, &rows, &nrows) < 0) {
		log_error("sms unmatched: %s", db_error(ctl->db));
		return 1;
	}
	arr = json_object_new_array();
	for (size_t i = 0; i < nrows; i++) {
		const struct store_sms_unmatched *m = &rows[i];
		json_object *j = json_object_new_object();
		char when[32];

		json_object_object_add(j, "receivedAt", json_object_new_int64(m->received_at));
		json_object_object_add(j, "from", json_object_new_string(m->from));
		json_object_object_add(j, "to", json_object_new_string(m->to));
		json_object_object_add(j, "kannelId",
				       m->kannel_id ? json_object_new_string(m->kannel_id) : NULL);
		json_object_object_add(j, "text", json_object_new_string(m->text));
		json_object_array_add(arr, j);
		if (ctl->json)
			continue;
		util_iso8601_ms(m->received_at, when);
		printf("--- %s from %s to %s (%s)\n%s\n", when, m->from, m->to,
		       m->kannel_id ? m->kannel_id : "-", m->text);
	}
	if (ctl->json)
		print_json(arr);
	json_object_put(arr);
	store_sms_unmatched_free(&rows, nrows);
	return 0;
}

static const struct ctl_verb verbs[] = {
	{ "optout", cmd_sms_optout },
	{ "unmatched", cmd_sms_unmatched },
	{ NULL, NULL },
};

const struct ctl_group ctl_group_sms = {
	"sms",
	"  sms optout list [--json]                 numbers that opted out of SMS (STOP)\n"
	"  sms optout clear NUMBER [--json]         lift a number's opt-out\n"
	"  sms unmatched [--limit N] [--json]       incoming SMS that matched no case\n",
	verbs,
};
