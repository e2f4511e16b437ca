/*
 * Rate limits on the request path (see limit.h): configuration, counters, the local fallback
 * table, Redis leases and the response headers. The pure GCRA is in gcra.c, addresses in
 * addr.c.
 */
#include "api/limit/limit.h"
#include "core/hash.h"
#include "api/tier.h"
#include "redis/redis.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/shards.h"
#include "core/fifo.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration, read once ---- */

#define RL_MAX_CIDRS 64

/* The settings in force. rl_configure (start-up, SIGHUP) publishes a new snapshot; the ones
 * it replaced stay allocated, chained by retired, since a request may still hold one. */
typedef struct rl_conf {
    rl_params_t tiers[TIER_UNLIMITED]; /* free..enterprise */
    rl_params_t cls[RL_NCLASS];        /* RL_EXPENSIVE.. (RL_TIER unused) */
    rl_cidr_t whitelist[RL_MAX_CIDRS], trusted[RL_MAX_CIDRS];
    int nwhitelist, ntrusted;
    uint32_t lease_max;
    struct rl_conf *retired;
} rl_conf_t;
static rl_conf_t *_Atomic rc_cur;
static pthread_once_t rc_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t rc_publish_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const class_names[RL_NCLASS] = {"tier", "expensive", "bulk", "ip", "health"};

const char *rl_class_name(int cls)
{
    return cls >= 0 && cls < RL_NCLASS ? class_names[cls] : "tier";
}

static void params_or_default(const char *spec, const char *def, uint32_t max_block, rl_params_t *out)
{
    if (!spec || !*spec || !rl_params_parse(spec, out))
        rl_params_parse(def, out);
    out->max_block_s = max_block;
}

static void cidrs_or_empty(const char *list, rl_cidr_t *out, int *n, const char *what)
{
    *n = rl_cidr_list_parse(list, out, RL_MAX_CIDRS);
    if (*n < 0) {
        log_fields(LOG_ERROR, "bad CIDR list ignored", "option", what, NULL);
        *n = 0;
    }
}

static void publish(const config_t *c)
{
    rl_conf_t *rc = xcalloc(1, sizeof(*rc));
    uint32_t mb = (uint32_t)c->rl_max_block_s;
    params_or_default(c->rl_free, "10/60/2", mb, &rc->tiers[TIER_FREE]);
    params_or_default(c->rl_standard, "100/60/20", mb, &rc->tiers[TIER_STANDARD]);
    params_or_default(c->rl_professional, "1000/60/100", mb, &rc->tiers[TIER_PROFESSIONAL]);
    params_or_default(c->rl_enterprise, "10000/60/1000", mb, &rc->tiers[TIER_ENTERPRISE]);
    params_or_default(c->rl_expensive, "20/60/20", mb, &rc->cls[RL_EXPENSIVE]);
    params_or_default(c->rl_bulk, "5/60/5", mb, &rc->cls[RL_BULK]);
    params_or_default(c->rl_ip, "1000/900/1000", mb, &rc->cls[RL_IP]);
    params_or_default(c->rl_health, "200/60/200", mb, &rc->cls[RL_HEALTH]);
    cidrs_or_empty(c->rate_limit_whitelist, rc->whitelist, &rc->nwhitelist, "RATE_LIMIT_WHITELIST");
    cidrs_or_empty(c->trusted_proxies, rc->trusted, &rc->ntrusted, "TRUSTED_PROXIES");
    rc->lease_max = c->rl_lease > 0 ? (uint32_t)c->rl_lease : 64;
    pthread_mutex_lock(&rc_publish_lock);
    rc->retired = atomic_load(&rc_cur);
    atomic_store_explicit(&rc_cur, rc, memory_order_release);
    pthread_mutex_unlock(&rc_publish_lock);
}

static void configure_global(void)
{
    publish(&g_config);
}

static const rl_conf_t *conf(void)
{
    pthread_once(&rc_once, configure_global);
    return atomic_load_explicit(&rc_cur, memory_order_acquire);
}

void rl_configure(const config_t *c)
{
    pthread_once(&rc_once, configure_global);
    publish(c);
}

