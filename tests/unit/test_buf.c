#include "core/buf.h"
#include "test.h"

#include <inttypes.h>
#include <stdint.h>

/* ---- buf_t ---- */

TEST(empty_buffer_is_valid)
{
    buf_t b = BUF_INIT;
    CHECK(b.data == NULL);
    buf_consume(&b, 10);
    buf_reset(&b);
    CHECK_EQ_INT(b.len, 0);
    CHECK_STRN(buf_cstr(&b), 0, "");
    buf_free(&b);
    buf_free(&b); /* twice is fine */
    CHECK(b.data == NULL && b.cap == 0);
}

TEST(growth_doubles)
{
    buf_t b = BUF_INIT;
    buf_putc(&b, 'x');
    size_t first = b.cap;
    CHECK(first >= 1);
    size_t prev = first;
    int grew = 0;
    for (int i = 1; i < 100000; i++) {
        buf_putc(&b, (char)('a' + i % 26));
        if (b.cap != prev) {
            CHECK_EQ_INT(b.cap, prev * 2);
            prev = b.cap;
            grew++;
        }
    }
    CHECK_EQ_INT(b.len, 100000);
    CHECK(grew >= 10);
    CHECK_EQ_INT(b.data[0], 'x');
    CHECK_EQ_INT(b.data[99999], 'a' + 99999 % 26);
    /* one big reserve jumps straight past several doublings */
    char *p = buf_reserve(&b, 10 * 1000 * 1000);
    CHECK(p == b.data + b.len);
    CHECK(b.cap - b.len >= 10 * 1000 * 1000);
    memset(p, 'z', 10 * 1000 * 1000); /* ASan: all of it is writable */
    buf_free(&b);
}

TEST(reserve_then_commit)
{
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "ab");
    char *p = buf_reserve(&b, 3);
    memcpy(p, "cde", 3);
    b.len += 3;
    CHECK_STRN(b.data, b.len, "abcde");
    /* reserve with room to spare does not move the data */
    char *before = b.data;
    buf_reserve(&b, 1);
    CHECK(b.data == before);
    buf_free(&b);
}

TEST(appends)
{
    buf_t b = BUF_INIT;
    buf_append(&b, "hello", 5);
    buf_append(&b, NULL, 0);
    buf_putc(&b, ' ');
    buf_append_lit(&b, "world");
    buf_putc(&b, '\0'); /* bytes, not strings */
    buf_append_lit(&b, "!");
    CHECK_EQ_INT(b.len, 13);
    CHECK(memcmp(b.data, "hello world\0!", 13) == 0);
    buf_reset(&b);
    CHECK_EQ_INT(b.len, 0);
    CHECK(b.cap >= 13);
    buf_append_lit(&b, "again");
    CHECK_STRN(buf_cstr(&b), b.len, "again");
    CHECK_EQ_INT(b.len, 5); /* the NUL is not counted */
    buf_free(&b);
}

static void check_u64(uint64_t v)
{
    char want[32];
    snprintf(want, sizeof(want), "%" PRIu64, v);
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "<");
    buf_append_u64(&b, v);
    buf_append_lit(&b, ">");
    CHECK_EQ_INT(b.len, strlen(want) + 2);
    CHECK(memcmp(b.data + 1, want, strlen(want)) == 0);
    buf_free(&b);
}

static void check_i64(int64_t v)
{
    char want[32];
    snprintf(want, sizeof(want), "%" PRId64, v);
    buf_t b = BUF_INIT;
    buf_append_i64(&b, v);
    CHECK_STRN(b.data, b.len, want);
    buf_free(&b);
}

TEST(u64_edges)
{
    buf_t b = BUF_INIT;
    buf_append_u64(&b, 0);
    CHECK_STRN(b.data, b.len, "0");
    buf_reset(&b);
    buf_append_u64(&b, UINT64_MAX);
    CHECK_STRN(b.data, b.len, "18446744073709551615");
    buf_free(&b);
    /* every digit count, and both sides of every power of ten */
    uint64_t p = 1;
    for (int i = 0; i < 20; i++) {
        check_u64(p);
        check_u64(p - 1);
        check_u64(p + 1);
        check_u64(p * 9 + (p - 1)); /* 99...9 */
        if (i < 19)
            p *= 10;
    }
    uint64_t x = 0x243f6a8885a308d3ull;
    for (int i = 0; i < 10000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        check_u64(x >> (i % 64));
    }
}

