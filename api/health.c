/*
 * Health endpoints. They answer from process state kept up to date elsewhere (the lifecycle
 * and, with a database, the background probe), never by a query of their own, so a load
 * balancer polling them costs next to nothing.
 */
#include "api/health.h"
#include "core/common.h"
#include "http/server.h"

static void no_store(http_ctx_t *ctx)
{
    http_add_header(ctx, LIT("Cache-Control"), LIT("no-store"));
}

static void health(http_ctx_t *ctx)
{
    no_store(ctx);
    if (atomic_load_explicit(&g_server_state, memory_order_relaxed) == SERVER_DRAINING)
        http_respond_json_const(ctx, 503, LIT("{\"status\":\"draining\"}"));
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
    switch (atomic_load_explicit(&g_server_state, memory_order_relaxed)) {
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

void api_health_routes(router_t *rt)
{
    static const http_route_t routes[] = {
        {"/api/health", HTTP_GET, health, ROUTE_PUBLIC, ROUTE_CLASS_HEALTH, 0, "GET /api/health"},
        {"/api/health/live", HTTP_GET, health_live, ROUTE_PUBLIC, ROUTE_CLASS_HEALTH, 0, "GET /api/health/live"},
        {"/api/health/ready", HTTP_GET, health_ready, ROUTE_PUBLIC, ROUTE_CLASS_HEALTH, 0, "GET /api/health/ready"},
    };
    for (size_t i = 0; i < ARRAY_LEN(routes); i++)
        router_add(rt, &routes[i]);
}
