/*
 * Prometheus metrics. Every figure is kept per thread by its owner without locks and merged
 * here on read, so scraping costs the scraper's thread a few microseconds per route and
 * nothing on the request path.
 */
#include "jobs/jobs.h"
#include "api/ops/metrics.h"
#include "api/graphql/graphql.h"
#include "api/cached.h"
#include "cache/tiered.h"
#include "core/buf.h"
#include "core/hist.h"
#include "core/log.h"
#include "api/limit/limit.h"
#include "redis/redis.h"
#include "db/db.h"
#include "http/server.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const router_t *routers[HTTP_MAX_LISTENERS];
static time_t start_time;

long long api_metrics_uptime_s(void)
{
    return start_time ? (long long)(time(NULL) - start_time) : 0;
}

/* Prometheus buckets in seconds, written from the log-linear microsecond histograms. */
static const double le_seconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

static void label_escape(buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(b, '\\');
        if (*s == '\n') {
            buf_append_lit(b, "\\n");
            continue;
        }
        buf_putc(b, *s);
    }
}

static void write_hist(buf_t *b, const char *metric, const char *labels, const hist_t *h)
{
    for (size_t i = 0; i < sizeof(le_seconds) / sizeof(le_seconds[0]); i++)
        buf_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", metric, labels, le_seconds[i],
                   (unsigned long long)hist_count_le(h, (uint64_t)(le_seconds[i] * 1e6)));
    buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", metric, labels, (unsigned long long)h->count);
    buf_printf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", metric, labels, (double)h->sum / 1e6, metric,
               labels, (unsigned long long)h->count);
}

static void write_routes(buf_t *b)
{
    static __thread http_route_stats_t rs; /* merged fresh for each route */
    buf_append_lit(b, "# HELP crmd_http_requests_total Requests answered, by route and status.\n"
                      "# TYPE crmd_http_requests_total counter\n");
    for (int li = 0; li < HTTP_MAX_LISTENERS; li++) {
        if (!routers[li])
            continue;
        for (uint16_t id = 0; id <= router_route_count(routers[li]); id++) {
            memset(&rs, 0, sizeof(rs));
            http_route_totals(li, id, &rs);
            const http_route_t *r = router_route_by_id(routers[li], id);
            const char *name = r ? r->name : "unmatched";
            for (int slot = 0; slot < HTTP_STATUS_SLOTS; slot++) {
                if (!rs.status[slot])
                    continue;
                buf_append_lit(b, "crmd_http_requests_total{route=\"");
                label_escape(b, name);
                int code = http_status_of_slot(slot);
                if (code)
                    buf_printf(b, "\",status=\"%d\"} %llu\n", code, (unsigned long long)rs.status[slot]);
                else
                    buf_printf(b, "\",status=\"other\"} %llu\n", (unsigned long long)rs.status[slot]);
            }
        }
    }
    buf_append_lit(b, "# HELP crmd_http_request_duration_seconds Time from a complete request head to the "
                      "queued response.\n# TYPE crmd_http_request_duration_seconds histogram\n");
    for (int li = 0; li < HTTP_MAX_LISTENERS; li++) {
        if (!routers[li])
            continue;
        for (uint16_t id = 0; id <= router_route_count(routers[li]); id++) {
            memset(&rs, 0, sizeof(rs));
            http_route_totals(li, id, &rs);
            if (!rs.latency_us.count)
                continue;
            const http_route_t *r = router_route_by_id(routers[li], id);
            buf_t label = BUF_INIT;
            buf_append_lit(&label, "route=\"");
            label_escape(&label, r ? r->name : "unmatched");
            buf_putc(&label, '"');
            write_hist(b, "crmd_http_request_duration_seconds", buf_cstr(&label), &rs.latency_us);
            buf_free(&label);
        }
    }
}

