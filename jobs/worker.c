/*
 * Job workers: one fetcher thread and N executor threads per process, each with its own
 * blocking Redis connection (none of them is a reactor, so blocking is right here).
 *
 * The fetcher owns the traffic that concerns the whole process. Each turn it
 *   - fires due schedules (jobs/schedule.h) and moves due delayed jobs into their streams;
 *   - reclaims, with XAUTOCLAIM, entries whose consumer stopped renewing them (a dead worker);
 *   - renews the leases of every entry this process holds, with one script;
 *   - reads new entries for the free executors: high priority first, then normal, each
 *     stream only while its job type is under its concurrency, and when there is nothing it
 *     blocks in one XREADGROUP over every stream (woken the moment a job is added).
 * Executors take held entries (high priority first, then oldest, skipping types at their
 * concurrency), mark the job running (one script, which also skips cancelled jobs and stale
 * entries), run the handler and record the outcome (one script: ack, state, retry backoff,
 * trimming). A job's consumer is the process, so any thread of it may ack.
 *
 * Drain (jobs_worker_stop): no new reads; entries held but not started are handed back at
 * once (a new stream entry another worker can take now); running handlers see job_stopping()
 * and may hand back; after drain_ms the rest stay in the group's pending list and are
 * reclaimed by another worker once their lease runs out.
 */
#include "jobs/jobs.h"
#include "jobs/queue.h"
#include "jobs/schedule.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/config.h"
#include "core/hist.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define TYPES_MAX      16
#define HELD_MAX       1024
#define SID_MAX        48
#define BACKOFF_CAP_MS (3600 * 1000ull)

typedef struct {
    char name[JOBS_TYPE_MAX];
    job_handler_fn fn;
    int concurrency; /* 0: unlimited */
    int held;        /* entries of this type held (queued locally or running), under lock */
    int running;
} jtype_t;

static jtype_t types[TYPES_MAX];
static int ntypes;

typedef struct {
    bool used, running;
    int type, prio;
    uint64_t seq; /* fetch order */
    char sid[SID_MAX];
    char id[JOBS_ID_MAX];
} held_t;

static struct {
    jobs_worker_config_t cfg;
    char consumer[160];
    pthread_mutex_t lock;
    pthread_cond_t cond; /* held entries changed, or stopping */
    held_t held[HELD_MAX];
    int nheld;
    uint64_t seq;
    _Atomic bool stopping;
    _Atomic bool started;
    pthread_t fetcher;
    pthread_t *execs;
    _Atomic int execs_alive;
    schedule_t sched[SCHEDULES_MAX];
    int nsched;
    /* stats */
    _Atomic uint64_t st_started, st_succeeded, st_retried, st_failed, st_dead, st_reclaimed, st_handed_back;
    _Atomic uint32_t st_running;
    _Atomic uint64_t st_outcomes[TYPES_MAX][JOB_OUTCOME_COUNT];
    pthread_mutex_t hist_lock;
    hist_t dur_us[TYPES_MAX];
} W = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .cond = PTHREAD_COND_INITIALIZER,
       .hist_lock = PTHREAD_MUTEX_INITIALIZER};

void jobs_register(const char *type, job_handler_fn fn, int concurrency)
{
    for (int i = 0; i < ntypes; i++)
        if (strcmp(types[i].name, type) == 0) {
            types[i].fn = fn;
            types[i].concurrency = concurrency;
            return;
        }
    if (ntypes >= TYPES_MAX || strlen(type) >= JOBS_TYPE_MAX)
        die("jobs_register: too many job types or name too long: %s", type);
    snprintf(types[ntypes].name, sizeof(types[ntypes].name), "%s", type);
    types[ntypes].fn = fn;
    types[ntypes].concurrency = concurrency;
    ntypes++;
}

bool jobs_type_known(const char *type)
{
    for (int i = 0; i < ntypes; i++)
        if (strcmp(types[i].name, type) == 0)
            return true;
    return false;
}

int jobs_type_count(void)
{
    return ntypes;
}

const char *jobs_type_name(int i)
{
    return i >= 0 && i < ntypes ? types[i].name : NULL;
}

static int type_index(const char *name, size_t n)
{
    for (int i = 0; i < ntypes; i++)
        if (strlen(types[i].name) == n && memcmp(types[i].name, name, n) == 0)
            return i;
    return -1;
}

