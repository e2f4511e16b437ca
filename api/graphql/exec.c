/*
 * Execution (see exec.h). Phases: (1) root fields: statements in pipelines, REST sub-requests,
 * or, for a mutation, the writes one after another; (2) the rows that REST bodies and mutations
 * name by id, one "= ANY" statement per field; (3) the response, written in the order of the
 * selection. Statement texts go through the prepared-statement registry while the process
 * has registered fewer than SHAPE_BUDGET GraphQL shapes; rarer shapes past that are sent
 * unprepared, so no client can exhaust the registry.
 */
#include "api/graphql/exec.h"
#include "api/common.h"
#include "api/graphql/introspect.h"
#include "api/graphql/plan.h"
#include "api/graphql/schema.h"
#include "core/common.h"
#include "core/crypto.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "db/db.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE_BUDGET 1024

typedef struct gql_job {
    const schema_res_t *res;
    const gql_cfield_t *f;
    const char *ids; /* "{1,2,3}" */
    const gql_path_t *path;
    db_batch_t *b;
    int qi;
    bool failed;
    gql_shape_t shape;
} gql_job_t;

typedef struct gql_root {
    const gql_cfield_t *f;
    const gql_path_t *path;
    uint16_t kind;
    const schema_res_t *res;
    gql_conn_t conn;
    gql_shape_t shape; /* a row's columns to JSON (GR_Q_ONE, GR_Q_ALL) */
    bool null_value;   /* an error made it null */
    db_batch_t *b;     /* its statement's batch, or NULL */
    int qi;
    /* a sub-request's answer */
    int status;
    const json_value_t *json;
    const char *id; /* a mutation: the row written */
    int job;        /* a mutation's read-back, or -1 */
    gql_exec_t *ex;
} gql_root_t;

/* ---------------------------------------------------------------- statements */

static __thread struct {
    uint64_t hash;
    db_stmt_t id;
} shape_cache[256];
static _Atomic uint32_t shapes_registered;

/* Adds q to batch b: prepared when its shape is (or may still be) registered, else one-off. */
static void add_statement(gql_exec_t *ex, db_batch_t *b, gql_sql_t *q)
{
    const char *sql = buf_cstr(&q->text);
    uint64_t h = hash64(sql, q->text.len) | 1;
    size_t slot = h % 256;
    ex->statements++;
    ex->resources |= q->resources;
    if (shape_cache[slot].hash == h && strcmp(db_stmt_sql(shape_cache[slot].id), sql) == 0) {
        db_batch_add(b, shape_cache[slot].id, q->nparams, q->params);
        return;
    }
    if (atomic_fetch_add(&shapes_registered, 1) < SHAPE_BUDGET) {
        db_stmt_t id = db_stmt(sql);
        shape_cache[slot].hash = h;
        shape_cache[slot].id = id;
        db_batch_add(b, id, q->nparams, q->params);
        return;
    }
    db_batch_add_sql(b, sql, q->nparams, q->params);
}

static gql_err_t *field_error(gql_exec_t *ex, const gql_cfield_t *f, const gql_path_t *path, const char *code,
                              const char *msg)
{
    gql_err_t *e = gql_errors_add(ex->errs, &f->nodes[0]->loc, 1, "%s", msg);
    if (e) {
        e->path = path;
        e->code = code;
    }
    return e;
}

/* The batch to add a statement to: the last one while it has room. */
typedef struct batches {
    db_batch_t *b[16]; /* 256 statements: more than the alias limit lets a document ask for */
    int n;
} batches_t;

static db_batch_t *batch_for(gql_exec_t *ex, batches_t *bs)
{
    if (bs->n && bs->b[bs->n - 1]->nqueries < DB_BATCH_MAX)
        return bs->b[bs->n - 1];
    if (bs->n == (int)ARRAY_LEN(bs->b))
        return NULL;
    return bs->b[bs->n++] = db_batch_new(&ex->ctx->arena, DB_READ);
}

static void phase_done(gql_exec_t *ex);

static void batch_done(db_batch_t *b, void *arg)
{
    gql_exec_t *ex = arg;
    if (b->status == DB_UNAVAILABLE || b->status == DB_TIMEOUT)
        ex->unavailable = true;
    else if (b->status != DB_OK) {
        int i = b->failed_index >= 0 && b->failed_index < b->nqueries ? b->failed_index : 0;
        const char *sql = b->oneoff[i] ? b->oneoff[i] : db_stmt_sql(b->stmts[i]);
        char head[512];
        snprintf(head, sizeof(head), "%s", sql ? sql : "");
        log_fields(LOG_ERROR, "graphql statement failed", "request_id", ex->ctx->request_id, "sqlstate",
                   b->sqlstate, "error", b->error, "sql", head, NULL);
    }
    if (--ex->pending == 0)
        phase_done(ex);
}

