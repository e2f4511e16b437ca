/*
 * Health endpoints. They answer from process state kept up to date elsewhere (the lifecycle
 * and, with a database, the background probe), never by a query of their own, so a load
 * balancer polling them costs next to nothing.
 */
#include "api/ops/health.h"
#include "api/limit/limit.h"
#include "core/common.h"
#include "http/server.h"
#include "core/clock.h"
#include "core/config.h"
#include "db/db.h"

static void no_store(http_ctx_t *ctx)
{
    http_add_header(ctx, LIT("Cache-Control"), LIT("no-store"));
}

/* A probe older than this no longer counts: the prober itself is stuck. */
#define PROBE_STALE_MS 5000

/* True when no database is configured, or the last background probe reached it recently. */
static bool database_ok(void)
{
    if (!g_config.database_url || !*g_config.database_url)
        return true;
    db_health_t h = db_health();
    return h.up && clock_now_ms() - h.checked_ms < PROBE_STALE_MS;
}

static void health(http_ctx_t *ctx)
{
    no_store(ctx);
    if (atomic_load_explicit(&g_server_state, memory_order_relaxed) == SERVER_DRAINING)
        http_respond_json_const(ctx, 503, LIT("{\"status\":\"draining\"}"));
    else if (!database_ok())
        http_respond_json_const(ctx, 503, LIT("{\"status\":\"unhealthy\"}"));
    else
        http_respond_json_const(ctx, 200, LIT("{\"status\":\"healthy\"}"));
}

static void health_live(http_ctx_t *ctx)
{
    no_store(ctx);
    http_respond_json_const(ctx, 200, LIT("{\"status\":\"alive\"}"));
}

static void health_ready(http_ctx_t *ctx)
{
    no_store(ctx);
    int state = atomic_load_explicit(&g_server_state, memory_order_relaxed);
    if (state == SERVER_READY && !database_ok())
        state = SERVER_STARTING; /* not ready without a database */
    switch (state) {
    case SERVER_READY:
        http_respond_json_const(ctx, 200, LIT("{\"status\":\"ready\"}"));
        break;
    case SERVER_DRAINING:
        http_add_header(ctx, LIT("Retry-After"), LIT("10"));
        http_respond_json_const(ctx, 503, LIT("{\"status\":\"draining\"}"));
        break;
    default:
        http_add_header(ctx, LIT("Retry-After"), LIT("1"));
        http_respond_json_const(ctx, 503, LIT("{\"status\":\"starting\"}"));
        break;
    }
}

typedef struct {
    const char *pattern, *name;
    http_handler_fn fn;
} health_route_t;

static void health_allowed(http_ctx_t *ctx, void *arg)
{
    ((const health_route_t *)arg)->fn(ctx);
}

/* Every health route: the per-IP health budget first. */
static void health_limited(http_ctx_t *ctx)
{
    rl_check_ip(ctx, RL_HEALTH, health_allowed, (void *)ctx->route->data);
}

void api_health_routes(router_t *rt)
{
    static const health_route_t routes[] = {
        {"/api/health", "GET /api/health", health},
        {"/api/health/live", "GET /api/health/live", health_live},
        {"/api/health/ready", "GET /api/health/ready", health_ready},
    };
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        http_route_t r = {.pattern = routes[i].pattern,
                          .method = HTTP_GET,
                          .handler = health_limited,
                          .flags = ROUTE_PUBLIC,
                          .route_class = ROUTE_CLASS_HEALTH,
                          .name = routes[i].name,
                          .data = &routes[i]};
        router_add(rt, &r);
    }
}