static void stream_name(char *out, size_t n, int type, int prio)
{
    snprintf(out, n, JOBS_PREFIX "q:%.31s:%d", types[type].name, prio);
}

static uint64_t rnd64(void)
{
    uint64_t r;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = (uint64_t)jobs_now_ms() * 0x9e3779b97f4a7c15ull;
    return r;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Connects with backoff until it works or the worker stops; NULL only when stopping. */
static redisContext *connect_retry(const char *who, bool give_up_when_stopping)
{
    uint64_t backoff = 100;
    bool logged = false;
    for (;;) {
        redisContext *c = jobs_redis_connect(2000);
        if (c) {
            if (logged)
                log_fields(LOG_INFO, "job worker reconnected to Redis", "thread", who, NULL);
            return c;
        }
        if (give_up_when_stopping && atomic_load(&W.stopping))
            return NULL;
        if (!logged) {
            log_fields(LOG_WARN, "job worker cannot reach Redis; retrying", "thread", who, NULL);
            logged = true;
        }
        sleep_ms(backoff / 2 + rnd64() % (backoff / 2 + 1));
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

/* ---- held entries (under W.lock) ---- */

static held_t *held_add(int type, int prio, const char *sid, const char *id)
{
    for (int i = 0; i < HELD_MAX; i++) {
        held_t *h = &W.held[i];
        if (h->used)
            continue;
        /* an entry delivered twice (reclaimed from ourselves) is held once */
        memset(h, 0, sizeof(*h));
        h->used = true;
        h->type = type;
        h->prio = prio;
        h->seq = ++W.seq;
        snprintf(h->sid, sizeof(h->sid), "%s", sid);
        snprintf(h->id, sizeof(h->id), "%s", id);
        W.nheld++;
        types[type].held++;
        return h;
    }
    return NULL;
}

static bool held_has(int type, const char *sid)
{
    for (int i = 0; i < HELD_MAX; i++)
        if (W.held[i].used && W.held[i].type == type && strcmp(W.held[i].sid, sid) == 0)
            return true;
    return false;
}

static void held_remove(held_t *h)
{
    types[h->type].held--;
    if (h->running)
        types[h->type].running--;
    h->used = false;
    W.nheld--;
}

static bool type_has_room(int t, bool for_fetch)
{
    if (!types[t].concurrency)
        return true;
    return (for_fetch ? types[t].held : types[t].running) < types[t].concurrency;
}

/* The next entry an executor may start: high priority first, then fetch order. */
static held_t *pick_runnable(void)
{
    held_t *best = NULL;
    for (int i = 0; i < HELD_MAX; i++) {
        held_t *h = &W.held[i];
        if (!h->used || h->running || !type_has_room(h->type, false))
            continue;
        if (!best || h->prio < best->prio || (h->prio == best->prio && h->seq < best->seq))
            best = h;
    }
    return best;
}

/* ---- handler API ---- */

typedef struct {
    redisContext *c;
    const held_t *h;
    char stream[96];
    char *result;
    size_t result_len;
    char error[512];
    uint64_t last_progress_ms;
} exec_t;

void job_set_result(job_t *job, const char *json, size_t len)
{
    exec_t *x = job->internal;
    if (len > JOBS_RESULT_MAX) {
        job_set_error(job, "result of %zu bytes is over the %d byte limit", len, JOBS_RESULT_MAX);
        return;
    }
    free(x->result);
    x->result = xmalloc(len + 1);
    memcpy(x->result, json, len);
    x->result[len] = '\0';
    x->result_len = len;
}

void job_set_error(job_t *job, const char *fmt, ...)
{
    exec_t *x = job->internal;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->error, sizeof(x->error), fmt, ap);
    va_end(ap);
}

void job_progress(job_t *job, double fraction)
{
    exec_t *x = job->internal;
    uint64_t now = jobs_now_ms();
    if (now - x->last_progress_ms < 250 && fraction < 1)
        return;
    x->last_progress_ms = now;
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    char key[64], val[16];
    snprintf(key, sizeof(key), JOBS_PREFIX "job:%s", job->id);
    snprintf(val, sizeof(val), "%.3f", fraction);
    redisReply *r = redisCommand(x->c, "HSET %s progress %s", key, val);
    if (r)
        freeReplyObject(r);
}

bool job_stopping(const job_t *job)
{
    (void)job;
    return atomic_load(&W.stopping);
}

/* ---- executors ---- */

static const char *outcome_name(int outcome, int attempt, int max_attempts)
{
    switch (outcome) {
    case JOB_DONE:
        return "succeeded";
    case JOB_FAIL:
        return "failed";
    case JOB_HANDBACK:
        return "handback";
    default:
        return attempt >= max_attempts ? "dead" : "retry";
    }
}

/* Records the outcome; retried over reconnects for a while (the entry stays pending meanwhile,
 * so a lost outcome means a re-delivery, never a lost job). */
static bool finish(exec_t *x, const char *outcome, uint64_t backoff_ms, const char *who)
{
    char now[24], backoff[24], keep_ms[24], keep_n[24];
    snprintf(backoff, sizeof(backoff), "%llu", (unsigned long long)backoff_ms);
    snprintf(keep_ms, sizeof(keep_ms), "%llu", (unsigned long long)W.cfg.keep_ms);
    snprintf(keep_n, sizeof(keep_n), "%u", W.cfg.keep_count);
    for (int attempt = 0; attempt < 20; attempt++) {
        if (!x->c)
            x->c = connect_retry(who, true);
        if (!x->c)
            return false;
        snprintf(now, sizeof(now), "%llu", (unsigned long long)jobs_now_ms());
        const char *argv[10] = {x->h->id, x->h->sid, x->stream, outcome, x->result ? x->result : "",
                                x->error, now,       backoff,   keep_ms, keep_n};
        size_t lens[10];
        for (int i = 0; i < 10; i++)
            lens[i] = strlen(argv[i]);
        lens[4] = x->result ? x->result_len : 0;
        redisReply *r = jobs_eval_sync(x->c, JOBS_SCRIPT_FINISH, 10, argv, lens);
        if (r && r->type == REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            return true;
        }
        if (r && r->type == REDIS_REPLY_ERROR) {
            log_fields(LOG_ERROR, "job finish script failed", "job", x->h->id, "error", r->str, NULL);
            freeReplyObject(r);
            return false;
        }
        if (r)
            freeReplyObject(r);
        redisFree(x->c);
        x->c = NULL;
        sleep_ms(100u << (attempt < 5 ? attempt : 5));
    }
    return false;
}

static void run_one(exec_t *x, held_t *h, void *state, const char *who)
{
    x->h = h;
    stream_name(x->stream, sizeof(x->stream), h->type, h->prio);
    free(x->result);
    x->result = NULL;
    x->result_len = 0;
    x->error[0] = '\0';
    x->last_progress_ms = 0;
    if (!x->c)
        x->c = connect_retry(who, true);
    if (!x->c)
        return;
    char now[24];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)jobs_now_ms());
    const char *argv[4] = {h->id, h->sid, W.consumer, now};
    redisReply *r = jobs_eval_sync(x->c, JOBS_SCRIPT_START, 4, argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* left pending: re-delivered after the lease */
        log_fields(LOG_WARN, "job start failed", "job", h->id, "error",
                   r && r->str ? r->str : "connection lost", NULL);
        if (r)
            freeReplyObject(r);
        else {
            redisFree(x->c);
            x->c = NULL;
        }
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        freeReplyObject(r);
        finish(x, "skip", 0, who); /* cancelled, or a stale entry: just ack it */
        return;
    }
    job_t job;
    memset(&job, 0, sizeof(job));
    snprintf(job.id, sizeof(job.id), "%s", h->id);
    snprintf(job.type, sizeof(job.type), "%s", types[h->type].name);
    job.org_id = strtoll(r->element[1]->str, NULL, 10);
    char *payload = xmalloc(r->element[2]->len + 1);
    memcpy(payload, r->element[2]->str, r->element[2]->len);
    payload[r->element[2]->len] = '\0';
    job.payload = payload;
    job.payload_len = r->element[2]->len;
    job.attempt = atoi(r->element[3]->str);
    job.max_attempts = atoi(r->element[4]->str);
    if (job.max_attempts < 1)
        job.max_attempts = JOBS_MAX_ATTEMPTS;
    job.thread_state = state;
    job.internal = x;
    freeReplyObject(r);

    atomic_fetch_add(&W.st_started, 1);
    atomic_fetch_add(&W.st_running, 1);
    uint64_t t0 = jobs_now_ms(), t0_ns = clock_now_ns();
    int outcome;
    if (job.attempt > job.max_attempts) {
        /* its workers keep vanishing mid-job: do not run it again */
        job_set_error(&job, "delivered %d times without finishing (its workers stopped)", job.attempt - 1);
        outcome = JOB_RETRY;
        job.attempt = job.max_attempts;
    } else {
        outcome = types[h->type].fn(&job);
    }
    uint64_t dur = jobs_now_ms() - t0, dur_us = (clock_now_ns() - t0_ns) / 1000;
    atomic_fetch_sub(&W.st_running, 1);
    const char *out = outcome_name(outcome, job.attempt, job.max_attempts);
    uint64_t backoff = 0;
    if (strcmp(out, "retry") == 0)
        backoff = jobs_backoff_ms(job.attempt, (uint64_t)g_config.job_backoff_ms, BACKOFF_CAP_MS, rnd64());
    if (outcome != JOB_DONE && !x->error[0])
        job_set_error(&job, "the %s handler failed", job.type);
    bool ok = finish(x, out, backoff, who);
    pthread_mutex_lock(&W.hist_lock);
    hist_record(&W.dur_us[h->type], dur_us);
    pthread_mutex_unlock(&W.hist_lock);
    static const char *const names[JOB_OUTCOME_COUNT] = {"succeeded", "retry", "failed", "dead", "handback"};
    for (int i = 0; i < JOB_OUTCOME_COUNT; i++)
        if (strcmp(out, names[i]) == 0)
            atomic_fetch_add(&W.st_outcomes[h->type][i], 1);
    if (strcmp(out, "succeeded") == 0)
        atomic_fetch_add(&W.st_succeeded, 1);
    else if (strcmp(out, "retry") == 0)
        atomic_fetch_add(&W.st_retried, 1);
    else if (strcmp(out, "failed") == 0)
        atomic_fetch_add(&W.st_failed, 1);
    else if (strcmp(out, "dead") == 0)
        atomic_fetch_add(&W.st_dead, 1);
    else
        atomic_fetch_add(&W.st_handed_back, 1);
    log_fields(outcome == JOB_DONE ? LOG_INFO : LOG_WARN, "job finished", "job", job.id, "type", job.type,
               "outcome", out, "#attempt", (int64_t)job.attempt, "#dur_ms", (int64_t)dur, "error",
               outcome == JOB_DONE ? "" : x->error, "recorded", ok ? "yes" : "no", NULL);
    free(payload);
}

