/* clients.c: client and API key administration (tables clients and api_keys). */
#include <stdio.h>
#include <stdlib.h>

#include "common/xalloc.h"
#include "store/clients.h"
#include "store/db.h"
#include "store/tx.h"

#define N_ARGS(a) (sizeof(a) / sizeof((a)[0]))

int store_client_create(struct db *db, const struct store_client_new *c, const char **error_r)
{
	static const char sql[] =
		"INSERT INTO clients (id, name, plan, webhook_secret, created_at) VALUES (?, ?, ?, ?, ?)";
	struct db_arg args[] = { DB_STR(c->id), DB_STR(c->name), DB_STR(c->plan),
				 DB_STR(c->webhook_secret), DB_INT(c->created_at_ms) };

	if (db_query(db, sql, args, N_ARGS(args), NULL) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	return 0;
}

static void client_read(const struct db_res *res, size_t i, void *row)
{
	struct store_client_row *c = row;

	snprintf(c->id, sizeof c->id, "%s", db_res_text(res, i, 0));
	c->name = xstrdup(db_res_text(res, i, 1));
	snprintf(c->plan, sizeof c->plan, "%s", db_res_text(res, i, 2));
	c->created_at_ms = db_res_int(res, i, 3);
	c->active_keys = db_res_int(res, i, 4);
}

int store_client_list(struct db *db, struct store_client_row **rows_r, size_t *n_r,
		      const char **error_r)
{
	static const char sql[] =
		"SELECT c.id, c.name, c.plan, c.created_at,"
		" (SELECT COUNT(*) FROM api_keys k WHERE k.client_id = c.id AND k.active = 1)"
		" FROM clients c ORDER BY c.created_at, c.id";

	*rows_r = db_query_rows(db, sql, NULL, 0, sizeof **rows_r, client_read, n_r, error_r);
	return *rows_r ? 0 : -1;
}

void store_client_rows_free(struct store_client_row **rows, size_t n)
{
	if (!*rows)
		return;
	for (size_t i = 0; i < n; i++)
		free((*rows)[i].name);
	free(*rows);
	*rows = NULL;
}

struct rotate_tx {
	const char *client_id, *new_secret;
	int finish, force;
	int in_rotation;            /* out */
	enum store_rotation result; /* out */
};

static int rotate_tx_run(struct db *db, void *arg)
{
	static const char load[] =
		"SELECT webhook_secret_previous FROM clients WHERE id = ? FOR UPDATE";
	static const char rotate[] =
		"UPDATE clients SET webhook_secret_previous = webhook_secret, webhook_secret = ?"
		" WHERE id = ?";
	static const char finish[] = "UPDATE clients SET webhook_secret_previous = NULL WHERE id = ?";
	struct rotate_tx *t = arg;
	struct db_arg id[] = { DB_STR(t->client_id) };
	struct db_arg secret_id[] = { DB_STR(t->new_secret), DB_STR(t->client_id) };
	struct db_res *res = NULL;
	int found;

	t->in_rotation = 0;
	t->result = STORE_ROTATION_DONE;
	if (db_query(db, load, id, N_ARGS(id), &res) < 0)
		return -1;
	found = db_res_rows(res) > 0;
	t->in_rotation = found && db_res_get(res, 0, 0) != NULL;
	db_res_free(&res);
	if (!found) {
		t->result = STORE_ROTATION_NO_CLIENT;
		return 1;
	}
	if (t->finish)
		return db_query(db, finish, id, N_ARGS(id), NULL) < 0 ? -1 : 0;
	if (t->in_rotation && !t->force) {
		t->result = STORE_ROTATION_BUSY;
		return 1;
	}
	return db_query(db, rotate, secret_id, N_ARGS(secret_id), NULL) < 0 ? -1 : 0;
}

int store_client_rotate_secret(struct db *db, const char *client_id, const char *new_secret,
			       int finish, int force, int *in_rotation_r, const char **error_r)
{
	struct rotate_tx t = { .client_id = client_id, .new_secret = new_secret,
			       .finish = finish, .force = force };

	if (store_tx_run(db, rotate_tx_run, &t) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	*in_rotation_r = t.in_rotation;
	return (int)t.result;
}

int store_key_create(struct db *db, const struct store_key_new *key, const char **error_r)
{
	static const char exists[] = "SELECT 1 FROM clients WHERE id = ?";
	static const char sql[] =
		"INSERT INTO api_keys (id, client_id, key_hash, key_prefix, active, created_at)"
		" VALUES (?, ?, ?, ?, 1, ?)";
	struct db_arg client[] = { DB_STR(key->client_id) };
	struct db_arg args[] = { DB_STR(key->id), DB_STR(key->client_id), DB_BLOB(key->hash, 32),
				 DB_STR(key->prefix), DB_INT(key->created_at_ms) };
	int found = db_query_first(db, exists, client, N_ARGS(client), NULL, error_r);

	if (found <= 0)
		return found;
	if (db_query(db, sql, args, N_ARGS(args), NULL) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	return 1;
}

static void key_read(const struct db_res *res, size_t i, void *row)
{
	struct store_key_row *k = row;

	snprintf(k->id, sizeof k->id, "%s", db_res_text(res, i, 0));
	snprintf(k->client_id, sizeof k->client_id, "%s", db_res_text(res, i, 1));
	snprintf(k->prefix, sizeof k->prefix, "%s", db_res_text(res, i, 2));
	k->active = db_res_int(res, i, 3) == 1;
	k->created_at_ms = db_res_int(res, i, 4);
	k->deactivated_at_ms = db_res_get(res, i, 5) ? db_res_int(res, i, 5) : -1;
}

int store_key_list(struct db *db, const char *client_id, struct store_key_row **rows_r,
		   size_t *n_r, const char **error_r)
{
	static const char sql[] =
		"SELECT id, client_id, key_prefix, active, created_at, deactivated_at FROM api_keys"
		" WHERE (? IS NULL OR client_id = ?) ORDER BY created_at, id";
	struct db_arg args[] = { DB_STR(client_id), DB_STR(client_id) };

	*rows_r = db_query_rows(db, sql, args, N_ARGS(args), sizeof **rows_r, key_read, n_r,
				error_r);
	return *rows_r ? 0 : -1;
}

int store_key_deactivate(struct db *db, const char *key_id, int64_t now_ms,
			 const char **error_r)
{
	static const char exists[] = "SELECT active FROM api_keys WHERE id = ?";
	static const char sql[] =
		"UPDATE api_keys SET active = 0, deactivated_at = COALESCE(deactivated_at, ?) WHERE id = ?";
	struct db_arg key[] = { DB_STR(key_id) };
	struct db_arg args[] = { DB_INT(now_ms), DB_STR(key_id) };
	int found = db_query_first(db, exists, key, N_ARGS(key), NULL, error_r);

	if (found <= 0)
		return found;
	if (db_query(db, sql, args, N_ARGS(args), NULL) < 0) {
		*error_r = db_error(db);
		return -1;
	}
	return 1;
}
