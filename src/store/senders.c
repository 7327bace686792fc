/* senders.c: client sender identities (table client_senders, sql/012_sender_identity.sql). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/db.h"
#include "store/senders.h"
#include "store/tx.h"

#define N_ARGS(a) (sizeof(a) / sizeof((a)[0]))

#define SENDER_COLUMNS "client_id, from_address, reply_domain, smtp_url, smtp_user," \
	" smtp_password_file, updated_at"

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void fill(const struct db_res *res, size_t i, struct store_sender *s)
{
	const char *v;

	memset(s, 0, sizeof *s);
	snprintf(s->client_id, sizeof s->client_id, "%s", db_res_get(res, i, 0));
	v = db_res_get(res, i, 1);
	s->from_address = xstrdup(v ? v : "");
	s->reply_domain = dup_or_null(db_res_get(res, i, 2));
	s->smtp_url = dup_or_null(db_res_get(res, i, 3));
	s->smtp_user = dup_or_null(db_res_get(res, i, 4));
	s->smtp_password_file = dup_or_null(db_res_get(res, i, 5));
	s->updated_at_ms = db_res_int(res, i, 6);
}

void store_sender_free(struct store_sender *s)
{
	if (!s)
		return;
	free(s->from_address);
	free(s->reply_domain);
	free(s->smtp_url);
	free(s->smtp_user);
	free(s->smtp_password_file);
	memset(s, 0, sizeof *s);
}

int store_sender_get(struct db *db, const char *client_id, struct store_sender *out,
		     const char **error_r)
{
	static const char sql[] = "SELECT " SENDER_COLUMNS " FROM client_senders WHERE client_id = ?";
	struct db_arg args[] = { DB_STR(client_id) };
	struct db_res *res = NULL;
	int found;

	memset(out, 0, sizeof *out);
	if (db_query(db, sql, args, N_ARGS(args), &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	found = db_res_rows(res) > 0;
	if (found)
		fill(res, 0, out);
	db_res_free(&res);
	return found;
}

int store_sender_list(struct db *db, struct store_sender **rows_r, size_t *n_r,
		      const char **error_r)
{
	static const char sql[] = "SELECT " SENDER_COLUMNS " FROM client_senders ORDER BY client_id";
	struct db_res *res = NULL;
	struct store_sender *rows;
	size_t n;

	*rows_r = NULL;
	*n_r = 0;
	if (db_query(db, sql, NULL, 0, &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	n = db_res_rows(res);
	rows = xcalloc(n + 1, sizeof *rows);
	for (size_t i = 0; i < n; i++)
		fill(res, i, &rows[i]);
	db_res_free(&res);
	*rows_r = rows;
	*n_r = n;
	return 0;
}

void store_senders_free(struct store_sender **rows, size_t n)
{
	if (!*rows)
		return;
	for (size_t i = 0; i < n; i++)
		store_sender_free(&(*rows)[i]);
	free(*rows);
	*rows = NULL;
}

struct set_tx {
	const struct store_sender *s;
	enum store_sender_set_result result; /* out */
	char other[37];                      /* out: the client that has the domain */
};

static int set_tx_run(struct db *db, void *arg)
{
	static const char client_sql[] = "SELECT 1 FROM clients WHERE id = ? FOR UPDATE";
	static const char domain_sql[] =
		"SELECT client_id FROM client_senders WHERE reply_domain = ? AND client_id <> ?";
	static const char upsert_sql[] =
		"INSERT INTO client_senders (" SENDER_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?)"
		" ON DUPLICATE KEY UPDATE from_address = VALUES(from_address),"
		" reply_domain = VALUES(reply_domain), smtp_url = VALUES(smtp_url),"
		" smtp_user = VALUES(smtp_user), smtp_password_file = VALUES(smtp_password_file),"
		" updated_at = VALUES(updated_at)";
	struct set_tx *t = arg;
	const struct store_sender *s = t->s;
	struct db_arg id[] = { DB_STR(s->client_id) };
	struct db_arg dom[] = { DB_STR(s->reply_domain), DB_STR(s->client_id) };
	struct db_arg row[] = { DB_STR(s->client_id), DB_STR(s->from_address),
				DB_STR(s->reply_domain), DB_STR(s->smtp_url), DB_STR(s->smtp_user),
				DB_STR(s->smtp_password_file), DB_INT(s->updated_at_ms) };
	struct db_res *res = NULL;
	int found;

	t->result = STORE_SENDER_SET;
	t->other[0] = '\0';
	if (db_query(db, client_sql, id, N_ARGS(id), &res) < 0)
		return -1;
	found = db_res_rows(res) > 0;
	db_res_free(&res);
	if (!found) {
		t->result = STORE_SENDER_NO_CLIENT;
		return 1;
	}
	if (s->reply_domain) {
		if (db_query(db, domain_sql, dom, N_ARGS(dom), &res) < 0)
			return -1;
		found = db_res_rows(res) > 0;
		if (found)
			snprintf(t->other, sizeof t->other, "%s", db_res_get(res, 0, 0));
		db_res_free(&res);
		if (found) {
			t->result = STORE_SENDER_DOMAIN_TAKEN;
			return 1;
		}
	}
	return db_query(db, upsert_sql, row, N_ARGS(row), NULL) < 0 ? -1 : 0;
}