typedef struct {
    int index;
} exec_arg_t;

static void *exec_main(void *arg)
{
    int index = (int)(intptr_t)arg;
    char who[16];
    snprintf(who, sizeof(who), "crmd-j%d", index);
    pthread_setname_np(pthread_self(), who);
    void *state = W.cfg.thread_init ? W.cfg.thread_init(index) : NULL;
    exec_t x;
    memset(&x, 0, sizeof(x));
    for (;;) {
        pthread_mutex_lock(&W.lock);
        held_t *h;
        while (!(h = pick_runnable()) && !atomic_load(&W.stopping))
            pthread_cond_wait(&W.cond, &W.lock);
        if (!h) {
            pthread_mutex_unlock(&W.lock);
            break;
        }
        h->running = true;
        types[h->type].running++;
        pthread_mutex_unlock(&W.lock);

        run_one(&x, h, state, who);

        pthread_mutex_lock(&W.lock);
        held_remove(h);
        pthread_cond_broadcast(&W.cond);
        pthread_mutex_unlock(&W.lock);
    }
    free(x.result);
    if (x.c)
        redisFree(x.c);
    if (W.cfg.thread_fini)
        W.cfg.thread_fini(state);
    atomic_fetch_sub(&W.execs_alive, 1);
    pthread_mutex_lock(&W.lock);
    pthread_cond_broadcast(&W.cond);
    pthread_mutex_unlock(&W.lock);
    return NULL;
}

