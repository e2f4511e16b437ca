#include "cache/lru.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define CT "application/json"

/* An untagged entry with a body of blen copies of `fill`, etag = fill. */
static cache_entry_t *mk(const char *key, size_t blen, char fill, enum cache_tier tier)
{
    char body[4096];
    memset(body, fill, blen);
    return cache_entry_new(key, strlen(key), body, blen, (uint64_t)fill, CT, 200, tier, NULL, 0, NULL);
}

/* Puts an untagged entry and drops the caller's reference. */
static bool put(cache_t *c, const char *key, size_t blen, char fill, uint64_t now)
{
    cache_entry_t *e = mk(key, blen, fill, CACHE_TIER_FREQUENT);
    bool ok = cache_put(c, e, now);
    cache_release(e);
    return ok;
}

/* Whether key is a hit right now (the reference is dropped). */
static bool has(cache_t *c, const char *key, uint64_t now)
{
    cache_entry_t *e = cache_get(c, CACHE_TIER_FREQUENT, key, strlen(key), now);
    cache_release(e);
    return e != NULL;
}

/* Puts key with tags, their versions read now (the filler's snapshot). */
static bool put_tagged(cache_t *c, const char *key, const char *const *tags, int ntags, uint64_t now)
{
    uint64_t v[CACHE_TAGS_MAX];
    cache_tag_versions(c, tags, ntags, v);
    cache_entry_t *e =
        cache_entry_new(key, strlen(key), LIT("{}"), 7, CT, 200, CACHE_TIER_FREQUENT, tags, ntags, v);
    bool ok = cache_put(c, e, now);
    cache_release(e);
    return ok;
}

/* The charge of one mk() entry with a 3-character key. */
static size_t charge_of(size_t blen)
{
    cache_entry_t *e = mk("k00", blen, 'x', CACHE_TIER_FREQUENT);
    size_t n = cache_entry_charge(e);
    cache_release(e);
    return n;
}

TEST(tier_ttls)
{
    CHECK_EQ_INT(cache_tier_ttl_ms(CACHE_TIER_FREQUENT), 5 * 60 * 1000);
    CHECK_EQ_INT(cache_tier_ttl_ms(CACHE_TIER_SESSION), 60 * 1000);
    CHECK_EQ_INT(cache_tier_ttl_ms(CACHE_TIER_STATIC), 60 * 60 * 1000);
    CHECK_EQ_INT(cache_tier_ttl_ms(CACHE_TIER_COUNT), 0);
}

TEST(put_get_fields_and_variants)
{
    cache_t *c = cache_new(1 << 20, CACHE_SHARD_BITS_DEFAULT);
    const char *tags[] = {"company:42", "org:7:deals"};
    uint64_t v[2];
    cache_tag_versions(c, tags, 2, v);
    cache_entry_t *e = cache_entry_new(LIT("org:7:/deals?page=1"), LIT("[1,2,3]"), 0xabcdef, CT, 200,
                                       CACHE_TIER_SESSION, tags, 2, v);
    size_t before = cache_entry_charge(e);
    cache_entry_set_variant(e, CACHE_ENC_GZIP, "GZ", 2);
    cache_entry_set_variant(e, CACHE_ENC_BR, "BROT", 4);
    cache_entry_set_variant(e, CACHE_ENC_BR, "BR", 2); /* replaces */
    CHECK_EQ_INT(cache_entry_charge(e), before + 4);
    CHECK(cache_put(c, e, 1000));
    cache_release(e);

    cache_entry_t *g = cache_get(c, CACHE_TIER_SESSION, LIT("org:7:/deals?page=1"), 2000);
    CHECK(g != NULL);
    if (g) {
        size_t n, kn;
        const char *b = cache_entry_body(g, CACHE_ENC_IDENTITY, &n);
        CHECK_STRN(b, n, "[1,2,3]");
        b = cache_entry_body(g, CACHE_ENC_GZIP, &n);
        CHECK_STRN(b, n, "GZ");
        b = cache_entry_body(g, CACHE_ENC_BR, &n);
        CHECK_STRN(b, n, "BR");
        const char *k = cache_entry_key(g, &kn);
        CHECK_STRN(k, kn, "org:7:/deals?page=1");
        CHECK(cache_entry_etag(g) == 0xabcdef);
        CHECK(strcmp(cache_entry_content_type(g), CT) == 0);
        CHECK_EQ_INT(cache_entry_status(g), 200);
        CHECK_EQ_INT(cache_entry_tier(g), CACHE_TIER_SESSION);
        CHECK_EQ_INT(cache_entry_created_ms(g), 1000);
        CHECK_EQ_INT(cache_entry_expires_ms(g), 1000 + 60 * 1000);
    }
    cache_release(g);
    CHECK(!has(c, "org:7:/deals?page=2", 2000));

    /* a variant can be absent */
    e = mk("plain", 3, 'p', CACHE_TIER_STATIC);
    size_t n = 99;
    CHECK(cache_entry_body(e, CACHE_ENC_GZIP, &n) == NULL && n == 0);
    cache_release(e);
    cache_free(c);
}

