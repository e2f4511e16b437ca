/*
 * The response cache in front of authenticated GETs (see cached.h): a request becomes a
 * tcache_req_t (key and tags from the route's spec or the resource schema), the tiered cache
 * (cache/tiered.c) is asked, concurrent misses of one key wait for the first one's fill
 * (cache/coalesce.c), and entries are answered with their ETag and compressed variants.
 */
#include "api/cached.h"
#include "api/common.h"
#include "api/schema.h"
#include "cache/coalesce.h"
#include "cache/tiered.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/shards.h"
#include "core/hash.h"
#include "core/log.h"
#include "http/compress.h"
#include "http/etag.h"
#include "http/server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"

/* A request waiting for another request's fill of the same key. */
typedef struct waiter {
    http_ctx_t *ctx;
    const api_auth_t *auth;
    struct waiter *next;
} waiter_t;

/* A request's way through the cache; the first miss of a key runs the handler as its fill. */
typedef struct fill {
    tcache_req_t r;
    coalesce_node_t node;
    http_ctx_t *ctx;
    const api_auth_t *auth;
    api_handler_fn fn;
    waiter_t *waiters;
} fill_t;

/* Per-thread counters (one writer each), merged on read. */
static shards_t counter_shards;
static __thread api_cache_counters_t *tl_counters;

void api_cache_free(void)
{
    SHARDS_EACH(&counter_shards, api_cache_counters_t, c)
    free(c);
    shards_reset(&counter_shards);
}

void api_cache_counters(api_cache_counters_t *out)
{
    memset(out, 0, sizeof(*out));
    SHARDS_EACH(&counter_shards, const api_cache_counters_t, c)
    {
        out->l1_hits += c->l1_hits;
        out->l2_hits += c->l2_hits;
        out->l2_misses += c->l2_misses;
        out->l2_errors += c->l2_errors;
        out->fills += c->fills;
        out->coalesced += c->coalesced;
        out->bypasses += c->bypasses;
    }
}

void api_cache_thread_init(void)
{
    if (!tl_counters) /* kept until exit: /metrics may read it from another thread at any time */
        shards_add(&counter_shards, tl_counters = xcalloc(1, sizeof(api_cache_counters_t)));
    coalesce_thread_init();
    tcache_thread_init();
}

void api_cache_thread_free(void)
{
    coalesce_thread_free();
    tcache_thread_free();
}

/* ---------------------------------------------------------------- keys and tags */

/* name=true in the query, compared after percent-decoding (as the handlers read it). */
static bool query_flag(http_str_t q, const char *name)
{
    http_query_iter_t it;
    http_str_t k, v;
    http_query_init(&it, q);
    while (http_query_next(&it, &k, &v)) {
        char kd[64], vd[8];
        if (k.len >= sizeof(kd) || v.len >= 32)
            continue;
        long kn = http_url_decode(kd, k.p, k.len, 1);
        char vraw[32];
        memcpy(vraw, v.p, v.len);
        long vn = http_url_decode(vraw, vraw, v.len, 1);
        if (kn < 0 || vn < 0 || vn >= (long)sizeof(vd))
            continue;
        memcpy(vd, vraw, (size_t)vn);
        if ((size_t)kn == strlen(name) && memcmp(kd, name, (size_t)kn) == 0 && vn == 4 &&
            memcmp(vd, "true", 4) == 0)
            return true;
    }
    return false;
}

static const char *tag(arena_t *a, const char *pre, int64_t n, const char *post);

const char *api_cache_org_tag(arena_t *a, int64_t org_id)
{
    return tag(a, "org:", org_id, ":all");
}

/* "<pre><n><post>" in the arena, without printf (this runs on every cached request). */
static const char *tag(arena_t *a, const char *pre, int64_t n, const char *post)
{
    size_t pl = strlen(pre), sl = post ? strlen(post) : 0;
    char *out = arena_alloc(a, pl + 20 + sl + 1), *p = out;
    memcpy(p, pre, pl);
    p += pl;
    p += u64_text(p, n < 0 ? 0 : (uint64_t)n);
    if (sl)
        memcpy(p, post, sl);
    p[sl] = '\0';
    return out;
}

