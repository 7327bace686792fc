/* files.c: inbound mail on disk: the raw copy and unparsable mail, written durably (fsync) so
 * nothing acknowledged is lost in a crash. (The attachments of a matched message are in the
 * database since sql/009, so that every API host serves them.) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "mail/ingest-private.h"

/* Creates one directory with mode 0750 whatever the umask (an MTA may run us with 077,
 * and nginx must read attachments through the group), keeping the setgid bit the parent
 * passes on. 0 (also when it exists), or -1 with errno. */
static int make_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0750) < 0)
		return errno == EEXIST ? 0 : -1;
	/* Only when the umask took bits away: the kernel clears an inherited setgid bit on a
	 * chmod by a process outside the directory's group (the programs set umask 027). */
	if (stat(path, &st) < 0)
		return -1;
	if ((st.st_mode & 0777) != 0750 && chmod(path, 0750 | (st.st_mode & S_ISGID)) < 0)
		return -1;
	return 0;
}

/* mkdir -p; directories it creates get mode 0750. 0, or -1 with errno. */
static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (make_dir(tmp) < 0)
			return -1;
		*p = '/';
	}
	return make_dir(tmp);
}

/* Makes the directory entries of dir durable (a new name is not on disk before this). */
static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Creates path, which must not exist, holding data: mode 0640, fsynced. 0 or -1 (errno). */
static int write_new_file(const char *path, const void *data, size_t len)
{
	const char *p = data;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	int e;

	if (fd < 0)
		return -1;
	/* The umask must not decide who may read attachment bytes (nginx's group). */
	if (fchmod(fd, 0640) < 0)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(path);
	errno = e;
	return -1;
}

/*
 * Stores data as dir/name unless that file exists already: names are content hashes, so
 * an existing file holds the same bytes. Written to a temporary name and linked into
 * place, so a reader never sees a partial file. Sets *created_r when this call made it.
 */
int ingest_keep_file(const char *dir, const char *name, const void *data, size_t len,
		     int *created_r)
{
	char tmp[PATH_MAX], final[PATH_MAX], id[37];
	int e;

	*created_r = 0;
	util_uuid_v4(id);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/.tmp-%s", dir, id) >= sizeof tmp ||
	    (size_t)snprintf(final, sizeof final, "%s/%s", dir, name) >= sizeof final) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mkdir_p(dir) < 0 || write_new_file(tmp, data, len) < 0)
		return -1;
	if (link(tmp, final) == 0) {
		*created_r = 1;
	} else if (errno == EEXIST) {
		*created_r = 0;
	} else if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS) {
		/* A file system without hard links: rename, after checking for the name. */
		struct stat st;

		if (stat(final, &st) < 0) {
			if (rename(tmp, final) < 0)
				goto fail;
			*created_r = 1;
		}
	} else {
		goto fail;
	}
	unlink(tmp);
	if (fsync_dir(dir) < 0) {
		e = errno;
		if (*created_r)
			unlink(final);
		*created_r = 0;
		errno = e;
		return -1;
	}
	return 0;
fail:
	e = errno;
	unlink(tmp);
	errno = e;
	return -1;
}

void ingest_written_remove_raw(struct written *w)
{
	if (w->raw_path)
		unlink(w->raw_path);
	free(w->raw_path);
	w->raw_path = NULL;
}

void ingest_written_free(struct written *w)
{
	free(w->raw_path);
	w->raw_path = NULL;
}

/* Keeps mail we could not store under unparsed/<sha256>.eml. 0 or -1 (errno). */
int ingest_keep_unparsed(const struct ingest_settings *s, const char *raw, size_t len,
			 const char *sha)
{
	char dir[PATH_MAX], name[80];
	int created;

	if (len == 0)
		return 0; /* nothing to keep */
	if ((size_t)snprintf(dir, sizeof dir, "%s/unparsed", s->files_dir) >= sizeof dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(name, sizeof name, "%s.eml", sha);
	return ingest_keep_file(dir, name, raw, len, &created);
}
