/*
 * The request pipeline of every keyed /api route, in one place: key → limits → role → cache →
 * handler. The key is resolved by api/auth.c (a per-thread map, the database behind it), the
 * limits by api/ratelimit.c (a key never seen before first spends its client IP's budget, so
 * made-up keys cannot cost a query each; a missing or unknown key spends it too and gets 401),
 * the admin role answers 403, a GET is served through api/cached.c, and only then does the
 * route's handler run with the caller.
 */
#ifndef CRMD_API_ROUTE_H
#define CRMD_API_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "api/auth.h"
#include "api/cached.h"
#include "http/router.h"
#include "http/server.h"

/* What api_route keeps for a route (http_route_t.data). */
typedef struct api_route_info {
    api_handler_fn fn;
    const api_cache_spec_t *cache; /* NULL: resources are described by their path; else this */
    bool no_cache;                 /* a GET that must never be cached */
} api_route_info_t;

/* Registers method + pattern behind the pipeline; ROUTE_ADMIN in flags requires an admin. GET
 * routes of /api/<resource>[/{id}] are cached by their path; others need api_route_cached. */
void api_route(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn, uint32_t flags,
               uint8_t route_class, const char *name);

/* api_route with its own request body limit in bytes (0: the server's --max-body). */
void api_route_limit(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn,
                     uint32_t flags, uint8_t route_class, const char *name, int64_t body_limit);

/* As api_route, for a GET whose responses are cached as spec says (spec must outlive the
 * router; NULL: never cached). */
void api_route_cached(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn,
                      uint32_t flags, uint8_t route_class, const char *name, const api_cache_spec_t *spec);

/* Answers 401 with WWW-Authenticate: Bearer and logs why (detail: a string constant). */
void api_respond_unauthorized(http_ctx_t *ctx, const char *detail);

/* Frees what api_route kept (after the router is gone). */
void api_routes_free(void);

#endif
