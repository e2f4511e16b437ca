/*
 * import_companies: companies from a CSV or a JSON array (POST /api/import/companies, stored in
 * job_files) or from the rows of POST /api/jobs's payload.
 *
 * The upload is read chunk by chunk (never whole): CSV through core/csv.c, a JSON array by a
 * splitter that cuts its top-level elements. Every row is checked with the very rules of
 * POST /api/companies (writes_check_value), the valid ones go to a temporary staging table by
 * COPY, then merge into companies in batches of IMPORT_BATCH rows, each in a transaction that
 * also records the batch in job_batches: a job delivered again after its worker died skips the
 * batches already merged, so nothing is inserted twice.
 *
 * Deduplication by domain per organization (companies_org_domain_key, case-insensitive): a row
 * whose domain exists updates that company with the values the row gives (an absent or empty
 * value keeps what the company has: an import never clears a field);
 * within one file the last row of a domain wins, the earlier ones count as merged into it. Rows
 * without a domain are always new companies. A row naming an owner_id that is not a user of the
 * organization is refused; without one, the owner is the user who queued the import.
 *
 * Rows are numbered from 1 for the first data record (the header is not counted) or the first
 * element of a JSON array. The result keeps the first 100 errors; /api/jobs/{id}/result has
 * them all.
 */
#include "api/jobs/handlers.h"
#include "api/rest/writes_internal.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/config.h"
#include "core/csv.h"
#include "core/json.h"
#include "core/json_read.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_BATCH      5000
#define IMPORT_ERRORS_MAX 100
#define JSON_ELEMENT_MAX  (1024 * 1024)

typedef struct {
    job_t *job;
    PGconn *c;
    const wres_t *res;
    int64_t org_id;
    bool csv;
    /* CSV header: column i of the file is field colmap[i] of res */
    int colmap[CSV_MAX_FIELDS];
    int ncols;
    bool header_seen;
    uint32_t present; /* fields the file has (bit per field) */
    uint64_t rows;    /* data rows seen */
    uint64_t max_rn;  /* the highest row number staged (blank lines keep their numbers) */
    uint64_t staged;
    buf_t line;                /* one COPY line */
    buf_t errors;              /* JSON array members, comma-separated */
    uint64_t nerrors, refused; /* errors, and rows with at least one */
    uint64_t last_refused;     /* the row of the last error (rows come in order) */
    buf_t first_errors;
    char fatal[256];
    bool copy_failed;
    /* JSON array splitter */
    int jstate, depth;
    bool in_str, esc;
    buf_t elem;
} imp_t;

static void add_error(imp_t *m, uint64_t row, const char *field, size_t fn, const char *msg)
{
    buf_t *b = &m->errors;
    if (!m->nerrors || row != m->last_refused)
        m->refused++;
    m->last_refused = row;
    if (m->nerrors)
        buf_putc(b, ',');
    size_t start = b->len;
    buf_printf(b, "{\"row\":%llu,\"field\":", (unsigned long long)row);
    json_str(b, field, fn);
    buf_append(b, ",\"message\":", 11);
    json_str(b, msg, strlen(msg));
    buf_putc(b, '}');
    if (m->nerrors < IMPORT_ERRORS_MAX) {
        if (m->nerrors)
            buf_putc(&m->first_errors, ',');
        buf_append(&m->first_errors, b->data + start, b->len - start);
    }
    m->nerrors++;
}

/* COPY text format: backslash, tab, newline and CR escaped; NULL as \N. */
static void copy_value(buf_t *b, const char *s)
{
    if (!s) {
        buf_append(b, "\\N", 2);
        return;
    }
    for (; *s; s++) {
        switch (*s) {
        case '\\':
            buf_append(b, "\\\\", 2);
            break;
        case '\t':
            buf_append(b, "\\t", 2);
            break;
        case '\n':
            buf_append(b, "\\n", 2);
            break;
        case '\r':
            buf_append(b, "\\r", 2);
            break;
        default:
            buf_putc(b, *s);
        }
    }
}

