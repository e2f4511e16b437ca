/*
 * Selection to SQL. A root field that reads resources becomes ONE statement whatever its depth:
 * each object is a json_build_object over its row, each reference a correlated subquery on the
 * referenced row's primary key, each list a json_agg over an ordered, limited subquery. Every
 * level filters on the key's organization ($1). So the statements a query costs depend on how
 * many root fields it has, never on how many rows come back. Values are parameters ($n), never
 * interpolated; the text depends only on the query's shape, so it goes through the
 * prepared-statement registry (bounded: see exec.c).
 */
#ifndef CRMD_API_GRAPHQL_PLAN_H
#define CRMD_API_GRAPHQL_PLAN_H

#include "api/cursor.h"
#include "api/graphql/collect.h"
#include "api/schema.h"

#define GQL_PLAN_PARAMS 96 /* parameters of one statement */

/* One statement being built. */
typedef struct gql_sql {
    const gql_run_t *run;
    buf_t text;
    const char *params[GQL_PLAN_PARAMS];
    int nparams;
    int aliases;        /* table aliases used so far (t0, t1, ...) */
    gql_errors_t *errs; /* argument errors go here, at path */
    const gql_path_t *path;
    bool failed;        /* an argument was refused: do not run the statement */
    uint32_t resources; /* bit i: g_schema[i] is read */
} gql_sql_t;

/* Starts a statement whose $1 is the organization id (text). */
void gql_sql_init(gql_sql_t *q, const gql_run_t *run, const char *org_id, gql_errors_t *errs,
                  const gql_path_t *path);
void gql_sql_free(gql_sql_t *q);

/* The value of an ID argument as a positive int64 text, or NULL (not an id). */
const char *gql_id_text(const gql_run_t *run, const gql_value_t *v);

/* company(id): one row's object, or no row. */
void gql_plan_one(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, const char *id);
/* Rows of res with ids in the array literal ids ("{1,2}"): (object, id) per row. */
void gql_plan_by_ids(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, const char *ids);
/* stages: one row, the JSON array of every row in the default order. */
void gql_plan_all(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f);

/* A connection page, as planned. Rows: (total, then per node column its JSON, then id and the
 * sort key[s]); a page with no row still has one row whose id is NULL. */
#define GQL_CONN_NODECOLS 8
typedef struct gql_conn {
    const schema_res_t *res;
    const schema_sort_t *sort; /* NULL: relevance */
    int limit;
    bool backward;   /* last/before: queried in reverse, written reversed */
    bool has_cursor; /* after or before was given */
    uint64_t binding;
    /* which response keys are written from which JSON column */
    const gql_cfield_t *nodecol_field[GQL_CONN_NODECOLS]; /* the edges/nodes group whose node it is */
    const gql_cfield_t *nodecol_node[GQL_CONN_NODECOLS];  /* the node group under edges (NULL for nodes) */
    int nnodecols;
    int key_col; /* column of the id; the sort key follows */
} gql_conn_t;

/* companies(...): the page of a connection field. */
void gql_plan_connection(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, gql_conn_t *c);

/* Seals the cursor of a page row (id at c->key_col, sort key after it). */
bool gql_conn_cursor(const gql_conn_t *c, const PGresult *r, int row, char *out, size_t cap);

#endif
