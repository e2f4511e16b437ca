/*
 * Job workers: per process one fetcher thread, one completer thread and N executor threads,
 * each with its own blocking Redis connection (none of them is a reactor, so blocking is right
 * here). Redis round trips are per batch, not per job:
 *
 * The fetcher owns the traffic that concerns the whole process. Each turn it
 *   - fires due schedules (jobs/schedule.h) and moves due delayed jobs into their streams;
 *   - reclaims, with XAUTOCLAIM, entries whose consumer stopped renewing them (a dead worker);
 *   - renews the leases of every entry this process holds, with one script;
 *   - reads and starts new jobs for the free executors in one script (XREADGROUP inside it):
 *     high priority first, then normal, each stream at most what its job type's concurrency
 *     leaves; when there is nothing it blocks in one XREADGROUP over every stream (woken the
 *     moment a job is added) and starts what that returns.
 * Executors take started jobs (high priority first, then oldest), run the handler and hand
 * the outcome to the completer, which records every outcome waiting in one script (ack, state,
 * retry backoff, trimming). A job's consumer is the process, so any thread of it may ack.
 *
 * Drain (jobs_worker_stop): no new reads; jobs held but not begun are handed back at once (a
 * new stream entry another worker can take now, the attempt not counted); running handlers
 * see job_stopping() and may hand back; after drain_ms the rest stay in the group's pending
 * list and are reclaimed by another worker once their lease runs out.
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
    /* the started job */
    int64_t org_id;
    char *payload;
    size_t payload_len;
    int attempt, max_attempts;
} held_t;

/* An outcome waiting for the completer. */
typedef struct done {
    struct done *next;
    int type, prio;
    char sid[SID_MAX];
    char id[JOBS_ID_MAX];
    const char *outcome;
    char *result;
    size_t result_len;
    char error[512];
    uint64_t backoff_ms;
} done_t;

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
    pthread_t fetcher, completer;
    pthread_cond_t done_cond; /* outcomes queued, or the executors ended */
    done_t *done_head, **done_tail;
    int done_count;
    bool completer_stop;
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

/* Holds a job the fetcher started (from a fetch or start script reply, 8 values at r[i]). */
static held_t *held_add_started(int type, int prio, const redisReply *const *v)
{
    for (int i = 0; i < HELD_MAX; i++) {
        held_t *h = &W.held[i];
        if (h->used)
            continue;
        memset(h, 0, sizeof(*h));
        h->used = true;
        h->type = type;
        h->prio = prio;
        h->seq = ++W.seq;
        snprintf(h->sid, sizeof(h->sid), "%s", v[1]->str);
        snprintf(h->id, sizeof(h->id), "%s", v[2]->str);
        h->org_id = strtoll(v[4]->str, NULL, 10);
        h->payload = xmalloc(v[5]->len + 1);
        memcpy(h->payload, v[5]->str, v[5]->len);
        h->payload[v[5]->len] = '\0';
        h->payload_len = v[5]->len;
        h->attempt = atoi(v[6]->str);
        h->max_attempts = v[7]->type == REDIS_REPLY_STRING ? atoi(v[7]->str) : 0;
        if (h->max_attempts < 1)
            h->max_attempts = JOBS_MAX_ATTEMPTS;
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
    free(h->payload);
    h->payload = NULL;
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

/* How many more jobs of type t the fetcher may take now, out of free slots. */
static int type_room(int t, int free_slots)
{
    if (!types[t].concurrency)
        return free_slots;
    int room = types[t].concurrency - types[t].held;
    return room < free_slots ? room : free_slots;
}

/* The next job an executor may run: high priority first, then fetch order. */
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

/* ---- outcomes, recorded by the completer ---- */

static void done_push(done_t *d)
{
    pthread_mutex_lock(&W.lock);
    d->next = NULL;
    *W.done_tail = d;
    W.done_tail = &d->next;
    W.done_count++;
    pthread_cond_signal(&W.done_cond);
    pthread_mutex_unlock(&W.lock);
}

static done_t *done_new(const held_t *h, const char *outcome)
{
    done_t *d = xcalloc(1, sizeof(*d));
    d->type = h->type;
    d->prio = h->prio;
    memcpy(d->sid, h->sid, sizeof(d->sid));
    memcpy(d->id, h->id, sizeof(d->id));
    d->outcome = outcome;
    return d;
}

#define FINISH_BATCH 64

/* Records a batch of outcomes; false when the connection failed (the caller reconnects and
 * sends the same batch again: recording an outcome twice is refused by the script, since the
 * job is no longer running under that entry). */
static bool finish_batch(redisContext *c, done_t **batch, int n)
{
    const char **argv = xmalloc(sizeof(*argv) * (size_t)(3 + 7 * n));
    size_t *lens = xmalloc(sizeof(*lens) * (size_t)(3 + 7 * n));
    char(*streams)[96] = xmalloc(sizeof(*streams) * (size_t)n);
    char(*backoff)[24] = xmalloc(sizeof(*backoff) * (size_t)n);
    char now[24], keep_ms[24], keep_n[24];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)jobs_now_ms());
    snprintf(keep_ms, sizeof(keep_ms), "%llu", (unsigned long long)W.cfg.keep_ms);
    snprintf(keep_n, sizeof(keep_n), "%u", W.cfg.keep_count);
    int argc = 0;
    argv[argc++] = now;
    argv[argc++] = keep_ms;
    argv[argc++] = keep_n;
    for (int i = 0; i < n; i++) {
        done_t *d = batch[i];
        stream_name(streams[i], sizeof(streams[i]), d->type, d->prio);
        snprintf(backoff[i], sizeof(backoff[i]), "%llu", (unsigned long long)d->backoff_ms);
        argv[argc++] = d->id;
        argv[argc++] = d->sid;
        argv[argc++] = streams[i];
        argv[argc++] = d->outcome;
        argv[argc++] = d->result ? d->result : "";
        argv[argc++] = d->error;
        argv[argc++] = backoff[i];
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < n; i++)
        lens[3 + 7 * i + 4] = batch[i]->result ? batch[i]->result_len : 0;
    redisReply *r = jobs_eval_sync(c, JOBS_SCRIPT_FINISH, argc, argv, lens);
    bool ok = r != NULL;
    if (r && r->type == REDIS_REPLY_ERROR) /* a script error is not cured by sending it again */
        log_fields(LOG_ERROR, "job finish script failed", "error", r->str, NULL);
    if (r)
        freeReplyObject(r);
    free(argv);
    free(lens);
    free(streams);
    free(backoff);
    return ok;
}

