/*
 * The jobs endpoints of API.md § Jobs, on reactor threads: everything goes through the
 * asynchronous Redis client (jobs/jobs.h) and, for uploads and results, the database pool.
 *
 *   POST   /api/jobs                 {"type", "payload"?, "priority"?, "run_at"?} -> 202
 *   GET    /api/jobs/stats           per type and state, for the caller's organization
 *   GET    /api/jobs/{id}            the job
 *   GET    /api/jobs/{id}/result     an export's CSV or an import's full error list
 *   DELETE /api/jobs/{id}            cancels a job that has not started
 *   POST   /api/jobs/{id}/retry      (admin) queues a dead or failed job again
 *   POST   /api/import/companies     a CSV or JSON-array body (<= 50 MB) -> an import job
 *
 * A job belongs to the organization that queued it: any other gets 404, as for rows. Types
 * that act on every organization (maintain_partitions, refresh_analytics, warm_cache) and the diagnostic
 * noop need an admin key. Where API.md is silent: a cancelled job has status "cancelled";
 * DELETE of a job that started or finished is 409; an Idempotency-Key replay answers 202 with
 * the first job, a reused key with another request 422.
 *
 * An upload is held whole by the HTTP layer (bounded by the route's 50 MB limit), then stored
 * in job_files in 1 MB chunks cut at character boundaries, so any instance's worker can import
 * it; the worker reads it chunk by chunk.
 */
#include "api/rest/jobs.h"
#include "api/common.h"
#include "api/jobs/handlers.h"
#include "api/route.h"
#include "core/common.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/timestamp.h"
#include "core/utf8.h"
#include "http/compress.h"
#include "jobs/jobs.h"
#include "redis/redis.h"

#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static db_stmt_t upload_stmt, result_stmt;

/* Types a member key may queue; the others need an admin key. */
static bool type_for_members(const char *t)
{
    return strcmp(t, "import_companies") == 0 || strcmp(t, "export_deals") == 0;
}

static void redis_down(http_ctx_t *ctx)
{
    http_add_header(ctx, LIT("Retry-After"), LIT("2"));
    http_respond_problem(ctx, 503, "service-unavailable", "the job queue is unavailable; try again shortly");
}

/* The {id} of /api/jobs/{id}...: digits only; NULL after a 404 (an id that cannot exist). */
static const char *job_id_param(http_ctx_t *ctx)
{
    int64_t id;
    if (ctx->nparams < 1 || ctx->params[0].len >= JOBS_ID_MAX ||
        !api_parse_id(ctx->params[0].p, ctx->params[0].len, &id)) {
        http_respond_problem(ctx, 404, "not-found", "no such job");
        return NULL;
    }
    return arena_strndup(&ctx->arena, ctx->params[0].p, ctx->params[0].len);
}

