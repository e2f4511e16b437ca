/*
 * Introspection (GraphQL spec section 4): the values of the meta-fields __schema and
 * __type(name:) written from the schema's own structs, for any selection of the introspection
 * types. Enough for graphql-js's getIntrospectionQuery() and buildClientSchema().
 */
#ifndef CRMD_API_GRAPHQL_INTROSPECT_H
#define CRMD_API_GRAPHQL_INTROSPECT_H

#include "api/graphql/collect.h"

/* Writes the value of root field f (__schema or __type) into b. */
void gql_introspect(const gql_run_t *run, const gql_cfield_t *f, buf_t *b);

#endif
