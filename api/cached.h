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
#include "core/buf.h"

/* How a GET route's responses are cached: tier and tags, where "{org}", "{user}" and "{id}"
 * (the first path parameter) are replaced per request, e.g. "org:{org}:deals", "company:{id}". */
#define API_CACHE_TAGS_MAX 8
typedef struct api_cache_spec {
    int tier; /* enum cache_tier */
    const char *tags[API_CACHE_TAGS_MAX];
} api_cache_spec_t;

/* Answers a GET/HEAD through the cache; on a miss runs fn and stores its 200 response. The
 * key and tags come from spec, or (spec NULL) from the resource schema by the path.
 * `refresh=true` bypasses the lookup and refills. */
void api_cached_get(http_ctx_t *ctx, const api_auth_t *auth, const api_cache_spec_t *spec, api_handler_fn fn);

/* A description built per request by a handler that is not described by its path (GraphQL):
 * a key (the organization is prefixed), the tier and the tags. */
typedef struct api_cache_custom {
    const char *key;
    size_t key_len;
    int tier; /* enum cache_tier */
    const char *tags[API_CACHE_TAGS_MAX];
    int ntags;
    bool bypass; /* refresh: skip the stored entry, refill it */
} api_cache_custom_t;

/* As api_cached_get, for a request described by c; fn fills on a miss. A response whose
 * ctx->no_store is set when it is answered is not kept. */
void api_cached_custom(http_ctx_t *ctx, const api_auth_t *auth, const api_cache_custom_t *c,
                       api_handler_fn fn);

/* Answers ctx from an L1 entry under key (as api_cached_custom builds it) when there is one;
 * false, having done nothing, otherwise. For a handler that can name its key before the work
 * that finds the entry's tags (GraphQL: before parsing and validating the document). */
bool api_cached_l1_answer(http_ctx_t *ctx, const api_auth_t *auth, const char *key, size_t key_len, int tier);

/* "org:<id>:<plural>", the tag of every row of a resource in the organization (in arena a). */
const char *api_cache_res_tag(arena_t *a, int64_t org_id, const char *plural);

/* "org:<id>:all", the tag every cached entry of the organization carries (in arena a). */
const char *api_cache_org_tag(arena_t *a, int64_t org_id);

/* Cache events summed over threads. */
typedef struct {
    uint64_t l1_hits, l2_hits, l2_misses, l2_errors; /* l2_errors: lookups Redis did not answer */
    uint64_t fills, coalesced, bypasses;             /* coalesced: misses that waited for another's fill */
} api_cache_counters_t;
void api_cache_counters(api_cache_counters_t *out);

/* Per-thread set-up and tear-down (counters, the fill table, the tiered cache's). */
void api_cache_thread_init(void);
void api_cache_thread_free(void);
/* Frees the counters (at exit). */
void api_cache_free(void);

#endif