/* ---- fetcher ---- */

static void create_groups(redisContext *c)
{
    char s[96];
    for (int t = 0; t < ntypes; t++)
        for (int p = 0; p < JOB_PRIO_COUNT; p++) {
            stream_name(s, sizeof(s), t, p);
            redisReply *r = redisCommand(c, "XGROUP CREATE %s " JOBS_GROUP " 0 MKSTREAM", s);
            if (r)
                freeReplyObject(r);
        }
}

/* Takes the entries of an XREADGROUP / XAUTOCLAIM stream block. Returns how many were new. */
static int take_entries(int type, int prio, const redisReply *entries)
{
    int n = 0;
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return 0;
    pthread_mutex_lock(&W.lock);
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *sid = e->element[0]->str;
        const redisReply *f = e->element[1];
        const char *id = NULL;
        if (f && f->type == REDIS_REPLY_ARRAY)
            for (size_t k = 0; k + 1 < f->elements; k += 2)
                if (f->element[k]->type == REDIS_REPLY_STRING && strcmp(f->element[k]->str, "id") == 0)
                    id = f->element[k + 1]->str;
        if (!id || held_has(type, sid))
            continue;
        if (held_add(type, prio, sid, id))
            n++;
    }
    if (n)
        pthread_cond_broadcast(&W.cond);
    pthread_mutex_unlock(&W.lock);
    return n;
}

