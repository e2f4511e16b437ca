/*
 * maintain_partitions: the monthly partitions of activities (sql/migrations/002_activities.sql).
 *
 *   1. partitions for every month up to PARTITION_MONTHS_AHEAD ahead exist;
 *   2. rows that landed in activities_default get their month's partition (made and filled by
 *      crmd_ensure_activity_partitions, which moves them in the same transaction);
 *   3. with PARTITION_RETENTION_MONTHS, each month that ended before the retention window is
 *      detached, archived as gzip CSV to ARCHIVE_DIR/activities_YYYY_MM.<table oid>.csv.gz (the oid:
 *      rows that arrive later for a retired month make a new table, whose archive must not
 *      overwrite the first; COPY TO STDOUT,
 *      written to a temporary name, fsynced, renamed), read back and its records counted against
 *      the table, and only then dropped;
 *   4. job_files older than 24 h and job_batches older than 7 days are purged.
 *
 * PostgreSQL 15 cannot DETACH PARTITION ... CONCURRENTLY while the table has a default
 * partition, so the detach is the plain one: a short ACCESS EXCLUSIVE lock on activities, taken
 * with lock_timeout (2 s) and retried, so that a long reader delays the job rather than queueing
 * every writer behind it.
 *
 * Every step is idempotent and the order makes a crash at any point safe: a month detached but
 * not dropped is found again by its name (a table activities_YYYY_MM that is no partition) and
 * archived or, when its archive is already there and complete, just verified; nothing is
 * dropped before its archive has been read back with the same row count. No row is lost.
 */
#include "api/jobs/handlers.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/config.h"
#include "core/csv.h"
#include "core/json.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ARCHIVE_MEMBER (1024 * 1024)

static PGresult *exec1(job_t *job, const char *what, const char *sql, const char *a)
{
    const char *v[1] = {a};
    return job_pg_exec(job, what, sql, a ? 1 : 0, a ? v : NULL);
}

static bool mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
                return false;
            *p = '/';
        }
    return mkdir(tmp, 0750) == 0 || errno == EEXIST;
}

static bool write_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return true;
}

/* COPY table TO the archive file (gzip members of ~1 MB), through a temporary name. */
static bool archive_table(job_t *job, const char *table, const char *path)
{
    PGconn *c = job_pg(job);
    if (!c)
        return false;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        job_set_error(job, "cannot write %s: %s", tmp, strerror(errno));
        return false;
    }
    char sql[200];
    snprintf(sql, sizeof(sql), "COPY %s TO STDOUT WITH (FORMAT csv, HEADER)", table);
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COPY_OUT;
    if (!ok)
        job_set_error(job, "archive COPY of %s: %s", table, PQerrorMessage(c));
    PQclear(r);
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(6);
    buf_t raw = BUF_INIT, out = BUF_INIT;
    char *line;
    int len = -1;
    while (ok && (len = PQgetCopyData(c, &line, 0)) > 0) {
        buf_append(&raw, line, (size_t)len);
        PQfreemem(line);
        if (raw.len >= ARCHIVE_MEMBER) {
            size_t bound = libdeflate_gzip_compress_bound(z, raw.len);
            out.len = 0;
            char *dst = buf_reserve(&out, bound);
            size_t n = libdeflate_gzip_compress(z, raw.data, raw.len, dst, bound);
            ok = n && write_all(fd, dst, n);
            raw.len = 0;
        }
    }
    if (ok) {
        r = PQgetResult(c);
        ok = len == -1 && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            job_set_error(job, "archive COPY of %s: %s", table, PQerrorMessage(c));
        PQclear(r);
    }
    if (ok && raw.len) {
        size_t bound = libdeflate_gzip_compress_bound(z, raw.len);
        out.len = 0;
        char *dst = buf_reserve(&out, bound);
        size_t n = libdeflate_gzip_compress(z, raw.data, raw.len, dst, bound);
        ok = n && write_all(fd, dst, n);
    }
    while ((r = PQgetResult(c)))
        PQclear(r);
    libdeflate_free_compressor(z);
    buf_free(&raw);
    buf_free(&out);
    if (ok && fsync(fd) != 0) {
        job_set_error(job, "fsync %s: %s", tmp, strerror(errno));
        ok = false;
    }
    close(fd);
    if (ok && rename(tmp, path) != 0) {
        job_set_error(job, "rename to %s: %s", path, strerror(errno));
        ok = false;
    }
    if (ok) { /* the rename itself reaches the disk with its folder */
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
        }
    } else {
        unlink(tmp);
    }
    return ok;
}

