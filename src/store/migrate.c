/* migrate.c: numbered schema migrations, applied in order and recorded in schema_migrations. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"
#include "store/lease.h"
#include "store/migrate.h"

#define MIGRATE_MAX_FILE (4 * 1024 * 1024)

/* The migration lock: a named lease (src/store/lease.c), renewed before each file. A run
 * that dies leaves it until it expires; the next run waits for it at most LOCK_WAIT_MS. */
#define LOCK_NAME "offload_migrate"
#define LOCK_LEASE_MS (10 * 60 * 1000)
#define LOCK_WAIT_MS (60 * 1000)

static char migrate_error[1024];

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Migration files are NNN_name.sql: three digits, an underscore, a name. */
static int is_migration_name(const char *name)
{
	size_t len = strlen(name);

	if (len < 9 || strcmp(name + len - 4, ".sql") != 0)
		return 0;
	return isdigit((unsigned char)name[0]) && isdigit((unsigned char)name[1]) &&
	       isdigit((unsigned char)name[2]) && name[3] == '_';
}

static char *read_all(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "r");
	char *data;
	size_t len;

	if (!f)
		return NULL;
	data = xmalloc(MIGRATE_MAX_FILE + 1);
	len = fread(data, 1, MIGRATE_MAX_FILE + 1, f);
	if (ferror(f) || len > MIGRATE_MAX_FILE) {
		fclose(f);
		free(data);
		errno = EFBIG;
		return NULL;
	}
	fclose(f);
	data[len] = '\0';
	*len_r = len;
	return data;
}

/*
 * Runs the statements of one file. Statements end with ';' at the end of a line; lines
 * starting with "--" are comments. Our migrations keep to that shape on purpose, so that
 * no SQL lexer is needed here.
 */
static int apply_file(struct db *db, const char *name, char *sql, size_t len)
{
	struct buf stmt;
	char *line = sql, *end = sql + len;
	int rc = -1;

	buf_init(&stmt, MIGRATE_MAX_FILE);
	while (line < end) {
		char *eol = memchr(line, '\n', (size_t)(end - line));
		const char *t;
		size_t tlen;

		if (!eol)
			eol = end;
		util_trim(line, (size_t)(eol - line), &t, &tlen);
		if (tlen >= 2 && t[0] == '-' && t[1] == '-') {
			line = eol + 1;
			continue;
		}
		buf_append(&stmt, line, (size_t)(eol - line));
		buf_append(&stmt, "\n", 1);
		if (tlen > 0 && t[tlen - 1] == ';') {
			if (db_exec_text(db, stmt.data, stmt.len) < 0) {
				snprintf(migrate_error, sizeof migrate_error, "%s: %s", name,
					 db_error(db));
				goto out;
			}
			buf_reset(&stmt);
		}
		line = eol + 1;
	}
	/* A last statement without its ';' still runs; trailing blank lines do not. */
	{
		const char *rest;
		size_t rest_len;

		util_trim(stmt.data ? stmt.data : "", stmt.len, &rest, &rest_len);
		if (rest_len > 0 && db_exec_text(db, stmt.data, stmt.len) < 0) {
			snprintf(migrate_error, sizeof migrate_error, "%s: %s", name, db_error(db));
			goto out;
		}
	}
	rc = 0;
out:
	buf_free(&stmt);
	return rc;
}

/* Takes the migration lock, waiting up to LOCK_WAIT_MS for another run. 0, or -1 with
 * migrate_error naming the holder. */
static int take_lock(struct db *db, const char *owner)
{
	char holder[STORE_NAMED_LEASE_OWNER_MAX + 1] = "";
	int64_t expires = 0, deadline = util_now_ms() + LOCK_WAIT_MS;

	for (;;) {
		int64_t now = util_now_ms();
		int got = store_named_lease_take(db, LOCK_NAME, owner, now, now + LOCK_LEASE_MS,
						 holder, &expires);
		struct timespec pause = { 0, 250 * 1000 * 1000 };

		if (got < 0) {
			snprintf(migrate_error, sizeof migrate_error,
				 "could not take the migration lock: %s", db_error(db));
			return -1;
		}
		if (got == 1)
			return 0;
		if (now >= deadline)
			break;
		nanosleep(&pause, NULL);
	}
	snprintf(migrate_error, sizeof migrate_error,
		 "another offloadctl migrate holds the migration lock (owner %s, for %lld s more);"
		 " try again later, or once you know that run is gone: DELETE FROM named_leases"
		 " WHERE name = '" LOCK_NAME "'",
		 holder, (long long)((expires - util_now_ms()) / 1000));
	return -1;
}

