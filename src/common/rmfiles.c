/* rmfiles.c: unlinking the files of a deleted case; errors are logged with the path only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rmfiles.h"

#define RMFILES_DEPTH 4

/* A relative path without "..": it stays under the files directory. */
static int rel_is_safe(const char *rel)
{
	const char *p = rel;

	if (!*rel || *rel == '/')
		return 0;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

int rmfiles_one(const char *base, const char *rel, const char **error_r)
{
	char path[4096];

	if (!rel_is_safe(rel) || !*base) {
		log_warn("not removing '%s': not a path inside the files directory", rel);
		return 0;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/%s", base, rel) >= sizeof path) {
		*error_r = "a file path is too long";
		return -1;
	}
	if (unlink(path) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	log_warn("removing %s: %s", path, strerror(errno));
	*error_r = "a file of the case could not be removed (see the log)";
	return -1;
}

/* Empties the directory open at fd (consumed) and counts the files; depth limits recursion. */
static int empty_dir(int fd, const char *shown, int depth, int64_t *n_r, const char **error_r)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;
	int rc = 0;

	if (!d) {
		close(fd);
		log_warn("reading %s: %s", shown, strerror(errno));
		*error_r = "a directory of the case could not be read (see the log)";
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (S_ISDIR(st.st_mode)) {
			int sub;

			if (depth <= 0) {
				log_warn("not removing %s/…/%s: nested more than %d levels deep", shown,
					 e->d_name, RMFILES_DEPTH);
				rc = -1;
				*error_r = "a directory of the case is nested too deep (see the log)";
				continue;
			}
			sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (sub < 0) {
				log_warn("opening %s/%s: %s", shown, e->d_name, strerror(errno));
				*error_r = "a directory of the case could not be opened (see the log)";
				rc = -1;
				continue;
			}
			if (empty_dir(sub, shown, depth - 1, n_r, error_r) < 0) {
				rc = -1;
				continue;
			}
			if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
				log_warn("removing %s/%s: %s", shown, e->d_name, strerror(errno));
				*error_r = "a directory of the case could not be removed (see the log)";
				rc = -1;
			}
			continue;
		}
		if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
			(*n_r)++;
		} else if (errno != ENOENT) {
			log_warn("removing %s/%s: %s", shown, e->d_name, strerror(errno));
			*error_r = "a file of the case could not be removed (see the log)";
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

int rmfiles_dir(const char *base, const char *name, int64_t *n_r, const char **error_r)
{
	char path[4096];
	int fd;

	if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		*error_r = "not a directory name";
		return -1;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/%s", base, name) >= sizeof path) {
		*error_r = "a file path is too long";
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		log_warn("opening %s: %s", path, strerror(errno));
		*error_r = "a directory of the case could not be opened (see the log)";
		return -1;
	}
	if (empty_dir(fd, path, RMFILES_DEPTH, n_r, error_r) < 0)
		return -1;
	if (rmdir(path) < 0 && errno != ENOENT) {
		log_warn("removing %s: %s", path, strerror(errno));
		*error_r = "a directory of the case could not be removed (see the log)";
		return -1;
	}
	return 0;
}
