#include "core/hist.h"

#define SUB (1u << HIST_SUB_BITS)

unsigned hist_index(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    unsigned i = (shift + 1) * SUB + (unsigned)((v >> shift) & (SUB - 1));
    return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

uint64_t hist_upper(unsigned i)
{
    if (i < SUB)
        return i;
    unsigned shift = i / SUB - 1, sub = i % SUB;
    return ((uint64_t)(SUB + sub + 1) << shift) - 1;
}

void hist_record(hist_t *h, uint64_t v)
{
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->buckets[hist_index(v)]++;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

uint64_t hist_quantile(const hist_t *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t up = hist_upper(i);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}

uint64_t hist_count_le(const hist_t *h, uint64_t v)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < HIST_BUCKETS && hist_upper(i) <= v; i++)
        n += h->buckets[i];
    return n;
}