/* Checks one row (an object) and stages it; errors are collected. */
static void stage_row(imp_t *m, uint64_t row, const json_value_t *obj)
{
    const wres_t *res = m->res;
    arena_t a;
    arena_init(&a, NULL, 0);
    const char *vals[W_MAX_FIELDS] = {0};
    uint32_t given = 0;
    bool bad = false;
    if (json_type(obj) != JSON_OBJECT) {
        add_error(m, row, "$", 1, "must be an object");
        arena_destroy(&a);
        return;
    }
    for (size_t i = 0, n = json_object_len(obj); i < n; i++) {
        size_t kn;
        const char *k = json_object_key_at(obj, i, &kn);
        size_t fi = 0;
        while (fi < res->nfields &&
               !(strlen(res->fields[fi].name) == kn && memcmp(res->fields[fi].name, k, kn) == 0))
            fi++;
        if (fi == res->nfields) {
            add_error(m, row, k, kn < 64 ? kn : 64, "is not a field of this resource");
            bad = true;
            continue;
        }
        const char *err = writes_check_value(&a, &res->fields[fi], json_object_value_at(obj, i), &vals[fi]);
        if (err) {
            add_error(m, row, res->fields[fi].name, strlen(res->fields[fi].name), err);
            bad = true;
        }
        given |= 1u << fi;
    }
    for (size_t fi = 0; fi < res->nfields; fi++)
        if (res->fields[fi].required && !(given & (1u << fi))) {
            add_error(m, row, res->fields[fi].name, strlen(res->fields[fi].name), "is required");
            bad = true;
        }
    if (!m->csv)
        m->present |= given;
    if (!bad && !m->copy_failed) {
        buf_t *l = &m->line;
        l->len = 0;
        buf_printf(l, "%llu", (unsigned long long)row);
        for (size_t fi = 0; fi < res->nfields; fi++) {
            buf_putc(l, '\t');
            copy_value(l, vals[fi]);
        }
        buf_putc(l, '\t');
        buf_printf(l, "%u", given);
        buf_putc(l, '\n');
        if (PQputCopyData(m->c, l->data, (int)l->len) != 1)
            m->copy_failed = true;
        m->staged++;
        if (row > m->max_rn)
            m->max_rn = row;
    }
    arena_destroy(&a);
}

/* ---- CSV ---- */

