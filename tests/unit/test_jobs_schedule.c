#include "jobs/jobs.h"
#include "jobs/schedule.h"
#include "test.h"

#include <stdint.h>
#include <time.h>

/* Unix time of a UTC civil time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm);
}

static schedule_t one(const char *text)
{
    schedule_t s[SCHEDULES_MAX];
    int n = 0;
    char err[256];
    if (!schedules_parse(text, s, &n, err, sizeof(err)) || n != 1) {
        printf("  parse failed: %s: %s\n", text, err);
        memset(&s[0], 0, sizeof(s[0]));
    }
    return s[0];
}

TEST(every_valid_spec_parses)
{
    static const char *const ok[] = {
        "a=@start",
        "a=@hourly",
        "a=@daily",
        "a=@every 1s",
        "a=@every 5m",
        "a=@every 2h",
        "a=@every 366d",
        "a=* * * * *",
        "a=0 3 * * *",
        "a=*/15 * * * *",
        "a=0-59/10 0,12 1-31 1-12 0-7",
        "a=5/15 * * * 1-5",
        "a=0 0 29 2 *",
        "a=59 23 31 12 7",
        " a=@daily ; b=@hourly ",
        "a=@daily;",
        "",
        "none",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        schedule_t s[SCHEDULES_MAX];
        int n;
        char err[256];
        if (!schedules_parse(ok[i], s, &n, err, sizeof(err)))
            printf("  refused: '%s': %s\n", ok[i], err);
        CHECK(schedules_parse(ok[i], s, &n, err, sizeof(err)));
    }
}

TEST(every_malformed_spec_is_refused_with_a_reason)
{
    static const char *const bad[] = {
        "a",
        "=@daily",
        "a=",
        "a=@weekly",
        "a=@every",
        "a=@every 0s",
        "a=@every 5",
        "a=@every 5x",
        "a=@every -1m",
        "a=@every 400d",
        "a=60 * * * *",
        "a=* 24 * * *",
        "a=* * 0 * *",
        "a=* * 32 * *",
        "a=* * * 0 *",
        "a=* * * 13 *",
        "a=* * * * 8",
        "a=* * * *",
        "a=* * * * * *",
        "a=*/0 * * * *",
        "a=5-1 * * * *",
        "a=1,,2 * * * *",
        "a=1, * * * *",
        "a=x * * * *",
        "a=@daily;a=@hourly",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=@daily",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        schedule_t s[SCHEDULES_MAX];
        int n;
        char err[256] = "";
        bool ok = schedules_parse(bad[i], s, &n, err, sizeof(err));
        if (ok)
            printf("  accepted: '%s'\n", bad[i]);
        CHECK(!ok);
        CHECK(err[0] != '\0');
    }
}

TEST(cron_matches_like_vixie_cron)
{
    schedule_t s = one("a=30 3 * * *");
    CHECK(schedule_cron_matches(&s, utc(2026, 12, 3, 3, 30)));
    CHECK(!schedule_cron_matches(&s, utc(2026, 12, 3, 3, 31)));
    CHECK(!schedule_cron_matches(&s, utc(2026, 12, 3, 4, 30)));
    s = one("a=*/15 * * * *");
    int hits = 0;
    for (int m = 0; m < 60; m++)
        hits += schedule_cron_matches(&s, utc(2026, 1, 1, 0, m));
    CHECK(hits == 4);
    /* both day fields restricted: either matches (the 13th, or any Friday) */
    s = one("a=0 0 13 * 5");
    CHECK(schedule_cron_matches(&s, utc(2026, 12, 13, 0, 0))); /* a Sunday the 13th */
    CHECK(schedule_cron_matches(&s, utc(2026, 12, 4, 0, 0)));  /* a Friday */
    CHECK(!schedule_cron_matches(&s, utc(2026, 12, 5, 0, 0)));
    /* one restricted: only it */
    s = one("a=0 0 * * 0");
    CHECK(schedule_cron_matches(&s, utc(2026, 12, 6, 0, 0))); /* Sunday */
    CHECK(!schedule_cron_matches(&s, utc(2026, 12, 7, 0, 0)));
    s = one("a=0 0 * * 7");
    CHECK(schedule_cron_matches(&s, utc(2026, 12, 6, 0, 0)));
    s = one("a=0 0 29 2 *");
    CHECK(schedule_cron_matches(&s, utc(2028, 2, 29, 0, 0)));
    CHECK(!schedule_cron_matches(&s, utc(2028, 3, 1, 0, 0)));
    s = one("a=5/20 * * * *");
    CHECK(schedule_cron_matches(&s, utc(2026, 1, 1, 0, 45)));
    CHECK(!schedule_cron_matches(&s, utc(2026, 1, 1, 0, 0)));
}

TEST(slots_change_once_per_period)
{
    schedule_t s = one("a=@every 5m");
    int64_t t0 = utc(2026, 12, 3, 10, 0), changes = 0, last = schedule_slot(&s, t0);
    for (int64_t t = t0; t < t0 + 3600; t++) {
        int64_t slot = schedule_slot(&s, t);
        changes += slot != last;
        last = slot;
    }
    CHECK(changes == 11); /* 10:05 .. 10:55 */
    s = one("a=@daily");
    CHECK(schedule_slot(&s, utc(2026, 12, 3, 23, 59) + 59) + 1 == schedule_slot(&s, utc(2026, 12, 4, 0, 0)));
    s = one("a=0 * * * *");
    CHECK(schedule_slot(&s, utc(2026, 12, 3, 10, 0) + 30) == utc(2026, 12, 3, 10, 0) / 60);
    CHECK(schedule_slot(&s, utc(2026, 12, 3, 10, 1)) == -1);
    s = one("a=@start");
    CHECK(schedule_slot(&s, t0) == -1);
}

TEST(backoff_is_full_jitter_over_a_doubling_ceiling)
{
    CHECK(jobs_backoff_ms(1, 1000, 3600000, 0) == 0);
    for (int n = 1; n <= 40; n++) {
        uint64_t ceiling = 1000;
        for (int i = 1; i < n && ceiling < 3600000; i++)
            ceiling *= 2;
        if (ceiling > 3600000)
            ceiling = 3600000;
        CHECK(jobs_backoff_ms(n, 1000, 3600000, UINT64_MAX) <= ceiling);
        CHECK(jobs_backoff_ms(n, 1000, 3600000, ceiling) == ceiling);
        uint64_t rnd = 0x9e3779b97f4a7c15ull * (uint64_t)n;
        CHECK(jobs_backoff_ms(n, 1000, 3600000, rnd) <= ceiling);
    }
    CHECK(jobs_backoff_ms(0, 100, 1000, 100) == 100);
    CHECK(jobs_backoff_ms(1, 0, 1000, 5) == 0);
}

TEST_MAIN()
