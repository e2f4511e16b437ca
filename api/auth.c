/*
 * API-key authentication (see auth.h). Keys are looked up by their SHA-256 (the only form
 * the database holds) and the answer is kept in a per-thread map for AUTH_TTL_MS, so a
 * request normally pays no query and takes no lock for auth. While an entry is being
 * re-checked, requests keep using it for at most AUTH_STALE_MS more; a revoked key stops
 * working within AUTH_TTL_MS plus one lookup.
 */
#include "api/auth.h"
#include "core/hash.h"
#include "api/cached.h"
#include "api/ratelimit.h"
#include "core/common.h"
#include "core/log.h"
#include "db/db.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"

#define AUTH_TTL_MS 5000
#define AUTH_STALE_MS 5000
#define AUTH_MAP_SIZE 4096 /* per thread; oldest entries are overwritten */
#define KEY_MAX 96

typedef struct {
    uint64_t hash;
    uint64_t checked_ms;
    bool used, found, refreshing;
    uint8_t key_len;
    char key[KEY_MAX];
    api_auth_t auth;
} auth_entry_t;

static __thread auth_entry_t *tl_map;
static db_stmt_t lookup_stmt;

static const char *const tier_names[] = {"free", "standard", "professional", "enterprise", "unlimited"};

const char *api_tier_name(int tier)
{
    return tier >= 0 && tier < (int)ARRAY_LEN(tier_names) ? tier_names[tier] : "free";
}

int api_tier_parse(const char *s, size_t n)
{
    for (int i = 0; i < (int)ARRAY_LEN(tier_names); i++)
        if (strlen(tier_names[i]) == n && memcmp(tier_names[i], s, n) == 0)
            return i;
    return -1;
}

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool api_key_shape_ok(const char *key, size_t n, char prefix[9])
{
    if (n < 5 + 8 + 1 + 16 || n >= KEY_MAX || memcmp(key, "crmd_", 5) != 0 || key[13] != '_')
        return false;
    for (size_t i = 5; i < n; i++)
        if (i != 13 && !alnum(key[i]))
            return false;
    memcpy(prefix, key + 5, 8);
    prefix[8] = '\0';
    return true;
}

void api_auth_thread_init(void)
{
    if (!tl_map)
        tl_map = xcalloc(AUTH_MAP_SIZE, sizeof(auth_entry_t));
    lookup_stmt = db_stmt("SELECT k.org_id, k.user_id, u.role, o.tier FROM api_keys k "
                          "JOIN users u ON u.org_id = k.org_id AND u.id = k.user_id "
                          "JOIN organizations o ON o.id = k.org_id "
                          "WHERE k.key_hash = $1::bytea AND k.revoked_at IS NULL");
}

void api_auth_thread_free(void)
{
    free(tl_map);
    tl_map = NULL;
}

static uint64_t key_hash(const char *k, size_t n)
{
    return hash64(k, n);
}

static auth_entry_t *map_slot(const char *key, size_t n, uint64_t h)
{
    if (!tl_map)
        api_auth_thread_init();
    return &tl_map[h & (AUTH_MAP_SIZE - 1)];
}

static bool entry_is(const auth_entry_t *e, const char *key, size_t n, uint64_t h)
{
    return e->used && e->hash == h && e->key_len == n && memcmp(e->key, key, n) == 0;
}

/* ---- the wrapper ---- */

typedef struct {
    http_ctx_t *ctx;
    const api_route_info_t *info;
    uint64_t hash;
    char key[KEY_MAX];
    uint8_t key_len;
    char prefix[9];
    bool ip_spent; /* a first sight of the key: the client IP's budget paid for the lookup */
} lookup_t;

