/*
 * export_deals: the organization's deals as CSV, with the filters of GET /api/deals (and its
 * q search), from `COPY (SELECT ...) TO STDOUT` read in chunks.
 *
 * The columns are the resource's (api/schema.c), written as the JSON API writes them:
 * timestamps RFC 3339 UTC, money without trailing zeros, dates YYYY-MM-DD, NULL empty. Every
 * ~1 MB of CSV becomes one gzip member (libdeflate), stored as a job_files row; concatenated the
 * members are one valid gzip file, which GET /api/jobs/{id}/result sends as it is to a client
 * that accepts gzip, decompressed member by member otherwise. The rows are replaced as a whole
 * in one transaction, so a re-delivered job leaves one copy. They expire after 24 h (purged by
 * maintain_partitions).
 */
#include "api/common.h"
#include "api/jobs/handlers.h"
#include "api/schema.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/json_read.h"
#include "core/log.h"

#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT_MEMBER (1024 * 1024)

/* The select list: each column as the JSON API writes it, named as in JSON. */
static void export_columns(buf_t *sql, const schema_res_t *res)
{
    for (size_t i = 0; i < res->ncols; i++) {
        const schema_col_t *c = &res->cols[i];
        if (i)
            buf_putc(sql, ',');
        switch (c->kind) {
        case COL_TIMESTAMP:
            buf_printf(sql, "to_char(t.%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", c->name);
            break;
        case COL_MONEY:
            buf_printf(sql, "trim_scale(t.%s)", c->name);
            break;
        default:
            buf_printf(sql, "t.%s", c->name);
        }
        buf_printf(sql, " AS \"%s\"", c->name);
    }
}

/* Appends a filter's SQL with its '?' as $n. */
static void export_filter(buf_t *sql, const char *tpl, int n)
{
    const char *q = strchr(tpl, '?');
    buf_append(sql, " AND ", 5);
    buf_append(sql, tpl, (size_t)(q - tpl));
    buf_printf(sql, "$%d", n);
    buf_append(sql, q + 1, strlen(q + 1));
}

typedef struct {
    struct libdeflate_compressor *z;
    buf_t raw, out;
    int seq;
    uint64_t raw_bytes, gz_bytes;
} packer_t;

/* Compresses what raw holds as one gzip member and stores it (inside the open transaction). */
static bool flush_member(job_t *job, PGconn *c, packer_t *p, const char *org)
{
    if (!p->raw.len)
        return true;
    size_t bound = libdeflate_gzip_compress_bound(p->z, p->raw.len);
    p->out.len = 0;
    char *dst = buf_reserve(&p->out, bound);
    size_t n = libdeflate_gzip_compress(p->z, p->raw.data, p->raw.len, dst, bound);
    if (!n) {
        job_set_error(job, "gzip failed");
        return false;
    }
    char seq[16];
    snprintf(seq, sizeof(seq), "%d", p->seq);
    const char *vals[4] = {job->id, seq, org, dst};
    int lens[4] = {0, 0, 0, (int)n};
    int fmts[4] = {0, 0, 0, 1};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO job_files (file_id, kind, seq, org_id, bin_data)"
                               " VALUES ($1, 'result', $2::int, $3::bigint, $4)",
                               4, NULL, vals, lens, fmts, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        job_set_error(job, "storing the export: %s", PQerrorMessage(c));
    PQclear(r);
    p->seq++;
    p->raw_bytes += p->raw.len;
    p->gz_bytes += n;
    p->raw.len = 0;
    return ok;
}

