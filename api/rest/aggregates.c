/*
 * Aggregates (see aggregates.h for the figures' definitions). Every statement filters on
 * org_id first, so it runs on an (org_id, ...) index or, for whole-organization sums, on a scan
 * of the organization's rows. Activities are partitioned by month: their conditions bound
 * occurred_at with now()-based expressions (stable), so the executor prunes partitions at start.
 *
 * Statements that take ownerId exist in two texts, with and without the owner condition, so the
 * planner sees the owner column and can pick an (org_id, owner_id, ...) index; "@x" in a template
 * marks where alias x's owner condition goes.
 */
#include "api/rest/aggregates.h"
#include "api/rest/resources.h"
#include "api/auth.h"
#include "api/route.h"
#include "api/common.h"
#include "cache/lru.h"
#include "core/common.h"
#include "core/json.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- statements ---- */

/* A statement taking ownerId: [0] without it ($1 org), [1] with it ($2 owner). */
typedef db_stmt_t owner_stmt_t[2];

enum { D_DEALS, D_ACTIVITIES, D_COMPANIES, D_PIPELINE, D_RECENT, D_TASKS, D_COUNT };

static owner_stmt_t dash_stmts[D_COUNT];
static owner_stmt_t stats_stage_stmt, stats_totals_stmt;
static db_stmt_t analytics_stmt, summary_exists_stmt, summary_status_stmt, summary_stage_stmt;

#define UTC_DAY  "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
#define UTC_WEEK "date_trunc('week', now() AT TIME ZONE 'UTC')"

static const char *const dash_sql[D_COUNT] = {
    [D_DEALS] = "SELECT count(*), count(*) FILTER (WHERE d.status = 'open'),"
                " coalesce(sum(d.value) FILTER (WHERE d.status = 'open'), 0),"
                " coalesce(sum(d.value * d.probability) FILTER (WHERE d.status = 'open'), 0) / 100,"
                " coalesce(sum(d.value) FILTER (WHERE d.status = 'won'"
                " AND d.closed_at >= now() - interval '30 days'), 0)"
                " FROM deals d WHERE d.org_id = $1::bigint@d",
    [D_ACTIVITIES] = "SELECT count(*) FILTER (WHERE a.occurred_at >= " UTC_DAY " AND a.occurred_at < " UTC_DAY
                     " + interval '1 day'), count(*)"
                     " FROM activities a WHERE a.org_id = $1::bigint@a"
                     " AND a.occurred_at >= (" UTC_WEEK ") AT TIME ZONE 'UTC'"
                     " AND a.occurred_at < (" UTC_WEEK " + interval '7 days') AT TIME ZONE 'UTC'",
    [D_COMPANIES] = "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM deals d"
                    " WHERE d.org_id = c.org_id AND d.company_id = c.id))"
                    " FROM companies c WHERE c.org_id = $1::bigint@c",
    [D_PIPELINE] = "SELECT s.id, s.name, s.color, count(d.id), coalesce(sum(d.value), 0)"
                   " FROM stages s LEFT JOIN deals d ON d.org_id = s.org_id AND d.stage_id = s.id@d"
                   " WHERE s.org_id = $1::bigint GROUP BY s.id ORDER BY s.position, s.id",
    [D_RECENT] = "SELECT a.id, a.owner_id, a.company_id, a.contact_id, a.deal_id, a.type, a.subject, a.body,"
                 " a.occurred_at, a.created_at FROM activities a WHERE a.org_id = $1::bigint@a"
                 " AND a.occurred_at <= now() ORDER BY a.occurred_at DESC, a.id DESC LIMIT 10",
    [D_TASKS] =
        "SELECT t.id, t.owner_id, t.company_id, t.deal_id, t.title, t.priority, t.status, t.due_at,"
        " t.created_at, t.completed_at FROM tasks t WHERE t.org_id = $1::bigint@t AND t.status = 'open'"
        " ORDER BY t.due_at, t.id LIMIT 5",
};

static const char stats_stage_sql[] =
    "SELECT s.id, s.name, s.position, count(d.id), coalesce(sum(d.value), 0),"
    " coalesce(sum(d.value * d.probability), 0) / 100, coalesce(avg(d.value), 0),"
    " coalesce(round(extract(epoch FROM avg(now() - d.created_at))::numeric / 86400, 1), 0)"
    " FROM stages s LEFT JOIN deals d ON d.org_id = s.org_id AND d.stage_id = s.id@d"
    " WHERE s.org_id = $1::bigint GROUP BY s.id ORDER BY s.position, s.id";
