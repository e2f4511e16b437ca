/*
 * The response cache in front of authenticated GETs: L1 (cache/lru, shared by every thread)
 * in front of L2 (Redis, shared by every instance) in front of the handler (PostgreSQL).
 * Keys hold the organization and every parameter that shapes the body; entries carry tags
 * ("company:42", "org:7:deals") that writes invalidate. A body is stored once with its ETag and
 * its compressed variants, so a hit never compresses. Concurrent misses of one key on a thread
 * wait for the first one's fill instead of querying again.
 */
#ifndef CRMD_API_CACHED_H
#define CRMD_API_CACHED_H

#include <stddef.h>

#include "api/auth.h"
#include "cache/lru.h"

/* How a GET route's responses are cached: tier and tags, where "{org}", "{user}" and "{id}"
 * (the first path parameter) are replaced per request, e.g. "org:{org}:deals", "company:{id}". */
#define API_CACHE_TAGS_MAX 8
typedef struct api_cache_spec {
    int tier; /* enum cache_tier */
    const char *tags[API_CACHE_TAGS_MAX];
} api_cache_spec_t;

/* Creates the process-wide L1 of l1_bytes (0: caching off). */
void api_cache_init(size_t l1_bytes);
void api_cache_free(void);
cache_t *api_cache_l1(void);

/* Answers a GET/HEAD through the cache; on a miss runs fn and stores its 200 response. The
 * key and tags come from spec, or (spec NULL) from the resource schema by the path.
 * `refresh=true` bypasses the lookup and refills. */
void api_cached_get(http_ctx_t *ctx, const api_auth_t *auth, const api_cache_spec_t *spec, api_handler_fn fn);

/* Drops every entry carrying tag in this process's L1 (and, with Redis, in L2 and on every
 * other instance). Call before answering the write that made them stale. */
void api_cache_invalidate(const char *tag);

/* As api_cache_invalidate; done(arg, n, ok) runs once Redis answered, n being the L2 entries
 * removed (ok false: Redis unavailable, L1 only). */
void api_cache_invalidate_cb(const char *tag, void (*done)(void *arg, int64_t n, bool ok), void *arg);

/* "org:<id>:all", the tag every cached entry of the organization carries (in arena a). */
const char *api_cache_org_tag(arena_t *a, int64_t org_id);
/* Invalidates every tag, then calls done(arg) once Redis has answered for all of them (or
 * failed: it is never waited for long). With n == 0, done runs at once. */
void api_cache_invalidate_all(const char *const *tags, int n, void (*done)(void *arg), void *arg);

/* Drops the L1 here and on every instance. */
void api_cache_clear_l1_everywhere(void);
/* Drops every L2 entry; done(arg, n, ok) with the number removed. */
void api_cache_clear_l2(void (*done)(void *arg, int64_t n, bool ok), void *arg);
/* Subscribes this thread (one per process, reactor r) to the invalidation channel, and
 * replays from it the invalidations Redis missed. */
void api_cache_subscribe(reactor_t *r);

/* Drops this process's L1 (fills in flight are refused too); the number of entries. */
size_t api_cache_clear_l1_local(void);

/* Cache events summed over threads. */
typedef struct {
    uint64_t l1_hits, l2_hits, l2_misses, l2_errors; /* l2_errors: lookups Redis did not answer */
    uint64_t fills, coalesced, bypasses;             /* coalesced: misses that waited for another's fill */
} api_cache_counters_t;
void api_cache_counters(api_cache_counters_t *out);

/* Per-thread set-up and tear-down of the fill table. */
void api_cache_thread_init(void);
void api_cache_thread_free(void);

#endif
