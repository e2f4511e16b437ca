/*
 * GET /api/performance/stats (admin, `expensive` class, never cached): this instance's
 * requests (total, rate since start, latency percentiles over every API route, counts by
 * status class), caches (L1 per tier: hits, misses, hit ratio, entries, bytes, evictions; L2
 * and fills), database (pool, queries, errors, slow queries, latency percentiles over every
 * statement), memory, uptime and open connections. Figures are counts and timings only, of
 * every organization together: the same that /metrics shows on the admin listener.
 *
 * GET /api/performance/analysis (admin, `expensive` class, never cached): per prepared statement
 * of this instance (the 50 with the most total time), calls, mean/p95/max ms, rows and slow
 * calls; the query health (healthy under 5 % slow calls, degraded to 10 %, unhealthy above);
 * and recommendations from the generic plans of the slowest statements (by mean time, up to
 * ANALYSIS_EXPLAIN): every sequential scan of a table of ANALYSIS_LARGE_ROWS rows or more (by
 * pg_class.reltuples), with the scan's filter, names the table and the statement. The plans
 * come from crmd_explain_generic (sql/migrations/005), which never runs the statement.
 *
 * POST /api/performance/clear-cache {"scope": "all"|"l1"|"l2"|"tag", "tag"?} →
 * {"data": {"cleared": n}}: n counts the entries removed here (L1) and in Redis (L2); the L1s
 * of the other instances are cleared through the invalidation channel.
 *
 * On the public listener (an organization's admin key, `expensive` class) it clears only the
 * caller's organization: every entry of an organization carries its "org:<id>:all" tag, so
 * scopes all, l1 and l2 invalidate that tag (in L1 everywhere and in Redis), and scope tag
 * takes only tags of the caller's organization ("org:<id>" and "org:<id>:..."). Clearing every
 * organization's entries is an operator action: the same route on the admin listener (no key).
 */
#include "api/ops/performance.h"
#include "api/auth.h"
#include "api/route.h"
#include "api/cached.h"
#include "cache/tiered.h"
#include "api/common.h"
#include "core/clock.h"
#include "core/hist.h"
#include "core/json.h"
#include "core/json_read.h"
#include "core/log.h"
#include "api/ops/metrics.h"
#include "db/db.h"
#include "http/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>

#define TAG_MAX 200

typedef struct {
    http_ctx_t *ctx;
    int64_t l1_cleared;
    bool l2_only; /* scope "l2": without Redis nothing could be done */
} clear_t;

static void respond_cleared(http_ctx_t *ctx, int64_t n)
{
    buf_t *b = http_body(ctx);
    buf_append_lit(b, "{\"data\":{\"cleared\":");
    buf_append_i64(b, n);
    buf_append_lit(b, "}}");
    http_respond(ctx, 200, "application/json");
}

static void l2_done(void *arg, int64_t n, bool ok)
{
    clear_t *c = arg;
    if (!ok && c->l2_only) {
        http_add_header(c->ctx, LIT("Retry-After"), LIT("2"));
        api_respond_problem(c->ctx, 503, "service-unavailable",
                            "Redis is unavailable: the L2 cache was not cleared", NULL);
        return;
    }
    if (!ok) {
        /* L1 here is clear; Redis could not be reached for its part */
        log_fields(LOG_WARN, "clear-cache: Redis unavailable, L2 not cleared", "request_id",
                   c->ctx->request_id, NULL);
        http_add_header(c->ctx, LIT("Warning"), LIT("199 crmd \"L2 (Redis) unavailable: not cleared\""));
    }
    respond_cleared(c->ctx, c->l1_cleared + n);
}

static bool tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > TAG_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == ':' ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* Whether tag names the organization's own namespace: "org:<id>" or "org:<id>:...". */
static bool tag_of_org(const char *tag, size_t n, int64_t org_id)
{
    char pre[32];
    int k = snprintf(pre, sizeof(pre), "org:%lld", (long long)org_id);
    return n >= (size_t)k && memcmp(tag, pre, (size_t)k) == 0 && (n == (size_t)k || tag[k] == ':');
}

