#include "cache/lru.h"
#include "core/hash.h"

#include "build_config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TAG_SLOTS        (1u << CACHE_TAG_SLOTS_BITS)
#define BYTES_PER_BUCKET 512 /* one bucket pointer per 512 budget bytes: table <= 1/64 of it */
#define BUCKETS_MIN      16
#define BUCKETS_MAX      (1u << 24)

static const uint64_t tier_ttl_ms[CACHE_TIER_COUNT] = {
    [CACHE_TIER_FREQUENT] = 5 * 60 * 1000,
    [CACHE_TIER_SESSION] = 60 * 1000,
    [CACHE_TIER_STATIC] = 60 * 60 * 1000,
};

/* The LRU links; the shard's sentinel is one too. */
typedef struct lru_link {
    struct lru_link *prev, *next;
} lru_link_t;

struct cache_entry {
    /* Owned by the shard lock while linked. lru comes first: a link is its entry. */
    lru_link_t lru;         /* head = most recently used */
    cache_entry_t *hnext;   /* next in the bucket; after unlinking, next in a drop list */
    cache_entry_t **hpprev; /* the pointer pointing here; NULL when not linked */
    uint64_t lru_seq;       /* shard->seq when last moved to the head */
    /* Immutable once put. */
    _Atomic uint32_t refs;
    uint32_t klen;
    uint64_t hash;
    size_t charge;
    uint64_t etag, created_ms, expires_ms, ttl_ms;
    int status;
    uint8_t tier, ntags;
    bool sealed;                           /* put once: no more changes */
    const char *key, *content_type, *tags; /* in blob; tags are ntags consecutive C strings */
    struct {
        const void *data;
        size_t len;
    } body[CACHE_ENC_COUNT]; /* identity in blob, variants malloc'ed */
    uint32_t tag_slot[CACHE_TAGS_MAX];
    uint64_t tag_version[CACHE_TAGS_MAX];
    char blob[]; /* key NUL, content type NUL, tags, identity body */
};

_Static_assert(sizeof(struct cache_entry) + 32 <= CACHE_ENTRY_OVERHEAD, "raise CACHE_ENTRY_OVERHEAD");

/* Per-tier counters of one shard, updated under its lock and summed on read. */
typedef struct tier_counters {
    uint64_t hits, misses, entries, bytes, evictions, expirations, invalidations;
} tier_counters_t;

typedef struct cache_shard {
    pthread_mutex_t lock;
    cache_entry_t **buckets;
    size_t bucket_mask;
    lru_link_t lru; /* sentinel: lru.next is the head, lru.prev the tail */
    size_t count, bytes;
    uint64_t seq; /* bumped per move to the head */
    tier_counters_t tiers[CACHE_TIER_COUNT];
} __attribute__((aligned(64))) cache_shard_t;

struct cache {
    cache_shard_t *shards;
    unsigned shard_mask;
    size_t shard_budget;
    _Atomic uint64_t *tag_versions; /* TAG_SLOTS counters */
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    return hash64(p, n);
}

static inline uint32_t tag_slot(const char *tag)
{
    return (uint32_t)hash_bytes(tag, strlen(tag)) & (TAG_SLOTS - 1);
}

const char *cache_tier_name(enum cache_tier tier)
{
    static const char *const names[CACHE_TIER_COUNT] = {"frequent", "session", "static"};
    return tier < CACHE_TIER_COUNT ? names[tier] : "all";
}

uint64_t cache_tier_ttl_ms(enum cache_tier tier)
{
    return (unsigned)tier < CACHE_TIER_COUNT ? tier_ttl_ms[tier] : 0;
}

/* ---- entries ---- */