static const char stats_totals_sql[] =
    "SELECT count(*), coalesce(sum(d.value), 0), coalesce(sum(d.value * d.probability), 0) / 100,"
    " count(*) FILTER (WHERE d.status = 'won'), count(*) FILTER (WHERE d.status = 'lost')"
    " FROM deals d WHERE d.org_id = $1::bigint@d";

static const char analytics_sql[] =
    "SELECT c.id,"
    " (SELECT count(*) FROM contacts ct WHERE ct.org_id = $1::bigint AND ct.company_id = $2::bigint),"
    " d.open_n, d.won_n, d.lost_n, d.open_v, d.won_v,"
    " (SELECT count(*) FROM activities a WHERE a.org_id = $1::bigint AND a.company_id = $2::bigint"
    " AND a.occurred_at >= now() - interval '30 days' AND a.occurred_at <= now()),"
    " la.at, coalesce(la.at >= now() - interval '7 days', false)"
    " FROM companies c,"
    " LATERAL (SELECT count(*) FILTER (WHERE x.status = 'open') AS open_n,"
    " count(*) FILTER (WHERE x.status = 'won') AS won_n, count(*) FILTER (WHERE x.status = 'lost') AS lost_n,"
    " coalesce(sum(x.value) FILTER (WHERE x.status = 'open'), 0) AS open_v,"
    " coalesce(sum(x.value) FILTER (WHERE x.status = 'won'), 0) AS won_v"
    " FROM deals x WHERE x.org_id = $1::bigint AND x.company_id = $2::bigint) d,"
    " LATERAL (SELECT max(a.occurred_at) AS at FROM activities a WHERE a.org_id = $1::bigint"
    " AND a.company_id = $2::bigint AND a.occurred_at <= now()) la"
    " WHERE c.org_id = $1::bigint AND c.id = $2::bigint";

static const char summary_exists_sql[] =
    "SELECT c.id FROM companies c WHERE c.org_id = $1::bigint AND c.id = $2::bigint";
static const char summary_status_sql[] =
    "SELECT v.status, count(d.id), coalesce(sum(d.value), 0)"
    " FROM (VALUES (1, 'open'), (2, 'won'), (3, 'lost')) v(ord, status)"
    " LEFT JOIN deals d ON d.org_id = $1::bigint AND d.company_id = $2::bigint AND d.status = v.status"
    " GROUP BY v.ord, v.status ORDER BY v.ord";
static const char summary_stage_sql[] =
    "SELECT s.id, s.name, count(d.id), coalesce(sum(d.value), 0)"
    " FROM stages s LEFT JOIN deals d ON d.org_id = s.org_id AND d.stage_id = s.id AND d.company_id = "
    "$2::bigint"
    " WHERE s.org_id = $1::bigint GROUP BY s.id ORDER BY s.position, s.id";

/* Registers tpl twice: "@x" dropped, and "@x" as alias x's owner condition on $2. */
static void owner_stmts(const char *tpl, owner_stmt_t out)
{
    for (int with = 0; with < 2; with++) {
        buf_t sql = BUF_INIT;
        for (const char *p = tpl; *p; p++) {
            if (*p != '@') {
                buf_putc(&sql, *p);
                continue;
            }
            p++;
            if (with)
                buf_printf(&sql, " AND %c.owner_id = $2::bigint", *p);
        }
        out[with] = db_stmt(buf_cstr(&sql));
        buf_free(&sql);
    }
}

/* ---- writing ---- */

