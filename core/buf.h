/*
 * Memory by lifetime. buf_t is a growable byte buffer (receive, send and body bytes);
 * buf_pool_t recycles buffers within one thread so hot paths do not return to malloc;
 * arena_t is a bump allocator for everything a request needs, freed in one call.
 * Allocation failure aborts (xmalloc), so nothing here returns NULL.
 */
#ifndef CRMD_CORE_BUF_H
#define CRMD_CORE_BUF_H

#include <stdarg.h>
#include <string.h>

#include "core/common.h"

/* ---- buf_t ---- */

/* A growable byte buffer; {0} (or BUF_INIT) is a valid empty buffer. Not NUL-terminated. */
typedef struct buf {
    char *data;
    size_t len; /* bytes in use, from data */
    size_t cap; /* bytes allocated */
} buf_t;

#define BUF_INIT                                                                                             \
    {                                                                                                        \
        NULL, 0, 0                                                                                           \
    }

/* Makes room for n more bytes, doubling the capacity as needed. Slow path of buf_reserve. */
void buf_grow(buf_t *b, size_t n);

/* Returns data + len with at least n writable bytes; write there, then add to b->len. */
static inline char *buf_reserve(buf_t *b, size_t n)
{
    if (unlikely(b->cap - b->len < n))
        buf_grow(b, n);
    return b->data + b->len;
}

/* Appends n bytes from p. */
static inline void buf_append(buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(buf_reserve(b, n), p, n);
    b->len += n;
}

/* Appends a string literal, its length known at compile time. */
#define buf_append_lit(b, lit) buf_append((b), "" lit, sizeof(lit) - 1)

/* Appends one byte. */
static inline void buf_putc(buf_t *b, char c)
{
    if (unlikely(b->len == b->cap))
        buf_grow(b, 1);
    b->data[b->len++] = c;
}

/* Appends the decimal form of v (no printf). */
void buf_append_u64(buf_t *b, uint64_t v);

/* Writes v in decimal at out (room for 20 characters, no terminator); returns the length. The
 * one integer-to-text of the tree: no printf on hot paths. */
size_t u64_text(char *out, uint64_t v);

/* Appends the decimal form of v, with '-' when negative (INT64_MIN included). */
void buf_append_i64(buf_t *b, int64_t v);

/* Appends printf-formatted text. */
__attribute__((format(printf, 2, 3))) void buf_printf(buf_t *b, const char *fmt, ...);

/* buf_printf with a va_list. */
__attribute__((format(printf, 2, 0))) void buf_vprintf(buf_t *b, const char *fmt, va_list ap);

/* Drops the first n bytes (all when n >= len), moving the rest to the front. */
void buf_consume(buf_t *b, size_t n);

/* NUL-terminates the contents (the NUL is not counted in len) and returns them. */
const char *buf_cstr(buf_t *b);

/* Empties the buffer, keeping its memory. */
static inline void buf_reset(buf_t *b)
{
    b->len = 0;
}

/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_free(buf_t *b);

/* ---- buf_pool_t ---- */

#define BUF_POOL_DEFAULT_COUNT 64
#define BUF_POOL_DEFAULT_CAP   (256 * 1024)

/*
 * A per-thread free list of heap-allocated buffers (no locks). At most max_count buffers are
 * kept, and a buffer that grew past max_cap is freed on put rather than kept.
 */
typedef struct buf_pool {
    buf_t **idle; /* stack of idle buffers, the most recently put on top */
    size_t count;
    size_t max_count;
    size_t max_cap;
} buf_pool_t;

/* Sets up an empty pool; 0 for either limit takes the default above. */
void buf_pool_init(buf_pool_t *pool, size_t max_count, size_t max_cap);

/* Frees the pool and every idle buffer in it (buffers handed out are the caller's). */
void buf_pool_destroy(buf_pool_t *pool);

/* An empty buffer with at least size_hint bytes of capacity, recycled when possible. */
buf_t *buf_pool_get(buf_pool_t *pool, size_t size_hint);

/* Gives a buffer from buf_pool_get back (NULL is ignored); its contents are dropped. */
void buf_pool_put(buf_pool_t *pool, buf_t *b);

/* ---- arena_t ---- */

#define ARENA_ALIGN     16
#define ARENA_BLOCK_MIN 4096
#define ARENA_BLOCK_MAX (64 * 1024)

typedef struct arena_block arena_block_t;

/*
 * A bump allocator. Starts in caller storage (e.g. inline in the request struct) or, without
 * it, in a block malloc'ed on first use; then chains malloc'ed blocks of growing size, and
 * gives a large request a block of its own. arena_reset frees the chain in one call.
 */
typedef struct arena {
    char *cur, *end;      /* free space of the current block */
    arena_block_t *chain; /* malloc'ed blocks after the first, newest first */
    char *first;          /* the first block, kept across resets */
    size_t first_size;
    size_t next_size; /* size of the next chained block */
    bool first_owned; /* the first block was malloc'ed here */
} arena_t;

/* Sets up an arena starting in first_block (size bytes; NULL/0 for none). */
void arena_init(arena_t *a, void *first_block, size_t size);

/* Slow path of arena_alloc: a new block, or a block of its own for a big n. */
void *arena_alloc_slow(arena_t *a, size_t n);

/* n bytes aligned to ARENA_ALIGN, valid until the next arena_reset; never NULL. */
static inline void *arena_alloc(arena_t *a, size_t n)
{
    uintptr_t p = ((uintptr_t)a->cur + (ARENA_ALIGN - 1)) & ~(uintptr_t)(ARENA_ALIGN - 1);
    uintptr_t end = (uintptr_t)a->end;
    if (likely(n && p <= end && n <= end - p)) {
        a->cur = (char *)p + n;
        return (void *)p;
    }
    return arena_alloc_slow(a, n);
}

/* A NUL-terminated copy of s[0..n) in the arena. */
char *arena_strndup(arena_t *a, const char *s, size_t n);

/* A printf-formatted string in the arena (any length). */
char *arena_vprintf(arena_t *a, const char *fmt, va_list ap);

/* A copy of n bytes in the arena. */
void *arena_memdup(arena_t *a, const void *p, size_t n);

/* Frees every chained block and rewinds to the start of the first block. */
void arena_reset(arena_t *a);

/* Frees everything, the first block too when the arena allocated it. */
void arena_destroy(arena_t *a);

#endif
