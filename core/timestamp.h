/*
 * The one timestamp type of the API. Requests send RFC 3339 ("2026-01-17T10:30:00Z",
 * "2026-01-17T11:30:00.5+01:00"); responses and SQL get the same instant in UTC with "Z".
 * Every accepted value is an instant PostgreSQL can store and that comes back as RFC 3339:
 * UTC years 0001-9999 after the offset is applied (so "0001-01-01T00:00:00+01:00", which is
 * in year 0, is refused), fractions truncated to microseconds (PostgreSQL's precision; never
 * rounded up into the next second, or year), offsets up to +-23:59 (they never reach
 * PostgreSQL, whose own limit is lower: the text sent is UTC).
 */
#ifndef CRMD_CORE_TIMESTAMP_H
#define CRMD_CORE_TIMESTAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An instant: seconds since 1970-01-01T00:00:00Z and microseconds within the second. */
typedef struct {
    int64_t sec;
    int32_t usec;
} ts_t;

/* Longest text ts_format writes: "YYYY-MM-DDTHH:MM:SS.ffffffZ" and a NUL. */
#define TS_TEXT_MAX 28

/* Parses RFC 3339 date-time (T or t, Z or z or +-HH:MM; seconds 00-59, real calendar dates).
 * False for anything else or an instant outside UTC years 0001-9999. */
bool ts_parse_rfc3339(const char *s, size_t n, ts_t *out);

/* Parses a calendar date "YYYY-MM-DD" as its midnight UTC. */
bool ts_parse_date(const char *s, size_t n, ts_t *out);

/* Parses PostgreSQL's timestamptz output under TimeZone=UTC, DateStyle=ISO
 * ("2026-01-17 10:30:00.123456+00"); false for other shapes (BC, year 10000+, infinity). */
bool ts_parse_pg(const char *s, size_t n, ts_t *out);

/* Writes "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (the fraction only when not zero, with
 * micro=true; never with micro=false) and a NUL; returns the length (20 or 27). */
size_t ts_format(ts_t t, bool micro, char out[TS_TEXT_MAX]);

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (and back). */
int64_t ts_days_from_civil(int64_t y, unsigned m, unsigned d);
void ts_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
