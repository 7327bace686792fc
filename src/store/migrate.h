/* migrate.h: applies the numbered SQL migrations in order, each once. */
#ifndef OFFLOAD_MIGRATE_H
#define OFFLOAD_MIGRATE_H

struct db;

/*
 * Applies every NNN_name.sql file of dir not yet recorded in schema_migrations, in name
 * order, and records each. Holds a named lease (table named_leases, created first) so two
 * runs cannot migrate at once: a second run waits up to 60 s, then fails naming the holder. Prints one line per applied file to stdout unless quiet. Sets *applied_r to the
 * number applied. Returns 0, or -1 with *error_r set (static storage).
 */
int migrate_run(struct db *db, const char *dir, int quiet, int *applied_r, const char **error_r);

#endif
