/* db.c: MariaDB access through prepared statements cached per connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"

#define DB_MAX_STMTS 96
/* MariaDB's own limit on the placeholders of one statement. */
#define DB_MAX_PARAMS 65535
#define DB_FIRST_BUF 256

struct db_stmt_cache {
	const char *sql; /* the caller's literal: compared by address, then by text */
	MYSQL_STMT *stmt;
	/* Result bindings, made once when the statement is prepared and reused by every
	 * execution (ncols 0: the statement returns no rows). */
	size_t ncols;
	MYSQL_BIND *binds;
	unsigned long *lengths;
	my_bool *nulls;
	char *bufs; /* ncols * DB_FIRST_BUF */
};

struct db {
	MYSQL *mysql;
	char *host, *user, *password, *name, *socket;
	unsigned port;
	unsigned connect_timeout;
	struct db_stmt_cache stmts[DB_MAX_STMTS];
	size_t n_stmts;
	int in_tx;
	int ever_connected;
	int broken; /* the connection was lost inside a transaction; reconnect at the next begin */
	unsigned last_errno;
	char last_error[512];
	int64_t affected, insert_id;
	MYSQL_BIND *params; /* parameter bindings, grown to the largest statement run */
	size_t params_cap;
};

struct db_res {
	size_t rows, cols, cap;
	char **cells;   /* rows*cols, NULL for SQL NULL; point into arena */
	size_t *lens;
	char *arena;    /* every cell's bytes, each followed by a NUL */
	size_t arena_len, arena_cap;
};

/* Per thread: the workers and API threads open their connections at the same time. */
static __thread char open_error[2048];
/* Connections established by this process, for db_connections_made(). */
static uint64_t connections_made;

int db_library_init(void)
{
	return mysql_library_init(0, NULL, NULL) == 0 ? 0 : -1;
}

void db_library_end(void)
{
	mysql_library_end();
}

static void set_error(struct db *db, unsigned no, const char *text)
{
	db->last_errno = no;
	snprintf(db->last_error, sizeof db->last_error, "%s", text ? text : "unknown error");
}

static void stmt_cache_free(struct db_stmt_cache *c)
{
	if (c->stmt)
		mysql_stmt_close(c->stmt);
	free(c->binds);
	free(c->lengths);
	free(c->nulls);
	free(c->bufs);
	memset(c, 0, sizeof *c);
}

static void drop_statements(struct db *db)
{
	for (size_t i = 0; i < db->n_stmts; i++)
		stmt_cache_free(&db->stmts[i]);
	db->n_stmts = 0;
}

static void disconnect(struct db *db)
{
	drop_statements(db);
	if (db->mysql)
		mysql_close(db->mysql);
	db->mysql = NULL;
	db->in_tx = 0;
	db->broken = 0;
}

static int connect_db(struct db *db)
{
	MYSQL *m = mysql_init(NULL);
	my_bool off = 0;

	if (!m) {
		set_error(db, CR_OUT_OF_MEMORY, "mysql_init failed");
		return -1;
	}
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &db->connect_timeout);
	mysql_options(m, MYSQL_OPT_RECONNECT, &off);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(m, MYSQL_INIT_COMMAND,
		      "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
	mysql_options(m, MYSQL_INIT_COMMAND,
		      "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'");
	mysql_options(m, MYSQL_INIT_COMMAND, "SET SESSION time_zone = '+00:00'");
	/* CLIENT_FOUND_ROWS: an UPDATE reports the rows it matched, not only those it changed,
	 * so "WHERE id = ? AND version = ?" checks never misread an unchanged row as a race. */
	if (!mysql_real_connect(m, db->socket ? NULL : db->host, db->user, db->password,
				db->name, db->port, db->socket,
				CLIENT_FOUND_ROWS)) {
		set_error(db, mysql_errno(m), mysql_error(m));
		mysql_close(m);
		return -1;
	}
	db->mysql = m;
	db->ever_connected = 1;
	__atomic_add_fetch(&connections_made, 1, __ATOMIC_SEQ_CST);
	return 0;
}

uint64_t db_connections_made(void)
{
	return __atomic_load_n(&connections_made, __ATOMIC_SEQ_CST);
}

static struct db *db_create(struct cfg *cfg, int connect, const char **error_r)
{
	struct db *db = xcalloc(1, sizeof *db);
	const char *socket;
	const char *err;
	int64_t port, timeout;

