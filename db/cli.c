#include "db/cli.h"

#include <stdarg.h>
#include <stdio.h>

static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *db_cli_connect(const char *conninfo, const char *who)
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

bool db_cli_exec(PGconn *conn, const char *who, const char *fmt, ...)
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
