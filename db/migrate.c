#include "db/migrate.h"
#include "core/common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* pg_advisory_lock key held while migrating: "crmdmigr" as a big-endian int64. */
#define MIGRATE_LOCK_KEY "7165910235199661938"

/* Error messages are cut to the caller's buffer on purpose: one line is enough. */
__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

typedef struct {
    int version;
    char *name; /* file name without the version and ".sql": "schema" for 001_schema.sql */
    char *file; /* file name: "001_schema.sql" */
} migration_t;

typedef struct {
    migration_t *v;
    size_t len;
} migration_list_t;

static void migration_list_free(migration_list_t *l)
{
    for (size_t i = 0; i < l->len; i++) {
        free(l->v[i].name);
        free(l->v[i].file);
    }
    free(l->v);
    l->v = NULL;
    l->len = 0;
}

static int migration_cmp(const void *a, const void *b)
{
    const migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* NNN_name.sql: the version, or -1 when name is not a migration file name. */
static int migration_version(const char *name)
{
    size_t len = strlen(name), i = 0;
    if (len < 6 || strcmp(name + len - 4, ".sql") != 0)
        return -1;
    long v = 0;
    for (; isdigit((unsigned char)name[i]); i++) {
        v = v * 10 + (name[i] - '0');
        if (v > 999999)
            return -1;
    }
    if (i == 0 || name[i] != '_' || v == 0)
        return -1;
    for (i++; i < len - 4; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return -1;
    return (int)v;
}

/* Lists dir's migration files sorted by version. 0, or 1 with the reason in err. */
static int migration_list_load(const char *dir, migration_list_t *out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        set_err(err, errlen, "cannot open migrations folder %s: %s", dir, strerror(errno));
        return 1;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        int v = migration_version(e->d_name);
        if (v < 0) {
            set_err(err, errlen, "%s/%s: a migration is named NNN_name.sql", dir, e->d_name);
            goto fail;
        }
        if (out->len == cap) {
            cap = cap ? cap * 2 : 16;
            out->v = xrealloc(out->v, cap * sizeof(*out->v));
        }
        const char *us = strchr(e->d_name, '_');
        out->v[out->len++] = (migration_t){
            .version = v,
            .name = xstrndup(us + 1, len - 4 - (size_t)(us + 1 - e->d_name)),
            .file = xstrndup(e->d_name, len),
        };
    }
    closedir(d);
    d = NULL;
    if (out->len == 0) {
        set_err(err, errlen, "no migration files (NNN_name.sql) in %s", dir);
        goto fail;
    }
    qsort(out->v, out->len, sizeof(*out->v), migration_cmp);
    for (size_t i = 1; i < out->len; i++) {
        if (out->v[i].version == out->v[i - 1].version) {
            set_err(err, errlen, "%s and %s have the same version", out->v[i - 1].file, out->v[i].file);
            goto fail;
        }
    }
    return 0;
fail:
    if (d)
        closedir(d);
    migration_list_free(out);
    return 1;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2)
            buf = xrealloc(buf, cap *= 2);
    }
    if (ferror(f)) {
        set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int exe_dir(char *buf, size_t n)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0)
        return -1;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if ((size_t)snprintf(buf, n, "%s", exe) >= n)
        return -1;
    return 0;
}

int db_repo_path(const char *rel, char *buf, size_t n)
{
    char dir[4096], root[PATH_MAX];
    if (exe_dir(dir, sizeof(dir)) < 0)
        return -1;
    /* Resolve the root (it exists) rather than the whole path (which may not yet). */
    if (strlen(dir) + 4 > sizeof(dir))
        return -1;
    strcat(dir, "/..");
    const char *base = realpath(dir, root) ? root : dir;
    if ((size_t)snprintf(buf, n, "%s/%s", base, rel) >= n)
        return -1;
    return 0;
}