	if (cfg_get_int(cfg, "database", "port", 3306, 1, 65535, &port, &err) < 0 ||
	    cfg_get_int(cfg, "database", "connect_timeout_s", 5, 1, 300, &timeout, &err) < 0 ||
	    cfg_get_secret(cfg, "database", "password", &db->password, &err) < 0) {
		snprintf(open_error, sizeof open_error, "%s", err);
		*error_r = open_error;
		db_close(&db);
		return NULL;
	}
	db->port = (unsigned)port;
	db->connect_timeout = (unsigned)timeout;
	db->host = xstrdup(cfg_get(cfg, "database", "host", "localhost"));
	db->user = xstrdup(cfg_get(cfg, "database", "user", "offload"));
	db->name = xstrdup(cfg_get(cfg, "database", "name", "offload"));
	socket = cfg_get(cfg, "database", "socket", "");
	db->socket = *socket ? xstrdup(socket) : NULL;
	if (connect && connect_db(db) < 0) {
		if (db->socket)
			snprintf(open_error, sizeof open_error,
				 "cannot connect to MariaDB at %s as %s: %s", db->socket, db->user,
				 db->last_error);
		else
			snprintf(open_error, sizeof open_error,
				 "cannot connect to MariaDB at %s:%u as %s: %s", db->host, db->port,
				 db->user, db->last_error);
		*error_r = open_error;
		db_close(&db);
		return NULL;
	}
	return db;
}

struct db *db_open(struct cfg *cfg, const char **error_r)
{
	return db_create(cfg, 1, error_r);
}

struct db *db_new(struct cfg *cfg, const char **error_r)
{
	return db_create(cfg, 0, error_r);
}

void db_close(struct db **dbp)
{
	struct db *db = *dbp;

	if (!db)
		return;
	disconnect(db);
	free(db->host);
	free(db->user);
	if (db->password) {
		explicit_bzero(db->password, strlen(db->password));
		free(db->password);
	}
	free(db->name);
	free(db->socket);
	free(db->params);
	free(db);
	*dbp = NULL;
}

static int is_connection_error(unsigned no)
{
	switch (no) {
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_SERVER_LOST_EXTENDED:
	case ER_CONNECTION_KILLED:
	case ER_SERVER_SHUTDOWN:
	case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT */
		return 1;
	default:
		return 0;
	}
}

int db_error_is_connection(const struct db *db)
{
	return is_connection_error(db->last_errno);
}

int db_error_is_unavailable(const struct db *db)
{
	switch (db->last_errno) {
	case ER_CON_COUNT_ERROR: /* 1040: too many connections */
	case ER_UNKNOWN_COM_ERROR: /* 1047: a Galera node that is not ready ("WSREP has not
				    * yet prepared node for application use") */
		return 1;
	default:
		return is_connection_error(db->last_errno);
	}
}

static int ensure_connected(struct db *db)
{
	int first = !db->ever_connected;

	if (db->mysql && !db->broken)
		return 0;
	disconnect(db);
	if (connect_db(db) < 0) {
		log_warn("MariaDB connection failed: %s", db->last_error);
		return -1;
	}
	if (!first)
		log_info("reconnected to MariaDB");
	return 0;
}

/* (Re)makes the result bindings of c for ncols columns. */
static void stmt_bindings(struct db_stmt_cache *c, size_t ncols)
{
	free(c->binds);
	free(c->lengths);
	free(c->nulls);
	free(c->bufs);
	c->binds = NULL;
	c->lengths = NULL;
	c->nulls = NULL;
	c->bufs = NULL;
	c->ncols = ncols;
	if (ncols == 0)
		return;
	c->binds = xcalloc(ncols, sizeof *c->binds);
	c->lengths = xcalloc(ncols, sizeof *c->lengths);
	c->nulls = xcalloc(ncols, sizeof *c->nulls);
	c->bufs = xmalloc(ncols * DB_FIRST_BUF);
	for (size_t i = 0; i < ncols; i++) {
		c->binds[i].buffer_type = MYSQL_TYPE_STRING;
		c->binds[i].buffer = c->bufs + i * DB_FIRST_BUF;
		c->binds[i].buffer_length = DB_FIRST_BUF;
		c->binds[i].length = &c->lengths[i];
		c->binds[i].is_null = &c->nulls[i];
	}
}

static struct db_stmt_cache *get_stmt(struct db *db, const char *sql)
{
	struct db_stmt_cache *c;
	MYSQL_STMT *stmt;