/* A row tag "<resource>:<id>" the caller may clear when the row is its organization's. */
static db_stmt_t row_owned_stmt;
static const char *const row_kinds[] = {"company", "contact", "deal",  "activity",
                                        "task",    "user",    "stage", NULL};

/* The id of a row tag of a known kind, or 0. */
static int64_t row_tag_id(const char *tag, size_t n, size_t *kind_len)
{
    const char *colon = memchr(tag, ':', n);
    if (!colon)
        return 0;
    size_t kl = (size_t)(colon - tag);
    for (int i = 0; row_kinds[i]; i++)
        if (strlen(row_kinds[i]) == kl && memcmp(tag, row_kinds[i], kl) == 0) {
            int64_t id;
            *kind_len = kl;
            return api_parse_id(colon + 1, n - kl - 1, &id) ? id : 0;
        }
    return 0;
}

typedef struct {
    http_ctx_t *ctx;
    clear_t *c;
    const char *tag;
} row_check_t;

static void row_owned_done(db_batch_t *b, void *arg)
{
    row_check_t *rc = arg;
    if (b->status != DB_OK) {
        api_respond_db_error(rc->ctx, b);
        return;
    }
    bool owned = PQntuples(b->results[0]) == 1 && PQgetvalue(b->results[0], 0, 0)[0] == 't';
    db_batch_release(b);
    if (!owned) {
        api_errors_t errs = {0};
        api_errors_add(&errs, LIT("tag"), "must name a row of your organization, or be org:<id>[:...]");
        api_respond_problem(rc->ctx, 422, "validation-failed", "the body is not valid", &errs);
        return;
    }
    cache_t *l1 = tcache_l1();
    rc->c->l1_cleared = l1 ? (int64_t)cache_count_tag(l1, rc->tag, clock_now_ms()) : 0;
    tcache_invalidate_cb(rc->tag, l2_done, rc->c);
}