TEST(lru_eviction_order_touch_protects)
{
    /* one shard: exact LRU; room for exactly 4 entries */
    size_t ch = charge_of(100);
    cache_t *c = cache_new(4 * ch, 0);
    CHECK(put(c, "k00", 100, 'a', 0));
    CHECK(put(c, "k01", 100, 'b', 1));
    CHECK(put(c, "k02", 100, 'c', 2));
    CHECK(put(c, "k03", 100, 'd', 3));
    CHECK(has(c, "k00", 4)); /* k00 is now the most recent: k01 is the tail */
    CHECK(put(c, "k04", 100, 'e', 5));
    CHECK(!has(c, "k01", 6));
    CHECK(has(c, "k00", 6));
    CHECK(put(c, "k05", 100, 'f', 7)); /* evicts k02 */
    CHECK(!has(c, "k02", 8));
    CHECK(has(c, "k03", 8) && has(c, "k04", 8) && has(c, "k05", 8) && has(c, "k00", 8));
    cache_stats_t st;
    cache_stats(c, CACHE_TIER_FREQUENT, &st);
    CHECK_EQ_INT(st.evictions, 2);
    CHECK_EQ_INT(st.entries, 4);
    CHECK_EQ_INT(st.bytes, 4 * ch);
    /* a bigger entry evicts as many tail entries as it needs */
    CHECK(put(c, "k06", 100 + ch, 'g', 9));
    CHECK(!has(c, "k03", 10) && !has(c, "k04", 10));
    CHECK(has(c, "k05", 10) && has(c, "k06", 10));
    cache_free(c);
}

TEST(byte_budget_holds)
{
    const size_t max = 256 * 1024;
    cache_t *c = cache_new(max, 4);
    char key[32];
    bool ok = true;
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "key:%d", i % 5000);
        put(c, key, (size_t)(i * 7919) % 4000, (char)i, (uint64_t)i);
        if (i % 97 == 0) {
            cache_stats_t st;
            cache_stats(c, CACHE_TIER_COUNT, &st);
            ok = ok && st.bytes <= max;
        }
    }
    CHECK(ok);
    cache_stats_t st;
    cache_stats(c, CACHE_TIER_COUNT, &st);
    CHECK(st.bytes <= max);
    CHECK(st.bytes > max / 2);
    CHECK(st.evictions > 0);
    CHECK_EQ_INT(cache_clear(c), st.entries);
    cache_free(c);
}

TEST(oversized_entry_not_cached)
{
    cache_t *c = cache_new(4 * 4096, 2); /* 4 KiB per shard */
    CHECK_EQ_INT(cache_shard_budget(c), 4096);
    CHECK(put(c, "small", 100, 's', 0));
    CHECK(!put(c, "big", 4000, 'b', 0)); /* 4000 + overhead > 4096 */
    CHECK(!has(c, "big", 1));
    CHECK(has(c, "small", 1));
    cache_stats_t st;
    cache_stats(c, CACHE_TIER_COUNT, &st);
    CHECK_EQ_INT(st.entries, 1);
    CHECK_EQ_INT(st.evictions, 0);
    cache_free(c);
}

