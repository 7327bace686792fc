/* test.h: a tiny unit test harness that counts failures and keeps going (Dovecot's model). */
#ifndef OFFLOAD_TEST_H
#define OFFLOAD_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;
static const char *test_name = "";
static int test_case_failed;

static inline void test_begin(const char *name)
{
	test_name = name;
	test_case_failed = 0;
}

#define test_assert(expr) \
	do { \
		if (!(expr)) { \
			fprintf(stderr, "FAIL %s: %s:%d: %s\n", test_name, __FILE__, __LINE__, #expr); \
			test_case_failed = 1; \
		} \
	} while (0)

#define test_assert_str(got, want) \
	do { \
		const char *g_ = (got), *w_ = (want); \
		if (!g_ || !w_ || strcmp(g_, w_) != 0) { \
			fprintf(stderr, "FAIL %s: %s:%d: got \"%s\", want \"%s\"\n", test_name, \
				__FILE__, __LINE__, g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
			test_case_failed = 1; \
		} \
	} while (0)

static inline void test_end(void)
{
	if (test_case_failed) {
		test_failed++;
		printf("not ok - %s\n", test_name);
	} else {
		test_passed++;
		printf("ok - %s\n", test_name);
	}
}

/* Prints the summary line tests/run-all reads; the exit status says whether all passed. */
static inline int test_done(void)
{
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}

#endif
