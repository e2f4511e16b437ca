/*
 * Selection to SQL (see plan.h). The resource table's SQL snippets (statistics, sort keys,
 * filters) are written over alias "t"; each nesting level here has its own alias (t0, t1, ...)
 * and the snippets are re-aliased as they are copied, so a level's subqueries can name their
 * parent row.
 */
#include "api/graphql/plan.h"
#include "api/common.h"
#include "api/graphql/schema.h"
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* json_build_object takes at most 100 arguments: objects of more keys are joined from chunks */
#define OBJ_CHUNK     50
#define DEFAULT_LIMIT 50
#define MAX_LIMIT     200

void gql_sql_init(gql_sql_t *q, const gql_run_t *run, const char *org_id, gql_errors_t *errs,
                  const gql_path_t *path)
{
    memset(q, 0, sizeof(*q));
    q->run = run;
    q->text = (buf_t)BUF_INIT;
    q->errs = errs;
    q->path = path;
    q->params[q->nparams++] = org_id;
    q->ncols = 0;
}

void gql_sql_free(gql_sql_t *q)
{
    buf_free(&q->text);
}

static void fail(gql_sql_t *q, const gql_cfield_t *f, const char *fmt, const char *a)
{
    if (!q->failed) {
        gql_err_t *e = gql_errors_add(q->errs, &f->nodes[0]->loc, 1, fmt, a);
        if (e) {
            e->path = q->path;
            e->code = "BAD_USER_INPUT";
        }
    }
    q->failed = true;
}

/* $n for a new parameter (the text must live as long as the statement). */
static int param(gql_sql_t *q, const char *text)
{
    if (q->nparams == GQL_PLAN_PARAMS) {
        if (!q->failed) {
            gql_err_t *e = gql_errors_add(q->errs, NULL, 0, "The field needs more than %d SQL parameters.",
                                          GQL_PLAN_PARAMS);
            if (e) {
                e->path = q->path;
                e->code = "QUERY_TOO_COMPLEX";
            }
        }
        q->failed = true;
        return 1;
    }
    q->params[q->nparams++] = text;
    return q->nparams;
}

static const char *new_alias(gql_sql_t *q)
{
    char a[16];
    snprintf(a, sizeof(a), "t%d", q->aliases++);
    return arena_strndup(q->run->a, a, strlen(a));
}

/* Appends snippet with every "t." that starts an identifier chain re-aliased to alias. */
static void aliased(buf_t *b, const char *snippet, const char *alias)
{
    for (const char *p = snippet; *p; p++) {
        bool start = p == snippet || !(p[-1] == '_' || p[-1] == '.' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                                       (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9'));
        if (start && p[0] == 't' && p[1] == '.') {
            buf_append(b, alias, strlen(alias));
            buf_putc(b, '.');
            p++;
            continue;
        }
        buf_putc(b, *p);
    }
}

const char *gql_id_text(const gql_run_t *run, const gql_value_t *v)
{
    int64_t id;
    if (!v || (v->kind != GV_STRING && v->kind != GV_INT) || !api_parse_id(v->s, strlen(v->s), &id))
        return NULL;
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)id);
    return arena_strndup(run->a, buf, (size_t)n);
}

/* An integer argument in 0..MAX_LIMIT, def when absent; -1 (error added) when out of range. */
static int limit_arg(gql_sql_t *q, const gql_cfield_t *f, const char *name, int def)
{
    const gql_value_t *v = gql_cfield_arg(q->run, f, name);
    if (!v)
        return def;
    long n = strtol(v->s, NULL, 10);
    if (v->kind != GV_INT || n < 0 || n > MAX_LIMIT) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Argument \"%s\" must be between 0 and %d.", name, MAX_LIMIT);
        fail(q, f, "%s", arena_strndup(q->run->a, msg, strlen(msg)));
        return -1;
    }
    return (int)n;
}

static void write_object(gql_sql_t *q, const schema_res_t *res, const char *alias, const gql_cset_t *fs);