TEST(key_too_long_not_cacheable)
{
    cache_t *c = cache_new(1 << 20, 2);
    char key[CACHE_KEY_MAX + 2];
    memset(key, 'k', sizeof(key));
    CHECK(cache_entry_new(key, CACHE_KEY_MAX + 1, "x", 1, 1, CT, 200, CACHE_TIER_FREQUENT, NULL, 0, NULL) ==
          NULL);
    CHECK(!cache_put(c, NULL, 0));
    CHECK(cache_get(c, CACHE_TIER_FREQUENT, key, CACHE_KEY_MAX + 1, 0) == NULL);
    cache_entry_t *e =
        cache_entry_new(key, CACHE_KEY_MAX, "x", 1, 1, CT, 200, CACHE_TIER_FREQUENT, NULL, 0, NULL);
    CHECK(cache_put(c, e, 0));
    cache_release(e);
    e = cache_get(c, CACHE_TIER_FREQUENT, key, CACHE_KEY_MAX, 0);
    CHECK(e != NULL);
    cache_release(e);
    cache_release(NULL);
    cache_free(c);
}

TEST(ttl_expiry_driven_time)
{
    cache_t *c = cache_new(1 << 20, 1);
    const uint64_t t0 = 1000000, ttl = cache_tier_ttl_ms(CACHE_TIER_FREQUENT);
    CHECK(put(c, "frequent", 10, 'f', t0));
    CHECK(has(c, "frequent", t0 + ttl - 1));
    CHECK(!has(c, "frequent", t0 + ttl)); /* exactly at expiry: gone */
    CHECK(!has(c, "frequent", t0));       /* and unlinked, not merely hidden */

    cache_entry_t *e = mk("session", 10, 's', CACHE_TIER_SESSION);
    CHECK(cache_put(c, e, t0));
    cache_release(e);
    e = cache_get(c, CACHE_TIER_SESSION, LIT("session"), t0 + 60 * 1000);
    CHECK(e == NULL);

    e = mk("custom", 10, 'c', CACHE_TIER_STATIC);
    cache_entry_set_ttl(e, 5);
    CHECK(cache_put(c, e, t0));
    cache_release(e);
    CHECK(has(c, "custom", t0 + 4));
    CHECK(!has(c, "custom", t0 + 5));

    cache_stats_t st;
    cache_stats(c, CACHE_TIER_COUNT, &st);
    CHECK_EQ_INT(st.expirations, 3);
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.bytes, 0);
    cache_free(c);
}

/* Whether a held entry still reads as blen bytes of `fill`. */
static bool body_is(cache_entry_t *e, size_t blen, char fill)
{
    size_t n;
    const char *b = cache_entry_body(e, CACHE_ENC_IDENTITY, &n);
    if (n != blen)
        return false;
    for (size_t i = 0; i < n; i++)
        if (b[i] != fill)
            return false;
    return true;
}

TEST(refcount_entry_outlives_eviction_invalidation_clear_free)
{
    size_t ch = charge_of(1000);
    cache_t *c = cache_new(2 * ch, 0);
    CHECK(put(c, "k00", 1000, 'a', 0));
    cache_entry_t *held = cache_get(c, CACHE_TIER_FREQUENT, LIT("k00"), 1);
    CHECK(put(c, "k01", 1000, 'b', 2));
    CHECK(put(c, "k02", 1000, 'c', 3)); /* evicts k00 while held */
    CHECK(!has(c, "k00", 4));
    CHECK(held && body_is(held, 1000, 'a'));
    cache_release(held);

    /* invalidated while held */
    const char *tags[] = {"company:1"};
    CHECK(put_tagged(c, "tagged", tags, 1, 5));
    held = cache_get(c, CACHE_TIER_FREQUENT, LIT("tagged"), 6);
    cache_invalidate_tag(c, "company:1");
    CHECK(!has(c, "tagged", 7));
    size_t n;
    CHECK(held && memcmp(cache_entry_body(held, CACHE_ENC_IDENTITY, &n), "{}", 2) == 0 && n == 2);
    cache_release(held);

    /* cleared while held, then the cache freed while still held */
    CHECK(put(c, "k03", 1000, 'd', 8));
    held = cache_get(c, CACHE_TIER_FREQUENT, LIT("k03"), 9);
    CHECK(cache_clear(c) == 2);
    CHECK(held && body_is(held, 1000, 'd'));
    CHECK(put(c, "k04", 1000, 'e', 10));
    cache_entry_t *held2 = cache_get(c, CACHE_TIER_FREQUENT, LIT("k04"), 11);
    cache_free(c);
    CHECK(held && body_is(held, 1000, 'd'));
    CHECK(held2 && body_is(held2, 1000, 'e'));
    cache_release(held);
    cache_release(held2);
}