int store_sender_set(struct db *db, const struct store_sender *s, char other_client_r[37],
		     const char **error_r)
{
	struct set_tx t = { .s = s };

	other_client_r[0] = '\0';
	if (store_tx_run(db, set_tx_run, &t) < 0) {
		/* Two clients claiming one domain at once: the unique key refused the second. */
		if (db_errno(db) == DB_ER_DUP_ENTRY) {
			snprintf(other_client_r, 37, "%s", "(another client)");
			return STORE_SENDER_DOMAIN_TAKEN;
		}
		*error_r = db_error(db);
		return -1;
	}
	snprintf(other_client_r, 37, "%s", t.other);
	return (int)t.result;
}

int store_sender_clear(struct db *db, const char *client_id, const char **error_r)
{
	static const char sql[] = "DELETE FROM client_senders WHERE client_id = ?";
	struct db_arg args[] = { DB_STR(client_id) };

	if (db_query(db, sql, args, N_ARGS(args), NULL) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	return db_affected_rows(db) > 0;
}

int store_sender_client_exists(struct db *db, const char *client_id, const char **error_r)
{
	static const char sql[] = "SELECT 1 FROM clients WHERE id = ?";
	struct db_arg args[] = { DB_STR(client_id) };

	return db_query_first(db, sql, args, N_ARGS(args), NULL, error_r);
}

int store_sender_case_domain(struct db *db, const char *case_id, char case_id_r[37],
			     char domain_r[STORE_SENDER_DOMAIN_SIZE], const char **error_r)
{
	static const char sql[] =
		"SELECT c.id, s.reply_domain FROM cases c"
		" LEFT JOIN client_senders s ON s.client_id = c.client_id WHERE c.id = ?";
	struct db_arg args[] = { DB_STR(case_id) };
	struct db_res *res = NULL;
	int found;

	domain_r[0] = '\0';
	found = db_query_first(db, sql, args, N_ARGS(args), &res, error_r);
	if (found > 0) {
		snprintf(case_id_r, 37, "%s", db_res_get(res, 0, 0));
		snprintf(domain_r, STORE_SENDER_DOMAIN_SIZE, "%s", db_res_text(res, 0, 1));
	}
	db_res_free(&res);
	return found;
}

int store_sender_domain_client(struct db *db, const char *domain, char client_id_r[37],
			       const char **error_r)
{
	static const char sql[] = "SELECT client_id FROM client_senders WHERE reply_domain = ?";
	struct db_arg args[] = { DB_STR(domain) };
	struct db_res *res = NULL;
	int found;

	found = db_query_first(db, sql, args, N_ARGS(args), &res, error_r);
	if (found > 0)
		snprintf(client_id_r, 37, "%s", db_res_get(res, 0, 0));
	db_res_free(&res);
	return found;
}

int store_sender_case_mailed_elsewhere(struct db *db, const char *case_id, const char *domain,
				       const char **error_r)
{
	/* Our Message-IDs end in the reply domain the message was sent with (the server's
	 * [mail] domain for a client without one). */
	static const char sql[] =
		"SELECT 1 FROM messages WHERE case_id = ? AND direction = 'outbound'"
		" AND channel = 'EMAIL' AND LOWER(SUBSTRING_INDEX(message_id, '@', -1)) <> LOWER(?)"
		" LIMIT 1";
	struct db_arg args[] = { DB_STR(case_id), DB_STR(domain) };
	struct db_res *res = NULL;
	int found;

	if (db_query(db, sql, args, N_ARGS(args), &res) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	found = db_res_rows(res) > 0;
	db_res_free(&res);
	return found;
}