/* XREADGROUP over the streams of priority prio (-1: both) whose type has room. block_ms < 0:
 * no BLOCK. Returns entries taken, or -1 on a connection error. */
static int read_new(redisContext *c, int prio, int count, int block_ms)
{
    const char *argv[8 + 2 * TYPES_MAX * JOB_PRIO_COUNT];
    char names[TYPES_MAX * JOB_PRIO_COUNT][96];
    char cnt[16], blk[16];
    int argc = 0, ns = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = JOBS_GROUP;
    argv[argc++] = W.consumer;
    snprintf(cnt, sizeof(cnt), "%d", count);
    argv[argc++] = "COUNT";
    argv[argc++] = cnt;
    if (block_ms >= 0) {
        snprintf(blk, sizeof(blk), "%d", block_ms);
        argv[argc++] = "BLOCK";
        argv[argc++] = blk;
    }
    argv[argc++] = "STREAMS";
    pthread_mutex_lock(&W.lock);
    for (int p = 0; p < JOB_PRIO_COUNT; p++) {
        if (prio >= 0 && p != prio)
            continue;
        for (int t = 0; t < ntypes; t++)
            if (type_has_room(t, true))
                stream_name(names[ns++], sizeof(names[0]), t, p);
    }
    pthread_mutex_unlock(&W.lock);
    if (!ns) {
        if (block_ms > 0)
            sleep_ms((uint64_t)block_ms);
        return 0;
    }
    for (int i = 0; i < ns; i++)
        argv[argc++] = names[i];
    for (int i = 0; i < ns; i++)
        argv[argc++] = ">";
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r)
        return -1;
    int got = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *s = r->element[i];
            if (s->type != REDIS_REPLY_ARRAY || s->elements != 2)
                continue;
            /* "crmd:jobs:q:<type>:<prio>" */
            const char *name = s->element[0]->str + strlen(JOBS_PREFIX "q:");
            const char *colon = strrchr(name, ':');
            int t = colon ? type_index(name, (size_t)(colon - name)) : -1;
            if (t >= 0)
                got += take_entries(t, atoi(colon + 1), s->element[1]);
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        /* NOGROUP after Redis lost its data: make the groups again */
        log_fields(LOG_WARN, "job fetch refused by Redis", "error", r->str, NULL);
        if (strncmp(r->str, "NOGROUP", 7) == 0)
            create_groups(c);
    }
    freeReplyObject(r);
    return got;
}

static int reclaim(redisContext *c)
{
    char s[96], idle[24];
    snprintf(idle, sizeof(idle), "%u", W.cfg.lease_ms);
    int got = 0;
    for (int t = 0; t < ntypes; t++)
        for (int p = 0; p < JOB_PRIO_COUNT; p++) {
            pthread_mutex_lock(&W.lock);
            int room = HELD_MAX - W.nheld;
            bool ok = type_has_room(t, true);
            pthread_mutex_unlock(&W.lock);
            if (!ok || room < 16)
                continue;
            stream_name(s, sizeof(s), t, p);
            redisReply *r =
                redisCommand(c, "XAUTOCLAIM %s " JOBS_GROUP " %s %s 0-0 COUNT 16", s, W.consumer, idle);
            if (!r)
                return -1;
            if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
                int n = take_entries(t, p, r->element[1]);
                if (n) {
                    atomic_fetch_add(&W.st_reclaimed, (uint64_t)n);
                    log_fields(LOG_WARN, "reclaimed jobs whose worker stopped renewing them", "stream", s,
                               "#jobs", (int64_t)n, NULL);
                }
                got += n;
            }
            freeReplyObject(r);
        }
    return got;
}

