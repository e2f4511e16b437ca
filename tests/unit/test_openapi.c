/*
 * The resource schema and the OpenAPI description built from it, over every route the server
 * registers and every resource and column of the schema: each route is described (path and
 * method), each resource has its read, create and update shapes, each writable column its
 * rule, each filter and sort its parameter. The description is also linted by @redocly/cli in
 * tests/integration/test_openapi.py.
 */
#include "test.h"

#include "api/api.h"
#include "api/ops/openapi.h"
#include "api/schema.h"
#include "core/buf.h"
#include "core/json_read.h"
#include "http/router.h"

static router_t *rt;
static buf_t doc = BUF_INIT;
static arena_t arena;
static const json_value_t *root;
static size_t nmissing;
static const char *missing[16];

static void build(void)
{
    if (rt)
        return;
    rt = router_new();
    api_register_routes(rt);
    nmissing = api_openapi_build(rt, &doc, missing, 16);
    static char first[1 << 16];
    arena_init(&arena, first, sizeof(first));
    json_error_t err;
    root = json_parse(&arena, doc.data, doc.len, &err);
}

TEST(description_is_json_3_1)
{
    build();
    CHECK(root != NULL);
    size_t n;
    const char *v = json_string(json_object_get(root, "openapi"), &n);
    CHECK(v && n == 5 && memcmp(v, "3.1.0", 5) == 0);
}

TEST(every_route_is_described)
{
    build();
    for (size_t i = 0; i < nmissing && i < 16; i++)
        printf("  undescribed route: %s\n", missing[i]);
    CHECK_EQ_INT(nmissing, 0);
    const json_value_t *paths = json_object_get(root, "paths");
    uint16_t n = router_route_count(rt);
    CHECK(n > 30);
    for (uint16_t id = 1; id <= n; id++) {
        const http_route_t *r = router_route_by_id(rt, id);
        char method[16];
        size_t k = 0;
        for (const char *p = r->name; *p && *p != ' ' && k < sizeof(method) - 1; p++)
            method[k++] = (char)(*p - 'A' + 'a');
        method[k] = '\0';
        const json_value_t *op = json_object_get(json_object_get(paths, r->pattern), method);
        if (!op)
            printf("  %s has no %s %s\n", r->name, method, r->pattern);
        CHECK(op != NULL);
        CHECK(json_object_get(op, "responses") != NULL);
        CHECK(json_object_get(op, "operationId") != NULL);
        /* public routes say so; the others need a key */
        const json_value_t *sec = json_object_get(op, "security");
        CHECK(((r->flags & ROUTE_PUBLIC) != 0) == (sec != NULL));
    }
}

static const json_value_t *component(const char *singular, const char *suffix)
{
    char name[64];
    snprintf(name, sizeof(name), "%s%s", singular, suffix);
    name[0] = (char)(name[0] - 'a' + 'A');
    return json_object_get(json_object_get(json_object_get(root, "components"), "schemas"), name);
}

TEST(every_column_in_the_row_shape_every_writable_column_in_the_bodies)
{
    build();
    for (int i = 0; i < SR_COUNT; i++) {
        const schema_res_t *res = &g_schema[i];
        const json_value_t *row = json_object_get(component(res->singular, ""), "properties");
        const json_value_t *create = json_object_get(component(res->singular, "Create"), "properties");
        const json_value_t *update = json_object_get(component(res->singular, "Update"), "properties");
        CHECK(row != NULL);
        CHECK((create != NULL) == res->writable);
        CHECK((update != NULL) == res->writable);
        for (size_t c = 0; c < res->ncols; c++) {
            const schema_col_t *col = &res->cols[c];
            if (!json_object_get(row, col->name))
                printf("  %s.%s missing from the row shape\n", res->plural, col->name);
            CHECK(json_object_get(row, col->name) != NULL);
            if (!res->writable)
                continue;
            CHECK((json_object_get(create, col->name) != NULL) == (col->w != W_NONE));
            CHECK((json_object_get(update, col->name) != NULL) == (col->w != W_NONE));
        }
        for (size_t s = 0; s < res->nstats; s++)
            CHECK(json_object_get(row, res->stats[s].name) != NULL);
        for (size_t e = 0; e < res->nembeds; e++)
            CHECK(json_object_get(row, res->embeds[e].key) != NULL);
    }
}