cache_entry_t *cache_entry_new(const char *key, size_t klen, const void *body, size_t blen, uint64_t etag,
                               const char *content_type, int status, enum cache_tier tier,
                               const char *const *tags, int ntags, const uint64_t *tag_versions)
{
    if (klen > CACHE_KEY_MAX)
        return NULL;
    if (ntags < 0 || ntags > CACHE_TAGS_MAX || (ntags && !tag_versions) || (unsigned)tier >= CACHE_TIER_COUNT)
        die("cache_entry_new: bad tags (%d) or tier (%d)", ntags, (int)tier);
    if (!content_type)
        content_type = "";
    size_t ctlen = strlen(content_type), tagbytes = 0;
    for (int i = 0; i < ntags; i++)
        tagbytes += strlen(tags[i]) + 1;

    cache_entry_t *e = xmalloc(sizeof(*e) + klen + 1 + ctlen + 1 + tagbytes + blen);
    memset(e, 0, sizeof(*e));
    char *p = e->blob;
    memcpy(p, key, klen);
    p[klen] = '\0';
    e->key = p;
    p += klen + 1;
    memcpy(p, content_type, ctlen + 1);
    e->content_type = p;
    p += ctlen + 1;
    e->tags = p;
    for (int i = 0; i < ntags; i++) {
        size_t n = strlen(tags[i]) + 1;
        memcpy(p, tags[i], n);
        p += n;
        e->tag_slot[i] = tag_slot(tags[i]);
        e->tag_version[i] = tag_versions[i];
    }
    if (blen)
        memcpy(p, body, blen);
    e->body[CACHE_ENC_IDENTITY].data = p;
    e->body[CACHE_ENC_IDENTITY].len = blen;

    atomic_init(&e->refs, 1);
    e->klen = (uint32_t)klen;
    e->hash = hash_bytes(key, klen);
    e->etag = etag;
    e->status = status;
    e->tier = (uint8_t)tier;
    e->ntags = (uint8_t)ntags;
    e->ttl_ms = tier_ttl_ms[tier];
    e->charge = CACHE_ENTRY_OVERHEAD + klen + ctlen + tagbytes + blen;
    return e;
}

void cache_entry_set_variant(cache_entry_t *e, enum cache_encoding enc, const void *data, size_t len)
{
    if (e->sealed || (enc != CACHE_ENC_GZIP && enc != CACHE_ENC_BR))
        die("cache_entry_set_variant: entry already put, or bad encoding %d", (int)enc);
    e->charge -= e->body[enc].len;
    free((void *)e->body[enc].data);
    e->body[enc].data = NULL;
    e->body[enc].len = 0;
    if (!data)
        return;
    void *copy = xmalloc(len);
    memcpy(copy, data, len);
    e->body[enc].data = copy;
    e->body[enc].len = len;
    e->charge += len;
}

void cache_entry_set_ttl(cache_entry_t *e, uint64_t ttl_ms)
{
    if (e->sealed)
        die("cache_entry_set_ttl: entry already put");
    e->ttl_ms = ttl_ms;
}

static void entry_free(cache_entry_t *e)
{
    free((void *)e->body[CACHE_ENC_GZIP].data);
    free((void *)e->body[CACHE_ENC_BR].data);
    free(e);
}

void cache_release(cache_entry_t *e)
{
    if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        entry_free(e);
}

/* Releases the cache's references to a list of unlinked entries: after the lock. */
static void release_list(cache_entry_t *e)
{
    while (e) {
        cache_entry_t *next = e->hnext;
        cache_release(e);
        e = next;
    }
}

const void *cache_entry_body(const cache_entry_t *e, enum cache_encoding enc, size_t *len)
{
    if ((unsigned)enc >= CACHE_ENC_COUNT)
        return NULL;
    if (len)
        *len = e->body[enc].len;
    return e->body[enc].data;
}

const char *cache_entry_key(const cache_entry_t *e, size_t *len)
{
    if (len)
        *len = e->klen;
    return e->key;
}

uint64_t cache_entry_etag(const cache_entry_t *e)
{
    return e->etag;
}

const char *cache_entry_content_type(const cache_entry_t *e)
{
    return e->content_type;
}

int cache_entry_status(const cache_entry_t *e)
{
    return e->status;
}

enum cache_tier cache_entry_tier(const cache_entry_t *e)
{
    return (enum cache_tier)e->tier;
}

uint64_t cache_entry_created_ms(const cache_entry_t *e)
{
    return e->created_ms;
}

uint64_t cache_entry_expires_ms(const cache_entry_t *e)
{
    return e->expires_ms;
}

size_t cache_entry_charge(const cache_entry_t *e)
{
    return e->charge;
}

/* ---- tags ---- */

void cache_tag_versions(cache_t *c, const char *const *tags, int n, uint64_t *out_versions)
{
    for (int i = 0; i < n; i++)
        out_versions[i] = atomic_load(&c->tag_versions[tag_slot(tags[i])]);
}

void cache_invalidate_tag(cache_t *c, const char *tag)
{
    atomic_fetch_add(&c->tag_versions[tag_slot(tag)], 1);
}

/* Whether every tag version e recorded is still current (at most 8 loads). */
static inline bool entry_fresh(cache_t *c, const cache_entry_t *e)
{
    for (unsigned i = 0; i < e->ntags; i++)
        if (atomic_load(&c->tag_versions[e->tag_slot[i]]) != e->tag_version[i])
            return false;
    return true;
}

static bool entry_has_tag(const cache_entry_t *e, const char *tag)
{
    const char *t = e->tags;
    for (unsigned i = 0; i < e->ntags; i++, t += strlen(t) + 1)
        if (strcmp(t, tag) == 0)
            return true;
    return false;
}