static void *complete_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "crmd-jdone");
    redisContext *c = NULL;
    done_t *batch[FINISH_BATCH];
    for (;;) {
        pthread_mutex_lock(&W.lock);
        while (!W.done_head && !W.completer_stop)
            pthread_cond_wait(&W.done_cond, &W.lock);
        if (!W.done_head) {
            pthread_mutex_unlock(&W.lock);
            break;
        }
        int n = 0;
        while (W.done_head && n < FINISH_BATCH) {
            batch[n++] = W.done_head;
            W.done_head = W.done_head->next;
            W.done_count--;
        }
        if (!W.done_head)
            W.done_tail = &W.done_head;
        pthread_mutex_unlock(&W.lock);
        for (int attempt = 0;; attempt++) {
            if (!c)
                c = connect_retry("crmd-jdone", false);
            if (finish_batch(c, batch, n))
                break;
            redisFree(c);
            c = NULL;
            if (W.completer_stop && attempt >= 3) {
                /* left pending in Redis: reclaimed and run again after the lease */
                log_fields(LOG_WARN, "job outcomes not recorded before exit", "#jobs", (int64_t)n, NULL);
                break;
            }
            sleep_ms(100u << (attempt < 4 ? attempt : 4));
        }
        for (int i = 0; i < n; i++) {
            free(batch[i]->result);
            free(batch[i]);
        }
    }
    if (c)
        redisFree(c);
    log_thread_free();
    return NULL;
}

/* ---- handler API ---- */