/* auth NULL: the operator on the admin listener, clearing every organization. */
static void clear_cache(http_ctx_t *ctx, const api_auth_t *auth)
{
    const json_value_t *body = api_json_body(ctx, NULL);
    if (!body)
        return;
    api_errors_t errs = {0};
    if (json_type(body) != JSON_OBJECT) {
        api_errors_add(&errs, LIT(""), "must be an object");
        api_respond_problem(ctx, 422, "validation-failed", "the body is not valid", &errs);
        return;
    }
    for (size_t i = 0; i < json_object_len(body); i++) {
        size_t kl;
        const char *k = json_object_key_at(body, i, &kl);
        if (!(kl == 5 && memcmp(k, "scope", 5) == 0) && !(kl == 3 && memcmp(k, "tag", 3) == 0))
            api_errors_add(&errs, k, kl, "unknown field");
    }
    const json_value_t *scope_v = json_object_get(body, "scope"), *tag_v = json_object_get(body, "tag");
    size_t sl = 0, tl = 0;
    const char *scope = scope_v && json_type(scope_v) == JSON_STRING ? json_string(scope_v, &sl) : NULL;
    const char *tag = tag_v && json_type(tag_v) == JSON_STRING ? json_string(tag_v, &tl) : NULL;
    enum { S_ALL, S_L1, S_L2, S_TAG, S_BAD } which = S_BAD;
    if (scope && strcmp(scope, "all") == 0)
        which = S_ALL;
    else if (scope && strcmp(scope, "l1") == 0)
        which = S_L1;
    else if (scope && strcmp(scope, "l2") == 0)
        which = S_L2;
    else if (scope && strcmp(scope, "tag") == 0)
        which = S_TAG;
    if (which == S_BAD)
        api_errors_add(&errs, LIT("scope"), "must be one of all, l1, l2, tag");
    if (which == S_TAG && (!tag || !tag_ok(tag, tl)))
        api_errors_add(&errs, LIT("tag"), "required for scope tag: 1-200 of [A-Za-z0-9:_.-]");
    if (which != S_TAG && tag_v)
        api_errors_add(&errs, LIT("tag"), "only allowed with scope tag");
    size_t kind_len = 0;
    int64_t row_id = 0;
    if (which == S_TAG && tag && auth && tag_ok(tag, tl) && !tag_of_org(tag, tl, auth->org_id) &&
        !(row_id = row_tag_id(tag, tl, &kind_len)))
        api_errors_add(&errs, LIT("tag"),
                       "must be a tag of your organization: org:<id>[:...] or "
                       "<resource>:<id> of one of its rows");
    if (errs.n) {
        api_respond_problem(ctx, 422, "validation-failed", "the body is not valid", &errs);
        return;
    }
    cache_t *l1 = tcache_l1();
    clear_t *c = arena_alloc(&ctx->arena, sizeof(*c));
    c->ctx = ctx;
    c->l1_cleared = 0;
    c->l2_only = which == S_L2;
    log_fields(LOG_INFO, "clear-cache", "request_id", ctx->request_id, "scope", scope, "key_prefix",
               auth ? auth->prefix : "operator", "#org_id", (int64_t)(auth ? auth->org_id : 0), NULL);
    if (auth && which != S_TAG) {
        /* an organization's admin: that organization's entries, at every level */
        const char *org = api_cache_org_tag(&ctx->arena, auth->org_id);
        c->l1_cleared = l1 ? (int64_t)cache_count_tag(l1, org, clock_now_ms()) : 0;
        c->l2_only = false;
        tcache_invalidate_cb(org, l2_done, c);
        return;
    }
    if (auth && row_id) {
        /* a row tag: cleared only when the row is the caller's organization's */
        row_check_t *rc = arena_alloc(&ctx->arena, sizeof(*rc));
        *rc = (row_check_t){ctx, c, tag};
        /* the canonical tag: "company:042" names the entries of company:42 */
        char canon[64];
        int cn = snprintf(canon, sizeof(canon), "%.*s:%lld", (int)kind_len, tag, (long long)row_id);
        rc->tag = arena_strndup(&ctx->arena, canon, (size_t)cn);
        const char *params[3] = {arena_strndup(&ctx->arena, tag, kind_len), rc->tag + kind_len + 1,
                                 auth->org_id_s};
        db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
        db_batch_add(b, row_owned_stmt, 3, params);
        db_batch_submit(b, row_owned_done, rc);
        return;
    }
    switch (which) {
    case S_TAG:
        c->l1_cleared = l1 ? (int64_t)cache_count_tag(l1, tag, clock_now_ms()) : 0;
        tcache_invalidate_cb(tag, l2_done, c);
        return;
    case S_L1:
        c->l1_cleared = (int64_t)tcache_clear_l1_local();
        tcache_clear_l1_everywhere();
        respond_cleared(ctx, c->l1_cleared);
        return;
    case S_ALL:
        c->l1_cleared = (int64_t)tcache_clear_l1_local();
        tcache_clear_l1_everywhere();
        tcache_clear_l2(l2_done, c);
        return;
    case S_L2:
    default:
        tcache_clear_l2(l2_done, c);
        return;
    }
}

static void clear_cache_operator(http_ctx_t *ctx)
{
    clear_cache(ctx, NULL);
}

/* ---- stats ---- */

static const router_t *api_router; /* the public listener's routes (listener 0) */

/* stats and analysis take no parameter (but the refresh every GET accepts): any other is 400. */
static bool no_params(http_ctx_t *ctx)
{
    api_value_t none[1];
    api_errors_t errs = {0};
    if (api_query_parse(&ctx->arena, ctx->req.query, NULL, 0, none, NULL, &errs))
        return true;
    api_respond_bad_params(ctx, &errs);
    return false;
}

static void kv_ms(json_writer_t *w, const char *key, uint64_t us)
{
    json_w_key_str(w, key, strlen(key));
    json_w_double(w, (double)us / 1000.0, 3);
}

static void percentiles(json_writer_t *w, const hist_t *h)
{
    json_w_key(w, JSON_K("latency_ms"));
    json_obj_begin(w);
    kv_ms(w, "p50", hist_quantile(h, 0.50));
    kv_ms(w, "p90", hist_quantile(h, 0.90));
    kv_ms(w, "p95", hist_quantile(h, 0.95));
    kv_ms(w, "p99", hist_quantile(h, 0.99));
    kv_ms(w, "max", hist_quantile(h, 1.0));
    json_obj_end(w);
}

static double ratio(uint64_t a, uint64_t b)
{
    return a + b ? (double)a / (double)(a + b) : 0.0;
}

