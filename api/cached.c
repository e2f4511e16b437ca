/* The tiered response cache; see cached.h. */
#include "api/cached.h"
#include "core/hash.h"
#include "api/common.h"
#include "api/schema.h"
#include "redis/redis.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "http/compress.h"
#include "http/etag.h"
#include "http/server.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"

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
    const char *l1_tags[CACHE_TAGS_MAX]; /* tags plus the clear epoch tag, for L1 */
    int l1_ntags;
    uint64_t versions[CACHE_TAGS_MAX];   /* of l1_tags, read before the database is asked */
    char *l2_versions[CACHE_TAGS_MAX + 1]; /* Redis versions of tags and of the clear epoch */
    bool l2_checked;                   /* the L2 lookup answered (versions above are valid) */
    bool bypass;
    http_ctx_t *ctx;
    const api_auth_t *auth;
    bool registered;
    api_handler_fn fn;
    waiter_t *waiters;
    struct fill *next; /* bucket chain */
} fill_t;

static __thread fill_t **tl_fills;

/* Per-thread counters (one writer each), merged on read. */
#define MAX_THREADS 256
static api_cache_counters_t *all_counters[MAX_THREADS];
static _Atomic int ncounters;
static __thread api_cache_counters_t *tl_counters;
static __thread struct libdeflate_decompressor *tl_inflate;

/* ---- L2 in Redis ----
 * crmd:c:<key>  the entry record (gzip variant when there is one), PX = the tier's TTL
 * crmd:v:<tag>  the tag's version, bumped by every invalidation
 * crmd:t:<tag>  the set of entry keys carrying the tag, for invalidation
 * A fill stores its record only if every tag's version is still the one read before the
 * database was asked, so a write that lands meanwhile cannot leave a stale L2 entry. */
#define INVALIDATE_CHANNEL "crmd:invalidate"

static redis_script_t lookup_script, fill_script, invalidate_script, clear_l2_script;

/* KEYS: c:key, v:tag..., v:*all → {record or false, pttl, versions..., *all version} */
static const char lookup_lua[] = "local out = {redis.call('GET', KEYS[1]) or false, redis.call('PTTL', KEYS[1])}\n"
                                 "for i = 2, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) or '0' end\n"
                                 "return out\n";
/* KEYS: c:key, v:tag x n, z:tag x n, v:*all; ARGV: record, ttl, n, versions x n, *all version.
 * Tag sets are sorted by expiry and pruned on every fill, so they hold live keys only. */
static const char fill_lua[] = "local n = tonumber(ARGV[3])\n"
                               "for i = 1, n do\n"
                               "  if (redis.call('GET', KEYS[1 + i]) or '0') ~= ARGV[3 + i] then return 0 end\n"
                               "end\n"
                               "if (redis.call('GET', KEYS[2 + 2 * n]) or '0') ~= ARGV[4 + n] then return 0 end\n"
                               "local ttl = tonumber(ARGV[2])\n"
                               "local t = redis.call('TIME')\n"
                               "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
                               "redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)\n"
                               "for i = 1, n do\n"
                               "  local z = KEYS[1 + n + i]\n"
                               "  redis.call('ZADD', z, now + ttl, KEYS[1])\n"
                               "  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)\n"
                               "  redis.call('PEXPIRE', z, ttl + 60000)\n"
                               "end\n"
                               "return 1\n";
/* KEYS: v:tag, z:tag; ARGV: channel, tag → entries removed */
static const char invalidate_lua[] = "redis.call('INCR', KEYS[1])\n"
                                     "redis.call('PEXPIRE', KEYS[1], 7200000)\n"
                                     "local m = redis.call('ZRANGE', KEYS[2], 0, -1)\n"
                                     "for _, k in ipairs(m) do redis.call('DEL', k) end\n"
                                     "redis.call('DEL', KEYS[2])\n"
                                     "redis.call('PUBLISH', ARGV[1], ARGV[2])\n"
                                     "return #m\n";
