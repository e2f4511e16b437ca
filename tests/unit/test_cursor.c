#include "api/cursor.h"
#include "core/common.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

static cursor_key_t key_a, key_b;

static void keys(void)
{
    cursor_key_derive(&key_a, "test-key", 8);
    cursor_key_derive(&key_b, "other-key", 9);
}

static uint64_t bind_default(void)
{
    return cursor_binding(7, "companies", "ownerId=3\n", 10, "-created_at", NULL, 0);
}

static cursor_t sample_ts(void)
{
    static const char ts[] = "2026-01-17 10:30:00.123456+00";
    cursor_t c = {.dir = CURSOR_NEXT, .kind = CURSOR_TIMESTAMP, .s = ts, .n = sizeof(ts) - 1, .id = 4242};
    c.binding = bind_default();
    return c;
}

TEST(round_trip_timestamp)
{
    keys();
    cursor_t c = sample_ts(), o;
    char tok[CURSOR_TOKEN_MAX], scratch[CURSOR_TOKEN_MAX];
    size_t n = cursor_seal(&key_a, &c, tok, sizeof(tok));
    CHECK(n > 0);
    CHECK_EQ_INT(strlen(tok), n);
    for (size_t i = 0; i < n; i++)
        CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[i]) != NULL);
    CHECK(cursor_open(&key_a, tok, n, c.binding, &o, scratch, sizeof(scratch)));
    CHECK_EQ_INT(o.dir, CURSOR_NEXT);
    CHECK_EQ_INT(o.kind, CURSOR_TIMESTAMP);
    CHECK_EQ_INT(o.id, 4242);
    CHECK_STRN(o.s, o.n, "2026-01-17 10:30:00.123456+00");
    CHECK(o.s2 == NULL);
}

TEST(round_trip_every_kind)
{
    keys();
    uint64_t bind = cursor_binding(1, "deals", "", 0, "value", "acme corp", 9);
    cursor_t cases[] = {
        {.dir = CURSOR_PREV, .kind = CURSOR_NULL, .id = 1},
        {.dir = CURSOR_NEXT, .kind = CURSOR_INT, .i = -5, .id = INT64_MAX},
        {.dir = CURSOR_NEXT, .kind = CURSOR_FLOAT, .f = 0.0607927f, .id = 9},
        {.dir = CURSOR_PREV, .kind = CURSOR_NUMERIC, .s = "1234.50", .n = 7, .id = 3},
        {.dir = CURSOR_NEXT, .kind = CURSOR_TEXT, .s = "Smith", .n = 5, .s2 = "Ann", .n2 = 3, .id = 11},
        {.dir = CURSOR_NEXT, .kind = CURSOR_TEXT, .s = "", .n = 0, .id = 12},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        cursor_t c = cases[i], o;
        c.binding = bind;
        char tok[CURSOR_TOKEN_MAX], scratch[CURSOR_TOKEN_MAX];
        size_t n = cursor_seal(&key_a, &c, tok, sizeof(tok));
        CHECK(n > 0);
        CHECK(cursor_open(&key_a, tok, n, bind, &o, scratch, sizeof(scratch)));
        CHECK_EQ_INT(o.dir, c.dir);
        CHECK_EQ_INT(o.kind, c.kind);
        CHECK_EQ_INT(o.id, c.id);
        CHECK_EQ_INT(o.i, c.i);
        CHECK(memcmp(&o.f, &c.f, sizeof(float)) == 0);
        CHECK_EQ_INT(o.n, c.n);
        if (c.n)
            CHECK(memcmp(o.s, c.s, c.n) == 0);
        CHECK((o.s2 != NULL) == (c.s2 != NULL));
        if (c.s2)
            CHECK_STRN(o.s2, o.n2, "Ann");
    }
}

TEST(tokens_differ_each_time)
{
    keys();
    cursor_t c = sample_ts();
    char t1[CURSOR_TOKEN_MAX], t2[CURSOR_TOKEN_MAX];
    cursor_seal(&key_a, &c, t1, sizeof(t1));
    cursor_seal(&key_a, &c, t2, sizeof(t2));
    CHECK(strcmp(t1, t2) != 0); /* random nonce */
    CHECK(strstr(t1, "2026") == NULL);
}

TEST(every_bit_flip_fails)
{
    keys();
    cursor_t c = sample_ts(), o;
    char tok[CURSOR_TOKEN_MAX], bad[CURSOR_TOKEN_MAX], scratch[CURSOR_TOKEN_MAX];
    size_t n = cursor_seal(&key_a, &c, tok, sizeof(tok));
    int opened = 0;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, tok, n + 1);
            bad[i] = (char)(bad[i] ^ (1 << bit));
            if (cursor_open(&key_a, bad, n, c.binding, &o, scratch, sizeof(scratch)))
                opened++;
        }
    }
    CHECK_EQ_INT(opened, 0);
}

