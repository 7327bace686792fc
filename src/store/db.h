/* db.h: a MariaDB connection with cached prepared statements, materialised results and
 * reconnection after the server goes away. One struct db per thread. */
#ifndef OFFLOAD_DB_H
#define OFFLOAD_DB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cfg;
struct db;
struct db_res;

enum db_arg_type {
	DB_ARG_NULL, /* SQL NULL */
	DB_ARG_INT,  /* 64-bit integer in .i */
	DB_ARG_STR,  /* text in .s, .len bytes */
	DB_ARG_BLOB, /* bytes in .s, .len bytes */
};

struct db_arg {
	enum db_arg_type type;
	int64_t i;
	const char *s;
	size_t len;
};

#define DB_NULL ((struct db_arg){ .type = DB_ARG_NULL })
#define DB_INT(v) ((struct db_arg){ .type = DB_ARG_INT, .i = (int64_t)(v) })
#define DB_STRN(v, n) ((struct db_arg){ .type = DB_ARG_STR, .s = (v), .len = (n) })
/* A C string, or SQL NULL when the pointer is NULL. */
static inline struct db_arg db_arg_str(const char *v)
{
	return v ? DB_STRN(v, strlen(v)) : DB_NULL;
}
#define DB_STR(v) db_arg_str(v)
#define DB_BLOB(v, n) ((struct db_arg){ .type = DB_ARG_BLOB, .s = (const char *)(v), .len = (n) })

/* MariaDB error numbers the callers act on. */
#define DB_ER_DUP_ENTRY 1062 /* unique key violated */
#define DB_ER_LOCK_DEADLOCK 1213 /* transaction rolled back; retry it whole */
#define DB_ER_LOCK_WAIT_TIMEOUT 1205

/* Initialises the client library; call once in main before any thread starts. */
int db_library_init(void);
void db_library_end(void);

/*
 * Connects with the [database] keys of cfg (host port socket user password name
 * connect_timeout_s). On failure returns NULL with *error_r set (static storage).
 * The returned handle belongs to one thread; db_close() frees it.
 */
struct db *db_open(struct cfg *cfg, const char **error_r);
/* Like db_open, but does not connect yet: the first query does (and reconnects later).
 * For servers that must start while the database is down. */
struct db *db_new(struct cfg *cfg, const char **error_r);
void db_close(struct db **db);

/*
 * Runs one statement with ? parameters as a cached prepared statement. sql must be a
 * string that lives as long as db (a literal): it is the cache key. When res_r is not
 * NULL the rows are read into a result the caller frees with db_res_free(). Outside a
 * transaction a lost connection is re-established and the statement retried once.
 * Returns 0, or -1 with the error available from db_error()/db_errno().
 */
int db_query(struct db *db, const char *sql, const struct db_arg *args, size_t nargs,
	     struct db_res **res_r);

/*
 * db_query() for a lookup of one row. Returns 1 when the result has a row, with *res_r
 * set (the caller reads row 0 and frees it with db_res_free()); 0 when it has none (*res_r
 * NULL); -1 with *error_r = db_error(db). res_r may be NULL: an existence check.
 */
int db_query_first(struct db *db, const char *sql, const struct db_arg *args, size_t nargs,
		   struct db_res **res_r, const char **error_r);

/*
 * db_query() read into an array: read(res, i, row) fills each row of row_size bytes of a
 * new zeroed array of *n_r rows and one spare, which the caller frees. Returns the array,
 * or NULL with *error_r = db_error(db) (error_r may be NULL) and *n_r 0.
 */
void *db_query_rows(struct db *db, const char *sql, const struct db_arg *args, size_t nargs,
		    size_t row_size, void (*read)(const struct db_res *res, size_t i, void *row),
		    size_t *n_r, const char **error_r);

/* Runs SQL text without parameters or results (DDL, migrations). 0 or -1. */
int db_exec_text(struct db *db, const char *sql, size_t len);

/* Rows changed by the last db_query (UPDATE/INSERT/DELETE). */
int64_t db_affected_rows(const struct db *db);
/* AUTO_INCREMENT value of the last INSERT. */
int64_t db_insert_id(const struct db *db);

int db_begin(struct db *db);
int db_commit(struct db *db);
/* Always safe to call; errors are ignored (the transaction is gone either way). */
void db_rollback(struct db *db);

/* Text and number of the last error; the text is for logs, never for clients. */
const char *db_error(const struct db *db);
unsigned db_errno(const struct db *db);
/* 1 when the last error means the server could not be reached. */
int db_error_is_connection(const struct db *db);
/* 1 when the last error means the database cannot serve now, though the request was fine:
 * unreachable, shutting down, out of connections, or a Galera node outside the primary
 * component (1047). Callers answer 503 rather than 500 for these. */
int db_error_is_unavailable(const struct db *db);
/*
 * How many connections to MariaDB this process has established so far, all handles
 * together (thread-safe). A server restart drops every connection, so a count that changed
 * since some data was read means the process may have reconnected to a server whose data
 * is not what it read: caches keyed on it (the API-key cache) start afresh.
 */
uint64_t db_connections_made(void);

/* Makes sure the connection answers (reconnecting if needed): 0 or -1. */
int db_ping(struct db *db);

size_t db_res_rows(const struct db_res *res);
size_t db_res_cols(const struct db_res *res);
/* The value of a cell as NUL-terminated bytes, or NULL for SQL NULL. Lives as long as res. */
const char *db_res_get(const struct db_res *res, size_t row, size_t col);
/* The same, with SQL NULL as "". */
const char *db_res_text(const struct db_res *res, size_t row, size_t col);
size_t db_res_len(const struct db_res *res, size_t row, size_t col);
/* The cell as an integer (0 for NULL or non-numeric). */
int64_t db_res_int(const struct db_res *res, size_t row, size_t col);
void db_res_free(struct db_res **res);

#endif
