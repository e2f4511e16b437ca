/*
 * Log-linear latency histograms: 8 linear sub-buckets per power of two, so any recorded value
 * is known to within 12.5 %. Fixed size, no allocation, lock-free by ownership (one thread
 * records into its own histogram; readers merge copies).
 */
#ifndef CRMD_CORE_HIST_H
#define CRMD_CORE_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 3
#define HIST_BUCKETS  312 /* values up to 2^40 - 1 */

typedef struct {
    uint64_t count, sum, max;
    uint64_t buckets[HIST_BUCKETS];
} hist_t;

/* Records one value (e.g. microseconds); values past the range land in the last bucket. */
void hist_record(hist_t *h, uint64_t v);

/* Adds src into dst. */
void hist_merge(hist_t *dst, const hist_t *src);

/* The value at quantile q (0..1): the upper bound of the bucket holding it; 0 when empty. */
uint64_t hist_quantile(const hist_t *h, double q);

/* How many recorded values are at most v (whole buckets whose upper bound is <= v). */
uint64_t hist_count_le(const hist_t *h, uint64_t v);

/* Bucket index of v, and the largest value bucket i holds (exposed for tests). */
unsigned hist_index(uint64_t v);
uint64_t hist_upper(unsigned i);

#endif
