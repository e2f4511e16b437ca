/*
 * Rate limits (API.md "Rate limits"): GCRA buckets per API key by tier, per key and route class
 * (expensive, bulk), per client IP for unauthenticated /api traffic and for health.
 *
 * The algorithm is GCRA with integer microseconds: a bucket of `burst` tokens refilled at
 * limit/window (api/limit/gcra.c: pure functions of `now`, so tests drive time); client
 * addresses and trusted proxies are api/limit/addr.c.
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
#ifndef CRMD_API_LIMIT_LIMIT_H
#define CRMD_API_LIMIT_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/limit/addr.h"
#include "api/limit/gcra.h"
#include "http/server.h"

/* ---- the request path ---- */

/* Buckets a request may draw from. */
enum rl_bucket_class { RL_TIER = 0, RL_EXPENSIVE, RL_BULK, RL_IP, RL_HEALTH, RL_NCLASS };

/* Runs when the request may go on; a rejected request has been answered 429 instead. */
typedef void (*rl_next_fn)(http_ctx_t *ctx, void *arg);

/* An authenticated request: key prefix, tier (enum api_tier) and the route's class. Calls next
 * (now, or from a completion) when every bucket allows it. */
void rl_check_key(http_ctx_t *ctx, const char *key_prefix, int tier, int route_class, rl_next_fn next,
                  void *arg);

/* Takes tokens more from the key's tier bucket (a request that costs more than one: an
 * expensive GraphQL query), then calls next; answers 429 instead when the bucket runs out. */
void rl_charge_key(http_ctx_t *ctx, const char *key_prefix, int tier, uint32_t tokens, rl_next_fn next,
                   void *arg);

/* An unauthenticated /api request (cls RL_IP) or a health probe (RL_HEALTH), by client IP. */
void rl_check_ip(http_ctx_t *ctx, int cls, rl_next_fn next, void *arg);

/* The client address of ctx as text (for logs); out needs 46 bytes. */
void rl_client_ip_text(http_ctx_t *ctx, char *out, size_t cap);

/* Publishes the RATE_LIMIT_* and proxy options of cfg (SIGHUP, tests; g_config is read on
 * first use). Safe while other threads check limits: a check in flight keeps the settings it
 * started with. */
void rl_configure(const config_t *cfg);

/* Frees every settings snapshot published (at exit, when no thread checks any more). */
void rl_config_free(void);

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