/* The names of an operation's parameters, as "|a|b|". */
static void param_names(const json_value_t *op, char *out, size_t cap)
{
    const json_value_t *ps = json_object_get(op, "parameters");
    size_t o = 0;
    out[o++] = '|';
    for (size_t i = 0; ps && i < json_array_len(ps); i++) {
        size_t n;
        const char *name = json_string(json_object_get(json_array_at(ps, i), "name"), &n);
        if (name && o + n + 2 < cap) {
            memcpy(out + o, name, n);
            o += n;
            out[o++] = '|';
        }
    }
    out[o] = '\0';
}

TEST(every_filter_sort_and_extra_is_a_list_parameter)
{
    build();
    const json_value_t *paths = json_object_get(root, "paths");
    for (int i = 0; i < SR_COUNT; i++) {
        const schema_res_t *res = &g_schema[i];
        char path[64], names[1024], want[80];
        snprintf(path, sizeof(path), "/api/%s", res->plural);
        const json_value_t *op = json_object_get(json_object_get(paths, path), "get");
        CHECK(op != NULL);
        param_names(op, names, sizeof(names));
        for (size_t f = 0; f < res->nfilters; f++) {
            snprintf(want, sizeof(want), "|%s|", res->filters[f].param.name);
            if (!strstr(names, want))
                printf("  %s: no parameter %s\n", path, want);
            CHECK(strstr(names, want) != NULL);
        }
        CHECK((strstr(names, "|q|") != NULL) == (res->search != NULL));
        CHECK((strstr(names, "|" SCHEMA_STATS_PARAM "|") != NULL) == (res->nstats > 0));
        CHECK((strstr(names, "|" SCHEMA_EMBED_PARAM "|") != NULL) == (res->nembeds > 0));
        CHECK(strstr(names, "|sort|") != NULL);
        /* the sort enum lists each sort both ways */
        const json_value_t *ps = json_object_get(op, "parameters");
        const json_value_t *sorts = NULL;
        for (size_t k = 0; k < json_array_len(ps); k++) {
            size_t n;
            const char *name = json_string(json_object_get(json_array_at(ps, k), "name"), &n);
            if (name && n == 4 && memcmp(name, "sort", 4) == 0)
                sorts = json_object_get(json_object_get(json_array_at(ps, k), "schema"), "enum");
        }
        CHECK_EQ_INT(json_array_len(sorts), 2 * res->nsorts);
    }
}

TEST(schema_references_and_embeds_resolve)
{
    schema_init();
    for (int i = 0; i < SR_COUNT; i++) {
        const schema_res_t *res = &g_schema[i];
        CHECK(schema_find(res->plural) == res);
        CHECK(schema_by_table(res->table) == res);
        CHECK(strncmp(res->select, "t.id", 4) == 0);
        for (size_t c = 0; c < res->ncols; c++) {
            const schema_col_t *col = &res->cols[c];
            CHECK(col->sql_type != NULL);
            if (col->w == W_REF)
                CHECK(schema_by_table(col->ref) != NULL);
            if (col->w == W_ENUM)
                CHECK(col->enums != NULL && col->enums[0] != NULL);
            if (col->w == W_TEXT || col->w == W_LONGTEXT || col->w == W_EMAIL)
                CHECK(col->max > 0);
            /* the JSON key is the quoted name with its colon */
            CHECK_EQ_INT(res->json[c].key_len, strlen(col->name) + 3);
        }
        const char *fk;
        const schema_res_t *parent = schema_stats_parent(res, &fk);
        if (parent)
            CHECK(schema_col(res, fk) != NULL);
    }
    CHECK(schema_find_n("companiesX", 9) == &g_schema[SR_COMPANIES]);
    CHECK(schema_find("nope") == NULL);
    CHECK(schema_writable_name("email", 5));
    CHECK(!schema_writable_name("password", 8));
    CHECK(!schema_writable_name("created_at", 10)); /* read-only */
}

TEST(problem_types_are_listed)
{
    build();
    const json_value_t *types = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(root, "components"), "schemas"), "Problem"),
                "properties"),
            "type"),
        "enum");
    CHECK(json_array_len(types) >= 20);
}

TEST_MAIN()