/* One bounded step of clearing L2 (the caller loops on the cursor, so Redis is never held
 * long): ARGV: cursor → {next cursor, entries removed}. Step 0 also moves the clear epoch,
 * so that fills racing the clear are refused. */
static const char clear_l2_lua[] = "if ARGV[1] == '0' then redis.call('INCR', 'crmd:v:*all') end\n"
                                   "local r = redis.call('SCAN', ARGV[1], 'MATCH', 'crmd:[cz]:*', 'COUNT', 500)\n"
                                   "local n = 0\n"
                                   "for _, k in ipairs(r[2]) do\n"
                                   "  if string.sub(k, 1, 7) == 'crmd:c:' then n = n + 1 end\n"
                                   "  redis.call('DEL', k)\n"
                                   "end\n"
                                   "return {r[1], n}\n";

/* L1 entries also carry this tag, so that a fill that started before a clear is refused. */
#define CLEAR_TAG "*all"

/* ---- invalidations Redis did not take ----
 * A write's invalidation that could not reach Redis (down, timed out) left L2 and the other
 * instances stale. Such tags are kept here, L2 is not used by this process while any are
 * kept, and the subscriber thread replays them once Redis answers again. */
#define PENDING_MAX 4096
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static char *pending[PENDING_MAX];
static int npending;
static _Atomic bool pending_any, pending_overflow;
static timer_entry_t replay_timer;
static reactor_t *replay_reactor;

static void pending_add(const char *tag)
{
    pthread_mutex_lock(&pending_lock);
    bool dup = false;
    for (int i = 0; i < npending && !dup; i++)
        dup = strcmp(pending[i], tag) == 0;
    if (!dup) {
        if (npending < PENDING_MAX)
            pending[npending++] = xstrndup(tag, strlen(tag));
        else
            atomic_store(&pending_overflow, true); /* replaying then means clearing everything */
    }
    atomic_store(&pending_any, true);
    pthread_mutex_unlock(&pending_lock);
}

/* L2 may be read and written: Redis is up and owes us no invalidation. */
static bool l2_usable(void)
{
    return redis_connected() && !atomic_load_explicit(&pending_any, memory_order_relaxed);
}

void api_cache_init(size_t l1_bytes)
{
    l1 = l1_bytes ? cache_new(l1_bytes, CACHE_SHARD_BITS_DEFAULT) : NULL;
    redis_script_init(&lookup_script, lookup_lua);
    redis_script_init(&fill_script, fill_lua);
    redis_script_init(&invalidate_script, invalidate_lua);
    redis_script_init(&clear_l2_script, clear_l2_lua);
}

void api_cache_free(void)
{
    if (l1)
        cache_free(l1);
    l1 = NULL;
    int n = MIN(atomic_load(&ncounters), MAX_THREADS);
    for (int i = 0; i < n; i++) {
        free(all_counters[i]);
        all_counters[i] = NULL;
    }
    atomic_store(&ncounters, 0);
}

cache_t *api_cache_l1(void)
{
    return l1;
}

