/*
 * POST /graphql and GET /graphql, per the GraphQL-over-HTTP specification: the request's
 * parameters (query, operationName, variables, extensions) from a JSON body or the query
 * string; the response media type from Accept (application/graphql-response+json or
 * application/json; a wildcard and a missing Accept get application/json, as the specification says
 * and its audit checks);
request errors(a document that does not parse or validate, variables *that do not coerce, a limit passed) are
        400 under graphql
        - response + json
    and 200 under json,
    *without "data";
mutations over GET are 405; persisted queries by SHA-256 hash (APQ). A
 * query's result is kept in the response cache under the tags of every resource it read, so
 * the writes that invalidate REST views invalidate it too. Per operation name: requests,
 * latency and statements, for /metrics.
 */
#include "api/graphql/graphql.h"
#include "api/cached.h"
#include "api/common.h"
#include "api/graphql/cost.h"
#include "api/graphql/exec.h"
#include "api/graphql/schema.h"
#include "api/limit/limit.h"
#include "api/route.h"
#include "cache/lru.h"
#include "cache/tiered.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/shards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DOCUMENT  (64 * 1024) /* bytes of a query document */
#define MAX_TOKENS    8000
#define MAX_ALIASES   200
#define MAX_VARIABLES (256 * 1024) /* bytes of the variables JSON in a GET */

static const char CT_GQL[] = "application/graphql-response+json; charset=utf-8";
static const char CT_JSON[] = "application/json; charset=utf-8";

/* ---------------------------------------------------------------- per-operation metrics */

#define OPS_PER_THREAD 64
#define OP_NAME_MAX    64

typedef struct op_stats {
    char name[OP_NAME_MAX];
    uint64_t requests, errors, statements;
    hist_t latency_us;
} op_stats_t;

typedef struct op_table {
    op_stats_t ops[OPS_PER_THREAD];
    int n;
} op_table_t;

static shards_t op_shards;
static __thread op_table_t *tl_ops;

static op_stats_t *op_slot(const char *name)
{
    if (!tl_ops)
        shards_add(&op_shards, tl_ops = xcalloc(1, sizeof(*tl_ops)));
    for (int i = 0; i < tl_ops->n; i++)
        if (strcmp(tl_ops->ops[i].name, name) == 0)
            return &tl_ops->ops[i];
    /* the last slot collects every name past the table: clients choose names */
    if (tl_ops->n == OPS_PER_THREAD - 1)
        name = "(other)";
    for (int i = 0; i < tl_ops->n; i++)
        if (strcmp(tl_ops->ops[i].name, name) == 0)
            return &tl_ops->ops[i];
    op_stats_t *o = &tl_ops->ops[tl_ops->n++];
    snprintf(o->name, sizeof(o->name), "%s", name);
    return o;
}

void gql_metrics_each(gql_metrics_fn fn, void *arg)
{
    static __thread op_stats_t merged[OPS_PER_THREAD * 4];
    int n = 0;
    SHARDS_EACH(&op_shards, op_table_t, t)
    {
        for (int i = 0; i < t->n; i++) {
            op_stats_t *m = NULL;
            for (int k = 0; k < n && !m; k++)
                if (strcmp(merged[k].name, t->ops[i].name) == 0)
                    m = &merged[k];
            if (!m) {
                if (n == (int)ARRAY_LEN(merged))
                    continue;
                m = &merged[n++];
                memset(m, 0, sizeof(*m));
                memcpy(m->name, t->ops[i].name, sizeof(m->name));
            }
            m->requests += t->ops[i].requests;
            m->errors += t->ops[i].errors;
            m->statements += t->ops[i].statements;
            hist_merge(&m->latency_us, &t->ops[i].latency_us);
        }
    }
    for (int k = 0; k < n; k++)
        fn(merged[k].name, merged[k].requests, merged[k].errors, merged[k].statements, &merged[k].latency_us,
           arg);
}

void gql_metrics_free(void)
{
    SHARDS_EACH(&op_shards, op_table_t, t)
    free(t);
    shards_reset(&op_shards);
}

