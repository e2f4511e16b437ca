/*
 * Resource reads. Each resource is a table of columns, sorts and filters; one generic list and
 * one generic get handler walk it. A list's SQL depends on which filters are present, the sort,
 * q and the cursor's direction, so it is built as text with $n placeholders (values are never
 * interpolated), registered with db_stmt (prepared once per connection) and remembered in a
 * small per-thread cache keyed by that combination.
 *
 * Keyset pagination: a page asks for limit + 1 rows after (or, for a backward page, before) the
 * cursor's (sort value, id), so inserts and deletes between pages never shift rows. A backward
 * page queries in reverse order and is written reversed.
 */
#include "api/rest/resources.h"
#include "api/auth.h"
#include "api/route.h"
#include "api/common.h"
#include "api/cursor.h"
#include "api/schema.h"
#include "core/common.h"
#include "core/json.h"
#include "core/log.h"
#include "db/db.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- resources, as the schema describes them, with what the handlers derive at start-up ---- */

#define MAX_FILTERS 12
#define MAX_SPEC    (MAX_FILTERS + 5)
#define MAX_EXTRA   16

typedef struct resource {
    const schema_res_t *s;
    uint8_t index; /* position in resources[] */
    /* the extra (includeStats or includeRelationships): its select list, joins and columns */
    const char *extra_param; /* NULL: none */
    char *extra_select, *extra_join;
    api_col_t extra_cols[MAX_EXTRA];
    /* filled at registration */
    api_param_t list_spec[MAX_SPEC];
    size_t nlist_spec;
    int p_cursor, p_sort, p_q, p_extra, p_filter0;
    api_param_t get_spec[1];
    size_t nget_spec;
    db_stmt_t get_stmt[2];            /* without, with the extra */
    char list_name[48], get_name[56]; /* "GET /api/companies[/{id}]": route names; patterns after "GET " */
} resource_t;

static resource_t resources[SR_COUNT];

/* Derives the extra of res: statistics as subqueries, embeds as LEFT JOINs of their targets. */
static void derive_extra(resource_t *res)
{
    const schema_res_t *s = res->s;
    buf_t sel = BUF_INIT, join = BUF_INIT;
    size_t n = 0;
    for (size_t i = 0; i < s->nstats; i++) {
        buf_printf(&sel, ", %s", s->stats[i].sql);
        res->extra_cols[n++] = s->stats_json[i];
    }
    for (size_t e = 0; e < s->nembeds; e++) {
        const schema_embed_t *em = &s->embeds[e];
        const schema_res_t *target = schema_embed_target(s, em);
        buf_printf(&join, " LEFT JOIN %s %s ON %s.org_id = t.org_id AND %s.id = t.%s", target->table,
                   em->alias, em->alias, em->alias, em->fk);
        for (int c = 0; c < SCHEMA_EMBED_COLS && em->cols[c]; c++) {
            const schema_col_t *col = schema_col(target, em->cols[c]);
            if (!col || n == MAX_EXTRA)
                die("schema: %s embeds unknown %s.%s", s->plural, target->plural, em->cols[c]);
            buf_printf(&sel, ", %s.%s", em->alias, col->name);
            res->extra_cols[n++] = target->json[col - target->cols];
        }
    }
    res->extra_param = s->nstats ? SCHEMA_STATS_PARAM : s->nembeds ? SCHEMA_EMBED_PARAM : NULL;
    res->extra_select = sel.len ? xstrndup(sel.data, sel.len) : NULL;
    res->extra_join = join.len ? xstrndup(join.data, join.len) : NULL;
    buf_free(&sel);
    buf_free(&join);
}

static void append_select(buf_t *sql, const resource_t *res, bool extra)
{
    buf_append_lit(sql, "SELECT ");
    buf_append(sql, res->s->select, strlen(res->s->select));
    if (extra && res->extra_select)
        buf_append(sql, res->extra_select, strlen(res->extra_select));
}

static void append_from(buf_t *sql, const resource_t *res, bool extra)
{
    buf_printf(sql, " FROM %s t", res->s->table);
    if (extra && res->extra_join)
        buf_append(sql, res->extra_join, strlen(res->extra_join));
    buf_append_lit(sql, " WHERE t.org_id = $1::bigint");
}

/* Writes one row: the resource's columns, then the extra's (an embed is null when its
 * reference is). */
