#include "http/router.h"
#include "test.h"

static void h_a(http_ctx_t *c)
{
    (void)c;
}
static void h_b(http_ctx_t *c)
{
    (void)c;
}

static router_t *make(void)
{
    router_t *rt = router_new();
    http_route_t routes[] = {
        {.pattern = "/api/health", .method = HTTP_GET, .handler = h_a, .name = "health"},
        {.pattern = "/api/companies", .method = HTTP_GET, .handler = h_a, .name = "list"},
        {.pattern = "/api/companies", .method = HTTP_POST, .handler = h_b, .name = "create"},
        {.pattern = "/api/companies/{id}", .method = HTTP_GET, .handler = h_a, .name = "one"},
        {.pattern = "/api/companies/{id}", .method = HTTP_PATCH, .handler = h_b, .name = "patch"},
        {.pattern = "/api/companies/{id}/analytics", .method = HTTP_GET, .handler = h_a, .name = "analytics"},
        {.pattern = "/api/deals/pipeline-stats", .method = HTTP_GET, .handler = h_a, .name = "stats"},
        {.pattern = "/api/deals/{id}", .method = HTTP_GET, .handler = h_a, .name = "deal"},
        {.pattern = "/", .method = HTTP_GET, .handler = h_a, .name = "root"},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        router_add(rt, &routes[i]);
    return rt;
}

static const http_route_t *m(router_t *rt, http_method_t meth, const char *path, http_str_t *params, int *np,
                             uint32_t *allowed)
{
    return router_match(rt, meth, path, strlen(path), params, np, allowed);
}

TEST(literal_and_param_routes)
{
    router_t *rt = make();
    http_str_t p[ROUTER_MAX_PARAMS];
    int np;
    uint32_t allowed;
    const http_route_t *r = m(rt, HTTP_GET, "/api/health", p, &np, &allowed);
    CHECK(r && strcmp(r->name, "health") == 0);
    CHECK_EQ_INT(np, 0);
    r = m(rt, HTTP_GET, "/api/companies/42", p, &np, &allowed);
    CHECK(r && strcmp(r->name, "one") == 0);
    CHECK_EQ_INT(np, 1);
    CHECK_STRN(p[0].p, p[0].len, "42");
    r = m(rt, HTTP_GET, "/api/companies/42/analytics", p, &np, &allowed);
    CHECK(r && strcmp(r->name, "analytics") == 0);
    CHECK_STRN(p[0].p, p[0].len, "42");
    r = m(rt, HTTP_GET, "/", p, &np, &allowed);
    CHECK(r && strcmp(r->name, "root") == 0);
    router_free(rt);
}

TEST(literal_wins_over_parameter)
{
    router_t *rt = make();
    http_str_t p[ROUTER_MAX_PARAMS];
    int np;
    uint32_t allowed;
    const http_route_t *r = m(rt, HTTP_GET, "/api/deals/pipeline-stats", p, &np, &allowed);
    CHECK(r && strcmp(r->name, "stats") == 0);
    CHECK_EQ_INT(np, 0);
    r = m(rt, HTTP_GET, "/api/deals/7", p, &np, &allowed);
    CHECK(r && strcmp(r->name, "deal") == 0);
    router_free(rt);
}

TEST(method_mismatch_reports_allowed)
{
    router_t *rt = make();
    http_str_t p[ROUTER_MAX_PARAMS];
    int np;
    uint32_t allowed;
    CHECK(m(rt, HTTP_DELETE, "/api/companies/1", p, &np, &allowed) == NULL);
    CHECK(allowed == ((1u << HTTP_GET) | (1u << HTTP_HEAD) | (1u << HTTP_PATCH) | (1u << HTTP_OPTIONS)));
    char hdr[64];
    size_t n = router_allow_header(allowed, hdr, sizeof(hdr));
    CHECK_STRN(hdr, n, "GET, HEAD, PATCH, OPTIONS");
    /* HEAD falls back to GET */
    const http_route_t *r = m(rt, HTTP_HEAD, "/api/companies", p, &np, &allowed);
    CHECK(r && strcmp(r->name, "list") == 0);
    router_free(rt);
}

TEST(misses)
{
    router_t *rt = make();
    http_str_t p[ROUTER_MAX_PARAMS];
    int np;
    uint32_t allowed;
    const char *misses[] = {"/api",
                            "/api/",
                            "/api/health/",
                            "/api/companies/",
                            "/api//health",
                            "/api/companies/1/",
                            "/api/companies/1/x",
                            "/nope",
                            "api/health",
                            "/api/healthz",
                            "/api/heal",
                            "//"};
    for (size_t i = 0; i < sizeof(misses) / sizeof(misses[0]); i++) {
        const http_route_t *r = m(rt, HTTP_GET, misses[i], p, &np, &allowed);
        if (r)
            printf("  unexpected match for %s\n", misses[i]);
        CHECK(r == NULL);
        CHECK_EQ_INT(allowed, 0);
    }
    router_free(rt);
}

TEST(route_ids_are_sequential)
{
    router_t *rt = make();
    CHECK_EQ_INT(router_route_count(rt), 9);
    CHECK(strcmp(router_route_by_id(rt, 1)->name, "health") == 0);
    CHECK(strcmp(router_route_by_id(rt, 9)->name, "root") == 0);
    CHECK(router_route_by_id(rt, 0) == NULL);
    CHECK(router_route_by_id(rt, 10) == NULL);
    router_free(rt);
}

TEST_MAIN()
