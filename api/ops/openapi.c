/*
 * The OpenAPI 3.1 description, generated once at start-up from the router (which routes exist,
 * their methods, public and admin flags) and the resource schema (every resource route: its
 * parameters, filters, sorts, bodies with their rules, and the row shapes). What the schema
 * cannot say (the aggregates', bulk, batch and operations bodies) is the route table below,
 * keyed by route name: a route in neither is reported by api_openapi_build, logged at start-up
 * and fails tests/unit/test_openapi.c.
 */
#include "api/ops/openapi.h"
#include "api/limit/limit.h"
#include "api/schema.h"
#include "core/common.h"
#include "core/json.h"
#include "core/log.h"
#include "http/compress.h"
#include "http/etag.h"
#include "http/server.h"

#include <stdlib.h>
#include <string.h>

/* ---- fragments ----
 * The table's schemas are JSON written with ' for " (they hold no apostrophe), so that they
 * read as JSON; add_json turns them back. */

#define INT "{'type':'integer'}"
#define NUM "{'type':'number'}"
#define STR "{'type':'string'}"
#define TS  "{'type':'string','format':'date-time'}"
#define TSN "{'type':['string','null'],'format':'date-time'}"
#define OWNER_PARAM                                                                                          \
    "{'name':'ownerId','in':'query','description':'only rows of this owner (default: the whole "             \
    "organization)','schema':{'type':'integer','format':'int64','minimum':1}}"
#define REFRESH_PARAM "{'$ref':'#/components/parameters/refresh'}"
#define ID_PARAM      "{'$ref':'#/components/parameters/id'}"
#define ID_PARAM_JSON "{\"$ref\":\"#/components/parameters/id\"}"

/* Every problem type a response can carry (API.md: /problems/<code>). */
static const char *const problem_types[] = {
    "bad-request",
    "company-has-deals",
    "conflict",
    "forbidden",
    "idempotency-key-in-use",
    "idempotency-key-reused",
    "invalid-cursor",
    "invalid-idempotency-key",
    "invalid-parameter",
    "malformed-json",
    "method-not-allowed",
    "not-acceptable",
    "not-found",
    "not-implemented",
    "payload-too-large",
    "precondition-failed",
    "quota-exceeded",
    "request-header-fields-too-large",
    "request-timeout",
    "service-unavailable",
    "unauthorized",
    "unsupported-media-type",
    "uri-too-long",
    "validation-failed",
    "internal-error",
    NULL,
};

/* A route the schema does not describe. */
typedef struct route_doc {
    const char *name; /* the route's name */
    const char *tag, *summary;
    const char *params;   /* JSON array items, comma-separated, or NULL */
    const char *body;     /* request body schema, or NULL */
    int status;           /* the success status */
    const char *response; /* success body schema */
    const char *errors;   /* the error statuses besides the common ones, e.g. "404,422" */
} route_doc_t;

#define JOB_SCHEMA                                                                                           \
    "{'type':'object','properties':{'id':" STR ",'type':" STR ","                                            \
    "'status':{'type':'string','enum':['queued','running','retrying','succeeded','failed','dead','"          \
    "cancelled']},"                                                                                          \
    "'priority':{'type':'string','enum':['high','normal']},'attempts':" INT ",'max_attempts':" INT ","       \
    "'progress':{'type':'number','minimum':0,'maximum':1},'result':{},'error':{'type':['string','null']},"   \
    "'created_at':" TS ",'run_at':" TSN ",'started_at':" TSN ",'finished_at':" TSN "}}"
#define JOB_ACCEPTED                                                                                         \
    "{'type':'object','properties':{'data':{'type':'object','properties':{'id':" STR ",'status':" STR "}}}}"
#define JOB_ID_PARAM                                                                                         \
    "{'name':'id','in':'path','required':true,'schema':{'type':'string','pattern':'^[0-9]+$'}}"