static void write_db(buf_t *b)
{
    db_pool_stats_t ps;
    db_pool_stats(&ps);
    db_health_t h = db_health();
    buf_printf(b,
               "# HELP crmd_db_up 1 when the last background probe reached PostgreSQL.\n"
               "# TYPE crmd_db_up gauge\ncrmd_db_up %d\n"
               "# HELP crmd_db_probe_latency_seconds Round trip of the last successful database probe.\n"
               "# TYPE crmd_db_probe_latency_seconds gauge\ncrmd_db_probe_latency_seconds %.6f\n"
               "# HELP crmd_db_pool_connections PostgreSQL connections of every thread's pool, by state.\n"
               "# TYPE crmd_db_pool_connections gauge\n"
               "crmd_db_pool_connections{state=\"configured\"} %u\n"
               "crmd_db_pool_connections{state=\"connected\"} %u\n"
               "crmd_db_pool_connections{state=\"busy\"} %u\n"
               "# HELP crmd_db_batches_waited_total Query batches that queued for a pool connection.\n"
               "# TYPE crmd_db_batches_waited_total counter\ncrmd_db_batches_waited_total %llu\n"
               "# HELP crmd_db_queries_total Statements sent to PostgreSQL.\n"
               "# TYPE crmd_db_queries_total counter\ncrmd_db_queries_total %llu\n"
               "# HELP crmd_db_errors_total Statement failures, by kind.\n"
               "# TYPE crmd_db_errors_total counter\n"
               "crmd_db_errors_total{kind=\"sql\"} %llu\ncrmd_db_errors_total{kind=\"timeout\"} %llu\n"
               "crmd_db_errors_total{kind=\"unavailable\"} %llu\n"
               "# HELP crmd_db_retries_total Read batches retried after a transient error.\n"
               "# TYPE crmd_db_retries_total counter\ncrmd_db_retries_total %llu\n",
               h.up, h.latency_ms / 1000, ps.size, ps.connected, ps.busy, (unsigned long long)ps.waiting,
               (unsigned long long)ps.queries, (unsigned long long)ps.errors, (unsigned long long)ps.timeouts,
               (unsigned long long)ps.unavailable, (unsigned long long)ps.retries);
    buf_append_lit(b, "# HELP crmd_db_statement_duration_seconds Prepared statement latency, submit to "
                      "result.\n# TYPE crmd_db_statement_duration_seconds histogram\n");
    static __thread hist_t hs;
    uint32_t n = db_stmt_count();
    for (db_stmt_t id = 0; id < n; id++) {
        memset(&hs, 0, sizeof(hs));
        db_stmt_hist(id, &hs);
        if (!hs.count)
            continue;
        char label[32];
        snprintf(label, sizeof(label), "stmt=\"s%u\"", id);
        write_hist(b, "crmd_db_statement_duration_seconds", label, &hs);
    }
}

static void write_process(buf_t *b)
{
    http_totals_t t;
    http_totals(&t);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    buf_printf(
        b,
        "# HELP crmd_http_connections_open Client connections open now.\n"
        "# TYPE crmd_http_connections_open gauge\ncrmd_http_connections_open %llu\n"
        "# HELP crmd_http_connections_accepted_total Client connections accepted.\n"
        "# TYPE crmd_http_connections_accepted_total counter\ncrmd_http_connections_accepted_total %llu\n"
        "# HELP crmd_http_connections_refused_total Connections closed at once because --max-conns was "
        "reached.\n"
        "# TYPE crmd_http_connections_refused_total counter\ncrmd_http_connections_refused_total %llu\n"
        "# HELP crmd_http_bad_requests_total Requests refused before routing (malformed heads and bodies).\n"
        "# TYPE crmd_http_bad_requests_total counter\ncrmd_http_bad_requests_total %llu\n"
        "# HELP crmd_http_internal_errors_total 500s for our own faults (never the client's data)\n"
        "# TYPE crmd_http_internal_errors_total counter\ncrmd_http_internal_errors_total %llu\n"
        "# HELP crmd_http_accept_fd_exhausted_total accepts that failed for lack of file descriptors\n"
        "# TYPE crmd_http_accept_fd_exhausted_total counter\ncrmd_http_accept_fd_exhausted_total %llu\n"
        "# HELP crmd_log_lines_dropped_total Log lines lost because stderr could not take them.\n"
        "# TYPE crmd_log_lines_dropped_total counter\ncrmd_log_lines_dropped_total %llu\n"
        "# HELP crmd_log_lines_suppressed_total repeated lines folded into a summary line\n"
        "# TYPE crmd_log_lines_suppressed_total counter\ncrmd_log_lines_suppressed_total %llu\n"
        "# HELP process_cpu_seconds_total User and system CPU time of the process.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.3f\n"
        "# HELP process_resident_memory_bytes Resident set size of the process.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lld\n"
        "# HELP process_start_time_seconds Start time of the process, in seconds since the epoch.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %lld\n",
        (unsigned long long)t.open, (unsigned long long)t.accepted, (unsigned long long)t.rejected,
        (unsigned long long)t.bad_requests, (unsigned long long)t.internal_errors,
        (unsigned long long)t.accept_fd_exhausted, (unsigned long long)log_dropped_total(),
        (unsigned long long)log_suppressed_total(), cpu, (long long)process_rss_bytes(),
        (long long)start_time);
}

