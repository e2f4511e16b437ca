/*
 * The queue as a whole, for /metrics: a thread polls Redis every JOBS_MONITOR_MS over its own
 * blocking connection (so the admin listener never waits on Redis) and publishes a snapshot:
 * jobs by type and state (the counts every state change keeps in crmd:jobs:stats:all), and
 * per type the entries not yet delivered and the age of the oldest (from XINFO GROUPS and the
 * first undelivered entry's id, which is its enqueue time).
 */
#include "jobs/jobs.h"
#include "jobs/queue.h"
#include "core/common.h"
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOBS_MONITOR_MS 2000

const char *const jobs_state_names[JOBS_STATES] = {"queued", "running", "retrying", "succeeded",
                                                   "failed", "dead",    "cancelled"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static jobs_snapshot_t snap;
static pthread_t thread;
static bool running, stopping;

/* Undelivered entries of one stream and the enqueue time (ms) of the oldest, or 0. */
static int stream_waiting(redisContext *c, const char *stream, int64_t *depth, uint64_t *oldest_ms)
{
    redisReply *r = redisCommand(c, "XINFO GROUPS %s", stream);
    if (!r)
        return -1;
    char last[64] = "";
    int64_t lag = -1;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t g = 0; g < r->elements; g++) {
            const redisReply *e = r->element[g];
            const redisReply *name = jobs_field(e, "name");
            if (!name || name->type != REDIS_REPLY_STRING || strcmp(name->str, JOBS_GROUP) != 0)
                continue;
            const redisReply *l = jobs_field(e, "last-delivered-id");
            if (l && l->type == REDIS_REPLY_STRING)
                snprintf(last, sizeof(last), "%s", l->str);
            const redisReply *lg = jobs_field(e, "lag");
            if (lg && lg->type == REDIS_REPLY_INTEGER)
                lag = lg->integer;
        }
    freeReplyObject(r);
    if (!last[0]) { /* no group yet: every entry waits */
        r = redisCommand(c, "XLEN %s", stream);
        if (!r)
            return -1;
        lag = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        snprintf(last, sizeof(last), "0-0");
    }
    r = redisCommand(c, "XRANGE %s (%s + COUNT 1", stream, last);
    if (!r)
        return -1;
    uint64_t first = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements >= 1)
        first = strtoull(r->element[0]->element[0]->str, NULL, 10);
    freeReplyObject(r);
    if (lag < 0) /* lag unknown (entries deleted past the last delivery): count them */
        lag = first ? 1 : 0;
    *depth += lag;
    if (first && (!*oldest_ms || first < *oldest_ms))
        *oldest_ms = first;
    return 0;
}

static bool poll_once(redisContext *c, jobs_snapshot_t *s)
{
    memset(s, 0, sizeof(*s));
    s->ntypes = jobs_type_count() < 16 ? jobs_type_count() : 16;
    redisReply *r = redisCommand(c, "HGETALL " JOBS_PREFIX "stats:all");
    if (!r)
        return false;
    uint64_t now = jobs_now_ms();
    for (int t = 0; t < s->ntypes; t++) {
        for (int k = 0; k < JOBS_STATES; k++) {
            char f[64];
            snprintf(f, sizeof(f), "%s|%s", jobs_type_name(t), jobs_state_names[k]);
            const redisReply *v = jobs_field(r, f);
            int64_t n = v && v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
            s->t[t].states[k] = n > 0 ? n : 0;
        }
    }
    freeReplyObject(r);
    for (int t = 0; t < s->ntypes; t++) {
        uint64_t oldest = 0;
        for (int p = 0; p < JOB_PRIO_COUNT; p++) {
            char stream[96];
            snprintf(stream, sizeof(stream), JOBS_PREFIX "q:%.31s:%d", jobs_type_name(t), p);
            if (stream_waiting(c, stream, &s->t[t].depth, &oldest) != 0)
                return false;
        }
        s->t[t].oldest_s = oldest && oldest < now ? (double)(now - oldest) / 1000.0 : 0;
    }
    s->valid = true;
    s->taken_ms = now;
    return true;
}

static void *monitor_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "crmd-jmon");
    redisContext *c = NULL;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        pthread_mutex_unlock(&lock);
        if (!c)
            c = jobs_redis_connect(1000);
        jobs_snapshot_t s;
        bool ok = c && poll_once(c, &s);
        if (!ok && c) {
            redisFree(c);
            c = NULL;
        }
        pthread_mutex_lock(&lock);
        if (ok)
            snap = s;
        else
            snap.valid = false;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += JOBS_MONITOR_MS / 1000;
        if (!stopping)
            pthread_cond_timedwait(&cond, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
    if (c)
        redisFree(c);
    log_thread_free();
    return NULL;
}

void jobs_monitor_start(void)
{
    if (running)
        return;
    stopping = false;
    if (pthread_create(&thread, NULL, monitor_main, NULL) != 0)
        die("pthread_create: jobs monitor");
    running = true;
}

void jobs_monitor_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    running = false;
}

void jobs_monitor_snapshot(jobs_snapshot_t *out)
{
    pthread_mutex_lock(&lock);
    *out = snap;
    pthread_mutex_unlock(&lock);
}