void rl_config_free(void)
{
    rl_conf_t *rc = atomic_exchange(&rc_cur, NULL);
    while (rc) {
        rl_conf_t *next = rc->retired;
        free(rc);
        rc = next;
    }
    rc_once = (pthread_once_t)PTHREAD_ONCE_INIT;
}

/* ---- counters, one shard per thread ---- */

static shards_t stats_shards;
static __thread rl_stats_t *tl_stats;

static rl_stats_t *stats(void)
{
    if (!tl_stats)
        shards_add(&stats_shards, tl_stats = xcalloc(1, sizeof(*tl_stats)));
    return tl_stats;
}

void rl_stats(rl_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    SHARDS_EACH(&stats_shards, const rl_stats_t, s)
    {
        out->allowed += s->allowed;
        for (int c = 0; c < RL_NCLASS; c++)
            out->rejected[c] += s->rejected[c];
        out->whitelisted += s->whitelisted;
        out->redis_fallback += s->redis_fallback;
        out->redis_commands += s->redis_commands;
    }
}

/* ---- the local table: process-wide, lock-free ---- */

/* A bucket's state shared by every thread of the process (open addressing by key hash over a
 * few probes; a slot whose bucket is full and unblocked is taken over by another key, an
 * active one is never shared between keys). */
typedef struct {
    _Atomic uint64_t tag;
    _Atomic uint64_t tat_us;
    _Atomic uint64_t block_until, block_ms, escalated_ms;
} local_slot_t;

#define LOCAL_PROBES 4

#define LOCAL_SLOTS 65536
static local_slot_t local_table[LOCAL_SLOTS];

static uint64_t hash_key(const char *k, size_t n)
{
    return hash64(k, n) | 1; /* 0 marks an empty slot */
}

/* The slot of bucket h, taking over an idle one; NULL when every probe is held by another
 * active bucket (the request is then judged without local state rather than by a stranger's). */
static local_slot_t *local_slot(uint64_t h, uint64_t now_ms)
{
    for (unsigned k = 0; k < LOCAL_PROBES; k++) {
        local_slot_t *s = &local_table[(h + k) & (LOCAL_SLOTS - 1)];
        uint64_t tag = atomic_load_explicit(&s->tag, memory_order_acquire);
        if (tag == h)
            return s;
        bool idle = atomic_load_explicit(&s->tat_us, memory_order_relaxed) <= now_ms * 1000u &&
                    atomic_load_explicit(&s->block_until, memory_order_relaxed) <= now_ms;
        if (idle && atomic_compare_exchange_strong(&s->tag, &tag, h)) {
            atomic_store_explicit(&s->block_ms, 0, memory_order_relaxed);
            atomic_store_explicit(&s->block_until, 0, memory_order_relaxed);
            atomic_store_explicit(&s->escalated_ms, 0, memory_order_relaxed);
            return s;
        }
        if (atomic_load_explicit(&s->tag, memory_order_acquire) == h)
            return s; /* another thread took it for us */
    }
    return NULL;
}

static rl_state_t slot_state(local_slot_t *s)
{
    return (rl_state_t){.block_until = atomic_load_explicit(&s->block_until, memory_order_relaxed),
                        .block_ms = atomic_load_explicit(&s->block_ms, memory_order_relaxed),
                        .escalated_ms = atomic_load_explicit(&s->escalated_ms, memory_order_relaxed)};
}

static void slot_store(local_slot_t *s, const rl_state_t *st)
{
    atomic_store_explicit(&s->block_until, st->block_until, memory_order_relaxed);
    atomic_store_explicit(&s->block_ms, st->block_ms, memory_order_relaxed);
    atomic_store_explicit(&s->escalated_ms, st->escalated_ms, memory_order_relaxed);
}

/* rl_take on a shared slot: the GCRA step is a compare-and-swap loop; blocks are relaxed. */
static rl_result_t local_take(uint64_t h, const rl_params_t *p, uint64_t now_ms)
{
    local_slot_t *s = local_slot(h, now_ms);
    rl_result_t r;
    if (!s) { /* the table is full of other active buckets: a fresh bucket's answer */
        rl_state_t fresh = {0};
        return rl_take(&fresh, p, now_ms);
    }
    rl_state_t st = slot_state(s);
    if (!rl_blocked(&st, p, now_ms, &r)) {
        uint64_t old = atomic_load_explicit(&s->tat_us, memory_order_relaxed);
        do {
            st.tat_us = old;
            if (!rl_gcra_take(&st.tat_us, p, now_ms * 1000u, &r))
                break;
        } while (!atomic_compare_exchange_weak(&s->tat_us, &old, st.tat_us));
        rl_note(&st, p, now_ms, &r);
    }
    slot_store(s, &st);
    return r;
}

