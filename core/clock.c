#include "core/clock.h"

#include <stdio.h>
#include <string.h>

void clock_format_http_date(time_t t, char *out)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    char tmp[64];
    gmtime_r(&t, &tm);
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday % 100,
             months[tm.tm_mon], (tm.tm_year + 1900) % 10000, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100);
    memcpy(out, tmp, CLOCK_HTTP_DATE_LEN);
    out[CLOCK_HTTP_DATE_LEN] = '\0';
}

void clock_http_date_update(clock_http_date_t *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == d->sec && d->text[0])
        return;
    d->sec = ts.tv_sec;
    clock_format_http_date(ts.tv_sec, d->text);
}