static void stats(http_ctx_t *ctx, const api_auth_t *auth)
{
    if (!no_params(ctx))
        return;
    long long uptime = api_metrics_uptime_s();
    http_totals_t t;
    http_totals(&t);
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    json_obj_begin(&w);
    json_kv_i64(&w, JSON_K("uptime_s"), uptime);
    json_kv_u64(&w, JSON_K("open_connections"), t.open);

    /* requests: every route of the API listener, merged */
    hist_t *lat = arena_alloc(&ctx->arena, sizeof(*lat));
    memset(lat, 0, sizeof(*lat));
    http_route_stats_t *rs = arena_alloc(&ctx->arena, sizeof(*rs));
    for (uint16_t id = 0; api_router && id <= router_route_count(api_router); id++) {
        memset(rs, 0, sizeof(*rs));
        http_route_totals(0, id, rs);
        hist_merge(lat, &rs->latency_us);
    }
    json_w_key(&w, JSON_K("requests"));
    json_obj_begin(&w);
    json_kv_u64(&w, JSON_K("total"), t.requests);
    json_kv_double(&w, JSON_K("per_second"), uptime > 0 ? (double)t.requests / (double)uptime : 0.0, 2);
    json_w_key(&w, JSON_K("by_status"));
    json_obj_begin(&w);
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int c = 1; c <= 5; c++) {
        json_w_key_str(&w, classes[c - 1], 3);
        json_w_u64(&w, t.by_class[c]);
    }
    json_obj_end(&w);
    percentiles(&w, lat);
    json_obj_end(&w);

    /* caches */
    api_cache_counters_t k;
    api_cache_counters(&k);
    json_w_key(&w, JSON_K("caches"));
    json_obj_begin(&w);
    json_w_key(&w, JSON_K("l1"));
    json_obj_begin(&w);
    cache_t *l1 = tcache_l1();
    for (int tier = 0; tier < CACHE_TIER_COUNT; tier++) {
        cache_stats_t st = {0};
        if (l1)
            cache_stats(l1, (enum cache_tier)tier, &st);
        const char *name = cache_tier_name((enum cache_tier)tier);
        json_w_key_str(&w, name, strlen(name));
        json_obj_begin(&w);
        json_kv_u64(&w, JSON_K("hits"), st.hits);
        json_kv_u64(&w, JSON_K("misses"), st.misses);
        json_kv_double(&w, JSON_K("hit_ratio"), ratio(st.hits, st.misses), 4);
        json_kv_u64(&w, JSON_K("entries"), st.entries);
        json_kv_u64(&w, JSON_K("bytes"), st.bytes);
        json_kv_u64(&w, JSON_K("evictions"), st.evictions);
        json_obj_end(&w);
    }
    json_obj_end(&w);
    json_w_key(&w, JSON_K("l2"));
    json_obj_begin(&w);
    json_kv_u64(&w, JSON_K("hits"), k.l2_hits);
    json_kv_u64(&w, JSON_K("misses"), k.l2_misses);
    json_kv_u64(&w, JSON_K("errors"), k.l2_errors);
    json_kv_double(&w, JSON_K("hit_ratio"), ratio(k.l2_hits, k.l2_misses), 4);
    json_obj_end(&w);
    json_kv_u64(&w, JSON_K("fills"), k.fills);
    json_kv_u64(&w, JSON_K("coalesced"), k.coalesced);
    json_kv_u64(&w, JSON_K("bypasses"), k.bypasses);
    json_obj_end(&w);

    /* database: every statement, merged */
    db_pool_stats_t ps;
    db_pool_stats(&ps);
    hist_t *qlat = lat;
    memset(qlat, 0, sizeof(*qlat));
    uint64_t slow = 0;
    for (db_stmt_t id = 0; id < db_stmt_count(); id++) {
        db_stmt_stats_t ss;
        db_stmt_stats(id, &ss);
        slow += ss.slow;
        db_stmt_hist(id, qlat);
    }
    json_w_key(&w, JSON_K("database"));
    json_obj_begin(&w);
    json_w_key(&w, JSON_K("pool"));
    json_obj_begin(&w);
    json_kv_u64(&w, JSON_K("size"), ps.size);
    json_kv_u64(&w, JSON_K("connected"), ps.connected);
    json_kv_u64(&w, JSON_K("busy"), ps.busy);
    json_kv_u64(&w, JSON_K("idle"), ps.connected > ps.busy ? ps.connected - ps.busy : 0);
    json_kv_u64(&w, JSON_K("waiting"), ps.waiting);
    json_obj_end(&w);
    json_kv_u64(&w, JSON_K("queries"), ps.queries);
    json_kv_u64(&w, JSON_K("errors"), ps.errors);
    json_kv_u64(&w, JSON_K("slow_queries"), slow);
    percentiles(&w, qlat);
    json_obj_end(&w);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    json_w_key(&w, JSON_K("memory"));
    json_obj_begin(&w);
    json_kv_u64(&w, JSON_K("rss_bytes"), process_rss_bytes());
    json_kv_u64(&w, JSON_K("max_rss_bytes"), (uint64_t)ru.ru_maxrss * 1024u);
    json_obj_end(&w);

    json_obj_end(&w);
    json_obj_end(&w);
    http_respond(ctx, 200, "application/json");
}