static bool count_record(const csv_record_t *rec, void *arg)
{
    (void)rec;
    (*(uint64_t *)arg)++;
    return true;
}

/* Reads an archive back: its data records (the header not counted), or -1 when it is not a
 * complete gzip CSV. */
static int64_t archive_records(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    buf_t in = BUF_INIT;
    for (;;) {
        char *dst = buf_reserve(&in, 1 << 16);
        ssize_t n = read(fd, dst, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        in.len += (size_t)n;
    }
    close(fd);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    char *out = xmalloc(ARCHIVE_MEMBER * 2);
    uint64_t records = 0;
    csv_parser_t p;
    csv_init(&p, count_record, &records);
    bool ok = in.len > 0;
    for (size_t off = 0; ok && off < in.len;) {
        size_t used = 0, got = 0;
        ok = libdeflate_gzip_decompress_ex(d, in.data + off, in.len - off, out, ARCHIVE_MEMBER * 2, &used,
                                           &got) == LIBDEFLATE_SUCCESS;
        if (ok)
            ok = csv_feed(&p, out, got);
        off += used;
    }
    ok = ok && csv_finish(&p);
    csv_free(&p);
    free(out);
    libdeflate_free_decompressor(d);
    buf_free(&in);
    return ok && records > 0 ? (int64_t)records - 1 : -1;
}

/* Archives table (detached already), checks the archive, then drops the table. */
static bool retire(job_t *job, const char *table, const char *oid, buf_t *report)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.%s.csv.gz", g_config.archive_dir, table, oid);
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    PGresult *r = job_pg_exec(job, "count", sql, 0, NULL);
    if (!r)
        return false;
    int64_t rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    int64_t have = archive_records(path);
    if (have != rows) { /* none yet, or an incomplete one from a crash: write it (again) */
        if (!archive_table(job, table, path))
            return false;
        have = archive_records(path);
    }
    if (have != rows) {
        job_set_error(job, "archive %s has %lld rows where %s has %lld: not dropped", path, (long long)have,
                      table, (long long)rows);
        return false;
    }
    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    r = job_pg_exec(job, "drop", sql, 0, NULL);
    if (!r)
        return false;
    PQclear(r);
    if (report->len > 1)
        buf_putc(report, ',');
    buf_printf(report, "{\"partition\":\"%s\",\"rows\":%lld,\"file\":", table, (long long)rows);
    json_str(report, path, strlen(path));
    buf_putc(report, '}');
    log_fields(LOG_INFO, "activity partition archived and dropped", "partition", table, "#rows",
               (int64_t)rows, "file", path, NULL);
    return true;
}

