/*
 * Internals of the job runtime shared by its files (jobs/queue.c, worker.c, schedule.c): the
 * scripts every state change goes through and blocking helpers around them.
 */
#ifndef CRMD_JOBS_QUEUE_H
#define CRMD_JOBS_QUEUE_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "redis/redis.h"

#define JOBS_GROUP "crmd"

enum jobs_script {
    JOBS_SCRIPT_ENQUEUE,
    JOBS_SCRIPT_FETCH,
    JOBS_SCRIPT_START,
    JOBS_SCRIPT_FINISH,
    JOBS_SCRIPT_PROMOTE,
    JOBS_SCRIPT_CANCEL,
    JOBS_SCRIPT_RETRY,
    JOBS_SCRIPT_SCHEDULE,
    JOBS_SCRIPT_RENEW,
    JOBS_SCRIPT_COUNT,
};

/* The script (its SHA computed once, on first use from any thread). */
const redis_script_t *jobs_script(enum jobs_script which);

/* Runs a script over a blocking connection (EVALSHA, then EVAL on NOSCRIPT) with no keys and
 * argc arguments (argvlen NULL: C strings). The reply (NULL on a connection error) is the
 * caller's to free. */
redisReply *jobs_eval_sync(redisContext *c, enum jobs_script which, int argc, const char **argv,
                           const size_t *argvlen);

/* Wall-clock milliseconds (job timestamps are shown to clients and shared across machines). */
uint64_t jobs_now_ms(void);

#endif