/* ---- analysis ---- */

#define ANALYSIS_LIST       50
#define ANALYSIS_EXPLAIN    5
#define ANALYSIS_LARGE_ROWS 10000
#define ANALYSIS_SQL_MAX    300

static db_stmt_t explain_stmt, table_rows_stmt;

typedef struct {
    db_stmt_t id;
    db_stmt_stats_t st;
    uint64_t p95_us;
} stmt_row_t;

typedef struct {
    http_ctx_t *ctx;
    stmt_row_t *rows;
    size_t nrows;
    db_stmt_t explained[ANALYSIS_EXPLAIN];
    int nexplained;
    uint64_t calls, slow;
} analysis_t;

static int by_total_desc(const void *a, const void *b)
{
    uint64_t x = ((const stmt_row_t *)a)->st.total_us, y = ((const stmt_row_t *)b)->st.total_us;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The highest $n of a statement's text: its parameter count. */
static int param_count(const char *sql)
{
    int n = 0;
    for (const char *p = sql; (p = strchr(p, '$'));) {
        int v = 0;
        for (p++; *p >= '0' && *p <= '9'; p++)
            v = v * 10 + (*p - '0');
        n = v > n ? v : n;
    }
    return n;
}

static const char *jstr(const json_value_t *v, const char *key)
{
    size_t n;
    const char *s = json_string(json_object_get(v, key), &n);
    return s;
}

/* Rows of table in the size query's result (reltuples), or -1 when unknown. */
static int64_t table_rows(const PGresult *r, const char *table, size_t n)
{
    for (int i = 0; r && i < PQntuples(r); i++)
        if ((size_t)PQgetlength(r, i, 0) == n && memcmp(PQgetvalue(r, i, 0), table, n) == 0)
            return strtoll(PQgetvalue(r, i, 1), NULL, 10);
    return -1;
}

/* Walks a plan node and its children; writes one recommendation per sequential scan of a large
 * table. */
static void walk_plan(json_writer_t *w, const json_value_t *node, db_stmt_t id, const PGresult *sizes, int *n,
                      int depth)
{
    if (!node || depth > 64)
        return;
    size_t tl;
    const char *type = json_string(json_object_get(node, "Node Type"), &tl);
    const char *rel = json_string(json_object_get(node, "Relation Name"), &tl);
    if (type && strcmp(type, "Seq Scan") == 0 && rel) {
        int64_t rows = table_rows(sizes, rel, tl);
        if (rows >= ANALYSIS_LARGE_ROWS) {
            const char *filter = jstr(node, "Filter");
            json_obj_begin(w);
            json_kv_i64(w, JSON_K("statement"), (int64_t)id);
            json_kv_str(w, JSON_K("table"), rel, tl);
            json_kv_i64(w, JSON_K("table_rows"), rows);
            json_w_key(w, JSON_K("filter"));
            if (filter)
                json_w_str(w, filter, strlen(filter));
            else
                json_w_null(w);
            char advice[256];
            int an = snprintf(advice, sizeof(advice),
                              "sequential scan of %.*s (%lld rows)%s: an index on the filtered columns would "
                              "let it read only the matching rows",
                              (int)tl, rel, (long long)rows, filter ? " with a filter" : "");
            json_kv_str(w, JSON_K("advice"), advice, (size_t)an);
            json_obj_end(w);
            (*n)++;
        }
    }
    const json_value_t *kids = json_object_get(node, "Plans");
    for (size_t i = 0; i < json_array_len(kids); i++)
        walk_plan(w, json_array_at(kids, i), id, sizes, n, depth + 1);
}

static void analysis_done(db_batch_t *b, void *arg)
{
    analysis_t *an = arg;
    http_ctx_t *ctx = an->ctx;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    const PGresult *sizes = b->results[an->nexplained];
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    json_obj_begin(&w);
    double slow_share = an->calls ? (double)an->slow / (double)an->calls : 0.0;
    json_w_key(&w, JSON_K("query_health"));
    json_obj_begin(&w);
    const char *health = slow_share < 0.05 ? "healthy" : slow_share <= 0.10 ? "degraded" : "unhealthy";
    json_kv_str(&w, JSON_K("status"), health, strlen(health));
    json_kv_u64(&w, JSON_K("calls"), an->calls);
    json_kv_u64(&w, JSON_K("slow_calls"), an->slow);
    json_kv_double(&w, JSON_K("slow_share"), slow_share, 4);
    json_kv_i64(&w, JSON_K("slow_threshold_ms"), g_config.slow_query_ms);
    json_obj_end(&w);

    json_w_key(&w, JSON_K("statements"));
    json_arr_begin(&w);
    for (size_t i = 0; i < an->nrows && i < ANALYSIS_LIST; i++) {
        const stmt_row_t *r = &an->rows[i];
        const char *sql = db_stmt_sql(r->id);
        json_obj_begin(&w);
        json_kv_i64(&w, JSON_K("id"), (int64_t)r->id);
        json_kv_str(&w, JSON_K("sql"), sql, MIN(strlen(sql), ANALYSIS_SQL_MAX));
        json_kv_u64(&w, JSON_K("calls"), r->st.calls);
        json_kv_double(&w, JSON_K("mean_ms"), (double)r->st.total_us / (double)r->st.calls / 1000.0, 3);
        json_kv_double(&w, JSON_K("p95_ms"), (double)r->p95_us / 1000.0, 3);
        json_kv_double(&w, JSON_K("max_ms"), (double)r->st.max_us / 1000.0, 3);
        json_kv_u64(&w, JSON_K("rows"), r->st.rows);
        json_kv_u64(&w, JSON_K("slow"), r->st.slow);
        json_obj_end(&w);
    }
    json_arr_end(&w);

    /* the slowest statements' generic plans */
    json_w_key(&w, JSON_K("explained"));
    json_arr_begin(&w);
    for (int i = 0; i < an->nexplained; i++)
        if (!PQgetisnull(b->results[i], 0, 0))
            json_w_i64(&w, (int64_t)an->explained[i]);
    json_arr_end(&w);
    json_w_key(&w, JSON_K("recommendations"));
    json_arr_begin(&w);
    int nrec = 0;
    for (int i = 0; i < an->nexplained; i++) {
        const PGresult *r = b->results[i];
        if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
            continue;
        json_error_t err;
        const json_value_t *plan =
            json_parse(&ctx->arena, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &err);
        walk_plan(&w, json_object_get(json_array_at(plan, 0), "Plan"), an->explained[i], sizes, &nrec, 0);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    json_obj_end(&w);
    api_timing_db(ctx, b);
    db_batch_release(b);
    http_respond(ctx, 200, "application/json");
}

static int by_mean_desc(const void *a, const void *b)
{
    const stmt_row_t *x = a, *y = b;
    double mx = (double)x->st.total_us / (double)x->st.calls,
           my = (double)y->st.total_us / (double)y->st.calls;
    return mx < my ? 1 : mx > my ? -1 : 0;
}

static void analysis(http_ctx_t *ctx, const api_auth_t *auth)
{
    if (!no_params(ctx))
        return;
    analysis_t *an = arena_alloc(&ctx->arena, sizeof(*an));
    memset(an, 0, sizeof(*an));
    an->ctx = ctx;
    uint32_t n = db_stmt_count();
    an->rows = arena_alloc(&ctx->arena, (n ? n : 1) * sizeof(*an->rows));
    hist_t *h = arena_alloc(&ctx->arena, sizeof(*h));
    for (db_stmt_t id = 0; id < n; id++) {
        stmt_row_t r = {.id = id};
        db_stmt_stats(id, &r.st);
        an->calls += r.st.calls;
        an->slow += r.st.slow;
        if (!r.st.calls || id == explain_stmt || id == table_rows_stmt)
            continue;
        memset(h, 0, sizeof(*h));
        db_stmt_hist(id, h);
        r.p95_us = hist_quantile(h, 0.95);
        an->rows[an->nrows++] = r;
    }
    /* the slowest by mean time are explained, then the list is ordered by total time */
    qsort(an->rows, an->nrows, sizeof(*an->rows), by_mean_desc);
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    for (size_t i = 0; i < an->nrows && an->nexplained < ANALYSIS_EXPLAIN; i++) {
        const char *sql = db_stmt_sql(an->rows[i].id);
        char np[16];
        snprintf(np, sizeof(np), "%d", param_count(sql));
        const char *params[2] = {sql, arena_strndup(&ctx->arena, np, strlen(np))};
        db_batch_add(b, explain_stmt, 2, params);
        an->explained[an->nexplained++] = an->rows[i].id;
    }
    db_batch_add(b, table_rows_stmt, 0, NULL);
    qsort(an->rows, an->nrows, sizeof(*an->rows), by_total_desc);
    db_batch_submit(b, analysis_done, an);
}

void api_performance_routes(router_t *rt)
{
    api_router = rt;
    explain_stmt = db_stmt("SELECT crmd_explain_generic($1::text, $2::integer)");
    table_rows_stmt = db_stmt("SELECT c.relname, c.reltuples::bigint FROM pg_class c"
                              " WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace");
    api_route_cached(rt, HTTP_GET, "/api/performance/analysis", analysis, ROUTE_ADMIN, ROUTE_CLASS_EXPENSIVE,
                     "GET /api/performance/analysis", NULL);
    api_route_cached(rt, HTTP_GET, "/api/performance/stats", stats, ROUTE_ADMIN, ROUTE_CLASS_EXPENSIVE,
                     "GET /api/performance/stats", NULL);
    row_owned_stmt = db_stmt(
        "SELECT CASE $1::text"
        " WHEN 'company' THEN EXISTS (SELECT 1 FROM companies WHERE id = $2::bigint AND org_id = $3::bigint)"
        " WHEN 'contact' THEN EXISTS (SELECT 1 FROM contacts WHERE id = $2::bigint AND org_id = $3::bigint)"
        " WHEN 'deal' THEN EXISTS (SELECT 1 FROM deals WHERE id = $2::bigint AND org_id = $3::bigint)"
        " WHEN 'activity' THEN EXISTS (SELECT 1 FROM activities WHERE id = $2::bigint AND org_id = "
        "$3::bigint)"
        " WHEN 'task' THEN EXISTS (SELECT 1 FROM tasks WHERE id = $2::bigint AND org_id = $3::bigint)"
        " WHEN 'user' THEN EXISTS (SELECT 1 FROM users WHERE id = $2::bigint AND org_id = $3::bigint)"
        " WHEN 'stage' THEN EXISTS (SELECT 1 FROM stages WHERE id = $2::bigint AND org_id = $3::bigint)"
        " ELSE false END");
    api_route(rt, HTTP_POST, "/api/performance/clear-cache", clear_cache, ROUTE_ADMIN, ROUTE_CLASS_EXPENSIVE,
              "POST /api/performance/clear-cache");
}

void api_performance_operator_routes(router_t *admin_rt)
{
    http_route_t r = {.pattern = "/api/performance/clear-cache",
                      .method = HTTP_POST,
                      .handler = clear_cache_operator,
                      .flags = ROUTE_PUBLIC,
                      .route_class = ROUTE_CLASS_HEALTH,
                      .name = "POST /api/performance/clear-cache (operator)"};
    router_add(admin_rt, &r);
}