/* Block state of a bucket decided through Redis, kept in the same shared slot. */
static bool shared_blocked(uint64_t h, const rl_params_t *p, uint64_t now_ms, rl_result_t *r)
{
    local_slot_t *s = local_slot(h, now_ms);
    if (!s)
        return false;
    rl_state_t st = slot_state(s);
    if (!rl_blocked(&st, p, now_ms, r))
        return false;
    slot_store(s, &st);
    return true;
}

static void shared_note(uint64_t h, const rl_params_t *p, uint64_t now_ms, rl_result_t *r)
{
    local_slot_t *s = local_slot(h, now_ms);
    if (!s)
        return;
    rl_state_t st = slot_state(s);
    if (r->allowed && !st.block_ms)
        return;
    rl_note(&st, p, now_ms, r);
    slot_store(s, &st);
}

/* ---- Redis leases, per thread ---- */

/*
 * KEYS[1] the bucket; ARGV interval_us, tau_us (burst * interval), n wanted, k given back.
 * GCRA over the server's clock: first takes back k tokens a thread leased and did not spend
 * (so sparse traffic is not charged for a lease it never used), then grants up to n tokens at
 * once. Returns {granted, remaining, wait_ms until the next token (when fewer than n), ms
 * until full}.
 */
static const char lease_src[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local iv, tau, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local back = tonumber(ARGV[4] or 0)\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or 0)\n"
    "local was = tat\n"
    "if back > 0 then tat = tat - back * iv end\n"
    "if tat < now then tat = now end\n"
    "local avail = math.floor((tau - (tat - now)) / iv)\n"
    "if avail < 0 then avail = 0 end\n"
    "local g = math.min(n, avail)\n"
    "if g > 0 then tat = tat + g * iv end\n"
    "if g > 0 or (back > 0 and tat ~= was) then\n"
    "  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)\n"
    "end\n"
    "local wait = 0\n"
    "if g < n then wait = math.ceil((tat + iv - tau - now) / 1000) end\n"
    "if wait < 1 and g < n then wait = 1 end\n"
    "return {g, math.floor((tau - (tat - now)) / iv), wait, math.ceil((tat - now) / 1000)}\n";
static redis_script_t lease_script;
static pthread_once_t script_once = PTHREAD_ONCE_INIT;

static void script_init(void)
{
    redis_script_init(&lease_script, lease_src);
}

#define LEASE_SLOTS  4096
#define LEASE_TTL_MS 1000 /* leased tokens unspent after this go back to nobody */
#define RL_KEY_MAX   64

typedef struct waiter waiter_t;

/* One bucket as seen by this thread. */
typedef struct {
    uint64_t tag;
    uint32_t lease;         /* tokens in hand */
    uint32_t global_left;   /* bucket's remaining at the last lease */
    uint64_t lease_exp;     /* ms */
    uint64_t empty_until;   /* ms: the bucket had no token for us before this */
    bool pending;           /* a lease script is in flight */
    rl_params_t params;     /* of the bucket, to give its tokens back */
    FIFO(waiter_t) waiters; /* requests waiting for that lease */
    char key[RL_KEY_MAX];
} lease_entry_t;

static __thread lease_entry_t *tl_leases;
static __thread bool tl_fallback_logged;

/* ---- one request's check over up to two buckets ---- */

typedef struct {
    uint8_t cls;
    const char *policy; /* policy name for the headers */
    rl_params_t p;
    uint64_t h;
    char key[RL_KEY_MAX];
} bucket_t;

typedef struct {
    http_ctx_t *ctx;
    rl_next_fn next;
    void *arg;
    bucket_t b[2];
    int n, at;
    bool quiet; /* allowed: no headers (the check guards a lookup, not the answer) */
    rl_result_t res[2];
} check_t;

struct waiter {
    waiter_t *next;
    check_t *ck;
};