	for (size_t i = 0; i < db->n_stmts; i++)
		if (db->stmts[i].sql == sql)
			return &db->stmts[i];
	stmt = mysql_stmt_init(db->mysql);
	if (!stmt) {
		set_error(db, mysql_errno(db->mysql), mysql_error(db->mysql));
		return NULL;
	}
	if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0) {
		set_error(db, mysql_stmt_errno(stmt), mysql_stmt_error(stmt));
		mysql_stmt_close(stmt);
		return NULL;
	}
	if (db->n_stmts == DB_MAX_STMTS) {
		/* More distinct statements than expected: forget the oldest. */
		stmt_cache_free(&db->stmts[0]);
		memmove(&db->stmts[0], &db->stmts[1], (DB_MAX_STMTS - 1) * sizeof db->stmts[0]);
		db->n_stmts--;
	}
	c = &db->stmts[db->n_stmts];
	memset(c, 0, sizeof *c);
	c->sql = sql;
	c->stmt = stmt;
	stmt_bindings(c, mysql_stmt_field_count(stmt));
	db->n_stmts++;
	return c;
}

static void forget_stmt(struct db *db, const char *sql)
{
	for (size_t i = 0; i < db->n_stmts; i++) {
		if (db->stmts[i].sql == sql) {
			stmt_cache_free(&db->stmts[i]);
			memmove(&db->stmts[i], &db->stmts[i + 1],
				(db->n_stmts - i - 1) * sizeof db->stmts[0]);
			db->n_stmts--;
			return;
		}
	}
}

static void res_add_row(struct db_res *res)
{
	if (res->rows == res->cap) {
		res->cap = res->cap ? res->cap * 2 : 4;
		res->cells = xrealloc(res->cells, res->cap * res->cols * sizeof *res->cells);
		res->lens = xrealloc(res->lens, res->cap * res->cols * sizeof *res->lens);
	}
	res->rows++;
}

/* Room for len more bytes in the arena; returns the offset they go to. */
static size_t res_reserve(struct db_res *res, size_t len)
{
	if (res->arena_cap - res->arena_len < len) {
		size_t cap = res->arena_cap ? res->arena_cap : 1024;

		while (cap - res->arena_len < len)
			cap *= 2;
		res->arena = xrealloc(res->arena, cap);
		res->arena_cap = cap;
	}
	return res->arena_len;
}

static int stmt_error(struct db *db, MYSQL_STMT *stmt)
{
	set_error(db, mysql_stmt_errno(stmt), mysql_stmt_error(stmt));
	return -1;
}

/* Sentinel in cells while the arena still moves: offset + 1, 0 for NULL. */
#define CELL_OFFSET(off) ((char *)(uintptr_t)((off) + 1))

/* One attempt: 0 ok, -1 error (db->last_errno says which). */
static int run_once(struct db *db, const char *sql, const struct db_arg *args, size_t nargs,
		    struct db_res **res_r)
{
	MYSQL_BIND *params;
	struct db_stmt_cache *c;
	struct db_res *res = NULL;
	MYSQL_STMT *stmt;
	size_t ncols;
	int rc = -1;

	if (ensure_connected(db) < 0)
		return -1;
	c = get_stmt(db, sql);
	if (!c)
		return -1;
	stmt = c->stmt;
	if (nargs > DB_MAX_PARAMS || mysql_stmt_param_count(stmt) != nargs) {
		set_error(db, CR_PARAMS_NOT_BOUND, "parameter count mismatch");
		log_error("statement parameter count mismatch: %s", sql);
		return -1;
	}
	if (nargs > db->params_cap) {
		db->params = xrealloc(db->params, nargs * sizeof *db->params);
		db->params_cap = nargs;
	}
	params = db->params;
	if (nargs)
		memset(params, 0, nargs * sizeof params[0]);
	for (size_t i = 0; i < nargs; i++) {
		switch (args[i].type) {
		case DB_ARG_NULL:
			params[i].buffer_type = MYSQL_TYPE_NULL;
			break;
		case DB_ARG_INT:
			params[i].buffer_type = MYSQL_TYPE_LONGLONG;
			params[i].buffer = (void *)&args[i].i;
			break;
		case DB_ARG_STR:
		case DB_ARG_BLOB:
			params[i].buffer_type =
				args[i].type == DB_ARG_STR ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
			params[i].buffer = (void *)(args[i].s ? args[i].s : "");
			params[i].buffer_length = (unsigned long)args[i].len;
			break;
		}
	}
	if (nargs && mysql_stmt_bind_param(stmt, params) != 0)
		return stmt_error(db, stmt);
	if (mysql_stmt_execute(stmt) != 0)
		return stmt_error(db, stmt);
	db->affected = (int64_t)mysql_stmt_affected_rows(stmt);
	db->insert_id = (int64_t)mysql_stmt_insert_id(stmt);