/* Expands "{org}", "{user}" and "{id}" in a tag template. */
static const char *expand(http_ctx_t *ctx, const api_auth_t *auth, const char *tpl)
{
    buf_t b = BUF_INIT;
    for (const char *p = tpl; *p;) {
        if (strncmp(p, "{org}", 5) == 0) {
            buf_append_i64(&b, auth->org_id);
            p += 5;
        } else if (strncmp(p, "{user}", 6) == 0) {
            buf_append_i64(&b, auth->user_id);
            p += 6;
        } else if (strncmp(p, "{id}", 4) == 0) {
            if (ctx->nparams)
                buf_append(&b, ctx->params[0].p, MIN(ctx->params[0].len, 40));
            p += 4;
        } else {
            buf_putc(&b, *p++);
        }
    }
    const char *out = arena_strndup(&ctx->arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    return out;
}

const char *api_cache_res_tag(arena_t *a, int64_t org_id, const char *plural)
{
    char post[64] = ":";
    strncat(post, plural, sizeof(post) - 2);
    return tag(a, "org:", org_id, post);
}

/* "org:<id>:<plural>": every row of res in the organization. */
static const char *org_res_tag(arena_t *a, int64_t org_id, const schema_res_t *res)
{
    return api_cache_res_tag(a, org_id, res->plural);
}

static void add_unique(tcache_req_t *f, const char *t)
{
    for (int i = 0; i < f->ntags; i++)
        if (strcmp(f->tags[i], t) == 0)
            return;
    f->tags[f->ntags++] = t;
}

/* Fills key, tier and tags for the request; false when it is not cached. */
static bool describe(http_ctx_t *ctx, const api_auth_t *auth, const api_cache_spec_t *spec, tcache_req_t *f)
{
    http_str_t path = ctx->path, q = ctx->req.query;
    arena_t *a = &ctx->arena;
    f->ntags = 0;
    f->bypass = query_flag(q, "refresh");
    if (spec) {
        f->tier = (enum cache_tier)spec->tier;
        for (int i = 0; i < API_CACHE_TAGS_MAX && i < CACHE_TAGS_MAX && spec->tags[i]; i++)
            f->tags[f->ntags++] = expand(ctx, auth, spec->tags[i]);
    } else if (path.len == 7 && memcmp(path.p, "/api/me", 7) == 0) {
        f->tier = CACHE_TIER_SESSION;
        f->tags[f->ntags++] = tag(a, "user:", auth->user_id, NULL);
        f->tags[f->ntags++] = tag(a, "org:", auth->org_id, NULL);
    } else {
        if (path.len < 6 || memcmp(path.p, "/api/", 5) != 0)
            return false;
        const char *r = path.p + 5, *end = path.p + path.len;
        const char *slash = memchr(r, '/', (size_t)(end - r));
        const schema_res_t *res = schema_find_n(r, (size_t)((slash ? slash : end) - r));
        if (!res)
            return false;
        f->tier = res->tier;
        if (!slash) {
            f->tags[f->ntags++] = org_res_tag(a, auth->org_id, res);
        } else {
            const char *id = slash + 1;
            size_t idlen = (size_t)(end - id);
            int64_t idv;
            if (idlen == 0 || memchr(id, '/', idlen))
                return false; /* sub-resources (analytics, ...) describe themselves elsewhere */
            /* tag the canonical id: "042" must be invalidated by a write to company:42 */
            if (!api_parse_id(id, idlen, &idv))
                return false;
            char pre[64];
            size_t sl = strlen(res->singular);
            memcpy(pre, res->singular, sl);
            memcpy(pre + sl, ":", 2);
            f->tags[f->ntags++] = tag(a, pre, idv, NULL);
            if (res->row_follows_org)
                f->tags[f->ntags++] = org_res_tag(a, auth->org_id, res);
        }
        /* an extra's rows: the resources the statistics count, the embedded rows' resources */
        if (res->nstats && query_flag(q, SCHEMA_STATS_PARAM))
            for (size_t i = 0; i < res->nstats && f->ntags < CACHE_TAGS_MAX - 2; i++)
                add_unique(f, org_res_tag(a, auth->org_id, schema_find(res->stats[i].source)));
        if (res->nembeds && query_flag(q, SCHEMA_EMBED_PARAM))
            for (size_t i = 0; i < res->nembeds && f->ntags < CACHE_TAGS_MAX - 2; i++)
                add_unique(f, org_res_tag(a, auth->org_id, schema_embed_target(res, &res->embeds[i])));
    }
    /* every entry of an organization also carries its org-wide tag: an org admin's
     * clear-cache invalidates exactly that organization's entries, everywhere */
    if (f->ntags < CACHE_TAGS_MAX)
        f->tags[f->ntags++] = api_cache_org_tag(a, auth->org_id);
    /* the key: organization (and user for /api/me), path, and the query minus refresh */
    size_t cap = 64 + path.len + 2 * q.len + 2; /* "k" becomes "k=&": at most twice the query */
    if (path.len + q.len > TCACHE_KEY_MAX)
        return false;
    char *k = arena_alloc(a, cap), *p = k;
    const char *o = tag(a, "o", auth->org_id, "|");
    p = stpcpy(p, o);
    if (f->tier == CACHE_TIER_SESSION)
        p = stpcpy(p, tag(a, "u", auth->user_id, "|"));
    memcpy(p, path.p, path.len);
    p += path.len;
    *p++ = '?';
    http_query_iter_t it;
    http_str_t qk, qv;
    http_query_init(&it, q);
    /* Validation comes before the cache: a request is answered from an entry only if its
     * query is the very query that filled it (which the handler validated), so the key holds
     * every byte of the query except a well-formed refresh. Any other refresh (a bad value,
     * given twice) skips the cache and meets the handler's 400. */
    bool refresh_seen = false;
    while (http_query_next(&it, &qk, &qv)) {
        if (qk.len == 7 && memcmp(qk.p, "refresh", 7) == 0) {
            bool valid = (qv.len == 4 && memcmp(qv.p, "true", 4) == 0) ||
                         (qv.len == 5 && memcmp(qv.p, "false", 5) == 0);
            if (!valid || refresh_seen)
                return false;
            refresh_seen = true;
            continue;
        }
        memcpy(p, qk.p, qk.len);
        p += qk.len;
        *p++ = '=';
        memcpy(p, qv.p, qv.len);
        p += qv.len;
        *p++ = '&';
    }
    *p = '\0';
    f->key = k;
    f->key_len = (size_t)(p - k);
    return tcache_seal_tags(f) && f->key_len <= TCACHE_KEY_MAX;
}

/* ---------------------------------------------------------------- serving an entry */

static void timing(http_ctx_t *ctx, const char *desc)
{
    if (ctx->timing.len)
        buf_append_lit(&ctx->timing, ", ");
    buf_append_lit(&ctx->timing, "cache;desc=\"");
    buf_append(&ctx->timing, desc, strlen(desc));
    buf_putc(&ctx->timing, '"');
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

/* Builds the entry for a 200 body, with its compressed variants made once. */
static cache_entry_t *make_entry(http_ctx_t *ctx, fill_t *f, const char *content_type)
{
    buf_t *body = ctx->resp;
    tcache_req_t *r = &f->r;
    uint64_t etag = http_etag_hash(body->data, body->len);
    /* one body under two media types (GraphQL's application/json and graphql-response+json) is
     * two representations: two strong validators */
    if (strncmp(content_type, "application/json", 16) != 0)
        etag ^= hash64(content_type, strlen(content_type));
    cache_entry_t *e = cache_entry_new(r->key, r->key_len, body->data, body->len, etag, content_type, 200,
                                       r->tier, r->l1_tags, r->l1_ntags, r->versions);
    if (body->len > HTTP_COMPRESS_MIN && http_compressible_type(content_type)) {
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
    coalesce_unregister(&f->node);
    waiter_t *w = f->waiters;
    f->waiters = NULL;
    if (status != 200 || !ctx->resp || !content_type || !tcache_l1() || ctx->no_store) {
        /* nothing to share: each waiter asks for itself */
        /* a waiter lives in its request's arena, which answering it may free: next first */
        for (waiter_t *next; w; w = next) {
            next = w->next;
            f->fn(w->ctx, w->auth);
        }
        return false;
    }
    tl_counters->fills++;
    cache_entry_t *e = make_entry(ctx, f, content_type);
    tcache_put(&f->r, e);
    for (waiter_t *next; w; w = next) {
        next = w->next;
        respond_entry(w->ctx, e, "HIT", "coalesced");
    }
    respond_entry(ctx, e, f->r.bypass ? "BYPASS" : "MISS", f->r.bypass ? "bypass" : "miss");
    cache_release(e);
    return true;
}

/* Runs the handler as the fill of f (registered, unless a fill of the key already is, so that
 * later misses wait for it). */
static void start_fill(fill_t *f)
{
    http_ctx_t *ctx = f->ctx;
    if (!f->node.registered && !coalesce_find(f->r.key, f->r.key_len, f->node.hash))
        coalesce_register(&f->node);
    ctx->capture = fill_capture;
    ctx->capture_arg = f;
    f->fn(ctx, f->auth);
}

static void l2_looked_up(tcache_req_t *r, cache_entry_t *e, void *arg)
{
    fill_t *f = arg;
    if (!r->l2_checked)
        tl_counters->l2_errors++;
    else if (!e && !r->bypass)
        tl_counters->l2_misses++;
    if (!e) { /* L2 miss, or Redis unavailable: PostgreSQL fills (registered for waiters) */
        start_fill(f);
        return;
    }
    tl_counters->l2_hits++;
    /* waiters that queued behind this lookup get the same entry */
    coalesce_unregister(&f->node);
    waiter_t *w = f->waiters;
    f->waiters = NULL;
    for (waiter_t *next; w; w = next) { /* a waiter lives in the arena its answer may free */
        next = w->next;
        respond_entry(w->ctx, e, "HIT", "l2-hit");
    }
    respond_entry(f->ctx, e, "HIT", "l2-hit");
    cache_release(e);
}

/* Serves f (described) from L1, a fill in flight, L2 or fn. */
static void serve(fill_t *f, http_ctx_t *ctx, const api_auth_t *auth, api_handler_fn fn)
{
    f->fn = fn;
    f->ctx = ctx;
    f->auth = auth;
    f->node.key = f->r.key;
    f->node.key_len = f->r.key_len;
    f->node.hash = hash64(f->r.key, f->r.key_len);
    if (!f->r.bypass) {
        cache_entry_t *e = tcache_l1_get(&f->r);
        if (e) {
            tl_counters->l1_hits++;
            respond_entry(ctx, e, "HIT", "l1-hit");
            cache_release(e);
            return;
        }
        coalesce_node_t *running = coalesce_find(f->r.key, f->r.key_len, f->node.hash);
        if (running) {
            fill_t *rf = container_of(running, fill_t, node);
            tl_counters->coalesced++;
            waiter_t *w = arena_alloc(&ctx->arena, sizeof(*w));
            w->ctx = ctx;
            w->auth = auth;
            w->next = rf->waiters;
            rf->waiters = w;
            return;
        }
    }
    if (f->r.bypass)
        tl_counters->bypasses++;
    /* versions first: a write that lands while we read makes this fill stale, not served */
    tcache_read_versions(&f->r);
    if (!tcache_l2_usable()) {
        start_fill(f);
        return;
    }
    /* registered before the round trip, so that misses meanwhile wait for this one */
    if (!f->r.bypass || !coalesce_find(f->r.key, f->r.key_len, f->node.hash))
        coalesce_register(&f->node);
    tcache_note_hot(&f->r); /* an L1 miss: what warm_cache looks up */
    tcache_l2_lookup(&f->r, &ctx->arena, l2_looked_up, f);
}

void api_cached_get(http_ctx_t *ctx, const api_auth_t *auth, const api_cache_spec_t *spec, api_handler_fn fn)
{
    fill_t *f = arena_alloc(&ctx->arena, sizeof(*f));
    memset(f, 0, sizeof(*f));
    if (!tcache_l1() || !describe(ctx, auth, spec, &f->r)) {
        fn(ctx, auth);
        return;
    }
    serve(f, ctx, auth, fn);
}

/* "o<org>|<key>" in the arena. */
static const char *org_key(arena_t *a, const api_auth_t *auth, const char *key, size_t key_len,
                           size_t *out_len)
{
    const char *o = tag(a, "o", auth->org_id, "|");
    size_t on = strlen(o);
    char *k = arena_alloc(a, on + key_len + 1);
    memcpy(k, o, on);
    memcpy(k + on, key, key_len);
    k[on + key_len] = '\0';
    *out_len = on + key_len;
    return k;
}

bool api_cached_l1_answer(http_ctx_t *ctx, const api_auth_t *auth, const char *key, size_t key_len, int tier)
{
    if (!tcache_l1() || key_len > TCACHE_KEY_MAX - 32)
        return false;
    tcache_req_t r = {.tier = (enum cache_tier)tier};
    r.key = org_key(&ctx->arena, auth, key, key_len, &r.key_len);
    cache_entry_t *e = tcache_l1_get(&r);
    if (!e)
        return false;
    tl_counters->l1_hits++;
    respond_entry(ctx, e, "HIT", "l1-hit");
    cache_release(e);
    return true;
}

void api_cached_custom(http_ctx_t *ctx, const api_auth_t *auth, const api_cache_custom_t *c,
                       api_handler_fn fn)
{
    arena_t *a = &ctx->arena;
    fill_t *f = arena_alloc(a, sizeof(*f));
    memset(f, 0, sizeof(*f));
    if (!tcache_l1() || c->key_len > TCACHE_KEY_MAX - 32) {
        fn(ctx, auth);
        return;
    }
    f->r.tier = (enum cache_tier)c->tier;
    f->r.bypass = c->bypass;
    for (int i = 0; i < c->ntags && f->r.ntags < CACHE_TAGS_MAX - 1; i++)
        f->r.tags[f->r.ntags++] = c->tags[i];
    f->r.tags[f->r.ntags++] = api_cache_org_tag(a, auth->org_id);
    f->r.key = org_key(a, auth, c->key, c->key_len, &f->r.key_len);
    if (!tcache_seal_tags(&f->r)) {
        fn(ctx, auth);
        return;
    }
    serve(f, ctx, auth, fn);
}
