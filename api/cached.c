/* The tiered response cache; see cached.h. */
#include "api/cached.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "http/compress.h"
#include "http/etag.h"
#include "http/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define FILL_BUCKETS 256
#define KEY_MAX 1024

static cache_t *l1;

/* A request waiting for another request's fill of the same key. */
typedef struct waiter {
    http_ctx_t *ctx;
    const api_auth_t *auth;
    struct waiter *next;
} waiter_t;

/* A fill in progress on this thread: the first miss of a key runs the handler. */
typedef struct fill {
    char *key;
    size_t key_len;
    uint64_t hash;
    enum cache_tier tier;
    const char *tags[CACHE_TAGS_MAX];
    int ntags;
    uint64_t versions[CACHE_TAGS_MAX];
    bool bypass;
    bool registered;
    api_handler_fn fn;
    waiter_t *waiters;
    struct fill *next; /* bucket chain */
} fill_t;

static __thread fill_t **tl_fills;

void api_cache_init(size_t l1_bytes)
{
    l1 = l1_bytes ? cache_new(l1_bytes, CACHE_SHARD_BITS_DEFAULT) : NULL;
}

void api_cache_free(void)
{
    if (l1)
        cache_free(l1);
    l1 = NULL;
}

cache_t *api_cache_l1(void)
{
    return l1;
}

void api_cache_thread_init(void)
{
    if (!tl_fills)
        tl_fills = xcalloc(FILL_BUCKETS, sizeof(fill_t *));
}

void api_cache_thread_free(void)
{
    free(tl_fills);
    tl_fills = NULL;
}

void api_cache_invalidate(const char *tag)
{
    if (l1)
        cache_invalidate_tag(l1, tag);
}

/* ---------------------------------------------------------------- keys and tags */

static const struct {
    const char *plural, *singular;
    enum cache_tier tier;
} resources[] = {
    {"companies", "company", CACHE_TIER_FREQUENT}, {"contacts", "contact", CACHE_TIER_FREQUENT},
    {"deals", "deal", CACHE_TIER_FREQUENT},         {"activities", "activity", CACHE_TIER_FREQUENT},
    {"tasks", "task", CACHE_TIER_FREQUENT},         {"users", "user", CACHE_TIER_FREQUENT},
    {"stages", "stage", CACHE_TIER_STATIC},
};

static bool query_flag(http_str_t q, const char *name)
{
    http_query_iter_t it;
    http_str_t k, v;
    http_query_init(&it, q);
    while (http_query_next(&it, &k, &v))
        if (k.len == strlen(name) && memcmp(k.p, name, k.len) == 0 && v.len == 4 && memcmp(v.p, "true", 4) == 0)
            return true;
    return false;
}

static const char *tag(arena_t *a, const char *fmt, int64_t n, const char *s)
{
    char tmp[96];
    int len = s ? snprintf(tmp, sizeof(tmp), fmt, (long long)n, s) : snprintf(tmp, sizeof(tmp), fmt, (long long)n);
    return arena_strndup(a, tmp, (size_t)len);
}

