/* Blocking libpq helpers for the one-shot subcommands (migrate, seed, keys); never used by
 * a reactor thread. */
#ifndef CRMD_CMD_CLI_H
#define CRMD_CMD_CLI_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Connects (10 s timeout unless conninfo sets one, application_name "crmd <who>", notices
 * silenced); on failure prints "crmd <who>: cannot connect ..." and returns NULL. */
PGconn *cli_connect(const char *conninfo, const char *who);

/* Runs printf-formatted SQL; false (and the server's message on stderr) when it failed. */
__attribute__((format(printf, 3, 4))) bool cli_exec(PGconn *conn, const char *who, const char *fmt, ...);

/* The configured DATABASE_URL; exits 2 with a hint when there is none. */
const char *cli_database_url(void);

/* Takes "--NAME VALUE" or "--NAME=VALUE" out of argv (for subcommand-specific flags); NULL when
 * absent. */
const char *cli_take_flag(int *argc, char **argv, const char *name);

/* s as a number from lo to hi; exits 2 naming what otherwise. */
double cli_parse_double(const char *s, const char *what, double lo, double hi);

#endif