static void step(check_t *ck);

/* Decimal v at p; returns the length. (No printf: this runs for every limited request.) */
static size_t put_u32(char *p, uint32_t v)
{
    return u64_text(p, v);
}

static size_t put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return n;
}

static void add_u32(http_ctx_t *ctx, const char *name, size_t nlen, uint32_t v)
{
    char s[16];
    http_add_header(ctx, name, nlen, s, put_u32(s, v));
}

static void add_headers(check_t *ck, int worst)
{
    http_ctx_t *ctx = ck->ctx;
    char v[256]; /* at most two policies of a short name and three 10-digit numbers each */
    size_t n = 0;
    for (int i = 0; i < ck->n; i++) {
        const rl_params_t *p = &ck->b[i].p;
        if (i)
            n += put_str(v + n, ", ");
        v[n++] = '"';
        n += put_str(v + n, ck->b[i].policy);
        v[n++] = '"';
        n += put_str(v + n, ";q=");
        n += put_u32(v + n, p->limit);
        n += put_str(v + n, ";w=");
        n += put_u32(v + n, p->window_s);
        n += put_str(v + n, ";crmd-burst=");
        n += put_u32(v + n, p->burst);
    }
    http_add_header(ctx, LIT("RateLimit-Policy"), v, n);
    const rl_result_t *r = &ck->res[worst];
    v[0] = '"';
    n = 1 + put_str(v + 1, ck->b[worst].policy);
    v[n++] = '"';
    n += put_str(v + n, ";r=");
    n += put_u32(v + n, r->remaining);
    n += put_str(v + n, ";t=");
    n += put_u32(v + n, r->reset_s);
    http_add_header(ctx, LIT("RateLimit"), v, n);
    add_u32(ctx, LIT("X-RateLimit-Limit"), ck->b[worst].p.limit);
    add_u32(ctx, LIT("X-RateLimit-Remaining"), r->remaining);
    add_u32(ctx, LIT("X-RateLimit-Reset"), r->reset_s);
}

static void finish(check_t *ck, int rejected_at)
{
    rl_stats_t *st = stats();
    if (rejected_at < 0) {
        int worst = 0;
        for (int i = 1; i < ck->n; i++)
            if (ck->res[i].remaining < ck->res[worst].remaining)
                worst = i;
        if (!ck->quiet)
            add_headers(ck, worst);
        st->allowed++;
        ck->next(ck->ctx, ck->arg);
        return;
    }
    st->rejected[ck->b[rejected_at].cls]++;
    ck->n = rejected_at + 1; /* the buckets consulted so far */
    add_headers(ck, rejected_at);
    add_u32(ck->ctx, LIT("Retry-After"), ck->res[rejected_at].retry_after_s);
    http_respond_problem(ck->ctx, 429, "quota-exceeded",
                         "rate limit exceeded; retry after the Retry-After delay");
}

static void fallback_used(void)
{
    stats()->redis_fallback++;
    if (!tl_fallback_logged) {
        tl_fallback_logged = true;
        log_fields(LOG_WARN, "rate limits enforced locally: Redis is unavailable", NULL);
    }
}

/* The bucket's answer is in ck->res[ck->at]: go on to the next bucket or finish. */
static void decided(check_t *ck, uint64_t now_ms)
{
    bucket_t *b = &ck->b[ck->at];
    rl_result_t *r = &ck->res[ck->at];
    shared_note(b->h, &b->p, now_ms, r);
    if (!r->allowed) {
        finish(ck, ck->at);
        return;
    }
    ck->at++;
    step(ck);
}

static void lease_give_back(lease_entry_t *e);

static lease_entry_t *lease_entry(const bucket_t *b)
{
    if (!tl_leases)
        tl_leases = xcalloc(LEASE_SLOTS, sizeof(*tl_leases));
    lease_entry_t *e = &tl_leases[b->h & (LEASE_SLOTS - 1)];
    if (e->tag == b->h && strcmp(e->key, b->key) == 0)
        return e;
    if (e->pending)
        return NULL; /* a different bucket's lease is in flight: decide locally */
    lease_give_back(e);
    memset(e, 0, sizeof(*e));
    e->tag = b->h;
    snprintf(e->key, sizeof(e->key), "%s", b->key);
    return e;
}