/* ---------------------------------------------------------------- a request */

typedef struct gql_req {
    http_ctx_t *ctx;
    const api_auth_t *auth;
    bool json;         /* respond application/json (else graphql-response+json) */
    const char *query; /* the document */
    size_t query_len;
    const char *operation_name; /* NULL: none */
    const json_value_t *variables;
    gql_errors_t errs;
    gql_exec_t ex;
    const gql_doc_t *doc;
    const gql_def_t *op;
    gql_vars_t vars;
    const char *op_label;
    uint64_t start_ns;
    const char *cache_key;
    size_t cache_key_len;
    uint64_t cost;
} gql_req_t;

static const char *content_type(const gql_req_t *q)
{
    return q->json ? CT_JSON : CT_GQL;
}

/* Answers a request error: {"errors": [...]} without data; 400, or 200 under application/json
 * for errors of the document and its variables (the specification's "request errors" there). */
static void respond_errors(gql_req_t *q, int json_status)
{
    http_ctx_t *ctx = q->ctx;
    buf_t *b = http_body(ctx);
    b->len = 0;
    buf_append_lit(b, "{\"errors\":");
    gql_errors_write(b, &q->errs);
    buf_putc(b, '}');
    ctx->no_store = true;
    op_stats_t *o = op_slot(q->op_label ? q->op_label : "(invalid)");
    o->requests++;
    o->errors++;
    http_respond(ctx, q->json ? json_status : 400, content_type(q));
}

/* A request that is not a GraphQL request at all (bad JSON, bad parameters): 400 either way. */
static void respond_bad_request(gql_req_t *q, const char *message)
{
    gql_errors_add(&q->errs, NULL, 0, "%s", message);
    respond_errors(q, 400);
}

/* ---------------------------------------------------------------- Accept */

/* Which of our media types Accept prefers: 1 graphql-response+json, 2 json, 0 neither. A
 * missing Accept, and wildcards, mean application/json. */
static int negotiate(http_ctx_t *ctx)
{
    http_str_t accept = {NULL, 0};
    for (uint32_t i = 0; i < ctx->req.num_headers; i++)
        if (ctx->req.headers[i].name.len == 6 && strncasecmp(ctx->req.headers[i].name.p, "accept", 6) == 0)
            accept = ctx->req.headers[i].value;
    if (!accept.len)
        return 2;
    double q_gql = -1, q_json = -1, q_wild = -1;
    const char *p = accept.p, *end = accept.p + accept.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        while (p < item_end && (*p == ' ' || *p == '\t'))
            p++;
        size_t ilen = p < item_end ? (size_t)(item_end - p) : 0;
        const char *semi = ilen ? memchr(p, ';', ilen) : NULL;
        const char *type_end = semi ? semi : item_end;
        while (type_end > p && (type_end[-1] == ' ' || type_end[-1] == '\t'))
            type_end--;
        size_t tn = (size_t)(type_end - p);
        double qv = 1;
        for (const char *s = semi; s && s < item_end;) {
            s++;
            while (s < item_end && (*s == ' ' || *s == '\t'))
                s++;
            if (item_end - s >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=')
                qv = strtod(s + 2, NULL);
            size_t rest = s < item_end ? (size_t)(item_end - s) : 0;
            s = rest ? memchr(s, ';', rest) : NULL;
        }
        if (tn == 33 && strncasecmp(p, "application/graphql-response+json", 33) == 0)
            q_gql = qv > q_gql ? qv : q_gql;
        else if (tn == 16 && strncasecmp(p, "application/json", 16) == 0)
            q_json = qv > q_json ? qv : q_json;
        else if ((tn == 3 && memcmp(p, "*/*", 3) == 0) ||
                 (tn == 13 && strncasecmp(p, "application/*", 13) == 0))
            q_wild = qv > q_wild ? qv : q_wild;
        p = comma ? comma + 1 : end;
    }
    if (q_gql > 0 && q_gql >= q_json)
        return 1;
    if (q_json > 0)
        return 2;
    if (q_wild > 0)
        return 2;
    return 0;
}