/* clang-format off */
static const route_doc_t route_docs[] = {
    {"GET /api/health", "operations", "Health from the last background probe; detailed with an admin key",
     "{'name':'detailed','in':'query','description':'true: with an admin key, what the status is made of',"
       "'schema':{'type':'boolean'}}", NULL, 200,
     "{'type':'object','required':['status'],'properties':{"
       "'status':{'type':'string','enum':['healthy','degraded','unhealthy','draining']},"
       "'uptime_s':" INT ","
       "'database':{'type':'object','properties':{'configured':{'type':'boolean'},"
         "'primary':{'type':'object','properties':{'up':{'type':'boolean'},"
           "'latency_ms':{'type':['number','null']},'probe_age_ms':{'type':['integer','null']}}},"
         "'replicas':{'type':'array','items':{'type':'object'}}}},"
       "'redis':{'type':'object','properties':{'configured':{'type':'boolean'},'up':{'type':'boolean'},"
         "'connected_threads':" INT ",'threads':" INT ",'reconnects':" INT "}},"
       "'pools':{'type':'object','properties':{'size':" INT ",'connected':" INT ",'busy':" INT ","
         "'waiting':" INT "}},"
       "'cache':{'type':'object','properties':{'enabled':{'type':'boolean'},'entries':" INT ",'bytes':" INT "}},"
       "'memory':{'type':'object','properties':{'rss_bytes':" INT "}}}}",
     "400,401,403,503"},
    {"GET /api/health/live", "operations", "200 while the process runs", NULL, NULL, 200,
     "{'type':'object','properties':{'status':{'type':'string','enum':['alive']}}}",
     NULL},
    {"GET /api/health/ready", "operations", "503 while starting, draining or without a database", NULL, NULL, 200,
     "{'type':'object','properties':{'status':{'type':'string','enum':['ready','starting','draining']}}}",
     "503"},
    {"GET /api/me", "session", "The caller's user and organization", REFRESH_PARAM, NULL, 200,
     "{'type':'object','properties':{'data':{'type':'object','properties':{"
       "'user':{'$ref':'#/components/schemas/User'},"
       "'organization':{'type':'object','properties':{"
         "'id':" INT ",'name':" STR ","
         "'tier':{'type':'string','enum':['free','standard','professional','enterprise','unlimited']}}}}}}}",
     NULL},
    {"GET /api/dashboard", "aggregates", "Overview, pipeline and recent rows in one call",
     OWNER_PARAM "," REFRESH_PARAM, NULL, 200,
     "{'type':'object','properties':{"
       "'data':{'type':'object','properties':{"
         "'overview':{'type':'object','properties':{"
           "'deals':{'type':'object','properties':{"
             "'total_deals':" INT ",'open_deals':" INT ",'pipeline_value':" NUM ","
             "'weighted_value':" NUM ",'won_value_30d':" NUM "}},"
           "'activities':{'type':'object','properties':{'today_activities':" INT ",'week_activities':" INT "}},"
           "'companies':{'type':'object','properties':{"
             "'total_companies':" INT ",'companies_with_deals':" INT "}},"
           "'pipeline':{'type':'array','items':{'type':'object','properties':{"
             "'stage_id':" INT ",'name':" STR ",'color':" STR ",'deal_count':" INT ",'value':" NUM "}}}}},"
         "'recent':{'type':'object','properties':{"
           "'activities':{'type':'array','items':{'$ref':'#/components/schemas/Activity'}},"
           "'tasks':{'type':'array','items':{'$ref':'#/components/schemas/Task'}}}}}},"
       "'metadata':{'type':'object','properties':{'generated_at':" TS "}}}}",
     NULL},
    {"GET /api/deals/pipeline-stats", "aggregates", "Deals per stage and totals",
     OWNER_PARAM "," REFRESH_PARAM, NULL, 200,
     "{'type':'object','properties':{'data':{'type':'object','properties':{"
       "'stages':{'type':'array','items':{'type':'object','properties':{"
         "'stage_id':" INT ",'name':" STR ",'position':" INT ",'deal_count':" INT ","
         "'total_value':" NUM ",'weighted_value':" NUM ",'avg_value':" NUM ",'avg_age_days':" NUM "}}},"
       "'totals':{'type':'object','properties':{"
         "'deal_count':" INT ",'total_value':" NUM ",'weighted_value':" NUM ","
         "'win_rate':{'type':'number','minimum':0,'maximum':1}}}}}}}",
     NULL},
    {"GET /api/companies/{id}/analytics", "aggregates", "A company's engagement and pipeline",
     ID_PARAM "," REFRESH_PARAM, NULL, 200,
     "{'type':'object','properties':{'data':{'type':'object','properties':{"
       "'company_id':" INT ",'contact_count':" INT ",'active_deals':" INT ",'won_deals':" INT ","
       "'lost_deals':" INT ",'pipeline_value':" NUM ",'won_value':" NUM ",'activity_count_30d':" INT ","
       "'last_activity_at':" TSN ",'engagement_score':{'type':'integer','minimum':0,'maximum':100},"
       "'health':{'type':'string','enum':['hot','warm','cold']}}}}}",
     "404"},
    {"GET /api/companies/{id}/deals-summary", "aggregates", "A company's deals per status and per stage",
     ID_PARAM "," REFRESH_PARAM, NULL, 200,
     "{'type':'object','properties':{'data':{'type':'object','properties':{"
       "'company_id':" INT ","
       "'by_status':{'type':'object','additionalProperties':{'type':'object','properties':{"
         "'count':" INT ",'value':" NUM "}}},"
       "'by_stage':{'type':'array','items':{'type':'object','properties':{"
         "'stage_id':" INT ",'name':" STR ",'count':" INT ",'value':" NUM "}}}}}}}",
     "404"},
    {"POST /api/deals/bulk", "bulk", "One all-or-nothing change to up to 1000 deals", NULL,
     "{'type':'object','additionalProperties':false,'required':['operation','dealIds'],'properties':{"
       "'operation':{'type':'string','enum':['update_stage','update_owner','update_status','delete']},"
       "'dealIds':{'type':'array','minItems':1,'maxItems':1000,"
         "'items':{'type':'integer','format':'int64','minimum':1}},"
       "'updates':{'type':'object','properties':{"
         "'stage_id':" INT ",'owner_id':{'type':['integer','null']},"
         "'status':{'type':'string','enum':['open','won','lost']}}}}}",
     200,
     "{'type':'object','properties':{'data':{'type':'object','properties':{"
       "'operation':" STR ",'updated':" INT "}}}}",
     "422"},
    {"POST /graphql", "graphql",
     "A GraphQL operation (GraphQL over HTTP); the schema is served by introspection", NULL,
     "{'type':'object','additionalProperties':false,'properties':{"
       "'query':" STR ",'operationName':{'type':['string','null']},"
       "'variables':{'type':['object','null']},'extensions':{'type':['object','null']}}}",
     200,
     "{'type':'object','properties':{'data':{'type':['object','null']},'errors':{'type':'array','items':{"
       "'type':'object','required':['message'],'properties':{'message':" STR ","
         "'locations':{'type':'array','items':{'type':'object','properties':{'line':" INT ",'column':" INT "}}},"
         "'path':{'type':'array','items':{'type':['string','integer']}},'extensions':{'type':'object'}}}}}}",
     "406"},
    {"GET /graphql", "graphql", "A GraphQL query (not a mutation) from the query string; cacheable",
     "{'name':'query','in':'query','schema':{'type':'string'}},"
     "{'name':'operationName','in':'query','schema':{'type':'string'}},"
     "{'name':'variables','in':'query','description':'a JSON object','schema':{'type':'string'}},"
     "{'name':'extensions','in':'query','description':'a JSON object (persistedQuery)','schema':{'type':'string'}}",
     NULL, 200,
     "{'type':'object','properties':{'data':{'type':['object','null']},'errors':{'type':'array'}}}",
     "405,406"},
    {"POST /api/batch", "batch", "Up to 25 operations, each run as its own request", NULL,
     "{'type':'array','minItems':1,'maxItems':25,'items':{'type':'object',"
       "'required':['id','method','path'],'properties':{"
         "'id':" STR ",'method':{'type':'string','enum':['GET','POST','PATCH','DELETE']},"
         "'path':" STR ",'query':{'type':['object','string']},'body':{}}}}",
     200,
     "{'type':'array','items':{'type':'object','properties':{'id':" STR ",'status':" INT ",'body':{}}}}",
     "422"},
    {"POST /api/jobs", "jobs", "Queues a background job (Idempotency-Key: the same key gives the same job)", NULL,
     "{'type':'object','additionalProperties':false,'required':['type'],'properties':{"
       "'type':{'type':'string','enum':['import_companies','export_deals','refresh_analytics',"
         "'maintain_partitions','warm_cache','noop']},"
       "'payload':{'type':'object'},'priority':{'type':'string','enum':['high','normal']},'run_at':" TS "}}",
     202, JOB_ACCEPTED, "403,422,503"},
    {"GET /api/jobs/stats", "jobs", "Jobs of the caller's organization per type and state", NULL, NULL, 200,
     "{'type':'object','properties':{'data':{'type':'object','additionalProperties':{'type':'object',"
       "'properties':{'queued':" INT ",'running':" INT ",'retrying':" INT ",'succeeded':" INT ",'failed':" INT ","
       "'dead':" INT ",'cancelled':" INT ",'avg_duration_ms':{'type':['number','null']}}}}}}",
     "503"},
    {"GET /api/jobs/{id}", "jobs", "A job of the caller's organization", JOB_ID_PARAM, NULL, 200,
     "{'type':'object','properties':{'data':" JOB_SCHEMA "}}", "404,503"},
    {"GET /api/jobs/{id}/result", "jobs",
     "A succeeded job's stored result: an export's CSV (gzip when accepted) or an import's error list",
     JOB_ID_PARAM, NULL, 200, "{'type':'string'}", "404,409,503"},
    {"DELETE /api/jobs/{id}", "jobs", "Cancels a job that has not started", JOB_ID_PARAM, NULL, 200,
     JOB_ACCEPTED, "404,409,503"},
    {"POST /api/jobs/{id}/retry", "jobs", "Queues a dead or failed job again (admin)", JOB_ID_PARAM, NULL, 200,
     JOB_ACCEPTED, "404,409,503"},
    {"POST /api/import/companies", "jobs",
     "Imports companies from a CSV (text/csv, header row of field names) or a JSON array, up to 50 MB", NULL,
     "{'type':'array','items':{'type':'object'}}", 202, JOB_ACCEPTED, "503"},
    {"POST /api/performance/clear-cache", "operations",
     "Clears the caller's organization's cache entries on every instance (admin)", NULL,
     "{'type':'object','additionalProperties':false,'required':['scope'],'properties':{"
       "'scope':{'type':'string','enum':['all','l1','l2','tag']},'tag':" STR "}}",
     200,
     "{'type':'object','properties':{'data':{'type':'object','properties':{'cleared':" INT "}}}}",
     "422"},
    {"GET /api/performance/stats", "operations", "This instance's requests, caches, database and memory (admin)",
     NULL, NULL, 200,
     "{'type':'object','properties':{'data':{'type':'object','required':['uptime_s','requests','caches','database'],"
       "'properties':{"
         "'uptime_s':" INT ",'open_connections':" INT ","
         "'requests':{'type':'object','properties':{'total':" INT ",'per_second':" NUM ","
           "'by_status':{'type':'object','additionalProperties':" INT "},"
           "'latency_ms':{'$ref':'#/components/schemas/Percentiles'}}},"
         "'caches':{'type':'object','properties':{"
           "'l1':{'type':'object','additionalProperties':{'type':'object','properties':{"
             "'hits':" INT ",'misses':" INT ",'hit_ratio':" NUM ",'entries':" INT ",'bytes':" INT ","
             "'evictions':" INT "}}},"
           "'l2':{'type':'object','properties':{'hits':" INT ",'misses':" INT ",'errors':" INT ","
             "'hit_ratio':" NUM "}},"
           "'fills':" INT ",'coalesced':" INT ",'bypasses':" INT "}},"
         "'database':{'type':'object','properties':{"
           "'pool':{'type':'object','properties':{'size':" INT ",'connected':" INT ",'busy':" INT ","
             "'idle':" INT ",'waiting':" INT "}},"
           "'queries':" INT ",'errors':" INT ",'slow_queries':" INT ","
           "'latency_ms':{'$ref':'#/components/schemas/Percentiles'}}},"
         "'memory':{'type':'object','properties':{'rss_bytes':" INT ",'max_rss_bytes':" INT "}}}}}}",
     NULL},
    {"GET /api/performance/analysis", "operations",
     "Per prepared statement timings, query health and index recommendations from generic plans (admin)",
     NULL, NULL, 200,
     "{'type':'object','properties':{'data':{'type':'object','required':['query_health','statements',"
       "'explained','recommendations'],'properties':{"
         "'query_health':{'type':'object','properties':{"
           "'status':{'type':'string','enum':['healthy','degraded','unhealthy']},"
           "'calls':" INT ",'slow_calls':" INT ",'slow_share':" NUM ",'slow_threshold_ms':" INT "}},"
         "'statements':{'type':'array','maxItems':50,'items':{'type':'object','properties':{"
           "'id':" INT ",'sql':" STR ",'calls':" INT ",'mean_ms':" NUM ",'p95_ms':" NUM ",'max_ms':" NUM ","
           "'rows':" INT ",'slow':" INT "}}},"
         "'explained':{'type':'array','items':" INT "},"
         "'recommendations':{'type':'array','items':{'type':'object','properties':{"
           "'statement':" INT ",'table':" STR ",'table_rows':" INT ",'filter':{'type':['string','null']},"
           "'advice':" STR "}}}}}}}",
     NULL},
    {"GET /api/openapi.json", "operations", "This description", NULL, NULL, 200, "{'type':'object'}", NULL},
};
/* clang-format on */