static int renew(redisContext *c)
{
    const char *argv[1 + 2 * HELD_MAX];
    char(*names)[96] = xmalloc(sizeof(*names) * HELD_MAX);
    char(*sids)[SID_MAX] = xmalloc(sizeof(*sids) * HELD_MAX);
    int n = 0;
    pthread_mutex_lock(&W.lock);
    for (int i = 0; i < HELD_MAX; i++)
        if (W.held[i].used) {
            stream_name(names[n], sizeof(names[0]), W.held[i].type, W.held[i].prio);
            memcpy(sids[n], W.held[i].sid, SID_MAX);
            n++;
        }
    pthread_mutex_unlock(&W.lock);
    int ret = 0;
    if (n) {
        argv[0] = W.consumer;
        for (int i = 0; i < n; i++) {
            argv[1 + 2 * i] = names[i];
            argv[2 + 2 * i] = sids[i];
        }
        redisReply *r = jobs_eval_sync(c, JOBS_SCRIPT_RENEW, 1 + 2 * n < 60 ? 1 + 2 * n : 59, argv, NULL);
        /* more than 29 entries: the rest in further calls */
        for (int from = 29; r && r->type != REDIS_REPLY_ERROR && from < n; from += 29) {
            freeReplyObject(r);
            int k = n - from < 29 ? n - from : 29;
            const char *av[59];
            av[0] = W.consumer;
            for (int i = 0; i < k; i++) {
                av[1 + 2 * i] = names[from + i];
                av[2 + 2 * i] = sids[from + i];
            }
            r = jobs_eval_sync(c, JOBS_SCRIPT_RENEW, 1 + 2 * k, av, NULL);
        }
        if (!r)
            ret = -1;
        else
            freeReplyObject(r);
    }
    free(names);
    free(sids);
    return ret;
}

/* Moves due delayed jobs into their streams; returns the next due time (0: none), or -1 on a
 * connection error. */
static int64_t promote(redisContext *c, uint64_t now)
{
    char t[24];
    snprintf(t, sizeof(t), "%llu", (unsigned long long)now);
    const char *argv[2] = {t, "500"};
    redisReply *r = jobs_eval_sync(c, JOBS_SCRIPT_PROMOTE, 2, argv, NULL);
    if (!r)
        return -1;
    int64_t next = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        if (r->element[0]->integer >= 500)
            next = (int64_t)now; /* more are due: again at once */
        else if (r->element[1]->integer > 0)
            next = r->element[1]->integer;
    }
    freeReplyObject(r);
    return next;
}

static int64_t sched_last[SCHEDULES_MAX];
static bool sched_started;

static void schedules_tick(redisContext *c, uint64_t now_ms)
{
    int64_t now_s = (int64_t)(now_ms / 1000);
    for (int i = 0; i < W.nsched; i++) {
        const schedule_t *s = &W.sched[i];
        char id[JOBS_ID_MAX];
        if (s->kind == SCHED_START) {
            if (!sched_started && jobs_enqueue_sync(c, s->type, 0, "{}", JOB_PRIO_NORMAL, 0, id) == 0)
                log_fields(LOG_INFO, "scheduled job queued", "type", s->type, "schedule", "@start", "job", id,
                           NULL);
            continue;
        }
        int64_t slot = schedule_slot(s, now_s);
        if (slot < 0 || slot == sched_last[i])
            continue;
        char sl[24], now[24], maxa[16];
        snprintf(sl, sizeof(sl), "%lld", (long long)slot);
        snprintf(now, sizeof(now), "%llu", (unsigned long long)now_ms);
        snprintf(maxa, sizeof(maxa), "%d", JOBS_MAX_ATTEMPTS);
        const char *argv[8] = {s->type, sl, s->type, "0", "{}", "1", now, maxa};
        redisReply *r = jobs_eval_sync(c, JOBS_SCRIPT_SCHEDULE, 8, argv, NULL);
        if (!r)
            return;
        sched_last[i] = slot;
        if (r->type == REDIS_REPLY_STRING)
            log_fields(LOG_INFO, "scheduled job queued", "type", s->type, "job", r->str, "#period",
                       (int64_t)slot, NULL);
        else if (r->type == REDIS_REPLY_ERROR)
            log_fields(LOG_ERROR, "schedule script failed", "type", s->type, "error", r->str, NULL);
        freeReplyObject(r);
    }
    sched_started = true;
}

