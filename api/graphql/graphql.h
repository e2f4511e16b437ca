/*
 * The GraphQL endpoint (POST and GET /graphql) and its per-operation metrics. See http.c for the
 * protocol, exec.h for execution, plan.h for the SQL, schema.h for the schema.
 */
#ifndef CRMD_API_GRAPHQL_GRAPHQL_H
#define CRMD_API_GRAPHQL_GRAPHQL_H

#include <stdint.h>

#include "core/hist.h"
#include "http/router.h"

/* Registers /graphql behind the request pipeline (key, limits). */
void gql_routes(router_t *rt);

/* Per operation name (merged over threads): requests, requests with errors, SQL statements,
 * latency in microseconds. */
typedef void (*gql_metrics_fn)(const char *operation, uint64_t requests, uint64_t errors, uint64_t statements,
                               const hist_t *latency_us, void *arg);
void gql_metrics_each(gql_metrics_fn fn, void *arg);
void gql_metrics_free(void);

#endif
