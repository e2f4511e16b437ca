/*
 * The request pipeline (see route.h): key → limits → role → cache → handler.
 */
#include "api/route.h"
#include "api/cached.h"
#include "api/limit/limit.h"
#include "core/common.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

void api_respond_unauthorized(http_ctx_t *ctx, const char *detail)
{
    http_add_header(ctx, LIT("WWW-Authenticate"), LIT("Bearer realm=\"crmd\""));
    log_fields(LOG_INFO, "unauthorized", "request_id", ctx->request_id, "reason", detail, NULL);
    http_respond_problem(ctx, 401, "unauthorized", detail);
}

static void unauthorized_allowed(http_ctx_t *ctx, void *detail)
{
    api_respond_unauthorized(ctx, detail);
}

/* Unauthenticated requests spend the client IP's budget; detail is a string constant. */
static void unauthorized(http_ctx_t *ctx, const char *detail)
{
    rl_check_ip(ctx, RL_IP, unauthorized_allowed, (void *)detail);
}

typedef struct {
    api_auth_t auth;
    const api_route_info_t *info;
} run_t;

/* The rate limiter let the request through: the role, then cache or handler. */
static void run_allowed(http_ctx_t *ctx, void *arg)
{
    run_t *run = arg;
    const api_route_info_t *info = run->info;
    api_auth_t *auth = &run->auth;
    if ((ctx->route->flags & ROUTE_ADMIN) && !auth->admin) {
        http_respond_problem(ctx, 403, "forbidden", "this endpoint needs an admin key");
        return;
    }
    if (ctx->req.method == HTTP_GET || ctx->req.method == HTTP_HEAD) {
        http_set_cacheable(ctx);
        if (!info->no_cache) {
            api_cached_get(ctx, auth, info->cache, info->fn);
            return;
        }
    }
    info->fn(ctx, auth);
}

/* The key is known (and with it the tier): the limits come before the cache and the handler. */
static void run_handler(http_ctx_t *ctx, const api_auth_t *auth)
{
    memcpy(ctx->key_prefix, auth->prefix, sizeof(ctx->key_prefix));
    run_t *run = arena_alloc(&ctx->arena, sizeof(*run));
    run->auth = *auth;
    run->info = ctx->route->data;
    rl_check_key(ctx, auth->prefix, auth->tier, ctx->route->route_class, run_allowed, run);
}

static void lookup_done(http_ctx_t *ctx, const api_auth_t *auth, const char *db_error, void *arg)
{
    bool ip_spent = arg != NULL;
    if (db_error) {
        log_fields(LOG_WARN, "api key lookup failed", "request_id", ctx->request_id, "error", db_error, NULL);
        http_add_header(ctx, LIT("Retry-After"), LIT("2"));
        http_respond_problem(ctx, 503, "service-unavailable",
                             "the database is unavailable; try again shortly");
    } else if (!auth) {
        if (ip_spent) /* the lookup already took this client's token */
            unauthorized_allowed(ctx, (void *)"unknown or revoked API key");
        else
            unauthorized(ctx, "unknown or revoked API key");
    } else {
        run_handler(ctx, auth);
    }
}

/* The client IP's budget paid for a first-sight key: look it up. */
static void lookup_allowed(http_ctx_t *ctx, void *l)
{
    api_auth_lookup(ctx, l, lookup_done, (void *)1);
}

static void api_entry(http_ctx_t *ctx)
{
    const api_auth_t *auth = NULL;
    const char *detail = NULL;
    api_auth_lookup_t *l = NULL;
    switch (api_auth_find(ctx, &auth, &detail, &l)) {
    case AUTH_FOUND:
        run_handler(ctx, auth);
        break;
    case AUTH_REFUSED:
        unauthorized(ctx, detail);
        break;
    case AUTH_LOOKUP:
        if (api_auth_first_sight(l))
            rl_check_lookup(ctx, lookup_allowed, l); /* a key never seen here costs its client */
        else
            api_auth_lookup(ctx, l, lookup_done, NULL); /* re-checking a key we know */
        break;
    }
}

/* Route infos live as long as the process (routes are never removed). */
static api_route_info_t *infos[ROUTER_MAX_ROUTES * 2];
static int ninfos;

static void add_route(router_t *rt, http_method_t method, const char *pattern, api_route_info_t info,
                      uint32_t flags, uint8_t route_class, const char *name, int64_t body_limit)
{
    if (ninfos >= (int)ARRAY_LEN(infos))
        die("too many API routes");
    api_route_info_t *p = xmalloc(sizeof(*p));
    *p = info;
    infos[ninfos++] = p;
    http_route_t r = {
        .pattern = pattern,
        .method = method,
        .handler = api_entry,
        .flags = flags,
        .route_class = route_class,
        .name = name,
        .body_limit = body_limit,
        .data = p,
    };
    router_add(rt, &r);
}

void api_route(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn, uint32_t flags,
               uint8_t route_class, const char *name)
{
    add_route(rt, method, pattern, (api_route_info_t){.fn = fn}, flags, route_class, name, 0);
}

void api_route_limit(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn,
                     uint32_t flags, uint8_t route_class, const char *name, int64_t body_limit)
{
    add_route(rt, method, pattern, (api_route_info_t){.fn = fn}, flags, route_class, name, body_limit);
}

void api_route_cached(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn,
                      uint32_t flags, uint8_t route_class, const char *name, const api_cache_spec_t *spec)
{
    add_route(rt, method, pattern, (api_route_info_t){.fn = fn, .cache = spec, .no_cache = spec == NULL},
              flags, route_class, name, 0);
}

void api_routes_free(void)
{
    for (int i = 0; i < ninfos; i++)
        free(infos[i]);
    ninfos = 0;
}