	/* The server may have re-prepared the statement with other columns (a table altered). */
	if (mysql_stmt_field_count(stmt) != c->ncols)
		stmt_bindings(c, mysql_stmt_field_count(stmt));
	ncols = c->ncols;
	if (ncols == 0)
		return 0;
	if (mysql_stmt_bind_result(stmt, c->binds) != 0) {
		stmt_error(db, stmt);
		goto out;
	}
	res = xcalloc(1, sizeof *res);
	res->cols = ncols;
	for (;;) {
		int f = mysql_stmt_fetch(stmt);
		size_t base;

		if (f == MYSQL_NO_DATA)
			break;
		if (f == 1) {
			stmt_error(db, stmt);
			goto out;
		}
		res_add_row(res);
		base = (res->rows - 1) * ncols;
		for (size_t k = 0; k < ncols; k++) {
			unsigned long len = c->lengths[k];
			size_t off;

			res->cells[base + k] = NULL;
			res->lens[base + k] = 0;
			if (c->nulls[k])
				continue;
			off = res_reserve(res, (size_t)len + 1);
			if (len > DB_FIRST_BUF) {
				MYSQL_BIND one;

				memset(&one, 0, sizeof one);
				one.buffer_type = MYSQL_TYPE_STRING;
				one.buffer = res->arena + off;
				one.buffer_length = len;
				if (mysql_stmt_fetch_column(stmt, &one, (unsigned)k, 0) != 0) {
					for (size_t j = k + 1; j < ncols; j++) {
						res->cells[base + j] = NULL;
						res->lens[base + j] = 0;
					}
					stmt_error(db, stmt);
					goto out;
				}
			} else {
				memcpy(res->arena + off, c->bufs + k * DB_FIRST_BUF, len);
			}
			res->arena[off + len] = '\0';
			res->arena_len += (size_t)len + 1;
			res->cells[base + k] = CELL_OFFSET(off);
			res->lens[base + k] = len;
		}
	}
	rc = 0;
out:
	mysql_stmt_free_result(stmt);
	if (res) {
		/* The arena has stopped moving: offsets become pointers. */
		for (size_t i = 0; i < res->rows * res->cols; i++)
			if (res->cells[i])
				res->cells[i] = res->arena + ((uintptr_t)res->cells[i] - 1);
	}
	if (rc == 0 && res_r)
		*res_r = res;
	else
		db_res_free(&res);
	return rc;
}

int db_query(struct db *db, const char *sql, const struct db_arg *args, size_t nargs,
	     struct db_res **res_r)
{
	if (res_r)
		*res_r = NULL;
	/* The last error is this statement's only: callers choose 503 or 500 from it. */
	db->last_errno = 0;
	db->last_error[0] = '\0';
	if (db->broken) {
		/* Inside the transaction that lost its connection every statement fails; once the
		 * caller has rolled back (or committed, and failed), start afresh. */
		if (db->in_tx) {
			set_error(db, CR_SERVER_LOST, "connection lost inside a transaction");
			return -1;
		}
		disconnect(db);
	}
	if (run_once(db, sql, args, nargs, res_r) == 0)
		return 0;
	/* The server restarted or forgot the statement: outside a transaction, redo it once
	 * on a fresh connection. Inside one, the transaction is lost and the caller must fail. */
	if (db->last_errno == ER_UNKNOWN_STMT_HANDLER || db->last_errno == ER_NEED_REPREPARE) {
		forget_stmt(db, sql);
		if (!db->in_tx)
			return run_once(db, sql, args, nargs, res_r);
		return -1;
	}
	if (is_connection_error(db->last_errno)) {
		if (db->in_tx) {
			db->broken = 1;
			return -1;
		}
		unsigned no = db->last_errno;
		char text[sizeof db->last_error];

		memcpy(text, db->last_error, sizeof text);
		disconnect(db);
		if (run_once(db, sql, args, nargs, res_r) == 0)
			return 0;
		if (!db->mysql)
			set_error(db, no, text);
	}
	return -1;
}

