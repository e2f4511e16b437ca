/*
 * The tiered cache (see tiered.h): L1 ownership, the L2 scripts and record format, the lookup
 * and store of one request's entry, and the invalidation bus.
 */
#include "cache/tiered.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "redis/redis.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cache_t *l1;
static __thread struct libdeflate_decompressor *tl_inflate;

/* ---- L2 in Redis ----
 * crmd:c:<key>  the entry record (gzip variant when there is one), PX = the tier's TTL
 * crmd:v:<tag>  the tag's version, bumped by every invalidation
 * crmd:t:<tag>  the set of entry keys carrying the tag, for invalidation
 * A fill stores its record only if every tag's version is still the one read before the
 * database was asked, so a write that lands meanwhile cannot leave a stale L2 entry. */
#define INVALIDATE_CHANNEL TCACHE_CHANNEL

static redis_script_t lookup_script, fill_script, invalidate_script, clear_l2_script;

/* KEYS: c:key, v:tag..., v:*all → {record or false, pttl, versions..., *all version} */
static const char lookup_lua[] =
    "local out = {redis.call('GET', KEYS[1]) or false, redis.call('PTTL', KEYS[1])}\n"
    "for i = 2, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) or '0' end\n"
    "return out\n";
/* KEYS: c:key, v:tag x n, z:tag x n, v:*all; ARGV: record, ttl, n, versions x n, *all version.
 * Tag sets are sorted by expiry and pruned on every fill, so they hold live keys only. */
static const char fill_lua[] =
    "local n = tonumber(ARGV[3])\n"
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
static const char clear_l2_lua[] =
    "if ARGV[1] == '0' then redis.call('INCR', 'crmd:v:*all') end\n"
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

void tcache_init(size_t l1_bytes)
{
    l1 = l1_bytes ? cache_new(l1_bytes, CACHE_SHARD_BITS_DEFAULT) : NULL;
    redis_script_init(&lookup_script, lookup_lua);
    redis_script_init(&fill_script, fill_lua);
    redis_script_init(&invalidate_script, invalidate_lua);
    redis_script_init(&clear_l2_script, clear_l2_lua);
}

void tcache_free(void)
{
    if (l1)
        cache_free(l1);
    l1 = NULL;
}

cache_t *tcache_l1(void)
{
    return l1;
}

void tcache_thread_init(void)
{
    if (!tl_inflate && !(tl_inflate = libdeflate_alloc_decompressor()))
        die("out of memory (libdeflate)");
}

void tcache_thread_free(void)
{
    if (tl_inflate)
        libdeflate_free_decompressor(tl_inflate);
    tl_inflate = NULL;
}

bool tcache_l2_usable(void)
{
    return redis_connected() && !atomic_load_explicit(&pending_any, memory_order_relaxed);
}

size_t tcache_clear_l1_local(void)
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
        tcache_clear_l1_local();
    else if (strcmp(tag, "*warm") == 0)
        tcache_warm(TCACHE_WARM_MAX);
    else
        cache_invalidate_tag(l1, tag);
}

/* The subscription came back after a gap: invalidations may have been missed. */
static void on_resubscribe(const char *channel, void *arg)
{
    size_t n = tcache_clear_l1_local();
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

int tcache_invalidate_sync(redisContext *c, const char *tag)
{
    if (l1)
        cache_invalidate_tag(l1, tag);
    char vkey[256], zkey[256];
    snprintf(vkey, sizeof(vkey), "crmd:v:%s", tag);
    snprintf(zkey, sizeof(zkey), "crmd:z:%s", tag);
    redisReply *r =
        redisCommand(c, "EVAL %s 2 %s %s %s %s", invalidate_lua, vkey, zkey, INVALIDATE_CHANNEL, tag);
    int ret = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (r)
        freeReplyObject(r);
    return ret;
}

void tcache_invalidate_cb(const char *tag, void (*done)(void *arg, int64_t n, bool ok), void *arg)
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

void tcache_invalidate_all(const char *const *tags, int n, void (*done)(void *arg), void *arg)
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
        tcache_invalidate_cb(tags[i], one_invalidated, a);
}

void tcache_invalidate(const char *tag)
{
    tcache_invalidate_cb(tag, NULL, NULL);
}

void tcache_clear_l1_everywhere(void)
{
    tcache_clear_l1_local();
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

void tcache_clear_l2(void (*done)(void *arg, int64_t n, bool ok), void *arg)
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
            tcache_clear_l2(overflow_cleared, NULL);
        log_fields(LOG_INFO, "replayed cache invalidations Redis had missed", "#tags", (int64_t)n, NULL);
    }
    timer_add(&replay_reactor->timers, &replay_timer, clock_now_ms() + 250);
}