static void write_row(json_writer_t *w, const resource_t *res, const PGresult *r, int row, bool extra)
{
    const schema_res_t *s = res->s;
    json_obj_begin(w);
    api_json_cols(w, r, row, 0, s->json, s->ncols);
    int c = (int)s->ncols;
    if (extra && s->nstats) {
        api_json_cols(w, r, row, c, res->extra_cols, s->nstats);
    } else if (extra && s->nembeds) {
        size_t k = 0;
        for (size_t e = 0; e < s->nembeds; e++) {
            size_t ncols = 0;
            while (ncols < SCHEMA_EMBED_COLS && s->embeds[e].cols[ncols])
                ncols++;
            size_t kl = strlen(s->embeds[e].key);
            json_w_key_str(w, s->embeds[e].key, kl);
            if (PQgetisnull(r, row, c)) {
                json_w_null(w);
            } else {
                json_obj_begin(w);
                api_json_cols(w, r, row, c, &res->extra_cols[k], ncols);
                json_obj_end(w);
            }
            c += (int)ncols;
            k += ncols;
        }
    }
    json_obj_end(w);
}

const char *api_resource_select(const char *name)
{
    const schema_res_t *s = schema_find(name);
    return s ? s->select : NULL;
}

void api_resource_write_row(json_writer_t *w, const char *name, const PGresult *r, int row, int first_col)
{
    const schema_res_t *s = schema_find(name);
    json_obj_begin(w);
    if (s)
        api_json_cols(w, r, row, first_col, s->json, s->ncols);
    json_obj_end(w);
}

/* ---- list statements ---- */

#define SORT_RELEVANCE 31

/* Everything that shapes a list query's text. */
typedef struct list_plan {
    const resource_t *res;
    uint32_t fmask;  /* filters present, bit i for filters[i] */
    int sort;        /* index in res->s->sorts, or SORT_RELEVANCE */
    bool desc;       /* listing order descending */
    bool q;          /* search condition */
    bool cursor;     /* keyset condition */
    bool backward;   /* a backward page: reversed comparison and order */
    bool null_value; /* the cursor's sort value is NULL */
    bool extra;      /* includeStats / includeRelationships */
    bool generic;    /* every filter as "($n IS NULL OR ...)": one text for all filter sets */
} list_plan_t;

static uint64_t plan_key(const list_plan_t *p)
{
    return (uint64_t)p->res->index | (uint64_t)p->fmask << 4 | (uint64_t)p->sort << 20 |
           (uint64_t)p->desc << 25 | (uint64_t)p->q << 26 | (uint64_t)p->cursor << 27 |
           (uint64_t)p->backward << 28 | (uint64_t)p->null_value << 29 | (uint64_t)p->extra << 30 |
           (uint64_t)p->generic << 31;
}

/* Appends a filter's SQL with its '?' replaced by $n; optional: true when $n may be NULL. */
static void append_filter(buf_t *sql, const char *tpl, int n, bool optional)
{
    const char *q = strchr(tpl, '?');
    buf_append_lit(sql, " AND ");
    if (optional) {
        const char *cast = q + 1, *end = cast + strcspn(cast, " )");
        buf_printf(sql, "($%d%.*s IS NULL OR ", n, (int)(end - cast), cast);
    }
    buf_append(sql, tpl, (size_t)(q - tpl));
    buf_printf(sql, "$%d", n);
    buf_append(sql, q + 1, strlen(q + 1));
    if (optional)
        buf_putc(sql, ')');
}

/* The keyset condition: rows after (v[, v2], id) in the query's order, NULL sorting last. */
static void append_keyset(buf_t *sql, const list_plan_t *p, const schema_sort_t *s, const char *e, int *np)
{
    bool qdesc = p->desc != p->backward;
    const char *cmp = qdesc ? "<" : ">";
    if (p->null_value) {
        int id = (*np)++;
        if (qdesc)
            buf_printf(sql, " AND (%s IS NOT NULL OR t.id < $%d::bigint)", e, id);
        else
            buf_printf(sql, " AND (%s IS NULL AND t.id > $%d::bigint)", e, id);
        return;
    }
    const char *cast = s ? s->cast : "real";
    buf_printf(sql, " AND ((%s", e);
    if (s && s->expr2)
        buf_printf(sql, ", %s", s->expr2);
    buf_printf(sql, ", t.id) %s ($%d::%s", cmp, (*np)++, cast);
    if (s && s->expr2)
        buf_printf(sql, ", $%d::%s", (*np)++, cast);
    buf_printf(sql, ", $%d::bigint)", (*np)++);
    if (s && s->nullable && !qdesc)
        buf_printf(sql, " OR %s IS NULL", e);
    buf_append_lit(sql, ")");
}

