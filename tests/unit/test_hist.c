#include "core/hist.h"
#include "test.h"

TEST(index_and_upper_bound_agree)
{
    for (uint64_t v = 0; v < 200000; v += 7) {
        unsigned i = hist_index(v);
        CHECK(v <= hist_upper(i));
        CHECK(i == 0 || v > hist_upper(i - 1));
    }
}

TEST(relative_error_under_12_5_percent)
{
    for (uint64_t v = 8; v < (1ull << 39); v = v * 3 / 2 + 1) {
        uint64_t up = hist_upper(hist_index(v));
        CHECK((double)(up - v) <= 0.125 * (double)v + 1);
    }
}

TEST(quantiles)
{
    static hist_t h;
    for (uint64_t v = 1; v <= 1000; v++)
        hist_record(&h, v);
    CHECK_EQ_INT(h.count, 1000);
    CHECK_EQ_INT(h.max, 1000);
    uint64_t p50 = hist_quantile(&h, 0.5), p99 = hist_quantile(&h, 0.99);
    CHECK(p50 >= 500 && p50 <= 563);
    CHECK(p99 >= 990 && p99 <= 1000);
    CHECK_EQ_INT(hist_quantile(&h, 1.0), 1000);
    CHECK_EQ_INT(hist_count_le(&h, 7), 7);
}

TEST(merge_adds_counts)
{
    static hist_t a, b;
    hist_record(&a, 5);
    hist_record(&b, 5000);
    hist_record(&b, 50);
    hist_merge(&a, &b);
    CHECK_EQ_INT(a.count, 3);
    CHECK_EQ_INT(a.sum, 5055);
    CHECK_EQ_INT(a.max, 5000);
    CHECK_EQ_INT(hist_count_le(&a, 7), 1);
}

TEST(huge_values_clamp_to_last_bucket)
{
    static hist_t h;
    hist_record(&h, UINT64_MAX);
    CHECK_EQ_INT(h.buckets[HIST_BUCKETS - 1], 1);
}

TEST_MAIN()
