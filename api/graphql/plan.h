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

/* How a row's columns become one JSON object: the flat part of a selection (columns, statistics,
 * references joined in) is selected as plain columns and written by crmd, as REST rows are;
 * lists nested in it come as one JSON column each. */
enum gql_out_kind { OUT_VALUE = 0, OUT_OBJECT, OUT_JSON, OUT_TYPENAME };
enum gql_out_fmt { FMT_RAW = 0, FMT_ID, FMT_STRING, FMT_ENUM, FMT_MONEY, FMT_TIMESTAMP, FMT_DATE, FMT_BOOL };

typedef struct gql_out gql_out_t;
typedef struct gql_shape {
    gql_out_t *outs;
    size_t n;
} gql_shape_t;

struct gql_out {
    const char *key;
    uint8_t kind; /* enum gql_out_kind */
    uint8_t fmt;  /* OUT_VALUE: enum gql_out_fmt */
    int col;      /* OUT_VALUE, OUT_JSON: its column; OUT_OBJECT: a column NULL when there is no row */
    const char *type_name; /* OUT_TYPENAME */
    gql_shape_t sub;       /* OUT_OBJECT */
};

/* One statement being built. */
typedef struct gql_sql {
    const gql_run_t *run;
    buf_t text;
    const char *params[GQL_PLAN_PARAMS];
    int nparams;
    int aliases;        /* table aliases used so far (t0, t1, ...) */
    int ncols;          /* columns of the select list being built so far */
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

/* company(id): one row written by shape, or no row. */
void gql_plan_one(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, const char *id,
                  gql_shape_t *shape);
/* Rows of res with ids in the array literal ids ("{1,2}"): the id (column 0), then the shape. */
void gql_plan_by_ids(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, const char *ids,
                     gql_shape_t *shape);
/* stages: every row in the default order, written by shape. */
void gql_plan_all(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, gql_shape_t *shape);

/* Writes row of r as shape says. */
void gql_write_shape(buf_t *b, const gql_shape_t *shape, const PGresult *r, int row);

/* Appends PostgreSQL's JSON text without the blanks it puts between tokens. */
void gql_append_json(buf_t *b, const char *s, size_t n);

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
    /* how each edges/nodes group's node is written from the row */
    const char *node_field[GQL_CONN_NODECOLS]; /* response key of the edges or nodes group */
    const char *node_key[GQL_CONN_NODECOLS];   /* response key of the node under edges (NULL for nodes) */
    gql_shape_t node_shape[GQL_CONN_NODECOLS];
    int nnodes;
    int key_col; /* column of the id; the sort key follows */
} gql_conn_t;

/* companies(...): the page of a connection field. */
void gql_plan_connection(gql_sql_t *q, const schema_res_t *res, const gql_cfield_t *f, gql_conn_t *c);

/* Seals the cursor of a page row (id at c->key_col, sort key after it). */
bool gql_conn_cursor(const gql_conn_t *c, const PGresult *r, int row, char *out, size_t cap);

#endif
