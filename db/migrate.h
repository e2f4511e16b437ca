/*
 * Schema migrations: applies sql/migrations/NNN_name.sql files in order and records them in
 * schema_migrations. Blocking libpq, for the `crmd migrate` subcommand and the start-up schema
 * check; never call these from a reactor thread.
 */
#ifndef CRMD_DB_MIGRATE_H
#define CRMD_DB_MIGRATE_H

#include <stddef.h>

/*
 * Applies every migration file of migrations_dir (NULL: db_migrations_dir()) not yet recorded,
 * in version order, each in its own transaction with its schema_migrations row, under a
 * session advisory lock so concurrent runs apply each file exactly once. Prints one line per
 * applied file and "schema up to date (version N)"; on failure prints the reason to stderr.
 * Returns 0 on success, 1 on failure.
 */
int db_migrate_run(const char *conninfo, const char *migrations_dir);

/*
 * 0 when the database has applied every migration file of migrations_dir (NULL: the default)
 * and nothing newer; otherwise 1 with a one-line reason in err (e.g. "database schema is at
 * version 2, this build expects 3: run `crmd migrate`"), also when the database is unreachable.
 */
int db_schema_check(const char *conninfo, const char *migrations_dir, char *err, size_t errlen);

/*
 * The default migrations folder into buf: $CRMD_MIGRATIONS_DIR when set, else
 * <folder of the executable>/../sql/migrations when that exists (the binary is build/crmd),
 * else <folder of the executable>/../share/crmd/migrations (the package's /usr/bin/crmd). 0,
 * or -1 when it does not fit or /proc/self/exe cannot be read.
 */
int db_migrations_dir(char *buf, size_t n);

/*
 * <folder of the executable>/../rel into buf: a path under the repository root when the
 * binary is build/crmd. 0, or -1 when it does not fit or /proc/self/exe cannot be read.
 */
int db_repo_path(const char *rel, char *buf, size_t n);

#endif
