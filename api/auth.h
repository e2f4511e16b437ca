/*
 * API keys and tenants: a key (Authorization: Bearer or X-API-Key) resolves to the caller's
 * organization, user, role and tier through a per-thread map whose entries are re-checked
 * against the database after 5 s (a revoked key stops working within 5 s). Only finding the
 * caller lives here; what happens to the request (limits, 401/403/503, the handler) is
 * api/route.c's.
 */
#ifndef CRMD_API_AUTH_H
#define CRMD_API_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "api/tier.h"
#include "http/server.h"

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

/* What finding the caller's key came to. */
typedef enum api_auth_status {
    AUTH_FOUND,   /* *auth is the caller (from the map) */
    AUTH_REFUSED, /* no, malformed or unknown key: *detail says which (a string constant) */
    AUTH_LOOKUP,  /* the key must be looked up: pass *lookup to api_auth_lookup */
} api_auth_status_t;

typedef struct api_auth_lookup api_auth_lookup_t;

/* Reads the request's key and finds it in this thread's map. */
api_auth_status_t api_auth_find(http_ctx_t *ctx, const api_auth_t **auth, const char **detail,
                                api_auth_lookup_t **lookup);

/* True when the key of a lookup has never been seen on this thread (not a re-check). */
bool api_auth_first_sight(const api_auth_lookup_t *l);

/* Called with the caller (NULL: unknown or revoked key) or, on a database failure, with
 * db_error set. */
typedef void (*api_auth_done_fn)(http_ctx_t *ctx, const api_auth_t *auth, const char *db_error, void *arg);

/* Looks the key up by its SHA-256 and fills the map. */
void api_auth_lookup(http_ctx_t *ctx, api_auth_lookup_t *l, api_auth_done_fn done, void *arg);

/* Parses "crmd_<8>_<secret>"; false if the shape is wrong. Sets the prefix. */
bool api_key_shape_ok(const char *key, size_t n, char prefix[9]);

/* Starts this thread's key map (call on each reactor thread). */
void api_auth_thread_init(void);
/* Frees this thread's key map. */
void api_auth_thread_free(void);

#endif
