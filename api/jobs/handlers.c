/*
 * The job types' registry and what handlers share (see handlers.h): each executor thread's
 * blocking PostgreSQL connection, cache invalidation from a worker, and the small handlers
 * (refresh_analytics, noop). Import, export and partition maintenance have files of their own.
 */
#include "api/jobs/handlers.h"
#include "cache/tiered.h"
#include "core/common.h"
#include "core/config.h"
#include "core/json_read.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    PGconn *conn;
    redisContext *redis; /* for invalidations */
    int index;
} job_thread_t;

void *api_jobs_thread_init(int index)
{
    job_thread_t *t = xcalloc(1, sizeof(*t));
    t->index = index;
    return t;
}

void api_jobs_thread_fini(void *state)
{
    job_thread_t *t = state;
    if (!t)
        return;
    if (t->conn)
        PQfinish(t->conn);
    if (t->redis)
        redisFree(t->redis);
    free(t);
}

static void silent_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

PGconn *job_pg(job_t *job)
{
    job_thread_t *t = job->thread_state;
    if (t->conn && PQstatus(t->conn) == CONNECTION_OK && PQtransactionStatus(t->conn) == PQTRANS_IDLE)
        return t->conn;
    if (t->conn) {
        /* a broken connection, or one a handler left inside a transaction */
        PQfinish(t->conn);
        t->conn = NULL;
    }
    const char *url = g_config.database_url;
    if (!url || !*url) {
        job_set_error(job, "DATABASE_URL is not set");
        return NULL;
    }
    const char *keys[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
    const char *vals[] = {url, "5", "crmd worker", "-c TimeZone=UTC -c DateStyle=ISO", NULL};
    if (!g_config.db_prepared)
        keys[3] = NULL; /* PgBouncer refuses startup options */
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        job_set_error(job, "database unreachable: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, silent_notice, NULL);
    if (!g_config.db_prepared) {
        PGresult *r = PQexec(c, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'");
        PQclear(r);
    }
    t->conn = c;
    return c;
}

PGresult *job_pg_exec(job_t *job, const char *what, const char *sql, int nparams, const char *const *values)
{
    PGconn *c = job_pg(job);
    if (!c)
        return NULL;
    PGresult *r = PQexecParams(c, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *msg = PQresultErrorMessage(r);
    job_set_error(job, "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
    PQclear(r);
    return NULL;
}

void job_invalidate(job_t *job, const char *tag)
{
    job_thread_t *t = job->thread_state;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!t->redis)
            t->redis = jobs_redis_connect(2000);
        if (!t->redis)
            break;
        if (tcache_invalidate_sync(t->redis, tag) == 0)
            return;
        redisFree(t->redis);
        t->redis = NULL;
    }
    log_fields(LOG_WARN, "job could not invalidate a cache tag (entries expire by TTL)", "job", job->id,
               "tag", tag, NULL);
}

/* ---- refresh_analytics ---- */

/*
 * The aggregates (dashboard, pipeline stats, company analytics) are computed by SQL over the
 * tables at read time, so what can go stale is the planner's picture of those tables after
 * imports and bulk writes: the job refreshes it with ANALYZE and reports the live row counts.
 */
int job_refresh_analytics(job_t *job)
{
    static const char *const tables[] = {"companies", "contacts", "deals", "activities", "tasks"};
    char sql[128];
    for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
        snprintf(sql, sizeof(sql), "ANALYZE %s", tables[i]);
        PGresult *r = job_pg_exec(job, "ANALYZE", sql, 0, NULL);
        if (!r)
            return JOB_RETRY;
        PQclear(r);
        job_progress(job, (double)(i + 1) / (double)(ARRAY_LEN(tables) + 1));
    }
    PGresult *r =
        job_pg_exec(job, "row counts",
                    "SELECT coalesce(json_object_agg(relname, n_live_tup ORDER BY relname), '{}')::text"
                    " FROM pg_stat_user_tables WHERE relname = ANY"
                    " ('{companies,contacts,deals,activities,tasks}')",
                    0, NULL);
    if (!r)
        return JOB_RETRY;
    char out[1024];
    int n = snprintf(out, sizeof(out), "{\"analyzed\":%zu,\"live_rows\":%s}", ARRAY_LEN(tables),
                     PQntuples(r) ? PQgetvalue(r, 0, 0) : "{}");
    PQclear(r);
    if (n > 0 && (size_t)n < sizeof(out))
        job_set_result(job, out, (size_t)n);
    return JOB_DONE;
}

/* ---- warm_cache ---- */

/*
 * Every instance's L1 from L2 with the most used keys: the cache counts each L1 miss of a
 * request in crmd:hot (shared by the instances), and the message "*warm" on the invalidation
 * channel makes each instance look up the top TCACHE_WARM_MAX there and keep the hits
 * (cache/tiered.c). An entry no longer in L2 is not recomputed here: its next request fills it.
 * The counts are trimmed to the 10,000 most used.
 */
int job_warm_cache(job_t *job)
{
    job_thread_t *t = job->thread_state;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!t->redis)
            t->redis = jobs_redis_connect(2000);
        if (!t->redis)
            break;
        redisReply *a = redisCommand(t->redis, "ZREMRANGEBYRANK " TCACHE_HOT_KEY " 0 -10001");
        redisReply *b = a ? redisCommand(t->redis, "ZCARD " TCACHE_HOT_KEY) : NULL;
        redisReply *c = b ? redisCommand(t->redis, "PUBLISH " TCACHE_CHANNEL " *warm") : NULL;
        bool ok = c && c->type == REDIS_REPLY_INTEGER && b->type == REDIS_REPLY_INTEGER;
        char out[128];
        int n = ok ? snprintf(out, sizeof(out), "{\"instances\":%lld,\"hot_keys\":%lld,\"looked_up\":%lld}",
                              c->integer, b->integer,
                              b->integer < TCACHE_WARM_MAX ? b->integer : (long long)TCACHE_WARM_MAX)
                   : 0;
        if (a)
            freeReplyObject(a);
        if (b)
            freeReplyObject(b);
        if (c)
            freeReplyObject(c);
        if (ok) {
            job_set_result(job, out, (size_t)n);
            return JOB_DONE;
        }
        redisFree(t->redis);
        t->redis = NULL;
    }
    job_set_error(job, "Redis unavailable");
    return JOB_RETRY;
}

