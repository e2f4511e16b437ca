/*
 * Health endpoints. They answer from process state kept up to date elsewhere (the lifecycle
 * and, with a database, the background probe), never by a query of their own, so a load
 * balancer polling them costs next to nothing.
 *
 * GET /api/health?detailed=true with an admin key adds what the status is made of: the
 * database (the primary's last probe; replicas, of which there are none yet), Redis, the
 * pools, the L1 cache, memory and uptime. Without a key it is 401, with a member's key 403; the
 * status code stays the plain health's. Other query parameters are ignored (load balancers add
 * their own), but detailed must be true or false.
 */
#include "api/ops/health.h"
#include "api/auth.h"
#include "api/cached.h"
#include "api/limit/limit.h"
#include "api/ops/metrics.h"
#include "api/route.h"
#include "cache/tiered.h"
#include "core/json.h"
#include "redis/redis.h"
#include "redis/sentinel.h"
#include "core/common.h"
#include "http/server.h"
#include "core/clock.h"
#include "core/config.h"
#include "db/db.h"

#include <string.h>

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

/* The plain health: its status code and word. */
static int health_status(const char **word)
{
    if (atomic_load_explicit(&g_server_state, memory_order_relaxed) == SERVER_DRAINING) {
        *word = "draining";
        return 503;
    }
    if (!database_ok()) {
        *word = "unhealthy";
        return 503;
    }
    *word = "healthy";
    return 200;
}

static void write_detailed(http_ctx_t *ctx)
{
    const char *word;
    int status = health_status(&word);
    json_writer_t w;
    json_writer_init(&w, http_body(ctx));
    json_obj_begin(&w);
    json_kv_str(&w, JSON_K("status"), word, strlen(word));
    json_kv_i64(&w, JSON_K("uptime_s"), api_metrics_uptime_s());

    bool db_configured = g_config.database_url && *g_config.database_url;
    db_health_t h = db_health();
    uint64_t now = clock_now_ms();
    json_w_key(&w, JSON_K("database"));
    json_obj_begin(&w);
    json_kv_bool(&w, JSON_K("configured"), db_configured);
    json_w_key(&w, JSON_K("primary"));
    json_obj_begin(&w);
    json_kv_bool(&w, JSON_K("up"), db_configured && database_ok());
    if (h.checked_ms) {
        json_kv_double(&w, JSON_K("latency_ms"), h.latency_ms, 3);
        json_kv_u64(&w, JSON_K("probe_age_ms"), now > h.checked_ms ? now - h.checked_ms : 0);
    } else {
        json_kv_null(&w, JSON_K("latency_ms"));
        json_kv_null(&w, JSON_K("probe_age_ms"));
    }
    json_obj_end(&w);
    json_w_key(&w, JSON_K("replicas"));
    json_arr_begin(&w);
    json_arr_end(&w);
    json_obj_end(&w);

    redis_stats_t rs;
    redis_stats(&rs);
    json_w_key(&w, JSON_K("redis"));
    json_obj_begin(&w);
    json_kv_bool(&w, JSON_K("configured"),
                 (g_config.redis_url && *g_config.redis_url) || redis_sentinel_enabled());
    json_kv_bool(&w, JSON_K("up"), rs.clients && rs.connected == rs.clients);
    json_kv_u64(&w, JSON_K("connected_threads"), rs.connected);
    json_kv_u64(&w, JSON_K("threads"), rs.clients);
    json_kv_u64(&w, JSON_K("reconnects"), rs.reconnects);
    json_obj_end(&w);

    db_pool_stats_t ps;
    db_pool_stats(&ps);
    json_w_key(&w, JSON_K("pools"));
    json_obj_begin(&w);
    json_kv_u64(&w, JSON_K("size"), ps.size);
    json_kv_u64(&w, JSON_K("connected"), ps.connected);
    json_kv_u64(&w, JSON_K("busy"), ps.busy);
    json_kv_u64(&w, JSON_K("waiting"), ps.waiting);
    json_obj_end(&w);

    cache_stats_t cs = {0};
    if (tcache_l1())
        cache_stats(tcache_l1(), CACHE_TIER_COUNT, &cs);
    json_w_key(&w, JSON_K("cache"));
    json_obj_begin(&w);
    json_kv_bool(&w, JSON_K("enabled"), tcache_l1() != NULL);
    json_kv_u64(&w, JSON_K("entries"), cs.entries);
    json_kv_u64(&w, JSON_K("bytes"), cs.bytes);
    json_obj_end(&w);

    json_w_key(&w, JSON_K("memory"));
    json_obj_begin(&w);
    json_kv_u64(&w, JSON_K("rss_bytes"), process_rss_bytes());
    json_obj_end(&w);
    json_obj_end(&w);
    http_respond(ctx, status, "application/json");
}

static void detailed_for(http_ctx_t *ctx, const api_auth_t *auth)
{
    if (!auth) {
        api_respond_unauthorized(ctx, "unknown or revoked API key");
        return;
    }
    if (!auth->admin) {
        http_respond_problem(ctx, 403, "forbidden", "detailed health needs an admin key");
        return;
    }
    write_detailed(ctx);
}

static void detailed_looked_up(http_ctx_t *ctx, const api_auth_t *auth, const char *db_error, void *arg)
{
    if (db_error) {
        http_add_header(ctx, LIT("Retry-After"), LIT("2"));
        http_respond_problem(ctx, 503, "service-unavailable",
                             "the database is unavailable; try again shortly");
        return;
    }
    detailed_for(ctx, auth);
}

/* ?detailed=: 1 true, 0 absent or false, -1 anything else. */
static int detailed_param(http_ctx_t *ctx)
{
    http_query_iter_t it;
    http_str_t k, v;
    int out = 0;
    http_query_init(&it, ctx->req.query);
    while (http_query_next(&it, &k, &v)) {
        if (k.len != 8 || memcmp(k.p, "detailed", 8) != 0)
            continue;
        if (v.len == 4 && memcmp(v.p, "true", 4) == 0)
            out = out ? -1 : 1;
        else if (v.len == 5 && memcmp(v.p, "false", 5) == 0)
            out = out ? -1 : 0;
        else
            return -1;
    }
    return out;
}

static void health(http_ctx_t *ctx)
{
    no_store(ctx);
    int detailed = detailed_param(ctx);
    if (detailed < 0) {
        http_respond_problem(ctx, 400, "invalid-parameter", "detailed must be true or false, given once");
        return;
    }
    if (detailed) {
        const api_auth_t *auth = NULL;
        const char *why = NULL;
        api_auth_lookup_t *l = NULL;
        switch (api_auth_find(ctx, &auth, &why, &l)) {
        case AUTH_FOUND:
            detailed_for(ctx, auth);
            return;
        case AUTH_REFUSED:
            api_respond_unauthorized(ctx, why);
            return;
        case AUTH_LOOKUP: /* the health budget of the client's address was spent already */
            api_auth_lookup(ctx, l, detailed_looked_up, NULL);
            return;
        }
    }
    const char *word;
    int status = health_status(&word);
    if (status == 200)
        http_respond_json_const(ctx, 200, LIT("{\"status\":\"healthy\"}"));
    else if (strcmp(word, "draining") == 0)
        http_respond_json_const(ctx, 503, LIT("{\"status\":\"draining\"}"));
    else
        http_respond_json_const(ctx, 503, LIT("{\"status\":\"unhealthy\"}"));
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
