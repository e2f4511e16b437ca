/*
 * POST /api/performance/clear-cache {"scope": "all"|"l1"|"l2"|"tag", "tag"?} (admin) →
 * {"data": {"cleared": n}}: n counts the entries removed here (L1) and in Redis (L2); the L1s
 * of the other instances are cleared through the invalidation channel.
 */
#include "api/performance.h"
#include "api/auth.h"
#include "api/cached.h"
#include "api/common.h"
#include "core/clock.h"
#include "core/json_read.h"
#include "core/log.h"

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
        api_respond_problem(c->ctx, 503, "service-unavailable", "Redis is unavailable: the L2 cache was not cleared",
                            NULL);
        return;
    }
    if (!ok) {
        /* L1 here is clear; Redis could not be reached for its part */
        log_fields(LOG_WARN, "clear-cache: Redis unavailable, L2 not cleared", "request_id", c->ctx->request_id, NULL);
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
    if (errs.n) {
        api_respond_problem(ctx, 422, "validation-failed", "the body is not valid", &errs);
        return;
    }
    cache_t *l1 = api_cache_l1();
    clear_t *c = arena_alloc(&ctx->arena, sizeof(*c));
    c->ctx = ctx;
    c->l1_cleared = 0;
    c->l2_only = which == S_L2;
    log_fields(LOG_INFO, "clear-cache", "request_id", ctx->request_id, "scope", scope, "key_prefix", auth->prefix,
               NULL);
    switch (which) {
    case S_TAG:
        c->l1_cleared = l1 ? (int64_t)cache_count_tag(l1, tag, clock_now_ms()) : 0;
        api_cache_invalidate_cb(tag, l2_done, c);
        return;
    case S_L1:
        c->l1_cleared = (int64_t)api_cache_clear_l1_local();
        api_cache_clear_l1_everywhere();
        respond_cleared(ctx, c->l1_cleared);
        return;
    case S_ALL:
        c->l1_cleared = (int64_t)api_cache_clear_l1_local();
        api_cache_clear_l1_everywhere();
        api_cache_clear_l2(l2_done, c);
        return;
    case S_L2:
    default:
        api_cache_clear_l2(l2_done, c);
        return;
    }
}

void api_performance_routes(router_t *rt)
{
    api_route(rt, HTTP_POST, "/api/performance/clear-cache", clear_cache, ROUTE_ADMIN, ROUTE_CLASS_NORMAL,
              "POST /api/performance/clear-cache");
}