static bool on_csv_record(const csv_record_t *rec, void *arg)
{
    imp_t *m = arg;
    if (!m->header_seen) {
        m->header_seen = true;
        m->ncols = rec->nfields;
        for (int i = 0; i < rec->nfields; i++) {
            const char *h = rec->data + rec->off[i];
            size_t hn = rec->len[i];
            size_t fi = 0;
            while (fi < m->res->nfields &&
                   !(strlen(m->res->fields[fi].name) == hn && memcmp(m->res->fields[fi].name, h, hn) == 0))
                fi++;
            if (fi == m->res->nfields) {
                snprintf(m->fatal, sizeof(m->fatal),
                         "the header names an unknown column \"%.*s\" (columns: %s)",
                         (int)(hn < 64 ? hn : 64), h, "name, domain, industry, size, website, owner_id");
                return false;
            }
            if (m->present & (1u << fi)) {
                snprintf(m->fatal, sizeof(m->fatal), "the header names \"%s\" twice",
                         m->res->fields[fi].name);
                return false;
            }
            m->present |= 1u << fi;
            m->colmap[i] = (int)fi;
        }
        for (size_t fi = 0; fi < m->res->nfields; fi++)
            if (m->res->fields[fi].required && !(m->present & (1u << fi))) {
                snprintf(m->fatal, sizeof(m->fatal), "the header has no \"%s\" column, which is required",
                         m->res->fields[fi].name);
                return false;
            }
        return true;
    }
    uint64_t row = rec->number - 1;
    if (rec->nfields == 1 && rec->len[0] == 0)
        return true; /* a blank line */
    m->rows++;
    if (rec->nfields != m->ncols) {
        char msg[96];
        snprintf(msg, sizeof(msg), "has %d fields where the header has %d", rec->nfields, m->ncols);
        add_error(m, row, "$", 1, msg);
        return true;
    }
    /* the record as a JSON object: number fields as numbers when they look like one, empty
     * cells absent, so that the REST rules apply to CSV exactly as to JSON */
    buf_t j = BUF_INIT;
    buf_putc(&j, '{');
    bool first = true;
    for (int i = 0; i < rec->nfields; i++) {
        if (rec->len[i] == 0)
            continue;
        const wfield_t *f = &m->res->fields[m->colmap[i]];
        const char *v = rec->data + rec->off[i];
        if (!first)
            buf_putc(&j, ',');
        first = false;
        json_str(&j, f->name, strlen(f->name));
        buf_putc(&j, ':');
        bool numeric = f->kind == W_REF || f->kind == W_PERCENT || f->kind == W_MONEY;
        for (uint32_t k = 0; numeric && k < rec->len[i]; k++)
            numeric = (v[k] >= '0' && v[k] <= '9') || v[k] == '.' || (k == 0 && v[k] == '-');
        if (numeric && rec->len[i] < 40)
            buf_append(&j, v, rec->len[i]);
        else
            json_str(&j, v, rec->len[i]);
    }
    buf_putc(&j, '}');
    arena_t a;
    arena_init(&a, NULL, 0);
    json_error_t err;
    const json_value_t *obj = json_parse(&a, j.data, j.len, &err);
    if (obj)
        stage_row(m, row, obj);
    else
        add_error(m, row, "$", 1, "is not valid UTF-8 text");
    arena_destroy(&a);
    buf_free(&j);
    return !m->copy_failed;
}

/* ---- JSON array, split into its elements as the bytes come ---- */

enum { J_START, J_BETWEEN, J_ELEM, J_AFTER, J_END };

static void json_element(imp_t *m)
{
    uint64_t row = ++m->rows;
    arena_t a;
    arena_init(&a, NULL, 0);
    json_error_t err;
    const json_value_t *v = json_parse(&a, m->elem.data, m->elem.len, &err);
    if (!v)
        add_error(m, row, "$", 1, err.message ? err.message : "is not valid JSON");
    else
        stage_row(m, row, v);
    arena_destroy(&a);
    m->elem.len = 0;
}

static bool json_feed(imp_t *m, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        switch (m->jstate) {
        case J_START:
            if (ws)
                continue;
            if (c != '[') {
                snprintf(m->fatal, sizeof(m->fatal), "a JSON import must be an array of objects");
                return false;
            }
            m->jstate = J_BETWEEN;
            continue;
        case J_BETWEEN: /* before an element, or ] of an empty array */
            if (ws)
                continue;
            if (c == ']' && m->rows == 0) {
                m->jstate = J_END;
                continue;
            }
            m->jstate = J_ELEM;
            m->depth = 0;
            m->in_str = m->esc = false;
            /* fall through */
        case J_ELEM:
            if (m->elem.len >= JSON_ELEMENT_MAX) {
                snprintf(m->fatal, sizeof(m->fatal), "element %llu is over 1 MiB",
                         (unsigned long long)m->rows + 1);
                return false;
            }
            if (m->in_str) {
                if (m->esc)
                    m->esc = false;
                else if (c == '\\')
                    m->esc = true;
                else if (c == '"')
                    m->in_str = false;
            } else if (c == '"') {
                m->in_str = true;
            } else if (c == '{' || c == '[') {
                m->depth++;
            } else if (c == '}' || c == ']') {
                if (m->depth == 0) { /* the array's own ] right after an element */
                    if (c != ']') {
                        snprintf(m->fatal, sizeof(m->fatal), "the JSON array is malformed near element %llu",
                                 (unsigned long long)m->rows + 1);
                        return false;
                    }
                    json_element(m);
                    m->jstate = J_END;
                    continue;
                }
                m->depth--;
            } else if (c == ',' && m->depth == 0) {
                json_element(m);
                m->jstate = J_BETWEEN;
                continue;
            }
            buf_putc(&m->elem, c);
            continue;
        case J_END:
            if (!ws) {
                snprintf(m->fatal, sizeof(m->fatal), "text after the JSON array");
                return false;
            }
            continue;
        }
    }
    return true;
}

