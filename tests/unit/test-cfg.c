/* test-cfg.c: unit tests for the configuration reader (src/common/cfg.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cfg.h"
#include "test.h"

static struct cfg *parse(const char *text, const char **error_r)
{
	return cfg_parse(text, strlen(text), "test.conf", error_r);
}

/* Writes data to a new temporary file and returns its name (caller unlinks and frees). */
static char *temp_file(const char *data, size_t len)
{
	char *path = strdup("/tmp/offload-test-cfg-XXXXXX");
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror("temp file");
		abort();
	}
	close(fd);
	return path;
}

static void test_parse(void)
{
	static const char text[] = "# a comment\n"
				   "; another comment\n"
				   "\n"
				   "[database]\n"
				   "host = db.example.com\n"
				   "  port=3306  \n"
				   "Name = offload\n"
				   "empty =\n"
				   "\t# indented comment\n"
				   "[ mail ]\n"
				   "from = \"  Offload <noreply@example.com>  \"\n"
				   "hash = \"a # not a comment\"\n"
				   "quote = \"\n"
				   "equals = a=b=c\n"
				   "[API]\n"
				   "threads = 8\r\n"
				   "[database]\n"
				   "host = db2.example.com\n";
	const char *error = NULL;
	struct cfg *cfg;

	test_begin("cfg_parse: sections, keys, comments, quoted values");
	unsetenv("OFFLOAD_DATABASE_HOST");
	unsetenv("OFFLOAD_DATABASE_PORT");
	cfg = parse(text, &error);
	test_assert(cfg != NULL);
	if (!cfg) {
		fprintf(stderr, "  error: %s\n", error);
		test_end();
		return;
	}
	test_assert_str(cfg_path(cfg), "test.conf");
	/* A later value for the same key wins. */
	test_assert_str(cfg_get(cfg, "database", "host", NULL), "db2.example.com");
	test_assert_str(cfg_get(cfg, "database", "port", NULL), "3306");
	/* Key names are case-insensitive (stored lower case). */
	test_assert_str(cfg_get(cfg, "database", "name", NULL), "offload");
	test_assert_str(cfg_get(cfg, "database", "empty", "default"), "");
	test_assert_str(cfg_get(cfg, "mail", "from", NULL), "  Offload <noreply@example.com>  ");
	test_assert_str(cfg_get(cfg, "mail", "hash", NULL), "a # not a comment");
	/* A lone quote is not a quoted value. */
	test_assert_str(cfg_get(cfg, "mail", "quote", NULL), "\"");
	test_assert_str(cfg_get(cfg, "mail", "equals", NULL), "a=b=c");
	test_assert_str(cfg_get(cfg, "api", "threads", NULL), "8");
	test_assert_str(cfg_get(cfg, "database", "missing", "fallback"), "fallback");
	test_assert(cfg_get(cfg, "nosuch", "host", NULL) == NULL);
	/* Keys belong to their section. */
	test_assert(cfg_get(cfg, "mail", "host", NULL) == NULL);
	cfg_free(&cfg);
	test_assert(cfg == NULL);
	cfg_free(&cfg);
	test_end();

	test_begin("cfg_parse: empty text");
	cfg = parse("", &error);
	test_assert(cfg != NULL);
	if (cfg)
		test_assert(cfg_get(cfg, "a", "b", NULL) == NULL);
	cfg_free(&cfg);
	cfg = parse("\n\n# only comments\n", &error);
	test_assert(cfg != NULL);
	cfg_free(&cfg);
	test_end();
}

static void test_bad_lines(void)
{
	static const struct {
		const char *text;
		const char *error;
	} rows[] = {
		{ "key = value\n", "test.conf:1: expected [section] or key = value" },
		{ "[a]\nx = 1\njust words\n", "test.conf:3: expected [section] or key = value" },
		{ "# c\n\n[a\n", "test.conf:3: expected [section] or key = value" },
		{ "[]\n", "test.conf:1: expected [section] or key = value" },
		{ "[a b]\n", "test.conf:1: expected [section] or key = value" },
		{ "[a]\n= value\n", "test.conf:2: expected [section] or key = value" },
		{ "[a]\nbad-key = 1\n", "test.conf:2: expected [section] or key = value" },
		{ "[a]\nkey.x = 1\n", "test.conf:2: expected [section] or key = value" },
		{ "[a]\r\nok = 1\r\n\r\nno equals\r\n",
		  "test.conf:4: expected [section] or key = value" },
		{ "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
		  "test.conf:1: expected [section] or key = value" },
	};
	const char *error;
	struct cfg *cfg;

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char name[128];

		snprintf(name, sizeof name, "cfg_parse: bad line (%zu)", i);
		test_begin(name);
		error = NULL;
		cfg = parse(rows[i].text, &error);
		test_assert(cfg == NULL);
		test_assert_str(error, rows[i].error);
		cfg_free(&cfg);
		test_end();
	}

	test_begin("cfg_parse: a NUL byte in a line");
	error = NULL;
	cfg = cfg_parse("[a]\nk = v\0x\n", 12, "nul.conf", &error);
	test_assert(cfg == NULL);
	test_assert_str(error, "nul.conf:2: expected [section] or key = value");
	cfg_free(&cfg);
	test_end();
}