void api_cache_counters(api_cache_counters_t *out)
{
    memset(out, 0, sizeof(*out));
    int n = MIN(atomic_load(&ncounters), MAX_THREADS);
    for (int i = 0; i < n; i++) {
        const api_cache_counters_t *c = all_counters[i];
        if (!c)
            continue;
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
    if (!tl_counters) {
        /* kept until exit: /metrics may read it from another thread at any time */
        int slot = atomic_fetch_add(&ncounters, 1);
        tl_counters = slot < MAX_THREADS ? (all_counters[slot] = xcalloc(1, sizeof(api_cache_counters_t)))
                                         : xcalloc(1, sizeof(api_cache_counters_t));
    }
    if (!tl_fills)
        tl_fills = xcalloc(FILL_BUCKETS, sizeof(fill_t *));
    if (!tl_inflate && !(tl_inflate = libdeflate_alloc_decompressor()))
        die("out of memory (libdeflate)");
}

void api_cache_thread_free(void)
{
    free(tl_fills);
    tl_fills = NULL;
    if (tl_inflate)
        libdeflate_free_decompressor(tl_inflate);
    tl_inflate = NULL;
}

/* A message on the invalidation channel: a tag, or "*l1" (drop the whole L1). */
size_t api_cache_clear_l1_local(void)
{
    if (!l1)
        return 0;
    cache_invalidate_tag(l1, CLEAR_TAG); /* fills in flight now become stale */
    return cache_clear(l1);
}

/* A message on the invalidation channel: a tag, or "*l1" (drop the whole L1). */
static void on_invalidate_message(const char *channel, const char *msg, size_t len, void *arg)
{
    if (!l1 || len == 0 || len > 200)
        return;
    char tag[256];
    memcpy(tag, msg, len);
    tag[len] = '\0';
    if (strcmp(tag, "*l1") == 0)
        api_cache_clear_l1_local();
    else
        cache_invalidate_tag(l1, tag);
}

/* The subscription came back after a gap: invalidations may have been missed. */
static void on_resubscribe(const char *channel, void *arg)
{
    size_t n = api_cache_clear_l1_local();
    log_fields(LOG_WARN, "cache invalidation channel restored: L1 dropped", "#entries", (int64_t)n, NULL);
}

typedef struct {
    void (*done)(void *arg, int64_t n, bool ok);
    void *arg;
    char tag[256]; /* an invalidation's tag (empty for clears) */
} count_cb_t;

static void count_reply(void *arg, redisReply *reply, int status)
{
    count_cb_t *c = arg;
    bool ok = status == REDIS_STATUS_OK && reply && reply->type == REDIS_REPLY_INTEGER;
    if (!ok && c->tag[0])
        pending_add(c->tag);
    if (c->done)
        c->done(c->arg, ok ? reply->integer : 0, ok);
    free(c);
}

static void invalidate_l2(const char *tag, void (*done)(void *arg, int64_t n, bool ok), void *arg)
{
    char vkey[256], zkey[256];
    snprintf(vkey, sizeof(vkey), "crmd:v:%s", tag);
    snprintf(zkey, sizeof(zkey), "crmd:z:%s", tag);
    const char *argv[4] = {vkey, zkey, INVALIDATE_CHANNEL, tag};
    count_cb_t *c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->arg = arg;
    snprintf(c->tag, sizeof(c->tag), "%s", tag);
    redis_eval(&invalidate_script, 2, 4, argv, NULL, count_reply, c);
}

void api_cache_invalidate_cb(const char *tag, void (*done)(void *arg, int64_t n, bool ok), void *arg)
{
    if (l1)
        cache_invalidate_tag(l1, tag);
    invalidate_l2(tag, done, arg);
}

typedef struct {
    int pending;
    void (*done)(void *arg);
    void *arg;
} all_t;

static void one_invalidated(void *arg, int64_t n, bool ok)
{
    all_t *a = arg;
    if (--a->pending == 0) {
        a->done(a->arg);
        free(a);
    }
}

void api_cache_invalidate_all(const char *const *tags, int n, void (*done)(void *arg), void *arg)
{
    if (n == 0) {
        done(arg);
        return;
    }
    all_t *a = xmalloc(sizeof(*a));
    a->pending = n;
    a->done = done;
    a->arg = arg;
    for (int i = 0; i < n; i++)
        api_cache_invalidate_cb(tags[i], one_invalidated, a);
}

void api_cache_invalidate(const char *tag)
{
    api_cache_invalidate_cb(tag, NULL, NULL);
}

void api_cache_clear_l1_everywhere(void)
{
    api_cache_clear_l1_local();
    redis_publish(INVALIDATE_CHANNEL, "*l1", 3, NULL, NULL);
}

typedef struct {
    void (*done)(void *arg, int64_t n, bool ok);
    void *arg;
    int64_t removed;
} clear_t;

static void clear_step(clear_t *c, const char *cursor);

static void clear_reply(void *arg, redisReply *reply, int status)
{
    clear_t *c = arg;
    if (status != REDIS_STATUS_OK || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_INTEGER) {
        if (c->done)
            c->done(c->arg, c->removed, false);
        free(c);
        return;
    }
    c->removed += reply->element[1]->integer;
    if (strcmp(reply->element[0]->str, "0") == 0) {
        if (c->done)
            c->done(c->arg, c->removed, true);
        free(c);
        return;
    }
    char next[32];
    snprintf(next, sizeof(next), "%s", reply->element[0]->str);
    clear_step(c, next);
}

static void clear_step(clear_t *c, const char *cursor)
{
    const char *argv[1] = {cursor};
    redis_eval(&clear_l2_script, 0, 1, argv, NULL, clear_reply, c);
}

void api_cache_clear_l2(void (*done)(void *arg, int64_t n, bool ok), void *arg)
{
    clear_t *c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->arg = arg;
    clear_step(c, "0");
}

/* Replays kept invalidations once Redis answers (on the subscriber thread). */
static void overflow_cleared(void *arg, int64_t n, bool ok)
{
    if (!ok)
        return; /* still owed: the next replay tries again */
    pthread_mutex_lock(&pending_lock);
    atomic_store(&pending_overflow, false);
    atomic_store(&pending_any, npending > 0);
    pthread_mutex_unlock(&pending_lock);
    redis_publish(INVALIDATE_CHANNEL, "*l1", 3, NULL, NULL);
}

static void on_replay_timer(timer_entry_t *e)
{
    if (atomic_load(&pending_any) && redis_connected()) {
        char *tags[PENDING_MAX];
        pthread_mutex_lock(&pending_lock);
        int n = npending;
        memcpy(tags, pending, sizeof(char *) * (size_t)n);
        npending = 0;
        bool overflow = atomic_load(&pending_overflow);
        if (!overflow)
            atomic_store(&pending_any, false); /* a failed replay adds its tag back */
        pthread_mutex_unlock(&pending_lock);
        for (int i = 0; i < n; i++) {
            invalidate_l2(tags[i], NULL, NULL);
            free(tags[i]);
        }
        if (overflow)
            api_cache_clear_l2(overflow_cleared, NULL);
        log_fields(LOG_INFO, "replayed cache invalidations Redis had missed", "#tags", (int64_t)n, NULL);
    }
    timer_add(&replay_reactor->timers, &replay_timer, clock_now_ms() + 250);
}

void api_cache_subscribe(reactor_t *r)
{
    redis_subscribe(INVALIDATE_CHANNEL, on_invalidate_message, on_resubscribe, NULL);
    replay_reactor = r;
    timer_init(&replay_timer, on_replay_timer);
    timer_add(&r->timers, &replay_timer, clock_now_ms() + 250);
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
        if ((size_t)kn == strlen(name) && memcmp(kd, name, (size_t)kn) == 0 && vn == 4 && memcmp(vd, "true", 4) == 0)
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

/* "org:<id>:<plural>": every row of res in the organization. */
static const char *org_res_tag(arena_t *a, int64_t org_id, const schema_res_t *res)
{
    char post[64] = ":";
    strncat(post, res->plural, sizeof(post) - 2);
    return tag(a, "org:", org_id, post);
}

static void add_unique(fill_t *f, const char *t)
{
    for (int i = 0; i < f->ntags; i++)
        if (strcmp(f->tags[i], t) == 0)
            return;
    f->tags[f->ntags++] = t;
}

/* Fills key, tier and tags for the request; false when it is not cached. */
static bool describe(http_ctx_t *ctx, const api_auth_t *auth, const api_cache_spec_t *spec, fill_t *f)
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
                add_unique(f, org_res_tag(a, auth->org_id,
                                          schema_by_table(schema_col(res, res->embeds[i].fk)->ref)));
    }
    /* every entry of an organization also carries its org-wide tag: an org admin's
     * clear-cache invalidates exactly that organization's entries, everywhere */
    if (f->ntags < CACHE_TAGS_MAX)
        f->tags[f->ntags++] = api_cache_org_tag(a, auth->org_id);
    /* the key: organization (and user for /api/me), path, and the query minus refresh */
    size_t cap = 64 + path.len + 2 * q.len + 2; /* "k" becomes "k=&": at most twice the query */
    if (path.len + q.len > KEY_MAX)
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
            bool valid = (qv.len == 4 && memcmp(qv.p, "true", 4) == 0) || (qv.len == 5 && memcmp(qv.p, "false", 5) == 0);
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
    if (f->ntags >= CACHE_TAGS_MAX)
        return false; /* no room for the clear epoch tag: not cached */
    for (int i = 0; i < f->ntags; i++)
        f->l1_tags[i] = f->tags[i];
    f->l1_tags[f->ntags] = CLEAR_TAG;
    f->l1_ntags = f->ntags + 1;
    return f->key_len <= KEY_MAX;
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

/* ---------------------------------------------------------------- L2 records */

/* "C1" etag(8) status(2) tier(1) enc(1) identity_len(4) ct_len(1) ct body — little endian */
#define REC_HEAD 19

static void put_le(char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (char)(v >> (8 * i));
}

static uint64_t get_le(const char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return v;
}

static void record_encode(cache_entry_t *e, buf_t *out)
{
    size_t ilen = 0, glen = 0;
    const void *identity = cache_entry_body(e, CACHE_ENC_IDENTITY, &ilen);
    const void *gz = cache_entry_body(e, CACHE_ENC_GZIP, &glen);
    const char *ct = cache_entry_content_type(e);
    size_t ctlen = strlen(ct);
    char *h = buf_reserve(out, REC_HEAD + ctlen);
    h[0] = 'C', h[1] = '1';
    put_le(h + 2, cache_entry_etag(e), 8);
    put_le(h + 10, (uint64_t)cache_entry_status(e), 2);
    h[12] = (char)cache_entry_tier(e);
    h[13] = gz ? 1 : 0;
    put_le(h + 14, ilen, 4);
    h[18] = (char)ctlen;
    memcpy(h + REC_HEAD, ct, ctlen);
    out->len += REC_HEAD + ctlen;
    buf_append(out, gz ? gz : identity, gz ? glen : ilen);
}

/* Rebuilds an L1 entry from an L2 record; NULL when it is damaged. */
static cache_entry_t *record_decode(fill_t *f, const char *p, size_t n)
{
    if (n < REC_HEAD || p[0] != 'C' || p[1] != '1')
        return NULL;
    size_t ctlen = (unsigned char)p[18], ilen = (size_t)get_le(p + 14, 4);
    if (n < REC_HEAD + ctlen || ilen > (64u << 20))
        return NULL;
    char ct[256];
    memcpy(ct, p + REC_HEAD, ctlen);
    ct[ctlen] = '\0';
    const char *body = p + REC_HEAD + ctlen;
    size_t blen = n - REC_HEAD - ctlen;
    uint64_t etag = get_le(p + 2, 8);
    int status = (int)get_le(p + 10, 2);
    cache_entry_t *e;
    if (p[13] == 1) {
        char *plain = xmalloc(ilen ? ilen : 1);
        size_t got = 0;
        if (libdeflate_gzip_decompress(tl_inflate, body, blen, plain, ilen, &got) != LIBDEFLATE_SUCCESS ||
            got != ilen) {
            free(plain);
            return NULL;
        }
        e = cache_entry_new(f->key, f->key_len, plain, ilen, etag, ct, status, f->tier, f->l1_tags, f->l1_ntags,
                            f->versions);
        cache_entry_set_variant(e, CACHE_ENC_GZIP, body, blen);
        free(plain);
    } else {
        if (blen != ilen)
            return NULL;
        e = cache_entry_new(f->key, f->key_len, body, blen, etag, ct, status, f->tier, f->l1_tags, f->l1_ntags,
                            f->versions);
    }
    return e;
}

/* ---------------------------------------------------------------- fills */

static uint64_t key_hash(const char *k, size_t n)
{
    return hash64(k, n);
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
                                       f->l1_tags, f->l1_ntags, f->versions);
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

/* Stores e in L2 if no tag (nor the clear epoch) moved since the lookup read the versions. */
static void l2_store(fill_t *f, cache_entry_t *e)
{
    int n = f->ntags;
    const char *argv[4 + 3 * CACHE_TAGS_MAX + 2];
    size_t lens[4 + 3 * CACHE_TAGS_MAX + 2];
    buf_t rec = BUF_INIT;
    record_encode(e, &rec);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)cache_tier_ttl_ms(f->tier));
    char ckey[KEY_MAX + 16];
    int ck = snprintf(ckey, sizeof(ckey), "crmd:c:%.*s", (int)f->key_len, f->key);
    int argc = 0;
    argv[argc] = ckey, lens[argc++] = (size_t)ck;
    char tagkeys[2 * CACHE_TAGS_MAX][128];
    for (int i = 0; i < n; i++) {
        int len = snprintf(tagkeys[i], sizeof(tagkeys[i]), "crmd:v:%s", f->tags[i]);
        argv[argc] = tagkeys[i], lens[argc++] = (size_t)len;
    }
    for (int i = 0; i < n; i++) {
        int len = snprintf(tagkeys[n + i], sizeof(tagkeys[n + i]), "crmd:z:%s", f->tags[i]);
        argv[argc] = tagkeys[n + i], lens[argc++] = (size_t)len;
    }
    argv[argc] = "crmd:v:" CLEAR_TAG, lens[argc++] = sizeof("crmd:v:" CLEAR_TAG) - 1;
    int nkeys = argc;
    argv[argc] = rec.data, lens[argc++] = rec.len;
    argv[argc] = ttl, lens[argc++] = strlen(ttl);
    char nbuf[16];
    snprintf(nbuf, sizeof(nbuf), "%d", n);
    argv[argc] = nbuf, lens[argc++] = strlen(nbuf);
    for (int i = 0; i <= n; i++) /* the tags' versions, then the clear epoch's */
        argv[argc] = f->l2_versions[i], lens[argc++] = strlen(f->l2_versions[i]);
    redis_eval(&fill_script, nkeys, argc, argv, lens, NULL, NULL);
    buf_free(&rec);
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
    tl_counters->fills++;
    cache_entry_t *e = make_entry(ctx, f, content_type);
    /* refused when a write made it stale meanwhile: still ours to send, but not to keep */
    if (cache_put(l1, e, clock_now_ms()) && f->l2_checked)
        l2_store(f, e);
    for (; w; w = w->next)
        respond_entry(w->ctx, e, "HIT", "coalesced");
    respond_entry(ctx, e, f->bypass ? "BYPASS" : "MISS", f->bypass ? "bypass" : "miss");
    cache_release(e);
    return true;
}