static void submit(gql_exec_t *ex, batches_t *bs)
{
    ex->pending += bs->n;
    for (int i = 0; i < bs->n; i++)
        db_batch_submit(bs->b[i], batch_done, ex);
}

/* A root's or job's statement result, or NULL when its batch failed. */
static const PGresult *result_of(const db_batch_t *b, int qi)
{
    return b && b->status == DB_OK ? b->results[qi] : NULL;
}

/* ---------------------------------------------------------------- phase 1: queries */

static const gql_type_t *root_type(const gql_exec_t *ex)
{
    return ex->op->kind == GD_MUTATION ? ex->run.s->mutation : ex->run.s->query;
}

static void rest_done(void *arg, int status, const char *content_type, const char *body, size_t len);

/* Runs a REST route for a projected root field (dashboard, pipelineStats). */
static void start_rest(gql_exec_t *ex, gql_root_t *r)
{
    const char *path = r->f->def->data;
    const gql_value_t *owner = gql_cfield_arg(&ex->run, r->f, "ownerId");
    const char *query = "";
    if (owner && owner->kind != GV_NULL) {
        const char *id = gql_id_text(&ex->run, owner);
        if (!id) {
            field_error(ex, r->f, r->path, "BAD_USER_INPUT",
                        "Argument \"ownerId\" must be a positive integer.");
            r->null_value = true;
            return;
        }
        size_t n = strlen(id) + 9;
        char *q = arena_alloc(&ex->ctx->arena, n);
        snprintf(q, n, "ownerId=%s", id);
        query = q;
    }
    http_subrequest_t sr = {
        .method = HTTP_GET,
        .path = path,
        .path_len = strlen(path),
        .query = query,
        .query_len = strlen(query),
        .request_id = ex->ctx->request_id,
        .done = rest_done,
        .arg = r,
    };
    ex->pending++;
    http_subrequest(ex->ctx, &sr);
}

/* A problem body's errors as GraphQL errors at the field. */
static void problem_errors(gql_exec_t *ex, gql_root_t *r, int status, const json_value_t *j)
{
    const char *code = status == 400 || status == 422   ? "BAD_USER_INPUT"
                       : status == 401                  ? "UNAUTHENTICATED"
                       : status == 403                  ? "FORBIDDEN"
                       : status == 404                  ? "NOT_FOUND"
                       : status == 409                  ? "CONFLICT"
                       : status == 412                  ? "PRECONDITION_FAILED"
                       : status == 429                  ? "RATE_LIMITED"
                       : status == 503 || status == 504 ? "SERVICE_UNAVAILABLE"
                                                        : "INTERNAL_SERVER_ERROR";
    size_t dn = 0;
    const char *detail = json_string(json_object_get(j, "detail"), &dn);
    const json_value_t *errs = json_object_get(j, "errors");
    size_t ne = json_array_len(errs);
    for (size_t i = 0; i < ne; i++) {
        size_t fn = 0, mn = 0;
        const json_value_t *e = json_array_at(errs, i);
        const char *field = json_string(json_object_get(e, "field"), &fn);
        const char *msg = json_string(json_object_get(e, "message"), &mn);
        const char *camel = field ? gql_camel(arena_strndup(&ex->ctx->arena, field, fn)) : NULL;
        char *text = NULL;
        if (camel) {
            size_t n = strlen(camel) + mn + 4;
            text = arena_alloc(&ex->ctx->arena, n);
            snprintf(text, n, "%s %.*s", camel, (int)mn, msg ? msg : "");
        }
        gql_err_t *ge = field_error(ex, r->f, r->path, code, text ? text : "invalid input");
        if (ge && camel) {
            ge->field = arena_strndup(&ex->ctx->arena, camel, strlen(camel));
        }
        free((void *)camel);
    }
    if (ne == 0) {
        const char *msg = detail ? arena_strndup(&ex->ctx->arena, detail, dn) : http_status_text(status);
        field_error(ex, r->f, r->path, code, msg);
    }
    if (status == 503 || status == 504)
        ex->unavailable = true;
}