int job_export_deals(job_t *job)
{
    const schema_res_t *res = schema_find("deals");
    arena_t a;
    arena_init(&a, NULL, 0);
    const json_value_t *payload = json_parse(&a, job->payload, job->payload_len, NULL);
    const json_value_t *filters = json_object_get(payload, "filters");
    char org[24];
    snprintf(org, sizeof(org), "%lld", (long long)job->org_id);
    const char *values[2 + 16] = {org};
    int nv = 1;
    buf_t sql = BUF_INIT;
    buf_append(&sql, "COPY (SELECT ", 13);
    export_columns(&sql, res);
    buf_printf(&sql, " FROM %s t WHERE t.org_id = $1::bigint", res->table);
    int ret = JOB_FAIL;
    PGresult *r = NULL;
    packer_t p = {0};
    if (filters && json_type(filters) != JSON_OBJECT) {
        job_set_error(job, "payload.filters must be an object of GET /api/deals query parameters");
        goto out;
    }
    for (size_t i = 0, n = json_object_len(filters); i < n; i++) {
        size_t kn, vn;
        const char *k = json_object_key_at(filters, i, &kn);
        const json_value_t *v = json_object_value_at(filters, i);
        char num[40];
        const char *s = json_string(v, &vn);
        if (!s && json_type(v) == JSON_NUMBER) {
            s = json_number_text(v, &vn);
            snprintf(num, sizeof(num), "%.*s", (int)(vn < 39 ? vn : 39), s);
            s = num;
        } else if (!s && (json_type(v) == JSON_TRUE || json_type(v) == JSON_FALSE)) {
            s = json_type(v) == JSON_TRUE ? "true" : "false";
            vn = strlen(s);
        }
        const schema_filter_t *f = NULL;
        for (size_t fi = 0; fi < res->nfilters && !f; fi++)
            if (strlen(res->filters[fi].param.name) == kn && memcmp(res->filters[fi].param.name, k, kn) == 0)
                f = &res->filters[fi];
        bool is_q = kn == 1 && k[0] == 'q' && res->search;
        if (!f && !is_q) {
            job_set_error(job, "filters.%.*s is not a filter of GET /api/deals", (int)(kn < 64 ? kn : 64), k);
            goto out;
        }
        if (!s || nv >= 17) {
            job_set_error(job, "filters.%.*s must be a string, number or boolean", (int)(kn < 64 ? kn : 64),
                          k);
            goto out;
        }
        api_param_t qp = {"q", PARAM_TEXT, 200, NULL};
        api_value_t pv;
        const char *err = api_param_check(&a, f ? &f->param : &qp, s, vn, &pv);
        if (err) {
            job_set_error(job, "filters.%.*s %s", (int)(kn < 64 ? kn : 64), k, err);
            goto out;
        }
        values[nv++] = pv.s;
        if (f)
            export_filter(&sql, f->sql, nv);
        else
            buf_printf(&sql, " AND t.search @@ websearch_to_tsquery('simple', $%d::text)", nv);
    }
    buf_append(&sql, " ORDER BY t.id) TO STDOUT WITH (FORMAT csv, HEADER)", 51);
    buf_putc(&sql, '\0');

    ret = JOB_RETRY;
    PGconn *c = job_pg(job);
    if (!c)
        goto out;
    r = PQexec(c, "BEGIN");
    PQclear(r);
    r = PQexecParams(c, "DELETE FROM job_files WHERE file_id = $1 AND kind = 'result'", 1, NULL,
                     (const char *const[]){job->id}, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        job_set_error(job, "clearing an earlier export: %s", PQerrorMessage(c));
        goto rollback;
    }
    PQclear(r);
    r = NULL;
    /* the filter values inlined as literals (COPY has no parameters), escaped by libpq */
    buf_t final = BUF_INIT;
    for (const char *s = sql.data; *s; s++) {
        if (*s == '$' && s[1] >= '1' && s[1] <= '9') {
            int n = 0;
            while (s[1] >= '0' && s[1] <= '9')
                n = n * 10 + (*++s - '0');
            char *lit = PQescapeLiteral(c, values[n - 1], strlen(values[n - 1]));
            if (!lit) {
                buf_free(&final);
                job_set_error(job, "escaping a filter value: %s", PQerrorMessage(c));
                goto rollback;
            }
            buf_append(&final, lit, strlen(lit));
            PQfreemem(lit);
        } else {
            buf_putc(&final, *s);
        }
    }
    buf_putc(&final, '\0');
    r = PQexec(c, final.data);
    buf_free(&final);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        job_set_error(job, "export query: %s", PQerrorMessage(c));
        goto rollback;
    }
    PQclear(r);
    r = NULL;
    /* COPY OUT holds the connection until it ends: the compressed members (about a tenth of the
     * CSV) are kept until then and stored after it, in the same transaction */
    p.z = libdeflate_alloc_compressor(6);
    buf_t members = BUF_INIT; /* [len][gzip] ... */
    uint64_t rows = 0;
    char *line;
    int len;
    while ((len = PQgetCopyData(c, &line, 0)) > 0) {
        buf_append(&p.raw, line, (size_t)len);
        PQfreemem(line);
        rows++;
        if (p.raw.len >= EXPORT_MEMBER) {
            size_t bound = libdeflate_gzip_compress_bound(p.z, p.raw.len);
            uint32_t n32;
            size_t at = members.len;
            buf_reserve(&members, sizeof(n32) + bound);
            size_t n =
                libdeflate_gzip_compress(p.z, p.raw.data, p.raw.len, members.data + at + sizeof(n32), bound);
            n32 = (uint32_t)n;
            memcpy(members.data + at, &n32, sizeof(n32));
            members.len = at + sizeof(n32) + n;
            p.raw_bytes += p.raw.len;
            p.gz_bytes += n;
            p.raw.len = 0;
            job_progress(job, 0.5 * (double)members.len / (double)(members.len + EXPORT_MEMBER));
        }
    }
    r = PQgetResult(c);
    if (len != -1 || PQresultStatus(r) != PGRES_COMMAND_OK) {
        job_set_error(job, "export COPY: %s", PQerrorMessage(c));
        buf_free(&members);
        goto rollback;
    }
    PQclear(r);
    r = NULL;
    /* store the members, then the last partial one */
    for (size_t off = 0; off < members.len;) {
        uint32_t n32;
        memcpy(&n32, members.data + off, sizeof(n32));
        char seq[16];
        snprintf(seq, sizeof(seq), "%d", p.seq++);
        const char *vals[4] = {job->id, seq, org, members.data + off + sizeof(n32)};
        int lens[4] = {0, 0, 0, (int)n32};
        int fmts[4] = {0, 0, 0, 1};
        r = PQexecParams(c,
                         "INSERT INTO job_files (file_id, kind, seq, org_id, bin_data)"
                         " VALUES ($1, 'result', $2::int, $3::bigint, $4)",
                         4, NULL, vals, lens, fmts, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            job_set_error(job, "storing the export: %s", PQerrorMessage(c));
            buf_free(&members);
            goto rollback;
        }
        PQclear(r);
        r = NULL;
        off += sizeof(n32) + n32;
    }
    buf_free(&members);
    if (!flush_member(job, c, &p, org))
        goto rollback;
    r = PQexec(c, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        job_set_error(job, "commit: %s", PQerrorMessage(c));
        goto out;
    }
    PQclear(r);
    r = NULL;
    time_t exp = time(NULL) + 86400;
    struct tm tm;
    gmtime_r(&exp, &tm);
    char expires[32];
    strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char out[256];
    int n = snprintf(out, sizeof(out),
                     "{\"rows\":%llu,\"bytes\":%llu,\"gzip_bytes\":%llu,\"content_type\":\"text/csv\","
                     "\"expires_at\":\"%s\"}",
                     (unsigned long long)(rows ? rows - 1 : 0), (unsigned long long)p.raw_bytes,
                     (unsigned long long)p.gz_bytes, expires);
    job_set_result(job, out, (size_t)n);
    ret = JOB_DONE;
    goto out;
rollback:
    if (r)
        PQclear(r);
    r = PQexec(c, "ROLLBACK");
out:
    if (r)
        PQclear(r);
    if (p.z)
        libdeflate_free_compressor(p.z);
    buf_free(&p.raw);
    buf_free(&p.out);
    buf_free(&sql);
    arena_destroy(&a);
    return ret;
}