/* ---- shards: everything below runs under the shard lock unless it says otherwise ---- */

static inline cache_shard_t *shard_of(cache_t *c, uint64_t hash)
{
    return &c->shards[(uint32_t)(hash >> 32) & c->shard_mask];
}

static inline cache_entry_t *entry_of(lru_link_t *l)
{
    return (cache_entry_t *)(void *)l;
}

static cache_entry_t *shard_find(cache_shard_t *s, uint64_t hash, const char *key, size_t klen)
{
    for (cache_entry_t *e = s->buckets[hash & s->bucket_mask]; e; e = e->hnext)
        if (e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

static inline void lru_unlink(lru_link_t *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static inline void lru_push_head(cache_shard_t *s, cache_entry_t *e)
{
    lru_link_t *l = &e->lru;
    l->prev = &s->lru;
    l->next = s->lru.next;
    s->lru.next->prev = l;
    s->lru.next = l;
    e->lru_seq = ++s->seq;
}

/*
 * Marks e used. Fewer than count/8 moves since its own means at most that many entries are
 * ahead of it: it is in the top eighth already, and the pointer writes are skipped.
 */
static inline void shard_touch(cache_shard_t *s, cache_entry_t *e)
{
    if (s->seq - e->lru_seq <= s->count / 8 && s->count >= 8)
        return;
    lru_unlink(&e->lru);
    lru_push_head(s, e);
}

static void shard_link(cache_shard_t *s, cache_entry_t *e)
{
    cache_entry_t **head = &s->buckets[e->hash & s->bucket_mask];
    e->hnext = *head;
    if (e->hnext)
        e->hnext->hpprev = &e->hnext;
    e->hpprev = head;
    *head = e;
    lru_push_head(s, e);
    s->count++;
    s->bytes += e->charge;
    s->tiers[e->tier].entries++;
    s->tiers[e->tier].bytes += e->charge;
}

/* Unlinks e and pushes it on *drop: the caller releases that list after unlocking. */
static void shard_unlink(cache_shard_t *s, cache_entry_t *e, cache_entry_t **drop)
{
    *e->hpprev = e->hnext;
    if (e->hnext)
        e->hnext->hpprev = e->hpprev;
    e->hpprev = NULL;
    lru_unlink(&e->lru);
    s->count--;
    s->bytes -= e->charge;
    s->tiers[e->tier].entries--;
    s->tiers[e->tier].bytes -= e->charge;
    e->hnext = *drop;
    *drop = e;
}

/* Drops tail entries until the shard is within budget, counting why each one went. */
static void shard_trim(cache_t *c, cache_shard_t *s, uint64_t now_ms, cache_entry_t **drop)
{
    while (s->bytes > c->shard_budget) {
        cache_entry_t *e = entry_of(s->lru.prev);
        tier_counters_t *t = &s->tiers[e->tier];
        if (now_ms >= e->expires_ms)
            t->expirations++;
        else if (!entry_fresh(c, e))
            t->invalidations++;
        else
            t->evictions++;
        shard_unlink(s, e, drop);
    }
}

/* ---- the cache ---- */

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

cache_t *cache_new(size_t max_bytes, unsigned shard_bits)
{
    if (shard_bits > CACHE_SHARD_BITS_MAX)
        die("cache_new: shard_bits %u > %d", shard_bits, CACHE_SHARD_BITS_MAX);
    cache_t *c = xcalloc(1, sizeof(*c));
    unsigned nshards = 1u << shard_bits;
    c->shard_mask = nshards - 1;
    c->shard_budget = max_bytes >> shard_bits;
    size_t nbuckets = pow2_at_least(MIN(MAX(c->shard_budget / BYTES_PER_BUCKET, BUCKETS_MIN), BUCKETS_MAX));

    c->shards = aligned_alloc(64, nshards * sizeof(cache_shard_t));
    if (!c->shards)
        die("out of memory allocating %u cache shards", nshards);
    memset(c->shards, 0, nshards * sizeof(cache_shard_t));
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    /* spin briefly before sleeping: the critical sections are a few hundred nanoseconds */
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    for (unsigned i = 0; i < nshards; i++) {
        cache_shard_t *s = &c->shards[i];
        pthread_mutex_init(&s->lock, &attr);
        s->buckets = xcalloc(nbuckets, sizeof(*s->buckets));
        s->bucket_mask = nbuckets - 1;
        s->lru.prev = s->lru.next = &s->lru;
    }
    pthread_mutexattr_destroy(&attr);

    c->tag_versions = xmalloc(TAG_SLOTS * sizeof(*c->tag_versions));
    for (unsigned i = 0; i < TAG_SLOTS; i++)
        atomic_init(&c->tag_versions[i], 0);
    return c;
}

void cache_free(cache_t *c)
{
    if (!c)
        return;
    cache_clear(c);
    for (unsigned i = 0; i <= c->shard_mask; i++) {
        pthread_mutex_destroy(&c->shards[i].lock);
        free(c->shards[i].buckets);
    }
    free(c->shards);
    free(c->tag_versions);
    free(c);
}

size_t cache_shard_budget(const cache_t *c)
{
    return c->shard_budget;
}

bool cache_put(cache_t *c, cache_entry_t *e, uint64_t now_ms)
{
    if (!e)
        return false;
    if (e->sealed)
        die("cache_put: an entry can be put only once");
    e->sealed = true;
    e->created_ms = now_ms;
    e->expires_ms = e->ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + e->ttl_ms;
    if (e->charge > c->shard_budget)
        return false;

    cache_shard_t *s = shard_of(c, e->hash);
    cache_entry_t *drop = NULL;
    bool ok = false;
    pthread_mutex_lock(&s->lock);
    /* the filler's snapshot predates an invalidation: its body may predate the write */
    if (!entry_fresh(c, e)) {
        s->tiers[e->tier].invalidations++;
        goto out;
    }
    cache_entry_t *old = shard_find(s, e->hash, e->key, e->klen);
    if (old)
        shard_unlink(s, old, &drop);
    /* the cache's reference: the caller's keeps the entry alive, so relaxed is enough */
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    shard_link(s, e);
    shard_trim(c, s, now_ms, &drop);
    ok = true;
out:
    pthread_mutex_unlock(&s->lock);
    release_list(drop);
    return ok;
}

cache_entry_t *cache_get(cache_t *c, enum cache_tier tier, const char *key, size_t klen, uint64_t now_ms)
{
    uint64_t hash = hash_bytes(key, klen);
    cache_shard_t *s = shard_of(c, hash);
    tier_counters_t *t = &s->tiers[(unsigned)tier < CACHE_TIER_COUNT ? tier : CACHE_TIER_FREQUENT];
    cache_entry_t *drop = NULL;

    pthread_mutex_lock(&s->lock);
    cache_entry_t *e = shard_find(s, hash, key, klen);
    if (e && now_ms >= e->expires_ms) {
        s->tiers[e->tier].expirations++;
        shard_unlink(s, e, &drop);
        e = NULL;
    } else if (e && !entry_fresh(c, e)) {
        s->tiers[e->tier].invalidations++;
        shard_unlink(s, e, &drop);
        e = NULL;
    }
    if (e) {
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        shard_touch(s, e);
        t->hits++;
    } else {
        t->misses++;
    }
    pthread_mutex_unlock(&s->lock);
    release_list(drop);
    return e;
}

size_t cache_clear(cache_t *c)
{
    size_t n = 0;
    for (unsigned i = 0; i <= c->shard_mask; i++) {
        cache_shard_t *s = &c->shards[i];
        cache_entry_t *drop = NULL;
        pthread_mutex_lock(&s->lock);
        while (s->lru.next != &s->lru) {
            shard_unlink(s, entry_of(s->lru.next), &drop);
            n++;
        }
        pthread_mutex_unlock(&s->lock);
        release_list(drop);
    }
    return n;
}

size_t cache_count_tag(cache_t *c, const char *tag, uint64_t now_ms)
{
    size_t n = 0;
    for (unsigned i = 0; i <= c->shard_mask; i++) {
        cache_shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        for (lru_link_t *l = s->lru.next; l != &s->lru; l = l->next) {
            cache_entry_t *e = entry_of(l);
            if (now_ms < e->expires_ms && entry_has_tag(e, tag) && entry_fresh(c, e))
                n++;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return n;
}

void cache_stats(cache_t *c, enum cache_tier tier, cache_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    unsigned lo = tier < CACHE_TIER_COUNT ? tier : 0,
             hi = tier < CACHE_TIER_COUNT ? tier + 1 : CACHE_TIER_COUNT;
    for (unsigned i = 0; i <= c->shard_mask; i++) {
        cache_shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        for (unsigned k = lo; k < hi; k++) {
            const tier_counters_t *t = &s->tiers[k];
            out->hits += t->hits;
            out->misses += t->misses;
            out->entries += t->entries;
            out->bytes += t->bytes;
            out->evictions += t->evictions;
            out->expirations += t->expirations;
            out->invalidations += t->invalidations;
        }
        pthread_mutex_unlock(&s->lock);
    }
}