static void rest_done(void *arg, int status, const char *content_type, const char *body, size_t len)
{
    (void)content_type;
    gql_root_t *r = arg;
    gql_exec_t *ex = r->ex;
    r->status = status;
    const json_value_t *j = body && len ? json_parse(&ex->ctx->arena, body, len, NULL) : NULL;
    if (status == 200 && j) {
        r->json = j;
    } else {
        r->null_value = true;
        problem_errors(ex, r, status, j);
    }
    if (--ex->pending == 0)
        phase_done(ex);
}

/* Starts every root field. A sub-request may answer before http_subrequest returns: one pending
 * count is held here so that nothing completes (and frees the request) while the loop runs. */
static void start_query(gql_exec_t *ex)
{
    batches_t bs = {0};
    ex->pending++;
    for (size_t i = 0; i < ex->nroots; i++) {
        gql_root_t *r = &ex->roots[i];
        if (!r->f->def)
            continue;
        if (r->kind == GR_Q_REST) {
            start_rest(ex, r);
            continue;
        }
        if (r->kind != GR_Q_ONE && r->kind != GR_Q_LIST && r->kind != GR_Q_ALL)
            continue;
        gql_sql_t q;
        gql_sql_init(&q, &ex->run, ex->auth->org_id_s, ex->errs, r->path);
        if (r->kind == GR_Q_ONE) {
            const char *id = gql_id_text(&ex->run, gql_cfield_arg(&ex->run, r->f, "id"));
            if (!id) { /* no row has an id that is not a positive integer */
                r->null_value = true;
                gql_sql_free(&q);
                continue;
            }
            gql_plan_one(&q, r->res, r->f, id, &r->shape);
        } else if (r->kind == GR_Q_ALL) {
            gql_plan_all(&q, r->res, r->f, &r->shape);
        } else {
            gql_plan_connection(&q, r->res, r->f, &r->conn);
        }
        db_batch_t *b = q.failed ? NULL : batch_for(ex, &bs);
        if (!b) {
            if (!q.failed)
                field_error(ex, r->f, r->path, "QUERY_TOO_COMPLEX", "Too many root fields.");
            r->null_value = true;
        } else {
            r->b = b;
            r->qi = b->nqueries;
            add_statement(ex, b, &q);
        }
        gql_sql_free(&q);
    }
    if (bs.n)
        submit(ex, &bs);
    if (--ex->pending == 0)
        phase_done(ex);
}

/* ---------------------------------------------------------------- phase 1: mutations */

static void next_mutation(gql_exec_t *ex);

static void add_job(gql_exec_t *ex, const schema_res_t *res, const gql_cfield_t *f, const char *ids,
                    const gql_path_t *path)
{
    if (ex->njobs == ex->cap_jobs) {
        size_t cap = ex->cap_jobs ? ex->cap_jobs * 2 : 4;
        gql_job_t *nj = arena_alloc(&ex->ctx->arena, cap * sizeof(*nj));
        if (ex->njobs)
            memcpy(nj, ex->jobs, ex->njobs * sizeof(*nj));
        ex->jobs = nj;
        ex->cap_jobs = cap;
    }
    gql_job_t *job = &ex->jobs[ex->njobs++];
    memset(job, 0, sizeof(*job));
    job->res = res;
    job->f = f;
    job->ids = ids;
    job->path = path;
}

/* The stored value of an input member for REST: the column named by the GraphQL name. */
static const schema_col_t *input_col(const schema_res_t *res, const char *camel)
{
    for (size_t i = 0; i < res->ncols; i++) {
        const char *c = gql_camel(res->cols[i].name);
        bool eq = strcmp(c, camel) == 0;
        free((void *)c);
        if (eq)
            return &res->cols[i];
    }
    return NULL;
}

