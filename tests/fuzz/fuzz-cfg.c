/* fuzz-cfg.c: libFuzzer target: INI text through cfg_parse and the typed getters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/log.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz-cfg");
	log_set_level(LOG_LEVEL_ERROR);
	/* No OFFLOAD_<SECTION>_<KEY> of the caller may stand in for the fuzzed text. */
	for (char **e = environ; e && *e;) {
		if (strncmp(*e, "OFFLOAD_", 8) == 0) {
			char name[256];
			size_t n = strcspn(*e, "=");

			if (n >= sizeof name)
				n = sizeof name - 1;
			memcpy(name, *e, n);
			name[n] = '\0';
			unsetenv(name);
			e = environ;
			continue;
		}
		e++;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[][2] = {
		{ "database", "host" }, { "database", "port" }, { "api", "threads" },
		{ "mail", "smtp_url" }, { "worker", "concurrency" }, { "webhook", "loopback_only" },
		{ "a", "b" }, { "", "" },
	};
	const char *err = NULL, *v;
	struct cfg *cfg;
	int64_t n;
	int b;

	cfg = cfg_parse((const char *)data, size, "fuzz.conf", &err);
	if (!cfg) {
		fuzz_check(err != NULL && *err != '\0');
		return 0;
	}
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		v = cfg_get(cfg, keys[i][0], keys[i][1], "default");
		fuzz_check(v != NULL);
		(void)strlen(v);
		err = NULL;
		if (cfg_get_int(cfg, keys[i][0], keys[i][1], 7, -5, 1000, &n, &err) == 0)
			fuzz_check(n >= -5 && n <= 1000);
		else
			fuzz_check(err != NULL);
		err = NULL;
		if (cfg_get_bool(cfg, keys[i][0], keys[i][1], 1, &b, &err) == 0)
			fuzz_check(b == 0 || b == 1);
		else
			fuzz_check(err != NULL);
	}
	/* cfg_get_secret is left out: a fuzzed *_file key would make it read any file. */
	cfg_free(&cfg);
	fuzz_check(cfg == NULL);
	return 0;
}
