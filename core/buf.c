#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>

#define BUF_MIN_CAP 64

/* ---- buf_t ---- */

void buf_grow(buf_t *b, size_t n)
{
    size_t need = b->len + n;
    if (need < b->len)
        die("buffer size overflow (%zu + %zu)", b->len, n);
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

/* "00" "01" ... "99": two digits per division keeps the decimal loop short. */
static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static unsigned u64_digits(uint64_t v)
{
    unsigned n = 1;
    for (;;) {
        if (v < 10)
            return n;
        if (v < 100)
            return n + 1;
        if (v < 1000)
            return n + 2;
        if (v < 10000)
            return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* Writes the digits of v ending just before `end`. */
static void u64_write(char *end, uint64_t v)
{
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--end = digit_pairs[i + 1];
        *--end = digit_pairs[i];
    }
    if (v >= 10) {
        *--end = digit_pairs[v * 2 + 1];
        *--end = digit_pairs[v * 2];
    } else {
        *--end = (char)('0' + v);
    }
}

size_t u64_text(char *out, uint64_t v)
{
    unsigned n = u64_digits(v);
    u64_write(out + n, v);
    return n;
}

void buf_append_u64(buf_t *b, uint64_t v)
{
    unsigned n = u64_digits(v);
    char *p = buf_reserve(b, n);
    u64_write(p + n, v);
    b->len += n;
}

void buf_append_i64(buf_t *b, int64_t v)
{
    if (v >= 0) {
        buf_append_u64(b, (uint64_t)v);
        return;
    }
    /* negate in unsigned arithmetic: -INT64_MIN does not fit in int64_t */
    uint64_t u = 0 - (uint64_t)v;
    unsigned n = u64_digits(u);
    char *p = buf_reserve(b, n + 1);
    p[0] = '-';
    u64_write(p + 1 + n, u);
    b->len += n + 1;
}

void buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    size_t avail = b->cap - b->len;
    int n = vsnprintf(avail ? b->data + b->len : NULL, avail, fmt, ap);
    if (n >= 0 && (size_t)n >= avail)
        vsnprintf(buf_reserve(b, (size_t)n + 1), (size_t)n + 1, fmt, again);
    va_end(again);
    if (n > 0)
        b->len += (size_t)n;
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

const char *buf_cstr(buf_t *b)
{
    buf_reserve(b, 1)[0] = '\0';
    return b->data;
}

void buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* ---- buf_pool_t ---- */

/* How deep get looks for an idle buffer big enough before growing the top one. */
#define POOL_PROBES 8

void buf_pool_init(buf_pool_t *pool, size_t max_count, size_t max_cap)
{
    pool->max_count = max_count ? max_count : BUF_POOL_DEFAULT_COUNT;
    pool->max_cap = max_cap ? max_cap : BUF_POOL_DEFAULT_CAP;
    pool->idle = xmalloc(pool->max_count * sizeof(*pool->idle));
    pool->count = 0;
}

void buf_pool_destroy(buf_pool_t *pool)
{
    for (size_t i = 0; i < pool->count; i++) {
        buf_free(pool->idle[i]);
        free(pool->idle[i]);
    }
    free(pool->idle);
    memset(pool, 0, sizeof(*pool));
}

buf_t *buf_pool_get(buf_pool_t *pool, size_t size_hint)
{
    if (pool->count == 0) {
        buf_t *b = xcalloc(1, sizeof(*b));
        if (size_hint)
            buf_grow(b, size_hint);
        return b;
    }
    /* prefer a recent buffer that is already big enough; else grow the most recent one */
    size_t pick = pool->count - 1;
    for (size_t i = 0; i < POOL_PROBES && i < pool->count; i++) {
        size_t at = pool->count - 1 - i;
        if (pool->idle[at]->cap >= size_hint) {
            pick = at;
            break;
        }
    }
    buf_t *b = pool->idle[pick];
    pool->idle[pick] = pool->idle[--pool->count];
    if (size_hint > b->cap)
        buf_grow(b, size_hint);
    return b;
}

void buf_pool_put(buf_pool_t *pool, buf_t *b)
{
    if (!b)
        return;
    if (b->cap > pool->max_cap || pool->count >= pool->max_count) {
        buf_free(b);
        free(b);
        return;
    }
    b->len = 0;
    pool->idle[pool->count++] = b;
}

/* ---- arena_t ---- */

/* Header of a malloc'ed block; its usable bytes follow, aligned by the allocator code. */
struct arena_block {
    arena_block_t *next;
    size_t size;
};

static inline char *align_up(char *p)
{
    return (char *)(((uintptr_t)p + (ARENA_ALIGN - 1)) & ~(uintptr_t)(ARENA_ALIGN - 1));
}

void arena_init(arena_t *a, void *first_block, size_t size)
{
    memset(a, 0, sizeof(*a));
    if (first_block && size) {
        a->first = first_block;
        a->first_size = size;
        a->cur = a->first;
        a->end = a->first + size;
    }
    a->next_size = ARENA_BLOCK_MIN;
}

/* A malloc'ed block with at least n usable bytes after alignment, linked into the chain. */
static char *chain_block(arena_t *a, size_t n)
{
    size_t total = sizeof(arena_block_t) + ARENA_ALIGN + n;
    if (total < n)
        die("arena allocation overflow (%zu bytes)", n);
    arena_block_t *blk = xmalloc(total);
    blk->size = total;
    blk->next = a->chain;
    a->chain = blk;
    return align_up((char *)(blk + 1));
}

void *arena_alloc_slow(arena_t *a, size_t n)
{
    if (n == 0)
        return arena_alloc(a, 1); /* distinct pointers, from the current block when it has room */
    /* a big request gets its own block, and the current block keeps serving small ones */
    if (n > a->next_size / 4)
        return chain_block(a, n);
    char *p;
    size_t size = a->next_size;
    if (!a->first) {
        /* no caller storage: the first block is ours and survives resets */
        a->first = xmalloc(size);
        a->first_size = size;
        a->first_owned = true;
        p = a->first;
    } else {
        p = chain_block(a, size);
        if (a->next_size < ARENA_BLOCK_MAX)
            a->next_size *= 2;
    }
    a->cur = p;
    a->end = p + size;
    return arena_alloc(a, n);
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *arena_memdup(arena_t *a, const void *p, size_t n)
{
    void *q = arena_alloc(a, n);
    if (n)
        memcpy(q, p, n);
    return q;
}

void arena_reset(arena_t *a)
{
    arena_block_t *blk = a->chain;
    while (blk) {
        arena_block_t *next = blk->next;
        free(blk);
        blk = next;
    }
    a->chain = NULL;
    a->cur = a->first;
    a->end = a->first ? a->first + a->first_size : NULL;
    a->next_size = ARENA_BLOCK_MIN;
}

void arena_destroy(arena_t *a)
{
    arena_reset(a);
    if (a->first_owned)
        free(a->first);
    memset(a, 0, sizeof(*a));
}

char *arena_vprintf(arena_t *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int len = vsnprintf(small, sizeof(small), fmt, ap);
    if (len < 0)
        len = 0;
    char *out = arena_alloc(a, (size_t)len + 1);
    if ((size_t)len < sizeof(small))
        memcpy(out, small, (size_t)len + 1);
    else
        vsnprintf(out, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    return out;
}