/* Writes an input object as the REST body: snake_case members, ids as numbers, enums stored. */
static void write_input(buf_t *b, const schema_res_t *res, const gql_type_t *input_type, const gql_value_t *v)
{
    buf_putc(b, '{');
    size_t written = 0;
    for (size_t i = 0; v && v->kind == GV_OBJECT && i < v->n; i++) {
        const gql_object_field_t *of = &v->fields[i];
        const schema_col_t *col = input_col(res, of->name);
        const gql_input_t *decl = gql_arg_lookup(input_type->inputs, input_type->ninputs, of->name);
        if (!col || !decl)
            continue;
        if (written++)
            buf_putc(b, ',');
        json_key_str(b, col->name, strlen(col->name));
        const gql_value_t *x = of->value;
        const gql_type_t *t = gql_named_type(decl->type);
        if (!x || x->kind == GV_NULL) {
            json_null(b);
        } else if (t->kind == GK_ENUM) {
            const char *sql = gql_enum_sql(t, x->s);
            json_str(b, sql ? sql : x->s, strlen(sql ? sql : x->s));
        } else if (x->kind == GV_BOOL) {
            json_bool(b, x->b);
        } else if ((t->scalar == GSC_ID || t->scalar == GSC_DECIMAL || t->scalar == GSC_INT ||
                    t->scalar == GSC_FLOAT) &&
                   gql_numeric_text(x->s, strlen(x->s))) {
            buf_append(b, x->s, strlen(x->s));
        } else {
            json_str(b, x->s, x->kind == GV_STRING ? x->n : strlen(x->s));
        }
    }
    buf_putc(b, '}');
}

static void mutation_done(void *arg, int status, const char *content_type, const char *body, size_t len)
{
    (void)content_type;
    gql_root_t *r = arg;
    gql_exec_t *ex = r->ex;
    r->status = status;
    const json_value_t *j = body && len ? json_parse(&ex->ctx->arena, body, len, NULL) : NULL;
    if (status == 200 || status == 201 || status == 204) {
        if (status != 204) {
            const json_value_t *idv = json_object_get(json_object_get(j, "data"), "id");
            size_t n = 0;
            const char *t = json_number_text(idv, &n);
            if (t)
                r->id = arena_strndup(&ex->ctx->arena, t, n);
        }
        if (!r->id)
            r->null_value = true;
    } else {
        r->null_value = true;
        problem_errors(ex, r, status, j);
    }
    if (r->id && r->kind != GR_M_DELETE && r->f->nodes[0]->sel.n) {
        size_t n = strlen(r->id) + 3;
        char *ids = arena_alloc(&ex->ctx->arena, n);
        snprintf(ids, n, "{%s}", r->id);
        r->job = (int)ex->njobs;
        add_job(ex, r->res, r->f, ids, r->path);
    }
    ex->pending--;
    next_mutation(ex);
}

static void start_mutation(gql_exec_t *ex, gql_root_t *r)
{
    arena_t *a = &ex->ctx->arena;
    const gql_run_t *run = &ex->run;
    const char *id = NULL;
    if (r->kind != GR_M_CREATE) {
        id = gql_id_text(run, gql_cfield_arg(run, r->f, "id"));
        if (!id) {
            field_error(ex, r->f, r->path, "NOT_FOUND", "Not Found");
            r->null_value = true;
            next_mutation(ex);
            return;
        }
        if (r->kind == GR_M_DELETE)
            r->id = id;
    }
    buf_t path = BUF_INIT, body = BUF_INIT;
    buf_printf(&path, "/api/%s", r->res->plural);
    if (id)
        buf_printf(&path, "/%s", id);
    http_method_t m = HTTP_PATCH;
    const char *query = "";
    switch (r->kind) {
    case GR_M_CREATE:
        m = HTTP_POST;
        /* fall through */
    case GR_M_UPDATE: {
        const gql_input_t *decl = gql_arg_lookup(r->f->def->args, r->f->def->nargs, "input");
        write_input(&body, r->res, gql_named_type(decl->type), gql_cfield_arg(run, r->f, "input"));
        break;
    }
    case GR_M_DELETE: {
        m = HTTP_DELETE;
        const gql_value_t *c = gql_cfield_arg(run, r->f, "cascade");
        if (c && c->kind == GV_BOOL && c->b)
            query = "cascade=true";
        break;
    }
    case GR_M_MOVE_STAGE: {
        const char *stage = gql_id_text(run, gql_cfield_arg(run, r->f, "stageId"));
        buf_printf(&body, "{\"stage_id\":%s}", stage ? stage : "0");
        break;
    }
    case GR_M_COMPLETE_TASK:
        buf_append_lit(&body, "{\"status\":\"done\"}");
        break;
    }
    /* the request's key names the request: its i-th mutation field writes under "<key>#<i>", so a
     * replay replays each field, and the key reused for another document meets REST's 422 */
    char *idem = NULL;
    if (ex->idempotency_key && r->kind != GR_M_DELETE) {
        size_t n = strlen(ex->idempotency_key);
        idem = arena_alloc(a, 256);
        if (n <= 240) {
            snprintf(idem, 256, "%s#%zu", ex->idempotency_key, (size_t)(r - ex->roots));
        } else {
            uint8_t h[SEC_SHA256_BYTES];
            sec_sha256(h, ex->idempotency_key, n);
            snprintf(idem, 256, "%.200s~%02x%02x%02x%02x%02x%02x%02x%02x#%zu", ex->idempotency_key, h[0],
                     h[1], h[2], h[3], h[4], h[5], h[6], h[7], (size_t)(r - ex->roots));
        }
    }
    http_subrequest_t sr = {
        .method = m,
        .path = arena_strndup(a, path.data, path.len),
        .path_len = path.len,
        .query = query,
        .query_len = strlen(query),
        .body = body.len ? arena_strndup(a, body.data, body.len) : NULL,
        .body_len = body.len,
        .request_id = ex->ctx->request_id,
        .idempotency_key = idem,
        .done = mutation_done,
        .arg = r,
    };
    buf_free(&path);
    buf_free(&body);
    ex->pending++;
    http_subrequest(ex->ctx, &sr);
}