static void write_cache(buf_t *b)
{
    api_cache_counters_t k;
    api_cache_counters(&k);
    redis_stats_t rs;
    redis_stats(&rs);
    buf_printf(
        b,
        "# HELP crmd_cache_requests_total Cache lookups of the tiered cache, by result.\n"
        "# TYPE crmd_cache_requests_total counter\n"
        "crmd_cache_requests_total{result=\"l1_hit\"} %llu\n"
        "crmd_cache_requests_total{result=\"l2_hit\"} %llu\n"
        "crmd_cache_requests_total{result=\"l2_miss\"} %llu\n"
        "crmd_cache_requests_total{result=\"l2_error\"} %llu\n"
        "crmd_cache_requests_total{result=\"coalesced\"} %llu\n"
        "crmd_cache_requests_total{result=\"bypass\"} %llu\n"
        "# HELP crmd_cache_fills_total Cache entries filled from PostgreSQL.\n"
        "# TYPE crmd_cache_fills_total counter\ncrmd_cache_fills_total %llu\n"
        "# HELP crmd_redis_connected Threads whose Redis command connection is up.\n"
        "# TYPE crmd_redis_connected gauge\ncrmd_redis_connected %u\n"
        "# HELP crmd_redis_clients Threads with a Redis client.\n"
        "# TYPE crmd_redis_clients gauge\ncrmd_redis_clients %u\n"
        "# HELP crmd_redis_commands_total Redis commands issued.\n"
        "# TYPE crmd_redis_commands_total counter\ncrmd_redis_commands_total %llu\n"
        "# HELP crmd_redis_errors_total Redis commands that failed, by kind.\n"
        "# TYPE crmd_redis_errors_total counter\n"
        "crmd_redis_errors_total{kind=\"reply\"} %llu\ncrmd_redis_errors_total{kind=\"timeout\"} %llu\n"
        "crmd_redis_errors_total{kind=\"unavailable\"} %llu\n"
        "# HELP crmd_redis_reconnects_total Redis connections restored after a loss.\n"
        "# TYPE crmd_redis_reconnects_total counter\ncrmd_redis_reconnects_total %llu\n",
        (unsigned long long)k.l1_hits, (unsigned long long)k.l2_hits, (unsigned long long)k.l2_misses,
        (unsigned long long)k.l2_errors, (unsigned long long)k.coalesced, (unsigned long long)k.bypasses,
        (unsigned long long)k.fills, rs.connected, rs.clients, (unsigned long long)rs.commands,
        (unsigned long long)rs.errors, (unsigned long long)rs.timeouts, (unsigned long long)rs.unavailable,
        (unsigned long long)rs.reconnects);
    cache_t *c = tcache_l1();
    if (!c)
        return;
    static const char *const names[] = {"hits", "misses", "evictions", "expirations", "invalidations"};
    cache_stats_t st[CACHE_TIER_COUNT];
    for (int t = 0; t < CACHE_TIER_COUNT; t++)
        cache_stats(c, (enum cache_tier)t, &st[t]);
    for (size_t m = 0; m < ARRAY_LEN(names); m++) {
        buf_printf(b, "# HELP crmd_cache_%s_total In-process cache %s, by class.\n", names[m], names[m]);
        buf_printf(b, "# TYPE crmd_cache_%s_total counter\n", names[m]);
        for (int t = 0; t < CACHE_TIER_COUNT; t++) {
            uint64_t v = m == 0   ? st[t].hits
                         : m == 1 ? st[t].misses
                         : m == 2 ? st[t].evictions
                         : m == 3 ? st[t].expirations
                                  : st[t].invalidations;
            buf_printf(b, "crmd_cache_%s_total{tier=\"l1\",class=\"%s\"} %llu\n", names[m],
                       cache_tier_name((enum cache_tier)t), (unsigned long long)v);
        }
    }
    buf_append_lit(b, "# HELP crmd_cache_entries Entries in the in-process cache, by class.\n"
                      "# TYPE crmd_cache_entries gauge\n");
    for (int t = 0; t < CACHE_TIER_COUNT; t++)
        buf_printf(b, "crmd_cache_entries{tier=\"l1\",class=\"%s\"} %llu\n",
                   cache_tier_name((enum cache_tier)t), (unsigned long long)st[t].entries);
    buf_append_lit(b, "# HELP crmd_cache_bytes Bytes held by the in-process cache, by class.\n"
                      "# TYPE crmd_cache_bytes gauge\n");
    for (int t = 0; t < CACHE_TIER_COUNT; t++)
        buf_printf(b, "crmd_cache_bytes{tier=\"l1\",class=\"%s\"} %llu\n",
                   cache_tier_name((enum cache_tier)t), (unsigned long long)st[t].bytes);
}