/* ---------------------------------------------------------------- persisted queries */

static void hex(char *out, const uint8_t *h, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[2 * n] = '\0';
}

/* "apq:<hash>" */
static size_t apq_key(char out[80], const char *hash)
{
    return (size_t)snprintf(out, 80, "apq:%s", hash);
}

/* Applies extensions.persistedQuery: a hash alone looks the document up; a hash with a query is
 * checked and kept. False when the request was answered (an error). */
static bool persisted_query(gql_req_t *q, const json_value_t *ext)
{
    const json_value_t *pq = json_object_get(ext, "persistedQuery");
    if (!pq)
        return true;
    size_t hn = 0;
    const char *hash = json_string(json_object_get(pq, "sha256Hash"), &hn);
    int64_t version = 0;
    if (json_type(pq) != JSON_OBJECT || !hash || hn != 64 ||
        !json_get_i64(json_object_get(pq, "version"), &version) || version != 1) {
        respond_bad_request(
            q, "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": <64 hex digits>}.");
        return false;
    }
    char lower[65];
    for (size_t i = 0; i < 64; i++) {
        char c = hash[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            respond_bad_request(q, "extensions.persistedQuery.sha256Hash must be 64 hex digits.");
            return false;
        }
        lower[i] = c;
    }
    lower[64] = '\0';
    char key[80];
    size_t kn = apq_key(key, lower);
    cache_t *c = tcache_l1();
    if (q->query) {
        uint8_t h[SEC_SHA256_BYTES];
        char hx[65];
        sec_sha256(h, q->query, q->query_len);
        hex(hx, h, sizeof(h));
        if (strcmp(hx, lower) != 0) {
            respond_bad_request(q, "provided sha does not match query");
            return false;
        }
        if (c) {
            cache_entry_t *e = cache_entry_new(key, kn, q->query, q->query_len, 0, "application/graphql", 200,
                                               CACHE_TIER_STATIC, NULL, 0, NULL);
            cache_put(c, e, clock_now_ms());
            cache_release(e);
        }
        return true;
    }
    cache_entry_t *e = c ? cache_get(c, CACHE_TIER_STATIC, key, kn, clock_now_ms()) : NULL;
    if (!e) {
        gql_err_t *ge = gql_errors_add(&q->errs, NULL, 0, "PersistedQueryNotFound");
        if (ge)
            ge->code = "PERSISTED_QUERY_NOT_FOUND";
        respond_errors(q, 200);
        return false;
    }
    size_t n = 0;
    const void *body = cache_entry_body(e, CACHE_ENC_IDENTITY, &n);
    q->query = arena_memdup(&q->ctx->arena, body, n);
    q->query_len = n;
    cache_release(e);
    return true;
}

/* ---------------------------------------------------------------- parameters */