int job_maintain_partitions(job_t *job)
{
    char ahead[16];
    snprintf(ahead, sizeof(ahead), "%d", g_config.partition_months_ahead);
    PGresult *r = exec1(job, "create partitions",
                        "SELECT crmd_ensure_activity_partitions((now() AT TIME ZONE 'UTC')::date,"
                        " ((now() AT TIME ZONE 'UTC') + make_interval(months => $1::int))::date)",
                        ahead);
    if (!r)
        return JOB_RETRY;
    int created = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    job_progress(job, 0.1);

    /* rows in the default partition: each month of them gets its partition (rows moved) */
    r = exec1(job, "rows in default", "SELECT count(*) FROM activities_default", NULL);
    if (!r)
        return JOB_RETRY;
    long long in_default = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    r = exec1(job, "months in default",
              "SELECT DISTINCT to_char(date_trunc('month', occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
              " FROM activities_default ORDER BY 1",
              NULL);
    if (!r)
        return JOB_RETRY;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *m = PQgetvalue(r, i, 0);
        const char *v[2] = {m, m};
        PGresult *x = job_pg_exec(job, "move rows out of default",
                                  "SELECT crmd_ensure_activity_partitions($1::date, $2::date)", 2, v);
        if (!x) {
            PQclear(r);
            return JOB_RETRY;
        }
        created += atoi(PQgetvalue(x, 0, 0));
        PQclear(x);
    }
    PQclear(r);
    r = exec1(job, "rows in default", "SELECT count(*) FROM activities_default", NULL);
    if (!r)
        return JOB_RETRY;
    long long moved = in_default - atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    job_progress(job, 0.3);

    buf_t report = BUF_INIT;
    buf_putc(&report, '[');
    int dropped = 0;
    if (g_config.partition_retention_months > 0) {
        if (!mkdirs(g_config.archive_dir)) {
            job_set_error(job, "cannot create ARCHIVE_DIR %s: %s", g_config.archive_dir, strerror(errno));
            buf_free(&report);
            return JOB_RETRY;
        }
        char ret_s[16];
        snprintf(ret_s, sizeof(ret_s), "%d", g_config.partition_retention_months);
        /* attached partitions past the window, and tables of that name left detached by a crash */
        r = exec1(
            job, "old partitions",
            "SELECT c.relname, EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) AS attached,"
            " c.oid::text"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            " AND c.relname ~ '^activities_[0-9]{4}_[0-9]{2}$'"
            " AND to_date(substr(c.relname, 12), 'YYYY_MM') <"
            "     (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => $1::int))::date"
            " ORDER BY 1",
            ret_s);
        if (!r) {
            buf_free(&report);
            return JOB_RETRY;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            if (job_stopping(job)) {
                PQclear(r);
                buf_free(&report);
                return JOB_HANDBACK;
            }
            const char *table = PQgetvalue(r, i, 0);
            bool attached = PQgetvalue(r, i, 1)[0] == 't';
            if (attached) {
                char sql[200];
                snprintf(sql, sizeof(sql), "ALTER TABLE activities DETACH PARTITION %s", table);
                bool ok = false;
                for (int attempt = 0; attempt < 5 && !ok; attempt++) {
                    PGresult *x = job_pg_exec(job, "set lock_timeout", "SET lock_timeout = '2s'", 0, NULL);
                    if (x)
                        PQclear(x);
                    x = job_pg_exec(job, "detach", sql, 0, NULL);
                    ok = x != NULL;
                    if (x)
                        PQclear(x);
                    x = job_pg_exec(job, "reset lock_timeout", "RESET lock_timeout", 0, NULL);
                    if (x)
                        PQclear(x);
                }
                if (!ok) {
                    PQclear(r);
                    buf_free(&report);
                    return JOB_RETRY;
                }
            }
            if (!retire(job, table, PQgetvalue(r, i, 2), &report)) {
                PQclear(r);
                buf_free(&report);
                return JOB_RETRY;
            }
            dropped++;
            job_progress(job, 0.3 + 0.6 * (double)(i + 1) / (double)PQntuples(r));
        }
        PQclear(r);
    }
    buf_putc(&report, ']');

    long long purged = 0;
    r = exec1(job, "purge job files", "DELETE FROM job_files WHERE created_at < now() - interval '24 hours'",
              NULL);
    if (r) {
        purged = atoll(PQcmdTuples(r));
        PQclear(r);
    }
    r = exec1(job, "purge job batches", "DELETE FROM job_batches WHERE done_at < now() - interval '7 days'",
              NULL);
    if (r)
        PQclear(r);

    buf_t out = BUF_INIT;
    buf_printf(&out, "{\"created\":%d,\"moved\":%lld,\"archived\":", created, moved);
    buf_append(&out, report.data, report.len);
    buf_printf(&out, ",\"dropped\":%d,\"job_files_purged\":%lld}", dropped, purged);
    job_set_result(job, out.data, out.len);
    buf_free(&out);
    buf_free(&report);
    return JOB_DONE;
}