/* Runs the next mutation field; the last one's answer starts phase 2. Re-entrant: a
 * sub-request may answer before http_subrequest returns. */
static void next_mutation(gql_exec_t *ex)
{
    while (ex->next_mutation < ex->nroots) {
        gql_root_t *r = &ex->roots[ex->next_mutation++];
        if (r->f->def && r->kind >= GR_M_CREATE && r->kind <= GR_M_COMPLETE_TASK) {
            start_mutation(ex, r);
            return;
        }
    }
    if (ex->pending == 0 && ex->phase == 1) {
        ex->pending = 0;
        phase_done(ex);
    }
}

/* ---------------------------------------------------------------- projection of REST bodies */

enum { COLLECT, WRITE };

typedef struct proj {
    gql_exec_t *ex;
    int mode;
    buf_t *b;
    size_t next_job;
} proj_t;

/* Member path "a.b" of object j. */
static const json_value_t *member(const json_value_t *j, const char *path)
{
    const char *dot;
    while (j && (dot = strchr(path, '.'))) {
        j = json_object_getn(j, path, (size_t)(dot - path));
        path = dot + 1;
    }
    return j ? json_object_get(j, path) : NULL;
}

static void write_scalar(buf_t *b, const gql_type_t *t, const json_value_t *v)
{
    if (!v || json_type(v) == JSON_NULL) {
        json_null(b);
        return;
    }
    if (t->kind == GK_SCALAR && t->scalar == GSC_ID && json_type(v) == JSON_NUMBER) {
        size_t n;
        const char *s = json_number_text(v, &n);
        json_str(b, s, n);
        return;
    }
    json_value_write(b, v);
}

static void write_rows_by_id(proj_t *p, const gql_job_t *job, const json_value_t *arr);

static void project(proj_t *p, const gql_type_t *type, const gql_cset_t *fs, const json_value_t *j,
                    const gql_path_t *path)
{
    gql_exec_t *ex = p->ex;
    buf_t *b = p->b;
    if (p->mode == WRITE)
        buf_putc(b, '{');
    for (size_t i = 0; i < fs->n; i++) {
        const gql_cfield_t *f = &fs->f[i];
        if (p->mode == WRITE) {
            if (i)
                buf_putc(b, ',');
            json_key_str(b, f->key, strlen(f->key));
        }
        if (!f->def || strcmp(f->def->name, "__typename") == 0) {
            if (p->mode == WRITE)
                json_str(b, type->name, strlen(type->name));
            continue;
        }
        const gql_path_t *fp = gql_path_key(&ex->run, path, f->key);
        if (f->def->resolve == GR_MEMBER_ROWS) {
            const gql_member_rows_t *mr = f->def->data;
            const json_value_t *arr = json_object_get(j, mr->member);
            if (p->mode == COLLECT) {
                buf_t ids = BUF_INIT;
                buf_putc(&ids, '{');
                for (size_t k = 0; k < json_array_len(arr); k++) {
                    size_t n;
                    const char *t = json_number_text(json_object_get(json_array_at(arr, k), "id"), &n);
                    if (t) {
                        if (ids.len > 1)
                            buf_putc(&ids, ',');
                        buf_append(&ids, t, n);
                    }
                }
                buf_putc(&ids, '}');
                add_job(ex, mr->res, f, arena_strndup(&ex->ctx->arena, ids.data, ids.len), fp);
                buf_free(&ids);
            } else {
                write_rows_by_id(p, &ex->jobs[p->next_job++], arr);
            }
            continue;
        }
        const json_value_t *v = member(j, f->def->data);
        const gql_type_t *t = f->def->type;
        if (t->kind == GK_NON_NULL)
            t = t->of;
        const gql_type_t *nt = gql_named_type(t);
        if (nt->kind != GK_OBJECT) {
            if (p->mode == WRITE)
                write_scalar(b, nt, v);
            continue;
        }
        gql_cset_t sub = {0};
        gql_collect_sub(&ex->run, f, nt, &sub);
        if (t->kind == GK_LIST) {
            if (p->mode == WRITE)
                buf_putc(b, '[');
            for (size_t k = 0; k < json_array_len(v); k++) {
                if (p->mode == WRITE && k)
                    buf_putc(b, ',');
                project(p, nt, &sub, json_array_at(v, k), gql_path_index(&ex->run, fp, (int64_t)k));
            }
            if (p->mode == WRITE)
                buf_putc(b, ']');
        } else if (v) {
            project(p, nt, &sub, v, fp);
        } else if (p->mode == WRITE) {
            json_null(b);
        }
    }
    if (p->mode == WRITE)
        buf_putc(b, '}');
}