TEST(i64_edges)
{
    buf_t b = BUF_INIT;
    buf_append_i64(&b, INT64_MIN);
    CHECK_STRN(b.data, b.len, "-9223372036854775808");
    buf_reset(&b);
    buf_append_i64(&b, INT64_MAX);
    CHECK_STRN(b.data, b.len, "9223372036854775807");
    buf_reset(&b);
    buf_append_i64(&b, 0);
    CHECK_STRN(b.data, b.len, "0");
    buf_reset(&b);
    buf_append_i64(&b, -1);
    CHECK_STRN(b.data, b.len, "-1");
    buf_free(&b);
    check_i64(INT64_MIN + 1);
    check_i64(-10);
    check_i64(-99);
    check_i64(-100);
    check_i64(1000000007);
    check_i64(-1000000007);
}

TEST(printf)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "%s=%d", "a", 42);
    CHECK_STRN(b.data, b.len, "a=42");
    buf_printf(&b, "%s", ""); /* nothing */
    CHECK_EQ_INT(b.len, 4);
    /* larger than what is free: the retry path */
    char big[5000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_printf(&b, "[%s]", big);
    CHECK_EQ_INT(b.len, 4 + 5001);
    CHECK(b.data[4] == '[' && b.data[5] == 'q' && b.data[b.len - 1] == ']');
    buf_printf(&b, "%05.1f", 3.14159);
    CHECK(memcmp(b.data + b.len - 5, "003.1", 5) == 0);
    buf_free(&b);
}

TEST(consume)
{
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "GET / HTTP/1.1\r\n\r\nnext");
    buf_consume(&b, 0);
    CHECK_EQ_INT(b.len, 22);
    buf_consume(&b, 18);
    CHECK_STRN(b.data, b.len, "next");
    buf_consume(&b, 1);
    CHECK_STRN(b.data, b.len, "ext");
    buf_consume(&b, 3);
    CHECK_EQ_INT(b.len, 0);
    buf_append_lit(&b, "abc");
    buf_consume(&b, 100);
    CHECK_EQ_INT(b.len, 0);
    CHECK(b.cap > 0);
    buf_free(&b);
}

/* ---- buf_pool_t ---- */

TEST(pool_reuses_buffers)
{
    buf_pool_t pool;
    buf_pool_init(&pool, 4, 0);
    CHECK_EQ_INT(pool.max_cap, BUF_POOL_DEFAULT_CAP);
    buf_t *a = buf_pool_get(&pool, 1000);
    CHECK(a->cap >= 1000);
    CHECK_EQ_INT(a->len, 0);
    buf_append_lit(a, "leftover");
    char *mem = a->data;
    buf_pool_put(&pool, a);
    CHECK_EQ_INT(pool.count, 1);
    buf_t *again = buf_pool_get(&pool, 500);
    CHECK(again == a);
    CHECK(again->data == mem);
    CHECK_EQ_INT(again->len, 0);
    CHECK_EQ_INT(pool.count, 0);
    /* a hint larger than any idle buffer grows one instead of keeping it idle */
    buf_pool_put(&pool, again);
    buf_t *bigger = buf_pool_get(&pool, 100000);
    CHECK(bigger->cap >= 100000);
    CHECK_EQ_INT(pool.count, 0);
    buf_pool_put(&pool, bigger);
    buf_pool_put(&pool, NULL);
    CHECK_EQ_INT(pool.count, 1);
    buf_pool_destroy(&pool);
}

TEST(pool_prefers_a_fitting_buffer)
{
    buf_pool_t pool;
    buf_pool_init(&pool, 8, 0);
    buf_t *small = buf_pool_get(&pool, 100);
    buf_t *large = buf_pool_get(&pool, 64 * 1024);
    buf_pool_put(&pool, large);
    buf_pool_put(&pool, small); /* on top */
    buf_t *got = buf_pool_get(&pool, 32 * 1024);
    CHECK(got == large);
    got = buf_pool_get(&pool, 10);
    CHECK(got == small);
    buf_pool_put(&pool, large);
    buf_pool_put(&pool, small);
    buf_pool_destroy(&pool);
}

