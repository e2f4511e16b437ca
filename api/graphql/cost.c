/*
 * Query limits (see cost.h). A fragment's figures are computed once per fragment and type and
 * reused wherever it is spread, so a document that spreads fragments inside fragments costs
 * linear time to measure, not exponential.
 */
#include "api/graphql/cost.h"
#include "api/graphql/schema.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_PAGE 50
#define COST_CAP     (UINT64_C(1) << 50) /* saturate: no overflow however deep */

typedef struct memo {
    const char *name;
    const gql_type_t *type;
    gql_cost_t c;
    struct memo *next;
} memo_t;

typedef struct walk {
    const gql_run_t *run;
    memo_t *memo;
} walk_t;

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a + b > COST_CAP ? COST_CAP : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > COST_CAP / b ? COST_CAP : a * b;
}

static void measure(walk_t *w, const gql_type_t *type, const gql_selset_t *sel, gql_cost_t *out);

/* The page size a list field asks for. */
static uint64_t page(const walk_t *w, const gql_field_t *d, const gql_selection_t *s)
{
    static const char *const names[] = {"first", "last", "limit"};
    for (size_t i = 0; i < 3; i++) {
        const gql_input_t *decl = gql_arg_lookup(d->args, d->nargs, names[i]);
        if (!decl)
            continue;
        const gql_value_t *v = gql_arg_value(w->run->s, w->run->a, decl, s->args, s->nargs, w->run->vars);
        if (v && v->kind == GV_INT) {
            long n = strtol(v->s, NULL, 10);
            return n < 1 ? 1 : (uint64_t)n;
        }
    }
    return DEFAULT_PAGE;
}

static void merge(gql_cost_t *into, const gql_cost_t *c)
{
    into->cost = sat_add(into->cost, c->cost);
    if (c->depth > into->depth)
        into->depth = c->depth;
    into->aliases += c->aliases;
    into->resources |= c->resources;
    into->introspection |= c->introspection;
}

static uint32_t bit(const schema_res_t *res)
{
    return res ? 1u << (res - g_schema) : 0;
}

/* The resources whose rows field d's value is made of (its cache tags). */
static uint32_t reads(const gql_field_t *d)
{
    switch (d->resolve) {
    case GR_Q_ONE:
    case GR_Q_LIST:
    case GR_Q_ALL:
    case GR_M_CREATE:
    case GR_M_UPDATE:
    case GR_M_DELETE:
    case GR_M_MOVE_STAGE:
    case GR_M_COMPLETE_TASK:
        return bit(d->data);
    case GR_TO_ONE:
        return bit(schema_by_table(((const schema_col_t *)d->data)->ref));
    case GR_TO_MANY:
        return bit(((const gql_rel_t *)d->data)->res);
    case GR_STAT:
        return bit(schema_find(((const schema_stat_t *)d->data)->source));
    case GR_MEMBER_ROWS:
        return bit(((const gql_member_rows_t *)d->data)->res);
    case GR_Q_REST:
        return ~0u; /* aggregates read every resource */
    default:
        return 0;
    }
}

static void measure_field(walk_t *w, const gql_type_t *type, const gql_selection_t *s, gql_cost_t *out)
{
    if (s->alias)
        out->aliases++;
    const gql_field_t *d = gql_field_lookup(w->run->s, type, s->name);
    if (!d) {
        out->cost = sat_add(out->cost, 1);
        return;
    }
    if (strcmp(s->name, "__schema") == 0 || strcmp(s->name, "__type") == 0) {
        /* bounded by the schema: only its aliases count */
        gql_cost_t inside = {0};
        measure(w, gql_named_type(d->type), &s->sel, &inside);
        out->aliases += inside.aliases;
        out->introspection = true;
        out->cost = sat_add(out->cost, 1);
        if (out->depth < 1)
            out->depth = 1;
        return;
    }
    const gql_type_t *nt = gql_named_type(d->type);
    out->resources |= reads(d);
    gql_cost_t sub = {0};
    if (s->sel.n)
        measure(w, nt, &s->sel, &sub);
    uint64_t mult = 1;
    if (d->resolve == GR_Q_LIST || d->resolve == GR_TO_MANY)
        mult = page(w, d, s);
    else if (d->resolve == GR_Q_ALL || d->resolve == GR_MEMBER_ROWS)
        mult = 10;
    gql_cost_t c = {sat_add(1, sat_mul(mult, sub.cost)), sub.depth + 1, sub.aliases, sub.resources,
                    sub.introspection};
    merge(out, &c);
}

static void measure(walk_t *w, const gql_type_t *type, const gql_selset_t *sel, gql_cost_t *out)
{
    for (size_t i = 0; i < sel->n; i++) {
        const gql_selection_t *s = &sel->items[i];
        if (s->kind == GS_FIELD) {
            measure_field(w, type, s, out);
        } else if (s->kind == GS_INLINE) {
            const gql_type_t *t = s->type_cond ? gql_schema_type(w->run->s, s->type_cond) : type;
            measure(w, t ? t : type, &s->sel, out);
        } else {
            const gql_def_t *fr = gql_doc_fragment(w->run->doc, s->name);
            if (!fr)
                continue;
            const gql_type_t *t = gql_schema_type(w->run->s, fr->type_cond);
            if (!t)
                continue;
            memo_t *m = w->memo;
            while (m && !(strcmp(m->name, fr->name) == 0 && m->type == t))
                m = m->next;
            if (!m) {
                m = arena_alloc(w->run->a, sizeof(*m));
                memset(m, 0, sizeof(*m));
                m->name = fr->name;
                m->type = t;
                measure(w, t, &fr->sel, &m->c);
                m->next = w->memo;
                w->memo = m;
            }
            merge(out, &m->c);
        }
    }
}

void gql_cost(const gql_run_t *run, const gql_def_t *op, gql_cost_t *out)
{
    memset(out, 0, sizeof(*out));
    walk_t w = {run, NULL};
    const gql_type_t *root = op->kind == GD_MUTATION ? run->s->mutation : run->s->query;
    if (root)
        measure(&w, root, &op->sel, out);
}