/* The rows of a by-id job in the order the body lists their ids (the id is column 0). */
static void write_rows_by_id(proj_t *p, const gql_job_t *job, const json_value_t *arr)
{
    buf_t *b = p->b;
    const PGresult *r = result_of(job->b, job->qi);
    buf_putc(b, '[');
    size_t written = 0;
    for (size_t k = 0; r && k < json_array_len(arr); k++) {
        size_t n;
        const char *t = json_number_text(json_object_get(json_array_at(arr, k), "id"), &n);
        for (int row = 0; t && row < PQntuples(r); row++) {
            if ((size_t)PQgetlength(r, row, 0) == n && memcmp(PQgetvalue(r, row, 0), t, n) == 0) {
                if (written++)
                    buf_putc(b, ',');
                gql_write_shape(b, &job->shape, r, row);
                break;
            }
        }
    }
    buf_putc(b, ']');
}

/* ---------------------------------------------------------------- phase 2 and the response */

static void write_response(gql_exec_t *ex);

static void start_jobs(gql_exec_t *ex)
{
    /* the projected bodies name rows: register their loads in the order writing meets them */
    for (size_t i = 0; i < ex->nroots; i++) {
        gql_root_t *r = &ex->roots[i];
        if (r->kind != GR_Q_REST || !r->json)
            continue;
        proj_t p = {ex, COLLECT, NULL, 0};
        gql_cset_t sub = {0};
        const gql_type_t *t = gql_named_type(r->f->def->type);
        gql_collect_sub(&ex->run, r->f, t, &sub);
        r->job = (int)ex->njobs; /* its first load; writing meets them in the same order */
        project(&p, t, &sub, r->json, r->path);
    }
    batches_t bs = {0};
    for (size_t i = 0; i < ex->njobs; i++) {
        gql_job_t *job = &ex->jobs[i];
        gql_sql_t q;
        gql_sql_init(&q, &ex->run, ex->auth->org_id_s, ex->errs, job->path);
        gql_plan_by_ids(&q, job->res, job->f, job->ids, &job->shape);
        db_batch_t *b = q.failed ? NULL : batch_for(ex, &bs);
        if (b) {
            job->b = b;
            job->qi = b->nqueries;
            add_statement(ex, b, &q);
        } else {
            job->failed = true;
        }
        gql_sql_free(&q);
    }
    if (bs.n)
        submit(ex, &bs);
    else
        phase_done(ex);
}

static void phase_done(gql_exec_t *ex)
{
    if (ex->phase == 1) {
        ex->phase = 2;
        start_jobs(ex);
    } else if (ex->phase == 2) {
        ex->phase = 3;
        write_response(ex);
    }
}

