#include "cmd/cli.h"
#include "core/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *cli_connect(const char *conninfo, const char *who)
{
    char app[32];
    snprintf(app, sizeof(app), "crmd %s", who);
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", app, conninfo, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "crmd %s: cannot connect to the database: %s", who, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, notice_quiet, NULL);
    return conn;
}

bool cli_exec(PGconn *conn, const char *who, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "crmd %s: %s: %s", who, sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

const char *cli_database_url(void)
{
    if (!g_config.database_url || !*g_config.database_url) {
        fprintf(stderr, "crmd: DATABASE_URL (or --database-url) is required; for the local stack: "
                        "eval \"$(dev/stack env)\"\n");
        exit(2);
    }
    return g_config.database_url;
}

/* Takes "--NAME VALUE" or "--NAME=VALUE" out of argv for subcommand-specific flags. */
const char *cli_take_flag(int *argc, char **argv, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < *argc; i++) {
        const char *v = NULL;
        int used = 0;
        if (strcmp(argv[i], name) == 0 && i + 1 < *argc)
            v = argv[i + 1], used = 2;
        else if (strncmp(argv[i], name, nl) == 0 && argv[i][nl] == '=')
            v = argv[i] + nl + 1, used = 1;
        if (!used)
            continue;
        memmove(&argv[i], &argv[i + used], sizeof(char *) * (size_t)(*argc - i - used));
        *argc -= used;
        return v;
    }
    return NULL;
}

double cli_parse_double(const char *s, const char *what, double lo, double hi)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "crmd: %s '%s' is not a number from %g to %g\n", what, s, lo, hi);
        exit(2);
    }
    return v;
}