/* Runs the handler as the fill of f (registered so that later misses wait for it). */
static void start_fill(fill_t *f)
{
    http_ctx_t *ctx = f->ctx;
    if (!fill_find(f->key, f->key_len, f->hash)) {
        fill_t **b = &tl_fills[f->hash % FILL_BUCKETS];
        f->next = *b;
        *b = f;
        f->registered = true;
    }
    ctx->capture = fill_capture;
    ctx->capture_arg = f;
    f->fn(ctx, f->auth);
}

static void l2_lookup_done(void *arg, redisReply *reply, int status)
{
    fill_t *f = arg;
    http_ctx_t *ctx = f->ctx;
    if (status == REDIS_STATUS_OK && reply && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == (size_t)(3 + f->ntags)) {
        f->l2_checked = true;
        for (int i = 0; i <= f->ntags; i++) {
            redisReply *v = reply->element[2 + i];
            f->l2_versions[i] = v->type == REDIS_REPLY_STRING ? arena_strndup(&ctx->arena, v->str, v->len)
                                                              : arena_strndup(&ctx->arena, "0", 1);
        }
        redisReply *rec = reply->element[0], *pttl = reply->element[1];
        if (rec->type != REDIS_REPLY_STRING && !f->bypass)
            tl_counters->l2_misses++;
        if (rec->type == REDIS_REPLY_STRING) {
            cache_entry_t *e = record_decode(f, rec->str, rec->len);
            if (e) {
                if (pttl->type == REDIS_REPLY_INTEGER && pttl->integer > 0)
                    cache_entry_set_ttl(e, (uint64_t)pttl->integer);
                cache_put(l1, e, clock_now_ms());
                tl_counters->l2_hits++;
                /* waiters that queued behind this lookup get the same entry */
                fill_unregister(f);
                for (waiter_t *w = f->waiters; w; w = w->next)
                    respond_entry(w->ctx, e, "HIT", "l2-hit");
                f->waiters = NULL;
                respond_entry(ctx, e, "HIT", "l2-hit");
                cache_release(e);
                return;
            }
        }
    }
    if (!f->l2_checked)
        tl_counters->l2_errors++;
    /* L2 miss, or Redis unavailable: PostgreSQL fills (already registered for waiters) */
    ctx->capture = fill_capture;
    ctx->capture_arg = f;
    f->fn(ctx, f->auth);
}