static void write_ratelimit(buf_t *b)
{
    rl_stats_t st;
    rl_stats(&st);
    buf_printf(
        b,
        "# HELP crmd_ratelimit_allowed_total Requests the rate limiter admitted.\n"
        "# TYPE crmd_ratelimit_allowed_total counter\ncrmd_ratelimit_allowed_total %llu\n"
        "# HELP crmd_ratelimit_whitelisted_total Requests from whitelisted addresses (no limit applied).\n"
        "# TYPE crmd_ratelimit_whitelisted_total counter\ncrmd_ratelimit_whitelisted_total %llu\n"
        "# HELP crmd_ratelimit_local_fallback_total Limit decisions made without Redis, on local buckets.\n"
        "# TYPE crmd_ratelimit_local_fallback_total counter\ncrmd_ratelimit_local_fallback_total %llu\n"
        "# HELP crmd_ratelimit_redis_commands_total Redis commands the rate limiter sent.\n"
        "# TYPE crmd_ratelimit_redis_commands_total counter\ncrmd_ratelimit_redis_commands_total %llu\n"
        "# HELP crmd_ratelimit_rejected_total Requests refused with 429, by class.\n"
        "# TYPE crmd_ratelimit_rejected_total counter\n",
        (unsigned long long)st.allowed, (unsigned long long)st.whitelisted,
        (unsigned long long)st.redis_fallback, (unsigned long long)st.redis_commands);
    for (int c = 0; c < RL_NCLASS; c++)
        buf_printf(b, "crmd_ratelimit_rejected_total{class=\"%s\"} %llu\n", rl_class_name(c),
                   (unsigned long long)st.rejected[c]);
}

/* ---- GraphQL, per operation name ---- */

typedef struct gql_section {
    buf_t *b;
    int pass; /* 0 requests, 1 errors, 2 statements, 3 latency */
} gql_section_t;

static void gql_op(const char *op, uint64_t requests, uint64_t errors, uint64_t statements, const hist_t *h,
                   void *arg)
{
    gql_section_t *s = arg;
    buf_t lb = BUF_INIT;
    buf_append_lit(&lb, "operation=\"");
    label_escape(&lb, op);
    buf_putc(&lb, '"');
    const char *labels = buf_cstr(&lb);
    if (s->pass == 0)
        buf_printf(s->b, "crmd_graphql_requests_total{%s} %llu\n", labels, (unsigned long long)requests);
    else if (s->pass == 1)
        buf_printf(s->b, "crmd_graphql_errors_total{%s} %llu\n", labels, (unsigned long long)errors);
    else if (s->pass == 2)
        buf_printf(s->b, "crmd_graphql_statements_total{%s} %llu\n", labels, (unsigned long long)statements);
    else
        write_hist(s->b, "crmd_graphql_duration_seconds", labels, h);
    buf_free(&lb);
}

static void write_graphql(buf_t *b)
{
    static const char *const heads[] = {
        "# HELP crmd_graphql_requests_total GraphQL operations run, by operation name.\n"
        "# TYPE crmd_graphql_requests_total counter\n",
        "# HELP crmd_graphql_errors_total GraphQL requests answered with errors, by operation name.\n"
        "# TYPE crmd_graphql_errors_total counter\n",
        "# HELP crmd_graphql_statements_total SQL statements GraphQL operations ran, by operation name.\n"
        "# TYPE crmd_graphql_statements_total counter\n",
        "# HELP crmd_graphql_duration_seconds GraphQL operation latency, by operation name.\n"
        "# TYPE crmd_graphql_duration_seconds histogram\n",
    };
    for (int pass = 0; pass < 4; pass++) {
        buf_append(b, heads[pass], strlen(heads[pass]));
        gql_section_t s = {b, pass};
        gql_metrics_each(gql_op, &s);
    }
}

