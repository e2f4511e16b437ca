/*
 * Routes: a trie of path segments built once at start-up and read by every thread without
 * locks. A segment "{name}" matches any one non-empty segment and is handed to the handler
 * as a parameter.
 */
#ifndef CRMD_HTTP_ROUTER_H
#define CRMD_HTTP_ROUTER_H

#include <stdint.h>
#include "http/parser.h"

#define ROUTER_MAX_PARAMS 4

typedef struct http_ctx http_ctx_t;
typedef void (*http_handler_fn)(http_ctx_t *ctx);

/* Rate-limit budget a route draws from on top of the key's tier. */
enum route_class { ROUTE_CLASS_NORMAL = 0, ROUTE_CLASS_EXPENSIVE, ROUTE_CLASS_BULK, ROUTE_CLASS_HEALTH };

/* What the server checks before the handler runs. */
enum route_flags {
    ROUTE_PUBLIC = 1u << 0, /* no API key needed */
    ROUTE_ADMIN = 1u << 1,  /* admin role needed */
};

typedef struct http_route {
    const char *pattern;
    http_method_t method;
    http_handler_fn handler;
    uint32_t flags;      /* enum route_flags */
    uint8_t route_class; /* enum route_class */
    int64_t body_limit;  /* bytes; 0: the server default */
    const char *name;    /* metrics and log label, e.g. "GET /api/companies/{id}" */
    const void *data;    /* for the handler (e.g. the API handler a wrapper calls) */
    uint16_t id;         /* set by router_add: 1, 2, ... in order of adding (0: no route) */
} http_route_t;

#define ROUTER_MAX_ROUTES 256

typedef struct router router_t;

router_t *router_new(void);
void router_free(router_t *rt);

/* Adds a route (the struct is copied). Dies on a malformed pattern or a duplicate. */
void router_add(router_t *rt, const http_route_t *route);

/* Routes added so far; ids run from 1 to this. */
uint16_t router_route_count(const router_t *rt);
/* The route with this id, or NULL. */
const http_route_t *router_route_by_id(const router_t *rt, uint16_t id);

/* Finds the route for method and a decoded path. On a miss returns NULL and sets *allowed
 * to the bitmask (1 << method) of methods the path does have (0: no such path). HEAD falls
 * back to GET. */
const http_route_t *router_match(const router_t *rt, http_method_t method, const char *path, size_t len,
                                 http_str_t *params, int *nparams, uint32_t *allowed);

/* Writes "GET, HEAD, POST" for an allowed mask into out; returns the length. */
size_t router_allow_header(uint32_t allowed, char *out, size_t cap);

#endif
