/* RFC 3339 timestamps; see timestamp.h. Calendar arithmetic after H. Hinnant's public-domain
 * "chrono-compatible low-level date algorithms" (the algorithms, not code). */
#include "core/timestamp.h"

#include <stdio.h>
#include <string.h>

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in Unix seconds. */
#define TS_MIN_SEC (-62135596800LL)
#define TS_MAX_SEC (253402300799LL)

int64_t ts_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void ts_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" at s: a real date of years 0001-9999; sets *days. */
static bool parse_ymd(const char *s, int64_t *days)
{
    int y, m, d;
    if (s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
        return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    int max = mdays[m - 1] + (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
    if (d > max)
        return false;
    *days = ts_days_from_civil(y, (unsigned)m, (unsigned)d);
    return true;
}

bool ts_parse_date(const char *s, size_t n, ts_t *out)
{
    int64_t days;
    if (n != 10 || !parse_ymd(s, &days))
        return false;
    *out = (ts_t){days * 86400, 0};
    return true;
}

/* "HH:MM:SS" at s, and an optional fraction of 1-9 digits after it; returns the bytes used
 * (0 when malformed). */
static size_t parse_hms(const char *s, size_t n, int64_t *sec, int32_t *usec)
{
    int h, mi, se;
    if (n < 8 || s[2] != ':' || s[5] != ':' || !digits(s, 2, &h) || !digits(s + 3, 2, &mi) ||
        !digits(s + 6, 2, &se) || h > 23 || mi > 59 || se > 59)
        return 0;
    *sec = h * 3600 + mi * 60 + se;
    *usec = 0;
    size_t o = 8;
    if (o < n && s[o] == '.') {
        size_t start = ++o;
        int32_t scale = 100000;
        while (o < n && s[o] >= '0' && s[o] <= '9') {
            *usec += (s[o] - '0') * scale; /* digits past the sixth are truncated */
            scale /= 10;
            o++;
        }
        if (o == start || o - start > 9)
            return 0;
    }
    return o;
}

static bool in_range(int64_t sec)
{
    return sec >= TS_MIN_SEC && sec <= TS_MAX_SEC;
}

bool ts_parse_rfc3339(const char *s, size_t n, ts_t *out)
{
    int64_t days, sec;
    int32_t usec;
    if (n < 20 || !parse_ymd(s, &days) || (s[10] != 'T' && s[10] != 't'))
        return false;
    size_t o = 11, k = parse_hms(s + o, n - o, &sec, &usec);
    if (!k)
        return false;
    o += k;
    int64_t offset = 0;
    if (n - o == 1 && (s[o] == 'Z' || s[o] == 'z')) {
        offset = 0;
    } else {
        int oh, om;
        if (n - o != 6 || (s[o] != '+' && s[o] != '-') || s[o + 3] != ':' || !digits(s + o + 1, 2, &oh) ||
            !digits(s + o + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset = (oh * 3600 + om * 60) * (s[o] == '-' ? -1 : 1);
    }
    int64_t t = days * 86400 + sec - offset;
    if (!in_range(t))
        return false;
    *out = (ts_t){t, usec};
    return true;
}

bool ts_parse_pg(const char *s, size_t n, ts_t *out)
{
    int64_t days, sec;
    int32_t usec;
    if (n < 22 || s[10] != ' ' || !parse_ymd(s, &days))
        return false;
    size_t k = parse_hms(s + 11, n - 11, &sec, &usec);
    if (!k || n - 11 - k != 3 || memcmp(s + 11 + k, "+00", 3) != 0)
        return false;
    *out = (ts_t){days * 86400 + sec, usec};
    return in_range(out->sec);
}

size_t ts_format(ts_t t, bool micro, char out[TS_TEXT_MAX])
{
    int64_t days = t.sec >= 0 ? t.sec / 86400 : -((-t.sec + 86399) / 86400);
    int64_t rem = t.sec - days * 86400, y;
    unsigned m, d;
    ts_civil_from_days(days, &y, &m, &d);
    int len = snprintf(out, TS_TEXT_MAX, "%04d-%02u-%02uT%02d:%02d:%02d", (int)y, m, d, (int)(rem / 3600),
                       (int)(rem / 60 % 60), (int)(rem % 60));
    if (micro && t.usec)
        len += snprintf(out + len, (size_t)(TS_TEXT_MAX - len), ".%06d", (int)t.usec);
    out[len++] = 'Z';
    out[len] = '\0';
    return (size_t)len;
}