void tcache_subscribe(reactor_t *r)
{
    redis_subscribe(INVALIDATE_CHANNEL, on_invalidate_message, on_resubscribe, NULL);
    replay_reactor = r;
    timer_init(&replay_timer, on_replay_timer);
    timer_add(&r->timers, &replay_timer, clock_now_ms() + 250);
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
static cache_entry_t *record_decode(const tcache_req_t *r, const char *p, size_t n)
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
        e = cache_entry_new(r->key, r->key_len, plain, ilen, etag, ct, status, r->tier, r->l1_tags,
                            r->l1_ntags, r->versions);
        cache_entry_set_variant(e, CACHE_ENC_GZIP, body, blen);
        free(plain);
    } else {
        if (blen != ilen)
            return NULL;
        e = cache_entry_new(r->key, r->key_len, body, blen, etag, ct, status, r->tier, r->l1_tags,
                            r->l1_ntags, r->versions);
    }
    return e;
}

/* ---------------------------------------------------------------- one request's entry */

bool tcache_seal_tags(tcache_req_t *r)
{
    if (r->ntags >= CACHE_TAGS_MAX)
        return false; /* no room for the clear epoch tag: not cached */
    for (int i = 0; i < r->ntags; i++)
        r->l1_tags[i] = r->tags[i];
    r->l1_tags[r->ntags] = CLEAR_TAG;
    r->l1_ntags = r->ntags + 1;
    return true;
}

cache_entry_t *tcache_l1_get(const tcache_req_t *r)
{
    return l1 ? cache_get(l1, r->tier, r->key, r->key_len, clock_now_ms()) : NULL;
}

void tcache_read_versions(tcache_req_t *r)
{
    cache_tag_versions(l1, r->l1_tags, r->l1_ntags, r->versions);
}

/* Stores e in L2 if no tag (nor the clear epoch) moved since the lookup read the versions. */
static void l2_store(const tcache_req_t *r, cache_entry_t *e)
{
    int n = r->ntags;
    const char *argv[4 + 3 * CACHE_TAGS_MAX + 2];
    size_t lens[4 + 3 * CACHE_TAGS_MAX + 2];
    buf_t rec = BUF_INIT;
    record_encode(e, &rec);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)cache_tier_ttl_ms(r->tier));
    char ckey[TCACHE_KEY_MAX + 16];
    int ck = snprintf(ckey, sizeof(ckey), "crmd:c:%.*s", (int)r->key_len, r->key);
    int argc = 0;
    argv[argc] = ckey, lens[argc++] = (size_t)ck;
    char tagkeys[2 * CACHE_TAGS_MAX][128];
    for (int i = 0; i < n; i++) {
        int len = snprintf(tagkeys[i], sizeof(tagkeys[i]), "crmd:v:%s", r->tags[i]);
        argv[argc] = tagkeys[i], lens[argc++] = (size_t)len;
    }
    for (int i = 0; i < n; i++) {
        int len = snprintf(tagkeys[n + i], sizeof(tagkeys[n + i]), "crmd:z:%s", r->tags[i]);
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
        argv[argc] = r->l2_versions[i], lens[argc++] = strlen(r->l2_versions[i]);
    redis_eval(&fill_script, nkeys, argc, argv, lens, NULL, NULL);
    buf_free(&rec);
}

bool tcache_put(tcache_req_t *r, cache_entry_t *e)
{
    /* refused when a write made it stale meanwhile */
    if (!l1 || !cache_put(l1, e, clock_now_ms()))
        return false;
    if (r->l2_checked)
        l2_store(r, e);
    return true;
}

typedef struct {
    tcache_req_t *r;
    arena_t *arena;
    tcache_lookup_fn done;
    void *arg;
} lookup_t;

static void l2_lookup_done(void *arg, redisReply *reply, int status)
{
    lookup_t *l = arg;
    tcache_req_t *r = l->r;
    cache_entry_t *e = NULL;
    if (status == REDIS_STATUS_OK && reply && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == (size_t)(3 + r->ntags)) {
        r->l2_checked = true;
        for (int i = 0; i <= r->ntags; i++) {
            redisReply *v = reply->element[2 + i];
            r->l2_versions[i] = v->type == REDIS_REPLY_STRING ? arena_strndup(l->arena, v->str, v->len)
                                                              : arena_strndup(l->arena, "0", 1);
        }
        redisReply *rec = reply->element[0], *pttl = reply->element[1];
        if (rec->type == REDIS_REPLY_STRING && (e = record_decode(r, rec->str, rec->len))) {
            if (pttl->type == REDIS_REPLY_INTEGER && pttl->integer > 0)
                cache_entry_set_ttl(e, (uint64_t)pttl->integer);
            cache_put(l1, e, clock_now_ms());
        }
    }
    l->done(r, e, l->arg);
}

void tcache_l2_lookup(tcache_req_t *r, arena_t *a, tcache_lookup_fn done, void *arg)
{
    lookup_t *l = arena_alloc(a, sizeof(*l)); /* the request's, like r: it outlives the reply */
    *l = (lookup_t){r, a, done, arg};
    const char *argv[2 + CACHE_TAGS_MAX];
    size_t lens[2 + CACHE_TAGS_MAX];
    char ckey[TCACHE_KEY_MAX + 16], vkeys[CACHE_TAGS_MAX][128];
    int ck = snprintf(ckey, sizeof(ckey), "crmd:%s:%.*s", r->bypass ? "none" : "c", (int)r->key_len, r->key);
    argv[0] = ckey, lens[0] = (size_t)ck;
    for (int i = 0; i < r->ntags; i++) {
        int len = snprintf(vkeys[i], sizeof(vkeys[i]), "crmd:v:%s", r->tags[i]);
        argv[1 + i] = vkeys[i], lens[1 + i] = (size_t)len;
    }
    argv[1 + r->ntags] = "crmd:v:" CLEAR_TAG, lens[1 + r->ntags] = sizeof("crmd:v:" CLEAR_TAG) - 1;
    redis_eval(&lookup_script, 2 + r->ntags, 2 + r->ntags, argv, lens, l2_lookup_done, l);
}