/* Reads the POST body's members; false when answered. */
static bool params_from_body(gql_req_t *q, const json_value_t **ext)
{
    http_ctx_t *ctx = q->ctx;
    if (!ctx->req.content_type.len) {
        http_respond_problem(ctx, 415, "unsupported-media-type",
                             "a GraphQL POST needs Content-Type: application/json");
        return false;
    }
    if (!api_media_type_is(ctx->req.content_type, "application/json")) {
        http_add_header(ctx, LIT("Accept-Post"), LIT("application/json"));
        http_respond_problem(ctx, 415, "unsupported-media-type",
                             "a GraphQL POST body must be application/json");
        return false;
    }
    if (!ctx->body.len) {
        respond_bad_request(q, "The request body is empty: it must be a JSON object with a query.");
        return false;
    }
    json_error_t err;
    const json_value_t *body = json_parse(&ctx->arena, ctx->body.p, ctx->body.len, &err);
    if (!body || json_type(body) != JSON_OBJECT) {
        char msg[160];
        if (!body)
            snprintf(msg, sizeof(msg), "The body is not JSON: %s at line %zu, column %zu.", err.message,
                     err.line, err.column);
        else
            snprintf(msg, sizeof(msg), "The body must be a JSON object.");
        respond_bad_request(q, arena_strndup(&ctx->arena, msg, strlen(msg)));
        return false;
    }
    for (size_t i = 0; i < json_object_len(body); i++) {
        size_t kn;
        const char *k = json_object_key_at(body, i, &kn);
        const json_value_t *v = json_object_value_at(body, i);
        json_type_t t = json_type(v);
        if (kn == 5 && memcmp(k, "query", 5) == 0) {
            if (t == JSON_STRING)
                q->query = json_string(v, &q->query_len);
            else if (t != JSON_NULL) {
                respond_bad_request(q, "\"query\" must be a string.");
                return false;
            }
        } else if (kn == 13 && memcmp(k, "operationName", 13) == 0) {
            size_t n = 0;
            const char *name = json_string(v, &n);
            if (t == JSON_STRING)
                q->operation_name = arena_strndup(&ctx->arena, name, n);
            else if (t != JSON_NULL) {
                respond_bad_request(q, "\"operationName\" must be a string or null.");
                return false;
            }
        } else if (kn == 9 && memcmp(k, "variables", 9) == 0) {
            if (t == JSON_OBJECT)
                q->variables = v;
            else if (t != JSON_NULL) {
                respond_bad_request(q, "\"variables\" must be an object or null.");
                return false;
            }
        } else if (kn == 10 && memcmp(k, "extensions", 10) == 0) {
            if (t == JSON_OBJECT)
                *ext = v;
            else if (t != JSON_NULL) {
                respond_bad_request(q, "\"extensions\" must be an object or null.");
                return false;
            }
        } else {
            char msg[128];
            snprintf(msg, sizeof(msg), "Unknown request parameter \"%.*s\".", (int)(kn > 40 ? 40 : kn), k);
            respond_bad_request(q, arena_strndup(&ctx->arena, msg, strlen(msg)));
            return false;
        }
    }
    return true;
}

/* A query-string parameter's value, decoded into the arena; false on a bad encoding. */
static bool decode_param(arena_t *a, http_str_t v, const char **out, size_t *n)
{
    char *d = arena_alloc(a, v.len + 1);
    long dn = http_url_decode(d, v.p, v.len, 1);
    if (dn < 0)
        return false;
    d[dn] = '\0';
    *out = d;
    *n = (size_t)dn;
    return true;
}

static bool params_from_query(gql_req_t *q, const json_value_t **ext)
{
    http_ctx_t *ctx = q->ctx;
    http_query_iter_t it;
    http_str_t k, v;
    http_query_init(&it, ctx->req.query);
    unsigned seen = 0;
    while (http_query_next(&it, &k, &v)) {
        const char *s;
        size_t n;
        static const char *const names[] = {"query", "operationName", "variables", "extensions"};
        int which = -1;
        for (int i = 0; i < 4; i++)
            if (k.len == strlen(names[i]) && memcmp(k.p, names[i], k.len) == 0)
                which = i;
        if (which < 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "Unknown request parameter \"%.*s\".", (int)(k.len > 40 ? 40 : k.len),
                     k.p);
            respond_bad_request(q, arena_strndup(&ctx->arena, msg, strlen(msg)));
            return false;
        }
        if (seen & (1u << which)) {
            respond_bad_request(q, "A request parameter is given more than once.");
            return false;
        }
        seen |= 1u << which;
        if (!decode_param(&ctx->arena, v, &s, &n) || n > MAX_VARIABLES) {
            respond_bad_request(q, "A request parameter is not validly percent-encoded, or too long.");
            return false;
        }
        if (which == 0) {
            q->query = s;
            q->query_len = n;
        } else if (which == 1) {
            q->operation_name = n ? s : NULL;
        } else if (n) {
            json_error_t err;
            const json_value_t *j = json_parse(&ctx->arena, s, n, &err);
            if (!j || (json_type(j) != JSON_OBJECT && json_type(j) != JSON_NULL)) {
                respond_bad_request(q, which == 2 ? "\"variables\" must be a JSON object."
                                                  : "\"extensions\" must be a JSON object.");
                return false;
            }
            if (json_type(j) == JSON_OBJECT) {
                if (which == 2)
                    q->variables = j;
                else
                    *ext = j;
            }
        }
    }
    return true;
}