/* The JSON value of field f of a row at alias. */
static void field_expr(gql_sql_t *q, const schema_res_t *res, const char *alias, const gql_cfield_t *f)
{
    buf_t *b = &q->text;
    const gql_field_t *d = f->def;
    const gql_run_t *run = q->run;
    if (!d) { /* validation guarantees every field exists */
        buf_append_lit(b, "NULL");
        return;
    }
    if (strcmp(d->name, "__typename") == 0) {
        buf_printf(b, "'%s'::text", gql_resource_type(res)->name);
        return;
    }
    switch (d->resolve) {
    case GR_COLUMN: {
        const schema_col_t *c = d->data;
        const gql_type_t *t = gql_named_type(d->type);
        if (t->kind == GK_ENUM)
            buf_printf(b, "upper(%s.%s)", alias, c->name);
        else if (t->scalar == GSC_ID)
            buf_printf(b, "%s.%s::text", alias, c->name);
        else if (t->scalar == GSC_DECIMAL)
            buf_printf(b, "%s.%s::float8", alias, c->name);
        else if (t->scalar == GSC_DATETIME)
            buf_printf(b, "to_char(%s.%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", alias,
                       c->name);
        else
            buf_printf(b, "%s.%s", alias, c->name);
        return;
    }
    case GR_STAT: {
        const schema_stat_t *s = d->data;
        buf_putc(b, '(');
        aliased(b, s->sql, alias);
        if (s->kind == COL_MONEY)
            buf_append_lit(b, ")::float8");
        else
            buf_putc(b, ')');
        return;
    }
    case GR_TO_ONE: {
        const schema_col_t *c = d->data;
        const schema_res_t *target = schema_by_table(c->ref);
        const char *ta = new_alias(q);
        gql_cset_t sub = {0};
        gql_collect_sub(run, f, gql_resource_type(target), &sub);
        buf_append_lit(b, "(SELECT ");
        write_object(q, target, ta, &sub);
        buf_printf(b, " FROM %s %s WHERE %s.org_id = $1::bigint AND %s.id = %s.%s)", target->table, ta, ta,
                   ta, alias, c->name);
        q->resources |= 1u << (target - g_schema);
        return;
    }
    case GR_TO_MANY: {
        const gql_rel_t *rel = d->data;
        const char *ta = new_alias(q);
        int lim = limit_arg(q, f, "limit", DEFAULT_LIMIT);
        if (lim < 0)
            return;
        const char *order = rel->res->default_sort;
        const gql_value_t *ob = gql_cfield_arg(run, f, "orderBy");
        if (ob && ob->kind == GV_ENUM) {
            const gql_input_t *decl = gql_arg_lookup(d->args, d->nargs, "orderBy");
            const char *sql = gql_enum_sql(gql_named_type(decl->type), ob->s);
            if (sql)
                order = sql;
        }
        bool desc = order[0] == '-';
        const schema_sort_t *s = NULL;
        for (size_t i = 0; i < rel->res->nsorts; i++)
            if (strcmp(rel->res->sorts[i].name, order + desc) == 0)
                s = &rel->res->sorts[i];
        const char *dir = desc ? " DESC" : "";
        buf_t ord = BUF_INIT;
        if (s) {
            aliased(&ord, s->expr, ta);
            buf_append(&ord, dir, strlen(dir));
            if (s->expr2) {
                buf_append_lit(&ord, ", ");
                aliased(&ord, s->expr2, ta);
                buf_append(&ord, dir, strlen(dir));
            }
            buf_append_lit(&ord, ", ");
        }
        buf_printf(&ord, "%s.id%s", ta, dir);
        char lt[16];
        snprintf(lt, sizeof(lt), "%d", lim);
        int lp = param(q, arena_strndup(run->a, lt, strlen(lt)));
        gql_cset_t sub = {0};
        gql_collect_sub(run, f, gql_resource_type(rel->res), &sub);
        buf_append_lit(b, "coalesce((SELECT json_agg(x.j ORDER BY x.n) FROM (SELECT ");
        write_object(q, rel->res, ta, &sub);
        buf_printf(b,
                   " AS j, row_number() OVER (ORDER BY %s) AS n FROM %s %s WHERE %s.org_id = $1::bigint AND "
                   "%s.%s = %s.id"
                   " ORDER BY %s LIMIT $%d::integer) x), '[]'::json)",
                   buf_cstr(&ord), rel->res->table, ta, ta, ta, rel->fk, alias, buf_cstr(&ord), lp);
        buf_free(&ord);
        q->resources |= 1u << (rel->res - g_schema);
        return;
    }
    default:
        buf_append_lit(b, "NULL");
        return;
    }
}

