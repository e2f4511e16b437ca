/*
 * Bulk deal changes (see bulk.h). The whole change is one SQL statement, so the check and the
 * write cannot be separated by a concurrent writer:
 *
 *   req     the requested ids, in request order
 *   locked  the organization's deals among them, locked FOR UPDATE (in id order: no deadlock
 *           between two bulk requests over overlapping ids)
 *   missing requested ids that are not locked (another org's, deleted, never existed)
 *   ref     the referenced stage / owner of the organization (empty when it is not one)
 *   chg     the UPDATE or DELETE, which touches nothing unless missing is empty and ref is not
 *
 * and the statement answers one row: the missing ids, whether ref was found, how many deals
 * changed and their companies (for cache invalidation).
 */
#include "api/rest/bulk.h"
#include "api/auth.h"
#include "api/route.h"
#include "api/cached.h"
#include "cache/tiered.h"
#include "api/common.h"
#include "core/common.h"
#include "core/json.h"
#include "core/json_read.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum bulk_op { OP_STAGE = 0, OP_OWNER, OP_STATUS, OP_DELETE, OP_COUNT };

static const struct {
    const char *name;   /* "operation" value */
    const char *field;  /* the one member of "updates", NULL for none */
    const char *ref;    /* the ref CTE */
    const char *change; /* the chg CTE */
} ops[OP_COUNT] = {
    [OP_STAGE] =
        {"update_stage", "stage_id",
         "SELECT s.id, s.kind, s.probability FROM stages s WHERE s.org_id = $1::bigint AND s.id = $3::bigint",
         "UPDATE deals d SET stage_id = ref.id, status = ref.kind, probability = ref.probability FROM ref"},
    [OP_OWNER] = {"update_owner", "owner_id",
                  "SELECT u.id FROM users u WHERE u.org_id = $1::bigint AND u.id = $3::bigint",
                  "UPDATE deals d SET owner_id = ref.id FROM ref"},
    [OP_STATUS] = {"update_status", "status", "SELECT $3::text AS status",
                   "UPDATE deals d SET status = ref.status FROM ref"},
    [OP_DELETE] = {"delete", NULL, "SELECT 1 AS one", "DELETE FROM deals d"},
};

static const char *const status_enum[] = {"open", "won", "lost"};

static db_stmt_t op_stmt[OP_COUNT];

static db_stmt_t build_stmt(int op)
{
    buf_t sql = BUF_INIT;
    buf_printf(
        &sql,
        "WITH req AS MATERIALIZED (SELECT u.id, u.ord FROM unnest($2::bigint[]) WITH ORDINALITY u(id, ord)),"
        " locked AS MATERIALIZED (SELECT d.id FROM deals d WHERE d.org_id = $1::bigint"
        " AND d.id = ANY($2::bigint[]) ORDER BY d.id FOR UPDATE),"
        " missing AS MATERIALIZED (SELECT r.id, r.ord FROM req r"
        " WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.id = r.id)),"
        " ref AS MATERIALIZED (%s),"
        " chg AS (%s WHERE d.org_id = $1::bigint AND d.id = ANY($2::bigint[])"
        " AND NOT EXISTS (SELECT 1 FROM missing) RETURNING d.company_id)"
        " SELECT (SELECT array_agg(m.id ORDER BY m.ord) FROM missing m), (SELECT count(*) FROM ref),"
        " (SELECT count(*) FROM chg), (SELECT array_agg(DISTINCT c.company_id) FROM chg c)",
        ops[op].ref, ops[op].change);
    db_stmt_t id = db_stmt(buf_cstr(&sql));
    buf_free(&sql);
    return id;
}

/* ---- request ---- */

typedef struct bulk_req {
    http_ctx_t *ctx;
    const api_auth_t *auth;
    int op;
    int64_t *ids;
    size_t nids;
    int64_t updated;
} bulk_req_t;