typedef struct {
    redisContext *c; /* for progress */
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
    if (!x->c && !(x->c = jobs_redis_connect(1000)))
        return; /* progress is advisory */
    char key[64], val[16];
    snprintf(key, sizeof(key), JOBS_PREFIX "job:%s", job->id);
    snprintf(val, sizeof(val), "%.3f", fraction);
    redisReply *r = redisCommand(x->c, "HSET %s progress %s", key, val);
    if (r)
        freeReplyObject(r);
    else {
        redisFree(x->c);
        x->c = NULL;
    }
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

static void run_one(exec_t *x, held_t *h, void *state)
{
    free(x->result);
    x->result = NULL;
    x->result_len = 0;
    x->error[0] = '\0';
    x->last_progress_ms = 0;
    job_t job;
    memset(&job, 0, sizeof(job));
    snprintf(job.id, sizeof(job.id), "%s", h->id);
    snprintf(job.type, sizeof(job.type), "%s", types[h->type].name);
    job.org_id = h->org_id;
    job.payload = h->payload;
    job.payload_len = h->payload_len;
    job.attempt = h->attempt;
    job.max_attempts = h->max_attempts;
    job.thread_state = state;
    job.internal = x;

    atomic_fetch_add(&W.st_started, 1);
    atomic_fetch_add(&W.st_running, 1);
    uint64_t t0_ns = clock_now_ns();
    int outcome;
    if (job.attempt > job.max_attempts) {
        /* its workers keep vanishing mid-job: do not run it again */
        job_set_error(&job, "delivered %d times without finishing (its workers stopped)", job.attempt - 1);
        outcome = JOB_RETRY;
        job.attempt = job.max_attempts;
    } else {
        outcome = types[h->type].fn(&job);
    }
    uint64_t dur_us = (clock_now_ns() - t0_ns) / 1000;
    atomic_fetch_sub(&W.st_running, 1);
    const char *out = outcome_name(outcome, job.attempt, job.max_attempts);
    if (outcome != JOB_DONE && !x->error[0])
        job_set_error(&job, "the %s handler failed", job.type);
    done_t *d = done_new(h, out);
    if (strcmp(out, "retry") == 0)
        d->backoff_ms =
            jobs_backoff_ms(job.attempt, (uint64_t)g_config.job_backoff_ms, BACKOFF_CAP_MS, rnd64());
    d->result = x->result;
    d->result_len = x->result_len;
    x->result = NULL;
    memcpy(d->error, x->error, sizeof(d->error));
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
               "outcome", out, "#attempt", (int64_t)job.attempt, "#dur_ms", (int64_t)(dur_us / 1000), "error",
               outcome == JOB_DONE ? "" : x->error, NULL);
    done_push(d); /* last: the completer frees d */
}

static void *exec_main(void *arg)
{
    int index = (int)(intptr_t)arg;
    char who[16];
    snprintf(who, sizeof(who), "crmd-j%d", index);
    pthread_setname_np(pthread_self(), who);
    void *state = W.cfg.thread_init ? W.cfg.thread_init(index) : NULL;
    exec_t x;
    memset(&x, 0, sizeof(x));
    pthread_mutex_lock(&W.lock);
    for (;;) {
        held_t *h;
        while (!(h = pick_runnable()) && !atomic_load(&W.stopping))
            pthread_cond_wait(&W.cond, &W.lock);
        if (!h)
            break;
        h->running = true;
        types[h->type].running++;
        pthread_mutex_unlock(&W.lock);

        run_one(&x, h, state);

        pthread_mutex_lock(&W.lock);
        held_remove(h);
        pthread_cond_broadcast(&W.cond); /* the fetcher waits for free slots on it too */
    }
    pthread_mutex_unlock(&W.lock);
    free(x.result);
    if (x.c)
        redisFree(x.c);
    if (W.cfg.thread_fini)
        W.cfg.thread_fini(state);
    log_thread_free();
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

/* The type and priority of stream name "crmd:jobs:q:<type>:<prio>", or -1. */
static int stream_type(const char *name, int *prio)
{
    size_t pl = strlen(JOBS_PREFIX "q:");
    if (strncmp(name, JOBS_PREFIX "q:", pl) != 0)
        return -1;
    name += pl;
    const char *colon = strrchr(name, ':');
    if (!colon)
        return -1;
    *prio = atoi(colon + 1) == 0 ? JOB_PRIO_HIGH : JOB_PRIO_NORMAL;
    return type_index(name, (size_t)(colon - name));
}

/* Holds the jobs of a fetch or start script reply (8 values each). Returns how many. */
static int take_started(const redisReply *r)
{
    int n = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return 0;
    pthread_mutex_lock(&W.lock);
    for (size_t i = 0; i + 8 <= r->elements; i += 8) {
        const redisReply *const *v = (const redisReply *const *)&r->element[i];
        bool ok = true;
        for (int k = 0; k < 7; k++)
            ok &= v[k]->type == REDIS_REPLY_STRING;
        int prio, t = ok ? stream_type(v[0]->str, &prio) : -1;
        if (t < 0 || held_has(t, v[1]->str))
            continue; /* renewed already, or a type this build does not know */
        if (held_add_started(t, prio, v))
            n++;
    }
    if (n)
        pthread_cond_broadcast(&W.cond);
    pthread_mutex_unlock(&W.lock);
    return n;
}

/* Starts the entries of an XREADGROUP / XAUTOCLAIM block of stream (type t, priority p).
 * Returns how many jobs it took, or -1 on a connection error. */
static int start_entries(redisContext *c, int t, int p, const redisReply *entries)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0)
        return 0;
    char stream[96], now[24];
    stream_name(stream, sizeof(stream), t, p);
    snprintf(now, sizeof(now), "%llu", (unsigned long long)jobs_now_ms());
    const char **argv = xmalloc(sizeof(*argv) * (2 + 3 * entries->elements));
    int argc = 0;
    argv[argc++] = W.consumer;
    argv[argc++] = now;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const redisReply *f = e->element[1];
        if (!f || f->type != REDIS_REPLY_ARRAY || f->elements < 2 ||
            f->element[1]->type != REDIS_REPLY_STRING)
            continue;
        argv[argc++] = stream;
        argv[argc++] = e->element[0]->str;
        argv[argc++] = f->element[1]->str;
    }
    int got = 0;
    if (argc > 2) {
        redisReply *r = jobs_eval_sync(c, JOBS_SCRIPT_START, argc, argv, NULL);
        if (!r)
            got = -1;
        else {
            if (r->type == REDIS_REPLY_ERROR)
                log_fields(LOG_ERROR, "job start script failed", "error", r->str, NULL);
            got = take_started(r);
            freeReplyObject(r);
        }
    }
    free(argv);
    return got;
}

