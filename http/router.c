/* Segment trie router; see router.h. */
#include "http/router.h"
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METHOD_COUNT (HTTP_OPTIONS + 1)

typedef struct node {
    char *segment; /* literal text; NULL for the parameter child */
    size_t segment_len;
    struct node **children;
    size_t nchildren;
    struct node *param; /* "{name}" child */
    http_route_t *routes[METHOD_COUNT];
} node_t;

struct router {
    node_t root;
    http_route_t *by_id[ROUTER_MAX_ROUTES + 1];
    uint16_t count;
};

router_t *router_new(void)
{
    return xcalloc(1, sizeof(router_t));
}

static void node_free(node_t *n)
{
    for (size_t i = 0; i < n->nchildren; i++) {
        node_free(n->children[i]);
        free(n->children[i]);
    }
    if (n->param) {
        node_free(n->param);
        free(n->param);
    }
    for (int m = 0; m < METHOD_COUNT; m++)
        free(n->routes[m]);
    free(n->children);
    free(n->segment);
}

void router_free(router_t *rt)
{
    if (!rt)
        return;
    node_free(&rt->root);
    free(rt);
}

static node_t *child_literal(node_t *n, const char *s, size_t len, bool create)
{
    for (size_t i = 0; i < n->nchildren; i++)
        if (n->children[i]->segment_len == len && memcmp(n->children[i]->segment, s, len) == 0)
            return n->children[i];
    if (!create)
        return NULL;
    node_t *c = xcalloc(1, sizeof(node_t));
    c->segment = xstrndup(s, len);
    c->segment_len = len;
    n->children = xrealloc(n->children, (n->nchildren + 1) * sizeof(node_t *));
    n->children[n->nchildren++] = c;
    return c;
}

void router_add(router_t *rt, const http_route_t *route)
{
    const char *p = route->pattern;
    if (p[0] != '/')
        die("route pattern '%s' must start with '/'", p);
    node_t *n = &rt->root;
    while (*p == '/') {
        const char *seg = ++p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - seg);
        if (len == 0 && *p)
            die("route pattern '%s' has an empty segment", route->pattern);
        if (len == 0)
            break; /* trailing slash: the pattern "/" itself */
        if (seg[0] == '{') {
            if (seg[len - 1] != '}')
                die("route pattern '%s' has a bad parameter", route->pattern);
            if (!n->param)
                n->param = xcalloc(1, sizeof(node_t));
            n = n->param;
        } else {
            n = child_literal(n, seg, len, true);
        }
    }
    if (route->method <= HTTP_OTHER || route->method >= METHOD_COUNT)
        die("route '%s' has no method", route->pattern);
    if (n->routes[route->method])
        die("route %s '%s' added twice", route->name ? route->name : "", route->pattern);
    if (rt->count >= ROUTER_MAX_ROUTES)
        die("more than %d routes", ROUTER_MAX_ROUTES);
    http_route_t *copy = xmalloc(sizeof(http_route_t));
    *copy = *route;
    copy->id = ++rt->count;
    rt->by_id[copy->id] = copy;
    n->routes[route->method] = copy;
}

uint16_t router_route_count(const router_t *rt)
{
    return rt->count;
}

const http_route_t *router_route_by_id(const router_t *rt, uint16_t id)
{
    return id && id <= rt->count ? rt->by_id[id] : NULL;
}

/* Literal children win over the parameter child; backtracks when the literal path dead-ends. */
static const node_t *match(const node_t *n, const char *p, const char *end, http_str_t *params, int *nparams)
{
    if (p == end) {
        for (int m = 1; m < METHOD_COUNT; m++)
            if (n->routes[m])
                return n;
        return NULL;
    }
    if (*p != '/')
        return NULL;
    const char *seg = ++p;
    while (p < end && *p != '/')
        p++;
    size_t len = (size_t)(p - seg);
    if (len == 0)
        return NULL;
    for (size_t i = 0; i < n->nchildren; i++) {
        const node_t *c = n->children[i];
        if (c->segment_len == len && memcmp(c->segment, seg, len) == 0) {
            const node_t *found = match(c, p, end, params, nparams);
            if (found)
                return found;
        }
    }
    if (n->param && *nparams < ROUTER_MAX_PARAMS) {
        int saved = *nparams;
        params[(*nparams)++] = (http_str_t){seg, len};
        const node_t *found = match(n->param, p, end, params, nparams);
        if (found)
            return found;
        *nparams = saved;
    }
    return NULL;
}

const http_route_t *router_match(const router_t *rt, http_method_t method, const char *path, size_t len,
                                 http_str_t *params, int *nparams, uint32_t *allowed)
{
    *nparams = 0;
    *allowed = 0;
    /* "/a/b/" is not "/a/b": only the root may end in a slash */
    if (len > 1 && path[len - 1] == '/')
        return NULL;
    const node_t *n =
        len == 1 && path[0] == '/' ? &rt->root : match(&rt->root, path, path + len, params, nparams);
    if (!n)
        return NULL;
    if (method > HTTP_OTHER && method < METHOD_COUNT && n->routes[method])
        return n->routes[method];
    if (method == HTTP_HEAD && n->routes[HTTP_GET])
        return n->routes[HTTP_GET];
    for (int m = 1; m < METHOD_COUNT; m++)
        if (n->routes[m])
            *allowed |= 1u << m;
    if (*allowed & (1u << HTTP_GET))
        *allowed |= 1u << HTTP_HEAD;
    if (*allowed)
        *allowed |= 1u << HTTP_OPTIONS;
    return NULL;
}

size_t router_allow_header(uint32_t allowed, char *out, size_t cap)
{
    static const char *const names[METHOD_COUNT] = {
        [HTTP_GET] = "GET",     [HTTP_HEAD] = "HEAD",     [HTTP_POST] = "POST",       [HTTP_PUT] = "PUT",
        [HTTP_PATCH] = "PATCH", [HTTP_DELETE] = "DELETE", [HTTP_OPTIONS] = "OPTIONS",
    };
    size_t len = 0;
    out[0] = '\0';
    for (int m = 1; m < METHOD_COUNT; m++) {
        if (!(allowed & (1u << m)))
            continue;
        size_t need = strlen(names[m]) + 2;
        if (len + need >= cap)
            break;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", names[m]);
    }
    return len;
}
