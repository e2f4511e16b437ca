/*
 * `crmd serve`: wires configuration to threads. One pinned io_uring reactor per thread, each with
 * its own SO_REUSEPORT listener, then waits for signals: the first SIGTERM or SIGINT drains
 * (readiness 503, listeners closed, in-flight requests finish, exit 0), a second one exits at
 * once; SIGHUP re-reads the reloadable settings. Under systemd (Type=notify) it reports
 * READY=1 once listening and the first database probe has answered, RELOADING=1 around a
 * reload, STOPPING=1 when draining, and WATCHDOG=1 only while every reactor turns its loop.
 */
#include "cmd/cmd.h"
#include "api/api.h"
#include "api/auth.h"
#include "api/cached.h"
#include "cache/tiered.h"
#include "api/ops/health.h"
#include "api/ops/metrics.h"
#include "api/ops/openapi.h"
#include "api/ops/performance.h"
#include "api/limit/limit.h"
#include "api/route.h"
#include "api/rest/writes.h"
#include "api/jobs/handlers.h"
#include "jobs/jobs.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/config.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/reactor.h"
#include "http/cors.h"
#include "redis/redis.h"
#include "redis/sentinel.h"
#include "db/db.h"
#include "db/migrate.h"
#include "http/server.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_config.h"

/* Receive buffers per reactor: enough for many pipelined batches at once, small enough that
 * they are a fixed cost rather than a per-connection one. */
#define RECV_BUF_COUNT 512
#define RECV_BUF_SIZE  4096

typedef struct {
    pthread_t tid;
    int index;
    reactor_t reactor;
    http_server_t server;
    const router_t *router;
    const router_t *admin_router; /* thread 0 also serves the admin listener */
    int init_result;              /* 1 while starting, then 0 or -errno */
    _Atomic bool done;            /* its loop has ended (draining): no longer watched */
} worker_t;

static worker_t *workers;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static _Atomic int running_workers;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char name[16]; /* "crmd-r3" in top -H, ps -L and the watchdog's log */
    snprintf(name, sizeof(name), "crmd-r%d", w->index);
    pthread_setname_np(pthread_self(), name);
    if (g_config.cpus_count) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(g_config.cpus[w->index], &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
            log_warn("thread %d: cannot pin to CPU %d", w->index, g_config.cpus[w->index]);
    }
    int ret = reactor_init(&w->reactor, (unsigned)w->index, RECV_BUF_COUNT, RECV_BUF_SIZE);
    if (ret == 0) {
        ret = http_server_init(&w->server, &w->reactor, w->router, &g_config);
        if (ret == 0 && w->admin_router)
            ret = http_server_listen(&w->server, &g_config.admin_listen, w->admin_router, true);
        if (ret < 0)
            reactor_destroy(&w->reactor);
    }
    if (ret == 0) {
        db_pool_start(&w->reactor, &g_config);
        api_auth_thread_init();
        api_cache_thread_init();
        /* without REDIS_URL the cache runs on L1 alone */
        if (redis_client_start(&w->reactor, g_config.redis_url, (uint32_t)g_config.redis_timeout_ms) == 0 &&
            w->index == 0)
            tcache_subscribe(&w->reactor);
        if (w->index == 0 && g_config.database_url && *g_config.database_url)
            api_writes_housekeeping_start(&w->reactor);
    }
    pthread_mutex_lock(&start_lock);
    w->init_result = ret;
    pthread_cond_broadcast(&start_cond);
    pthread_mutex_unlock(&start_lock);
    if (ret < 0) {
        atomic_fetch_sub(&running_workers, 1);
        return NULL;
    }
    reactor_run(&w->reactor);
    atomic_store(&w->done, true);
    redis_client_stop();
    db_pool_stop(); /* fails what is in flight, the purge's batch included */
    if (w->index == 0)
        api_writes_housekeeping_stop();
    api_auth_thread_free();
    api_cache_thread_free();
    rl_thread_free();
    http_server_destroy(&w->server);
    reactor_destroy(&w->reactor);
    atomic_fetch_sub(&running_workers, 1);
    return NULL;
}

static void wake_all(int n)
{
    for (int i = 0; i < n; i++)
        if (workers[i].init_result == 0)
            reactor_wake(&workers[i].reactor);
}

/* Refuses to serve a database whose schema this build does not know. An unreachable database
 * is not fatal: the pools connect when it comes up, and readiness says 503 until then. */
static void check_schema(void)
{
    const char *url = g_config.database_url;
    if (!url || !*url) {
        log_warn("DATABASE_URL is not set: only the health endpoints can answer");
        return;
    }
    char err[512];
    if (db_resolve_host(url, err, sizeof(err)) != 0)
        log_fields(LOG_WARN, "database host not resolved at start-up; libpq will resolve it", "reason", err,
                   NULL);
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {url, "3", NULL};
    if (PQpingParams(keys, vals, 1) != PQPING_OK) {
        log_warn("database unreachable at start-up; serving 503 until it is up");
        return;
    }
    char dir[4096];
    if (db_migrations_dir(dir, sizeof(dir)) != 0) {
        fprintf(stderr, "crmd: cannot find sql/migrations (set CRMD_MIGRATIONS_DIR)\n");
        exit(1);
    }
    if (db_schema_check(url, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "crmd: %s\n", err);
        log_fields(LOG_ERROR, "refusing to start", "reason", err, NULL);
        exit(1);
    }
}