TEST(tag_invalidation)
{
    cache_t *c = cache_new(1 << 20, 3);
    const char *t42[] = {"company:42", "org:7:deals"};
    const char *t43[] = {"company:43", "org:7:deals"};
    const char *dash[] = {"org:7:dashboard"};
    CHECK(put_tagged(c, "c42", t42, 2, 0));
    CHECK(put_tagged(c, "c42-notes", t42, 1, 0));
    CHECK(put_tagged(c, "c43", t43, 2, 0));
    CHECK(put_tagged(c, "dash", dash, 1, 0));
    CHECK(put(c, "untagged", 5, 'u', 0));
    CHECK_EQ_INT(cache_count_tag(c, "org:7:deals", 1), 2);
    CHECK_EQ_INT(cache_count_tag(c, "company:42", 1), 2);

    cache_invalidate_tag(c, "company:42");
    CHECK_EQ_INT(cache_count_tag(c, "company:42", 1), 0);
    CHECK(!has(c, "c42", 1) && !has(c, "c42-notes", 1));
    CHECK(has(c, "c43", 1) && has(c, "dash", 1) && has(c, "untagged", 1));

    cache_invalidate_tag(c, "org:7:deals");
    CHECK(!has(c, "c43", 2));
    CHECK(has(c, "dash", 2));
    /* a refill after the invalidation reads the new version and is served */
    CHECK(put_tagged(c, "c43", t43, 2, 3));
    CHECK(has(c, "c43", 4));
    cache_stats_t st;
    cache_stats(c, CACHE_TIER_FREQUENT, &st);
    CHECK_EQ_INT(st.invalidations, 3);
    CHECK_EQ_INT(st.entries, 3);
    cache_free(c);
}

/*
 * The fill race: the filler snapshots versions, reads the database, and a write commits and
 * invalidates before the filler puts. The body may predate the write, so it is never served.
 */
TEST(fill_race_stale_entry_never_served)
{
    cache_t *c = cache_new(1 << 20, 2);
    const char *tags[] = {"org:7:dashboard"};
    uint64_t v[1];

    /* invalidate between snapshot and put: put refuses */
    cache_tag_versions(c, tags, 1, v);
    /* ... the filler reads the database here; a writer commits and invalidates: */
    cache_invalidate_tag(c, "org:7:dashboard");
    cache_entry_t *e = cache_entry_new(LIT("dash"), LIT("old"), 1, CT, 200, CACHE_TIER_FREQUENT, tags, 1, v);
    CHECK(!cache_put(c, e, 10));
    cache_release(e);
    CHECK(!has(c, "dash", 11));

    /* invalidate just after put (or between put's check and its insertion): get refuses */
    cache_tag_versions(c, tags, 1, v);
    e = cache_entry_new(LIT("dash"), LIT("old"), 2, CT, 200, CACHE_TIER_FREQUENT, tags, 1, v);
    CHECK(cache_put(c, e, 12));
    cache_invalidate_tag(c, "org:7:dashboard");
    CHECK(cache_get(c, CACHE_TIER_FREQUENT, LIT("dash"), 13) == NULL);
    cache_release(e);

    /* a stale put must not displace a fresh entry of the same key either */
    CHECK(put_tagged(c, "dash", tags, 1, 14));
    uint64_t old[1];
    cache_tag_versions(c, tags, 1, old);
    cache_invalidate_tag(c, "org:7:dashboard");
    CHECK(put_tagged(c, "dash", tags, 1, 15)); /* a filler that started after the write */
    e = cache_entry_new(LIT("dash"), LIT("old"), 3, CT, 200, CACHE_TIER_FREQUENT, tags, 1, old);
    CHECK(!cache_put(c, e, 16));
    cache_release(e);
    e = cache_get(c, CACHE_TIER_FREQUENT, LIT("dash"), 17);
    CHECK(e && cache_entry_etag(e) == 7);
    cache_release(e);
    cache_free(c);
}