/* json_build_object('key', value, ...) for the collected fields, in order. */
static void write_object(gql_sql_t *q, const schema_res_t *res, const char *alias, const gql_cset_t *fs)
{
    buf_t *b = &q->text;
    q->resources |= 1u << (res - g_schema);
    if (fs->n == 0) {
        buf_append_lit(b, "json_build_object()");
        return;
    }
    size_t chunks = (fs->n + OBJ_CHUNK - 1) / OBJ_CHUNK;
    if (chunks > 1)
        buf_append_lit(b, "(");
    for (size_t c = 0; c < chunks; c++) {
        if (chunks > 1)
            buf_printf(b, "%s", c == 0 ? "left(" : " || ',' || right(");
        buf_append_lit(b, "json_build_object(");
        for (size_t i = c * OBJ_CHUNK; i < fs->n && i < (c + 1) * OBJ_CHUNK; i++) {
            if (i > c * OBJ_CHUNK)
                buf_append_lit(b, ", ");
            /* response keys are GraphQL names: [_A-Za-z][_0-9A-Za-z]*, safe in a literal */
            buf_printf(b, "'%s', ", fs->f[i].key);
            field_expr(q, res, alias, &fs->f[i]);
        }
        buf_putc(b, ')');
        if (chunks > 1)
            buf_append_lit(b, "::text, -1)");
    }
    if (chunks > 1)
        buf_append_lit(b, ")::json");
}

/* ---- flat selections: plain columns, references joined in ---- */

/* The flat select list and joins of one object being built. */
typedef struct flat {
    buf_t sel;   /* ", expr" per column */
    buf_t joins; /* " LEFT JOIN ..." per reference */
} flat_t;

static int add_col(gql_sql_t *q, flat_t *fl, const char *expr)
{
    buf_append_lit(&fl->sel, ", ");
    buf_append(&fl->sel, expr, strlen(expr));
    return q->ncols++;
}

static gql_out_t *new_out(gql_sql_t *q, gql_shape_t *shape, size_t cap, const gql_cfield_t *f)
{
    if (!shape->outs)
        shape->outs = arena_alloc(q->run->a, (cap ? cap : 1) * sizeof(gql_out_t));
    gql_out_t *o = &shape->outs[shape->n++];
    memset(o, 0, sizeof(*o));
    o->key = f->key;
    return o;
}

static uint8_t fmt_of(const gql_type_t *t)
{
    t = gql_named_type(t);
    if (t->kind == GK_ENUM)
        return FMT_ENUM;
    switch (t->scalar) {
    case GSC_ID:
        return FMT_ID;
    case GSC_DECIMAL:
        return FMT_MONEY;
    case GSC_DATETIME:
        return FMT_TIMESTAMP;
    case GSC_DATE:
        return FMT_DATE;
    case GSC_BOOLEAN:
        return FMT_BOOL;
    case GSC_STRING:
        return FMT_STRING;
    default:
        return FMT_RAW;
    }
}

/* Selects what fs asks of res's row at alias as plain columns (lists as JSON columns) into fl,
 * and describes in shape how to write them. */