static void build_list_sql(buf_t *sql, const list_plan_t *p)
{
    const resource_t *res = p->res;
    const schema_sort_t *s = p->sort == SORT_RELEVANCE ? NULL : &res->s->sorts[p->sort];
    int np = 2;
    append_select(sql, res, p->extra);
    buf_t where = BUF_INIT;
    for (size_t i = 0; i < res->s->nfilters; i++)
        if (p->generic || (p->fmask & (1u << i)))
            append_filter(&where, res->s->filters[i].sql, np++, p->generic);
    char rank[96];
    const char *e = s ? s->expr : rank;
    if (p->q) {
        int qn = np++;
        buf_printf(&where, " AND t.search @@ websearch_to_tsquery('simple', $%d::text)", qn);
        snprintf(rank, sizeof(rank), "ts_rank(t.search, websearch_to_tsquery('simple', $%d::text))", qn);
    }
    if (p->cursor)
        append_keyset(&where, p, s, e, &np);
    /* the sort key, selected last, is what the next cursor carries */
    buf_printf(sql, ", %s", e);
    if (s && s->expr2)
        buf_printf(sql, ", %s", s->expr2);
    append_from(sql, res, p->extra);
    buf_append(sql, where.data, where.len);
    buf_free(&where);
    const char *dir = p->desc != p->backward ? "DESC" : "ASC";
    buf_printf(sql, " ORDER BY %s %s", e, dir);
    if (s && s->expr2)
        buf_printf(sql, ", %s %s", s->expr2, dir);
    buf_printf(sql, ", t.id %s LIMIT $%d::integer", dir, np);
}

#define STMT_CACHE 1024
/*
 * Statement texts one filter set each are only built this many times per process (cache misses,
 * counted on every thread, so an over-estimate of distinct texts); past it, lists use the generic
 * text. Without the budget, clients could register every filter x sort x direction combination
 * (tens of thousands) and exhaust the statement registry.
 */
#define SPECIFIC_BUDGET 2000
static _Atomic uint32_t specific_built;

static __thread struct {
    uint64_t key;
    db_stmt_t stmt;
    bool used;
} stmt_cache[STMT_CACHE];

static db_stmt_t list_stmt(list_plan_t *p)
{
    uint64_t key = plan_key(p);
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t slot = (size_t)(h >> 56) % STMT_CACHE;
    if (stmt_cache[slot].used && stmt_cache[slot].key == key)
        return stmt_cache[slot].stmt;
    if (!p->generic && p->fmask && atomic_fetch_add(&specific_built, 1) >= SPECIFIC_BUDGET) {
        p->generic = true;
        p->fmask = 0;
        return list_stmt(p);
    }
    buf_t sql = BUF_INIT;
    build_list_sql(&sql, p);
    db_stmt_t id = db_stmt(buf_cstr(&sql));
    buf_free(&sql);
    stmt_cache[slot].key = key;
    stmt_cache[slot].stmt = id;
    stmt_cache[slot].used = true;
    return id;
}

/* ---- list handler ---- */

/* A list request between submit and its completion (in the request arena). */
typedef struct list_req {
    http_ctx_t *ctx;
    const resource_t *res;
    const schema_sort_t *sort; /* NULL: relevance */
    bool extra;
    bool has_cursor;
    cursor_t cur; /* the request's cursor; its texts live in the arena */
    uint64_t binding;
    int limit;
} list_req_t;

static void invalid_cursor(http_ctx_t *ctx)
{
    api_respond_problem(ctx, 400, "invalid-cursor",
                        "the cursor is malformed, was altered, or belongs to another listing", NULL);
}

/* Seals a cursor at a row of the page (the sort key is in the row's last columns). */
static bool seal_row(const list_req_t *lr, const PGresult *r, int row, uint8_t dir, char *out, size_t cap)
{
    bool two = lr->sort && lr->sort->expr2;
    return cursor_seal_row(r, row, 0, PQnfields(r) - (two ? 2 : 1), lr->sort ? lr->sort->kind : CURSOR_FLOAT,
                           two, dir, lr->binding, out, cap);
}

static void write_cursor(json_writer_t *w, const char *key, size_t kn, bool present, const char *tok)
{
    if (present && tok[0])
        json_kv_str(w, key, kn, tok, strlen(tok));
    else
        json_kv_null(w, key, kn);
}

