/*
 * Repeatable jobs: "TYPE=SPEC;TYPE=SPEC" (JOB_SCHEDULES; "none" for none). SPEC is one of
 *   @every N[s|m|h|d]   fixed periods aligned on the Unix epoch (UTC)
 *   @hourly, @daily     the same as @every 1h, @every 1d
 *   @start              once each time a worker process starts
 *   M H DOM MON DOW     5-field cron in UTC: *, N, N-M, each with an optional step /S, and lists of them; DOW
 * 0-7 (0 and 7 are Sunday); when both DOM and DOW are restricted, either matching fires (as in Vixie cron) A
 * period fires at most once however many workers and instances run: the worker that first records the period
 * in Redis (crmd:jobs:sched:<TYPE>, one script) enqueues the job.
 */
#ifndef CRMD_JOBS_SCHEDULE_H
#define CRMD_JOBS_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHEDULES_MAX 16

typedef struct schedule {
    char type[32];
    enum { SCHED_EVERY, SCHED_CRON, SCHED_START } kind;
    uint64_t every_s;
    uint64_t minute, hour, dom, month, dow; /* cron: bit i set when value i matches */
    bool dom_star, dow_star;
} schedule_t;

/* Parses a schedule list into out (at most SCHEDULES_MAX); false with a reason in err. */
bool schedules_parse(const char *text, schedule_t *out, int *n, char *err, size_t errlen);

/* Whether a cron schedule fires in the minute starting at unix time t (seconds, UTC). */
bool schedule_cron_matches(const schedule_t *s, int64_t t);

/* The period a schedule is in at unix time t: for @every the period number; for cron the
 * minute (t / 60) when it matches that minute, else -1; @start: -1. */
int64_t schedule_slot(const schedule_t *s, int64_t t);

#endif