static void write_ms_time(json_writer_t *w, const redisReply *v)
{
    long long ms = v && v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
    if (ms <= 0) {
        json_w_null(w);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[32];
    size_t n = strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_w_str(w, s, n);
}

static const char *field_str(const redisReply *r, const char *name, size_t *len)
{
    const redisReply *v = jobs_field(r, name);
    if (!v || v->type != REDIS_REPLY_STRING) {
        *len = 0;
        return NULL;
    }
    *len = v->len;
    return v->str;
}

/* Writes the job object of API.md from an HGETALL reply. */
static void write_job(json_writer_t *w, const redisReply *r)
{
    size_t n;
    const char *s;
    json_obj_begin(w);
    s = field_str(r, "id", &n);
    json_kv_str(w, JSON_K("id"), s ? s : "", n);
    s = field_str(r, "type", &n);
    json_kv_str(w, JSON_K("type"), s ? s : "", n);
    s = field_str(r, "status", &n);
    json_kv_str(w, JSON_K("status"), s ? s : "", n);
    s = field_str(r, "priority", &n);
    json_kv_str(w, JSON_K("priority"), s && n == 1 && s[0] == '0' ? "high" : "normal",
                s && n == 1 && s[0] == '0' ? 4 : 6);
    s = field_str(r, "attempts", &n);
    json_kv_i64(w, JSON_K("attempts"), s ? strtoll(s, NULL, 10) : 0);
    s = field_str(r, "max_attempts", &n);
    json_kv_i64(w, JSON_K("max_attempts"), s ? strtoll(s, NULL, 10) : JOBS_MAX_ATTEMPTS);
    s = field_str(r, "progress", &n);
    json_kv_double(w, JSON_K("progress"), s ? strtod(s, NULL) : 0, 3);
    json_w_key(w, JSON_K("result"));
    s = field_str(r, "result", &n);
    if (s && n)
        json_w_raw(w, s, n); /* JSON a handler wrote */
    else
        json_w_null(w);
    s = field_str(r, "error", &n);
    if (s && n)
        json_kv_str(w, JSON_K("error"), s, n);
    else
        json_kv_null(w, JSON_K("error"));
    json_w_key(w, JSON_K("created_at"));
    write_ms_time(w, jobs_field(r, "created_at"));
    json_w_key(w, JSON_K("run_at"));
    write_ms_time(w, jobs_field(r, "run_at"));
    json_w_key(w, JSON_K("started_at"));
    write_ms_time(w, jobs_field(r, "started_at"));
    json_w_key(w, JSON_K("finished_at"));
    write_ms_time(w, jobs_field(r, "finished_at"));
    json_obj_end(w);
}

/* Whether a job reply exists and belongs to org. */
static bool job_of_org(const redisReply *r, const api_auth_t *auth)
{
    size_t n;
    const char *org = field_str(r, "org", &n);
    return org && n == strlen(auth->org_id_s) && memcmp(org, auth->org_id_s, n) == 0;
}

/* ---- POST /api/jobs ---- */

typedef struct {
    http_ctx_t *ctx;
    const api_auth_t *auth;
    char id[JOBS_ID_MAX];
    bool replay;
} post_t;

static void respond_accepted(http_ctx_t *ctx, const char *id, const char *status, bool replay)
{
    char loc[64];
    int n = snprintf(loc, sizeof(loc), "/api/jobs/%s", id);
    http_add_header(ctx, LIT("Location"), loc, (size_t)n);
    if (replay)
        http_add_header(ctx, LIT("Idempotent-Replayed"), LIT("true"));
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    json_obj_begin(&w);
    json_kv_str(&w, JSON_K("id"), id, strlen(id));
    json_kv_str(&w, JSON_K("status"), status, strlen(status));
    json_obj_end(&w);
    json_obj_end(&w);
    http_respond(ctx, 202, "application/json");
}

static void replay_status(void *arg, int status, redisReply *r)
{
    post_t *p = arg;
    size_t n = 0;
    const char *st = status == REDIS_STATUS_OK ? field_str(r, "status", &n) : NULL;
    char s[16] = "queued";
    if (st && n < sizeof(s)) {
        memcpy(s, st, n);
        s[n] = '\0';
    }
    respond_accepted(p->ctx, p->id, s, true);
}

static void enqueued(void *arg, int status, const char *id, bool created, bool same_request)
{
    post_t *p = arg;
    http_ctx_t *ctx = p->ctx;
    if (status != REDIS_STATUS_OK) {
        redis_down(ctx);
        return;
    }
    if (!created && !same_request) {
        api_respond_problem(ctx, 422, "idempotency-key-reused",
                            "this Idempotency-Key was used with another request", NULL);
        return;
    }
    snprintf(p->id, sizeof(p->id), "%s", id);
    log_fields(LOG_INFO, created ? "job queued" : "job request replayed", "request_id", ctx->request_id,
               "job", id, NULL);
    if (created) {
        respond_accepted(ctx, id, "queued", false);
        return;
    }
    jobs_get_async(id, replay_status, p);
}

/* The digest an Idempotency-Key is bound to: method, path and body. */
static const char *request_digest(http_ctx_t *ctx, const char *kind)
{
    sec_hash_ctx_t h;
    uint8_t out[16];
    sec_hash_init(&h, sizeof(out));
    sec_hash_update(&h, kind, strlen(kind));
    sec_hash_update(&h, ctx->body.p, ctx->body.len);
    sec_hash_final(&h, out);
    char *hex = arena_alloc(&ctx->arena, 2 * sizeof(out) + 1);
    sec_hex(hex, out, sizeof(out));
    return hex;
}

static void post_job(http_ctx_t *ctx, const api_auth_t *auth)
{
    const json_value_t *body = api_json_body(ctx, NULL);
    if (!body)
        return;
    api_errors_t errs = {0};
    if (json_type(body) != JSON_OBJECT) {
        api_errors_add(&errs, LIT("body"), "must be a JSON object");
        api_respond_problem(ctx, 422, "validation-failed", "one or more fields are invalid", &errs);
        return;
    }
    const json_value_t *tv = json_object_get(body, "type");
    const json_value_t *pv = json_object_get(body, "payload");
    const json_value_t *prv = json_object_get(body, "priority");
    const json_value_t *rv = json_object_get(body, "run_at");
    for (size_t i = 0; i < json_object_len(body); i++) {
        size_t kl;
        const char *k = json_object_key_at(body, i, &kl);
        if (strcmp(k, "type") && strcmp(k, "payload") && strcmp(k, "priority") && strcmp(k, "run_at"))
            api_errors_add(&errs, k, kl, "is not a field of a job");
    }
    size_t tl = 0;
    const char *type = tv && json_type(tv) == JSON_STRING ? json_string(tv, &tl) : NULL;
    if (!type || !jobs_type_known(type) || strlen(type) != tl)
        api_errors_add(&errs, LIT("type"),
                       "must be one of import_companies, export_deals, refresh_analytics, "
                       "maintain_partitions, warm_cache, noop");
    if (pv && json_type(pv) != JSON_OBJECT)
        api_errors_add(&errs, LIT("payload"), "must be a JSON object");
    int prio = JOB_PRIO_NORMAL;
    if (prv) {
        size_t n;
        const char *s = json_type(prv) == JSON_STRING ? json_string(prv, &n) : NULL;
        if (s && strcmp(s, "high") == 0)
            prio = JOB_PRIO_HIGH;
        else if (!s || strcmp(s, "normal") != 0)
            api_errors_add(&errs, LIT("priority"), "must be high or normal");
    }
    uint64_t run_at = 0;
    if (rv) {
        size_t n;
        const char *s = json_type(rv) == JSON_STRING ? json_string(rv, &n) : NULL;
        ts_t t;
        if (!s || !ts_parse_rfc3339(s, n, &t) || t.sec < 0)
            api_errors_add(&errs, LIT("run_at"), "must be an RFC 3339 timestamp after 1970");
        else
            run_at = (uint64_t)t.sec * 1000;
    }
    if (errs.n) {
        api_respond_problem(ctx, 422, "validation-failed", "one or more fields are invalid", &errs);
        return;
    }
    if (!auth->admin && !type_for_members(type)) {
        http_respond_problem(ctx, 403, "forbidden", "this job type needs an admin key");
        return;
    }
    bool import = strcmp(type, "import_companies") == 0;
    if (import) { /* {"rows": [...]}: the companies themselves (uploads go to /api/import/companies) */
        const json_value_t *rows = json_object_get(pv, "rows");
        if (!rows || json_type(rows) != JSON_ARRAY || json_object_len(pv) != 1) {
            api_errors_add(&errs, LIT("payload"), "must be {\"rows\": [companies]}");
            api_respond_problem(ctx, 422, "validation-failed", "one or more fields are invalid", &errs);
            return;
        }
    }
    buf_t *pb = arena_alloc(&ctx->arena, sizeof(buf_t));
    *pb = (buf_t)BUF_INIT;
    if (pv)
        json_value_write(pb, pv);
    if (import && pb->len > 1) { /* who queued it: the owner of companies that name none */
        pb->len--;
        buf_printf(pb, ",\"user_id\":%s}", auth->user_id_s);
    }
    if (pb->len > JOBS_PAYLOAD_MAX) {
        buf_free(pb);
        api_errors_add(&errs, LIT("payload"), "is over 64 KiB; send imports to POST /api/import/companies");
        api_respond_problem(ctx, 413, "payload-too-large", "the job payload is too large", &errs);
        return;
    }
    const char *idem = api_idempotency_key(ctx, auth->user_id_s);
    if (idem && !*idem) {
        buf_free(pb);
        return;
    }
    post_t *p = arena_alloc(&ctx->arena, sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->ctx = ctx;
    p->auth = auth;
    jobs_enqueue_t e = {
        .type = type,
        .org_id = auth->org_id,
        .payload = pb->len ? arena_strndup(&ctx->arena, (const char *)pb->data, pb->len) : NULL,
        .payload_len = pb->len,
        .priority = prio,
        .run_at_ms = run_at,
        .idem = idem,
        .idem_hash = idem ? request_digest(ctx, "POST /api/jobs") : NULL,
    };
    buf_free(pb);
    jobs_enqueue_async(&e, enqueued, p);
}

/* ---- GET /api/jobs/{id} ---- */

typedef struct {
    http_ctx_t *ctx;
    const api_auth_t *auth;
    const char *id;
} get_t;

/* Whether a job lookup found the caller's job; otherwise answers 503 or 404. */
static bool found_own_job(get_t *g, int status, const redisReply *r)
{
    if (status != REDIS_STATUS_OK) {
        redis_down(g->ctx);
        return false;
    }
    if (!job_of_org(r, g->auth)) {
        http_respond_problem(g->ctx, 404, "not-found", "no such job");
        return false;
    }
    return true;
}

static void got_job(void *arg, int status, redisReply *r)
{
    get_t *g = arg;
    http_ctx_t *ctx = g->ctx;
    if (!found_own_job(g, status, r))
        return;
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    write_job(&w, r);
    json_obj_end(&w);
    http_add_header(ctx, LIT("Cache-Control"), LIT("no-store"));
    http_respond(ctx, 200, "application/json");
}

static get_t *get_args(http_ctx_t *ctx, const api_auth_t *auth)
{
    const char *id = job_id_param(ctx);
    if (!id)
        return NULL;
    get_t *g = arena_alloc(&ctx->arena, sizeof(*g));
    g->ctx = ctx;
    g->auth = auth;
    g->id = id;
    return g;
}

static void get_job(http_ctx_t *ctx, const api_auth_t *auth)
{
    get_t *g = get_args(ctx, auth);
    if (g)
        jobs_get_async(g->id, got_job, g);
}

/* ---- GET /api/jobs/{id}/result ---- */

/* Hex text of a bytea ("\x...") into out; the decoded length. */
static size_t unhex(const char *s, size_t n, uint8_t *out)
{
    if (n < 2 || s[0] != '\\' || s[1] != 'x')
        return 0;
    size_t k = 0;
    for (size_t i = 2; i + 1 < n; i += 2) {
        int hi = s[i] <= '9' ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10;
        int lo = s[i + 1] <= '9' ? s[i + 1] - '0' : (s[i + 1] | 0x20) - 'a' + 10;
        out[k++] = (uint8_t)(hi << 4 | lo);
    }
    return k;
}

/* The uncompressed size of a gzip member (ISIZE, its last 4 bytes). */
static size_t gzip_isize(const uint8_t *p, size_t n)
{
    return n < 18
               ? 0
               : (size_t)p[n - 4] | (size_t)p[n - 3] << 8 | (size_t)p[n - 2] << 16 | (size_t)p[n - 1] << 24;
}

static void result_rows(db_batch_t *b, void *arg)
{
    get_t *g = arg;
    http_ctx_t *ctx = g->ctx;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    PGresult *r = b->results[0];
    int rows = PQntuples(r);
    if (rows == 0) {
        db_batch_release(b);
        http_respond_problem(ctx, 404, "not-found", "this job has no stored result (see its result field)");
        return;
    }
    buf_t *out = http_body(ctx);
    out->len = 0;
    if (!PQgetisnull(r, 0, 0)) { /* text: an import's error list, JSON */
        for (int i = 0; i < rows; i++)
            buf_append(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
        db_batch_release(b);
        http_add_header(ctx, LIT("Cache-Control"), LIT("private, no-store"));
        http_respond(ctx, 200, "application/json");
        return;
    }
    /* binary: gzip members, one per chunk */
    bool gzip = http_negotiate_encoding(ctx->req.accept_encoding) != HTTP_ENCODING_IDENTITY;
    struct libdeflate_decompressor *d = gzip ? NULL : libdeflate_alloc_decompressor();
    bool bad = false;
    for (int i = 0; i < rows && !bad; i++) {
        size_t hl = (size_t)PQgetlength(r, i, 1);
        uint8_t *bin = malloc(hl / 2 + 1);
        size_t bl = bin ? unhex(PQgetvalue(r, i, 1), hl, bin) : 0;
        if (gzip) {
            buf_append(out, bin, bl);
        } else {
            size_t raw = gzip_isize(bin, bl), got = 0;
            char *dst = buf_reserve(out, raw);
            bad = libdeflate_gzip_decompress(d, bin, bl, dst, raw, &got) != LIBDEFLATE_SUCCESS;
            out->len += got;
        }
        free(bin);
    }
    if (d)
        libdeflate_free_decompressor(d);
    db_batch_release(b);
    if (bad) {
        log_fields(LOG_ERROR, "stored job result does not decompress", "request_id", ctx->request_id, "job",
                   g->id, NULL);
        http_respond_problem(ctx, 500, "internal-error", "the stored result is damaged");
        return;
    }
    char disp[96];
    int n = snprintf(disp, sizeof(disp), "attachment; filename=\"deals-%s.csv\"", g->id);
    http_add_header(ctx, LIT("Content-Disposition"), disp, (size_t)n);
    http_add_header(ctx, LIT("Cache-Control"), LIT("private, no-store"));
    http_add_header(ctx, LIT("Vary"), LIT("Accept-Encoding"));
    if (gzip)
        http_add_header(ctx, LIT("Content-Encoding"), LIT("gzip"));
    http_respond_raw(ctx, 200, "text/csv; charset=utf-8", (const char *)out->data, out->len);
}

static void result_job(void *arg, int status, redisReply *r)
{
    get_t *g = arg;
    http_ctx_t *ctx = g->ctx;
    if (!found_own_job(g, status, r))
        return;
    size_t n;
    const char *st = field_str(r, "status", &n);
    if (!st || n != 9 || memcmp(st, "succeeded", 9) != 0) {
        http_respond_problem(ctx, 409, "conflict", "the job has not succeeded (see its status)");
        return;
    }
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    const char *values[2] = {g->id, g->auth->org_id_s};
    db_batch_add(b, result_stmt, 2, values);
    db_batch_submit(b, result_rows, g);
}

static void get_result(http_ctx_t *ctx, const api_auth_t *auth)
{
    get_t *g = get_args(ctx, auth);
    if (g)
        jobs_get_async(g->id, result_job, g);
}

/* ---- DELETE /api/jobs/{id}, POST /api/jobs/{id}/retry ---- */

static void changed(void *arg, int status, redisReply *r)
{
    get_t *g = arg;
    http_ctx_t *ctx = g->ctx;
    if (status != REDIS_STATUS_OK) {
        redis_down(ctx);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->integer < 0) {
        http_respond_problem(ctx, 404, "not-found", "no such job");
        return;
    }
    const char *st = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "";
    if (r->element[0]->integer == 0) {
        char detail[96];
        snprintf(detail, sizeof(detail), "the job is %s", st);
        api_respond_problem(ctx, 409, "conflict", detail, NULL);
        return;
    }
    log_fields(LOG_INFO, "job changed", "request_id", ctx->request_id, "job", g->id, "status", st, NULL);
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    json_obj_begin(&w);
    json_kv_str(&w, JSON_K("id"), g->id, strlen(g->id));
    json_kv_str(&w, JSON_K("status"), st, strlen(st));
    json_obj_end(&w);
    json_obj_end(&w);
    http_respond(ctx, 200, "application/json");
}

static void cancel_job(http_ctx_t *ctx, const api_auth_t *auth)
{
    get_t *g = get_args(ctx, auth);
    if (g)
        jobs_cancel_async(g->id, auth->org_id, changed, g);
}

static void retry_job(http_ctx_t *ctx, const api_auth_t *auth)
{
    get_t *g = get_args(ctx, auth);
    if (g)
        jobs_retry_async(g->id, auth->org_id, changed, g);
}

/* ---- GET /api/jobs/stats ---- */

static int64_t job_stat(const redisReply *r, const char *type, const char *what)
{
    char f[64];
    snprintf(f, sizeof(f), "%s|%s", type, what);
    const redisReply *v = jobs_field(r, f);
    int64_t n = v && v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
    return n > 0 ? n : 0;
}

static void got_stats(void *arg, int status, redisReply *r)
{
    http_ctx_t *ctx = arg;
    if (status != REDIS_STATUS_OK) {
        redis_down(ctx);
        return;
    }
    static const char *const states[] = {"queued", "running", "retrying", "succeeded",
                                         "failed", "dead",    "cancelled"};
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    json_obj_begin(&w);
    for (int t = 0; t < jobs_type_count(); t++) {
        const char *type = jobs_type_name(t);
        json_w_key_str(&w, type, strlen(type));
        json_obj_begin(&w);
        for (size_t i = 0; i < ARRAY_LEN(states); i++) {
            json_w_key_str(&w, states[i], strlen(states[i]));
            json_w_i64(&w, job_stat(r, type, states[i]));
        }
        int64_t dn = job_stat(r, type, "dur_n");
        json_w_key(&w, JSON_K("avg_duration_ms"));
        if (dn)
            json_w_double(&w, (double)job_stat(r, type, "dur_ms") / (double)dn, 1);
        else
            json_w_null(&w);
        json_obj_end(&w);
    }
    json_obj_end(&w);
    json_obj_end(&w);
    http_add_header(ctx, LIT("Cache-Control"), LIT("no-store"));
    http_respond(ctx, 200, "application/json");
}

static void job_stats(http_ctx_t *ctx, const api_auth_t *auth)
{
    jobs_stats_async(auth->org_id, got_stats, ctx);
}

/* ---- POST /api/import/companies ---- */

typedef struct {
    http_ctx_t *ctx;
    const api_auth_t *auth;
    char file_id[33];
    const char *format;
    size_t off; /* body bytes stored so far */
    int seq;
} upload_t;

static void upload_next(upload_t *u);

static void upload_stored(db_batch_t *b, void *arg)
{
    upload_t *u = arg;
    if (b->status != DB_OK) {
        api_respond_db_error(u->ctx, b);
        return;
    }
    db_batch_release(b);
    upload_next(u);
}

/* The end of the next chunk from off: at most JOB_FILE_CHUNK bytes, cut before a UTF-8
 * continuation byte. */
static size_t chunk_end(const char *p, size_t off, size_t len)
{
    size_t end = off + JOB_FILE_CHUNK < len ? off + JOB_FILE_CHUNK : len;
    while (end < len && end > off && ((unsigned char)p[end] & 0xc0) == 0x80)
        end--;
    return end;
}

static void upload_next(upload_t *u)
{
    http_ctx_t *ctx = u->ctx;
    const char *body = ctx->body.p;
    size_t len = ctx->body.len;
    if (u->off < len) {
        db_batch_t *b = db_batch_new(&ctx->arena, DB_WRITE);
        for (int q = 0; q < 8 && u->off < len; q++) {
            size_t end = chunk_end(body, u->off, len);
            char seq[16];
            snprintf(seq, sizeof(seq), "%d", u->seq++);
            const char *values[4] = {u->file_id, seq, u->auth->org_id_s,
                                     arena_strndup(&ctx->arena, body + u->off, end - u->off)};
            db_batch_add(b, upload_stmt, 4, values);
            u->off = end;
        }
        db_batch_submit(b, upload_stored, u);
        return;
    }
    char payload[192];
    int n = snprintf(payload, sizeof(payload),
                     "{\"upload\":\"%s\",\"format\":\"%s\",\"bytes\":%zu,\"user_id\":%s}", u->file_id,
                     u->format, len, u->auth->user_id_s);
    const char *idem = api_idempotency_key(ctx, u->auth->user_id_s);
    if (idem && !*idem)
        return;
    post_t *p = arena_alloc(&ctx->arena, sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->ctx = ctx;
    p->auth = u->auth;
    jobs_enqueue_t e = {
        .type = "import_companies",
        .org_id = u->auth->org_id,
        .payload = arena_strndup(&ctx->arena, payload, (size_t)n),
        .payload_len = (size_t)n,
        .priority = JOB_PRIO_NORMAL,
        .idem = idem,
        .idem_hash = idem ? request_digest(ctx, "POST /api/import/companies") : NULL,
    };
    jobs_enqueue_async(&e, enqueued, p);
}

static void import_companies(http_ctx_t *ctx, const api_auth_t *auth)
{
    const char *format;
    if (api_media_type_is(ctx->req.content_type, "text/csv"))
        format = "csv";
    else if (api_media_type_is(ctx->req.content_type, "application/json"))
        format = "json";
    else {
        http_add_header(ctx, LIT("Accept-Post"), LIT("text/csv, application/json"));
        http_respond_problem(ctx, 415, "unsupported-media-type",
                             "send text/csv or a JSON array (application/json)");
        return;
    }
    http_str_t body = ctx->body;
    if (body.len == 0) {
        http_respond_problem(ctx, 400, "bad-request", "the body is empty");
        return;
    }
    if (!utf8_valid(body.p, body.len) || memchr(body.p, '\0', body.len)) {
        log_fields(LOG_INFO, "import refused: not UTF-8 text", "request_id", ctx->request_id, NULL);
        http_respond_problem(ctx, 400, "bad-request", "the body must be UTF-8 text without NUL bytes");
        return;
    }
    if (format[0] == 'j') {
        size_t i = 0;
        while (i < body.len &&
               (body.p[i] == ' ' || body.p[i] == '\n' || body.p[i] == '\r' || body.p[i] == '\t'))
            i++;
        if (i == body.len || body.p[i] != '[') {
            http_respond_problem(ctx, 400, "bad-request", "a JSON import must be an array of companies");
            return;
        }
    }
    upload_t *u = arena_alloc(&ctx->arena, sizeof(*u));
    memset(u, 0, sizeof(*u));
    u->ctx = ctx;
    u->auth = auth;
    u->format = format;
    uint8_t rnd[16];
    sec_random(rnd, sizeof(rnd));
    sec_hex(u->file_id, rnd, sizeof(rnd));
    upload_next(u);
}

void api_jobs_routes(router_t *rt)
{
    upload_stmt = db_stmt("INSERT INTO job_files (file_id, kind, seq, org_id, text_data)"
                          " VALUES ($1, 'upload', $2::int, $3::bigint, $4)");
    result_stmt = db_stmt("SELECT text_data, bin_data FROM job_files"
                          " WHERE file_id = $1 AND kind = 'result' AND org_id = $2::bigint ORDER BY seq");
    api_route(rt, HTTP_POST, "/api/jobs", post_job, 0, ROUTE_CLASS_EXPENSIVE, "POST /api/jobs");
    api_route_cached(rt, HTTP_GET, "/api/jobs/stats", job_stats, 0, ROUTE_CLASS_NORMAL, "GET /api/jobs/stats",
                     NULL);
    api_route_cached(rt, HTTP_GET, "/api/jobs/{id}", get_job, 0, ROUTE_CLASS_NORMAL, "GET /api/jobs/{id}",
                     NULL);
    api_route_cached(rt, HTTP_GET, "/api/jobs/{id}/result", get_result, 0, ROUTE_CLASS_EXPENSIVE,
                     "GET /api/jobs/{id}/result", NULL);
    api_route(rt, HTTP_DELETE, "/api/jobs/{id}", cancel_job, 0, ROUTE_CLASS_NORMAL, "DELETE /api/jobs/{id}");
    api_route(rt, HTTP_POST, "/api/jobs/{id}/retry", retry_job, ROUTE_ADMIN, ROUTE_CLASS_NORMAL,
              "POST /api/jobs/{id}/retry");
    api_route_limit(rt, HTTP_POST, "/api/import/companies", import_companies, 0, ROUTE_CLASS_BULK,
                    "POST /api/import/companies", (int64_t)JOB_IMPORT_MAX);
}