/* ---- the job ---- */

/* Feeds the upload's chunks, or the payload's rows, to the parser and the staging COPY. */
static bool read_input(imp_t *m, const json_value_t *payload, const char *upload)
{
    if (!upload) {
        const json_value_t *rows = json_object_get(payload, "rows");
        for (size_t i = 0, n = json_array_len(rows); i < n; i++)
            stage_row(m, ++m->rows, json_array_at(rows, i));
        return true;
    }
    csv_parser_t csv;
    csv_init(&csv, on_csv_record, m);
    bool ok = true;
    for (int seq = 0; ok; seq++) {
        char s[16];
        snprintf(s, sizeof(s), "%d", seq);
        char org[24];
        snprintf(org, sizeof(org), "%lld", (long long)m->org_id);
        const char *vals[3] = {upload, s, org};
        /* the COPY is in progress on m->c: chunks come over a second connection */
        PGresult *r = job_pg_exec(m->job, "read upload",
                                  "SELECT text_data FROM job_files WHERE file_id = $1 AND kind = 'upload'"
                                  " AND seq = $2::int AND org_id = $3::bigint",
                                  3, vals);
        if (!r) {
            ok = false;
            break;
        }
        if (PQntuples(r) == 0) {
            PQclear(r);
            if (seq == 0) {
                snprintf(m->fatal, sizeof(m->fatal), "the upload is gone (uploads are kept 24 h)");
                ok = false;
            }
            break;
        }
        const char *chunk = PQgetvalue(r, 0, 0);
        size_t len = (size_t)PQgetlength(r, 0, 0);
        ok = m->csv ? csv_feed(&csv, chunk, len) : json_feed(m, chunk, len);
        PQclear(r);
        job_progress(m->job, 0.05);
    }
    if (ok && m->csv)
        ok = csv_finish(&csv);
    if (!ok && m->csv && !m->fatal[0] && csv.error[0] && !csv.stopped)
        snprintf(m->fatal, sizeof(m->fatal), "the CSV is malformed: %s", csv.error);
    if (ok && !m->csv && m->jstate != J_END)
        snprintf(m->fatal, sizeof(m->fatal), "the JSON array is not closed");
    if (ok && m->csv && !m->header_seen)
        snprintf(m->fatal, sizeof(m->fatal), "the CSV is empty (a header row is required)");
    csv_free(&csv);
    return ok && !m->fatal[0];
}