/* ---- the most used keys, and warming L1 from L2 with them ---- */

/* A hot key's member in crmd:hot: "<tier>\x1f<tag>\x1f...\x1f<key>" (the clear epoch tag is
 * added again by tcache_seal_tags). Keys and tags never hold \x1f (keys are built from
 * percent-decoded, validated request parts; tags from ids). */
void tcache_note_hot(const tcache_req_t *r)
{
    if (r->bypass || r->key_len > TCACHE_KEY_MAX)
        return;
    buf_t m = BUF_INIT;
    buf_printf(&m, "%d", (int)r->tier);
    for (int i = 0; i < r->ntags; i++) {
        buf_putc(&m, '\x1f');
        buf_append(&m, r->tags[i], strlen(r->tags[i]));
    }
    buf_putc(&m, '\x1f');
    buf_append(&m, r->key, r->key_len);
    const char *argv[4] = {"ZINCRBY", TCACHE_HOT_KEY, "1", m.data};
    size_t lens[4] = {7, sizeof(TCACHE_HOT_KEY) - 1, 1, m.len};
    redis_command_argv(4, argv, lens, NULL, NULL);
    buf_free(&m);
}

typedef struct {
    arena_t arena;
    tcache_req_t r;
} warm_t;

static __thread struct {
    size_t pending, warmed, missed;
} tl_warm;

static void warm_done(tcache_req_t *r, cache_entry_t *e, void *arg)
{
    warm_t *w = arg;
    (void)r;
    if (e) {
        tl_warm.warmed++;
        cache_release(e);
    } else {
        tl_warm.missed++;
    }
    arena_destroy(&w->arena);
    free(w);
    if (--tl_warm.pending == 0)
        log_fields(LOG_INFO, "cache warmed from L2", "#entries", (int64_t)tl_warm.warmed, "#not_in_l2",
                   (int64_t)tl_warm.missed, NULL);
}

/* Rebuilds a request from a hot member and looks it up in L2 (which fills L1 on a hit). */
static void warm_one(const char *m, size_t n)
{
    warm_t *w = xcalloc(1, sizeof(*w));
    arena_init(&w->arena, NULL, 0);
    tcache_req_t *r = &w->r;
    const char *p = m, *end = m + n;
    const char *sep = memchr(p, '\x1f', (size_t)(end - p));
    if (!sep || sep == p || sep - p > 2)
        goto bad;
    r->tier = (enum cache_tier)atoi(p);
    if ((int)r->tier < 0 || (int)r->tier >= CACHE_TIER_COUNT)
        goto bad;
    p = sep + 1;
    for (;;) {
        sep = memchr(p, '\x1f', (size_t)(end - p));
        if (!sep)
            break;
        if (r->ntags >= CACHE_TAGS_MAX - 1 || sep == p)
            goto bad;
        r->tags[r->ntags++] = arena_strndup(&w->arena, p, (size_t)(sep - p));
        p = sep + 1;
    }
    if (p == end || end - p > TCACHE_KEY_MAX)
        goto bad;
    r->key = arena_strndup(&w->arena, p, (size_t)(end - p));
    r->key_len = (size_t)(end - p);
    if (!tcache_seal_tags(r))
        goto bad;
    cache_entry_t *e = tcache_l1_get(r);
    if (e) { /* warm already */
        cache_release(e);
        goto bad;
    }
    tcache_read_versions(r);
    tl_warm.pending++;
    tcache_l2_lookup(r, &w->arena, warm_done, w);
    return;
bad:
    arena_destroy(&w->arena);
    free(w);
}

static void warm_list(void *arg, redisReply *reply, int status)
{
    (void)arg;
    if (status != REDIS_STATUS_OK || !reply || reply->type != REDIS_REPLY_ARRAY) {
        log_warn("cache warming skipped: Redis did not answer");
        return;
    }
    tl_warm.warmed = tl_warm.missed = 0;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            warm_one(reply->element[i]->str, reply->element[i]->len);
    if (tl_warm.pending == 0)
        log_fields(LOG_INFO, "cache warmed from L2", "#entries", (int64_t)0, NULL);
}

void tcache_warm(size_t max)
{
    if (!l1 || !tcache_l2_usable() || tl_warm.pending)
        return;
    char stop[24];
    snprintf(stop, sizeof(stop), "%zu", max ? max - 1 : 0);
    const char *argv[5] = {"ZRANGE", TCACHE_HOT_KEY, "0", stop, "REV"};
    redis_command_argv(5, argv, NULL, warm_list, NULL);
}