int db_migrations_dir(char *buf, size_t n)
{
    const char *env = getenv("CRMD_MIGRATIONS_DIR");
    if (env && *env)
        return (size_t)snprintf(buf, n, "%s", env) >= n ? -1 : 0;
    /* a source tree (build/crmd), else the installed layout (/usr/bin/crmd, the package's
     * /usr/share/crmd/migrations) */
    struct stat st;
    if (db_repo_path("sql/migrations", buf, n) == 0 && stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return db_repo_path("share/crmd/migrations", buf, n);
}

static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Connects with a connect timeout unless conninfo sets its own. NULL with the reason in err. */
static PGconn *connect_db(const char *conninfo, char *err, size_t errlen)
{
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "crmd migrate", conninfo, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *m = PQerrorMessage(conn);
        size_t len = strcspn(m, "\n");
        set_err(err, errlen, "cannot connect to the database: %.*s", (int)len, m);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, notice_quiet, NULL);
    return conn;
}

/* Runs sql; 0 when it returned expect, else 1 with the server's message in err. */
static int exec_expect(PGconn *conn, const char *sql, ExecStatusType expect, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    int rc = 0;
    if (PQresultStatus(r) != expect) {
        const char *m = PQresultErrorMessage(r);
        set_err(err, errlen, "%.*s", (int)strcspn(m, "\n"), m);
        rc = 1;
    }
    PQclear(r);
    return rc;
}

/* The 1-based line of character offset pos (1-based, as PostgreSQL reports it) in sql. */
static int line_of(const char *sql, long pos)
{
    int line = 1;
    for (long i = 0; i < pos - 1 && sql[i]; i++)
        line += sql[i] == '\n';
    return line;
}

/* Applies one file in its own transaction with its schema_migrations row. */
static int apply_one(PGconn *conn, const char *dir, const migration_t *m, char *err, size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, m->file) >= sizeof(path)) {
        set_err(err, errlen, "migrations folder path too long: %s", dir);
        return 1;
    }
    char *sql = read_file(path, err, errlen);
    if (!sql)
        return 1;
    int rc = 1;
    if (exec_expect(conn, "BEGIN", PGRES_COMMAND_OK, err, errlen))
        goto out;
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (!msg)
            msg = PQerrorMessage(conn);
        if (pos)
            set_err(err, errlen, "%s line %d: %s (SQLSTATE %s)", m->file, line_of(sql, atol(pos)), msg,
                    code ? code : "?");
        else
            set_err(err, errlen, "%s: %.*s (SQLSTATE %s)", m->file, (int)strcspn(msg, "\n"), msg,
                    code ? code : "?");
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        goto out;
    }
    PQclear(r);
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *params[] = {version, m->name};
    r = PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL, params,
                     NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        set_err(err, errlen, "recording %s: %.*s", m->file, (int)strcspn(PQresultErrorMessage(r), "\n"),
                PQresultErrorMessage(r));
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        goto out;
    }
    PQclear(r);
    if (exec_expect(conn, "COMMIT", PGRES_COMMAND_OK, err, errlen))
        goto out;
    rc = 0;
out:
    free(sql);
    return rc;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Applied versions, ascending, into *out (caller frees). -1 on error with err set. */
static long applied_versions(PGconn *conn, int **out, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, "SELECT version FROM schema_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        long rc = -1;
        if (code && strcmp(code, "42P01") == 0) {
            *out = NULL; /* no schema_migrations table: nothing applied */
            rc = 0;
        } else {
            set_err(err, errlen, "reading schema_migrations: %.*s",
                    (int)strcspn(PQresultErrorMessage(r), "\n"), PQresultErrorMessage(r));
        }
        PQclear(r);
        return rc;
    }
    long n = PQntuples(r);
    *out = xcalloc((size_t)n, sizeof(int));
    for (long i = 0; i < n; i++)
        (*out)[i] = atoi(PQgetvalue(r, (int)i, 0));
    PQclear(r);
    return n;
}

static bool version_in(const int *v, long n, int version)
{
    for (long i = 0; i < n; i++)
        if (v[i] == version)
            return true;
    return false;
}