/* Fills key, tier and tags for the request; false when its path is not cached. */
static bool describe(http_ctx_t *ctx, const api_auth_t *auth, fill_t *f)
{
    http_str_t path = ctx->path, q = ctx->req.query;
    arena_t *a = &ctx->arena;
    f->ntags = 0;
    f->bypass = query_flag(q, "refresh");
    if (path.len == 7 && memcmp(path.p, "/api/me", 7) == 0) {
        f->tier = CACHE_TIER_SESSION;
        f->tags[f->ntags++] = tag(a, "user:%lld", auth->user_id, NULL);
        f->tags[f->ntags++] = tag(a, "org:%lld", auth->org_id, NULL);
    } else {
        if (path.len < 6 || memcmp(path.p, "/api/", 5) != 0)
            return false;
        const char *r = path.p + 5, *end = path.p + path.len;
        const char *slash = memchr(r, '/', (size_t)(end - r));
        size_t rlen = (size_t)((slash ? slash : end) - r);
        int k = -1;
        for (int i = 0; i < (int)ARRAY_LEN(resources); i++)
            if (strlen(resources[i].plural) == rlen && memcmp(resources[i].plural, r, rlen) == 0)
                k = i;
        if (k < 0)
            return false;
        f->tier = resources[k].tier;
        if (!slash) {
            f->tags[f->ntags++] = tag(a, "org:%lld:%s", auth->org_id, resources[k].plural);
        } else {
            const char *id = slash + 1;
            size_t idlen = (size_t)(end - id);
            if (idlen == 0 || idlen > 19 || memchr(id, '/', idlen))
                return false; /* sub-resources (analytics, ...) describe themselves elsewhere */
            char tmp[64];
            snprintf(tmp, sizeof(tmp), "%s:%.*s", resources[k].singular, (int)idlen, id);
            f->tags[f->ntags++] = arena_strndup(a, tmp, strlen(tmp));
        }
        if (query_flag(q, "includeStats")) {
            f->tags[f->ntags++] = tag(a, "org:%lld:deals", auth->org_id, NULL);
            f->tags[f->ntags++] = tag(a, "org:%lld:contacts", auth->org_id, NULL);
        }
        if (query_flag(q, "includeRelationships")) {
            f->tags[f->ntags++] = tag(a, "org:%lld:companies", auth->org_id, NULL);
            f->tags[f->ntags++] = tag(a, "org:%lld:contacts", auth->org_id, NULL);
            f->tags[f->ntags++] = tag(a, "org:%lld:stages", auth->org_id, NULL);
        }
    }
    /* the key: organization (and user for /api/me), path, and the query minus refresh */
    buf_t k = BUF_INIT;
    buf_printf(&k, "o%lld|", (long long)auth->org_id);
    if (f->tier == CACHE_TIER_SESSION)
        buf_printf(&k, "u%lld|", (long long)auth->user_id);
    buf_append(&k, path.p, path.len);
    buf_putc(&k, '?');
    http_query_iter_t it;
    http_str_t qk, qv;
    http_query_init(&it, q);
    while (http_query_next(&it, &qk, &qv)) {
        if (qk.len == 7 && memcmp(qk.p, "refresh", 7) == 0)
            continue;
        buf_append(&k, qk.p, qk.len);
        buf_putc(&k, '=');
        buf_append(&k, qv.p, qv.len);
        buf_putc(&k, '&');
    }
    bool ok = k.len <= KEY_MAX;
    f->key = arena_strndup(a, k.data, k.len);
    f->key_len = k.len;
    buf_free(&k);
    return ok;
}

/* ---------------------------------------------------------------- serving an entry */

static void timing(http_ctx_t *ctx, const char *desc)
{
    if (ctx->timing.len)
        buf_append_lit(&ctx->timing, ", ");
    buf_printf(&ctx->timing, "cache;desc=\"%s\"", desc);
}

/* Answers ctx from entry e: the variant the client accepts, its ETag, 304 on a match. */
static void respond_entry(http_ctx_t *ctx, cache_entry_t *e, const char *x_cache, const char *desc)
{
    http_add_header(ctx, LIT("X-Cache"), x_cache, strlen(x_cache));
    timing(ctx, desc);
    char et[20];
    http_add_header(ctx, LIT("ETag"), et, http_etag_format(cache_entry_etag(e), et));
    http_add_header(ctx, LIT("Cache-Control"), LIT("private, max-age=0, must-revalidate"));
    size_t gz_len = 0, br_len = 0, len = 0;
    const void *gz = cache_entry_body(e, CACHE_ENC_GZIP, &gz_len);
    const void *br = cache_entry_body(e, CACHE_ENC_BR, &br_len);
    const char *ct = cache_entry_content_type(e);
    if (gz || br)
        http_add_header(ctx, LIT("Vary"), LIT("Accept-Encoding"));
    if (ctx->req.if_none_match.len && http_if_none_match(ctx->req.if_none_match, cache_entry_etag(e))) {
        http_respond_raw(ctx, 304, ct, NULL, 0);
        return;
    }
    const void *body = cache_entry_body(e, CACHE_ENC_IDENTITY, &len);
    if (gz || br) {
        http_encoding_t enc = http_negotiate_encoding(ctx->req.accept_encoding);
        if (enc == HTTP_ENCODING_BR && br) {
            http_add_header(ctx, LIT("Content-Encoding"), LIT("br"));
            body = br, len = br_len;
        } else if ((enc == HTTP_ENCODING_GZIP || enc == HTTP_ENCODING_BR) && gz) {
            http_add_header(ctx, LIT("Content-Encoding"), LIT("gzip"));
            body = gz, len = gz_len;
        }
    }
    http_respond_raw(ctx, cache_entry_status(e), ct, body, len);
}