/* ---- noop: the diagnostic job (benchmarks, tests of the runtime) ---- */

/*
 * Payload (every member optional): {"sleep_ms": N (0..600000), "fail_attempts": N (fail the
 * first N attempts, then succeed), "fail": true (fail for good)}. While sleeping it reports
 * progress and stops early on a drain, handing the job back.
 */
int job_noop(job_t *job)
{
    arena_t arena;
    arena_init(&arena, NULL, 0);
    const json_value_t *root = json_parse(&arena, job->payload, job->payload_len, NULL);
    if (!root || json_type(root) != JSON_OBJECT) {
        arena_destroy(&arena);
        job_set_error(job, "payload must be a JSON object");
        return JOB_FAIL;
    }
    int64_t sleep_ms = 0, fail_attempts = 0;
    const json_value_t *v;
    bool ok = true;
    if ((v = json_object_get(root, "sleep_ms")))
        ok &= json_get_i64(v, &sleep_ms);
    if ((v = json_object_get(root, "fail_attempts")))
        ok &= json_get_i64(v, &fail_attempts);
    v = json_object_get(root, "fail");
    bool fail = v && json_type(v) == JSON_TRUE;
    arena_destroy(&arena);
    if (!ok) {
        job_set_error(job, "sleep_ms and fail_attempts must be integers");
        return JOB_FAIL;
    }
    if (sleep_ms < 0 || sleep_ms > 600000 || fail_attempts < 0 || fail_attempts > 100) {
        job_set_error(job, "sleep_ms must be 0..600000 and fail_attempts 0..100");
        return JOB_FAIL;
    }
    for (int64_t slept = 0; slept < sleep_ms; slept += 50) {
        if (job_stopping(job))
            return JOB_HANDBACK;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
        job_progress(job, (double)slept / (double)sleep_ms);
    }
    if (fail) {
        job_set_error(job, "failed as asked");
        return JOB_FAIL;
    }
    if (job->attempt <= fail_attempts) {
        job_set_error(job, "attempt %d failed as asked", job->attempt);
        return JOB_RETRY;
    }
    char out[64];
    int n = snprintf(out, sizeof(out), "{\"attempt\":%d}", job->attempt);
    job_set_result(job, out, (size_t)n);
    return JOB_DONE;
}

void api_jobs_register(void)
{
    /* concurrency per process: imports and exports are heavy on PostgreSQL, partition
     * maintenance takes locks and must not run twice at once in one process */
    jobs_register("import_companies", job_import_companies, 2);
    jobs_register("export_deals", job_export_deals, 2);
    jobs_register("maintain_partitions", job_maintain_partitions, 1);
    jobs_register("refresh_analytics", job_refresh_analytics, 1);
    jobs_register("warm_cache", job_warm_cache, 1);
    jobs_register("noop", job_noop, 0);
}
