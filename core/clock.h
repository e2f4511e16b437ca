/* Clocks: monotonic time read once per loop turn, and the HTTP Date string rebuilt once a second. */
#ifndef CRMD_CORE_CLOCK_H
#define CRMD_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic nanoseconds (vDSO, no syscall). */
static inline uint64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_now_ms(void)
{
    return clock_now_ns() / 1000000u;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT": exactly 29 bytes. */
#define CLOCK_HTTP_DATE_LEN 29

typedef struct {
    time_t sec; /* wall-clock second the string shows */
    char text[CLOCK_HTTP_DATE_LEN + 1];
} clock_http_date_t;

/* Rebuilds d->text when the wall-clock second changed; cheap to call every loop turn. */
void clock_http_date_update(clock_http_date_t *d);

/* Formats an IMF-fixdate for t into out (CLOCK_HTTP_DATE_LEN + 1 bytes). */
void clock_format_http_date(time_t t, char *out);

#endif