/* ---------------------------------------------------------------- fills */

static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
    return h;
}

static fill_t *fill_find(const char *key, size_t n, uint64_t h)
{
    for (fill_t *f = tl_fills[h % FILL_BUCKETS]; f; f = f->next)
        if (f->hash == h && f->key_len == n && memcmp(f->key, key, n) == 0)
            return f;
    return NULL;
}

static void fill_unregister(fill_t *f)
{
    if (!f->registered)
        return;
    for (fill_t **pp = &tl_fills[f->hash % FILL_BUCKETS]; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    f->registered = false;
}

/* Builds the entry for a 200 body, with its compressed variants made once. */
static cache_entry_t *make_entry(http_ctx_t *ctx, fill_t *f, const char *content_type)
{
    buf_t *body = ctx->resp;
    uint64_t etag = http_etag_hash(body->data, body->len);
    cache_entry_t *e = cache_entry_new(f->key, f->key_len, body->data, body->len, etag, content_type, 200, f->tier,
                                       f->tags, f->ntags, f->versions);
    if (body->len >= HTTP_COMPRESS_MIN && http_compressible_type(content_type)) {
        buf_t z = BUF_INIT;
        if (http_compress(ctx->srv->compressor, HTTP_ENCODING_GZIP, body->data, body->len, &z))
            cache_entry_set_variant(e, CACHE_ENC_GZIP, z.data, z.len);
#if HAVE_BROTLI
        z.len = 0;
        if (http_compress(ctx->srv->compressor, HTTP_ENCODING_BR, body->data, body->len, &z))
            cache_entry_set_variant(e, CACHE_ENC_BR, z.data, z.len);
#endif
        buf_free(&z);
    }
    return e;
}

static bool fill_capture(http_ctx_t *ctx, int status, const char *content_type)
{
    fill_t *f = ctx->capture_arg;
    fill_unregister(f);
    waiter_t *w = f->waiters;
    f->waiters = NULL;
    if (status != 200 || !ctx->resp || !content_type || !l1) {
        /* nothing to share: each waiter asks for itself */
        for (; w; w = w->next)
            f->fn(w->ctx, w->auth);
        return false;
    }
    cache_entry_t *e = make_entry(ctx, f, content_type);
    cache_put(l1, e, clock_now_ms()); /* refused when a write made it stale meanwhile: still ours to send */
    for (; w; w = w->next)
        respond_entry(w->ctx, e, "HIT", "coalesced");
    respond_entry(ctx, e, f->bypass ? "BYPASS" : "MISS", f->bypass ? "bypass" : "miss");
    cache_release(e);
    return true;
}

void api_cached_get(http_ctx_t *ctx, const api_auth_t *auth, api_handler_fn fn)
{
    fill_t *f = arena_alloc(&ctx->arena, sizeof(*f));
    memset(f, 0, sizeof(*f));
    if (!l1 || !describe(ctx, auth, f)) {
        fn(ctx, auth);
        return;
    }
    f->fn = fn;
    f->hash = key_hash(f->key, f->key_len);
    if (!f->bypass) {
        cache_entry_t *e = cache_get(l1, f->tier, f->key, f->key_len, clock_now_ms());
        if (e) {
            respond_entry(ctx, e, "HIT", "l1-hit");
            cache_release(e);
            return;
        }
        fill_t *running = fill_find(f->key, f->key_len, f->hash);
        if (running) {
            waiter_t *w = arena_alloc(&ctx->arena, sizeof(*w));
            w->ctx = ctx;
            w->auth = auth;
            w->next = running->waiters;
            running->waiters = w;
            return;
        }
    }
    /* versions first: a write that lands while we read makes this fill stale, not served */
    cache_tag_versions(l1, f->tags, f->ntags, f->versions);
    if (!fill_find(f->key, f->key_len, f->hash)) {
        fill_t **b = &tl_fills[f->hash % FILL_BUCKETS];
        f->next = *b;
        *b = f;
        f->registered = true;
    }
    ctx->capture = fill_capture;
    ctx->capture_arg = f;
    fn(ctx, auth);
}