/* ---------------------------------------------------------------- the cache key */

/* Everything that shapes an answer: media type, operation name, variables and the document,
 * as text ("=" and length-prefixed parts) while short enough to be a key, else their SHA-256
 * ("#"). Computed before the document is parsed, so that a repeated query is answered from L1
 * without parsing or validating it again: an entry exists only for a document that passed
 * both (and its limits) when it was filled. */
static void cache_key(gql_req_t *q)
{
    arena_t *a = &q->ctx->arena;
    buf_t vb = BUF_INIT, k = BUF_INIT;
    if (q->variables)
        json_value_write(&vb, q->variables);
    size_t on = q->operation_name ? strlen(q->operation_name) : 0;
    buf_printf(&k, "/graphql|%c|", q->json ? 'j' : 'g');
    if (on + vb.len + q->query_len + 64 <= 900) {
        buf_printf(&k, "=%zu:", on);
        buf_append(&k, q->operation_name, on);
        buf_printf(&k, "%zu:", vb.len);
        buf_append(&k, vb.data, vb.len);
        buf_append(&k, q->query, q->query_len);
    } else {
        sec_sha256_ctx_t h;
        uint8_t digest[SEC_SHA256_BYTES];
        char n[48];
        sec_sha256_init(&h);
        int nn = snprintf(n, sizeof(n), "%zu:%zu:", on, vb.len);
        sec_sha256_update(&h, n, (size_t)nn);
        sec_sha256_update(&h, q->operation_name ? q->operation_name : "", on);
        sec_sha256_update(&h, vb.data ? vb.data : "", vb.len);
        sec_sha256_update(&h, q->query, q->query_len);
        sec_sha256_final(&h, digest);
        char hx[65];
        hex(hx, digest, sizeof(digest));
        buf_printf(&k, "#%s", hx);
    }
    q->cache_key = arena_strndup(a, k.data, k.len);
    q->cache_key_len = k.len;
    buf_free(&vb);
    buf_free(&k);
}

/* ---------------------------------------------------------------- running */

static void write_result(gql_exec_t *ex);

/* A query's cost beyond the first COST_PER_TOKEN is charged to the key's rate budget: one
 * request more per COST_PER_TOKEN (answers from the cache cost nothing more). */
#define COST_PER_TOKEN 1000

static void charged(http_ctx_t *ctx, void *arg)
{
    (void)ctx;
    gql_req_t *q = arg;
    gql_execute(&q->ex);
}

/* The fill (or the uncached run) of a query: charges its cost, executes and answers. */
static void run(http_ctx_t *ctx, const api_auth_t *auth)
{
    gql_req_t *q = ctx->handler_data;
    rl_charge_key(ctx, auth->prefix, auth->tier, (uint32_t)MIN(q->cost / COST_PER_TOKEN, 1000), charged, q);
}

/* An executed operation (a cache hit is counted in requests only). */
static void finish_metrics(gql_req_t *q, bool error)
{
    op_stats_t *o = op_slot(q->op_label);
    o->statements += q->ex.statements;
    if (error)
        o->errors++;
    hist_record(&o->latency_us, (clock_now_ns() - q->start_ns) / 1000);
}