static void flat_object(gql_sql_t *q, const schema_res_t *res, const char *alias, const gql_cset_t *fs,
                        flat_t *fl, gql_shape_t *shape)
{
    q->resources |= 1u << (res - g_schema);
    char expr[256];
    for (size_t i = 0; i < fs->n; i++) {
        const gql_cfield_t *f = &fs->f[i];
        const gql_field_t *d = f->def;
        gql_out_t *o = new_out(q, shape, fs->n, f);
        if (!d || strcmp(d->name, "__typename") == 0) {
            o->kind = OUT_TYPENAME;
            o->type_name = gql_resource_type(res)->name;
            continue;
        }
        switch (d->resolve) {
        case GR_COLUMN: {
            const schema_col_t *c = d->data;
            o->fmt = fmt_of(d->type);
            snprintf(expr, sizeof(expr), "%s.%s", alias, c->name);
            o->col = add_col(q, fl, expr);
            break;
        }
        case GR_STAT: {
            const schema_stat_t *st = d->data;
            buf_t e = BUF_INIT;
            buf_putc(&e, '(');
            aliased(&e, st->sql, alias);
            buf_putc(&e, ')');
            o->fmt = st->kind == COL_MONEY ? FMT_MONEY : FMT_RAW;
            o->col = add_col(q, fl, buf_cstr(&e));
            buf_free(&e);
            break;
        }
        case GR_TO_ONE: {
            const schema_col_t *c = d->data;
            const schema_res_t *target = schema_by_table(c->ref);
            const char *ta = new_alias(q);
            buf_printf(&fl->joins, " LEFT JOIN %s %s ON %s.org_id = $1::bigint AND %s.id = %s.%s",
                       target->table, ta, ta, ta, alias, c->name);
            o->kind = OUT_OBJECT;
            snprintf(expr, sizeof(expr), "%s.id", ta);
            o->col = add_col(q, fl, expr);
            gql_cset_t sub = {0};
            gql_collect_sub(q->run, f, gql_resource_type(target), &sub);
            flat_object(q, target, ta, &sub, fl, &o->sub);
            break;
        }
        case GR_TO_MANY: {
            /* a list: one JSON column built by the subquery (field_expr writes into q->text) */
            buf_t saved = q->text;
            q->text = (buf_t)BUF_INIT;
            field_expr(q, res, alias, f);
            buf_t e = q->text;
            q->text = saved;
            o->kind = OUT_JSON;
            o->col = add_col(q, fl, e.len ? buf_cstr(&e) : "NULL");
            buf_free(&e);
            break;
        }
        default:
            o->col = add_col(q, fl, "NULL");
            break;
        }
    }
}

/* The flat columns of f's selection on res at alias. */
static void flat_of(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, const char *alias,
                    flat_t *fl, gql_shape_t *shape)
{
    gql_cset_t sub = {0};
    gql_collect_sub(q->run, f, gql_resource_type(res), &sub);
    flat_object(q, res, alias, &sub, fl, shape);
}

/* "SELECT a.id<flat> FROM table a<joins>": the start of a statement over res whose column 0 is
 * the row's id. */
static void select_flat(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, const char *a,
                        gql_shape_t *shape)
{
    flat_t fl = {BUF_INIT, BUF_INIT};
    q->ncols = 1;
    flat_of(q, res, f, a, &fl, shape);
    buf_printf(&q->text, "SELECT %s.id", a);
    buf_append(&q->text, fl.sel.data, fl.sel.len);
    buf_printf(&q->text, " FROM %s %s", res->table, a);
    buf_append(&q->text, fl.joins.data, fl.joins.len);
    buf_free(&fl.sel);
    buf_free(&fl.joins);
}

void gql_plan_one(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, const char *id,
                  gql_shape_t *shape)
{
    const char *a = new_alias(q);
    select_flat(q, res, f, a, shape);
    int p = param(q, id);
    buf_printf(&q->text, " WHERE %s.org_id = $1::bigint AND %s.id = $%d::bigint", a, a, p);
}

void gql_plan_by_ids(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, const char *ids,
                     gql_shape_t *shape)
{
    const char *a = new_alias(q);
    select_flat(q, res, f, a, shape);
    int p = param(q, ids);
    buf_printf(&q->text, " WHERE %s.org_id = $1::bigint AND %s.id = ANY($%d::bigint[])", a, a, p);
}