/* Hands back the entries held but not started (at drain): another worker can take them now. */
static void release_unstarted(redisContext *c)
{
    for (;;) {
        pthread_mutex_lock(&W.lock);
        held_t *h = NULL;
        for (int i = 0; i < HELD_MAX && !h; i++)
            if (W.held[i].used && !W.held[i].running)
                h = &W.held[i];
        if (!h) {
            pthread_mutex_unlock(&W.lock);
            return;
        }
        held_t copy = *h;
        held_remove(h);
        pthread_mutex_unlock(&W.lock);
        if (!c)
            continue; /* reclaimed after the lease instead */
        exec_t x;
        memset(&x, 0, sizeof(x));
        x.c = c;
        x.h = &copy;
        stream_name(x.stream, sizeof(x.stream), copy.type, copy.prio);
        char now[24];
        snprintf(now, sizeof(now), "%llu", (unsigned long long)jobs_now_ms());
        const char *argv[10] = {copy.id, copy.sid, x.stream, "release", "", "", now, "0", "0", "0"};
        redisReply *r = jobs_eval_sync(c, JOBS_SCRIPT_FINISH, 10, argv, NULL);
        if (r)
            freeReplyObject(r);
        atomic_fetch_add(&W.st_handed_back, 1);
    }
}

static void *fetch_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "crmd-jfetch");
    redisContext *c = NULL;
    uint64_t next_sched = 0, next_promote = 0, next_reclaim = 0, next_renew = 0;
    while (!atomic_load(&W.stopping)) {
        if (!c) {
            c = connect_retry("crmd-jfetch", true);
            if (!c)
                break;
            struct timeval tv = {5, 0}; /* above the longest BLOCK */
            redisSetTimeout(c, tv);
            create_groups(c);
        }
        uint64_t now = jobs_now_ms();
        bool lost = false;
        if (now >= next_sched) {
            schedules_tick(c, now);
            next_sched = now - now % 1000 + 1000;
        }
        if (now >= next_promote) {
            int64_t due = promote(c, now);
            lost |= due < 0;
            next_promote = due > 0 && (uint64_t)due < now + 1000 ? (uint64_t)due : now + 1000;
        }
        if (!lost && now >= next_reclaim) {
            lost |= reclaim(c) < 0;
            uint64_t every = W.cfg.lease_ms / 4;
            next_reclaim = now + (every < 250 ? 250 : every);
        }
        if (!lost && now >= next_renew) {
            lost |= renew(c) < 0;
            next_renew = now + W.cfg.lease_ms / 3;
        }
        int free_slots = 0;
        if (!lost) {
            pthread_mutex_lock(&W.lock);
            free_slots = W.cfg.threads - W.nheld;
            if (free_slots <= 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 100 * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&W.cond, &W.lock, &ts);
            }
            pthread_mutex_unlock(&W.lock);
        }
        if (!lost && free_slots > 0) {
            int got = read_new(c, JOB_PRIO_HIGH, free_slots, -1);
            if (got == 0)
                got = read_new(c, JOB_PRIO_NORMAL, free_slots, -1);
            if (got == 0) {
                uint64_t wake = next_sched < next_promote ? next_sched : next_promote;
                now = jobs_now_ms();
                int64_t block = wake > now ? (int64_t)(wake - now) : 1;
                if (block > 1000)
                    block = 1000;
                got = read_new(c, -1, 1, (int)block);
            }
            lost |= got < 0;
        }
        if (lost) {
            log_warn("job fetcher lost its Redis connection; reconnecting");
            redisFree(c);
            c = NULL;
            sleep_ms(100);
        }
    }
    if (!c)
        c = jobs_redis_connect(1000);
    release_unstarted(c);
    if (c)
        redisFree(c);
    return NULL;
}

