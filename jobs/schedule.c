/*
 * Schedule specs and cron matching (see schedule.h). Cron fields become bit masks once, so a
 * match is five bit tests.
 */
#include "jobs/schedule.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool parse_uint(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (s >= end || !isdigit((unsigned char)*s))
        return false;
    while (s < end && isdigit((unsigned char)*s)) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > 1000000000)
            return false;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

/* One cron field (a list of *, N or N-M, each with an optional /STEP) over lo..hi into a mask. */
static bool cron_field(const char *s, const char *end, int lo, int hi, uint64_t *mask, bool *star)
{
    *mask = 0;
    *star = false;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        uint64_t a, b, step = 1;
        const char *p = s;
        if (p < e && *p == '*') {
            a = (uint64_t)lo;
            b = (uint64_t)hi;
            p++;
            if (p == e && !comma && s == end - 1)
                *star = true;
        } else {
            if (!parse_uint(&p, e, &a))
                return false;
            b = a;
            if (p < e && *p == '-') {
                p++;
                if (!parse_uint(&p, e, &b))
                    return false;
            }
        }
        if (p < e && *p == '/') {
            p++;
            if (!parse_uint(&p, e, &step) || step == 0)
                return false;
            if (a == b && s[0] != '*')
                b = (uint64_t)hi; /* "5/15": from 5 to the end */
        }
        if (p != e || a < (uint64_t)lo || b > (uint64_t)hi || a > b)
            return false;
        for (uint64_t v = a; v <= b; v += step)
            *mask |= 1ull << v;
        s = comma ? comma + 1 : end;
        if (comma && s == end)
            return false;
    }
    return *mask != 0;
}

static bool parse_cron(const char *s, size_t n, schedule_t *out)
{
    const char *f[5], *fe[5];
    const char *p = s, *end = s + n;
    for (int i = 0; i < 5; i++) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            return false;
        f[i] = p;
        while (p < end && *p != ' ')
            p++;
        fe[i] = p;
    }
    while (p < end && *p == ' ')
        p++;
    if (p != end)
        return false;
    bool star;
    if (!cron_field(f[0], fe[0], 0, 59, &out->minute, &star) ||
        !cron_field(f[1], fe[1], 0, 23, &out->hour, &star) ||
        !cron_field(f[2], fe[2], 1, 31, &out->dom, &out->dom_star) ||
        !cron_field(f[3], fe[3], 1, 12, &out->month, &star) ||
        !cron_field(f[4], fe[4], 0, 7, &out->dow, &out->dow_star))
        return false;
    if (out->dow & (1ull << 7))
        out->dow |= 1; /* 7 is Sunday too */
    out->kind = SCHED_CRON;
    return true;
}

static bool parse_spec(const char *s, size_t n, schedule_t *out)
{
    if (n == 6 && memcmp(s, "@start", 6) == 0) {
        out->kind = SCHED_START;
        return true;
    }
    if (n == 7 && memcmp(s, "@hourly", 7) == 0) {
        out->kind = SCHED_EVERY;
        out->every_s = 3600;
        return true;
    }
    if (n == 6 && memcmp(s, "@daily", 6) == 0) {
        out->kind = SCHED_EVERY;
        out->every_s = 86400;
        return true;
    }
    if (n > 7 && memcmp(s, "@every ", 7) == 0) {
        const char *p = s + 7, *end = s + n;
        uint64_t v;
        if (!parse_uint(&p, end, &v) || v == 0 || end - p != 1)
            return false;
        static const struct {
            char unit;
            uint64_t s;
        } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (*p == units[i].unit) {
                out->kind = SCHED_EVERY;
                out->every_s = v * units[i].s;
                return out->every_s <= 366 * 86400ull;
            }
        return false;
    }
    return parse_cron(s, n, out);
}

bool schedules_parse(const char *text, schedule_t *out, int *n, char *err, size_t errlen)
{
    *n = 0;
    const char *p = text && strcmp(text, "none") != 0 ? text : "";
    while (*p) {
        const char *semi = strchr(p, ';');
        const char *e = semi ? semi : p + strlen(p);
        while (p < e && *p == ' ')
            p++;
        const char *end = e;
        while (end > p && end[-1] == ' ')
            end--;
        if (end > p) {
            const char *eq = memchr(p, '=', (size_t)(end - p));
            if (!eq || eq == p || eq - p >= (long)sizeof(out->type)) {
                snprintf(err, errlen, "schedule '%.*s': want TYPE=SPEC", (int)(end - p), p);
                return false;
            }
            if (*n >= SCHEDULES_MAX) {
                snprintf(err, errlen, "more than %d schedules", SCHEDULES_MAX);
                return false;
            }
            schedule_t *s = &out[*n];
            memset(s, 0, sizeof(*s));
            memcpy(s->type, p, (size_t)(eq - p));
            if (!parse_spec(eq + 1, (size_t)(end - eq - 1), s)) {
                snprintf(err, errlen,
                         "schedule '%.*s': bad SPEC (want @every N[smhd], @hourly, @daily, @start or a "
                         "5-field cron)",
                         (int)(end - p), p);
                return false;
            }
            for (int i = 0; i < *n; i++)
                if (strcmp(out[i].type, s->type) == 0) {
                    snprintf(err, errlen, "schedule for %s given twice", s->type);
                    return false;
                }
            (*n)++;
        }
        p = semi ? semi + 1 : e;
    }
    return true;
}

bool schedule_cron_matches(const schedule_t *s, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    if (!(s->minute & (1ull << tm.tm_min)) || !(s->hour & (1ull << tm.tm_hour)) ||
        !(s->month & (1ull << (tm.tm_mon + 1))))
        return false;
    bool dom = (s->dom >> tm.tm_mday) & 1, dow = (s->dow >> tm.tm_wday) & 1;
    if (s->dom_star || s->dow_star)
        return dom && dow;
    return dom || dow;
}

int64_t schedule_slot(const schedule_t *s, int64_t t)
{
    switch (s->kind) {
    case SCHED_EVERY:
        return t / (int64_t)s->every_s;
    case SCHED_CRON:
        return schedule_cron_matches(s, t - t % 60) ? t / 60 : -1;
    default:
        return -1;
    }
}