static void write_jobs(buf_t *b)
{
    jobs_snapshot_t s;
    jobs_monitor_snapshot(&s);
    buf_printf(b,
               "# HELP crmd_jobs_monitor_up 1 when the last poll of the job queue's counts reached Redis.\n"
               "# TYPE crmd_jobs_monitor_up gauge\ncrmd_jobs_monitor_up %d\n",
               s.valid ? 1 : 0);
    int n = jobs_type_count() < 16 ? jobs_type_count() : 16;
    if (s.valid) {
        buf_append_lit(b, "# HELP crmd_jobs Jobs kept in Redis (every instance's), by type and state.\n"
                          "# TYPE crmd_jobs gauge\n");
        for (int t = 0; t < s.ntypes; t++)
            for (int k = 0; k < JOBS_STATES; k++)
                buf_printf(b, "crmd_jobs{type=\"%s\",state=\"%s\"} %lld\n", jobs_type_name(t),
                           jobs_state_names[k], (long long)s.t[t].states[k]);
        buf_append_lit(
            b, "# HELP crmd_jobs_queue_depth Jobs waiting for a worker (not yet delivered), by type.\n"
               "# TYPE crmd_jobs_queue_depth gauge\n");
        for (int t = 0; t < s.ntypes; t++)
            buf_printf(b, "crmd_jobs_queue_depth{type=\"%s\"} %lld\n", jobs_type_name(t),
                       (long long)s.t[t].depth);
        buf_append_lit(b,
                       "# HELP crmd_jobs_oldest_waiting_seconds Age of the oldest job waiting for a worker.\n"
                       "# TYPE crmd_jobs_oldest_waiting_seconds gauge\n");
        for (int t = 0; t < s.ntypes; t++)
            buf_printf(b, "crmd_jobs_oldest_waiting_seconds{type=\"%s\"} %.3f\n", jobs_type_name(t),
                       s.t[t].oldest_s);
    }
    jobs_worker_stats_t w;
    jobs_worker_stats(&w);
    buf_printf(
        b,
        "# HELP crmd_job_workers Job executor threads of this process.\n# TYPE crmd_job_workers gauge\n"
        "crmd_job_workers %u\n"
        "# HELP crmd_jobs_running Jobs this process's workers are running now.\n"
        "# TYPE crmd_jobs_running gauge\ncrmd_jobs_running %u\n"
        "# HELP crmd_jobs_reclaimed_total Jobs this process took over from a worker that stopped renewing "
        "them.\n# TYPE crmd_jobs_reclaimed_total counter\ncrmd_jobs_reclaimed_total %llu\n",
        w.threads, w.running, (unsigned long long)w.reclaimed);
    static const char *const outcomes[JOB_OUTCOME_COUNT] = {"succeeded", "retry", "failed", "dead",
                                                            "handback"};
    buf_append_lit(
        b, "# HELP crmd_jobs_processed_total Job runs of this process's workers, by type and outcome.\n"
           "# TYPE crmd_jobs_processed_total counter\n");
    for (int t = 0; t < n; t++) {
        uint64_t o[JOB_OUTCOME_COUNT];
        jobs_worker_outcomes(t, o);
        for (int i = 0; i < JOB_OUTCOME_COUNT; i++)
            buf_printf(b, "crmd_jobs_processed_total{type=\"%s\",outcome=\"%s\"} %llu\n", jobs_type_name(t),
                       outcomes[i], (unsigned long long)o[i]);
    }
    buf_append_lit(b, "# HELP crmd_job_duration_seconds Job run time in this process's workers, by type.\n"
                      "# TYPE crmd_job_duration_seconds histogram\n");
    for (int t = 0; t < n; t++) {
        hist_t h;
        jobs_worker_duration(t, &h);
        char labels[64];
        snprintf(labels, sizeof(labels), "type=\"%s\"", jobs_type_name(t));
        write_hist(b, "crmd_job_duration_seconds", labels, &h);
    }
}

void api_metrics_write(buf_t *b)
{
    write_process(b);
    write_ratelimit(b);
    write_cache(b);
    write_routes(b);
    write_db(b);
    write_graphql(b);
    write_jobs(b);
}

static void metrics(http_ctx_t *ctx)
{
    api_metrics_write(http_body(ctx));
    http_add_header(ctx, LIT("Cache-Control"), LIT("no-store"));
    http_respond(ctx, 200, "text/plain; version=0.0.4; charset=utf-8");
}

void api_metrics_routes(router_t *admin_rt, const router_t *api_rt)
{
    start_time = time(NULL);
    routers[0] = api_rt;
    routers[1] = admin_rt;
    http_route_t r = {.pattern = "/metrics",
                      .method = HTTP_GET,
                      .handler = metrics,
                      .flags = ROUTE_PUBLIC,
                      .route_class = ROUTE_CLASS_HEALTH,
                      .name = "GET /metrics"};
    router_add(admin_rt, &r);
}