static void test_env_override(void)
{
	const char *error = NULL;
	struct cfg *cfg =
		parse("[database]\nhost = file-host\nport = 3306\n[api]\nthreads = 4\n", &error);

	test_begin("cfg_get: OFFLOAD_<SECTION>_<KEY> wins over the file");
	test_assert(cfg != NULL);
	if (!cfg) {
		test_end();
		return;
	}
	setenv("OFFLOAD_DATABASE_HOST", "env-host", 1);
	setenv("OFFLOAD_API_LISTEN", "127.0.0.1:9000", 1);
	test_assert_str(cfg_get(cfg, "database", "host", NULL), "env-host");
	test_assert_str(cfg_get(cfg, "database", "port", NULL), "3306");
	/* Set only in the environment. */
	test_assert_str(cfg_get(cfg, "api", "listen", "default"), "127.0.0.1:9000");
	unsetenv("OFFLOAD_DATABASE_HOST");
	unsetenv("OFFLOAD_API_LISTEN");
	test_assert_str(cfg_get(cfg, "database", "host", NULL), "file-host");
	test_assert_str(cfg_get(cfg, "api", "listen", "default"), "default");
	test_end();

	test_begin("cfg_get_int: the environment override is checked like the file value");
	{
		int64_t n = 0;

		setenv("OFFLOAD_API_THREADS", "16", 1);
		test_assert(cfg_get_int(cfg, "api", "threads", 2, 1, 64, &n, &error) == 0);
		test_assert(n == 16);
		setenv("OFFLOAD_API_THREADS", "sixteen", 1);
		test_assert(cfg_get_int(cfg, "api", "threads", 2, 1, 64, &n, &error) == -1);
		test_assert_str(error, "[api] threads: must be an integer from 1 to 64");
		unsetenv("OFFLOAD_API_THREADS");
		test_assert(cfg_get_int(cfg, "api", "threads", 2, 1, 64, &n, &error) == 0);
		test_assert(n == 4);
	}
	test_end();
	cfg_free(&cfg);
}

static void test_int(void)
{
	const char *error = NULL;
	struct cfg *cfg =
		parse("[n]\nok = 42\nneg = -5\nlow = 0\nhigh = 101\nword = ten\nspace = \"1 \"\n"
		      "plus = +1\nhuge = 99999999999999999999\nempty =\nfrac = 1.5\n"
		      "max = 9223372036854775807\n",
		      &error);
	static const struct {
		const char *key;
		int64_t min, max;
		int ok;
		int64_t want;
	} rows[] = {
		{ "ok", 0, 100, 1, 42 },
		{ "neg", -10, 10, 1, -5 },
		{ "neg", 0, 10, 0, 0 },
		{ "low", 0, 100, 1, 0 },
		{ "low", 1, 100, 0, 0 },
		{ "high", 0, 100, 0, 0 },
		{ "high", 0, 101, 1, 101 },
		{ "word", 0, 100, 0, 0 },
		{ "space", 0, 100, 0, 0 },
		{ "plus", 0, 100, 0, 0 },
		{ "huge", 0, INT64_MAX, 0, 0 },
		{ "frac", 0, 100, 0, 0 },
		{ "max", 0, INT64_MAX, 1, INT64_MAX },
		{ "empty", 0, 100, 1, 7 },   /* empty means unset: the default */
		{ "missing", 0, 100, 1, 7 }, /* the default */
	};

	test_begin("cfg_get_int: values, ranges and errors");
	test_assert(cfg != NULL);
	if (!cfg) {
		test_end();
		return;
	}
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int64_t n = -999;
		int rc;

		error = NULL;
		rc = cfg_get_int(cfg, "n", rows[i].key, 7, rows[i].min, rows[i].max, &n, &error);
		if (rows[i].ok) {
			test_assert(rc == 0);
			test_assert(n == rows[i].want);
			if (rc != 0 || n != rows[i].want)
				fprintf(stderr, "  row %zu (%s): rc %d n %lld\n", i, rows[i].key,
					rc, (long long)n);
		} else {
			char want[128];

			snprintf(want, sizeof want, "[n] %s: must be an integer from %lld to %lld",
				 rows[i].key, (long long)rows[i].min, (long long)rows[i].max);
			test_assert(rc == -1);
			test_assert_str(error, want);
		}
	}
	test_end();
	cfg_free(&cfg);
}

