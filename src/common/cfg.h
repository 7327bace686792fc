/* cfg.h: the configuration: an INI file, OFFLOAD_<SECTION>_<KEY> overrides, *_file secrets. */
#ifndef OFFLOAD_CFG_H
#define OFFLOAD_CFG_H

#include <stdint.h>

struct cfg;

/* Maximum size of a configuration file and of a secret file. */
#define CFG_MAX_FILE (1024 * 1024)

/*
 * Loads the configuration. path is the -c argument or NULL; without it $OFFLOAD_CONFIG is
 * used, and without that the default path (SYSCONFDIR/offload/offload.conf), which may be
 * absent (then only the environment and defaults apply). A path that was named and cannot
 * be read is an error. Returns a handle the caller frees with cfg_free(), or NULL with
 * *error_r set to a static or cfg-owned message (valid until the next cfg_load call).
 */
struct cfg *cfg_load(const char *path, const char **error_r);

/* Parses INI text (for tests and cfg_load). name is used in error messages. */
struct cfg *cfg_parse(const char *text, size_t len, const char *name, const char **error_r);

void cfg_free(struct cfg **cfg);

/* The file that was read, or "(none)". Lives as long as cfg. */
const char *cfg_path(const struct cfg *cfg);

/*
 * The value of section.key: the environment variable OFFLOAD_<SECTION>_<KEY> (upper case)
 * when set, else the file's value, else def. The returned pointer lives as long as cfg
 * (or is def, or points into the environment).
 */
const char *cfg_get(const struct cfg *cfg, const char *section, const char *key, const char *def);

/*
 * Integer value within [min, max]. Returns 0 and sets *out (def when unset), or -1 with
 * *error_r naming the key and the rule (message owned by cfg, valid until the next error).
 */
int cfg_get_int(struct cfg *cfg, const char *section, const char *key, int64_t def,
		int64_t min, int64_t max, int64_t *out, const char **error_r);

/* Boolean: true/yes/on/1 or false/no/off/0. Same conventions as cfg_get_int. */
int cfg_get_bool(struct cfg *cfg, const char *section, const char *key, int def, int *out,
		 const char **error_r);

/*
 * A secret: section.key, or the contents of the file named by section.key_file (trailing
 * newline removed). Returns 0 and sets *out to a newly allocated string the caller frees
 * (NULL when neither is set), or -1 with *error_r set. Never logs the value.
 */
int cfg_get_secret(struct cfg *cfg, const char *section, const char *key, char **out,
		   const char **error_r);

#endif
