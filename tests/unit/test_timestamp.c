/* The one timestamp type: parse, range, format, and the calendar arithmetic under it. */
#include "core/timestamp.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int parses(const char *s)
{
    ts_t t;
    return ts_parse_rfc3339(s, strlen(s), &t);
}

TEST(calendar_matches_libc_over_every_day)
{
    /* timegm is the independent reference: every day of years 1900-2200 */
    size_t bad = 0;
    for (int64_t days = ts_days_from_civil(1900, 1, 1); days <= ts_days_from_civil(2200, 12, 31); days++) {
        int64_t y;
        unsigned m, d;
        ts_civil_from_days(days, &y, &m, &d);
        struct tm tm = {.tm_year = (int)y - 1900, .tm_mon = (int)m - 1, .tm_mday = (int)d};
        if ((int64_t)timegm(&tm) != days * 86400 || ts_days_from_civil(y, m, d) != days)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(accepted_and_refused_shapes)
{
    static const char *const good[] = {
        "2026-01-17T10:30:00Z",           "2026-01-17t10:30:00z",           "2026-01-17T10:30:00.5Z",
        "2026-01-17T10:30:00.123456789Z", "2026-01-17T10:30:00+01:00",      "2026-01-17T10:30:00-23:59",
        "2024-02-29T00:00:00Z",           "0001-01-01T00:00:00Z",           "0001-01-01T00:00:00-01:00",
        "9999-12-31T23:59:59Z",           "9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59+01:00",
        "2000-02-29T23:59:59+23:59",
    };
    static const char *const bad[] = {
        "",
        "2026-01-17",
        "2026-01-17T10:30Z",
        "2026-01-17T10:30:00",
        "2026-01-17 10:30:00Z",
        "2026-01-17T24:00:00Z",
        "2026-01-17T10:60:00Z",
        "2026-01-17T10:30:60Z", /* leap second */
        "2026-02-29T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01", /* year 0 in UTC */
        "9999-12-31T23:59:59-00:01", /* year 10000 in UTC */
        "10000-01-01T00:00:00Z",
        "-001-01-01T00:00:00Z",
        "2026-01-17T10:30:00+24:00",
        "2026-01-17T10:30:00+01:60",
        "2026-01-17T10:30:00+0100",
        "2026-01-17T10:30:00+01",
        "2026-01-17T10:30:00.Z",
        "2026-01-17T10:30:00.1234567890Z",
        "2026-01-17T10:30:00ZZ",
        "2026-01-17T10:30:00 Z",
        "infinity",
        "2026-1-17T10:30:00Z",
        "２０２６-01-17T10:30:00Z",
        "2026-01-17T10:30:00UTC",
        "2026-01-17T1a:30:00Z",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!parses(good[i]))
            printf("  refused %s\n", good[i]);
        CHECK(parses(good[i]));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parses(bad[i]))
            printf("  accepted %s\n", bad[i]);
        CHECK(!parses(bad[i]));
    }
}

TEST(offsets_normalise_to_utc_and_fractions_truncate)
{
    static const struct {
        const char *in, *micro, *sec;
    } cases[] = {
        {"2026-01-17T10:30:00+01:00", "2026-01-17T09:30:00Z", "2026-01-17T09:30:00Z"},
        {"2026-01-17T00:30:00+01:00", "2026-01-16T23:30:00Z", "2026-01-16T23:30:00Z"},
        {"2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00Z", "2027-01-01T00:30:00Z"},
        {"2024-02-28T23:00:00-02:00", "2024-02-29T01:00:00Z", "2024-02-29T01:00:00Z"},
        {"0001-01-01T00:30:00+00:30", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
        {"9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59Z"},
        {"1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000Z", "1969-12-31T23:59:59Z"},
        {"2026-01-17T10:30:00.000000Z", "2026-01-17T10:30:00Z", "2026-01-17T10:30:00Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ts_t t;
        char out[TS_TEXT_MAX];
        CHECK(ts_parse_rfc3339(cases[i].in, strlen(cases[i].in), &t));
        size_t n = ts_format(t, true, out);
        CHECK_STRN(out, n, cases[i].micro);
        n = ts_format(t, false, out);
        CHECK_STRN(out, n, cases[i].sec);
    }
}

TEST(round_trip_property)
{
    /* every instant format writes parses back to itself, from the first to the last second */
    uint64_t x = 88172645463325252ull;
    size_t bad = 0;
    const int64_t lo = -62135596800LL, span = 253402300799LL - lo;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ts_t t = {lo + (int64_t)(x % (uint64_t)(span + 1)), (int32_t)(x >> 40) % 1000000};
        char out[TS_TEXT_MAX], pg[40];
        size_t n = ts_format(t, true, out);
        ts_t back, back_pg;
        if (!ts_parse_rfc3339(out, n, &back) || back.sec != t.sec || back.usec != t.usec)
            bad++;
        /* PostgreSQL's spelling of the same instant parses to it too */
        memcpy(pg, out, 19);
        pg[10] = ' ';
        int k = t.usec ? snprintf(pg + 19, 21, ".%06d+00", (int)t.usec) : snprintf(pg + 19, 21, "+00");
        if (!ts_parse_pg(pg, (size_t)(19 + k), &back_pg) || back_pg.sec != t.sec || back_pg.usec != t.usec)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    ts_t t;
    CHECK(!ts_parse_pg("10000-01-01 00:00:00+00", 23, &t));
    CHECK(!ts_parse_pg("0001-12-31 23:00:00+00 BC", 25, &t));
    CHECK(!ts_parse_pg("infinity", 8, &t));
    CHECK(!ts_parse_pg("2026-01-17 10:30:00+01", 22, &t));
}

TEST_MAIN()