/* Reads and starts up to free_slots new jobs, high priority first (one script). Returns how
 * many, or -1 on a connection error. */
static int fetch(redisContext *c, int free_slots)
{
    char names[TYPES_MAX * JOB_PRIO_COUNT][96], counts[TYPES_MAX * JOB_PRIO_COUNT][16], now[24], max[16];
    const char *argv[3 + 2 * TYPES_MAX * JOB_PRIO_COUNT];
    int argc = 0, ns = 0;
    snprintf(now, sizeof(now), "%llu", (unsigned long long)jobs_now_ms());
    snprintf(max, sizeof(max), "%d", free_slots);
    argv[argc++] = W.consumer;
    argv[argc++] = now;
    argv[argc++] = max;
    pthread_mutex_lock(&W.lock);
    for (int p = 0; p < JOB_PRIO_COUNT; p++)
        for (int t = 0; t < ntypes; t++) {
            int room = type_room(t, free_slots);
            if (room <= 0)
                continue;
            stream_name(names[ns], sizeof(names[0]), t, p);
            snprintf(counts[ns], sizeof(counts[0]), "%d", room);
            argv[argc++] = names[ns];
            argv[argc++] = counts[ns];
            ns++;
        }
    pthread_mutex_unlock(&W.lock);
    if (!ns)
        return 0;
    redisReply *r = jobs_eval_sync(c, JOBS_SCRIPT_FETCH, argc, argv, NULL);
    if (!r)
        return -1;
    int got = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        log_fields(LOG_WARN, "job fetch refused by Redis", "error", r->str, NULL);
        if (strstr(r->str, "NOGROUP"))
            create_groups(c); /* Redis lost its data: make the groups again */
    } else {
        got = take_started(r);
    }
    freeReplyObject(r);
    return got;
}

/* Waits up to block_ms in one XREADGROUP over every stream with room, then starts what came.
 * Returns how many jobs it took, or -1 on a connection error. */
