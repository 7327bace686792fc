/* test-types.c: the names of case statuses and event types (src/store/types.c). */
#include <stdio.h>
#include <string.h>

#include "store/types.h"
#include "test.h"

static void test_status_names(void)
{
	enum store_case_status s;

	test_begin("types: every status has a name that parses back to it");
	for (int i = 0; i < CASE_STATUS_COUNT; i++) {
		const char *name = store_case_status_name((enum store_case_status)i);

		test_assert(name && strcmp(name, "?") != 0);
		test_assert(store_case_status_parse(name, &s) == 0 && (int)s == i);
	}
	test_assert_str(store_case_status_name(CASE_STATUS_COUNT), "?");
	test_assert(store_case_status_parse("running", &s) < 0);
	test_assert(store_case_status_parse("", &s) < 0);
	test_assert(store_case_status_parse(NULL, &s) < 0);
	test_assert(store_case_status_parse("RUNNING ", &s) < 0);
	test_end();
}

static void test_status_list(void)
{
	char out[128], small[10];

	test_begin("types: the status list for messages");
	store_case_status_list(out, sizeof out);
	test_assert_str(out, "CREATED, RUNNING, INPUT_NEEDED, COMPLETED or FAILED");
	test_end();

	test_begin("types: the status list is cut to its buffer");
	memset(small, 'x', sizeof small);
	store_case_status_list(small, sizeof small);
	test_assert_str(small, "CREATED, ");
	small[0] = 'x';
	store_case_status_list(small, 0);
	test_assert(small[0] == 'x');
	store_case_status_list(small, 1);
	test_assert_str(small, "");
	test_end();
}

static void test_event_names(void)
{
	enum store_event_type t;

	test_begin("types: every event type has a name that parses back to it");
	for (int i = 0; i < EVENT_TYPE_COUNT; i++) {
		const char *name = store_event_type_name((enum store_event_type)i);

		test_assert(name && strcmp(name, "?") != 0);
		test_assert(store_event_type_parse(name, &t) == 0 && (int)t == i);
	}
	test_assert(store_event_type_parse("NO_SUCH_EVENT", &t) < 0);
	test_end();
}

int main(void)
{
	test_status_names();
	test_status_list();
	test_event_names();
	return test_done();
}