void gql_plan_all(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, gql_shape_t *shape)
{
    const char *a = new_alias(q);
    const schema_sort_t *s = NULL;
    for (size_t i = 0; i < res->nsorts; i++)
        if (strcmp(res->sorts[i].name, res->default_sort) == 0)
            s = &res->sorts[i];
    select_flat(q, res, f, a, shape);
    buf_printf(&q->text, " WHERE %s.org_id = $1::bigint ORDER BY ", a);
    if (s) {
        aliased(&q->text, s->expr, a);
        buf_append_lit(&q->text, ", ");
    }
    buf_printf(&q->text, "%s.id", a);
}

/* ---- writing a row by its shape ---- */

void gql_append_json(buf_t *b, const char *s, size_t n)
{
    char *out = buf_reserve(b, n), *o = out;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            *o++ = c;
            if (c == '\\' && i + 1 < n)
                *o++ = s[++i];
            else if (c == '"')
                in_str = false;
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            *o++ = c;
            in_str = c == '"';
        }
    }
    b->len += (size_t)(o - out);
}

/* The column kind REST writes each format with (api_json_value); ids and enums are GraphQL's. */
static const uint8_t fmt_col[] = {
    [FMT_RAW] = COL_INT,   [FMT_STRING] = COL_TEXT, [FMT_MONEY] = COL_MONEY, [FMT_TIMESTAMP] = COL_TIMESTAMP,
    [FMT_DATE] = COL_DATE, [FMT_BOOL] = COL_BOOL,
};

static void write_value(buf_t *b, uint8_t fmt, const PGresult *r, int row, int col)
{
    const char *v = PQgetvalue(r, row, col);
    size_t n = (size_t)PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col)) {
        json_null(b);
    } else if (fmt == FMT_ID) {
        json_str(b, v, n); /* an ID is a string */
    } else if (fmt == FMT_ENUM) {
        char up[64];
        size_t k = 0;
        for (; k < n && k < sizeof(up); k++)
            up[k] = (v[k] >= 'a' && v[k] <= 'z') ? (char)(v[k] - 32) : v[k];
        json_str(b, up, k);
    } else {
        json_writer_t w;
        json_writer_init(&w, b);
        api_json_value(&w, r, row, col, fmt_col[fmt]);
    }
}

void gql_write_shape(buf_t *b, const gql_shape_t *shape, const PGresult *r, int row)
{
    buf_putc(b, '{');
    for (size_t i = 0; i < shape->n; i++) {
        const gql_out_t *o = &shape->outs[i];
        if (i)
            buf_putc(b, ',');
        json_key_str(b, o->key, strlen(o->key));
        switch (o->kind) {
        case OUT_TYPENAME:
            json_str(b, o->type_name, strlen(o->type_name));
            break;
        case OUT_VALUE:
            write_value(b, o->fmt, r, row, o->col);
            break;
        case OUT_JSON:
            if (PQgetisnull(r, row, o->col))
                json_null(b);
            else
                gql_append_json(b, PQgetvalue(r, row, o->col), (size_t)PQgetlength(r, row, o->col));
            break;
        default:
            if (PQgetisnull(r, row, o->col))
                json_null(b);
            else
                gql_write_shape(b, &o->sub, r, row);
            break;
        }
    }
    buf_putc(b, '}');
}

/* ---- connections ---- */

/* A filter argument's value as the REST parameter would give it to SQL; NULL when absent. */
static const char *filter_value(gql_sql_t *q, const gql_cfield_t *f, const schema_filter_t *flt, bool *bad)
{
    const gql_value_t *v = gql_cfield_arg(q->run, f, flt->param.name);
    if (!v || v->kind == GV_NULL)
        return NULL;
    const char *text = v->s;
    if (v->kind == GV_ENUM) {
        const gql_input_t *decl = gql_arg_lookup(f->def->args, f->def->nargs, flt->param.name);
        text = gql_enum_sql(gql_named_type(decl->type), v->s);
    } else if (v->kind == GV_BOOL) {
        text = v->b ? "true" : "false";
    } else if (v->kind == GV_FLOAT && strpbrk(v->s, "eE")) {
        /* a Float literal with an exponent (5e4): as the plain decimal REST would take */
        char num[64];
        double d = strtod(v->s, NULL);
        if (d > -1e15 && d < 1e15) {
            snprintf(num, sizeof(num), "%.6f", d);
            char *e = num + strlen(num) - 1;
            while (*e == '0')
                *e-- = '\0';
            if (*e == '.')
                *e = '\0';
            text = arena_strndup(q->run->a, num, strlen(num));
        }
    }
    api_value_t out;
    const char *err =
        text ? api_param_check(q->run->a, &flt->param, text, strlen(text), &out) : "is not valid";
    if (err) {
        char msg[192];
        snprintf(msg, sizeof(msg), "Argument \"%s\" %s.", flt->param.name, err);
        fail(q, f, "%s", arena_strndup(q->run->a, msg, strlen(msg)));
        *bad = true;
        return NULL;
    }
    return out.s ? out.s : arena_strndup(q->run->a, text, strlen(text));
}