static const route_doc_t *doc_of(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(route_docs); i++)
        if (name && strcmp(route_docs[i].name, name) == 0)
            return &route_docs[i];
    return NULL;
}

/* Appends a fragment written with ' for ". */
static void add_json(buf_t *b, const char *q)
{
    size_t n = strlen(q);
    char *p = buf_reserve(b, n);
    for (size_t i = 0; i < n; i++)
        p[i] = q[i] == '\'' ? '"' : q[i];
    b->len += n;
}

static void key(buf_t *b, const char *k)
{
    json_str(b, k, strlen(k));
    buf_putc(b, ':');
}

static void str(buf_t *b, const char *s)
{
    json_str(b, s, strlen(s));
}

/* "Company" from "company", "DealCreate" with a suffix. */
static void component_name(char *out, size_t cap, const schema_res_t *res, const char *suffix)
{
    snprintf(out, cap, "%s%s", res->singular, suffix);
    out[0] = (char)(out[0] - 'a' + 'A');
}

static void ref_component(buf_t *b, const schema_res_t *res, const char *suffix)
{
    char n[64];
    component_name(n, sizeof(n), res, suffix);
    buf_printf(b, "{\"$ref\":\"#/components/schemas/%s\"}", n);
}

static void type_of(buf_t *b, const char *t, bool nullable)
{
    if (nullable)
        buf_printf(b, "\"type\":[\"%s\",\"null\"]", t);
    else
        buf_printf(b, "\"type\":\"%s\"", t);
}

