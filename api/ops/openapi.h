/*
 * GET /api/openapi.json (no key): the OpenAPI 3.1 description of the router's routes, generated
 * once from the router and the resource schema (api/schema.c). Resource routes are described
 * entirely from the schema; the other routes by the short table in openapi.c, next to the
 * conventions of API.md (headers, problem types, security) that every route shares.
 */
#ifndef CRMD_API_OPS_OPENAPI_H
#define CRMD_API_OPS_OPENAPI_H

#include <stddef.h>

#include "core/buf.h"
#include "http/router.h"

/* Registers GET /api/openapi.json describing rt (call after every other route is added; the
 * description is built then). */
void api_openapi_routes(router_t *rt);

/* Writes the description of rt into out. Returns the number of routes it could not describe
 * (a route with neither a schema resource nor an entry in the table); their names go to
 * missing[0..cap). */
size_t api_openapi_build(const router_t *rt, buf_t *out, const char **missing, size_t cap);

/* Frees the description built by api_openapi_routes. */
void api_openapi_free(void);

#endif