TEST(pool_cap_and_bound)
{
    buf_pool_t pool;
    buf_pool_init(&pool, 3, 4096);
    /* bigger than the cap: freed on put, never kept (ASan would see a leak otherwise) */
    buf_t *huge = buf_pool_get(&pool, 8192);
    buf_pool_put(&pool, huge);
    CHECK_EQ_INT(pool.count, 0);
    /* a buffer that grew while in use is judged by its size at put time */
    buf_t *grows = buf_pool_get(&pool, 16);
    buf_reserve(grows, 100000);
    buf_pool_put(&pool, grows);
    CHECK_EQ_INT(pool.count, 0);
    /* at most max_count idle buffers */
    buf_t *b[5];
    for (int i = 0; i < 5; i++)
        b[i] = buf_pool_get(&pool, 128);
    for (int i = 0; i < 5; i++)
        buf_pool_put(&pool, b[i]);
    CHECK_EQ_INT(pool.count, 3);
    buf_pool_destroy(&pool);
    CHECK_EQ_INT(pool.count, 0);
}

TEST(pool_zeroed_is_a_plain_allocator)
{
    buf_pool_t pool = {0};
    buf_t *b = buf_pool_get(&pool, 0);
    CHECK(b != NULL);
    CHECK_EQ_INT(b->len, 0);
    buf_append_lit(b, "x");
    buf_pool_put(&pool, b); /* max_count 0: freed */
    CHECK_EQ_INT(pool.count, 0);
    buf_pool_destroy(&pool);
}

/* ---- arena_t ---- */

static bool aligned16(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

TEST(arena_alignment)
{
    /* deliberately misaligned caller storage */
    static char storage[1024 + 3];
    arena_t a;
    arena_init(&a, storage + 3, 1024);
    int bad = 0;
    char *prev = NULL;
    for (size_t n = 1; n < 200; n++) {
        char *p = arena_alloc(&a, n);
        if (!aligned16(p))
            bad++;
        if (prev && p < prev + 1)
            bad++;
        memset(p, 0xab, n);
        prev = p;
    }
    CHECK_EQ_INT(bad, 0);
    arena_destroy(&a);
}

TEST(arena_starts_in_caller_storage)
{
    _Alignas(16) char storage[512];
    arena_t a;
    arena_init(&a, storage, sizeof(storage));
    char *p = arena_alloc(&a, 100);
    CHECK(p >= storage && p + 100 <= storage + sizeof(storage));
    CHECK(a.chain == NULL);
    /* past the storage: a chained block */
    char *q = arena_alloc(&a, 500);
    CHECK(q < storage || q >= storage + sizeof(storage));
    CHECK(a.chain != NULL);
    arena_reset(&a);
    CHECK(a.chain == NULL);
    CHECK(arena_alloc(&a, 8) == (void *)storage);
    arena_destroy(&a);
}

TEST(arena_big_allocation_gets_its_own_block)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    char *small1 = arena_alloc(&a, 64);
    char *cur_before = a.cur;
    char *big = arena_alloc(&a, 1 << 20);
    CHECK(aligned16(big));
    memset(big, 1, 1 << 20);
    /* the current block keeps serving small requests right after the last one */
    CHECK(a.cur == cur_before);
    char *small2 = arena_alloc(&a, 64);
    CHECK(small2 == small1 + 64);
    arena_destroy(&a);
}

TEST(arena_many_and_reset)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    for (int round = 0; round < 3; round++) {
        char *first = NULL;
        for (int i = 0; i < 20000; i++) {
            size_t n = (size_t)(i % 97) + 1;
            unsigned char *p = arena_alloc(&a, n);
            memset(p, (int)(i & 0xff), n);
            if (i == 0)
                first = (char *)p;
            if (i % 5000 == 0)
                arena_alloc(&a, 100000 + (size_t)i);
        }
        CHECK(a.chain != NULL);
        arena_reset(&a);
        CHECK(a.chain == NULL);
        /* the first block survives reset and is reused */
        CHECK(a.first_owned);
        CHECK(arena_alloc(&a, 1) == (void *)first);
        arena_reset(&a);
    }
    arena_destroy(&a);
    CHECK(a.first == NULL && a.chain == NULL);
}

TEST(arena_strndup_and_zero)
{
    char storage[256];
    arena_t a;
    arena_init(&a, storage, sizeof(storage));
    char *s = arena_strndup(&a, "hello, world", 5);
    CHECK(strcmp(s, "hello") == 0);
    char *e = arena_strndup(&a, "", 0);
    CHECK(e[0] == '\0');
    void *z1 = arena_alloc(&a, 0);
    void *z2 = arena_alloc(&a, 0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    int v[4] = {1, 2, 3, 4};
    int *c = arena_memdup(&a, v, sizeof(v));
    CHECK(c[0] == 1 && c[3] == 4);
    arena_destroy(&a);
}

TEST_MAIN()