static const api_col_t deals_overview_cols[] = {
    API_COL("total_deals", COL_INT, false),      API_COL("open_deals", COL_INT, false),
    API_COL("pipeline_value", COL_MONEY, false), API_COL("weighted_value", COL_MONEY, false),
    API_COL("won_value_30d", COL_MONEY, false),
};
static const api_col_t activities_overview_cols[] = {
    API_COL("today_activities", COL_INT, false),
    API_COL("week_activities", COL_INT, false),
};
static const api_col_t companies_overview_cols[] = {
    API_COL("total_companies", COL_INT, false),
    API_COL("companies_with_deals", COL_INT, false),
};
static const api_col_t pipeline_cols[] = {
    API_COL("stage_id", COL_INT, false), API_COL("name", COL_TEXT, false),
    API_COL("color", COL_TEXT, false),   API_COL("deal_count", COL_INT, false),
    API_COL("value", COL_MONEY, false),
};
static const api_col_t stats_stage_cols[] = {
    API_COL("stage_id", COL_INT, false),      API_COL("name", COL_TEXT, false),
    API_COL("position", COL_INT, false),      API_COL("deal_count", COL_INT, false),
    API_COL("total_value", COL_MONEY, false), API_COL("weighted_value", COL_MONEY, false),
    API_COL("avg_value", COL_MONEY, false),   API_COL("avg_age_days", COL_MONEY, false),
};
static const api_col_t stats_totals_cols[] = {
    API_COL("deal_count", COL_INT, false),
    API_COL("total_value", COL_MONEY, false),
    API_COL("weighted_value", COL_MONEY, false),
};
static const api_col_t analytics_cols[] = {
    API_COL("company_id", COL_INT, false),
    API_COL("contact_count", COL_INT, false),
    API_COL("active_deals", COL_INT, false),
    API_COL("won_deals", COL_INT, false),
    API_COL("lost_deals", COL_INT, false),
    API_COL("pipeline_value", COL_MONEY, false),
    API_COL("won_value", COL_MONEY, false),
    API_COL("activity_count_30d", COL_INT, false),
    API_COL("last_activity_at", COL_TIMESTAMP, true),
};
static const api_col_t summary_stage_cols[] = {
    API_COL("stage_id", COL_INT, false),
    API_COL("name", COL_TEXT, false),
    API_COL("count", COL_INT, false),
    API_COL("value", COL_MONEY, false),
};

/* An object of one row's columns. */
static void write_row_obj(json_writer_t *w, const PGresult *r, int row, const api_col_t *cols, size_t n)
{
    json_obj_begin(w);
    api_json_cols(w, r, row, 0, cols, n);
    json_obj_end(w);
}

/* An array of every row of r. */
static void write_rows(json_writer_t *w, const PGresult *r, const api_col_t *cols, size_t n)
{
    json_arr_begin(w);
    for (int i = 0; i < PQntuples(r); i++)
        write_row_obj(w, r, i, cols, n);
    json_arr_end(w);
}

/* Rows as the resource's own GET writes them (the queries select its columns in its order). */
static void write_resource_rows(json_writer_t *w, const PGresult *r, const char *resource)
{
    json_arr_begin(w);
    for (int i = 0; i < PQntuples(r); i++)
        api_resource_write_row(w, resource, r, i, 0);
    json_arr_end(w);
}