static void write_connection(gql_exec_t *ex, gql_root_t *r, const PGresult *res)
{
    buf_t *b = &ex->data;
    const gql_conn_t *c = &r->conn;
    int n = PQntuples(res);
    if (n == 1 && PQgetisnull(res, 0, c->key_col))
        n = 0;
    bool more = n > c->limit;
    int rows = more ? c->limit : n;
    bool has_next = c->backward ? c->has_cursor : more;
    bool has_prev = c->backward ? more : c->has_cursor;
    gql_cset_t conn = {0};
    const gql_type_t *ct = gql_named_type(r->f->def->type);
    gql_collect_sub(&ex->run, r->f, ct, &conn);
    buf_putc(b, '{');
    for (size_t i = 0; i < conn.n; i++) {
        const gql_cfield_t *f = &conn.f[i];
        if (i)
            buf_putc(b, ',');
        json_key_str(b, f->key, strlen(f->key));
        uint16_t kind = f->def ? f->def->resolve : GR_NONE;
        if (kind == GR_TOTAL) {
            buf_append(b, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        } else if (kind == GR_PAGE_INFO) {
            gql_cset_t pi = {0};
            const gql_type_t *pt = gql_named_type(f->def->type);
            gql_collect_sub(&ex->run, f, pt, &pi);
            buf_putc(b, '{');
            for (size_t k = 0; k < pi.n; k++) {
                const gql_cfield_t *pf = &pi.f[k];
                if (k)
                    buf_putc(b, ',');
                json_key_str(b, pf->key, strlen(pf->key));
                uint16_t pk = pf->def ? pf->def->resolve : GR_NONE;
                char tok[CURSOR_TOKEN_MAX];
                if (pk == GR_HAS_NEXT || pk == GR_HAS_PREV) {
                    json_bool(b, pk == GR_HAS_NEXT ? has_next : has_prev);
                } else if ((pk == GR_START_CURSOR || pk == GR_END_CURSOR) && rows > 0) {
                    bool start = pk == GR_START_CURSOR;
                    int row = c->backward ? (start ? rows - 1 : 0) : (start ? 0 : rows - 1);
                    if (gql_conn_cursor(c, res, row, tok, sizeof(tok)))
                        json_str(b, tok, strlen(tok));
                    else
                        json_null(b);
                } else if (pk == GR_NONE) {
                    json_str(b, pt->name, strlen(pt->name));
                } else {
                    json_null(b);
                }
            }
            buf_putc(b, '}');
        } else if (kind == GR_EDGES || kind == GR_NODES) {
            const gql_type_t *et = gql_named_type(f->def->type);
            gql_cset_t edge = {0};
            if (kind == GR_EDGES)
                gql_collect_sub(&ex->run, f, et, &edge);
            buf_putc(b, '[');
            for (int k = 0; k < rows; k++) {
                int row = c->backward ? rows - 1 - k : k;
                if (k)
                    buf_putc(b, ',');
                if (kind == GR_NODES) {
                    for (int nd = 0; nd < c->nnodes; nd++)
                        if (strcmp(c->node_field[nd], f->key) == 0 && !c->node_key[nd])
                            gql_write_shape(b, &c->node_shape[nd], res, row);
                    continue;
                }
                buf_putc(b, '{');
                for (size_t e = 0; e < edge.n; e++) {
                    const gql_cfield_t *ef = &edge.f[e];
                    if (e)
                        buf_putc(b, ',');
                    json_key_str(b, ef->key, strlen(ef->key));
                    uint16_t ek = ef->def ? ef->def->resolve : GR_NONE;
                    if (ek == GR_NODE) {
                        bool found = false;
                        for (int nd = 0; nd < c->nnodes && !found; nd++)
                            if (strcmp(c->node_field[nd], f->key) == 0 && c->node_key[nd] &&
                                strcmp(c->node_key[nd], ef->key) == 0) {
                                gql_write_shape(b, &c->node_shape[nd], res, row);
                                found = true;
                            }
                        if (!found)
                            json_null(b);
                    } else if (ek == GR_CURSOR) {
                        char tok[CURSOR_TOKEN_MAX];
                        if (gql_conn_cursor(c, res, row, tok, sizeof(tok)))
                            json_str(b, tok, strlen(tok));
                        else
                            json_null(b);
                    } else {
                        json_str(b, et->name, strlen(et->name));
                    }
                }
                buf_putc(b, '}');
            }
            buf_putc(b, ']');
        } else {
            json_str(b, ct->name, strlen(ct->name));
        }
    }
    buf_putc(b, '}');
}

static void write_root(gql_exec_t *ex, gql_root_t *r)
{
    buf_t *b = &ex->data;
    const gql_field_t *d = r->f->def;
    if (strcmp(d->name, "__typename") == 0) {
        const char *tn = root_type(ex)->name;
        json_str(b, tn, strlen(tn));
        return;
    }
    if (strcmp(d->name, "__schema") == 0 || strcmp(d->name, "__type") == 0) {
        gql_introspect(&ex->run, r->f, b);
        return;
    }
    if (r->null_value) {
        json_null(b);
        return;
    }
    switch (r->kind) {
    case GR_Q_ONE:
    case GR_Q_ALL:
    case GR_Q_LIST: {
        const PGresult *res = result_of(r->b, r->qi);
        if (!res) {
            r->null_value = true;
            if (!ex->unavailable)
                field_error(ex, r->f, r->path, "INTERNAL_SERVER_ERROR", "Internal server error.");
            json_null(b);
        } else if (r->kind == GR_Q_LIST) {
            write_connection(ex, r, res);
        } else if (r->kind == GR_Q_ALL) {
            buf_putc(b, '[');
            for (int row = 0; row < PQntuples(res); row++) {
                if (row)
                    buf_putc(b, ',');
                gql_write_shape(b, &r->shape, res, row);
            }
            buf_putc(b, ']');
        } else if (PQntuples(res) == 0) {
            json_null(b);
        } else {
            gql_write_shape(b, &r->shape, res, 0);
        }
        return;
    }
    case GR_Q_REST: {
        proj_t p = {ex, WRITE, b, 0};
        gql_cset_t sub = {0};
        const gql_type_t *t = gql_named_type(d->type);
        gql_collect_sub(&ex->run, r->f, t, &sub);
        p.next_job = (size_t)r->job;
        project(&p, t, &sub, r->json, r->path);
        return;
    }
    case GR_M_DELETE:
        json_str(b, r->id, strlen(r->id));
        return;
    default: /* a mutation's row, read back */
        if (r->job < 0) {
            json_null(b);
            return;
        }
        {
            const gql_job_t *job = &ex->jobs[r->job];
            const PGresult *res = result_of(job->b, job->qi);
            if (res && PQntuples(res) == 1)
                gql_write_shape(b, &job->shape, res, 0);
            else
                json_null(b);
        }
        return;
    }
}

static void write_response(gql_exec_t *ex)
{
    if (ex->unavailable) {
        ex->done(ex);
        return;
    }
    buf_t *b = &ex->data;
    bool null_data = false;
    buf_putc(b, '{');
    for (size_t i = 0; i < ex->nroots; i++) {
        gql_root_t *r = &ex->roots[i];
        if (i)
            buf_putc(b, ',');
        json_key_str(b, r->f->key, strlen(r->f->key));
        if (!r->f->def) {
            json_null(b);
            continue;
        }
        write_root(ex, r);
        if (r->null_value && r->f->def->type->kind == GK_NON_NULL)
            null_data = true;
    }
    buf_putc(b, '}');
    if (null_data)
        ex->data.len = 0; /* a non-null root field is null: data is null (spec 6.4.4) */
    ex->done(ex);
}

/* ---------------------------------------------------------------- entry */

void gql_execute(gql_exec_t *ex)
{
    arena_t *a = &ex->ctx->arena;
    ex->data = (buf_t)BUF_INIT;
    ex->phase = 1;
    gql_cset_t roots = {0};
    gql_collect(&ex->run, root_type(ex), &ex->op->sel, &roots);
    ex->nroots = roots.n;
    ex->roots = arena_alloc(a, (roots.n ? roots.n : 1) * sizeof(gql_root_t));
    memset(ex->roots, 0, (roots.n ? roots.n : 1) * sizeof(gql_root_t));
    for (size_t i = 0; i < roots.n; i++) {
        gql_root_t *r = &ex->roots[i];
        gql_cfield_t *f = arena_alloc(a, sizeof(*f));
        *f = roots.f[i];
        r->f = f;
        r->ex = ex;
        r->job = -1;
        r->path = gql_path_key(&ex->run, NULL, f->key);
        r->kind = f->def ? f->def->resolve : GR_NONE;
        r->res = f->def && r->kind != GR_Q_REST ? f->def->data : NULL;
    }
    if (ex->op->kind == GD_MUTATION) {
        next_mutation(ex);
        return;
    }
    start_query(ex);
}

void gql_exec_release(gql_exec_t *ex)
{
    for (size_t i = 0; i < ex->nroots; i++)
        if (ex->roots[i].b)
            db_batch_release(ex->roots[i].b);
    for (size_t i = 0; i < ex->njobs; i++)
        if (ex->jobs[i].b)
            db_batch_release(ex->jobs[i].b);
    buf_free(&ex->data);
}