static void enum_of(buf_t *b, const char *const *e, bool nullable)
{
    buf_append_lit(b, ",\"enum\":[");
    for (int i = 0; e[i]; i++) {
        if (i)
            buf_putc(b, ',');
        str(b, e[i]);
    }
    if (nullable)
        buf_append_lit(b, ",null");
    buf_putc(b, ']');
}

/* A column as a row shows it. */
static void read_schema(buf_t *b, uint8_t kind, const char *sql_type, bool nullable, const char *const *enums,
                        const char *ref)
{
    buf_putc(b, '{');
    switch (kind) {
    case COL_INT:
        type_of(b, "integer", nullable);
        buf_printf(b, ",\"format\":\"%s\"", sql_type && strcmp(sql_type, "bigint") != 0 ? "int32" : "int64");
        break;
    case COL_MONEY:
        type_of(b, "number", nullable);
        break;
    case COL_TIMESTAMP:
        type_of(b, "string", nullable);
        buf_append_lit(b, ",\"format\":\"date-time\"");
        break;
    case COL_DATE:
        type_of(b, "string", nullable);
        buf_append_lit(b, ",\"format\":\"date\"");
        break;
    case COL_BOOL:
        type_of(b, "boolean", nullable);
        break;
    default:
        type_of(b, "string", nullable);
        if (enums)
            enum_of(b, enums, nullable);
        break;
    }
    if (ref) {
        const schema_res_t *target = schema_by_table(ref);
        buf_printf(b, ",\"description\":\"id of a %s\"", target ? target->singular : ref);
    }
    buf_putc(b, '}');
}

/* A writable column as a request body must give it. */
static void write_schema(buf_t *b, const schema_col_t *c)
{
    buf_putc(b, '{');
    switch (c->w) {
    case W_REF:
        type_of(b, "integer", c->nullable);
        buf_printf(b,
                   ",\"format\":\"int64\",\"minimum\":1,\"description\":\"id of a %s of the organization\"",
                   schema_by_table(c->ref)->singular);
        break;
    case W_TEXT:
        type_of(b, "string", c->nullable);
        buf_printf(b, ",\"minLength\":1,\"maxLength\":%u,\"description\":\"one line, no control characters\"",
                   c->max);
        break;
    case W_LONGTEXT:
        type_of(b, "string", c->nullable);
        buf_printf(b, ",\"maxLength\":%u", c->max);
        break;
    case W_ENUM:
        type_of(b, "string", c->nullable);
        enum_of(b, c->enums, c->nullable);
        break;
    case W_EMAIL:
        type_of(b, "string", c->nullable);
        buf_printf(b, ",\"format\":\"email\",\"minLength\":3,\"maxLength\":%u", c->max);
        break;
    case W_MONEY:
        type_of(b, "number", c->nullable);
        buf_append_lit(b, ",\"minimum\":0,\"exclusiveMaximum\":1000000000000,\"multipleOf\":0.01");
        break;
    case W_PERCENT:
        type_of(b, "integer", c->nullable);
        buf_append_lit(b, ",\"minimum\":0,\"maximum\":100");
        break;
    case W_DATE:
        type_of(b, "string", c->nullable);
        buf_append_lit(b, ",\"format\":\"date\"");
        break;
    case W_TIME:
        type_of(b, "string", c->nullable);
        buf_append_lit(b, ",\"format\":\"date-time\",\"description\":\"RFC 3339, years 0001-9999\"");
        break;
    default:
        break;
    }
    buf_putc(b, '}');
}

/* ---- components ---- */

static void resource_components(buf_t *b, const schema_res_t *res)
{
    char n[64];
    component_name(n, sizeof(n), res, "");
    key(b, n);
    buf_append_lit(b, "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{");
    for (size_t i = 0; i < res->ncols; i++) {
        const schema_col_t *c = &res->cols[i];
        buf_printf(b, "%s\"%s\":", i ? "," : "", c->name);
        read_schema(b, c->kind, c->sql_type, c->nullable, c->enums, c->ref);
    }
    for (size_t i = 0; i < res->nstats; i++) {
        buf_printf(b, ",\"%s\":", res->stats[i].name);
        read_schema(b, res->stats[i].kind, NULL, false, NULL, NULL);
        b->len--; /* reopen to document when it appears */
        buf_append_lit(b, ",\"description\":\"with " SCHEMA_STATS_PARAM "=true\"}");
    }
    for (size_t e = 0; e < res->nembeds; e++) {
        const schema_embed_t *em = &res->embeds[e];
        const schema_res_t *target = schema_embed_target(res, em);
        buf_printf(b,
                   ",\"%s\":{\"type\":[\"object\",\"null\"],\"description\":\"with " SCHEMA_EMBED_PARAM
                   "=true: the %s %s refers to\",\"properties\":{",
                   em->key, target->singular, em->fk);
        for (int k = 0; k < SCHEMA_EMBED_COLS && em->cols[k]; k++) {
            const schema_col_t *c = schema_col(target, em->cols[k]);
            buf_printf(b, "%s\"%s\":", k ? "," : "", c->name);
            read_schema(b, c->kind, c->sql_type, c->nullable, c->enums, c->ref);
        }
        buf_append_lit(b, "}}");
    }
    buf_append_lit(b, "},\"required\":[");
    for (size_t i = 0; i < res->ncols; i++)
        buf_printf(b, "%s\"%s\"", i ? "," : "", res->cols[i].name);
    buf_append_lit(b, "]}");
    if (!res->writable)
        return;
    for (int update = 0; update < 2; update++) {
        component_name(n, sizeof(n), res, update ? "Update" : "Create");
        buf_putc(b, ',');
        key(b, n);
        buf_append_lit(b, "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{");
        bool first = true;
        for (size_t i = 0; i < res->ncols; i++) {
            const schema_col_t *c = &res->cols[i];
            if (c->w == W_NONE)
                continue;
            buf_printf(b, "%s\"%s\":", first ? "" : ",", c->name);
            write_schema(b, c);
            first = false;
        }
        buf_putc(b, '}');
        if (!update) {
            buf_append_lit(b, ",\"required\":[");
            first = true;
            for (size_t i = 0; i < res->ncols; i++)
                if (res->cols[i].required) {
                    buf_printf(b, "%s\"%s\"", first ? "" : ",", res->cols[i].name);
                    first = false;
                }
            buf_putc(b, ']');
            if (res->anchor) /* at least one of the references that anchor the row */
                buf_append_lit(b,
                               ",\"anyOf\":[{\"required\":[\"company_id\"]},{\"required\":[\"contact_id\"]},"
                               "{\"required\":[\"deal_id\"]}]");
        }
        buf_putc(b, '}');
    }
}

