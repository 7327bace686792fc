/* migrate.c: numbered schema migrations, applied in order and recorded in schema_migrations. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"
#include "store/migrate.h"

#define MIGRATE_MAX_FILE (4 * 1024 * 1024)

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

int migrate_run(struct db *db, const char *dir, int quiet, int *applied_r, const char **error_r)
{
	static const char create[] =
		"CREATE TABLE IF NOT EXISTS schema_migrations ("
		" version VARCHAR(255) NOT NULL PRIMARY KEY,"
		" applied_at BIGINT NOT NULL"
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
	static const char get_lock[] = "SELECT GET_LOCK('offload_migrate', 60)";
	static const char release_lock[] = "SELECT RELEASE_LOCK('offload_migrate')";
	static const char is_applied[] = "SELECT 1 FROM schema_migrations WHERE version = ?";
	static const char record[] =
		"INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)";
	struct db_res *res = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d = NULL;
	struct dirent *de;
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

	if (db_query(db, get_lock, NULL, 0, &res) < 0 || db_res_int(res, 0, 0) != 1) {
		snprintf(migrate_error, sizeof migrate_error,
			 "could not take the migration lock: %s", db_error(db));
		goto out;
	}
	locked = 1;
	db_res_free(&res);
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
	if (locked && db_query(db, release_lock, NULL, 0, &res) == 0)
		db_res_free(&res);
	db_res_free(&res);
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
