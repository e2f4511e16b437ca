/*
 * L1 cache: an in-process LRU shared by every reactor thread, bounded in bytes.
 *
 * 2^k shards, each a chained hash table plus an intrusive LRU list under its own short lock
 * (the lock never covers an allocation, a body copy or a free). An entry is immutable once
 * put and reference-counted: cache_get hands out a reference, and eviction or invalidation
 * only unlinks, so a sender still writing a body keeps it alive until cache_release.
 *
 * Tags invalidate in O(1) through versions: cache_tag_versions snapshots a version per tag
 * before the filler reads the database, the entry records that snapshot, and
 * cache_invalidate_tag bumps the version. An entry whose recorded versions differ from the
 * current ones is stale: cache_put refuses it and cache_get treats it as a miss (and unlinks
 * it). So a fill that read the database before a write's invalidation is never served, even
 * when it is put after the invalidation. Versions live in a fixed array indexed by tag hash:
 * two tags sharing a slot invalidate each other (a spurious miss, never a stale hit).
 *
 * Time is passed in (now_ms, any monotonic millisecond clock), so tests drive it.
 */
#ifndef CRMD_CACHE_LRU_H
#define CRMD_CACHE_LRU_H

#include "core/common.h"

#define CACHE_SHARD_BITS_DEFAULT 6
#define CACHE_SHARD_BITS_MAX     12
#define CACHE_KEY_MAX            1024 /* longer keys are never cached */
#define CACHE_TAGS_MAX           8
#define CACHE_TAG_SLOTS_BITS     16 /* 64 Ki version counters (512 KiB), shared by all tags */
/* Charged per entry on top of its key, bodies, content type and tags: struct and malloc. */
#define CACHE_ENTRY_OVERHEAD 320

/* Freshness classes; each has a default TTL (cache_tier_ttl_ms) and its own counters. */
enum cache_tier {
    CACHE_TIER_FREQUENT, /* 5 min: lists, dashboards */
    CACHE_TIER_SESSION,  /* 1 min: per-user views */
    CACHE_TIER_STATIC,   /* 1 h: reference data */
    CACHE_TIER_COUNT     /* as a cache_stats argument: all tiers summed */
};

/* Body variants of one entry. */
enum cache_encoding {
    CACHE_ENC_IDENTITY, /* always present */
    CACHE_ENC_GZIP,
    CACHE_ENC_BR,
    CACHE_ENC_COUNT
};

typedef struct cache cache_t;
typedef struct cache_entry cache_entry_t;

/* Counters of one tier (or of all, with CACHE_TIER_COUNT), summed over the shards. */
typedef struct cache_stats {
    uint64_t hits, misses;
    uint64_t entries, bytes; /* linked now; bytes are charges, stale-but-unvisited included */
    uint64_t evictions;      /* dropped from the LRU tail to make room */
    uint64_t expirations;    /* found past expires_ms (on get, or at the tail) */
    uint64_t invalidations;  /* found stale by tag (on get, or at the tail), or refused by put */
} cache_stats_t;

/* The default TTL of a tier in milliseconds; 0 for an unknown tier. */
uint64_t cache_tier_ttl_ms(enum cache_tier tier);
/* "frequent", "session", "static" (metrics labels, stats keys). */
const char *cache_tier_name(enum cache_tier tier);

/* A cache of at most max_bytes (max_bytes >> shard_bits per shard) in 2^shard_bits shards. */
cache_t *cache_new(size_t max_bytes, unsigned shard_bits);

/* Drops the cache's references and frees it; entries still held stay valid until released. */
void cache_free(cache_t *c);

/*
 * A new entry with one reference, the caller's: copies key, body, content_type and tags.
 * tag_versions holds what cache_tag_versions returned for these tags BEFORE the body's data
 * was read. tier picks the TTL (see cache_entry_set_ttl) and the counters. NULL when klen >
 * CACHE_KEY_MAX (such a key is not cacheable); more than CACHE_TAGS_MAX tags is a fatal error.
 */
