/*
 * CORS for the origins listed in FRONTEND_URL (comma list of "scheme://host[:port]").
 *
 * Matching is exact on the serialized origin (RFC 6454): scheme and host compare
 * case-insensitively, the port must be the same (a default port, 80 for http and 443 for
 * https, equals no port); nothing else matches: no wildcards, no suffixes, no "null".
 *
 * A listed Origin gets Access-Control-Allow-Origin (that origin), -Allow-Credentials: true and
 * -Expose-Headers; a preflight (OPTIONS with Origin and Access-Control-Request-Method) from a
 * listed origin also gets -Allow-Methods (the route's), -Allow-Headers and -Max-Age: 600. An
 * unlisted origin gets no CORS header at all, and its preflight still answers 204 (without
 * them): the browser then refuses the call, and non-browser clients see the same answer as
 * before. `Vary: Origin` is sent whenever CORS is configured and the request has an Origin, so
 * a cache never hands one origin's answer to another.
 */
#ifndef CRMD_HTTP_CORS_H
#define CRMD_HTTP_CORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parser.h"

#define HTTP_CORS_MAX_ORIGINS 32

/* Allowed origins, normalized to "scheme://host:port" in lower case. */
typedef struct http_cors_list {
    int n;
    char origin[HTTP_CORS_MAX_ORIGINS][128];
} http_cors_list_t;

/* Parses a FRONTEND_URL list (a trailing "/" is tolerated); false on a malformed item. */
bool http_cors_parse_list(const char *list, http_cors_list_t *out);

/* Whether the Origin header value (exactly as sent) is in the list. */
bool http_cors_origin_allowed(const http_cors_list_t *l, const char *origin, size_t n);

/* Replaces the process-wide list (SIGHUP, tests; FRONTEND_URL is read on first use). Safe
 * while other threads answer requests. */
void http_cors_configure(const char *list);

/* Frees every list published (at exit, when no thread answers any more). */
void http_cors_free(void);

/* Headers CORS asks for; the caller adds them to its response (CORS itself is pure). */
#define HTTP_CORS_MAX_HEADERS 4
typedef struct http_cors_out {
    int n;
    struct {
        const char *name, *value;
        size_t name_len, value_len;
    } h[HTTP_CORS_MAX_HEADERS];
} http_cors_out_t;

/*
 * On an OPTIONS request whose path exists (allowed = the router's mask of its methods): the
 * preflight headers when it is a preflight from a listed origin (the caller answers 204 as
 * before). Returns whether it is such a preflight. scratch holds the methods' value.
 */
bool http_cors_preflight(const http_request_t *req, uint32_t allowed, char scratch[96], http_cors_out_t *out);

/* For every response, before the handler-set headers are written: the simple-request CORS
 * headers (and Vary: Origin) when the request's Origin is listed. Values point into req. */
void http_cors_headers(const http_request_t *req, http_cors_out_t *out);

#endif