/* Spends a leased token or answers from a known-empty bucket; false when Redis must be asked. */
static bool lease_take(lease_entry_t *e, const rl_params_t *p, uint64_t now_ms, rl_result_t *r)
{
    memset(r, 0, sizeof(*r));
    uint64_t iv_ms = rl_interval_us(p) / 1000u;
    if (e->lease && now_ms < e->lease_exp) {
        e->lease--;
        r->allowed = true;
        r->remaining = e->global_left + e->lease;
        r->reset_s = (uint32_t)(((p->burst - MIN(r->remaining, p->burst)) * iv_ms + 999) / 1000);
        return true;
    }
    if (now_ms < e->empty_until) {
        uint64_t wait = e->empty_until - now_ms;
        r->retry_after_s = (uint32_t)MAX(1, (wait + 999) / 1000);
        r->reset_s = r->retry_after_s;
        return true;
    }
    return false;
}

static void fetch_lease(lease_entry_t *e, const rl_params_t *p, uint32_t want);

static void lease_done(void *arg, redisReply *reply, int status)
{
    lease_entry_t *e = arg;
    uint64_t now = clock_now_ms();
    /* e stays pending while its waiters are decided: a decision that looks up another
     * bucket hashing to this slot must not take the slot over mid-loop */
    bool ok = status == REDIS_STATUS_OK && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4;
    if (ok) {
        tl_fallback_logged = false;
        /* tokens still in hand stay spendable: a refill adds to them (an expired lease's
         * were given back by this very script) */
        e->lease = (now < e->lease_exp ? e->lease : 0) + (uint32_t)reply->element[0]->integer;
        e->global_left = (uint32_t)reply->element[1]->integer;
        e->lease_exp = now + LEASE_TTL_MS;
        if (reply->element[2]->integer > 0 && !e->lease)
            e->empty_until = now + (uint64_t)reply->element[2]->integer;
    }
    /* serve the waiters in order; when Redis failed each decides locally */
    waiter_t *w = fifo_take_all(&e->waiters);
    while (w) {
        waiter_t *nx = w->next;
        check_t *ck = w->ck;
        bucket_t *b = &ck->b[ck->at];
        if (!ok) {
            fallback_used();
            ck->res[ck->at] = local_take(b->h, &b->p, now);
            decided(ck, now);
        } else if (lease_take(e, &b->p, now, &ck->res[ck->at])) {
            decided(ck, now);
        } else {
            /* the lease ran out before this waiter: queue it for the next one */
            fifo_push(&e->waiters, w);
        }
        w = nx;
    }
    e->pending = false;
    if (e->waiters.head) {
        uint32_t n = 0;
        for (waiter_t *x = e->waiters.head; x; x = x->next)
            n++;
        fetch_lease(e, &e->waiters.head->ck->b[e->waiters.head->ck->at].p, n);
    }
}

/* Runs the lease script for key: take back `back` unspent tokens, then grant up to n. */
static void lease_eval(const char *key, const rl_params_t *p, uint32_t n, uint32_t back, redis_cb_t done,
                       void *arg)
{
    pthread_once(&script_once, script_init);
    uint64_t iv = rl_interval_us(p);
    char a1[24], a2[24], a3[16], a4[16];
    snprintf(a1, sizeof(a1), "%llu", (unsigned long long)iv);
    snprintf(a2, sizeof(a2), "%llu", (unsigned long long)(iv * p->burst));
    snprintf(a3, sizeof(a3), "%u", n);
    snprintf(a4, sizeof(a4), "%u", back);
    const char *argv[5] = {key, a1, a2, a3, a4};
    stats()->redis_commands++;
    redis_eval(&lease_script, 1, 5, argv, NULL, done, arg);
}

static void fetch_lease(lease_entry_t *e, const rl_params_t *p, uint32_t want)
{
    uint32_t n = MAX(1, MIN(conf()->lease_max, p->burst / 8));
    n = MAX(n, want);
    /* an expired lease's unspent tokens go back with this request, not lost */
    uint32_t back = e->lease && clock_now_ms() >= e->lease_exp ? e->lease : 0;
    if (back)
        e->lease = 0;
    e->params = *p;
    e->pending = true;
    lease_eval(e->key, p, n, back, lease_done, e);
}