static const char *const common_headers[] = {"X-Request-Id", "traceparent", "X-Response-Time",
                                             "Server-Timing", NULL};
static const char *const limit_headers[] = {"RateLimit-Policy",      "RateLimit",         "X-RateLimit-Limit",
                                            "X-RateLimit-Remaining", "X-RateLimit-Reset", NULL};

static void error_components(buf_t *b);

static void components(buf_t *b)
{
    buf_append_lit(
        b,
        "\"components\":{\"securitySchemes\":{\"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\","
        "\"description\":\"crmd_<8 character prefix>_<secret>\"},\"apiKey\":{\"type\":\"apiKey\",\"in\":"
        "\"header\",\"name\":\"X-API-Key\"}},\"headers\":{"
        "\"X-Request-Id\":{\"description\":\"the client's (1-64 of [A-Za-z0-9._-]) or a new one\",\"schema\":"
        "{\"type\":\"string\"}},"
        "\"traceparent\":{\"description\":\"W3C Trace Context: the caller's trace id (or a new one) and "
        "this request's "
        "span\",\"schema\":{\"type\":\"string\",\"pattern\":\"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$\"}},"
        "\"X-Response-Time\":{\"description\":\"e.g. 0.412ms\",\"schema\":{\"type\":\"string\"}},"
        "\"Server-Timing\":{\"description\":\"cache, db and total "
        "durations\",\"schema\":{\"type\":\"string\"}},"
        "\"RateLimit-Policy\":{\"description\":\"IETF draft: the key's "
        "policies\",\"schema\":{\"type\":\"string\"}},"
        "\"RateLimit\":{\"description\":\"IETF draft: remaining and "
        "reset\",\"schema\":{\"type\":\"string\"}},"
        "\"X-RateLimit-Limit\":{\"schema\":{\"type\":\"integer\"}},"
        "\"X-RateLimit-Remaining\":{\"schema\":{\"type\":\"integer\"}},"
        "\"X-RateLimit-Reset\":{\"description\":\"seconds until the budget refills\",\"schema\":{\"type\":"
        "\"integer\"}},"
        "\"Retry-After\":{\"description\":\"seconds\",\"schema\":{\"type\":\"integer\"}},"
        "\"ETag\":{\"description\":\"strong validator of the "
        "representation\",\"schema\":{\"type\":\"string\"}},"
        "\"X-Cache\":{\"schema\":{\"type\":\"string\",\"enum\":[\"HIT\",\"MISS\",\"BYPASS\"]}},"
        "\"Location\":{\"description\":\"the created row\",\"schema\":{\"type\":\"string\"}},"
        "\"WWW-Authenticate\":{\"schema\":{\"type\":\"string\"}}},");
    error_components(b);
    buf_append_lit(
        b,
        "\"parameters\":{"
        "\"id\":{\"name\":\"id\",\"in\":\"path\",\"required\":true,\"schema\":{\"type\":\"integer\","
        "\"format\":"
        "\"int64\",\"minimum\":1}},"
        "\"refresh\":{\"name\":\"refresh\",\"in\":\"query\",\"description\":\"true: bypass the server caches "
        "and "
        "refill them\",\"schema\":{\"type\":\"boolean\"}},"
        "\"limit\":{\"name\":\"limit\",\"in\":\"query\",\"schema\":{\"type\":\"integer\",\"minimum\":1,"
        "\"maximum\":200,\"default\":50}},"
        "\"cursor\":{\"name\":\"cursor\",\"in\":\"query\",\"description\":\"next_cursor or prev_cursor of a "
        "page "
        "of the same listing\",\"schema\":{\"type\":\"string\"}},"
        "\"If-None-Match\":{\"name\":\"If-None-Match\",\"in\":\"header\",\"schema\":{\"type\":\"string\"}},"
        "\"If-Match\":{\"name\":\"If-Match\",\"in\":\"header\",\"description\":\"the ETag the change is "
        "based "
        "on: 412 when the row changed since\",\"schema\":{\"type\":\"string\"}},"
        "\"Idempotency-Key\":{\"name\":\"Idempotency-Key\",\"in\":\"header\",\"description\":\"a replay "
        "within "
        "24 h returns the first "
        "response\",\"schema\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255}}},"
        "\"schemas\":{\"Problem\":{\"type\":\"object\",\"description\":\"RFC 9457 problem details\","
        "\"required\":[\"type\",\"title\",\"status\"],\"properties\":{\"type\":{\"type\":\"string\",\"enum\":"
        "[");
    for (int i = 0; problem_types[i]; i++)
        buf_printf(b, "%s\"/problems/%s\"", i ? "," : "", problem_types[i]);
    buf_append_lit(
        b,
        "]},\"title\":{\"type\":\"string\"},\"status\":{\"type\":\"integer\"},\"detail\":{\"type\":"
        "\"string\"},"
        "\"request_id\":{\"type\":\"string\"},\"errors\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
        "\"properties\":{\"field\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"}}}}}},"
        "\"Percentiles\":{\"type\":\"object\",\"description\":\"milliseconds\",\"properties\":{"
        "\"p50\":{\"type\":\"number\"},\"p90\":{\"type\":\"number\"},\"p95\":{\"type\":\"number\"},"
        "\"p99\":{\"type\":\"number\"},\"max\":{\"type\":\"number\"}}},"
        "\"Pagination\":{\"type\":\"object\",\"required\":[\"limit\",\"has_next\",\"has_prev\",\"next_"
        "cursor\","
        "\"prev_cursor\"],\"properties\":{\"limit\":{\"type\":\"integer\"},\"has_next\":{\"type\":"
        "\"boolean\"},"
        "\"has_prev\":{\"type\":\"boolean\"},\"next_cursor\":{\"type\":[\"string\",\"null\"]},"
        "\"prev_cursor\":{\"type\":[\"string\",\"null\"]}}}");
    for (int i = 0; i < SR_COUNT; i++) {
        buf_putc(b, ',');
        resource_components(b, &g_schema[i]);
    }
    buf_append_lit(b, "}}");
}