static int64_t int_at(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Starts {"data": and returns the writer. */
static json_writer_t begin_data(http_ctx_t *ctx)
{
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    return w;
}

static void finish(http_ctx_t *ctx, db_batch_t *b)
{
    api_timing_db(ctx, b);
    db_batch_release(b);
    http_respond(ctx, 200, "application/json");
}

static void not_found(http_ctx_t *ctx, db_batch_t *b)
{
    api_timing_db(ctx, b);
    db_batch_release(b);
    api_respond_problem(ctx, 404, "not-found", "no such company", NULL);
}

/* ---- request parsing ---- */

static const api_param_t owner_spec[] = {{"ownerId", PARAM_ID, 0, NULL}};

/* Parses ?ownerId= into values for an owner statement; returns the parameter count (1 or 2), 0
 * after answering 400. */
static int owner_params(http_ctx_t *ctx, const api_auth_t *auth, const char *values[2])
{
    api_value_t v[1];
    api_errors_t errs = {0};
    if (!api_query_parse(&ctx->arena, ctx->req.query, owner_spec, ARRAY_LEN(owner_spec), v, NULL, &errs)) {
        api_respond_bad_params(ctx, &errs);
        return 0;
    }
    values[0] = auth->org_id_s;
    values[1] = v[0].present ? v[0].s : NULL;
    return v[0].present ? 2 : 1;
}

/* Parses the company id of /api/companies/{id}/... (no query parameters); NULL after a 400. */
static const char *company_param(http_ctx_t *ctx)
{
    api_value_t v[1];
    api_errors_t errs = {0};
    int64_t id;
    bool ok = api_query_parse(&ctx->arena, ctx->req.query, NULL, 0, v, NULL, &errs);
    if (ctx->nparams < 1 || !api_parse_id(ctx->params[0].p, ctx->params[0].len, &id)) {
        api_errors_add(&errs, LIT("id"), "must be a positive integer");
        ok = false;
    }
    if (!ok) {
        api_respond_bad_params(ctx, &errs);
        return NULL;
    }
    char s[24];
    int n = snprintf(s, sizeof(s), "%lld", (long long)id);
    return arena_strndup(&ctx->arena, s, (size_t)n);
}

/* ---- GET /api/dashboard ---- */

static void dashboard_done(db_batch_t *b, void *arg)
{
    http_ctx_t *ctx = arg;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    PGresult *const *r = b->results;
    json_writer_t w = begin_data(ctx);
    json_obj_begin(&w);
    json_w_key(&w, JSON_K("overview"));
    json_obj_begin(&w);
    json_w_key(&w, JSON_K("deals"));
    write_row_obj(&w, r[D_DEALS], 0, deals_overview_cols, ARRAY_LEN(deals_overview_cols));
    json_w_key(&w, JSON_K("activities"));
    write_row_obj(&w, r[D_ACTIVITIES], 0, activities_overview_cols, ARRAY_LEN(activities_overview_cols));
    json_w_key(&w, JSON_K("companies"));
    write_row_obj(&w, r[D_COMPANIES], 0, companies_overview_cols, ARRAY_LEN(companies_overview_cols));
    json_w_key(&w, JSON_K("pipeline"));
    write_rows(&w, r[D_PIPELINE], pipeline_cols, ARRAY_LEN(pipeline_cols));
    json_obj_end(&w);
    json_w_key(&w, JSON_K("recent"));
    json_obj_begin(&w);
    json_w_key(&w, JSON_K("activities"));
    write_resource_rows(&w, r[D_RECENT], "activities");
    json_w_key(&w, JSON_K("tasks"));
    write_resource_rows(&w, r[D_TASKS], "tasks");
    json_obj_end(&w);
    json_obj_end(&w);

    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tn = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_w_key(&w, JSON_K("metadata"));
    json_obj_begin(&w);
    json_kv_str(&w, JSON_K("generated_at"), ts, tn);
    json_obj_end(&w);
    json_obj_end(&w);
    finish(ctx, b);
}

static void dashboard(http_ctx_t *ctx, const api_auth_t *auth)
{
    const char *values[2];
    int nv = owner_params(ctx, auth, values);
    if (!nv)
        return;
    /* all six in one pipeline: the callback runs once every result is in */
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    for (int i = 0; i < D_COUNT; i++)
        db_batch_add(b, dash_stmts[i][nv - 1], nv, values);
    db_batch_submit(b, dashboard_done, ctx);
}

/* ---- GET /api/deals/pipeline-stats ---- */

static void pipeline_stats_done(db_batch_t *b, void *arg)
{
    http_ctx_t *ctx = arg;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    const PGresult *totals = b->results[1];
    int64_t won = int_at(totals, 0, 3), lost = int_at(totals, 0, 4);
    json_writer_t w = begin_data(ctx);
    json_obj_begin(&w);
    json_w_key(&w, JSON_K("stages"));
    write_rows(&w, b->results[0], stats_stage_cols, ARRAY_LEN(stats_stage_cols));
    json_w_key(&w, JSON_K("totals"));
    json_obj_begin(&w);
    api_json_cols(&w, totals, 0, 0, stats_totals_cols, ARRAY_LEN(stats_totals_cols));
    json_kv_double(&w, JSON_K("win_rate"), won + lost ? (double)won / (double)(won + lost) : 0.0, 4);
    json_obj_end(&w);
    json_obj_end(&w);
    json_obj_end(&w);
    finish(ctx, b);
}

static void pipeline_stats(http_ctx_t *ctx, const api_auth_t *auth)
{
    const char *values[2];
    int nv = owner_params(ctx, auth, values);
    if (!nv)
        return;
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    db_batch_add(b, stats_stage_stmt[nv - 1], nv, values);
    db_batch_add(b, stats_totals_stmt[nv - 1], nv, values);
    db_batch_submit(b, pipeline_stats_done, ctx);
}

/* ---- GET /api/companies/{id}/analytics ---- */

static void analytics_done(db_batch_t *b, void *arg)
{
    http_ctx_t *ctx = arg;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    const PGresult *r = b->results[0];
    if (PQntuples(r) == 0) {
        not_found(ctx, b);
        return;
    }
    int64_t active = int_at(r, 0, 2), act30 = int_at(r, 0, 7);
    bool recent = PQgetvalue(r, 0, 9)[0] == 't';
    int64_t score = 4 * act30 + 15 * MIN(active, 3) + (recent ? 20 : 0);
    score = MIN(score, 100);
    const char *health = score >= 70 ? "hot" : score >= 30 ? "warm" : "cold";
    json_writer_t w = begin_data(ctx);
    json_obj_begin(&w);
    api_json_cols(&w, r, 0, 0, analytics_cols, ARRAY_LEN(analytics_cols));
    json_kv_i64(&w, JSON_K("engagement_score"), score);
    json_kv_str(&w, JSON_K("health"), health, strlen(health));
    json_obj_end(&w);
    json_obj_end(&w);
    finish(ctx, b);
}

static void analytics(http_ctx_t *ctx, const api_auth_t *auth)
{
    const char *id = company_param(ctx);
    if (!id)
        return;
    const char *values[2] = {auth->org_id_s, id};
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    db_batch_add(b, analytics_stmt, 2, values);
    db_batch_submit(b, analytics_done, ctx);
}

/* ---- GET /api/companies/{id}/deals-summary ---- */

static void summary_done(db_batch_t *b, void *arg)
{
    http_ctx_t *ctx = arg;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    if (PQntuples(b->results[0]) == 0) {
        not_found(ctx, b);
        return;
    }
    const PGresult *st = b->results[1];
    json_writer_t w = begin_data(ctx);
    json_obj_begin(&w);
    json_w_key(&w, JSON_K("company_id"));
    api_json_value(&w, b->results[0], 0, 0, COL_INT);
    json_w_key(&w, JSON_K("by_status"));
    json_obj_begin(&w);
    for (int i = 0; i < PQntuples(st); i++) {
        json_w_key_str(&w, PQgetvalue(st, i, 0), (size_t)PQgetlength(st, i, 0));
        json_obj_begin(&w);
        json_w_key(&w, JSON_K("count"));
        api_json_value(&w, st, i, 1, COL_INT);
        json_w_key(&w, JSON_K("value"));
        api_json_value(&w, st, i, 2, COL_MONEY);
        json_obj_end(&w);
    }
    json_obj_end(&w);
    json_w_key(&w, JSON_K("by_stage"));
    write_rows(&w, b->results[2], summary_stage_cols, ARRAY_LEN(summary_stage_cols));
    json_obj_end(&w);
    json_obj_end(&w);
    finish(ctx, b);
}

static void deals_summary(http_ctx_t *ctx, const api_auth_t *auth)
{
    const char *id = company_param(ctx);
    if (!id)
        return;
    const char *values[2] = {auth->org_id_s, id};
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    db_batch_add(b, summary_exists_stmt, 2, values);
    db_batch_add(b, summary_status_stmt, 2, values);
    db_batch_add(b, summary_stage_stmt, 2, values);
    db_batch_submit(b, summary_done, ctx);
}

/* ---- registration ---- */

static const api_cache_spec_t dashboard_cache = {
    CACHE_TIER_FREQUENT,
    {"org:{org}:deals", "org:{org}:activities", "org:{org}:companies", "org:{org}:tasks", "org:{org}:stages"},
};
static const api_cache_spec_t pipeline_stats_cache = {
    CACHE_TIER_FREQUENT,
    {"org:{org}:deals", "org:{org}:stages"},
};
static const api_cache_spec_t analytics_cache = {
    CACHE_TIER_FREQUENT,
    {"company:{id}", "org:{org}:companies", "org:{org}:deals", "org:{org}:activities", "org:{org}:contacts"},
};
static const api_cache_spec_t summary_cache = {
    CACHE_TIER_FREQUENT,
    {"company:{id}", "org:{org}:companies", "org:{org}:deals", "org:{org}:stages"},
};

void api_aggregates_routes(router_t *rt)
{
    for (int i = 0; i < D_COUNT; i++)
        owner_stmts(dash_sql[i], dash_stmts[i]);
    owner_stmts(stats_stage_sql, stats_stage_stmt);
    owner_stmts(stats_totals_sql, stats_totals_stmt);
    analytics_stmt = db_stmt(analytics_sql);
    summary_exists_stmt = db_stmt(summary_exists_sql);
    summary_status_stmt = db_stmt(summary_status_sql);
    summary_stage_stmt = db_stmt(summary_stage_sql);

    api_route_cached(rt, HTTP_GET, "/api/dashboard", dashboard, 0, ROUTE_CLASS_EXPENSIVE,
                     "GET /api/dashboard", &dashboard_cache);
    api_route_cached(rt, HTTP_GET, "/api/deals/pipeline-stats", pipeline_stats, 0, ROUTE_CLASS_EXPENSIVE,
                     "GET /api/deals/pipeline-stats", &pipeline_stats_cache);
    api_route_cached(rt, HTTP_GET, "/api/companies/{id}/analytics", analytics, 0, ROUTE_CLASS_EXPENSIVE,
                     "GET /api/companies/{id}/analytics", &analytics_cache);
    /* API.md names dashboard, pipeline-stats, analytics and performance as expensive */
    api_route_cached(rt, HTTP_GET, "/api/companies/{id}/deals-summary", deals_summary, 0, ROUTE_CLASS_NORMAL,
                     "GET /api/companies/{id}/deals-summary", &summary_cache);
}