int db_exec_text(struct db *db, const char *sql, size_t len)
{
	MYSQL_RES *r;

	db->last_errno = 0;
	db->last_error[0] = '\0';
	if (ensure_connected(db) < 0)
		return -1;
	if (mysql_real_query(db->mysql, sql, (unsigned long)len) != 0) {
		set_error(db, mysql_errno(db->mysql), mysql_error(db->mysql));
		if (is_connection_error(db->last_errno)) {
			if (db->in_tx)
				db->broken = 1;
			else
				disconnect(db);
		}
		return -1;
	}
	r = mysql_store_result(db->mysql);
	if (r)
		mysql_free_result(r);
	db->affected = (int64_t)mysql_affected_rows(db->mysql);
	return 0;
}

int64_t db_affected_rows(const struct db *db)
{
	return db->affected;
}

int64_t db_insert_id(const struct db *db)
{
	return db->insert_id;
}

int db_begin(struct db *db)
{
	static const char sql[] = "START TRANSACTION";

	if (db->broken)
		disconnect(db);
	if (db->in_tx) {
		log_error("db_begin inside a transaction");
		db_rollback(db);
	}
	/* Not yet in a transaction: a lost connection is retried once here. */
	if (db_exec_text(db, sql, sizeof sql - 1) < 0) {
		if (!is_connection_error(db->last_errno) || db_exec_text(db, sql, sizeof sql - 1) < 0)
			return -1;
	}
	db->in_tx = 1;
	return 0;
}

int db_commit(struct db *db)
{
	int rc;

	if (db->broken) {
		db->in_tx = 0;
		set_error(db, CR_SERVER_LOST, "connection lost inside a transaction");
		return -1;
	}
	rc = db_exec_text(db, "COMMIT", 6);
	db->in_tx = 0;
	return rc;
}

void db_rollback(struct db *db)
{
	if (!db->in_tx)
		return;
	if (!db->broken && db->mysql && mysql_real_query(db->mysql, "ROLLBACK", 8) != 0)
		disconnect(db);
	db->in_tx = 0;
}

const char *db_error(const struct db *db)
{
	return db->last_error;
}

unsigned db_errno(const struct db *db)
{
	return db->last_errno;
}

int db_ping(struct db *db)
{
	static const char sql[] = "SELECT 1";
	struct db_res *res = NULL;
	int rc = db_query(db, sql, NULL, 0, &res);

	db_res_free(&res);
	return rc;
}

int db_query_first(struct db *db, const char *sql, const struct db_arg *args, size_t nargs,
		   struct db_res **res_r, const char **error_r)
{
	struct db_res *res = NULL;
	int found;

	if (res_r)
		*res_r = NULL;
	if (db_query(db, sql, args, nargs, &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	found = db_res_rows(res) > 0;
	if (found && res_r)
		*res_r = res;
	else
		db_res_free(&res);
	return found;
}

void *db_query_rows(struct db *db, const char *sql, const struct db_arg *args, size_t nargs,
		    size_t row_size, void (*read)(const struct db_res *res, size_t i, void *row),
		    size_t *n_r, const char **error_r)
{
	struct db_res *res = NULL;
	unsigned char *rows;
	size_t n;

	*n_r = 0;
	if (db_query(db, sql, args, nargs, &res) < 0) {
		if (error_r)
			*error_r = db_error(db);
		return NULL;
	}
	n = db_res_rows(res);
	rows = xcalloc(n + 1, row_size);
	for (size_t i = 0; i < n; i++)
		read(res, i, rows + i * row_size);
	db_res_free(&res);
	*n_r = n;
	return rows;
}

size_t db_res_rows(const struct db_res *res)
{
	return res ? res->rows : 0;
}

size_t db_res_cols(const struct db_res *res)
{
	return res ? res->cols : 0;
}

const char *db_res_get(const struct db_res *res, size_t row, size_t col)
{
	if (!res || row >= res->rows || col >= res->cols)
		return NULL;
	return res->cells[row * res->cols + col];
}

const char *db_res_text(const struct db_res *res, size_t row, size_t col)
{
	const char *v = db_res_get(res, row, col);

	return v ? v : "";
}

size_t db_res_len(const struct db_res *res, size_t row, size_t col)
{
	if (!res || row >= res->rows || col >= res->cols)
		return 0;
	return res->lens[row * res->cols + col];
}

int64_t db_res_int(const struct db_res *res, size_t row, size_t col)
{
	const char *v = db_res_get(res, row, col);

	return v ? strtoll(v, NULL, 10) : 0;
}

void db_res_free(struct db_res **resp)
{
	struct db_res *res = *resp;

	if (!res)
		return;
	free(res->arena);
	free(res->cells);
	free(res->lens);
	free(res);
	*resp = NULL;
}