/* ---- operations ---- */

static const struct {
    int status;
    const char *desc;
} statuses[] = {
    {304, "not modified (If-None-Match)"},
    {400, "a query parameter, header or cursor is invalid"},
    {401, "no or unknown API key"},
    {403, "the route needs an admin key"},
    {404, "no such row in the caller's organization"},
    {405, "the method is not allowed here (a GraphQL mutation over GET)"},
    {406, "no media type in Accept is one this route answers"},
    {409, "conflict"},
    {412, "If-Match does not match the current row"},
    {413, "the body is too large"},
    {415, "the body is not application/json"},
    {422, "the body is invalid (errors[] names the fields)"},
    {429, "a rate limit is exhausted (Retry-After)"},
    {503, "unavailable or draining"},
};

static void headers_of(buf_t *b, bool limited, const char *extra)
{
    buf_append_lit(b, ",\"headers\":{");
    bool first = true;
    for (int i = 0; common_headers[i]; i++, first = false)
        buf_printf(b, "%s\"%s\":{\"$ref\":\"#/components/headers/%s\"}", first ? "" : ",", common_headers[i],
                   common_headers[i]);
    for (int i = 0; limited && limit_headers[i]; i++)
        buf_printf(b, ",\"%s\":{\"$ref\":\"#/components/headers/%s\"}", limit_headers[i], limit_headers[i]);
    if (extra)
        buf_append(b, extra, strlen(extra));
    buf_putc(b, '}');
}

/* components.responses: one per error status, with its headers and a problem body. */
static void error_components(buf_t *b)
{
    buf_append_lit(b, "\"responses\":{");
    for (size_t i = 0; i < ARRAY_LEN(statuses); i++) {
        int status = statuses[i].status;
        buf_printf(b, "%s\"E%d\":{\"description\":\"%s\"", i ? "," : "", status, statuses[i].desc);
        if (status == 304) {
            headers_of(b, true, ",\"ETag\":{\"$ref\":\"#/components/headers/ETag\"}");
        } else {
            headers_of(b, true,
                       status == 429 ? ",\"Retry-After\":{\"$ref\":\"#/components/headers/Retry-After\"}"
                       : status == 401
                           ? ",\"WWW-Authenticate\":{\"$ref\":\"#/components/headers/WWW-Authenticate\"}"
                           : NULL);
            buf_append_lit(b, ",\"content\":{\"application/problem+json\":{\"schema\":{\"$ref\":"
                              "\"#/components/schemas/Problem\"}}}");
        }
        buf_putc(b, '}');
    }
    buf_append_lit(b, "},");
}

/* Every error response carries the limit headers (see error_components). */
static void error_response(buf_t *b, int status)
{
    buf_printf(b, ",\"%d\":{\"$ref\":\"#/components/responses/E%d\"}", status, status);
}