static void list_done(db_batch_t *b, void *arg)
{
    list_req_t *lr = arg;
    http_ctx_t *ctx = lr->ctx;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    const PGresult *r = b->results[0];
    int n = PQntuples(r);
    bool more = n > lr->limit;
    int rows = more ? lr->limit : n;
    bool backward = lr->has_cursor && lr->cur.dir == CURSOR_PREV;
    bool has_next = backward ? true : more;
    bool has_prev = backward ? more : lr->has_cursor;

    json_writer_t w;
    api_json_begin_data(ctx, &w);
    json_arr_begin(&w);
    for (int i = 0; i < rows; i++)
        write_row(&w, lr->res, r, backward ? rows - 1 - i : i, lr->extra);
    json_arr_end(&w);

    /* cursors at the first and last row shown; an empty page pages on from the request's cursor */
    char next[CURSOR_TOKEN_MAX] = "", prev[CURSOR_TOKEN_MAX] = "";
    int first = backward ? rows - 1 : 0, last = backward ? 0 : rows - 1;
    if (has_next) {
        if (rows > 0) {
            seal_row(lr, r, last, CURSOR_NEXT, next, sizeof(next));
        } else {
            cursor_t c = lr->cur;
            c.dir = CURSOR_NEXT;
            cursor_seal(cursor_process_key(), &c, next, sizeof(next));
        }
    }
    if (has_prev) {
        if (rows > 0) {
            seal_row(lr, r, first, CURSOR_PREV, prev, sizeof(prev));
        } else {
            cursor_t c = lr->cur;
            c.dir = CURSOR_PREV;
            cursor_seal(cursor_process_key(), &c, prev, sizeof(prev));
        }
    }
    json_w_key(&w, JSON_K("pagination"));
    json_obj_begin(&w);
    json_kv_i64(&w, JSON_K("limit"), lr->limit);
    json_kv_bool(&w, JSON_K("has_next"), has_next);
    json_kv_bool(&w, JSON_K("has_prev"), has_prev);
    write_cursor(&w, JSON_K("next_cursor"), has_next, next);
    write_cursor(&w, JSON_K("prev_cursor"), has_prev, prev);
    json_obj_end(&w);
    json_obj_end(&w);

    api_timing_db(ctx, b);
    db_batch_release(b);
    http_respond(ctx, 200, "application/json");
}

/* Resolves ?sort= (or its default) into the plan; false when it names no allowed sort. */
static bool resolve_sort(const resource_t *res, const api_value_t *sort, bool q, list_plan_t *p,
                         const char **canon)
{
    if (!sort->present && q) {
        p->sort = SORT_RELEVANCE;
        p->desc = true;
        *canon = "relevance";
        return true;
    }
    const char *s = sort->present ? sort->s : res->s->default_sort;
    *canon = s;
    p->desc = s[0] == '-';
    const char *name = s + p->desc;
    for (size_t i = 0; i < res->s->nsorts; i++) {
        if (strcmp(res->s->sorts[i].name, name) == 0) {
            p->sort = (int)i;
            return true;
        }
    }
    return false;
}

/* The cursor's value must have the type of the sort it claims to continue. */
static bool cursor_fits(const cursor_t *c, const schema_sort_t *s)
{
    if (!s)
        return c->kind == CURSOR_FLOAT;
    if (c->kind == CURSOR_NULL)
        return s->nullable;
    return c->kind == s->kind && (c->s2 != NULL) == (s->expr2 != NULL);
}

/* Adds the keyset parameters of the request's cursor. */
static int add_cursor_params(arena_t *a, const list_req_t *lr, const char **values, int nv)
{
    const cursor_t *c = &lr->cur;
    char num[48];
    if (c->kind != CURSOR_NULL) {
        if (c->kind == CURSOR_INT) {
            snprintf(num, sizeof(num), "%lld", (long long)c->i);
            values[nv++] = arena_strndup(a, num, strlen(num));
        } else if (c->kind == CURSOR_FLOAT) {
            snprintf(num, sizeof(num), "%.9g", (double)c->f);
            values[nv++] = arena_strndup(a, num, strlen(num));
        } else {
            values[nv++] = c->s;
            if (c->s2)
                values[nv++] = c->s2;
        }
    }
    snprintf(num, sizeof(num), "%lld", (long long)c->id);
    values[nv++] = arena_strndup(a, num, strlen(num));
    return nv;
}