static void unauthorized_allowed(http_ctx_t *ctx, void *detail)
{
    http_add_header(ctx, LIT("WWW-Authenticate"), LIT("Bearer realm=\"crmd\""));
    log_fields(LOG_INFO, "unauthorized", "request_id", ctx->request_id, "reason", (const char *)detail, NULL);
    http_respond_problem(ctx, 401, "unauthorized", detail);
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

/* The rate limiter let the request through: the admin check, then cache or handler. */
static void run_allowed(http_ctx_t *ctx, void *arg)
{
    run_t *run = arg;
    const api_route_info_t *info = run->info;
    api_handler_fn fn = info->fn;
    api_auth_t *auth = &run->auth;
    if ((ctx->route->flags & ROUTE_ADMIN) && !auth->admin) {
        http_respond_problem(ctx, 403, "forbidden", "this endpoint needs an admin key");
        return;
    }
    if (ctx->req.method == HTTP_GET || ctx->req.method == HTTP_HEAD) {
        http_set_cacheable(ctx);
        if (!info->no_cache) {
            api_cached_get(ctx, auth, info);
            return;
        }
    }
    fn(ctx, auth);
}

/* The key is known (and with it the tier): the limits come before the cache and the handler. */
static void run_handler(http_ctx_t *ctx, const api_route_info_t *info, const api_auth_t *cached)
{
    memcpy(ctx->key_prefix, cached->prefix, sizeof(ctx->key_prefix));
    run_t *run = arena_alloc(&ctx->arena, sizeof(*run));
    run->auth = *cached;
    run->info = info;
    rl_check_key(ctx, cached->prefix, cached->tier, ctx->route->route_class, run_allowed, run);
}

static void fill_entry(auth_entry_t *e, const lookup_t *l, PGresult *res, uint64_t now)
{
    memset(e, 0, sizeof(*e));
    e->used = true;
    e->hash = l->hash;
    e->key_len = l->key_len;
    memcpy(e->key, l->key, l->key_len);
    e->checked_ms = now;
    if (!res || PQntuples(res) != 1)
        return;
    e->found = true;
    api_auth_t *a = &e->auth;
    a->org_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    a->user_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    a->admin = strcmp(PQgetvalue(res, 0, 2), "admin") == 0;
    const char *tier = PQgetvalue(res, 0, 3);
    int t = api_tier_parse(tier, strlen(tier));
    a->tier = (uint8_t)(t < 0 ? TIER_FREE : t);
    memcpy(a->prefix, l->prefix, 9);
    snprintf(a->org_id_s, sizeof(a->org_id_s), "%lld", (long long)a->org_id);
    snprintf(a->user_id_s, sizeof(a->user_id_s), "%lld", (long long)a->user_id);
}

static void lookup_done(db_batch_t *b, void *arg)
{
    lookup_t *l = arg;
    http_ctx_t *ctx = l->ctx;
    auth_entry_t *e = map_slot(l->key, l->key_len, l->hash);
    if (b->status != DB_OK) {
        if (entry_is(e, l->key, l->key_len, l->hash))
            e->refreshing = false;
        db_batch_release(b);
        log_fields(LOG_WARN, "api key lookup failed", "request_id", ctx->request_id, "error", b->error, NULL);
        http_add_header(ctx, LIT("Retry-After"), LIT("2"));
        http_respond_problem(ctx, 503, "service-unavailable", "the database is unavailable; try again shortly");
        return;
    }
    fill_entry(e, l, b->results[0], clock_now_ms());
    db_batch_release(b);
    if (!e->found) {
        if (l->ip_spent) /* the lookup already took this client's token */
            unauthorized_allowed(ctx, (void *)"unknown or revoked API key");
        else
            unauthorized(ctx, "unknown or revoked API key");
        return;
    }
    run_handler(ctx, l->info, &e->auth);
}

/* Looks the key of l up by its SHA-256. */
static void start_lookup(http_ctx_t *ctx, void *arg)
{
    lookup_t *l = arg;
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)l->key, l->key_len);
    char hex[2 + 2 * crypto_hash_sha256_BYTES + 1] = "\\x";
    sodium_bin2hex(hex + 2, sizeof(hex) - 2, digest, sizeof(digest));
    const char *params[1] = {hex};
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    db_batch_add(b, lookup_stmt, 1, params);
    db_batch_submit(b, lookup_done, l);
}

static void api_entry(http_ctx_t *ctx)
{
    const api_route_info_t *info = ctx->route->data;
    http_request_t *q = &ctx->req;
    const char *key = NULL;
    size_t n = 0;
    if (q->authorization.len) {
        if (q->authorization.len > 7 && strncasecmp(q->authorization.p, "Bearer ", 7) == 0) {
            key = q->authorization.p + 7;
            n = q->authorization.len - 7;
            while (n && *key == ' ')
                key++, n--;
        } else {
            unauthorized(ctx, "the Authorization header must use the Bearer scheme");
            return;
        }
    } else if (q->x_api_key.len) {
        key = q->x_api_key.p;
        n = q->x_api_key.len;
    }
    if (!key) {
        unauthorized(ctx, "an API key is required (Authorization: Bearer or X-API-Key)");
        return;
    }
    char prefix[9];
    bool shaped = api_key_shape_ok(key, n, prefix);
    if (shaped)
        memcpy(ctx->key_prefix, prefix, sizeof(prefix));
    if (!shaped) {
        unauthorized(ctx, "malformed API key");
        return;
    }
    uint64_t h = key_hash(key, n);
    auth_entry_t *e = map_slot(key, n, h);
    uint64_t now = clock_now_ms();
    if (entry_is(e, key, n, h)) {
        uint64_t age = now - e->checked_ms;
        if (age < AUTH_TTL_MS || (e->refreshing && age < AUTH_TTL_MS + AUTH_STALE_MS)) {
            if (!e->found)
                unauthorized(ctx, "unknown or revoked API key");
            else
                run_handler(ctx, info, &e->auth);
            return;
        }
        e->refreshing = true;
    }
    lookup_t *l = arena_alloc(&ctx->arena, sizeof(*l));
    l->ctx = ctx;
    l->info = info;
    l->hash = h;
    l->key_len = (uint8_t)n;
    memcpy(l->key, key, n);
    memcpy(l->prefix, prefix, 9);
    l->ip_spent = !entry_is(e, key, n, h);
    if (!l->ip_spent)
        start_lookup(ctx, l); /* re-checking a key we know */
    else
        rl_check_lookup(ctx, start_lookup, l); /* a key never seen here costs its client */
}

/* Route infos live as long as the process (routes are never removed). */
static api_route_info_t *infos[ROUTER_MAX_ROUTES * 2];
static int ninfos;

static void add_route(router_t *rt, http_method_t method, const char *pattern, api_route_info_t info, uint32_t flags,
                      uint8_t route_class, const char *name)
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
        .data = p,
    };
    router_add(rt, &r);
}

void api_route(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn, uint32_t flags,
               uint8_t route_class, const char *name)
{
    add_route(rt, method, pattern, (api_route_info_t){.fn = fn}, flags, route_class, name);
}

void api_route_cached(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn, uint32_t flags,
                      uint8_t route_class, const char *name, const api_cache_spec_t *spec)
{
    add_route(rt, method, pattern, (api_route_info_t){.fn = fn, .cache = spec, .no_cache = spec == NULL}, flags,
              route_class, name);
}

void api_routes_free(void)
{
    for (int i = 0; i < ninfos; i++)
        free(infos[i]);
    ninfos = 0;
}
