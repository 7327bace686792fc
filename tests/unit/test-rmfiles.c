/* test-rmfiles.c: removing a deleted case's files: what is removed, what is refused. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rmfiles.h"
#include "test.h"

static char base[] = "/tmp/test-rmfiles.XXXXXX";

static void put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", base, rel);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int exists(const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", base, rel);
	return lstat(path, &st) == 0;
}

static void mk(const char *rel)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", base, rel);
	mkdir(path, 0750);
}

static void test_one(void)
{
	const char *err = NULL;

	test_begin("rmfiles: one file named by a row");
	mk("case1");
	put("case1/a", "x");
	put("outside", "keep");
	test_assert(rmfiles_one(base, "case1/a", &err) == 1);
	test_assert(!exists("case1/a"));
	/* already gone: nothing to do, no error */
	test_assert(rmfiles_one(base, "case1/a", &err) == 0);
	/* paths that would leave the files directory are refused and touch nothing */
	test_assert(rmfiles_one(base, "../outside", &err) == 0);
	test_assert(rmfiles_one(base, "case1/../outside", &err) == 0);
	test_assert(rmfiles_one(base, "/etc/passwd", &err) == 0);
	test_assert(rmfiles_one(base, "", &err) == 0);
	test_assert(rmfiles_one("", "outside", &err) == 0);
	test_assert(exists("outside"));
	/* a name with dots that does not climb is fine */
	put("case1/..a", "x");
	test_assert(rmfiles_one(base, "case1/..a", &err) == 1);
	test_end();
}

static void test_dir(void)
{
	const char *err = NULL;
	int64_t n = 0;
	char link[512];

	test_begin("rmfiles: a case's directory and what is in it");
	mk("case2");
	mk("case2/sub");
	put("case2/a", "1");
	put("case2/b", "2");
	put("case2/sub/c", "3");
	put("victim", "keep");
	/* a symbolic link is removed, never followed */
	snprintf(link, sizeof link, "%s/case2/link", base);
	test_assert(symlink("../victim", link) == 0);
	test_assert(rmfiles_dir(base, "case2", &n, &err) == 0);
	test_assert(n == 4);
	test_assert(!exists("case2"));
	test_assert(exists("victim"));
	/* missing: nothing to do */
	n = 0;
	test_assert(rmfiles_dir(base, "case2", &n, &err) == 0 && n == 0);
	/* names that are not one component are refused */
	test_assert(rmfiles_dir(base, "..", &n, &err) < 0);
	test_assert(rmfiles_dir(base, "a/b", &n, &err) < 0);
	test_assert(rmfiles_dir(base, "", &n, &err) < 0);
	test_assert(exists("victim"));
	/* a name that is a symbolic link to a directory is not followed */
	mk("realdir");
	put("realdir/f", "keep");
	snprintf(link, sizeof link, "%s/case3", base);
	test_assert(symlink("realdir", link) == 0);
	test_assert(rmfiles_dir(base, "case3", &n, &err) < 0);
	test_assert(exists("realdir/f"));
	test_end();
}

static void test_deep(void)
{
	const char *err = NULL;
	int64_t n = 0;

	test_begin("rmfiles: nesting deeper than 4 levels is left and reported");
	mk("case4");
	mk("case4/1");
	mk("case4/1/2");
	mk("case4/1/2/3");
	mk("case4/1/2/3/4");
	mk("case4/1/2/3/4/5");
	put("case4/1/2/3/4/5/f", "x");
	put("case4/top", "x");
	test_assert(rmfiles_dir(base, "case4", &n, &err) < 0);
	test_assert(err != NULL);
	test_assert(!exists("case4/top"));
	test_assert(exists("case4/1/2/3/4/5/f"));
	test_end();
}

int main(void)
{
	int rc;

	log_init("test-rmfiles");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	test_one();
	test_dir();
	test_deep();
	rc = test_done();
	{
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", base);
	}
	return rc;
}
