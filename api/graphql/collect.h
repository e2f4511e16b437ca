/*
 * CollectFields (GraphQL spec 6.3.2): the fields a selection set asks of an object type, grouped
 * by response key in document order, after @skip/@include and the fragments and inline
 * fragments whose type condition applies. Every stage that walks a result (the SQL planner, the
 * executor, introspection) reads selections through this.
 */
#ifndef CRMD_API_GRAPHQL_COLLECT_H
#define CRMD_API_GRAPHQL_COLLECT_H

#include "api/graphql/types.h"

/* The request-wide inputs of collection. */
typedef struct gql_run {
    const gql_schema_t *s;
    const gql_doc_t *doc;
    const gql_vars_t *vars;
    arena_t *a;
} gql_run_t;

/* One response key: the field it names and every field node asking for it. */
typedef struct gql_cfield {
    const char *key;
    const gql_field_t *def;
    const gql_selection_t **nodes;
    size_t n, cap;
} gql_cfield_t;

typedef struct gql_cset {
    gql_cfield_t *f;
    size_t n, cap;
} gql_cset_t;

/* Collects sel for object type type into out (appending). */
void gql_collect(const gql_run_t *run, const gql_type_t *type, const gql_selset_t *sel, gql_cset_t *out);

/* Collects the merged selection sets of every node of f, for object type type. */
void gql_collect_sub(const gql_run_t *run, const gql_cfield_t *f, const gql_type_t *type, gql_cset_t *out);

/* The value of f's argument name (the first node's; validation made them all equal), or NULL. */
const gql_value_t *gql_cfield_arg(const gql_run_t *run, const gql_cfield_t *f, const char *name);

/* A response path one key or index longer (in the run's arena). */
const gql_path_t *gql_path_key(const gql_run_t *run, const gql_path_t *parent, const char *key);
const gql_path_t *gql_path_index(const gql_run_t *run, const gql_path_t *parent, int64_t index);

#endif
