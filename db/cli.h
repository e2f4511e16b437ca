/* Blocking libpq helpers for the one-shot subcommands (migrate, seed, keys); never used by
 * a reactor thread. */
#ifndef CRMD_DB_CLI_H
#define CRMD_DB_CLI_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Connects (10 s timeout unless conninfo sets one, application_name "crmd <who>", notices
 * silenced); on failure prints "crmd <who>: cannot connect ..." and returns NULL. */
PGconn *db_cli_connect(const char *conninfo, const char *who);

/* Runs printf-formatted SQL; false (and the server's message on stderr) when it failed. */
__attribute__((format(printf, 3, 4))) bool db_cli_exec(PGconn *conn, const char *who, const char *fmt, ...);

#endif