TEST(replace_existing_key)
{
    cache_t *c = cache_new(1 << 20, 0);
    CHECK(put(c, "k00", 100, 'a', 0));
    cache_entry_t *old = cache_get(c, CACHE_TIER_FREQUENT, LIT("k00"), 1);
    CHECK(put(c, "k00", 300, 'b', 2));
    cache_entry_t *cur = cache_get(c, CACHE_TIER_FREQUENT, LIT("k00"), 3);
    CHECK(cur && body_is(cur, 300, 'b') && cache_entry_etag(cur) == 'b');
    CHECK(old && body_is(old, 100, 'a'));
    cache_stats_t st;
    cache_stats(c, CACHE_TIER_FREQUENT, &st);
    CHECK_EQ_INT(st.entries, 1);
    CHECK_EQ_INT(st.bytes, cur ? cache_entry_charge(cur) : 0);
    CHECK_EQ_INT(st.evictions, 0);
    cache_release(old);
    cache_release(cur);
    cache_free(c);
}

TEST(clear_drops_everything)
{
    cache_t *c = cache_new(1 << 20, 4);
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        put(c, key, 10, 'x', 0);
    }
    CHECK_EQ_INT(cache_clear(c), 100);
    CHECK_EQ_INT(cache_clear(c), 0);
    CHECK(!has(c, "k5", 1));
    cache_stats_t st;
    cache_stats(c, CACHE_TIER_COUNT, &st);
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.bytes, 0);
    CHECK(put(c, "k5", 10, 'x', 2));
    CHECK(has(c, "k5", 3));
    cache_free(c);
}

TEST(stats_per_tier)
{
    cache_t *c = cache_new(1 << 20, 2);
    cache_entry_t *e = mk("s", 10, 's', CACHE_TIER_STATIC);
    cache_put(c, e, 0);
    cache_release(e);
    put(c, "f", 10, 'f', 0);
    cache_release(cache_get(c, CACHE_TIER_STATIC, LIT("s"), 1));
    cache_release(cache_get(c, CACHE_TIER_STATIC, LIT("s"), 1));
    cache_release(cache_get(c, CACHE_TIER_STATIC, LIT("nope"), 1));
    cache_release(cache_get(c, CACHE_TIER_FREQUENT, LIT("f"), 1));
    cache_release(cache_get(c, CACHE_TIER_SESSION, LIT("nope"), 1));
    cache_stats_t st;
    cache_stats(c, CACHE_TIER_STATIC, &st);
    CHECK_EQ_INT(st.hits, 2);
    CHECK_EQ_INT(st.misses, 1);
    CHECK_EQ_INT(st.entries, 1);
    CHECK_EQ_INT(st.bytes, charge_of(10) - 3 + 1); /* key "s" vs "k00" */
    cache_stats(c, CACHE_TIER_FREQUENT, &st);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.misses, 0);
    cache_stats(c, CACHE_TIER_SESSION, &st);
    CHECK_EQ_INT(st.misses, 1);
    CHECK_EQ_INT(st.entries, 0);
    cache_stats(c, CACHE_TIER_COUNT, &st);
    CHECK_EQ_INT(st.hits, 3);
    CHECK_EQ_INT(st.misses, 2);
    CHECK_EQ_INT(st.entries, 2);
    cache_free(c);
}

/* ---- multi-threaded stress ---- */

#define STRESS_THREADS 4
#define STRESS_OPS     200000
#define STRESS_MAX     (48 * 1024)
#define STRESS_KEYS    512

typedef struct stress {
    cache_t *c;
    unsigned seed;
    _Atomic int *errors;
} stress_t;

