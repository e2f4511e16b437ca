// clang-format off
// fuzz-sources: api/graphql/parse.c api/graphql/lex.c api/graphql/types.c api/graphql/validate.c api/graphql/coerce.c api/graphql/schema.c api/graphql/collect.c api/graphql/cost.c api/schema.c core/buf.c core/common.c core/utf8.c core/json.c core/json_read.c core/timestamp.c
// clang-format on
/*
 * libFuzzer harness for what a GraphQL document meets before it runs, against the CRM schema
 * generated from the resource table: parse (api/graphql/parse.c), validate
 * (api/graphql/validate.c), operation selection, variable coercion with no variables given
 * (api/graphql/coerce.c), the limits (api/graphql/cost.c) and field collection of the root
 * selection (api/graphql/collect.c). Nothing may crash, leak or loop; a valid document must
 * have an operation to select or an error saying why, and every error a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/graphql/collect.h"
#include "api/graphql/cost.h"
#include "api/graphql/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                          \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static arena_t arena;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    if (!inited) {
        arena_init(&arena, NULL, 0);
        inited = true;
    }
    const gql_schema_t *s = gql_schema();
    char *src = malloc(size ? size : 1);
    memcpy(src, data, size);
    gql_parse_limits_t lim = {8000, 0};
    gql_error_t perr;
    gql_errors_t errs = {.arena = &arena};
    gql_doc_t *doc = gql_parse(&arena, src, size, &lim, &perr);
    if (doc && gql_validate(s, doc, &errs)) {
        ASSERT(errs.n == 0);
        const gql_def_t *op = gql_select_operation(doc, NULL, &errs);
        ASSERT(op || errs.n > 0);
        gql_vars_t vars;
        if (op && gql_coerce_variables(s, op, NULL, &arena, &vars, &errs)) {
            gql_run_t run = {s, doc, &vars, &arena};
            gql_cost_t cost;
            gql_cost(&run, op, &cost);
            gql_cset_t roots = {0};
            gql_collect(&run, op->kind == GD_MUTATION ? s->mutation : s->query, &op->sel, &roots);
            for (size_t i = 0; i < roots.n; i++)
                ASSERT(roots.f[i].key && roots.f[i].n > 0);
        }
    }
    for (size_t i = 0; i < errs.n; i++)
        ASSERT(errs.e[i].message && errs.e[i].message[0]);
    free(src);
    arena_reset(&arena);
    return 0;
}
