/*
 * The limits a query is held to before it runs: depth (fields nested), a cost estimate (each
 * field 1, a list's selection multiplied by its page size: first/last/limit or the default),
 * aliases, and which resources it reads (its cache tags). Introspection is bounded by the
 * schema itself: __schema and __type count 1 each and their insides count for nothing.
 */
#ifndef CRMD_API_GRAPHQL_COST_H
#define CRMD_API_GRAPHQL_COST_H

#include "api/graphql/collect.h"

typedef struct gql_cost {
    uint64_t cost;
    uint32_t depth;
    uint32_t aliases;
    uint32_t resources; /* bit i: g_schema[i] */
    bool introspection; /* __schema or __type is asked for */
} gql_cost_t;

/* Measures operation op of a validated document (variables coerced in run). */
void gql_cost(const gql_run_t *run, const gql_def_t *op, gql_cost_t *out);

#endif