static void write_result(gql_exec_t *ex)
{
    gql_req_t *q = ex->arg;
    http_ctx_t *ctx = q->ctx;
    buf_t *b = http_body(ctx);
    b->len = 0;
    if (ex->unavailable) {
        gql_errors_t *e = &q->errs;
        e->n = 0;
        gql_err_t *ge = gql_errors_add(e, NULL, 0, "The database is unavailable; retry later.");
        if (ge)
            ge->code = "SERVICE_UNAVAILABLE";
        buf_append_lit(b, "{\"errors\":");
        gql_errors_write(b, e);
        buf_putc(b, '}');
        gql_exec_release(ex);
        finish_metrics(q, true);
        ctx->no_store = true;
        http_add_header(ctx, LIT("Retry-After"), LIT("2"));
        http_respond(ctx, 503, content_type(q));
        return;
    }
    buf_putc(b, '{');
    if (q->errs.n) {
        buf_append_lit(b, "\"errors\":");
        gql_errors_write(b, &q->errs);
        buf_putc(b, ',');
        ctx->no_store = true; /* partial results are not kept: the next asker runs again */
    }
    buf_append_lit(b, "\"data\":");
    if (ex->data.len)
        buf_append(b, ex->data.data, ex->data.len);
    else
        json_null(b);
    buf_putc(b, '}');
    char timing[64];
    int tn = snprintf(timing, sizeof(timing), "%sdb;desc=\"%u statements\"", ctx->timing.len ? ", " : "",
                      ex->statements);
    buf_append(&ctx->timing, timing, (size_t)tn);
    finish_metrics(q, q->errs.n > 0);
    gql_exec_release(ex);
    http_respond(ctx, 200, content_type(q));
}

