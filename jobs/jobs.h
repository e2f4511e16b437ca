/*
 * The background job runtime on Redis (see jobs/queue.c for the queue's design and key layout).
 *
 * Two sides use it:
 * - reactor threads (the HTTP API) enqueue, read, cancel and retry jobs through the asynchronous
 *   per-thread Redis client (redis/redis.h): never a blocking call;
 * - worker threads (`crmd worker`, or `crmd serve --workers N`) fetch and run jobs with their own
 *   blocking hiredis connections. They are never reactor threads.
 *
 * Delivery is at least once: a job whose worker vanished is delivered again once its lease has
 * expired, so every handler must be idempotent (running it twice changes nothing twice).
 */
#ifndef CRMD_JOBS_JOBS_H
#define CRMD_JOBS_JOBS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hist.h"

#define JOBS_PREFIX       "crmd:jobs:"
#define JOBS_ID_MAX       24 /* a job id as text, NUL included */
#define JOBS_TYPE_MAX     32
#define JOBS_MAX_ATTEMPTS 5      /* attempts before a failing job is dead */
#define JOBS_PAYLOAD_MAX  65536  /* bytes of a job's JSON payload */
#define JOBS_RESULT_MAX   262144 /* bytes of a job's JSON result */

enum job_priority { JOB_PRIO_HIGH = 0, JOB_PRIO_NORMAL = 1, JOB_PRIO_COUNT };

/* What a handler returns. */
enum job_outcome {
    JOB_DONE = 0, /* succeeded: the result (job_set_result) is kept */
    JOB_RETRY,    /* failed this time (job_set_error says why): retried with backoff, then dead */
    JOB_FAIL,     /* failed for good (bad payload): status "failed" at once, no retry */
    JOB_HANDBACK, /* interrupted by a drain before it changed anything lasting: delivered again
                     later without counting an attempt */
};

/* A running job, as its handler sees it (worker thread only). */
typedef struct job {
    char id[JOBS_ID_MAX];
    char type[JOBS_TYPE_MAX];
    int64_t org_id;
    const char *payload; /* JSON text, NUL-terminated ("{}" when none was given) */
    size_t payload_len;
    int attempt; /* 1 on the first delivery */
    int max_attempts;
    void *thread_state; /* what jobs_worker_config_t.thread_init returned for this thread */
    void *internal;     /* the runtime's */
} job_t;

typedef int (*job_handler_fn)(job_t *job);

/* Registers the handler of a job type (before jobs_worker_start), with the most jobs of this
 * type one process runs at once (0: as many as it has threads). */
void jobs_register(const char *type, job_handler_fn fn, int concurrency);
/* Whether type has a registered handler. */
bool jobs_type_known(const char *type);
/* The registered types, by index 0 .. jobs_type_count() - 1. */
int jobs_type_count(void);
const char *jobs_type_name(int i);