/* Renews the lock before a file; -1 when it was lost (a run took longer than the lease). */
static int renew_lock(struct db *db, const char *owner)
{
	int64_t now = util_now_ms();
	int got = store_named_lease_take(db, LOCK_NAME, owner, now, now + LOCK_LEASE_MS, NULL, NULL);

	if (got == 1)
		return 0;
	snprintf(migrate_error, sizeof migrate_error, "%s the migration lock: %s",
		 got < 0 ? "could not renew" : "lost", got < 0 ? db_error(db) : "another run took it");
	return -1;
}

int migrate_run(struct db *db, const char *dir, int quiet, int *applied_r, const char **error_r)
{
	static const char create[] =
		"CREATE TABLE IF NOT EXISTS schema_migrations ("
		" version VARCHAR(255) NOT NULL PRIMARY KEY,"
		" applied_at BIGINT NOT NULL"
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
	static const char is_applied[] = "SELECT 1 FROM schema_migrations WHERE version = ?";
	static const char record[] =
		"INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)";
	struct db_res *res = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d = NULL;
	struct dirent *de;
	char owner[STORE_NAMED_LEASE_OWNER_MAX + 1];
	int locked = 0, rc = -1;

	*applied_r = 0;
	*error_r = migrate_error;
	migrate_error[0] = '\0';
	d = opendir(dir);
	if (!d) {
		snprintf(migrate_error, sizeof migrate_error, "%s: %s", dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_migration_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = xrealloc(names, cap * sizeof *names);
		}
		names[n++] = xstrdup(de->d_name);
	}
	if (n == 0) {
		snprintf(migrate_error, sizeof migrate_error, "%s: no NNN_name.sql files", dir);
		goto out;
	}
	qsort(names, n, sizeof *names, name_cmp);

	if (db_exec_text(db, store_named_lease_table_sql, strlen(store_named_lease_table_sql)) < 0) {
		snprintf(migrate_error, sizeof migrate_error, "named_leases: %s", db_error(db));
		goto out;
	}
	store_named_lease_owner(owner, sizeof owner);
	if (take_lock(db, owner) < 0)
		goto out;
	locked = 1;
	if (db_exec_text(db, create, sizeof create - 1) < 0) {
		snprintf(migrate_error, sizeof migrate_error, "schema_migrations: %s", db_error(db));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct db_arg args[2] = { DB_STR(names[i]), DB_INT(util_now_ms()) };
		char *path, *sql;
		size_t len;

		if (db_query(db, is_applied, args, 1, &res) < 0) {
			snprintf(migrate_error, sizeof migrate_error, "%s", db_error(db));
			goto out;
		}
		if (db_res_rows(res) > 0) {
			db_res_free(&res);
			continue;
		}
		db_res_free(&res);
		path = xasprintf("%s/%s", dir, names[i]);
		sql = read_all(path, &len);
		if (!sql) {
			snprintf(migrate_error, sizeof migrate_error, "%s: %s", path, strerror(errno));
			free(path);
			goto out;
		}
		free(path);
		if (renew_lock(db, owner) < 0) {
			free(sql);
			goto out;
		}
		/* DDL commits implicitly in MariaDB, so a file is atomic only when it holds no
		 * DDL; the record is written last, so a failed file is retried whole. */
		if (db_begin(db) < 0 || apply_file(db, names[i], sql, len) < 0 ||
		    db_query(db, record, args, 2, NULL) < 0 || db_commit(db) < 0) {
			if (migrate_error[0] == '\0' || strncmp(migrate_error, names[i], strlen(names[i])) != 0)
				snprintf(migrate_error, sizeof migrate_error, "%s: %s", names[i],
					 db_error(db));
			db_rollback(db);
			free(sql);
			goto out;
		}
		free(sql);
		(*applied_r)++;
		if (!quiet)
			printf("applied %s\n", names[i]);
	}
	rc = 0;
out:
	if (locked)
		store_named_lease_release(db, LOCK_NAME, owner);
	db_res_free(&res);
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