/* Opens an operation: its id (method + path), tag, summary and security. */
static void op_begin(buf_t *b, const http_route_t *r, const char *tag, const char *summary)
{
    /* the route's name starts with its method: "GET /api/deals/{id}" → "get", "GET_api_deals_id" */
    buf_putc(b, '"');
    for (const char *p = r->name; *p && *p != ' '; p++)
        buf_putc(b, (char)(*p - 'A' + 'a'));
    buf_append_lit(b, "\":{\"operationId\":\"");
    for (const char *p = r->name; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-')
            buf_putc(b, *p);
        else if ((*p == ' ' || *p == '/') && b->data[b->len - 1] != '_')
            buf_putc(b, '_');
    buf_printf(b, "\",\"tags\":[\"%s\"],\"summary\":", tag);
    str(b, summary);
    if (r->flags & ROUTE_PUBLIC)
        buf_append_lit(b, ",\"security\":[]");
}

/* Closes an operation with its responses: success, then the errors every authenticated route
 * can give, then the route's own. */
static void op_responses(buf_t *b, const http_route_t *r, int status, const char *ok_schema,
                         const char *ok_headers, const int *errors, int nerrors)
{
    buf_printf(b, ",\"responses\":{\"%d\":{\"description\":\"success\"", status);
    headers_of(b, true, ok_headers);
    if (ok_schema)
        buf_printf(b, ",\"content\":{\"application/json\":{\"schema\":%s}}", ok_schema);
    buf_putc(b, '}');
    if (!(r->flags & ROUTE_PUBLIC)) {
        error_response(b, 400);
        error_response(b, 401);
    }
    if (r->flags & ROUTE_ADMIN)
        error_response(b, 403);
    for (int i = 0; i < nerrors; i++)
        error_response(b, errors[i]);
    error_response(b, 429);
    buf_append_lit(b, "}}");
}

/* The query parameter of a filter or extra. */
static void param(buf_t *b, const api_param_t *p)
{
    buf_printf(b, ",{\"name\":\"%s\",\"in\":\"query\",\"schema\":{", p->name);
    switch (p->kind) {
    case PARAM_ID:
        buf_append_lit(b, "\"type\":\"integer\",\"format\":\"int64\",\"minimum\":1}");
        break;
    case PARAM_DATE:
        buf_append_lit(b, "\"type\":\"string\",\"format\":\"date\"}");
        break;
    case PARAM_TIME:
        buf_append_lit(
            b, "\"type\":\"string\"},\"description\":\"a date (00:00 UTC) or an RFC 3339 timestamp\"");
        break;
    case PARAM_DECIMAL:
        buf_append_lit(b, "\"type\":\"number\"}");
        break;
    case PARAM_ENUM:
        buf_append_lit(b, "\"type\":\"string\"");
        enum_of(b, p->enums, false);
        buf_putc(b, '}');
        break;
    case PARAM_BOOL:
        buf_append_lit(b, "\"type\":\"boolean\"}");
        break;
    default:
        buf_printf(b, "\"type\":\"string\",\"minLength\":1,\"maxLength\":%u}", p->max_len ? p->max_len : 200);
        break;
    }
    buf_putc(b, '}');
}

static void extra_param(buf_t *b, const schema_res_t *res)
{
    if (res->nstats)
        param(b, &(api_param_t){SCHEMA_STATS_PARAM, PARAM_BOOL, 0, NULL});
    else if (res->nembeds)
        param(b, &(api_param_t){SCHEMA_EMBED_PARAM, PARAM_BOOL, 0, NULL});
}

/* A resource route, entirely from the schema; false when r is not one. */
static bool resource_op(buf_t *b, const http_route_t *r)
{
    const char *rest = "";
    const schema_res_t *res = schema_of_path(r->pattern, &rest);
    bool one = strcmp(rest, "/{id}") == 0;
    if (!res || (*rest && !one))
        return false;
    char schema[160], hdr[160];
    buf_t s = BUF_INIT;
    ref_component(&s, res, "");
    snprintf(schema, sizeof(schema),
             "{\"type\":\"object\",\"required\":[\"data\"],\"properties\":{\"data\":%s}}", buf_cstr(&s));
    static const char cached_headers[] =
        ",\"ETag\":{\"$ref\":\"#/components/headers/ETag\"},\"X-Cache\":{\"$ref\":"
        "\"#/components/headers/X-Cache\"}";
    if (r->method == HTTP_GET && !one) {
        char summary[96];
        snprintf(summary, sizeof(summary), "List %s (keyset pages)", res->plural);
        op_begin(b, r, res->plural, summary);
        buf_append_lit(b,
                       ",\"parameters\":[{\"$ref\":\"#/components/parameters/limit\"},{\"$ref\":"
                       "\"#/components/parameters/cursor\"},{\"name\":\"sort\",\"in\":\"query\",\"schema\":{"
                       "\"type\":\"string\",\"enum\":[");
        for (size_t i = 0; i < res->nsorts; i++)
            buf_printf(b, "%s\"%s\",\"-%s\"", i ? "," : "", res->sorts[i].name, res->sorts[i].name);
        buf_printf(b, "],\"default\":\"%s\"}}", res->default_sort);
        if (res->search) {
            buf_append_lit(b, ",{\"name\":\"q\",\"in\":\"query\",\"description\":\"full-text search over");
            for (int i = 0; res->search[i]; i++)
                buf_printf(b, "%s %s", i ? "," : "", res->search[i]);
            buf_append_lit(b, "; ordered by relevance without sort\",\"schema\":{\"type\":\"string\","
                              "\"minLength\":1,\"maxLength\":200}}");
        }
        extra_param(b, res);
        for (size_t i = 0; i < res->nfilters; i++)
            param(b, &res->filters[i].param);
        buf_append_lit(b, ",{\"$ref\":\"#/components/parameters/refresh\"},{\"$ref\":"
                          "\"#/components/parameters/If-None-Match\"}]");
        buf_t list = BUF_INIT;
        buf_printf(
            &list,
            "{\"type\":\"object\",\"required\":[\"data\",\"pagination\"],\"properties\":{\"data\":{\"type\":"
            "\"array\",\"items\":%s},\"pagination\":{\"$ref\":\"#/components/schemas/Pagination\"}}}",
            buf_cstr(&s));
        static const int errs[] = {304};
        op_responses(b, r, 200, buf_cstr(&list), cached_headers, errs, 1);
        buf_free(&list);
    } else if (r->method == HTTP_GET) {
        char summary[96];
        snprintf(summary, sizeof(summary), "One %s", res->singular);
        op_begin(b, r, res->plural, summary);
        buf_append_lit(b, ",\"parameters\":[" ID_PARAM_JSON);
        extra_param(b, res);
        buf_append_lit(b, ",{\"$ref\":\"#/components/parameters/refresh\"},{\"$ref\":"
                          "\"#/components/parameters/If-None-Match\"}]");
        static const int errs[] = {304, 404};
        op_responses(b, r, 200, schema, cached_headers, errs, 2);
    } else if (r->method == HTTP_POST && !one) {
        char summary[96];
        snprintf(summary, sizeof(summary), "Create a %s", res->singular);
        op_begin(b, r, res->plural, summary);
        buf_append_lit(b,
                       ",\"parameters\":[{\"$ref\":\"#/components/parameters/Idempotency-Key\"}]"
                       ",\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":");
        ref_component(b, res, "Create");
        buf_append_lit(b, "}}}");
        snprintf(hdr, sizeof(hdr), ",\"Location\":{\"$ref\":\"#/components/headers/Location\"}%s",
                 ",\"ETag\":{\"$ref\":\"#/components/headers/ETag\"}");
        static const int errs[] = {409, 413, 415, 422};
        op_responses(b, r, 201, schema, hdr, errs, 4);
    } else if (r->method == HTTP_PATCH && one) {
        char summary[96];
        snprintf(summary, sizeof(summary), "Change a %s (the fields given)", res->singular);
        op_begin(b, r, res->plural, summary);
        buf_append_lit(b,
                       ",\"parameters\":[" ID_PARAM_JSON ",{\"$ref\":\"#/components/parameters/If-Match\"}]"
                       ",\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":");
        ref_component(b, res, "Update");
        buf_append_lit(b, "}}}");
        static const int errs[] = {404, 409, 412, 413, 415, 422};
        op_responses(b, r, 200, schema, ",\"ETag\":{\"$ref\":\"#/components/headers/ETag\"}", errs, 6);
    } else if (r->method == HTTP_DELETE && one) {
        char summary[96];
        snprintf(summary, sizeof(summary), "Delete a %s", res->singular);
        op_begin(b, r, res->plural, summary);
        buf_append_lit(b,
                       ",\"parameters\":[" ID_PARAM_JSON ",{\"$ref\":\"#/components/parameters/If-Match\"}");
        if (res->cascade)
            buf_append_lit(b,
                           ",{\"name\":\"cascade\",\"in\":\"query\",\"description\":\"true: delete its deals "
                           "too (else 409 while it has deals)\",\"schema\":{\"type\":\"boolean\"}}");
        buf_putc(b, ']');
        static const int errs[] = {404, 409, 412};
        op_responses(b, r, 204, NULL, NULL, errs, 3);
    } else {
        buf_free(&s);
        return false;
    }
    buf_free(&s);
    return true;
}

/* A route of the table; false when it has no entry. */
static bool table_op(buf_t *b, const http_route_t *r)
{
    const route_doc_t *d = doc_of(r->name);
    if (!d)
        return false;
    op_begin(b, r, d->tag, d->summary);
    if (d->params) {
        buf_append_lit(b, ",\"parameters\":[");
        add_json(b, d->params);
        buf_putc(b, ']');
    }
    if (d->body) {
        buf_append_lit(b,
                       ",\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":");
        add_json(b, d->body);
        buf_append_lit(b, "}}}");
    }
    int errs[8], n = 0;
    for (const char *e = d->errors; e && *e && n < 8;) {
        errs[n++] = atoi(e);
        e = strchr(e, ',');
        e = e ? e + 1 : NULL;
    }
    if (d->body) {
        errs[n++] = 413;
        errs[n++] = 415;
    }
    buf_t resp = BUF_INIT;
    add_json(&resp, d->response);
    op_responses(b, r, d->status, buf_cstr(&resp), NULL, errs, n);
    buf_free(&resp);
    return true;
}

size_t api_openapi_build(const router_t *rt, buf_t *out, const char **missing, size_t cap)
{
    schema_init();
    size_t nmissing = 0;
    uint16_t n = router_route_count(rt);
    buf_append_lit(out,
                   "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"crmd\",\"version\":\"1\",\"description\":"
                   "\"The sales CRM API: resources, aggregates, bulk and batch, operations.\",\"license\":{"
                   "\"name\":\"Proprietary\",\"identifier\":\"LicenseRef-Proprietary\"}},"
                   "\"servers\":[{\"url\":\"/\"}],"
                   "\"security\":[{\"bearer\":[]},{\"apiKey\":[]}],\"paths\":{");
    bool first_path = true;
    for (uint16_t i = 1; i <= n; i++) {
        const http_route_t *r = router_route_by_id(rt, i);
        bool seen = false; /* a pattern is written once, with all its methods */
        for (uint16_t k = 1; k < i && !seen; k++)
            seen = strcmp(router_route_by_id(rt, k)->pattern, r->pattern) == 0;
        if (seen)
            continue;
        buf_printf(out, "%s", first_path ? "" : ",");
        key(out, r->pattern);
        buf_putc(out, '{');
        bool first_op = true;
        for (uint16_t k = i; k <= n; k++) {
            const http_route_t *m = router_route_by_id(rt, k);
            if (strcmp(m->pattern, r->pattern) != 0)
                continue;
            size_t mark = out->len;
            if (!first_op)
                buf_putc(out, ',');
            if (!resource_op(out, m) && !table_op(out, m)) {
                out->len = mark;
                if (nmissing < cap)
                    missing[nmissing] = m->name ? m->name : m->pattern;
                nmissing++;
                continue;
            }
            first_op = false;
        }
        buf_putc(out, '}');
        first_path = false;
    }
    buf_append_lit(out, "},");
    components(out);
    buf_putc(out, '}');
    return nmissing;
}

/* ---- the route ---- */

/* The description and its gzip and brotli encodings, made once: it never changes while the
 * process runs. */
static buf_t doc = BUF_INIT, doc_gzip = BUF_INIT, doc_br = BUF_INIT;
static char doc_etag[20];
static uint64_t doc_hash;

static void openapi_allowed(http_ctx_t *ctx, void *arg)
{
    http_add_header(ctx, LIT("ETag"), doc_etag, strlen(doc_etag));
    http_add_header(ctx, LIT("Cache-Control"), LIT("public, max-age=300"));
    http_add_header(ctx, LIT("Vary"), LIT("Accept-Encoding"));
    if (http_if_none_match(ctx->req.if_none_match, doc_hash)) {
        http_respond_raw(ctx, 304, NULL, NULL, 0);
        return;
    }
    http_encoding_t enc = http_negotiate_encoding(ctx->req.accept_encoding);
    const buf_t *body = enc == HTTP_ENCODING_GZIP && doc_gzip.len ? &doc_gzip
                        : enc == HTTP_ENCODING_BR && doc_br.len   ? &doc_br
                                                                  : &doc;
    if (body != &doc) {
        const char *name = http_encoding_name(enc);
        http_add_header(ctx, LIT("Content-Encoding"), name, strlen(name));
    }
    http_respond_raw(ctx, 200, "application/json", body->data, body->len);
}

/* No key: the unauthenticated per-IP budget first. */
static void openapi(http_ctx_t *ctx)
{
    rl_check_ip(ctx, RL_IP, openapi_allowed, NULL);
}

void api_openapi_routes(router_t *rt)
{
    http_route_t r = {.pattern = "/api/openapi.json",
                      .method = HTTP_GET,
                      .handler = openapi,
                      .flags = ROUTE_PUBLIC,
                      .name = "GET /api/openapi.json"};
    router_add(rt, &r);
    const char *missing[16];
    size_t n = api_openapi_build(rt, &doc, missing, ARRAY_LEN(missing));
    for (size_t i = 0; i < n && i < ARRAY_LEN(missing); i++)
        log_fields(LOG_ERROR, "route missing from the OpenAPI description", "route", missing[i], NULL);
    doc_hash = http_etag_hash(doc.data, doc.len);
    http_etag_format(doc_hash, doc_etag);
    http_compressor_t *z = http_compressor_new(9, 11);
    if (!http_compress(z, HTTP_ENCODING_GZIP, doc.data, doc.len, &doc_gzip))
        doc_gzip.len = 0;
    if (!http_compress(z, HTTP_ENCODING_BR, doc.data, doc.len, &doc_br))
        doc_br.len = 0;
    http_compressor_free(z);
}

void api_openapi_free(void)
{
    buf_free(&doc);
    buf_free(&doc_gzip);
    buf_free(&doc_br);
}