static void test_bool(void)
{
	const char *error = NULL;
	struct cfg *cfg = parse("[b]\nt1 = true\nt2 = YES\nt3 = on\nt4 = 1\nf1 = false\nf2 = No\n"
				"f3 = OFF\nf4 = 0\nbad = maybe\nbad2 = 2\nempty =\n",
				&error);
	static const struct {
		const char *key;
		int rc, want;
	} rows[] = {
		{ "t1", 0, 1 },   { "t2", 0, 1 },    { "t3", 0, 1 },    { "t4", 0, 1 },
		{ "f1", 0, 0 },   { "f2", 0, 0 },    { "f3", 0, 0 },    { "f4", 0, 0 },
		{ "bad", -1, 0 }, { "bad2", -1, 0 }, { "empty", 0, 1 }, { "missing", 0, 1 },
	};

	test_begin("cfg_get_bool: spellings, defaults and errors");
	test_assert(cfg != NULL);
	if (!cfg) {
		test_end();
		return;
	}
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int v = -1;
		int rc = cfg_get_bool(cfg, "b", rows[i].key, 1, &v, &error);

		test_assert(rc == rows[i].rc);
		if (rc == 0)
			test_assert(v == rows[i].want);
	}
	test_assert(cfg_get_bool(cfg, "b", "bad", 1, &(int){ 0 }, &error) == -1);
	test_assert_str(error, "[b] bad: must be true or false");
	/* The default is returned as given. */
	{
		int v = -1;

		test_assert(cfg_get_bool(cfg, "b", "missing", 0, &v, &error) == 0 && v == 0);
	}
	test_end();
	cfg_free(&cfg);
}