static uint32_t rnd(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A body derived from its etag, so a reader can tell corruption or a freed entry. */
static bool stress_body_ok(cache_entry_t *e)
{
    size_t n, kn;
    const unsigned char *b = cache_entry_body(e, CACHE_ENC_IDENTITY, &n);
    const char *k = cache_entry_key(e, &kn);
    uint64_t etag = cache_entry_etag(e);
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(etag + i))
            return false;
    const char *gz = cache_entry_body(e, CACHE_ENC_GZIP, &n);
    return n == (etag % 64) && (!n || gz[0] == 'z') && kn > 1 && k[0] == 'k' && cache_entry_status(e) == 200;
}

static void *stress_thread(void *arg)
{
    stress_t *st = arg;
    cache_t *c = st->c;
    unsigned s = st->seed;
    cache_entry_t *held[8] = {0};
    unsigned char body[2048];
    char gz[64];
    memset(gz, 'z', sizeof(gz));
    char key[16], tag[16];
    int errors = 0;
    for (int i = 0; i < STRESS_OPS; i++) {
        uint64_t now = (uint64_t)i / 4;
        uint32_t r = rnd(&s), op = r % 100;
        int k = (int)((r >> 8) % STRESS_KEYS);
        snprintf(key, sizeof(key), "k%d", k);
        snprintf(tag, sizeof(tag), "t:%d", k % 16);
        if (op < 55) {
            cache_entry_t *e = cache_get(c, (enum cache_tier)(k % 3), key, strlen(key), now);
            if (e && !stress_body_ok(e))
                errors++;
            /* hold some entries across later operations, as slow senders do */
            cache_release(held[i % 8]);
            held[i % 8] = e;
        } else if (op < 90) {
            const char *tags[] = {tag};
            uint64_t v;
            cache_tag_versions(c, tags, 1, &v);
            uint64_t etag = rnd(&s);
            size_t blen = rnd(&s) % sizeof(body);
            for (size_t j = 0; j < blen; j++)
                body[j] = (unsigned char)(etag + j);
            cache_entry_t *e = cache_entry_new(key, strlen(key), body, blen, etag, CT, 200,
                                               (enum cache_tier)(k % 3), tags, 1, &v);
            if (etag % 64)
                cache_entry_set_variant(e, CACHE_ENC_GZIP, gz, etag % 64);
            if (op < 60)
                cache_entry_set_ttl(e, rnd(&s) % 200);
            cache_put(c, e, now);
            cache_release(e);
        } else if (op < 95) {
            cache_invalidate_tag(c, tag);
        } else if (op < 99) {
            cache_stats_t t;
            cache_stats(c, CACHE_TIER_COUNT, &t);
            if (t.bytes > STRESS_MAX)
                errors++;
        } else {
            cache_count_tag(c, tag, now);
        }
    }
    for (int i = 0; i < 8; i++) {
        if (held[i] && !stress_body_ok(held[i]))
            errors++;
        cache_release(held[i]);
    }
    atomic_fetch_add(st->errors, errors);
    return NULL;
}

TEST(stress_threads_invariants)
{
    cache_t *c = cache_new(STRESS_MAX, 2);
    _Atomic int errors = 0;
    pthread_t th[STRESS_THREADS];
    stress_t args[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++) {
        args[i] = (stress_t){c, 0x9e3779b9u * (unsigned)(i + 1), &errors};
        pthread_create(&th[i], NULL, stress_thread, &args[i]);
    }
    for (int i = 0; i < STRESS_THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&errors), 0);
    cache_stats_t st;
    cache_stats(c, CACHE_TIER_COUNT, &st);
    CHECK(st.bytes <= STRESS_MAX);
    CHECK(st.hits > 0 && st.misses > 0 && st.evictions > 0);
    CHECK(st.expirations > 0 && st.invalidations > 0);
    CHECK_EQ_INT(cache_clear(c), st.entries);
    cache_stats(c, CACHE_TIER_COUNT, &st);
    CHECK_EQ_INT(st.bytes, 0);
    cache_free(c);
}

TEST_MAIN()
