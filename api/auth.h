/*
 * API keys and tenants. Every /api route except health runs behind api_route's wrapper:
 * it reads the key (Authorization: Bearer or X-API-Key), resolves it to the caller's
 * organization, user, role and tier through a per-thread map (entries re-checked against
 * the database after 5 s, so a revoked key stops working within 5 s), answers 401/403, and
 * then calls the route's handler with the caller.
 */
#ifndef CRMD_API_AUTH_H
#define CRMD_API_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "http/router.h"
#include "http/server.h"

enum api_tier { TIER_FREE = 0, TIER_STANDARD, TIER_PROFESSIONAL, TIER_ENTERPRISE, TIER_UNLIMITED };

typedef struct api_auth {
    int64_t org_id;
    int64_t user_id;
    bool admin;
    uint8_t tier;      /* enum api_tier */
    char prefix[9];    /* the key's 8-character prefix, the only part ever logged */
    char org_id_s[24]; /* org_id as text, ready to be a query parameter */
    char user_id_s[24];
} api_auth_t;

/* An authenticated handler: auth lives until the response is queued. */
typedef void (*api_handler_fn)(http_ctx_t *ctx, const api_auth_t *auth);

/* How a GET route's responses are cached: tier and tags, where "{org}", "{user}" and "{id}"
 * (the first path parameter) are replaced per request, e.g. "org:{org}:deals", "company:{id}". */
#define API_CACHE_TAGS_MAX 8
typedef struct api_cache_spec {
    int tier; /* enum cache_tier */
    const char *tags[API_CACHE_TAGS_MAX];
} api_cache_spec_t;

/* What api_route keeps for a route (http_route_t.data). */
typedef struct api_route_info {
    api_handler_fn fn;
    const api_cache_spec_t *cache; /* NULL: resources are described by their path; else this */
    bool no_cache;                 /* a GET that must never be cached */
} api_route_info_t;

/* Registers method + pattern behind the key check; ROUTE_ADMIN in flags requires an admin. GET
 * routes of /api/<resource>[/{id}] are cached by their path; others need api_route_cached. */
void api_route(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn, uint32_t flags,
               uint8_t route_class, const char *name);

/* As api_route, for a GET whose responses are cached as spec says (spec must outlive the
 * router; NULL: never cached). */
void api_route_cached(router_t *rt, http_method_t method, const char *pattern, api_handler_fn fn, uint32_t flags,
                      uint8_t route_class, const char *name, const api_cache_spec_t *spec);

/* Frees what api_route kept (after the router is gone). */
void api_routes_free(void);

/* Name of a tier ("professional"). */
const char *api_tier_name(int tier);
int api_tier_parse(const char *s, size_t n);

/* Parses "crmd_<8>_<secret>"; false if the shape is wrong. Sets the prefix. */
bool api_key_shape_ok(const char *key, size_t n, char prefix[9]);

/* Starts this thread's key map (call on each reactor thread). */
void api_auth_thread_init(void);
/* Frees this thread's key map. */
void api_auth_thread_free(void);

#endif