static void handle(http_ctx_t *ctx, const api_auth_t *auth)
{
    const gql_schema_t *s = gql_schema();
    arena_t *a = &ctx->arena;
    gql_req_t *q = arena_alloc(a, sizeof(*q));
    memset(q, 0, sizeof(*q));
    q->ctx = ctx;
    q->auth = auth;
    q->start_ns = clock_now_ns();
    q->errs.arena = a;
    int mt = negotiate(ctx);
    if (!mt) {
        http_respond_problem(ctx, 406, "not-acceptable",
                             "GraphQL answers application/graphql-response+json or application/json");
        return;
    }
    q->json = mt == 2;
    http_add_header(ctx, LIT("Vary"), LIT("Accept"));
    bool get = ctx->req.method == HTTP_GET || ctx->req.method == HTTP_HEAD;
    const json_value_t *ext = NULL;
    if (!(get ? params_from_query(q, &ext) : params_from_body(q, &ext)))
        return;
    if (ext && !persisted_query(q, ext))
        return;
    if (!q->query) {
        respond_bad_request(q, "The request has no \"query\".");
        return;
    }
    cache_key(q);
    /* the slot first: answering frees the request (and q with it) */
    op_stats_t *ops = op_slot(q->operation_name ? q->operation_name : "(anonymous)");
    if (api_cached_l1_answer(ctx, auth, q->cache_key, q->cache_key_len, CACHE_TIER_FREQUENT)) {
        ops->requests++;
        return;
    }
    if (q->query_len > MAX_DOCUMENT) {
        char msg[96];
        snprintf(msg, sizeof(msg), "The document is larger than %d bytes.", MAX_DOCUMENT);
        respond_bad_request(q, arena_strndup(a, msg, strlen(msg)));
        return;
    }
    q->op_label = q->operation_name ? q->operation_name : "(anonymous)";

    /* document, validation, operation */
    gql_parse_limits_t lim = {MAX_TOKENS, 0};
    gql_error_t perr;
    q->doc = gql_parse(a, q->query, q->query_len, &lim, &perr);
    if (!q->doc) {
        gql_err_t *e = gql_errors_add(&q->errs, &perr.loc, 1, "%s", perr.message);
        if (e)
            e->code = "GRAPHQL_PARSE_FAILED";
        respond_errors(q, 200);
        return;
    }
    if (!gql_validate(s, q->doc, &q->errs)) {
        respond_errors(q, 200);
        return;
    }
    q->op = gql_select_operation(q->doc, q->operation_name, &q->errs);
    if (!q->op) {
        respond_errors(q, 200);
        return;
    }
    if (q->op->kind == GD_MUTATION && get) {
        http_add_header(ctx, LIT("Allow"), LIT("POST"));
        gql_errors_add(&q->errs, &q->op->loc, 1, "Mutations are only run over POST.");
        q->errs.e[q->errs.n - 1].code = "METHOD_NOT_ALLOWED";
        http_ctx_t *c = ctx;
        buf_t *b = http_body(c);
        b->len = 0;
        buf_append_lit(b, "{\"errors\":");
        gql_errors_write(b, &q->errs);
        buf_putc(b, '}');
        http_respond(c, 405, content_type(q));
        return;
    }
    if (!gql_coerce_variables(s, q->op, q->variables, a, &q->vars, &q->errs)) {
        respond_errors(q, 200);
        return;
    }

    /* limits */
    gql_run_t run_in = {s, q->doc, &q->vars, a};
    gql_cost_t cost;
    gql_cost(&run_in, q->op, &cost);
    int max_depth = g_config.graphql_max_depth ? g_config.graphql_max_depth : 10;
    int max_cost = g_config.graphql_max_cost ? g_config.graphql_max_cost : 10000;
    if (cost.introspection && !g_config.graphql_introspection) {
        gql_err_t *e = gql_errors_add(&q->errs, &q->op->loc, 1, "Introspection is disabled on this server.");
        if (e)
            e->code = "INTROSPECTION_DISABLED";
    }
    if (cost.depth > (uint32_t)max_depth) {
        gql_err_t *e = gql_errors_add(&q->errs, &q->op->loc, 1,
                                      "The query is %u levels deep; the limit is %d.", cost.depth, max_depth);
        if (e)
            e->code = "DEPTH_LIMIT_EXCEEDED";
    }
    if (cost.cost > (uint64_t)max_cost) {
        gql_err_t *e = gql_errors_add(&q->errs, &q->op->loc, 1, "The query costs %llu; the limit is %d.",
                                      (unsigned long long)cost.cost, max_cost);
        if (e)
            e->code = "COST_LIMIT_EXCEEDED";
    }
    if (cost.aliases > MAX_ALIASES) {
        gql_err_t *e = gql_errors_add(&q->errs, &q->op->loc, 1, "The query has %u aliases; the limit is %d.",
                                      cost.aliases, MAX_ALIASES);
        if (e)
            e->code = "ALIAS_LIMIT_EXCEEDED";
    }
    if (q->errs.n) {
        respond_errors(q, 200);
        return;
    }
    op_slot(q->op_label)->requests++; /* every valid request, answered from the cache or not */
    char cost_s[24];
    int cn = snprintf(cost_s, sizeof(cost_s), "%llu", (unsigned long long)cost.cost);
    http_add_header(ctx, LIT("X-GraphQL-Cost"), cost_s, (size_t)cn);

    /* execution */
    gql_exec_t *ex = &q->ex;
    ex->ctx = ctx;
    ex->auth = auth;
    ex->run = run_in;
    ex->op = q->op;
    ex->errs = &q->errs;
    ex->done = write_result;
    ex->arg = q;
    if (ctx->req.idempotency_key.len)
        ex->idempotency_key = arena_strndup(a, ctx->req.idempotency_key.p, ctx->req.idempotency_key.len);
    ctx->handler_data = q;
    q->cost = cost.cost;
    if (q->op->kind == GD_MUTATION || cost.introspection) {
        run(ctx, auth);
        return;
    }
    /* a query is cached under the tags of what it reads, keyed by everything that shapes it */
    api_cache_custom_t cc = {.tier = CACHE_TIER_FREQUENT, .key = q->cache_key, .key_len = q->cache_key_len};
    /* resources no API write changes (stages, users) carry only the organization's tag */
    for (int i = 0; i < SR_COUNT && cc.ntags < API_CACHE_TAGS_MAX - 2; i++)
        if ((cost.resources & (1u << i)) && g_schema[i].writable)
            cc.tags[cc.ntags++] = api_cache_res_tag(a, auth->org_id, g_schema[i].plural);
    api_cached_custom(ctx, auth, &cc, run);
}

void gql_routes(router_t *rt)
{
    gql_schema_init();
    api_route(rt, HTTP_POST, "/graphql", handle, 0, 0, "POST /graphql");
    api_route(rt, HTTP_GET, "/graphql", handle, 0, 0, "GET /graphql");
}
