/* CORS headers for the FRONTEND_URL origins; see cors.h. */
#include "http/cors.h"
#include "core/common.h"
#include "core/config.h"
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The list in force. A reload (SIGHUP) publishes a new one; the lists it replaced stay
 * allocated, chained by retired, since a request on another thread may still read one. */
typedef struct cors_conf {
    http_cors_list_t list;
    struct cors_conf *retired;
} cors_conf_t;
static cors_conf_t *_Atomic g_cur;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;

/* Normalizes an origin to "scheme://host:port" (lower case, explicit port) in out. */
static bool normalize(const char *s, size_t n, char *out, size_t cap)
{
    const char *sep = n >= 3 ? memmem(s, n, "://", 3) : NULL;
    if (!sep || sep == s)
        return false;
    size_t slen = (size_t)(sep - s);
    for (size_t i = 0; i < slen; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))))
            return false;
    }
    const char *h = sep + 3, *end = s + n;
    const char *hend;
    if (h < end && *h == '[') {
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend)
            return false;
        hend++;
    } else {
        hend = h;
        while (hend < end && *hend != ':' && *hend != '/')
            hend++;
    }
    if (hend == h)
        return false;
    for (const char *p = h; p < hend; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c >= 127 || c == '@' || c == '?' || c == '#' || c == '\\' || c == ',')
            return false;
    }
    const char *port = NULL;
    size_t plen = 0;
    const char *rest = hend;
    if (rest < end && *rest == ':') {
        port = ++rest;
        while (rest < end && *rest >= '0' && *rest <= '9')
            rest++;
        plen = (size_t)(rest - port);
        if (plen == 0 || plen > 5)
            return false;
    }
    if (rest != end)
        return false;
    char portbuf[8];
    if (!port) {
        if (slen == 4 && strncasecmp(s, "http", 4) == 0)
            port = "80", plen = 2;
        else if (slen == 5 && strncasecmp(s, "https", 5) == 0)
            port = "443", plen = 3;
        else
            return false;
    } else {
        while (plen > 1 && *port == '0')
            port++, plen--;
    }
    memcpy(portbuf, port, plen);
    portbuf[plen] = '\0';
    int len = snprintf(out, cap, "%.*s://%.*s:%s", (int)slen, s, (int)(hend - h), h, portbuf);
    if (len < 0 || (size_t)len >= cap)
        return false;
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return true;
}

bool http_cors_parse_list(const char *list, http_cors_list_t *out)
{
    out->n = 0;
    const char *p = list ? list : "", *q;
    size_t qn;
    while (csv_next(&p, &q, &qn)) {
        if (q[qn - 1] == '/')
            qn--; /* "https://app.example.com/" as people write it in config */
        if (!qn)
            continue;
        if (out->n >= HTTP_CORS_MAX_ORIGINS || !normalize(q, qn, out->origin[out->n], sizeof(out->origin[0])))
            return false;
        out->n++;
    }
    return true;
}

bool http_cors_origin_allowed(const http_cors_list_t *l, const char *origin, size_t n)
{
    char norm[128];
    if (!l->n || !normalize(origin, n, norm, sizeof(norm)))
        return false;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->origin[i], norm) == 0)
            return true;
    return false;
}

static void publish(const char *list)
{
    cors_conf_t *c = xcalloc(1, sizeof(*c));
    if (!http_cors_parse_list(list, &c->list)) {
        log_fields(LOG_ERROR, "FRONTEND_URL has a malformed origin: CORS is off", NULL);
        c->list.n = 0;
    }
    pthread_mutex_lock(&publish_lock);
    c->retired = atomic_load(&g_cur);
    atomic_store_explicit(&g_cur, c, memory_order_release);
    pthread_mutex_unlock(&publish_lock);
}

static void load_config(void)
{
    publish(g_config.frontend_url);
}

static const http_cors_list_t *current(void)
{
    pthread_once(&once, load_config);
    return &atomic_load_explicit(&g_cur, memory_order_acquire)->list;
}

void http_cors_configure(const char *list)
{
    pthread_once(&once, load_config);
    publish(list);
}

void http_cors_free(void)
{
    cors_conf_t *c = atomic_exchange(&g_cur, NULL);
    while (c) {
        cors_conf_t *next = c->retired;
        free(c);
        c = next;
    }
    once = (pthread_once_t)PTHREAD_ONCE_INIT;
}

/* Whether the request's Origin is listed. */
static bool listed(const http_request_t *req)
{
    return req->origin.len && http_cors_origin_allowed(current(), req->origin.p, req->origin.len);
}

static void put(http_cors_out_t *out, const char *name, size_t nn, const char *value, size_t vn)
{
    if (out->n < HTTP_CORS_MAX_HEADERS)
        out->h[out->n++] = (typeof(out->h[0])){name, value, nn, vn};
}

static const char allow_headers[] = "Authorization, X-API-Key, Content-Type, If-Match, If-None-Match, "
                                    "Idempotency-Key, X-Request-Id, traceparent";
static const char expose_headers[] =
    "X-Request-Id, traceparent, ETag, RateLimit, RateLimit-Policy, X-RateLimit-Limit, "
    "X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Location";

bool http_cors_preflight(const http_request_t *req, uint32_t allowed, char scratch[96], http_cors_out_t *out)
{
    out->n = 0;
    if (req->method != HTTP_OPTIONS || !req->access_control_request_method.len || !listed(req))
        return false;
    static const struct {
        int m;
        const char *name;
    } methods[] = {{HTTP_GET, "GET"}, {HTTP_HEAD, "HEAD"},   {HTTP_POST, "POST"},
                   {HTTP_PUT, "PUT"}, {HTTP_PATCH, "PATCH"}, {HTTP_DELETE, "DELETE"}};
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(methods); i++)
        if (allowed & (1u << methods[i].m))
            n += (size_t)snprintf(scratch + n, 96 - n, "%s%s", n ? ", " : "", methods[i].name);
    if (n)
        put(out, LIT("Access-Control-Allow-Methods"), scratch, n);
    put(out, LIT("Access-Control-Allow-Headers"), allow_headers, sizeof(allow_headers) - 1);
    put(out, LIT("Access-Control-Max-Age"), LIT("600"));
    return true;
}

void http_cors_headers(const http_request_t *req, http_cors_out_t *out)
{
    out->n = 0;
    const http_cors_list_t *l = current();
    if (!l->n || !req->origin.len)
        return;
    put(out, LIT("Vary"), LIT("Origin"));
    if (!http_cors_origin_allowed(l, req->origin.p, req->origin.len))
        return;
    put(out, LIT("Access-Control-Allow-Origin"), req->origin.p, req->origin.len);
    put(out, LIT("Access-Control-Allow-Credentials"), LIT("true"));
    if (req->method != HTTP_OPTIONS)
        put(out, LIT("Access-Control-Expose-Headers"), expose_headers, sizeof(expose_headers) - 1);
}