/* Connections, PostgreSQL and Redis sockets all take descriptors: use every one we may. */
static void raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)g_config.max_conns)
        log_fields(LOG_WARN,
                   "file descriptor limit is below --max-conns: accepts will pause when it is reached",
                   "#nofile", (int64_t)rl.rlim_cur, "#max_conns", (int64_t)g_config.max_conns, NULL);
}

/* A reactor whose loop has not turned for this long is stuck: it turns at least once a second
 * even when idle (reactor_run's longest wait). */
#define REACTOR_STUCK_MS 3000

/* The index of a running reactor that stopped turning its loop, or -1 when all turn. */
static int stuck_reactor(int n)
{
    uint64_t now = clock_now_ms();
    for (int i = 0; i < n; i++) {
        if (workers[i].init_result != 0 || atomic_load(&workers[i].done))
            continue;
        uint64_t beat = atomic_load_explicit(&workers[i].reactor.beat_ms, memory_order_relaxed);
        if (beat && now > beat + REACTOR_STUCK_MS)
            return i;
    }
    return -1;
}

/* The watchdog: pings every half period while every reactor turns; a stuck one stops the
 * pings, and the service manager restarts the process when the period runs out. */
typedef struct {
    uint64_t period_ms, next_ms;
    int stuck; /* reported reactor, or -1 */
} watchdog_t;

static void watchdog_tick(watchdog_t *wd, int n)
{
    if (!wd->period_ms || clock_now_ms() < wd->next_ms)
        return;
    wd->next_ms = clock_now_ms() + wd->period_ms / 2;
    int stuck = stuck_reactor(n);
    if (stuck < 0) {
        notify_send("WATCHDOG=1");
    } else if (stuck != wd->stuck) {
        log_fields(LOG_ERROR, "reactor stopped turning its loop: withholding the watchdog ping", "#thread",
                   (int64_t)stuck, NULL);
    }
    wd->stuck = stuck;
}

/* SIGHUP: the reloadable settings from the environment, the config file as it is now and
 * the same flags; a bad file leaves everything as it was. */
static void reload(void)
{
    notify_send("RELOADING=1");
    config_t next;
    char err[640];
    if (!config_reload(&next, err, sizeof(err))) {
        log_fields(LOG_ERROR, "reload refused: configuration unchanged", "reason", err, NULL);
        notify_send("READY=1\nSTATUS=serving; last reload refused (see log)");
        return;
    }
    char applied[1024], ignored[1024];
    config_apply(&g_config, &next, applied, sizeof(applied), ignored, sizeof(ignored));
    rl_configure(&g_config);
    http_cors_configure(g_config.frontend_url);
    /* at the level in force before: a reload to "warn" still says that it happened */
    log_fields(LOG_INFO, "configuration reloaded", "applied", applied, NULL);
    if (ignored[0])
        log_fields(LOG_WARN, "changed settings that take a restart were not applied", "settings", ignored,
                   NULL);
    __atomic_store_n(&g_log_level, g_config.log_level, __ATOMIC_RELAXED);
    notify_send("READY=1\nSTATUS=serving; configuration reloaded");
}

/* READY=1 once the first database probe has answered (at once without a database). */
static bool ready_to_notify(void)
{
    return !g_config.database_url || !*g_config.database_url || db_health().checked_ms != 0;
}

/* Serves until SIGTERM or SIGINT, which it returns: reloads on SIGHUP, tells the service
 * manager when ready and keeps its watchdog fed. */
static int serve_until_stop(const sigset_t *sigs, int n, watchdog_t *wd)
{
    bool notified = false;
    for (;;) {
        uint64_t wait_ms = notified ? (wd->period_ms ? wd->period_ms / 4 : 1000) : 20;
        struct timespec ts = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig == SIGHUP)
            reload();
        if (!notified && ready_to_notify()) {
            notified = true;
            notify_send(db_health().up || !g_config.database_url || !*g_config.database_url
                            ? "READY=1\nSTATUS=serving"
                            : "READY=1\nSTATUS=serving; database unreachable (readiness 503)");
        }
        watchdog_tick(wd, n);
    }
}

/* Starts this process's job executors (serve --workers N, or crmd worker). */
static int start_job_workers(int threads, const char *name)
{
    jobs_worker_config_t jc = {
        .threads = threads,
        .lease_ms = (uint32_t)g_config.job_lease_ms,
        .drain_ms = (uint32_t)g_config.drain_timeout_ms,
        .keep_ms = (uint32_t)g_config.job_keep_s * 1000u,
        .keep_count = (uint32_t)g_config.job_keep_count,
        .schedules = g_config.job_schedules,
        .name = name,
        .thread_init = api_jobs_thread_init,
        .thread_fini = api_jobs_thread_fini,
    };
    return jobs_worker_start(&jc);
}