static int wait_new(redisContext *c, int block_ms)
{
    const char *argv[8 + 2 * TYPES_MAX * JOB_PRIO_COUNT];
    char names[TYPES_MAX * JOB_PRIO_COUNT][96];
    char blk[16];
    int argc = 0, ns = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = JOBS_GROUP;
    argv[argc++] = W.consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = "1";
    snprintf(blk, sizeof(blk), "%d", block_ms);
    argv[argc++] = "BLOCK";
    argv[argc++] = blk;
    argv[argc++] = "STREAMS";
    pthread_mutex_lock(&W.lock);
    for (int p = 0; p < JOB_PRIO_COUNT; p++)
        for (int t = 0; t < ntypes; t++)
            if (type_has_room(t, true))
                stream_name(names[ns++], sizeof(names[0]), t, p);
    pthread_mutex_unlock(&W.lock);
    if (!ns) {
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
        for (size_t i = 0; i < r->elements && got >= 0; i++) {
            const redisReply *s = r->element[i];
            int p, t = s->type == REDIS_REPLY_ARRAY && s->elements == 2 ? stream_type(s->element[0]->str, &p)
                                                                        : -1;
            if (t >= 0) {
                int n = start_entries(c, t, p, s->element[1]);
                got = n < 0 ? -1 : got + n;
            }
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
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
                int n = start_entries(c, t, p, r->element[1]);
                if (n < 0) {
                    freeReplyObject(r);
                    return -1;
                }
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

/* Removes the stream entries every consumer is done with (the finish script acks without
 * deleting, which would cost Redis more per job than this once a second): everything before
 * the oldest pending entry, or up to the last delivered one when none is pending. */
static int trim_streams(redisContext *c)
{
    char s[96];
    for (int t = 0; t < ntypes; t++)
        for (int p = 0; p < JOB_PRIO_COUNT; p++) {
            stream_name(s, sizeof(s), t, p);
            char minid[64] = "";
            redisReply *r = redisCommand(c, "XPENDING %s " JOBS_GROUP, s);
            if (!r)
                return -1;
            if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
                r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer > 0 &&
                r->element[1]->type == REDIS_REPLY_STRING)
                snprintf(minid, sizeof(minid), "%s", r->element[1]->str);
            bool ok = r->type == REDIS_REPLY_ARRAY;
            freeReplyObject(r);
            if (!ok)
                continue; /* no group yet */
            if (!minid[0]) {
                r = redisCommand(c, "XINFO GROUPS %s", s);
                if (!r)
                    return -1;
                for (size_t g = 0; r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
                    const redisReply *name = jobs_field(r->element[g], "name");
                    const redisReply *last = jobs_field(r->element[g], "last-delivered-id");
                    unsigned long long ms, seq;
                    if (name && name->type == REDIS_REPLY_STRING && strcmp(name->str, JOBS_GROUP) == 0 &&
                        last && last->type == REDIS_REPLY_STRING &&
                        sscanf(last->str, "%llu-%llu", &ms, &seq) == 2 && (ms || seq))
                        snprintf(minid, sizeof(minid), "%llu-%llu", ms, seq + 1);
                }
                freeReplyObject(r);
            }
            if (!minid[0])
                continue;
            r = redisCommand(c, "XTRIM %s MINID %s", s, minid);
            if (!r)
                return -1;
            freeReplyObject(r);
        }
    return 0;
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

/* Hands back the jobs held but not begun (at drain): queued again at once, the attempt not
 * counted, so another worker takes them now. */
static void release_unstarted(void)
{
    pthread_mutex_lock(&W.lock);
    for (int i = 0; i < HELD_MAX; i++) {
        held_t *h = &W.held[i];
        if (!h->used || h->running)
            continue;
        done_t *d = done_new(h, "handback");
        held_remove(h);
        d->next = NULL;
        *W.done_tail = d;
        W.done_tail = &d->next;
        W.done_count++;
        atomic_fetch_add(&W.st_handed_back, 1);
    }
    pthread_cond_signal(&W.done_cond);
    pthread_mutex_unlock(&W.lock);
}

static void *fetch_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "crmd-jfetch");
    redisContext *c = NULL;
    uint64_t next_sched = 0, next_promote = 0, next_reclaim = 0, next_renew = 0, next_trim = 0;
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
        if (!lost && now >= next_trim) {
            lost |= trim_streams(c) < 0;
            next_trim = now + 1000;
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
            int got = fetch(c, free_slots);
            if (got == 0) {
                uint64_t wake = next_sched < next_promote ? next_sched : next_promote;
                now = jobs_now_ms();
                int64_t block = wake > now ? (int64_t)(wake - now) : 1;
                if (block > 1000)
                    block = 1000;
                got = wait_new(c, (int)block);
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
    release_unstarted();
    if (c)
        redisFree(c);
    log_thread_free();
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
    W.done_head = NULL;
    W.done_tail = &W.done_head;
    W.completer_stop = false;
    if (pthread_create(&W.completer, NULL, complete_main, NULL) != 0)
        die("pthread_create: %s", strerror(errno));
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
    W.completer_stop = true; /* it records what is queued, then ends */
    pthread_cond_broadcast(&W.done_cond);
    pthread_mutex_unlock(&W.lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    if (pthread_timedjoin_np(W.completer, NULL, &until) != 0)
        log_warn("job outcomes still being recorded at exit: those jobs run again after their lease");
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