static void invalid(http_ctx_t *ctx, const api_errors_t *errs)
{
    api_respond_problem(ctx, 422, "validation-failed", "the body is not valid", errs);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Reads dealIds into br; adds an error and returns false when it is not 1..1000 distinct ids. */
static bool read_ids(arena_t *a, const json_value_t *v, bulk_req_t *br, api_errors_t *errs)
{
    if (!v || json_type(v) != JSON_ARRAY) {
        api_errors_add(errs, LIT("dealIds"), v ? "must be an array of deal ids" : "is required");
        return false;
    }
    size_t n = json_array_len(v);
    if (n == 0 || n > BULK_MAX_IDS) {
        api_errors_add(errs, LIT("dealIds"), "must hold 1 to 1000 deal ids");
        return false;
    }
    br->ids = arena_alloc(a, n * sizeof(int64_t));
    br->nids = n;
    for (size_t i = 0; i < n; i++) {
        const json_value_t *e = json_array_at(v, i);
        if (json_type(e) != JSON_NUMBER || !json_get_i64(e, &br->ids[i]) || br->ids[i] <= 0) {
            api_errors_add(errs, LIT("dealIds"), "must hold positive integers only");
            return false;
        }
    }
    int64_t *sorted = arena_memdup(a, br->ids, n * sizeof(int64_t));
    qsort(sorted, n, sizeof(int64_t), cmp_i64);
    buf_t dup = BUF_INIT;
    for (size_t i = 1; i < n; i++) {
        if (sorted[i] == sorted[i - 1] && (i < 2 || sorted[i - 2] != sorted[i])) {
            if (dup.len)
                buf_append_lit(&dup, ", ");
            else
                buf_append_lit(&dup, "duplicate ids: ");
            buf_append_i64(&dup, sorted[i]);
        }
    }
    if (dup.len)
        api_errors_add(errs, LIT("dealIds"), arena_strndup(a, dup.data, dup.len));
    buf_free(&dup);
    return errs->n == 0;
}

/* Reads "updates" for the operation into *value (NULL for delete). */
static bool read_updates(arena_t *a, const json_value_t *v, int op, const char **value, api_errors_t *errs)
{
    const char *field = ops[op].field;
    *value = NULL;
    if (!field) {
        if (v && (json_type(v) != JSON_OBJECT || json_object_len(v) != 0)) {
            api_errors_add(errs, LIT("updates"), "must be absent or empty for delete");
            return false;
        }
        return true;
    }
    if (!v || json_type(v) != JSON_OBJECT) {
        api_errors_add(errs, LIT("updates"), v ? "must be an object" : "is required");
        return false;
    }
    int before = errs->n;
    for (size_t i = 0; i < json_object_len(v); i++) {
        size_t kl;
        const char *k = json_object_key_at(v, i, &kl);
        if (kl != strlen(field) || memcmp(k, field, kl) != 0) {
            char *f = arena_alloc(a, kl + 9);
            memcpy(f, "updates.", 8);
            memcpy(f + 8, k, kl);
            api_errors_add(errs, f, kl + 8, "unknown field");
        }
    }
    const json_value_t *fv = json_object_get(v, field);
    char *path = arena_alloc(a, strlen(field) + 9);
    snprintf(path, strlen(field) + 9, "updates.%s", field);
    if (!fv) {
        api_errors_add(errs, path, strlen(path), "is required");
    } else if (op == OP_STATUS) {
        size_t sl = 0;
        const char *s = json_type(fv) == JSON_STRING ? json_string(fv, &sl) : NULL;
        for (size_t i = 0; s && i < ARRAY_LEN(status_enum) && !*value; i++)
            if (strlen(status_enum[i]) == sl && memcmp(status_enum[i], s, sl) == 0)
                *value = status_enum[i];
        if (!*value)
            api_errors_add(errs, path, strlen(path), "must be one of open, won, lost");
    } else {
        int64_t id;
        if (json_type(fv) != JSON_NUMBER || !json_get_i64(fv, &id) || id <= 0) {
            api_errors_add(errs, path, strlen(path), "must be a positive integer");
        } else {
            char s[24];
            int n = snprintf(s, sizeof(s), "%lld", (long long)id);
            *value = arena_strndup(a, s, (size_t)n);
        }
    }
    return errs->n == before;
}

/* "{1,2,3}": the ids as a PostgreSQL array literal. */
static const char *ids_array(arena_t *a, const int64_t *ids, size_t n)
{
    buf_t b = BUF_INIT;
    buf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, ',');
        buf_append_i64(&b, ids[i]);
    }
    buf_putc(&b, '}');
    const char *s = arena_strndup(a, b.data, b.len);
    buf_free(&b);
    return s;
}

/* ---- answer ---- */

static void respond_ok(bulk_req_t *br)
{
    http_ctx_t *ctx = br->ctx;
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    json_obj_begin(&w);
    json_kv_str(&w, JSON_K("operation"), ops[br->op].name, strlen(ops[br->op].name));
    json_kv_i64(&w, JSON_K("updated"), br->updated);
    json_obj_end(&w);
    json_obj_end(&w);
    http_respond(ctx, 200, "application/json");
}

static void respond_after_invalidation(void *arg)
{
    respond_ok(arg);
}

/* Collects a tag in the request's arena. */
static void add_tag(bulk_req_t *br, const char **tags, int *n, const char *fmt, int64_t v)
{
    char tag[64];
    int len = snprintf(tag, sizeof(tag), fmt, (long long)v);
    tags[(*n)++] = arena_strndup(&br->ctx->arena, tag, (size_t)len);
}

