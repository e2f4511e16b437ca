/*
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
#include "core/json_read.h"
#include "core/log.h"
#include "db/db.h"

#include <stdio.h>
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

void api_performance_routes(router_t *rt)
{
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
