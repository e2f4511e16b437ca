/*
 * GCRA with integer microseconds: a bucket of `burst` tokens refilled at limit/window, and
 * repeat-violator blocks (a request arriving while its client is blocked doubles the block, up
 * to max_block_s). Pure: every function takes `now`.
 */
#ifndef CRMD_API_LIMIT_GCRA_H
#define CRMD_API_LIMIT_GCRA_H

#include <stdbool.h>
#include <stdint.h>

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

/* Blocked right now? Then this request is a repeat violation: r is its rejection (the block
 * doubles, at most once a second) and the answer true. */
bool rl_blocked(rl_state_t *s, const rl_params_t *p, uint64_t now_ms, rl_result_t *r);

/* After the bucket's own answer r: a first rejection blocks until the next token; an allowed
 * request ends the block's doubling. */
void rl_note(rl_state_t *s, const rl_params_t *p, uint64_t now_ms, const rl_result_t *r);

/* GCRA with repeat-violator blocks: the whole decision for one request at now_ms. */
rl_result_t rl_take(rl_state_t *s, const rl_params_t *p, uint64_t now_ms);

/* Parses "limit/window_s[/burst]" (burst defaults to limit); false on a bad spec. */
bool rl_params_parse(const char *spec, rl_params_t *out);

#endif
