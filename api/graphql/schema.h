/*
 * The CRM's GraphQL schema, generated once at start-up from the resource table (api/schema.c):
 * for each resource an object type with its columns in camelCase, its references as objects
 * (company_id -> company: Company), the resources that refer to it as lists (Company.deals),
 * its statistics; a Relay connection, a sort enum and create/update inputs; Query fields to get
 * one row and to list them, Mutation fields that run the REST writes; the aggregate types of
 * /api/dashboard and /api/deals/pipeline-stats; the introspection types. Each field says how the
 * executor resolves it (resolve, data).
 */
#ifndef CRMD_API_GRAPHQL_SCHEMA_H
#define CRMD_API_GRAPHQL_SCHEMA_H

#include "api/graphql/types.h"
#include "api/schema.h"

/* gql_field_t.resolve */
enum gql_resolve {
    GR_NONE = 0,
    /* fields of a resource's object type (compiled to SQL); data: */
    GR_COLUMN,  /* schema_col_t: a column's value (id and references as ID) */
    GR_TO_ONE,  /* schema_col_t: the row a reference column points at */
    GR_TO_MANY, /* gql_rel_t: the rows of another resource that refer to this one */
    GR_STAT,    /* schema_stat_t: a statistic */
    /* connection, edge and page info fields */
    GR_EDGES,
    GR_NODES,
    GR_PAGE_INFO,
    GR_TOTAL,
    GR_NODE,
    GR_CURSOR,
    GR_HAS_NEXT,
    GR_HAS_PREV,
    GR_START_CURSOR,
    GR_END_CURSOR,
    /* Query fields; data: the schema_res_t */
    GR_Q_ONE,  /* company(id) */
    GR_Q_LIST, /* companies(...): a connection */
    GR_Q_ALL,  /* stages: every row, in the default order */
    GR_Q_REST, /* dashboard, pipelineStats: data is the REST path; the body's "data" is projected */
    /* fields of a projected REST body; data: the member name ("total_deals") */
    GR_MEMBER,
    GR_MEMBER_ROWS, /* a list of rows of a resource, loaded by their ids (data: gql_member_rows_t) */
    /* Mutation fields; data: the schema_res_t */
    GR_M_CREATE,
    GR_M_UPDATE,
    GR_M_DELETE,
    GR_M_MOVE_STAGE,
    GR_M_COMPLETE_TASK,
    /* meta */
    GR_TYPENAME,
    GR_SCHEMA,
    GR_TYPE,
};

/* A to-many relation: rows of res whose column fk holds the parent's id. */
typedef struct gql_rel {
    const schema_res_t *res;
    const char *fk;
} gql_rel_t;

/* Rows of res named by the "id" members of a REST body's array member. */
typedef struct gql_member_rows {
    const char *member;
    const schema_res_t *res;
} gql_member_rows_t;

/* The schema (built on first use; call gql_schema_init before threads start). */
const gql_schema_t *gql_schema(void);
void gql_schema_init(void);

/* The object type of a resource. */
const gql_type_t *gql_resource_type(const schema_res_t *res);

/* The GraphQL name of a snake_case SQL name ("first_name" -> "firstName"), interned. */
const char *gql_camel(const char *snake);

/* A GraphQL enum type's value as stored, for the enum value named name ("OPEN" -> "open"); NULL
 * when t has no such value. */
const char *gql_enum_sql(const gql_type_t *t, const char *name);
/* The enum value name of a stored value ("open" -> "OPEN"), or NULL. */
const char *gql_enum_name(const gql_type_t *t, const char *sql, size_t n);

#endif