/* Appends " AND <filter>" with its '?' as $n. */
static void append_filter(buf_t *b, const char *tpl, int n, const char *alias)
{
    const char *qm = strchr(tpl, '?');
    buf_append_lit(b, " AND ");
    char *head = xstrndup(tpl, (size_t)(qm - tpl));
    aliased(b, head, alias);
    free(head);
    buf_printf(b, "$%d", n);
    aliased(b, qm + 1, alias);
}

void gql_plan_connection(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, gql_conn_t *c)
{
    const gql_run_t *run = q->run;
    memset(c, 0, sizeof(*c));
    c->res = res;
    const char *a = new_alias(q);
    int first = limit_arg(q, f, "first", -2), last = limit_arg(q, f, "last", -2);
    const gql_value_t *after = gql_cfield_arg(run, f, "after"), *before = gql_cfield_arg(run, f, "before");
    if (q->failed)
        return;
    if (first != -2 && last != -2) {
        fail(q, f, "%s", "Arguments \"first\" and \"last\" cannot be combined.");
        return;
    }
    if (after && before) {
        fail(q, f, "%s", "Arguments \"after\" and \"before\" cannot be combined.");
        return;
    }
    c->backward = last != -2 || before;
    c->limit = last != -2 ? last : first != -2 ? first : DEFAULT_LIMIT;

    /* filters, canonical for the cursor binding */
    buf_t where = BUF_INIT, canon = BUF_INIT;
    bool bad = false;
    for (size_t i = 0; i < res->nfilters; i++) {
        const char *v = filter_value(q, f, &res->filters[i], &bad);
        if (!v)
            continue;
        buf_printf(&canon, "%s=%s\n", res->filters[i].param.name, v);
        append_filter(&where, res->filters[i].sql, param(q, v), a);
    }
    const gql_value_t *search = res->search ? gql_cfield_arg(run, f, "search") : NULL;
    const char *qtext = NULL;
    if (search && search->kind == GV_STRING) {
        api_param_t qp = {"search", PARAM_TEXT, 200, NULL};
        api_value_t out;
        const char *err = api_param_check(run->a, &qp, search->s, search->n, &out);
        if (err) {
            char msg[192];
            snprintf(msg, sizeof(msg), "Argument \"search\" %s.", err);
            fail(q, f, "%s", arena_strndup(run->a, msg, strlen(msg)));
            bad = true;
        } else {
            qtext = out.s;
        }
    }
    /* sort */
    const char *sort_canon = res->default_sort;
    const gql_value_t *ob = gql_cfield_arg(run, f, "orderBy");
    if (ob && ob->kind == GV_ENUM) {
        const gql_input_t *decl = gql_arg_lookup(f->def->args, f->def->nargs, "orderBy");
        sort_canon = gql_enum_sql(gql_named_type(decl->type), ob->s);
    } else if (qtext) {
        sort_canon = "relevance";
    }
    bool desc = true;
    c->sort = NULL;
    if (strcmp(sort_canon, "relevance") != 0) {
        desc = sort_canon[0] == '-';
        for (size_t i = 0; i < res->nsorts; i++)
            if (strcmp(res->sorts[i].name, sort_canon + desc) == 0)
                c->sort = &res->sorts[i];
    }
    char binding_name[64];
    snprintf(binding_name, sizeof(binding_name), "graphql:%s", res->plural);
    c->binding = cursor_binding(strtoll(q->params[0], NULL, 10), binding_name, canon.data ? canon.data : "",
                                canon.len, sort_canon, qtext, qtext ? strlen(qtext) : 0);
    buf_free(&canon);
    buf_t rank = BUF_INIT;
    if (qtext) {
        int qn = param(q, qtext);
        buf_printf(&where, " AND %s.search @@ websearch_to_tsquery('simple', $%d::text)", a, qn);
        buf_printf(&rank, "ts_rank(%s.search, websearch_to_tsquery('simple', $%d::text))", a, qn);
    }
    buf_t key = BUF_INIT, key2 = BUF_INIT;
    if (c->sort) {
        aliased(&key, c->sort->expr, a);
        if (c->sort->expr2)
            aliased(&key2, c->sort->expr2, a);
    } else {
        buf_append(&key, rank.data, rank.len);
    }
    /* the keyset condition */
    const gql_value_t *cur = after ? after : before;
    if (cur && !bad) {
        cursor_t cv;
        size_t n = strlen(cur->s);
        char *scratch = arena_alloc(run->a, n + 1);
        bool ok = cur->kind == GV_STRING &&
                  cursor_open(cursor_process_key(), cur->s, n, c->binding, &cv, scratch, n + 1);
        if (ok)
            ok = c->sort ? (cv.kind == CURSOR_NULL
                                ? c->sort->nullable
                                : cv.kind == c->sort->kind && (cv.s2 != NULL) == (c->sort->expr2 != NULL))
                         : cv.kind == CURSOR_FLOAT;
        if (!ok) {
            fail(q, f, "%s", "Argument \"after\"/\"before\" is not a cursor of this listing.");
            bad = true;
        } else {
            c->has_cursor = true;
            bool qdesc = desc != c->backward;
            const char *cmp = qdesc ? "<" : ">";
            char num[48];
            if (cv.kind == CURSOR_NULL) {
                snprintf(num, sizeof(num), "%lld", (long long)cv.id);
                int idp = param(q, arena_strndup(run->a, num, strlen(num)));
                if (qdesc)
                    buf_printf(&where, " AND (%s IS NOT NULL OR %s.id < $%d::bigint)", buf_cstr(&key), a,
                               idp);
                else
                    buf_printf(&where, " AND (%s IS NULL AND %s.id > $%d::bigint)", buf_cstr(&key), a, idp);
            } else {
                const char *v1;
                if (cv.kind == CURSOR_INT) {
                    snprintf(num, sizeof(num), "%lld", (long long)cv.i);
                    v1 = arena_strndup(run->a, num, strlen(num));
                } else if (cv.kind == CURSOR_FLOAT) {
                    snprintf(num, sizeof(num), "%.9g", (double)cv.f);
                    v1 = arena_strndup(run->a, num, strlen(num));
                } else {
                    v1 = cv.s;
                }
                const char *cast = c->sort ? c->sort->cast : "real";
                buf_printf(&where, " AND ((%s", buf_cstr(&key));
                if (key2.len)
                    buf_printf(&where, ", %s", buf_cstr(&key2));
                buf_printf(&where, ", %s.id) %s ($%d::%s", a, cmp, param(q, v1), cast);
                if (key2.len)
                    buf_printf(&where, ", $%d::%s", param(q, cv.s2), cast);
                snprintf(num, sizeof(num), "%lld", (long long)cv.id);
                buf_printf(&where, ", $%d::bigint)", param(q, arena_strndup(run->a, num, strlen(num))));
                if (c->sort && c->sort->nullable && !qdesc)
                    buf_printf(&where, " OR %s IS NULL", buf_cstr(&key));
                buf_append_lit(&where, ")");
            }
        }
    }
    if (bad || q->failed) {
        buf_free(&where);
        buf_free(&rank);
        buf_free(&key);
        buf_free(&key2);
        return;
    }

    /* what the selection needs: the total, and the node's columns for each edges/nodes group */
    gql_cset_t conn = {0};
    gql_collect_sub(run, f, gql_named_type(f->def->type), &conn);
    bool total = false;
    buf_t *b = &q->text;
    flat_t fl = {BUF_INIT, BUF_INIT};
    q->ncols = key2.len ? 4 : 3; /* total, id, the sort key[s] */
    c->key_col = 1;
    for (size_t i = 0; i < conn.n; i++) {
        const gql_cfield_t *cf = &conn.f[i];
        if (!cf->def)
            continue;
        if (cf->def->resolve == GR_TOTAL)
            total = true;
        if (cf->def->resolve == GR_NODES && c->nnodes < GQL_CONN_NODECOLS) {
            c->node_field[c->nnodes] = cf->key;
            c->node_key[c->nnodes] = NULL;
            flat_of(q, res, cf, a, &fl, &c->node_shape[c->nnodes++]);
        }
        if (cf->def->resolve == GR_EDGES) {
            gql_cset_t edge = {0};
            gql_collect_sub(run, cf, gql_named_type(cf->def->type), &edge);
            for (size_t k = 0; k < edge.n; k++)
                if (edge.f[k].def && edge.f[k].def->resolve == GR_NODE && c->nnodes < GQL_CONN_NODECOLS) {
                    c->node_field[c->nnodes] = cf->key;
                    c->node_key[c->nnodes] = edge.f[k].key;
                    flat_of(q, res, &edge.f[k], a, &fl, &c->node_shape[c->nnodes++]);
                }
        }
    }
    buf_append_lit(b, "SELECT ");
    if (total) {
        buf_printf(b, "(SELECT count(*) FROM %s %s WHERE %s.org_id = $1::bigint", res->table, a, a);
        /* the total ignores the keyset condition: rebuild the filters alone */
        buf_t tw = BUF_INIT;
        int pi = 2;
        for (size_t i = 0; i < res->nfilters; i++) {
            const gql_value_t *v = gql_cfield_arg(run, f, res->filters[i].param.name);
            if (!v || v->kind == GV_NULL)
                continue;
            append_filter(&tw, res->filters[i].sql, pi++, a);
        }
        if (qtext)
            buf_printf(&tw, " AND %s.search @@ websearch_to_tsquery('simple', $%d::text)", a, pi);
        buf_append(b, tw.data, tw.len);
        buf_free(&tw);
        buf_append_lit(b, ")");
    } else {
        buf_append_lit(b, "NULL::bigint");
    }
    buf_printf(b, ", p.* FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT %s.id, %s AS k1", a, buf_cstr(&key));
    if (key2.len)
        buf_printf(b, ", %s AS k2", buf_cstr(&key2));
    buf_append(b, fl.sel.data, fl.sel.len);
    buf_printf(b, " FROM %s %s", res->table, a);
    buf_append(b, fl.joins.data, fl.joins.len);
    buf_printf(b, " WHERE %s.org_id = $1::bigint", a);
    buf_append(b, where.data, where.len);
    const char *dir = desc != c->backward ? "DESC" : "ASC";
    buf_printf(b, " ORDER BY %s %s", buf_cstr(&key), dir);
    if (key2.len)
        buf_printf(b, ", %s %s", buf_cstr(&key2), dir);
    char lt[16];
    snprintf(lt, sizeof(lt), "%d", c->limit + 1);
    buf_printf(b, ", %s.id %s LIMIT $%d::integer) p ON true", a, dir,
               param(q, arena_strndup(run->a, lt, strlen(lt))));
    buf_free(&fl.sel);
    buf_free(&fl.joins);
    buf_free(&where);
    buf_free(&rank);
    buf_free(&key);
    buf_free(&key2);
    q->resources |= 1u << (res - g_schema);
}

bool gql_conn_cursor(const gql_conn_t *c, const PGresult *r, int row, char *out, size_t cap)
{
    return cursor_seal_row(r, row, c->key_col, c->key_col + 1, c->sort ? c->sort->kind : CURSOR_FLOAT,
                           c->sort && c->sort->expr2, CURSOR_NEXT, c->binding, out, cap);
}