/* Rewrites values[1..nv) (present filters, then the rest) for the generic text. */
static int generic_params(const resource_t *res, const api_value_t *v, const char **values, int nv)
{
    const char *rest[8 + MAX_FILTERS];
    int nf = 0, nrest = 0;
    for (size_t i = 0; i < res->s->nfilters; i++)
        nf += v[res->p_filter0 + (int)i].present;
    for (int i = 1 + nf; i < nv; i++)
        rest[nrest++] = values[i];
    int o = 1;
    for (size_t i = 0; i < res->s->nfilters; i++) {
        const api_value_t *f = &v[res->p_filter0 + (int)i];
        values[o++] = f->present ? f->s : NULL;
    }
    for (int i = 0; i < nrest; i++)
        values[o++] = rest[i];
    return o;
}

static void list_resource(http_ctx_t *ctx, const api_auth_t *auth, const resource_t *res)
{
    arena_t *a = &ctx->arena;
    api_value_t v[MAX_SPEC];
    api_errors_t errs = {0};
    if (!api_query_parse(a, ctx->req.query, res->list_spec, res->nlist_spec, v, NULL, &errs)) {
        api_respond_bad_params(ctx, &errs);
        return;
    }
    list_req_t *lr = arena_alloc(a, sizeof(*lr));
    memset(lr, 0, sizeof(*lr));
    lr->ctx = ctx;
    lr->res = res;
    lr->limit = v[0].present ? (int)v[0].i : 50;
    const api_value_t *q = res->p_q >= 0 && v[res->p_q].present ? &v[res->p_q] : NULL;
    list_plan_t plan = {.res = res, .q = q != NULL};
    plan.extra = lr->extra = res->p_extra >= 0 && v[res->p_extra].b;
    const char *sort_canon;
    if (!resolve_sort(res, &v[res->p_sort], q != NULL, &plan, &sort_canon)) {
        api_errors_add(&errs, LIT("sort"), "is not an allowed sort");
        api_respond_bad_params(ctx, &errs);
        return;
    }
    lr->sort = plan.sort == SORT_RELEVANCE ? NULL : &res->s->sorts[plan.sort];

    /* the filters in table order, canonical: the cursor binding and the parameters */
    const char *values[8 + MAX_FILTERS];
    int nv = 0;
    values[nv++] = auth->org_id_s;
    buf_t canon = BUF_INIT;
    for (size_t i = 0; i < res->s->nfilters; i++) {
        const api_value_t *f = &v[res->p_filter0 + (int)i];
        if (!f->present)
            continue;
        plan.fmask |= 1u << i;
        buf_printf(&canon, "%s=%s\n", res->s->filters[i].param.name, f->s);
        values[nv++] = f->s;
    }
    if (q)
        values[nv++] = q->s;
    lr->binding = cursor_binding(auth->org_id, res->s->plural, canon.data, canon.len, sort_canon,
                                 q ? q->s : NULL, q ? q->n : 0);
    buf_free(&canon);

    const api_value_t *cv = &v[res->p_cursor];
    if (cv->present) {
        char *scratch = arena_alloc(a, cv->n + 1);
        if (!cursor_open(cursor_process_key(), cv->s, cv->n, lr->binding, &lr->cur, scratch, cv->n + 1) ||
            !cursor_fits(&lr->cur, lr->sort)) {
            invalid_cursor(ctx);
            return;
        }
        lr->has_cursor = plan.cursor = true;
        plan.backward = lr->cur.dir == CURSOR_PREV;
        plan.null_value = lr->cur.kind == CURSOR_NULL;
        nv = add_cursor_params(a, lr, values, nv);
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", lr->limit + 1);
    values[nv++] = lim;

    db_stmt_t stmt = list_stmt(&plan);
    if (plan.generic) /* every filter has its parameter, NULL when absent */
        nv = generic_params(res, v, values, nv);
    db_batch_t *b = db_batch_new(a, DB_READ);
    db_batch_add(b, stmt, nv, values);
    db_batch_submit(b, list_done, lr);
}

/* ---- get one ---- */

typedef struct get_req {
    http_ctx_t *ctx;
    const resource_t *res;
    bool extra;
} get_req_t;

static void get_done(db_batch_t *b, void *arg)
{
    get_req_t *gr = arg;
    http_ctx_t *ctx = gr->ctx;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    const PGresult *r = b->results[0];
    api_timing_db(ctx, b);
    if (PQntuples(r) == 0) {
        db_batch_release(b);
        char detail[64];
        snprintf(detail, sizeof(detail), "no such %s", gr->res->s->singular);
        api_respond_problem(ctx, 404, "not-found", detail, NULL);
        return;
    }
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    write_row(&w, gr->res, r, 0, gr->extra);
    json_obj_end(&w);
    db_batch_release(b);
    http_respond(ctx, 200, "application/json");
}

static void get_resource(http_ctx_t *ctx, const api_auth_t *auth, const resource_t *res)
{
    arena_t *a = &ctx->arena;
    api_value_t v[1];
    api_errors_t errs = {0};
    int64_t id;
    bool ok = api_query_parse(a, ctx->req.query, res->get_spec, res->nget_spec, v, NULL, &errs);
    if (ctx->nparams < 1 || !api_parse_id(ctx->params[0].p, ctx->params[0].len, &id)) {
        api_errors_add(&errs, LIT("id"), "must be a positive integer");
        ok = false;
    }
    if (!ok) {
        api_respond_bad_params(ctx, &errs);
        return;
    }
    get_req_t *gr = arena_alloc(a, sizeof(*gr));
    gr->ctx = ctx;
    gr->res = res;
    gr->extra = res->nget_spec && v[0].b;
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    const char *values[2] = {auth->org_id_s, ids};
    db_batch_t *b = db_batch_new(a, DB_READ);
    db_batch_add(b, res->get_stmt[gr->extra], 2, values);
    db_batch_submit(b, get_done, gr);
}

/* ---- registration ---- */

static void prepare_resource(resource_t *res)
{
    size_t n = 0;
    res->list_spec[n++] = (api_param_t){"limit", PARAM_LIMIT, 0, NULL};
    res->p_cursor = (int)n;
    res->list_spec[n++] = (api_param_t){"cursor", PARAM_CURSOR, 0, NULL};
    res->p_sort = (int)n;
    res->list_spec[n++] = (api_param_t){"sort", PARAM_SORT, 0, NULL};
    res->p_q = res->p_extra = -1;
    if (res->s->search) {
        res->p_q = (int)n;
        res->list_spec[n++] = (api_param_t){"q", PARAM_TEXT, 200, NULL};
    }
    const char *extra_name = res->extra_param;
    res->nget_spec = 0;
    if (extra_name) {
        res->p_extra = (int)n;
        res->list_spec[n++] = (api_param_t){extra_name, PARAM_BOOL, 0, NULL};
        res->get_spec[res->nget_spec++] = (api_param_t){extra_name, PARAM_BOOL, 0, NULL};
    }
    res->p_filter0 = (int)n;
    if (res->s->nfilters > MAX_FILTERS)
        die("resource %s has too many filters", res->s->plural);
    for (size_t i = 0; i < res->s->nfilters; i++)
        res->list_spec[n++] = res->s->filters[i].param;
    res->nlist_spec = n;

    for (int extra = 0; extra < 2; extra++) {
        if (extra && !res->extra_param) {
            res->get_stmt[1] = res->get_stmt[0];
            continue;
        }
        buf_t sql = BUF_INIT;
        append_select(&sql, res, extra);
        append_from(&sql, res, extra);
        buf_append_lit(&sql, " AND t.id = $2::bigint");
        res->get_stmt[extra] = db_stmt(buf_cstr(&sql));
        buf_free(&sql);
    }
}

/* The resource of the route being served (resources[] follows g_schema). */
static const resource_t *route_resource(const http_ctx_t *ctx)
{
    return &resources[schema_of_path(ctx->route->pattern, NULL) - g_schema];
}

static void list_handler(http_ctx_t *ctx, const api_auth_t *auth)
{
    list_resource(ctx, auth, route_resource(ctx));
}

static void get_handler(http_ctx_t *ctx, const api_auth_t *auth)
{
    get_resource(ctx, auth, route_resource(ctx));
}

void api_resources_routes(router_t *rt)
{
    schema_init();
    cursor_process_key(); /* the warning for a missing PAGINATION_KEY comes at start-up */
    for (int i = 0; i < SR_COUNT; i++) {
        resource_t *res = &resources[i];
        res->s = &g_schema[i];
        res->index = (uint8_t)i;
        derive_extra(res);
        prepare_resource(res);
        snprintf(res->list_name, sizeof(res->list_name), "GET /api/%s", res->s->plural);
        snprintf(res->get_name, sizeof(res->get_name), "GET /api/%s/{id}", res->s->plural);
        api_route(rt, HTTP_GET, res->list_name + 4, list_handler, 0, ROUTE_CLASS_NORMAL, res->list_name);
        api_route(rt, HTTP_GET, res->get_name + 4, get_handler, 0, ROUTE_CLASS_NORMAL, res->get_name);
    }
}