/* Invalidates every view the change made stale, then answers (once Redis has answered). */
static void invalidate_and_respond(bulk_req_t *br, const PGresult *r)
{
    /* the affected companies, "{4,17}", are at most as many as the deals */
    const char **tags = arena_alloc(&br->ctx->arena, sizeof(char *) * (2 * br->nids + 3));
    int n = 0;
    for (size_t i = 0; i < br->nids; i++)
        add_tag(br, tags, &n, "deal:%lld", br->ids[i]);
    add_tag(br, tags, &n, "org:%lld:deals", br->auth->org_id);
    if (br->op == OP_DELETE) {
        add_tag(br, tags, &n, "org:%lld:tasks", br->auth->org_id);
        add_tag(br, tags, &n, "org:%lld:activities", br->auth->org_id);
    }
    const char *p = PQgetisnull(r, 0, 3) ? "" : PQgetvalue(r, 0, 3);
    while (*p && n < (int)(2 * br->nids + 3)) {
        while (*p && (*p < '0' || *p > '9'))
            p++;
        if (!*p)
            break;
        char *end;
        long long c = strtoll(p, &end, 10);
        add_tag(br, tags, &n, "company:%lld", c);
        p = end;
    }
    tcache_invalidate_all(tags, n, respond_after_invalidation, br);
}

static void bulk_done(db_batch_t *b, void *arg)
{
    bulk_req_t *br = arg;
    http_ctx_t *ctx = br->ctx;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    const PGresult *r = b->results[0];
    api_timing_db(ctx, b);
    api_errors_t errs = {0};
    if (!PQgetisnull(r, 0, 0)) {
        /* "{3,99}" -> "not found: 3, 99" */
        const char *m = PQgetvalue(r, 0, 0);
        buf_t msg = BUF_INIT;
        buf_append_lit(&msg, "not found: ");
        for (const char *p = m; *p; p++) {
            if (*p == ',')
                buf_append_lit(&msg, ", ");
            else if (*p != '{' && *p != '}')
                buf_putc(&msg, *p);
        }
        api_errors_add(&errs, LIT("dealIds"), arena_strndup(&ctx->arena, msg.data, msg.len));
        buf_free(&msg);
    }
    if (strcmp(PQgetvalue(r, 0, 1), "0") == 0) {
        const char *f = ops[br->op].field;
        char *path = arena_alloc(&ctx->arena, strlen(f) + 9);
        snprintf(path, strlen(f) + 9, "updates.%s", f);
        api_errors_add(&errs, path, strlen(path), "not found in the organization");
    }
    if (errs.n) {
        db_batch_release(b);
        api_respond_problem(ctx, 422, "validation-failed", "nothing was changed", &errs);
        return;
    }
    br->updated = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    invalidate_and_respond(br, r);
    db_batch_release(b);
}

static void bulk(http_ctx_t *ctx, const api_auth_t *auth)
{
    arena_t *a = &ctx->arena;
    const json_value_t *body = api_json_body(ctx, NULL);
    if (!body)
        return;
    api_errors_t errs = {0};
    if (json_type(body) != JSON_OBJECT) {
        api_errors_add(&errs, LIT(""), "must be an object");
        invalid(ctx, &errs);
        return;
    }
    for (size_t i = 0; i < json_object_len(body); i++) {
        size_t kl;
        const char *k = json_object_key_at(body, i, &kl);
        if (!(kl == 9 && memcmp(k, "operation", 9) == 0) && !(kl == 7 && memcmp(k, "dealIds", 7) == 0) &&
            !(kl == 7 && memcmp(k, "updates", 7) == 0))
            api_errors_add(&errs, k, kl, "unknown field");
    }
    bulk_req_t *br = arena_alloc(a, sizeof(*br));
    memset(br, 0, sizeof(*br));
    br->ctx = ctx;
    br->auth = auth;
    br->op = -1;
    const json_value_t *opv = json_object_get(body, "operation");
    size_t ol = 0;
    const char *op = opv && json_type(opv) == JSON_STRING ? json_string(opv, &ol) : NULL;
    for (int i = 0; op && i < OP_COUNT; i++)
        if (strlen(ops[i].name) == ol && memcmp(ops[i].name, op, ol) == 0)
            br->op = i;
    if (br->op < 0)
        api_errors_add(&errs, LIT("operation"),
                       opv ? "must be one of update_stage, update_owner, update_status, delete"
                           : "is required");
    read_ids(a, json_object_get(body, "dealIds"), br, &errs);
    const char *value = NULL;
    if (br->op >= 0)
        read_updates(a, json_object_get(body, "updates"), br->op, &value, &errs);
    if (errs.n) {
        invalid(ctx, &errs);
        return;
    }
    const char *values[3] = {auth->org_id_s, ids_array(a, br->ids, br->nids), value};
    db_batch_t *b = db_batch_new(a, DB_WRITE);
    db_batch_add(b, op_stmt[br->op], value ? 3 : 2, values);
    db_batch_submit(b, bulk_done, br);
}

void api_bulk_routes(router_t *rt)
{
    for (int i = 0; i < OP_COUNT; i++)
        op_stmt[i] = build_stmt(i);
    api_route(rt, HTTP_POST, "/api/deals/bulk", bulk, 0, ROUTE_CLASS_BULK, "POST /api/deals/bulk");
}