cache_entry_t *cache_entry_new(const char *key, size_t klen, const void *body, size_t blen, uint64_t etag,
                               const char *content_type, int status, enum cache_tier tier,
                               const char *const *tags, int ntags, const uint64_t *tag_versions);

/* Attaches a copy of a compressed variant (GZIP or BR) before cache_put; replaces a previous one. */
void cache_entry_set_variant(cache_entry_t *e, enum cache_encoding enc, const void *data, size_t len);

/* Overrides the tier's TTL before cache_put (e.g. the remaining TTL of an L2 copy). */
void cache_entry_set_ttl(cache_entry_t *e, uint64_t ttl_ms);

/*
 * Inserts e, replacing any entry with the same key, and evicts from the LRU tail until the
 * shard is within budget. The cache takes its own reference: the caller still releases its
 * own, whatever the result. Sets created_ms = now_ms and expires_ms = now_ms + TTL; the entry
 * is immutable afterwards and can be put only once. False (nothing inserted) for NULL, for an
 * entry whose charge exceeds a shard's budget, or whose tag versions are already stale.
 */
bool cache_put(cache_t *c, cache_entry_t *e, uint64_t now_ms);

/*
 * The live entry for key with a new reference (cache_release it), or NULL. An entry past its
 * expires_ms (now_ms >= expires_ms) or with a stale tag is unlinked and is a miss. tier only
 * says which counters the hit or miss goes to (the route's tier).
 */
cache_entry_t *cache_get(cache_t *c, enum cache_tier tier, const char *key, size_t klen, uint64_t now_ms);

/* Drops one reference; the last one frees the entry. NULL is ignored. */
void cache_release(cache_entry_t *e);

/* Writes the current version of each of n tags (NUL-terminated) to out_versions. */
void cache_tag_versions(cache_t *c, const char *const *tags, int n, uint64_t *out_versions);

/* Makes every entry carrying tag stale, at once and without a scan. */
void cache_invalidate_tag(cache_t *c, const char *tag);

/* Drops every entry; returns how many there were. Held entries stay valid until released. */
size_t cache_clear(cache_t *c);

/* Counts live (fresh, unexpired) entries carrying tag: a scan under each shard lock, admin only. */
size_t cache_count_tag(cache_t *c, const char *tag, uint64_t now_ms);

/* Reads the counters of one tier, or of all with CACHE_TIER_COUNT. */
void cache_stats(cache_t *c, enum cache_tier tier, cache_stats_t *out);

/* A shard's byte budget (max_bytes >> shard_bits): an entry charged more is never cached. */
size_t cache_shard_budget(const cache_t *c);

/* ---- entry accessors (immutable data: no lock needed while holding a reference) ---- */

/* The body in encoding enc and its length, or NULL when that variant is absent. */
const void *cache_entry_body(const cache_entry_t *e, enum cache_encoding enc, size_t *len);

/* The key and its length. */
const char *cache_entry_key(const cache_entry_t *e, size_t *len);

/* The strong ETag value computed by the filler. */
uint64_t cache_entry_etag(const cache_entry_t *e);

/* The Content-Type (NUL-terminated). */
const char *cache_entry_content_type(const cache_entry_t *e);

/* The HTTP status to answer with. */
int cache_entry_status(const cache_entry_t *e);

/* The tier given at creation. */
enum cache_tier cache_entry_tier(const cache_entry_t *e);

/* When it was put, and when it stops being served (both 0 before cache_put). */
uint64_t cache_entry_created_ms(const cache_entry_t *e);
uint64_t cache_entry_expires_ms(const cache_entry_t *e);

/* Bytes charged against the budget: key, all bodies, content type, tags, CACHE_ENTRY_OVERHEAD. */
size_t cache_entry_charge(const cache_entry_t *e);

#endif
