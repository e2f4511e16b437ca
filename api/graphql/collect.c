/*
 * Field collection (see collect.h). A fragment is expanded at most once per selection set, as
 * the spec's visitedFragments says; validation has already refused fragment cycles.
 */
#include "api/graphql/collect.h"

#include <string.h>

static bool applies(const gql_run_t *run, const char *cond, const gql_type_t *type)
{
    if (!cond)
        return true;
    const gql_type_t *t = gql_schema_type(run->s, cond);
    return t && gql_is_possible(t, type);
}

/* The fragments already expanded in one collection (the spec's visitedFragments): a fragment
 * spread twice is expanded once, so repeated spreads cannot multiply the work. */
typedef struct visited {
    const char **names;
    size_t n, cap;
} visited_t;

static bool visit(const gql_run_t *run, visited_t *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->names[i], name) == 0)
            return false;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        const char **nn = arena_alloc(run->a, cap * sizeof(*nn));
        if (v->n)
            memcpy(nn, v->names, v->n * sizeof(*nn));
        v->names = nn;
        v->cap = cap;
    }
    v->names[v->n++] = name;
    return true;
}

static void add(const gql_run_t *run, gql_cset_t *out, const gql_type_t *type, const gql_selection_t *sel)
{
    const char *key = sel->alias ? sel->alias : sel->name;
    gql_cfield_t *f = NULL;
    for (size_t i = 0; i < out->n; i++)
        if (strcmp(out->f[i].key, key) == 0) {
            f = &out->f[i];
            break;
        }
    if (!f) {
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 8;
            gql_cfield_t *nf = arena_alloc(run->a, cap * sizeof(*nf));
            if (out->n)
                memcpy(nf, out->f, out->n * sizeof(*nf));
            out->f = nf;
            out->cap = cap;
        }
        f = &out->f[out->n++];
        memset(f, 0, sizeof(*f));
        f->key = key;
        f->def = gql_field_lookup(run->s, type, sel->name);
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 2;
        const gql_selection_t **nn = arena_alloc(run->a, cap * sizeof(*nn));
        if (f->n)
            memcpy(nn, f->nodes, f->n * sizeof(*nn));
        f->nodes = nn;
        f->cap = cap;
    }
    f->nodes[f->n++] = sel;
}

static void collect(const gql_run_t *run, const gql_type_t *type, const gql_selset_t *sel, gql_cset_t *out,
                    visited_t *visited)
{
    for (size_t i = 0; i < sel->n; i++) {
        const gql_selection_t *s = &sel->items[i];
        if (!gql_directives_include(s->dirs, s->ndirs, run->vars))
            continue;
        if (s->kind == GS_FIELD) {
            add(run, out, type, s);
        } else if (s->kind == GS_INLINE) {
            if (applies(run, s->type_cond, type))
                collect(run, type, &s->sel, out, visited);
        } else {
            if (!visit(run, visited, s->name))
                continue;
            const gql_def_t *fr = gql_doc_fragment(run->doc, s->name);
            if (fr && applies(run, fr->type_cond, type))
                collect(run, type, &fr->sel, out, visited);
        }
    }
}

void gql_collect(const gql_run_t *run, const gql_type_t *type, const gql_selset_t *sel, gql_cset_t *out)
{
    visited_t v = {0};
    collect(run, type, sel, out, &v);
}

void gql_collect_sub(const gql_run_t *run, const gql_cfield_t *f, const gql_type_t *type, gql_cset_t *out)
{
    visited_t v = {0};
    for (size_t i = 0; i < f->n; i++)
        collect(run, type, &f->nodes[i]->sel, out, &v);
}

const gql_value_t *gql_cfield_arg(const gql_run_t *run, const gql_cfield_t *f, const char *name)
{
    const gql_input_t *decl = f->def ? gql_arg_lookup(f->def->args, f->def->nargs, name) : NULL;
    if (!decl)
        return NULL;
    const gql_selection_t *s = f->nodes[0];
    return gql_arg_value(run->s, run->a, decl, s->args, s->nargs, run->vars);
}

const gql_path_t *gql_path_key(const gql_run_t *run, const gql_path_t *parent, const char *key)
{
    gql_path_t *p = arena_alloc(run->a, sizeof(*p));
    p->key = key;
    p->index = 0;
    p->parent = parent;
    return p;
}

const gql_path_t *gql_path_index(const gql_run_t *run, const gql_path_t *parent, int64_t index)
{
    gql_path_t *p = arena_alloc(run->a, sizeof(*p));
    p->key = NULL;
    p->index = index;
    p->parent = parent;
    return p;
}