int db_migrate_run(const char *conninfo, const char *migrations_dir)
{
    char dirbuf[4096], err[1024] = "";
    migration_list_t files = {0};
    int *applied = NULL;
    PGconn *conn = NULL;
    int rc = 1;

    if (!migrations_dir) {
        if (db_migrations_dir(dirbuf, sizeof(dirbuf)) < 0) {
            set_err(err, sizeof(err), "cannot locate the migrations folder (set CRMD_MIGRATIONS_DIR)");
            goto out;
        }
        migrations_dir = dirbuf;
    }
    if (migration_list_load(migrations_dir, &files, err, sizeof(err)))
        goto out;
    if (!(conn = connect_db(conninfo, err, sizeof(err))))
        goto out;
    if (exec_expect(conn, "SET client_min_messages = warning", PGRES_COMMAND_OK, err, sizeof(err)))
        goto out;

    /* One migrator at a time; the lock is released when the session ends. */
    PGresult *r = PQexec(conn, "SELECT pg_try_advisory_lock(" MIGRATE_LOCK_KEY ")");
    bool got = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!got) {
        printf("waiting for another crmd migrate to finish\n");
        fflush(stdout);
        if (exec_expect(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", PGRES_TUPLES_OK, err,
                        sizeof(err)))
            goto out;
    }
    if (exec_expect(conn,
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                    " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                    PGRES_COMMAND_OK, err, sizeof(err)))
        goto out;
    long napplied = applied_versions(conn, &applied, err, sizeof(err));
    if (napplied < 0)
        goto out;
    int newest = files.v[files.len - 1].version;
    if (napplied > 0 && applied[napplied - 1] > newest) {
        set_err(err, sizeof(err), "database schema is at version %d, newer than this build knows (%d)",
                applied[napplied - 1], newest);
        goto out;
    }
    for (size_t i = 0; i < files.len; i++) {
        if (version_in(applied, napplied, files.v[i].version))
            continue;
        double t0 = now_ms();
        if (apply_one(conn, migrations_dir, &files.v[i], err, sizeof(err)))
            goto out;
        printf("applied %s (%.0f ms)\n", files.v[i].file, now_ms() - t0);
        fflush(stdout);
    }
    printf("schema up to date (version %d)\n", newest);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "crmd migrate: %s\n", err);
    if (conn)
        PQfinish(conn);
    free(applied);
    migration_list_free(&files);
    return rc;
}

int db_schema_check(const char *conninfo, const char *migrations_dir, char *err, size_t errlen)
{
    char dirbuf[4096];
    migration_list_t files = {0};
    int *applied = NULL;
    PGconn *conn = NULL;
    int rc = 1;

    if (!migrations_dir) {
        if (db_migrations_dir(dirbuf, sizeof(dirbuf)) < 0) {
            set_err(err, errlen, "cannot locate the migrations folder (set CRMD_MIGRATIONS_DIR)");
            goto out;
        }
        migrations_dir = dirbuf;
    }
    if (migration_list_load(migrations_dir, &files, err, errlen))
        goto out;
    if (!(conn = connect_db(conninfo, err, errlen)))
        goto out;
    long n = applied_versions(conn, &applied, err, errlen);
    if (n < 0)
        goto out;
    int newest = files.v[files.len - 1].version;
    int have = n > 0 ? applied[n - 1] : 0;
    if (have > newest) {
        set_err(err, errlen, "database schema is at version %d, newer than this build knows (%d)", have,
                newest);
        goto out;
    }
    if (have < newest) {
        set_err(err, errlen, "database schema is at version %d, this build expects %d: run `crmd migrate`",
                have, newest);
        goto out;
    }
    for (size_t i = 0; i < files.len; i++) {
        if (!version_in(applied, n, files.v[i].version)) {
            set_err(err, errlen, "database schema lacks migration %s: run `crmd migrate`", files.v[i].file);
            goto out;
        }
    }
    rc = 0;
out:
    if (conn)
        PQfinish(conn);
    free(applied);
    migration_list_free(&files);
    return rc;
}