static void give_back_done(void *arg, redisReply *reply, int status)
{
    (void)arg, (void)reply, (void)status;
}

/* Returns the unspent tokens of the bucket an entry holds before the slot is reused. */
static void lease_give_back(lease_entry_t *e)
{
    if (e->lease && e->key[0])
        lease_eval(e->key, &e->params, 0, e->lease, give_back_done, NULL);
    e->lease = 0;
}

/* Gives back the unspent tokens of expired leases, a few slots per call (round robin): a
 * bucket this thread never sees again does not keep its tokens either. */
#define LEASE_SWEEP_PER_CALL 8
static __thread uint32_t tl_sweep_at;

static void lease_sweep(uint64_t now)
{
    if (!tl_leases)
        return;
    for (int i = 0; i < LEASE_SWEEP_PER_CALL; i++) {
        lease_entry_t *e = &tl_leases[tl_sweep_at++ & (LEASE_SLOTS - 1)];
        if (e->lease && !e->pending && now >= e->lease_exp)
            lease_give_back(e);
    }
}

/* Decides the bucket at ck->at, or finishes when all allowed. */
static void step(check_t *ck)
{
    if (ck->at == ck->n) {
        finish(ck, -1);
        return;
    }
    bucket_t *b = &ck->b[ck->at];
    rl_result_t *r = &ck->res[ck->at];
    uint64_t now = clock_now_ms();
    if (shared_blocked(b->h, &b->p, now, r)) {
        finish(ck, ck->at);
        return;
    }
    if (redis_connected())
        lease_sweep(now);
    lease_entry_t *e = redis_connected() ? lease_entry(b) : NULL;
    if (!e) {
        if (!redis_connected())
            fallback_used();
        *r = local_take(b->h, &b->p, now);
        decided(ck, now);
        return;
    }
    if (lease_take(e, &b->p, now, r)) {
        /* refill in the background before the lease runs out */
        uint32_t low = MAX(1, MIN(conf()->lease_max, b->p.burst / 8) / 4);
        if (r->allowed && e->lease < low && !e->pending)
            fetch_lease(e, &b->p, 0);
        decided(ck, now);
        return;
    }
    waiter_t *w = arena_alloc(&ck->ctx->arena, sizeof(*w));
    w->ck = ck;
    fifo_push(&e->waiters, w);
    if (!e->pending)
        fetch_lease(e, &b->p, 1);
}

/* ---- entry points ---- */

static void client_ip(http_ctx_t *ctx, uint8_t out[16])
{
    uint8_t peer[16] = {0};
    /* the request's copy: a sub-request or a request whose connection closed has no conn */
    if (ctx->peer_family)
        rl_ip_from_peer(ctx->peer_family, ctx->peer_addr, peer);
    const rl_conf_t *rc = conf();
    rl_client_ip(peer, ctx->req.x_forwarded_for.p, ctx->req.x_forwarded_for.len, rc->trusted, rc->ntrusted,
                 out);
}

void rl_client_ip_text(http_ctx_t *ctx, char *out, size_t cap)
{
    uint8_t ip[16];
    client_ip(ctx, ip);
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(ip, mapped, 12) == 0)
        inet_ntop(AF_INET, ip + 12, out, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, ip, out, (socklen_t)cap);
}

static bool whitelisted(http_ctx_t *ctx, uint8_t ip[16])
{
    client_ip(ctx, ip);
    const rl_conf_t *rc = conf();
    if (!rl_cidr_match(rc->whitelist, rc->nwhitelist, ip))
        return false;
    stats()->whitelisted++;
    return true;
}

static void set_bucket(bucket_t *b, int cls, const char *policy, const rl_params_t *p, const char *id)
{
    b->cls = (uint8_t)cls;
    b->policy = policy;
    b->p = *p;
    size_t cl = strlen(class_names[cls]), il = strnlen(id, sizeof(b->key) - 10 - cl);
    memcpy(b->key, "crmd:rl:", 8);
    memcpy(b->key + 8, class_names[cls], cl);
    b->key[8 + cl] = ':';
    memcpy(b->key + 9 + cl, id, il);
    b->key[9 + cl + il] = '\0';
    b->h = hash_key(b->key, 9 + cl + il);
}

