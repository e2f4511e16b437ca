/*
 * API-key authentication (see auth.h). Keys are looked up by their SHA-256 (the only form
 * the database holds) and the answer is kept in a per-thread map for AUTH_TTL_MS, so a
 * request normally pays no query and takes no lock for auth. While an entry is being
 * re-checked, requests keep using it for at most AUTH_STALE_MS more; a revoked key stops
 * working within AUTH_TTL_MS plus one lookup.
 */
#include "api/auth.h"
#include "core/common.h"
#include "core/crypto.h"
#include "core/hash.h"
#include "core/log.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"

#define AUTH_TTL_MS   5000
#define AUTH_STALE_MS 5000
#define AUTH_MAP_SIZE 4096 /* per thread; oldest entries are overwritten */
#define KEY_MAX       96

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

/* ---- finding the caller ---- */

struct api_auth_lookup {
    uint64_t hash;
    char key[KEY_MAX];
    uint8_t key_len;
    char prefix[9];
    bool first_sight; /* no entry for the key on this thread */
    api_auth_done_fn done;
    void *arg;
    http_ctx_t *ctx;
};

bool api_auth_first_sight(const api_auth_lookup_t *l)
{
    return l->first_sight;
}

static void fill_entry(auth_entry_t *e, const api_auth_lookup_t *l, PGresult *res, uint64_t now)
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
    api_auth_lookup_t *l = arg;
    auth_entry_t *e = map_slot(l->key, l->key_len, l->hash);
    if (b->status != DB_OK) {
        if (entry_is(e, l->key, l->key_len, l->hash))
            e->refreshing = false;
        const char *err = b->error[0] ? b->error : "database error";
        err = arena_strndup(&l->ctx->arena, err, strlen(err));
        db_batch_release(b);
        l->done(l->ctx, NULL, err, l->arg);
        return;
    }
    fill_entry(e, l, b->results[0], clock_now_ms());
    db_batch_release(b);
    l->done(l->ctx, e->found ? &e->auth : NULL, NULL, l->arg);
}

void api_auth_lookup(http_ctx_t *ctx, api_auth_lookup_t *l, api_auth_done_fn done, void *arg)
{
    l->ctx = ctx;
    l->done = done;
    l->arg = arg;
    char hex[SEC_SHA256_PG_LEN + 1];
    sec_sha256_pg(hex, l->key, l->key_len);
    const char *params[1] = {hex};
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    db_batch_add(b, lookup_stmt, 1, params);
    db_batch_submit(b, lookup_done, l);
}

api_auth_status_t api_auth_find(http_ctx_t *ctx, const api_auth_t **auth, const char **detail,
                                api_auth_lookup_t **lookup)
{
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
            *detail = "the Authorization header must use the Bearer scheme";
            return AUTH_REFUSED;
        }
    } else if (q->x_api_key.len) {
        key = q->x_api_key.p;
        n = q->x_api_key.len;
    }
    if (!key) {
        *detail = "an API key is required (Authorization: Bearer or X-API-Key)";
        return AUTH_REFUSED;
    }
    char prefix[9];
    if (!api_key_shape_ok(key, n, prefix)) {
        *detail = "malformed API key";
        return AUTH_REFUSED;
    }
    memcpy(ctx->key_prefix, prefix, sizeof(prefix));
    uint64_t h = key_hash(key, n);
    auth_entry_t *e = map_slot(key, n, h);
    uint64_t now = clock_now_ms();
    if (entry_is(e, key, n, h)) {
        uint64_t age = now - e->checked_ms;
        if (age < AUTH_TTL_MS || (e->refreshing && age < AUTH_TTL_MS + AUTH_STALE_MS)) {
            if (!e->found) {
                *detail = "unknown or revoked API key";
                return AUTH_REFUSED;
            }
            *auth = &e->auth;
            return AUTH_FOUND;
        }
        e->refreshing = true;
    }
    api_auth_lookup_t *l = arena_alloc(&ctx->arena, sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->hash = h;
    l->key_len = (uint8_t)n;
    memcpy(l->key, key, n);
    memcpy(l->prefix, prefix, 9);
    l->first_sight = !entry_is(e, key, n, h);
    *lookup = l;
    return AUTH_LOOKUP;
}
