/* cfg.c: INI configuration with environment overrides and secrets read from files. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/util.h"
#include "common/xalloc.h"

#define CFG_MAX_NAME 64

struct cfg_entry {
	char *section;
	char *key;
	char *value;
};

struct cfg {
	char *path;
	struct cfg_entry *entries;
	size_t n, cap;
	char error[512];
};

static char static_error[512];

static int read_file(const char *path, char **out, size_t *len_r, const char **error_r)
{
	FILE *f = NULL;
	char *data = NULL;
	size_t len = 0;
	struct stat st;
	int rc = -1;

	f = fopen(path, "r");
	if (!f) {
		snprintf(static_error, sizeof static_error, "%s: %s", path, strerror(errno));
		*error_r = static_error;
		goto out;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(static_error, sizeof static_error, "%s: not a regular file", path);
		*error_r = static_error;
		goto out;
	}
	if (st.st_size > CFG_MAX_FILE) {
		snprintf(static_error, sizeof static_error, "%s: larger than %d bytes", path,
			 CFG_MAX_FILE);
		*error_r = static_error;
		goto out;
	}
	data = xmalloc((size_t)st.st_size + 1);
	len = fread(data, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		snprintf(static_error, sizeof static_error, "%s: read error", path);
		*error_r = static_error;
		goto out;
	}
	data[len] = '\0';
	*out = data;
	*len_r = len;
	data = NULL;
	rc = 0;
out:
	if (f)
		fclose(f);
	free(data);
	return rc;
}

static int valid_name(const char *s, size_t len)
{
	if (len == 0 || len > CFG_MAX_NAME)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

static void cfg_set(struct cfg *cfg, const char *section, const char *key, size_t key_len,
		    const char *value, size_t value_len)
{
	for (size_t i = 0; i < cfg->n; i++) {
		struct cfg_entry *e = &cfg->entries[i];

		if (strcmp(e->section, section) == 0 && strlen(e->key) == key_len &&
		    strncmp(e->key, key, key_len) == 0) {
			free(e->value);
			e->value = xstrndup(value, value_len);
			return;
		}
	}
	if (cfg->n == cfg->cap) {
		cfg->cap = cfg->cap ? cfg->cap * 2 : 32;
		cfg->entries = xrealloc(cfg->entries, cfg->cap * sizeof *cfg->entries);
	}
	cfg->entries[cfg->n].section = xstrdup(section);
	cfg->entries[cfg->n].key = xstrndup(key, key_len);
	cfg->entries[cfg->n].value = xstrndup(value, value_len);
	for (char *p = cfg->entries[cfg->n].key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	cfg->n++;
}

struct cfg *cfg_parse(const char *text, size_t len, const char *name, const char **error_r)
{
	struct cfg *cfg = xcalloc(1, sizeof *cfg);
	char section[CFG_MAX_NAME + 1] = "";
	const char *p = text, *end = text + len;
	int lineno = 0;

	cfg->path = xstrdup(name);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line, *eq;
		size_t line_len;

		if (!eol)
			eol = end;
		lineno++;
		util_trim(p, (size_t)(eol - p), &line, &line_len);
		p = eol + 1;
		if (line_len == 0 || line[0] == '#' || line[0] == ';')
			continue;
		if (memchr(line, '\0', line_len))
			goto bad;
		if (line[0] == '[') {
			const char *name_start;
			size_t name_len;

			if (line[line_len - 1] != ']')
				goto bad;
			util_trim(line + 1, line_len - 2, &name_start, &name_len);
			if (!valid_name(name_start, name_len))
				goto bad;
			for (size_t i = 0; i < name_len; i++)
				section[i] = (char)tolower((unsigned char)name_start[i]);
			section[name_len] = '\0';
			continue;
		}
		eq = memchr(line, '=', line_len);
		if (!eq || section[0] == '\0')
			goto bad;
		{
			const char *k, *v;
			size_t klen, vlen;

			util_trim(line, (size_t)(eq - line), &k, &klen);
			util_trim(eq + 1, line_len - (size_t)(eq + 1 - line), &v, &vlen);
			if (!valid_name(k, klen))
				goto bad;
			/* A value may be quoted to keep leading or trailing spaces or a '#'. */
			if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
				v++;
				vlen -= 2;
			}
			cfg_set(cfg, section, k, klen, v, vlen);
		}
		continue;