void rl_check_key(http_ctx_t *ctx, const char *key_prefix, int tier, int route_class, rl_next_fn next,
                  void *arg)
{
    uint8_t ip[16];
    if (tier < 0 || tier >= TIER_UNLIMITED || whitelisted(ctx, ip)) {
        next(ctx, arg);
        return;
    }
    check_t *ck = arena_alloc(&ctx->arena, sizeof(*ck));
    memset(ck, 0, sizeof(*ck));
    ck->ctx = ctx;
    ck->next = next;
    ck->arg = arg;
    /* the class budget first: a rejection there does not spend a tier token */
    if (route_class == ROUTE_CLASS_EXPENSIVE || route_class == ROUTE_CLASS_BULK) {
        int cls = route_class == ROUTE_CLASS_EXPENSIVE ? RL_EXPENSIVE : RL_BULK;
        set_bucket(&ck->b[ck->n++], cls, class_names[cls], &conf()->cls[cls], key_prefix);
    }
    set_bucket(&ck->b[ck->n++], RL_TIER, api_tier_name(tier), &conf()->tiers[tier], key_prefix);
    step(ck);
}

/* An extra charge in flight: tokens still to take from the key's tier bucket, one check each. */
typedef struct charge {
    const char *prefix;
    int tier;
    uint32_t left;
    rl_next_fn next;
    void *arg;
} charge_t;

static void charge_step(http_ctx_t *ctx, void *arg)
{
    charge_t *c = arg;
    if (c->left == 0) {
        c->next(ctx, c->arg);
        return;
    }
    c->left--;
    check_t *ck = arena_alloc(&ctx->arena, sizeof(*ck));
    memset(ck, 0, sizeof(*ck));
    ck->ctx = ctx;
    ck->next = charge_step;
    ck->arg = c;
    ck->quiet = true; /* the request's own check already set the headers */
    set_bucket(&ck->b[ck->n++], RL_TIER, api_tier_name(c->tier), &conf()->tiers[c->tier], c->prefix);
    step(ck);
}

void rl_charge_key(http_ctx_t *ctx, const char *key_prefix, int tier, uint32_t tokens, rl_next_fn next,
                   void *arg)
{
    uint8_t ip[16];
    if (!tokens || tier < 0 || tier >= TIER_UNLIMITED || whitelisted(ctx, ip)) {
        next(ctx, arg);
        return;
    }
    charge_t *c = arena_alloc(&ctx->arena, sizeof(*c));
    *c = (charge_t){arena_strndup(&ctx->arena, key_prefix, strlen(key_prefix)), tier, tokens, next, arg};
    charge_step(ctx, c);
}

static void check_ip(http_ctx_t *ctx, int cls, bool quiet, rl_next_fn next, void *arg);

void rl_check_ip(http_ctx_t *ctx, int cls, rl_next_fn next, void *arg)
{
    check_ip(ctx, cls, false, next, arg);
}

void rl_check_lookup(http_ctx_t *ctx, rl_next_fn next, void *arg)
{
    check_ip(ctx, RL_IP, true, next, arg);
}

static void check_ip(http_ctx_t *ctx, int cls, bool quiet, rl_next_fn next, void *arg)
{
    uint8_t ip[16];
    if (whitelisted(ctx, ip)) {
        next(ctx, arg);
        return;
    }
    static const char digits[] = "0123456789abcdef";
    char hex[33];
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[ip[i] >> 4];
        hex[2 * i + 1] = digits[ip[i] & 15];
    }
    hex[32] = '\0';
    check_t *ck = arena_alloc(&ctx->arena, sizeof(*ck));
    memset(ck, 0, sizeof(*ck));
    ck->ctx = ctx;
    ck->next = next;
    ck->arg = arg;
    ck->quiet = quiet;
    cls = cls == RL_HEALTH ? RL_HEALTH : RL_IP;
    set_bucket(&ck->b[ck->n++], cls, class_names[cls], &conf()->cls[cls], hex);
    step(ck);
}

void rl_thread_free(void)
{
    /* waiters cannot remain: the reactor stopped with no request in flight */
    free(tl_leases);
    tl_leases = NULL;
}