TEST(truncation_and_extension_fail)
{
    keys();
    cursor_t c = sample_ts(), o;
    char tok[CURSOR_TOKEN_MAX + 8], scratch[CURSOR_TOKEN_MAX + 8];
    size_t n = cursor_seal(&key_a, &c, tok, CURSOR_TOKEN_MAX);
    int opened = 0;
    for (size_t len = 0; len < n; len++)
        opened += cursor_open(&key_a, tok, len, c.binding, &o, scratch, sizeof(scratch));
    CHECK_EQ_INT(opened, 0);
    memcpy(tok + n, "AAAA", 5);
    CHECK(!cursor_open(&key_a, tok, n + 4, c.binding, &o, scratch, sizeof(scratch)));
    CHECK(!cursor_open(&key_a, "", 0, c.binding, &o, scratch, sizeof(scratch)));
    CHECK(!cursor_open(&key_a, "!!!!", 4, c.binding, &o, scratch, sizeof(scratch)));
}

TEST(wrong_binding_fails)
{
    keys();
    cursor_t c = sample_ts(), o;
    char tok[CURSOR_TOKEN_MAX], scratch[CURSOR_TOKEN_MAX];
    size_t n = cursor_seal(&key_a, &c, tok, sizeof(tok));
    uint64_t others[] = {
        cursor_binding(8, "companies", "ownerId=3\n", 10, "-created_at", NULL, 0), /* other org */
        cursor_binding(7, "contacts", "ownerId=3\n", 10, "-created_at", NULL, 0),  /* other resource */
        cursor_binding(7, "companies", "ownerId=4\n", 10, "-created_at", NULL, 0), /* other filter */
        cursor_binding(7, "companies", "", 0, "-created_at", NULL, 0),             /* no filter */
        cursor_binding(7, "companies", "ownerId=3\n", 10, "created_at", NULL, 0),  /* other sort */
        cursor_binding(7, "companies", "ownerId=3\n", 10, "-created_at", "x", 1),  /* with q */
    };
    for (size_t i = 0; i < ARRAY_LEN(others); i++) {
        CHECK(others[i] != c.binding);
        CHECK(!cursor_open(&key_a, tok, n, others[i], &o, scratch, sizeof(scratch)));
    }
    CHECK(cursor_open(&key_a, tok, n, bind_default(), &o, scratch, sizeof(scratch)));
}

TEST(binding_fields_do_not_run_together)
{
    CHECK(cursor_binding(1, "a", "bc", 2, "s", NULL, 0) != cursor_binding(1, "ab", "c", 1, "s", NULL, 0));
    CHECK(cursor_binding(1, "a", "", 0, "s", "", 0) == cursor_binding(1, "a", "", 0, "s", NULL, 0));
}

TEST(wrong_key_fails)
{
    keys();
    cursor_t c = sample_ts(), o;
    char tok[CURSOR_TOKEN_MAX], scratch[CURSOR_TOKEN_MAX];
    size_t n = cursor_seal(&key_a, &c, tok, sizeof(tok));
    CHECK(!cursor_open(&key_b, tok, n, c.binding, &o, scratch, sizeof(scratch)));
    cursor_key_t r;
    cursor_key_random(&r);
    CHECK(!cursor_open(&r, tok, n, c.binding, &o, scratch, sizeof(scratch)));
}

TEST(oversized_values_refused)
{
    keys();
    static char big[CURSOR_TEXT_MAX + 1];
    memset(big, 'x', sizeof(big));
    cursor_t c = {.kind = CURSOR_TEXT, .s = big, .n = sizeof(big), .id = 1};
    char tok[CURSOR_TOKEN_MAX], scratch[CURSOR_TOKEN_MAX], small[16];
    CHECK_EQ_INT(cursor_seal(&key_a, &c, tok, sizeof(tok)), 0);
    c.n = CURSOR_TEXT_MAX;
    c.s2 = big;
    c.n2 = CURSOR_TEXT_MAX;
    size_t n = cursor_seal(&key_a, &c, tok, sizeof(tok));
    CHECK(n > 0);
    cursor_t o;
    CHECK(cursor_open(&key_a, tok, n, 0, &o, scratch, sizeof(scratch)));
    CHECK_EQ_INT(o.n2, CURSOR_TEXT_MAX);
    CHECK_EQ_INT(cursor_seal(&key_a, &c, small, sizeof(small)), 0);
    CHECK(!cursor_open(&key_a, tok, n, 0, &o, scratch, 10)); /* scratch too small */
}

TEST_MAIN()
