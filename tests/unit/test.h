/*
 * Minimal unit-test harness: each tests/unit/test_*.c is one binary. A test is a function
 * registered with TEST(); CHECK* record a failure and keep going. The binary prints
 * "PASS name" / "FAIL name: file:line: expr" per test, then "N passed, N failed", and exits
 * non-zero when anything failed. tests/run counts the PASS/FAIL lines.
 */
#ifndef CRMD_TEST_H
#define CRMD_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn_t)(void);
struct test_case {
    const char *name;
    test_fn_t fn;
};

#define TEST_MAX 512
extern struct test_case test_cases[TEST_MAX];
extern int test_count;
extern int test_failed_now;

#define TEST(name)                                                                                           \
    static void test_##name(void);                                                                           \
    __attribute__((constructor)) static void test_register_##name(void)                                      \
    {                                                                                                        \
        if (test_count < TEST_MAX)                                                                           \
            test_cases[test_count++] = (struct test_case){#name, test_##name};                               \
    }                                                                                                        \
    static void test_##name(void)

#define CHECK(expr)                                                                                          \
    do {                                                                                                     \
        if (!(expr)) {                                                                                       \
            if (!test_failed_now)                                                                            \
                printf("  %s:%d: CHECK(%s)\n", __FILE__, __LINE__, #expr);                                   \
            test_failed_now = 1;                                                                             \
        }                                                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                                   \
    do {                                                                                                     \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                                \
        if (va_ != vb_) {                                                                                    \
            printf("  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, va_, #b, vb_);      \
            test_failed_now = 1;                                                                             \
        }                                                                                                    \
    } while (0)

/* Compares a (pointer, length) pair with a C string. */
#define CHECK_STRN(p, n, s)                                                                                  \
    do {                                                                                                     \
        size_t n_ = (size_t)(n);                                                                             \
        if (n_ != strlen(s) || memcmp((p), (s), n_) != 0) {                                                  \
            printf("  %s:%d: %s is \"%.*s\", expected \"%s\"\n", __FILE__, __LINE__, #p, (int)n_,            \
                   (const char *)(p), (s));                                                                  \
            test_failed_now = 1;                                                                             \
        }                                                                                                    \
    } while (0)

#define TEST_MAIN()                                                                                          \
    struct test_case test_cases[TEST_MAX];                                                                   \
    int test_count;                                                                                          \
    int test_failed_now;                                                                                     \
    int main(void)                                                                                           \
    {                                                                                                        \
        int passed = 0, failed = 0;                                                                          \
        for (int i = 0; i < test_count; i++) {                                                               \
            test_failed_now = 0;                                                                             \
            test_cases[i].fn();                                                                              \
            printf("%s %s\n", test_failed_now ? "FAIL" : "PASS", test_cases[i].name);                        \
            if (test_failed_now)                                                                             \
                failed++;                                                                                    \
            else                                                                                             \
                passed++;                                                                                    \
        }                                                                                                    \
        printf("%d passed, %d failed\n", passed, failed);                                                    \
        return failed ? 1 : 0;                                                                               \
    }

#endif