void api_cached_get(http_ctx_t *ctx, const api_auth_t *auth, const api_cache_spec_t *spec, api_handler_fn fn)
{
    fill_t *f = arena_alloc(&ctx->arena, sizeof(*f));
    memset(f, 0, sizeof(*f));
    if (!l1 || !describe(ctx, auth, spec, f)) {
        fn(ctx, auth);
        return;
    }
    f->fn = fn;
    f->ctx = ctx;
    f->auth = auth;
    f->hash = key_hash(f->key, f->key_len);
    if (!f->bypass) {
        cache_entry_t *e = cache_get(l1, f->tier, f->key, f->key_len, clock_now_ms());
        if (e) {
            tl_counters->l1_hits++;
            respond_entry(ctx, e, "HIT", "l1-hit");
            cache_release(e);
            return;
        }
        fill_t *running = fill_find(f->key, f->key_len, f->hash);
        if (running) {
            tl_counters->coalesced++;
            waiter_t *w = arena_alloc(&ctx->arena, sizeof(*w));
            w->ctx = ctx;
            w->auth = auth;
            w->next = running->waiters;
            running->waiters = w;
            return;
        }
    }
    if (f->bypass)
        tl_counters->bypasses++;
    /* versions first: a write that lands while we read makes this fill stale, not served */
    cache_tag_versions(l1, f->l1_tags, f->l1_ntags, f->versions);
    if (!l2_usable()) {
        start_fill(f);
        return;
    }
    /* one round trip: the L2 record (unless bypassing), its TTL, and the tags' L2 versions */
    fill_t **b = &tl_fills[f->hash % FILL_BUCKETS];
    if (!f->bypass || !fill_find(f->key, f->key_len, f->hash)) {
        f->next = *b;
        *b = f;
        f->registered = true;
    }
    const char *argv[2 + CACHE_TAGS_MAX];
    size_t lens[2 + CACHE_TAGS_MAX];
    char ckey[KEY_MAX + 16], vkeys[CACHE_TAGS_MAX][128];
    int ck = snprintf(ckey, sizeof(ckey), "crmd:%s:%.*s", f->bypass ? "none" : "c", (int)f->key_len, f->key);
    argv[0] = ckey, lens[0] = (size_t)ck;
    for (int i = 0; i < f->ntags; i++) {
        int len = snprintf(vkeys[i], sizeof(vkeys[i]), "crmd:v:%s", f->tags[i]);
        argv[1 + i] = vkeys[i], lens[1 + i] = (size_t)len;
    }
    argv[1 + f->ntags] = "crmd:v:" CLEAR_TAG, lens[1 + f->ntags] = sizeof("crmd:v:" CLEAR_TAG) - 1;
    redis_eval(&lookup_script, 2 + f->ntags, 2 + f->ntags, argv, lens, l2_lookup_done, f);
}