/* The result (a JSON value, copied) stored with the job when it succeeds or fails. */
void job_set_result(job_t *job, const char *json, size_t len);
/* A message for the job's "error" field (copied; the last one set wins). */
void job_set_error(job_t *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Progress from 0 to 1: written to the job at most every 250 ms (and renews its lease). */
void job_progress(job_t *job, double fraction);
/* True once the worker drains (SIGTERM): a long handler should stop at a safe point and return
 * JOB_HANDBACK (or finish, if that is quicker). */
bool job_stopping(const job_t *job);

/* ---- worker side ---- */

typedef struct jobs_worker_config {
    int threads;                     /* executor threads */
    uint32_t lease_ms;               /* a delivered job not renewed for this long is delivered again */
    uint32_t drain_ms;               /* how long SIGTERM waits for running jobs before handing them back */
    uint32_t keep_ms;                /* finished jobs are kept this long ... */
    uint32_t keep_count;             /* ... and at most this many (dead jobs: 10x both) */
    const char *schedules;           /* "type=SPEC;type=SPEC" (jobs/schedule.h), "" none */
    const char *name;                /* consumer name prefix (host:pid is appended) */
    void *(*thread_init)(int index); /* per executor thread state (may be NULL) */
    void (*thread_fini)(void *state);
} jobs_worker_config_t;

/* Starts the fetcher, executor and scheduler threads of this process. 0, or -1 (logged) when
 * Redis is not configured. Redis being down is not an error: the threads retry. */
int jobs_worker_start(const jobs_worker_config_t *cfg);
/* Stops fetching; waits up to drain_ms for running jobs, hands back those still running, and
 * joins the threads. */
void jobs_worker_stop(void);

/* Counters of this process's workers (any thread). */
typedef struct jobs_worker_stats {
    uint64_t started, succeeded, retried, failed, dead, reclaimed, handed_back;
    uint32_t running, threads;
} jobs_worker_stats_t;
void jobs_worker_stats(jobs_worker_stats_t *out);
/* This process's job durations (microseconds) of registered type i. */
void jobs_worker_duration(int type, hist_t *out);
/* Outcomes of this process's runs of type i, counted by enum below. */
enum {
    JOB_OUTCOME_SUCCEEDED,
    JOB_OUTCOME_RETRY,
    JOB_OUTCOME_FAILED,
    JOB_OUTCOME_DEAD,
    JOB_OUTCOME_HANDBACK,
    JOB_OUTCOME_COUNT
};
void jobs_worker_outcomes(int type, uint64_t out[JOB_OUTCOME_COUNT]);

/* ---- the queue as a whole, for /metrics (jobs/monitor.c) ---- */

#define JOBS_STATES 7 /* queued running retrying succeeded failed dead cancelled */
extern const char *const jobs_state_names[JOBS_STATES];

typedef struct jobs_snapshot {
    bool valid;        /* Redis answered the last poll */
    uint64_t taken_ms; /* wall clock of the last poll */
    int ntypes;
    struct {
        int64_t states[JOBS_STATES]; /* every organization's jobs of this type, by state */
        int64_t depth;               /* entries waiting in its streams, not yet delivered */
        double oldest_s;             /* age of the oldest of them (0 when none) */
    } t[16];
} jobs_snapshot_t;

/* Starts a thread that reads the queue's counts from Redis every 2 s (blocking connection). */
void jobs_monitor_start(void);
void jobs_monitor_stop(void);
/* The last snapshot (any thread). */
void jobs_monitor_snapshot(jobs_snapshot_t *out);

/* ---- blocking client helpers (worker threads, subcommands, tests) ---- */

/* Connects to the configured Redis (REDIS_URL, or the Sentinel master): NULL when it cannot. */
redisContext *jobs_redis_connect(uint32_t timeout_ms);

/* Enqueues a job from a blocking connection (schedules, subcommands). id receives the job id.
 * run_at_ms 0: now. Returns 0, or -1 when Redis refused. */
int jobs_enqueue_sync(redisContext *c, const char *type, int64_t org_id, const char *payload, int priority,
                      uint64_t run_at_ms, char id[JOBS_ID_MAX]);

/* ---- reactor side (asynchronous, on the per-thread client of redis/redis.h) ---- */

typedef struct jobs_enqueue {
    const char *type;
    int64_t org_id;
    const char *payload; /* JSON text ("" or NULL: {}) */
    size_t payload_len;
    int priority;          /* enum job_priority */
    uint64_t run_at_ms;    /* wall clock ms; 0: now */
    const char *idem;      /* Idempotency-Key ("" none): the same key in org_id gives the same job */
    const char *idem_hash; /* digest of the request, to tell a reused key from a replay */
    int max_attempts;      /* 0: JOBS_MAX_ATTEMPTS */
} jobs_enqueue_t;

/* Done: status is a redis_status; id is the job's id; created false when idem found an earlier
 * job, and same_request then says whether that job came from a request with the same digest. */
typedef void (*jobs_enqueue_cb)(void *arg, int status, const char *id, bool created, bool same_request);
void jobs_enqueue_async(const jobs_enqueue_t *e, jobs_enqueue_cb cb, void *arg);

/* The job's fields as a flat HGETALL reply (REDIS_REPLY_ARRAY of name, value, ...; empty when
 * there is no such job). */
typedef void (*jobs_reply_cb)(void *arg, int status, redisReply *reply);
void jobs_get_async(const char *id, jobs_reply_cb cb, void *arg);

/* Cancels a job that has not started: integer reply 1 cancelled, 0 not cancellable (its status
 * is returned in the second element), -1 no such job in org_id. Array reply [code, status]. */
void jobs_cancel_async(const char *id, int64_t org_id, jobs_reply_cb cb, void *arg);
/* Queues a dead or failed job again with its attempts reset: same reply shape as cancel. */
void jobs_retry_async(const char *id, int64_t org_id, jobs_reply_cb cb, void *arg);
/* Per type and state counts and duration sums for org_id (0: every org): HGETALL of the stats
 * hash, fields "type|state" and "type|dur_ms" / "type|dur_n". */
void jobs_stats_async(int64_t org_id, jobs_reply_cb cb, void *arg);

/* The value of field name in a flat HGETALL reply, or NULL. */
const redisReply *jobs_field(const redisReply *r, const char *name);

/* Backoff before attempt n+1 after n failed attempts: full jitter over base * 2^(n-1), capped. */
uint64_t jobs_backoff_ms(int failed_attempts, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd);

#endif
