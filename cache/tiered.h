/*
 * The tiered cache under the API's GET responses: L1 (cache/lru, shared by every thread of the
 * process) over L2 (Redis, shared by every instance), and the invalidation bus. Knows nothing
 * of HTTP: api/cached.c turns a request into a tcache_req_t (key, tier, tags) and an entry
 * into a response.
 *
 * L2 in Redis:
 *   crmd:c:<key>  the entry record (gzip variant when there is one), PX = the tier's TTL
 *   crmd:v:<tag>  the tag's version, bumped by every invalidation
 *   crmd:z:<tag>  the entry keys carrying the tag, sorted by expiry, for invalidation
 * A fill stores its record only if every tag's version is still the one read before the
 * database was asked, so a write that lands meanwhile cannot leave a stale L2 entry. Every
 * entry also carries the clear epoch tag, so a fill racing a clear is refused too.
 *
 * The bus: an invalidation drops the tag in this L1 at once and, through one Redis script,
 * bumps its L2 version, deletes its L2 entries and publishes it to every instance's L1. One
 * that Redis did not take is kept and replayed, and L2 is not used by this process meanwhile.
 */
#ifndef CRMD_CACHE_TIERED_H
#define CRMD_CACHE_TIERED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/lru.h"
#include "core/buf.h"
#include "core/reactor.h"

#include <hiredis/hiredis.h>

#define TCACHE_KEY_MAX 1024
/* The invalidation bus: a tag, "*l1" (drop every L1) or "*warm" (tcache_warm everywhere). */
#define TCACHE_CHANNEL "crmd:invalidate"

/* One request's entry: what it is keyed and tagged by, and what was read on the way. */
typedef struct tcache_req {
    const char *key;
    size_t key_len;
    enum cache_tier tier;
    const char *tags[CACHE_TAGS_MAX];
    int ntags;
    bool bypass; /* skip the stored entries; still refill them */
    /* filled by the calls below */
    const char *l1_tags[CACHE_TAGS_MAX]; /* tags plus the clear epoch tag */
    int l1_ntags;
    uint64_t versions[CACHE_TAGS_MAX];     /* of l1_tags, read before the database is asked */
    char *l2_versions[CACHE_TAGS_MAX + 1]; /* Redis versions of tags and of the clear epoch */
    bool l2_checked;                       /* the L2 lookup answered (versions above are valid) */
} tcache_req_t;

/* Creates the process-wide L1 of l1_bytes (0: caching off) and the L2 scripts. */
void tcache_init(size_t l1_bytes);
void tcache_free(void);
cache_t *tcache_l1(void);
/* Per-thread set-up and tear-down (the L2 record decompressor). */
void tcache_thread_init(void);
void tcache_thread_free(void);

/* Adds the clear epoch tag to r's tags; false when there is no room (not cacheable). */
bool tcache_seal_tags(tcache_req_t *r);
/* r's L1 entry (a reference: cache_release it), or NULL. */
cache_entry_t *tcache_l1_get(const tcache_req_t *r);
/* Reads the L1 versions of r's tags: a write landing from now on makes r's fill stale. */
void tcache_read_versions(tcache_req_t *r);
/* L2 may be read and written: Redis is up and owes this process no invalidation. */
bool tcache_l2_usable(void);

/* The L2 lookup's answer: e (a reference, put in L1 already) on a hit, else NULL;
 * r->l2_checked says whether Redis answered at all. */
typedef void (*tcache_lookup_fn)(tcache_req_t *r, cache_entry_t *e, void *arg);
/* One round trip: r's L2 record (unless r->bypass), its TTL and the tags' L2 versions (kept in
 * arena a). */
void tcache_l2_lookup(tcache_req_t *r, arena_t *a, tcache_lookup_fn done, void *arg);
/* Keeps the filled entry e in L1 and, when the lookup answered, in L2 if no tag moved; false
 * when a write made it stale meanwhile (still the filler's to send, not to keep). */
bool tcache_put(tcache_req_t *r, cache_entry_t *e);

/* ---- the bus ---- */

/* Drops every entry carrying tag in this L1, in L2 and on every other instance. Call before
 * answering the write that made them stale. */
void tcache_invalidate(const char *tag);
/* Invalidates tag from a thread that is not a reactor (job workers), over a blocking
 * connection: this L1, then L2 and every instance's L1 in one script. 0, or -1 when Redis
 * did not take it. */
int tcache_invalidate_sync(redisContext *c, const char *tag);

/* As tcache_invalidate; done(arg, n, ok) runs once Redis answered, n being the L2 entries
 * removed (ok false: Redis unavailable, L1 only; the tag is replayed later). */
void tcache_invalidate_cb(const char *tag, void (*done)(void *arg, int64_t n, bool ok), void *arg);
/* Invalidates every tag, then calls done(arg) once Redis has answered for all of them (or
 * failed: it is never waited for long). With n == 0, done runs at once. */
void tcache_invalidate_all(const char *const *tags, int n, void (*done)(void *arg), void *arg);
/* ---- the most used keys ---- */

#define TCACHE_HOT_KEY  "crmd:hot" /* zset: request descriptions by L1 misses */
#define TCACHE_WARM_MAX 1000       /* keys a warm-up looks up */

/* Counts r (described, before the L2 lookup) as used once more, in Redis, shared by every
 * instance (reactor thread). */
void tcache_note_hot(const tcache_req_t *r);
/* Looks up the max most used keys in L2 and keeps the hits in this L1 (reactor thread). The
 * message "*warm" on the invalidation channel makes every instance do it. */
void tcache_warm(size_t max);

/* Drops this process's L1 (fills in flight are refused too); the number of entries. */
size_t tcache_clear_l1_local(void);
/* Drops the L1 here and on every instance. */
void tcache_clear_l1_everywhere(void);
/* Drops every L2 entry; done(arg, n, ok) with the number removed. */
void tcache_clear_l2(void (*done)(void *arg, int64_t n, bool ok), void *arg);
/* Subscribes this thread (one per process, reactor r) to the invalidation channel, and
 * replays from it the invalidations Redis missed. */
void tcache_subscribe(reactor_t *r);

#endif