int jobs_worker_start(const jobs_worker_config_t *cfg)
{
    if (!(g_config.redis_url && *g_config.redis_url) &&
        !(g_config.redis_sentinels && *g_config.redis_sentinels)) {
        log_error("job workers need Redis: set REDIS_URL or REDIS_SENTINELS");
        return -1;
    }
    W.cfg = *cfg;
    if (W.cfg.threads < 1)
        W.cfg.threads = 1;
    if (W.cfg.threads > HELD_MAX / 2)
        W.cfg.threads = HELD_MAX / 2;
    char err[256];
    if (!schedules_parse(cfg->schedules, W.sched, &W.nsched, err, sizeof(err))) {
        log_fields(LOG_ERROR, "bad JOB_SCHEDULES", "reason", err, NULL);
        return -1;
    }
    for (int i = 0; i < W.nsched; i++)
        if (!jobs_type_known(W.sched[i].type)) {
            log_fields(LOG_ERROR, "JOB_SCHEDULES names an unknown job type", "type", W.sched[i].type, NULL);
            return -1;
        }
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(W.consumer, sizeof(W.consumer), "%s:%s:%d", cfg->name && *cfg->name ? cfg->name : "crmd", host,
             (int)getpid());
    atomic_store(&W.stopping, false);
    W.execs = xcalloc((size_t)W.cfg.threads, sizeof(pthread_t));
    atomic_store(&W.execs_alive, W.cfg.threads);
    for (int i = 0; i < W.cfg.threads; i++)
        if (pthread_create(&W.execs[i], NULL, exec_main, (void *)(intptr_t)i) != 0)
            die("pthread_create: %s", strerror(errno));
    if (pthread_create(&W.fetcher, NULL, fetch_main, NULL) != 0)
        die("pthread_create: %s", strerror(errno));
    atomic_store(&W.started, true);
    log_fields(LOG_INFO, "job workers started", "consumer", W.consumer, "#threads", (int64_t)W.cfg.threads,
               "#lease_ms", (int64_t)W.cfg.lease_ms, "schedules", cfg->schedules ? cfg->schedules : "", NULL);
    return 0;
}

void jobs_worker_stop(void)
{
    if (!atomic_load(&W.started))
        return;
    atomic_store(&W.stopping, true);
    pthread_mutex_lock(&W.lock);
    pthread_cond_broadcast(&W.cond);
    pthread_mutex_unlock(&W.lock);
    pthread_join(W.fetcher, NULL);
    uint64_t end = jobs_now_ms() + W.cfg.drain_ms;
    pthread_mutex_lock(&W.lock);
    while (atomic_load(&W.execs_alive) > 0 && jobs_now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&W.cond, &W.lock, &ts);
    }
    int alive = atomic_load(&W.execs_alive);
    pthread_mutex_unlock(&W.lock);
    if (alive > 0) {
        log_fields(LOG_WARN, "job drain timeout: running jobs are left to be reclaimed after their lease",
                   "#running", (int64_t)alive, NULL);
        return; /* the process exits; their entries stay pending */
    }
    for (int i = 0; i < W.cfg.threads; i++)
        pthread_join(W.execs[i], NULL);
    free(W.execs);
    W.execs = NULL;
    atomic_store(&W.started, false);
    log_info("job workers stopped");
}

void jobs_worker_stats(jobs_worker_stats_t *out)
{
    out->started = atomic_load(&W.st_started);
    out->succeeded = atomic_load(&W.st_succeeded);
    out->retried = atomic_load(&W.st_retried);
    out->failed = atomic_load(&W.st_failed);
    out->dead = atomic_load(&W.st_dead);
    out->reclaimed = atomic_load(&W.st_reclaimed);
    out->handed_back = atomic_load(&W.st_handed_back);
    out->running = atomic_load(&W.st_running);
    out->threads = atomic_load(&W.started) ? (uint32_t)W.cfg.threads : 0;
}

void jobs_worker_duration(int type, hist_t *out)
{
    memset(out, 0, sizeof(*out));
    if (type < 0 || type >= ntypes)
        return;
    pthread_mutex_lock(&W.hist_lock);
    *out = W.dur_us[type];
    pthread_mutex_unlock(&W.hist_lock);
}

void jobs_worker_outcomes(int type, uint64_t out[JOB_OUTCOME_COUNT])
{
    for (int i = 0; i < JOB_OUTCOME_COUNT; i++)
        out[i] = type >= 0 && type < ntypes ? atomic_load(&W.st_outcomes[type][i]) : 0;
}
