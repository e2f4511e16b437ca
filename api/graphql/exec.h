/*
 * Execution of a validated operation (GraphQL spec section 6) for one API key. Root fields that
 * read resources each compile to one statement (api/graphql/plan.c), all sent in one pipeline;
 * dashboard and pipelineStats run their REST routes as sub-requests (cached and limited as
 * REST) and project the body; introspection is answered from the schema; mutations run the
 * REST writes one after another as sub-requests (the spec's serial execution), then read their
 * results back by id. Rows that a projected body or a mutation names by id are loaded in one
 * more pipeline, one "= ANY($ids)" statement per field. So a query costs as many statements
 * as it has root and by-id fields, whatever the rows.
 */
#ifndef CRMD_API_GRAPHQL_EXEC_H
#define CRMD_API_GRAPHQL_EXEC_H

#include "api/auth.h"
#include "api/graphql/collect.h"
#include "http/server.h"

typedef struct gql_exec gql_exec_t;
typedef void (*gql_exec_done_fn)(gql_exec_t *ex);

struct gql_exec {
    /* inputs */
    http_ctx_t *ctx;
    const api_auth_t *auth;
    gql_run_t run;
    const gql_def_t *op;
    const char *idempotency_key; /* the request's, or NULL: each mutation gets "<key>#<response key>" */
    gql_exec_done_fn done;
    void *arg;
    gql_errors_t *errs;
    /* outputs, valid in done */
    buf_t data;          /* the "data" value (JSON), or empty when data is null */
    bool unavailable;    /* the database was unavailable or timed out: answer 503 */
    uint32_t statements; /* SQL statements run */
    uint32_t resources;  /* bit i: rows of g_schema[i] were read (the cache tags) */
    /* internal */
    struct gql_root *roots;
    size_t nroots;
    int pending;
    size_t next_mutation;
    struct gql_job *jobs;
    size_t njobs, cap_jobs;
    int phase;
};

/* Runs ex->op; ex->done(ex) is called once, on this thread, possibly before this returns. */
void gql_execute(gql_exec_t *ex);

/* Frees what execution holds outside the arena (call after done, once the response is written). */
void gql_exec_release(gql_exec_t *ex);

#endif