bad:
		snprintf(static_error, sizeof static_error,
			 "%s:%d: expected [section] or key = value", name, lineno);
		*error_r = static_error;
		cfg_free(&cfg);
		return NULL;
	}
	return cfg;
}

struct cfg *cfg_load(const char *path, const char **error_r)
{
	static const char default_path[] = SYSCONFDIR "/offload/offload.conf";
	char *text = NULL;
	size_t len = 0;
	struct cfg *cfg;

	if (!path || !*path)
		path = getenv("OFFLOAD_CONFIG");
	if (!path || !*path) {
		if (access(default_path, F_OK) != 0) {
			cfg = cfg_parse("", 0, "(none)", error_r);
			return cfg;
		}
		path = default_path;
	}
	if (read_file(path, &text, &len, error_r) < 0)
		return NULL;
	cfg = cfg_parse(text, len, path, error_r);
	free(text);
	return cfg;
}

void cfg_free(struct cfg **cfgp)
{
	struct cfg *cfg = *cfgp;

	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n; i++) {
		free(cfg->entries[i].section);
		free(cfg->entries[i].key);
		free(cfg->entries[i].value);
	}
	free(cfg->entries);
	free(cfg->path);
	free(cfg);
	*cfgp = NULL;
}

const char *cfg_path(const struct cfg *cfg)
{
	return cfg->path;
}

const char *cfg_get(const struct cfg *cfg, const char *section, const char *key, const char *def)
{
	char env[2 * CFG_MAX_NAME + 16];
	const char *v;
	size_t n;

	n = (size_t)snprintf(env, sizeof env, "OFFLOAD_%s_%s", section, key);
	if (n < sizeof env) {
		for (char *p = env; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		v = getenv(env);
		if (v)
			return v;
	}
	for (size_t i = 0; i < cfg->n; i++)
		if (strcmp(cfg->entries[i].section, section) == 0 &&
		    strcmp(cfg->entries[i].key, key) == 0)
			return cfg->entries[i].value;
	return def;
}

int cfg_get_int(struct cfg *cfg, const char *section, const char *key, int64_t def,
		int64_t min, int64_t max, int64_t *out, const char **error_r)
{
	const char *v = cfg_get(cfg, section, key, NULL);
	int64_t n;

	if (!v || !*v) {
		*out = def;
		return 0;
	}
	if (util_parse_int64(v, &n) < 0 || n < min || n > max) {
		snprintf(cfg->error, sizeof cfg->error,
			 "[%s] %s: must be an integer from %lld to %lld", section, key,
			 (long long)min, (long long)max);
		*error_r = cfg->error;
		return -1;
	}
	*out = n;
	return 0;
}

int cfg_get_bool(struct cfg *cfg, const char *section, const char *key, int def, int *out,
		 const char **error_r)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	const char *v = cfg_get(cfg, section, key, NULL);

	if (!v || !*v) {
		*out = def;
		return 0;
	}
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	snprintf(cfg->error, sizeof cfg->error, "[%s] %s: must be true or false", section, key);
	*error_r = cfg->error;
	return -1;
}

int cfg_get_secret(struct cfg *cfg, const char *section, const char *key, char **out,
		   const char **error_r)
{
	char file_key[CFG_MAX_NAME + 8];
	const char *v, *file;
	char *text = NULL;
	size_t len = 0;

	*out = NULL;
	v = cfg_get(cfg, section, key, NULL);
	if (v && *v) {
		*out = xstrdup(v);
		return 0;
	}
	snprintf(file_key, sizeof file_key, "%s_file", key);
	file = cfg_get(cfg, section, file_key, NULL);
	if (!file || !*file)
		return 0;
	if (read_file(file, &text, &len, error_r) < 0) {
		snprintf(cfg->error, sizeof cfg->error, "[%s] %s: %s", section, file_key, *error_r);
		*error_r = cfg->error;
		return -1;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	*out = text;
	return 0;
}