/* serve, or (worker_mode) crmd worker: the same process without the public listener, one
 * reactor for the admin listener (/metrics, health) and --workers executors. */
static int serve_main(int argc, char **argv, bool worker_mode)
{
    config_parse(&g_config, argc, argv, worker_mode ? "worker" : "serve");
    if (worker_mode) {
        g_config.threads = 1;
        if (g_config.workers <= 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            g_config.workers = n > 0 ? (int)n : 1;
        }
    }
    const config_t *c = &g_config;
    notify_init();
    raise_nofile_limit();
    check_schema();
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    /* every thread inherits the mask: only this one takes the signals, with sigtimedwait */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (c->redis_sentinels && *c->redis_sentinels &&
        redis_sentinel_start(c->redis_sentinels, c->redis_sentinel_master) != 0) {
        fprintf(stderr, "crmd: REDIS_SENTINELS: want host:port[,host:port...]\n");
        exit(2);
    }
    tcache_init((size_t)c->cache_mb << 20);
    api_jobs_register();
    router_t *router = router_new();
    api_register_routes(router);
    router_t *admin_router = router_new();
    api_metrics_routes(admin_router, router);
    /* health on the admin listener too: it answers while the public one is full */
    api_health_routes(admin_router);
    api_performance_operator_routes(admin_router);

    int n = c->threads;
    workers = xcalloc((size_t)n, sizeof(worker_t));
    atomic_store(&running_workers, n);
    for (int i = 0; i < n; i++) {
        workers[i].index = i;
        workers[i].router = worker_mode ? NULL : router;
        workers[i].admin_router = i == 0 ? admin_router : NULL;
        workers[i].init_result = 1;
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]) != 0)
            die("pthread_create: %s", strerror(errno));
    }
    int failed = 0;
    pthread_mutex_lock(&start_lock);
    for (int i = 0; i < n; i++) {
        while (workers[i].init_result == 1)
            pthread_cond_wait(&start_cond, &start_lock);
        failed |= workers[i].init_result < 0;
    }
    pthread_mutex_unlock(&start_lock);
    if (failed) {
        log_error("start-up failed; exiting");
        atomic_store(&g_server_state, SERVER_DRAINING);
        wake_all(n);
        for (int i = 0; i < n; i++)
            pthread_join(workers[i].tid, NULL);
        return 1;
    }
    if ((c->redis_url && *c->redis_url) || (c->redis_sentinels && *c->redis_sentinels))
        jobs_monitor_start(); /* the queue's gauges in /metrics */
    if (c->workers > 0 && start_job_workers(c->workers, worker_mode ? "worker" : "serve") != 0) {
        log_error("job workers did not start; exiting");
        atomic_store(&g_server_state, SERVER_DRAINING);
        wake_all(n);
        for (int i = 0; i < n; i++)
            pthread_join(workers[i].tid, NULL);
        return 1;
    }
    atomic_store(&g_server_state, SERVER_READY);
    log_fields(LOG_INFO, worker_mode ? "job worker running" : "listening", "listen",
               worker_mode ? c->admin_listen.text : c->listen.text, "#threads", (int64_t)n, "#job_workers",
               (int64_t)c->workers, "version", CRMD_VERSION, NULL);

    watchdog_t wd = {notify_watchdog_ms(), 0, -1};
    int sig = serve_until_stop(&sigs, n, &wd);
    notify_send("STOPPING=1\nSTATUS=draining");
    log_fields(LOG_INFO, "draining", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", "#drain_timeout_ms",
               (int64_t)c->drain_timeout_ms, NULL);
    atomic_store(&g_server_state, SERVER_DRAINING);
    wake_all(n);
    /* running jobs get the drain timeout too (they run meanwhile with the HTTP drain) */
    jobs_worker_stop();

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    uint64_t end_ms = (uint64_t)deadline.tv_sec * 1000 + (uint64_t)deadline.tv_nsec / 1000000 +
                      (uint64_t)c->drain_timeout_ms;
    while (atomic_load(&running_workers) > 0) {
        struct timespec ts = {0, 20 * 1000000};
        sig = sigtimedwait(&sigs, NULL, &ts);
        watchdog_tick(&wd, n);
        if (sig == SIGTERM || sig == SIGINT) {
            log_warn("second signal: exiting without waiting for in-flight requests");
            _exit(1);
        }
        if (clock_now_ms() >= end_ms) {
            log_fields(LOG_WARN, "drain timeout: exiting with requests still in flight", "#threads_busy",
                       (int64_t)atomic_load(&running_workers), NULL);
            _exit(0);
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(workers[i].tid, NULL);
    for (int i = 0; i < n; i++)
        http_server_release(&workers[i].server);
    log_info("drained; exiting");
    free(workers);
    router_free(router);
    router_free(admin_router);
    api_routes_free();
    api_openapi_free();
    api_cache_free();
    tcache_free();
    jobs_monitor_stop();
    redis_sentinel_stop();
    rl_config_free();
    http_cors_free();
    notify_close();
    config_free();
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    return serve_main(argc, argv, false);
}

int cmd_worker(int argc, char **argv)
{
    return serve_main(argc, argv, true);
}