static void test_secret(void)
{
	const char *error = NULL;
	char *file_nl = temp_file("s3cret-from-file\n", 17);
	char *file_crlf = temp_file("with-crlf\r\n", 11);
	char *file_plain = temp_file("no newline", 10);
	char *text = NULL, *secret = NULL;
	struct cfg *cfg;
	size_t n;

	n = (size_t)snprintf(NULL, 0,
			     "[s]\ninline = inline-secret\nfromfile_file = %s\ncrlf_file = %s\n"
			     "plain_file = %s\nboth = inline-wins\nboth_file = %s\n"
			     "missing_file = /nonexistent/offload/secret\ndir_file = /tmp\n",
			     file_nl, file_crlf, file_plain, file_nl);
	text = malloc(n + 1);
	snprintf(text, n + 1,
		 "[s]\ninline = inline-secret\nfromfile_file = %s\ncrlf_file = %s\n"
		 "plain_file = %s\nboth = inline-wins\nboth_file = %s\n"
		 "missing_file = /nonexistent/offload/secret\ndir_file = /tmp\n",
		 file_nl, file_crlf, file_plain, file_nl);
	cfg = parse(text, &error);

	test_begin("cfg_get_secret: from the value and from KEY_file");
	test_assert(cfg != NULL);
	if (!cfg)
		goto out;
	test_assert(cfg_get_secret(cfg, "s", "inline", &secret, &error) == 0);
	test_assert_str(secret, "inline-secret");
	free(secret);
	test_assert(cfg_get_secret(cfg, "s", "fromfile", &secret, &error) == 0);
	test_assert_str(secret, "s3cret-from-file");
	free(secret);
	test_assert(cfg_get_secret(cfg, "s", "crlf", &secret, &error) == 0);
	test_assert_str(secret, "with-crlf");
	free(secret);
	test_assert(cfg_get_secret(cfg, "s", "plain", &secret, &error) == 0);
	test_assert_str(secret, "no newline");
	free(secret);
	test_assert(cfg_get_secret(cfg, "s", "both", &secret, &error) == 0);
	test_assert_str(secret, "inline-wins");
	free(secret);
	secret = (char *)"untouched";
	test_assert(cfg_get_secret(cfg, "s", "unset", &secret, &error) == 0);
	test_assert(secret == NULL);
	test_end();

	test_begin("cfg_get_secret: KEY_file from the environment");
	setenv("OFFLOAD_S_ENVONLY_FILE", file_nl, 1);
	test_assert(cfg_get_secret(cfg, "s", "envonly", &secret, &error) == 0);
	test_assert_str(secret, "s3cret-from-file");
	free(secret);
	unsetenv("OFFLOAD_S_ENVONLY_FILE");
	setenv("OFFLOAD_S_INLINE", "env-secret", 1);
	test_assert(cfg_get_secret(cfg, "s", "inline", &secret, &error) == 0);
	test_assert_str(secret, "env-secret");
	free(secret);
	unsetenv("OFFLOAD_S_INLINE");
	test_end();

	test_begin("cfg_get_secret: a named file that cannot be read");
	secret = NULL;
	error = NULL;
	test_assert(cfg_get_secret(cfg, "s", "missing", &secret, &error) == -1);
	test_assert(secret == NULL);
	test_assert(error && strncmp(error, "[s] missing_file: ", 18) == 0);
	test_assert(error && strstr(error, "/nonexistent/offload/secret") != NULL);
	test_assert(error && strstr(error, "s3cret") == NULL);
	error = NULL;
	test_assert(cfg_get_secret(cfg, "s", "dir", &secret, &error) == -1);
	test_assert(error && strstr(error, "not a regular file") != NULL);
	test_end();
	cfg_free(&cfg);
out:
	unlink(file_nl);
	unlink(file_crlf);
	unlink(file_plain);
	free(file_nl);
	free(file_crlf);
	free(file_plain);
	free(text);
}

static void test_load(void)
{
	const char *error = NULL;
	char *path = temp_file("[api]\nthreads = 3\n", 18);
	struct cfg *cfg;

	test_begin("cfg_load: a named file");
	cfg = cfg_load(path, &error);
	test_assert(cfg != NULL);
	if (cfg) {
		test_assert_str(cfg_path(cfg), path);
		test_assert_str(cfg_get(cfg, "api", "threads", NULL), "3");
	}
	cfg_free(&cfg);
	test_end();

	test_begin("cfg_load: $OFFLOAD_CONFIG when no path is given");
	setenv("OFFLOAD_CONFIG", path, 1);
	cfg = cfg_load(NULL, &error);
	test_assert(cfg != NULL);
	if (cfg)
		test_assert_str(cfg_path(cfg), path);
	cfg_free(&cfg);
	unsetenv("OFFLOAD_CONFIG");
	test_end();

	test_begin("cfg_load: a missing named file is an error");
	error = NULL;
	cfg = cfg_load("/nonexistent/offload.conf", &error);
	test_assert(cfg == NULL);
	test_assert(error && strstr(error, "/nonexistent/offload.conf") != NULL);
	setenv("OFFLOAD_CONFIG", "/nonexistent/env.conf", 1);
	error = NULL;
	cfg = cfg_load(NULL, &error);
	test_assert(cfg == NULL);
	test_assert(error && strstr(error, "/nonexistent/env.conf") != NULL);
	unsetenv("OFFLOAD_CONFIG");
	test_end();

	test_begin("cfg_load: a directory is not a configuration file");
	error = NULL;
	cfg = cfg_load("/tmp", &error);
	test_assert(cfg == NULL);
	test_assert(error && strstr(error, "not a regular file") != NULL);
	test_end();

	test_begin("cfg_load: a bad line names the file and the line");
	unlink(path);
	free(path);
	path = temp_file("[api]\nthreads = 3\noops\n", 23);
	error = NULL;
	cfg = cfg_load(path, &error);
	test_assert(cfg == NULL);
	{
		char want[128];

		snprintf(want, sizeof want, "%s:3: expected [section] or key = value", path);
		test_assert_str(error, want);
	}
	test_end();
	unlink(path);
	free(path);
}

int main(void)
{
	test_parse();
	test_bad_lines();
	test_env_override();
	test_int();
	test_bool();
	test_secret();
	test_load();
	return test_done();
}
