/*
 * Rate limits (API.md "Rate limits"): GCRA buckets per API key by tier, per key and route class
 * (expensive, bulk), per client IP for unauthenticated /api traffic and for health.
 *
 * The algorithm is GCRA with integer microseconds: a bucket of `burst` tokens refilled at
 * limit/window. The pure functions below take `now`, so tests drive time.
 *
 * Distributed: a bucket's GCRA state (its theoretical arrival time) lives in Redis. A thread
 * leases a few tokens at once with one Lua script (rl_lease_script), spends them locally and
 * fetches the next lease in the background when a quarter is left; a bucket found empty is not
 * asked again before its next token is due. With Redis down (not connected or a command
 * failed) every instance enforces each limit alone from a process-wide table of atomics (no
 * locks), logs it once per outage and counts it in rl_stats.redis_fallback.
 *
 * Headers on every limited response follow draft-ietf-httpapi-ratelimit-headers-10 (Sept 2025;
 * -11 keeps the syntax): structured-field items whose value is the policy name as an sf-string,
 *   RateLimit-Policy: "standard";q=100;w=60;crmd-burst=20
 *   RateLimit: "standard";r=37;t=12
 * (q quota, w window seconds, r remaining, t seconds to full; the draft asks non-registered
 * parameters to carry a vendor prefix, hence crmd-burst), plus the de-facto
 * X-RateLimit-Limit/-Remaining/-Reset. A rejection is 429 with Retry-After and a problem of
 * type /problems/quota-exceeded; on it `t` equals Retry-After, as the draft recommends.
 *
 * Repeat violators: a request that arrives while its client is blocked (it ignored
 * Retry-After) doubles the block, up to RATE_LIMIT_MAX_BLOCK (1 h). A client that waits for
 * Retry-After is never escalated.
 */
#ifndef CRMD_API_RATELIMIT_H
#define CRMD_API_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

/* ---- pure logic ---- */

/* One policy: limit requests per window_s seconds, at most burst at once. */
typedef struct rl_params {
    uint32_t limit; /* 0: unlimited */
    uint32_t window_s;
    uint32_t burst;       /* bucket size (>= 1) */
    uint32_t max_block_s; /* cap of the doubled block; 0: no escalation */
} rl_params_t;

/* A bucket's state for rl_take. Zero is a full bucket. */
typedef struct rl_state {
    uint64_t tat_us;       /* GCRA theoretical arrival time */
    uint64_t block_until;  /* ms: requests before this are violations */
    uint64_t block_ms;     /* length of the current block (doubles on each violation) */
    uint64_t escalated_ms; /* ms of the last doubling: requests already in flight do not double it */
} rl_state_t;

/* The outcome of one request against one bucket. */
typedef struct rl_result {
    bool allowed;
    uint32_t remaining;     /* tokens left after this request */
    uint32_t reset_s;       /* seconds until the bucket is full again (Retry-After when rejected) */
    uint32_t retry_after_s; /* rejected: seconds to wait (>= 1) */
} rl_result_t;

/* Emission interval in microseconds (window / limit, rounded up). */
uint64_t rl_interval_us(const rl_params_t *p);

/* Pure GCRA: takes one token at now_us from a bucket at *tat_us (updated only when allowed).
 * Sets r (retry_after_s is the wait for the next token) and returns whether it was allowed. */
bool rl_gcra_take(uint64_t *tat_us, const rl_params_t *p, uint64_t now_us, rl_result_t *r);

/* GCRA with repeat-violator blocks: the whole decision for one request at now_ms. */
rl_result_t rl_take(rl_state_t *s, const rl_params_t *p, uint64_t now_ms);

/* Parses "limit/window_s[/burst]" (burst defaults to limit); false on a bad spec. */
bool rl_params_parse(const char *spec, rl_params_t *out);

/* ---- client addresses ---- */

/* An address range; addresses are 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
typedef struct rl_cidr {
    uint8_t addr[16];
    uint8_t bits; /* prefix length over the 128-bit form */
} rl_cidr_t;

/* Parses an IPv4 or IPv6 address ("1.2.3.4", "::1"); with allow_port also "1.2.3.4:80" and
 * "[::1]:80". Surrounding blanks are skipped. */
bool rl_ip_parse(const char *s, size_t n, bool allow_port, uint8_t out[16]);

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a host range). */
bool rl_cidr_parse(const char *s, size_t n, rl_cidr_t *out);

/* Parses a comma list of CIDRs into out (at most max); returns the count, or -1 on a bad item. */
int rl_cidr_list_parse(const char *list, rl_cidr_t *out, int max);

/* Whether ip is inside any of the n ranges. */
bool rl_cidr_match(const rl_cidr_t *ranges, int n, const uint8_t ip[16]);

/* The socket peer (family AF_INET with 4 bytes, or AF_INET6) as a 16-byte address. */
void rl_ip_from_peer(int family, const uint8_t *addr, uint8_t out[16]);

/* The client address: the peer, unless the peer is a trusted proxy; then the first address of
 * X-Forwarded-For, scanning from the right, that is not trusted (the leftmost when all are;
 * the last good one when an entry is malformed). */
void rl_client_ip(const uint8_t peer[16], const char *xff, size_t xff_len, const rl_cidr_t *trusted,
                  int ntrusted, uint8_t out[16]);

/* ---- the request path ---- */

/* Buckets a request may draw from. */
enum rl_bucket_class { RL_TIER = 0, RL_EXPENSIVE, RL_BULK, RL_IP, RL_HEALTH, RL_NCLASS };

/* Runs when the request may go on; a rejected request has been answered 429 instead. */
typedef void (*rl_next_fn)(http_ctx_t *ctx, void *arg);

/* An authenticated request: key prefix, tier (enum api_tier) and the route's class. Calls next
 * (now, or from a completion) when every bucket allows it. */
void rl_check_key(http_ctx_t *ctx, const char *key_prefix, int tier, int route_class, rl_next_fn next,
                  void *arg);

/* An unauthenticated /api request (cls RL_IP) or a health probe (RL_HEALTH), by client IP. */
void rl_check_ip(http_ctx_t *ctx, int cls, rl_next_fn next, void *arg);

/* The client address of ctx as text (for logs); out needs 46 bytes. */
void rl_client_ip_text(http_ctx_t *ctx, char *out, size_t cap);

/* Re-reads the RATE_LIMIT_* options (tests; normally read on first use). */
void rl_configure(const config_t *cfg);

/* Counters of every thread, merged on read. */
typedef struct rl_stats {
    uint64_t allowed;
    uint64_t rejected[RL_NCLASS]; /* by bucket class */
    uint64_t whitelisted;
    uint64_t redis_fallback; /* decisions made locally because Redis was unusable */
    uint64_t redis_commands; /* lease scripts issued */
} rl_stats_t;
void rl_stats(rl_stats_t *out);

/* Spends one token of the client IP's unauthenticated budget before a key is looked up in
 * the database, so that spraying made-up keys cannot cost a query each; adds no headers
 * when allowed, answers 429 when not. */
void rl_check_lookup(http_ctx_t *ctx, rl_next_fn next, void *arg);

/* Frees this thread's lease table (at thread exit). */
void rl_thread_free(void);

/* Name of a bucket class ("expensive"), for metrics labels. */
const char *rl_class_name(int cls);

#endif