int job_import_companies(job_t *job)
{
    uint64_t t0 = clock_now_ms();
    imp_t m;
    memset(&m, 0, sizeof(m));
    m.job = job;
    m.res = &g_wres[WR_COMPANIES];
    m.org_id = job->org_id;
    arena_t pa;
    arena_init(&pa, NULL, 0);
    const json_value_t *payload = json_parse(&pa, job->payload, job->payload_len, NULL);
    const json_value_t *up = json_object_get(payload, "upload");
    const json_value_t *fmt = json_object_get(payload, "format");
    const json_value_t *rows = json_object_get(payload, "rows");
    int64_t user_id = 0;
    json_get_i64(json_object_get(payload, "user_id"), &user_id);
    const char *upload = up && json_type(up) == JSON_STRING ? json_string(up, NULL) : NULL;
    int ret = JOB_RETRY;
    if ((!upload && !(rows && json_type(rows) == JSON_ARRAY)) || (upload && rows)) {
        job_set_error(job, "the payload needs \"rows\" (an array of companies) or an upload");
        arena_destroy(&pa);
        return JOB_FAIL;
    }
    m.csv = upload && fmt && json_type(fmt) == JSON_STRING && strcmp(json_string(fmt, NULL), "csv") == 0;
    /* the staging COPY runs on its own connection (the chunks are read on job_pg's) */
    PGconn *c = job_pg(job);
    if (!c) {
        arena_destroy(&pa);
        return JOB_RETRY;
    }
    const char *conninfo_keys[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
    const char *conninfo_vals[] = {g_config.database_url, "5", "crmd import",
                                   g_config.db_prepared ? "-c TimeZone=UTC" : NULL, NULL};
    if (!g_config.db_prepared)
        conninfo_keys[3] = NULL;
    m.c = PQconnectdbParams(conninfo_keys, conninfo_vals, 1);
    char org[24], user[24], job_id[JOBS_ID_MAX];
    snprintf(org, sizeof(org), "%lld", (long long)m.org_id);
    snprintf(user, sizeof(user), "%lld", (long long)user_id);
    snprintf(job_id, sizeof(job_id), "%s", job->id);
    PGresult *r = NULL;
    if (PQstatus(m.c) != CONNECTION_OK) {
        job_set_error(job, "database unreachable: %s", PQerrorMessage(m.c));
        goto out;
    }
    /* staging: the checked values, in field order, and which fields the row gave */
    buf_t ddl = BUF_INIT;
    buf_printf(&ddl, "CREATE TEMP TABLE import_stage (rn bigint PRIMARY KEY");
    for (size_t fi = 0; fi < m.res->nfields; fi++)
        buf_printf(&ddl, ", %s text", m.res->fields[fi].name);
    buf_printf(&ddl, ", given int); COPY import_stage FROM STDIN");
    buf_putc(&ddl, '\0');
    r = PQexec(m.c, ddl.data);
    buf_free(&ddl);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        job_set_error(job, "staging: %s", PQerrorMessage(m.c));
        goto out;
    }
    PQclear(r);
    r = NULL;
    bool read_ok = read_input(&m, payload, upload);
    PQputCopyEnd(m.c, read_ok ? NULL : "input refused");
    r = PQgetResult(m.c);
    if (read_ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
        job_set_error(job, "staging COPY: %s", PQerrorMessage(m.c));
        goto out;
    }
    PQclear(r);
    r = NULL;
    while ((r = PQgetResult(m.c)))
        PQclear(r);
    if (!read_ok) {
        if (m.fatal[0]) {
            job_set_error(job, "%s", m.fatal);
            ret = JOB_FAIL;
        }
        goto out;
    }
    job_progress(job, 0.3);
    uint64_t t_staged = clock_now_ms();

    /* owner ids must name users of the organization; within the file the last row of a domain wins */
    {
        const char *v[1] = {org};
        r = PQexecParams(m.c,
                         "SELECT rn FROM import_stage s WHERE owner_id IS NOT NULL AND NOT EXISTS"
                         " (SELECT 1 FROM users u WHERE u.org_id = $1::bigint AND u.id = s.owner_id::bigint)"
                         " ORDER BY rn",
                         1, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            job_set_error(job, "owner check: %s", PQerrorMessage(m.c));
            goto out;
        }
        for (int i = 0; i < PQntuples(r); i++)
            add_error(&m, strtoull(PQgetvalue(r, i, 0), NULL, 10), "owner_id", 8,
                      "is not a user of this organization");
        PQclear(r);
        r = PQexecParams(m.c,
                         "DELETE FROM import_stage s WHERE owner_id IS NOT NULL AND NOT EXISTS"
                         " (SELECT 1 FROM users u WHERE u.org_id = $1::bigint AND u.id = s.owner_id::bigint)",
                         1, NULL, v, NULL, NULL, 0);
        PQclear(r);
        r = PQexec(m.c, "DELETE FROM import_stage a USING import_stage b"
                        " WHERE a.domain IS NOT NULL AND lower(a.domain) = lower(b.domain) AND a.rn < b.rn");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            job_set_error(job, "dedupe: %s", PQerrorMessage(m.c));
            goto out;
        }
        PQclear(r);
        r = NULL;
    }

    /* the merge, batch by batch, each recorded with it */
    buf_t sql = BUF_INIT;
    buf_printf(&sql, "WITH m AS (INSERT INTO companies (org_id");
    for (size_t fi = 0; fi < m.res->nfields; fi++)
        buf_printf(&sql, ", %s", m.res->fields[fi].name);
    buf_printf(&sql, ") SELECT $1::bigint");
    for (size_t fi = 0; fi < m.res->nfields; fi++) {
        const wfield_t *f = &m.res->fields[fi];
        if (strcmp(f->name, "owner_id") == 0)
            buf_printf(&sql, ", coalesce(owner_id::bigint, nullif($2::bigint, 0))");
        else
            buf_printf(&sql, ", %s", f->name);
    }
    buf_printf(&sql, " FROM import_stage WHERE rn > $3::bigint AND rn <= $4::bigint ORDER BY rn"
                     " ON CONFLICT (org_id, lower(domain)) DO UPDATE SET updated_at = now()");
    for (size_t fi = 0; fi < m.res->nfields; fi++) /* what the row gives; an absent or empty value keeps */
        if (m.present & (1u << fi))
            buf_printf(&sql, ", %s = coalesce(EXCLUDED.%s, companies.%s)", m.res->fields[fi].name,
                       m.res->fields[fi].name, m.res->fields[fi].name);
    buf_printf(
        &sql,
        " RETURNING id, (xmax = 0) AS inserted),"
        " b AS (INSERT INTO job_batches (job_id, batch, inserted, updated)"
        " SELECT $5, $6::int, count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM m"
        " RETURNING inserted)"
        " SELECT m.id FROM m, b WHERE NOT m.inserted");
    buf_putc(&sql, '\0');
    uint64_t last_rn = m.max_rn;
    uint64_t nbatches = last_rn / IMPORT_BATCH + 1;
    buf_t updated_ids = BUF_INIT;
    for (uint64_t bno = 0; bno < nbatches; bno++) {
        if (job_stopping(job)) {
            buf_free(&sql);
            buf_free(&updated_ids);
            ret = JOB_HANDBACK;
            goto out;
        }
        char bs[24], lo[24], hi[24];
        snprintf(bs, sizeof(bs), "%llu", (unsigned long long)bno);
        snprintf(lo, sizeof(lo), "%llu", (unsigned long long)(bno * IMPORT_BATCH));
        snprintf(hi, sizeof(hi), "%llu", (unsigned long long)((bno + 1) * IMPORT_BATCH));
        const char *dv[2] = {job_id, bs};
        r = PQexecParams(m.c, "SELECT 1 FROM job_batches WHERE job_id = $1 AND batch = $2::int", 2, NULL, dv,
                         NULL, NULL, 0);
        bool done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        PQclear(r);
        r = NULL;
        if (done)
            continue; /* merged by an earlier delivery of this job */
        const char *v[6] = {org, user, lo, hi, job_id, bs};
        r = PQexecParams(m.c, sql.data, 6, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            job_set_error(job, "merge of batch %llu: %s", (unsigned long long)bno, PQerrorMessage(m.c));
            buf_free(&sql);
            buf_free(&updated_ids);
            goto out;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            buf_append(&updated_ids, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
            buf_putc(&updated_ids, '\0');
        }
        PQclear(r);
        r = NULL;
        job_progress(job, 0.3 + 0.6 * (double)(bno + 1) / (double)nbatches);
    }
    buf_free(&sql);
    uint64_t t_merged = clock_now_ms();

    /* caches: the organization's company lists and aggregates, and each updated company */
    char tag[64];
    snprintf(tag, sizeof(tag), "org:%lld:companies", (long long)m.org_id);
    job_invalidate(job, tag);
    for (size_t off = 0; off < updated_ids.len; off += strlen(updated_ids.data + off) + 1) {
        snprintf(tag, sizeof(tag), "company:%s", updated_ids.data + off);
        job_invalidate(job, tag);
    }
    buf_free(&updated_ids);

    /* totals from the recorded batches (an earlier delivery may have merged some) */
    {
        const char *v[1] = {job_id};
        r = PQexecParams(m.c,
                         "SELECT coalesce(sum(inserted), 0), coalesce(sum(updated), 0) FROM job_batches"
                         " WHERE job_id = $1",
                         1, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            job_set_error(job, "totals: %s", PQerrorMessage(m.c));
            goto out;
        }
        long long inserted = atoll(PQgetvalue(r, 0, 0)), updated = atoll(PQgetvalue(r, 0, 1));
        PQclear(r);
        r = NULL;
        /* the full error list, replaced as a whole (a re-delivery writes the same list) */
        buf_t all = BUF_INIT;
        buf_printf(&all, "{\"data\":{\"job_id\":\"%s\",\"errors\":[", job_id);
        buf_append(&all, m.errors.data, m.errors.len);
        buf_append(&all, "]}}", 3);
        buf_putc(&all, '\0');
        const char *fv[3] = {job_id, org, all.data};
        r = PQexecParams(
            m.c,
            "WITH d AS (DELETE FROM job_files WHERE file_id = $1 AND kind = 'result')"
            " INSERT INTO job_files (file_id, kind, seq, org_id, text_data) VALUES ($1, 'result', 0,"
            " $2::bigint, $3)",
            3, NULL, fv, NULL, NULL, 0);
        buf_free(&all);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            job_set_error(job, "storing the error list: %s", PQerrorMessage(m.c));
            goto out;
        }
        PQclear(r);
        r = NULL;
        buf_t res = BUF_INIT;
        buf_printf(
            &res,
            "{\"rows\":%llu,\"inserted\":%lld,\"updated\":%lld,\"merged_in_file\":%llu,\"refused\":%llu,"
            "\"error_count\":%llu,\"errors\":[",
            (unsigned long long)m.rows, inserted, updated,
            (unsigned long long)(m.rows - m.refused > (uint64_t)(inserted + updated)
                                     ? m.rows - m.refused - (uint64_t)(inserted + updated)
                                     : 0),
            (unsigned long long)m.refused, (unsigned long long)m.nerrors);
        buf_append(&res, m.first_errors.data, m.first_errors.len);
        buf_printf(&res, "],\"errors_truncated\":%s}", m.nerrors > IMPORT_ERRORS_MAX ? "true" : "false");
        job_set_result(job, res.data, res.len);
        buf_free(&res);
        ret = JOB_DONE;
        log_fields(LOG_INFO, "companies imported", "job", job->id, "#rows", (int64_t)m.rows, "#inserted",
                   (int64_t)inserted, "#updated", (int64_t)updated, "#refused", (int64_t)m.refused,
                   "#read_ms", (int64_t)(t_staged - t0), "#merge_ms", (int64_t)(t_merged - t_staged),
                   "#finish_ms", (int64_t)(clock_now_ms() - t_merged), NULL);
    }
out:
    if (r)
        PQclear(r);
    if (m.c)
        PQfinish(m.c);
    buf_free(&m.line);
    buf_free(&m.errors);
    buf_free(&m.first_errors);
    buf_free(&m.elem);
    arena_destroy(&pa);
    return ret;
}
