#include "api/graphql/types.h"
#include "core/json.h"
#include "test.h"

#include <stdint.h>
#include <time.h>

/*
 * Validation (api/graphql/validate.c), coercion (api/graphql/coerce.c) and the type system's
 * lookups and error list (api/graphql/types.c), over the example schema of the GraphQL spec's
 * section 5 built here by hand (with the additions the section's examples assume: Arguments,
 * ComplexInput, the leaf-selection fields, a Mutation and a Subscription type), plus a few
 * fields for the scalars, lists, input objects and directives of our own.
 *
 * The table ports the section's examples, each counter-example expecting its error and each
 * example validating clean; messages and locations were checked against graphql-js 16
 * (tools/node_modules/graphql) on the same schema written in SDL. We differ where we mean to:
 * operation and fragment name errors point at the definition (graphql-js: its name), a value
 * error inside an argument says where (` at "deep.name"`), and the custom scalars DateTime,
 * Date and Decimal check their literals.
 */

/* ---- the schema ---- */

#define NN(t)   ((const gql_type_t *)&(gql_type_t){.kind = GK_NON_NULL, .of = (t)})
#define LIST(t) ((const gql_type_t *)&(gql_type_t){.kind = GK_LIST, .of = (t)})
#define ARGS(...)                                                                                            \
    .args = (const gql_input_t[]){__VA_ARGS__},                                                              \
    .nargs = sizeof((const gql_input_t[]){__VA_ARGS__}) / sizeof(gql_input_t)
#define FIELDS(arr) .fields = arr, .nfields = sizeof(arr) / sizeof(arr[0])
#define INPUTS(arr) .inputs = arr, .ninputs = sizeof(arr) / sizeof(arr[0])
#define TYPES(...)                                                                                           \
    (const gql_type_t *const[]){__VA_ARGS__},                                                                \
        sizeof((const gql_type_t *const[]){__VA_ARGS__}) / sizeof(void *)

static gql_type_t t_string = {.kind = GK_SCALAR, .scalar = GSC_STRING, .name = "String"};
static gql_type_t t_int = {.kind = GK_SCALAR, .scalar = GSC_INT, .name = "Int"};
static gql_type_t t_float = {.kind = GK_SCALAR, .scalar = GSC_FLOAT, .name = "Float"};
static gql_type_t t_boolean = {.kind = GK_SCALAR, .scalar = GSC_BOOLEAN, .name = "Boolean"};
static gql_type_t t_id = {.kind = GK_SCALAR, .scalar = GSC_ID, .name = "ID"};
static gql_type_t t_datetime = {.kind = GK_SCALAR, .scalar = GSC_DATETIME, .name = "DateTime"};
static gql_type_t t_date = {.kind = GK_SCALAR, .scalar = GSC_DATE, .name = "Date"};
static gql_type_t t_decimal = {.kind = GK_SCALAR, .scalar = GSC_DECIMAL, .name = "Decimal"};

static const gql_enum_value_t dog_commands[] = {{.name = "SIT"}, {.name = "DOWN"}, {.name = "HEEL"}};
static gql_type_t t_dog_command = {.kind = GK_ENUM, .name = "DogCommand", .enums = dog_commands, .nenums = 3};
static const gql_enum_value_t cat_commands[] = {{.name = "JUMP"}};
static gql_type_t t_cat_command = {.kind = GK_ENUM, .name = "CatCommand", .enums = cat_commands, .nenums = 1};

static gql_type_t t_dog, t_cat, t_human, t_alien, t_pet, t_sentient;

static const gql_field_t dog_fields[] = {
    {.name = "name", .type = NN(&t_string)},
    {.name = "nickname", .type = &t_string},
    {.name = "barkVolume", .type = &t_int},
    {.name = "doesKnowCommand",
     .type = NN(&t_boolean),
     ARGS({.name = "dogCommand", .type = NN(&t_dog_command)})},
    {.name = "isHouseTrained", .type = NN(&t_boolean), ARGS({.name = "atOtherHomes", .type = &t_boolean})},
    {.name = "owner", .type = &t_human},
};
static const gql_field_t cat_fields[] = {
    {.name = "name", .type = NN(&t_string)},
    {.name = "nickname", .type = &t_string},
    {.name = "doesKnowCommand",
     .type = NN(&t_boolean),
     ARGS({.name = "catCommand", .type = NN(&t_cat_command)})},
    {.name = "meowVolume", .type = &t_int},
};
static const gql_field_t name_only[] = {{.name = "name", .type = NN(&t_string)}};
static const gql_field_t alien_fields[] = {{.name = "name", .type = NN(&t_string)},
                                           {.name = "homePlanet", .type = &t_string}};
static const gql_field_t human_fields[] = {{.name = "name", .type = NN(&t_string)},
                                           {.name = "pets", .type = LIST(NN(&t_pet))}};

static gql_type_t t_pet = {
    .kind = GK_INTERFACE, .name = "Pet", FIELDS(name_only), .possible = TYPES(&t_dog, &t_cat)};
static gql_type_t t_sentient = {
    .kind = GK_INTERFACE, .name = "Sentient", FIELDS(name_only), .possible = TYPES(&t_alien, &t_human)};
static gql_type_t t_dog = {.kind = GK_OBJECT, .name = "Dog", FIELDS(dog_fields), .interfaces = TYPES(&t_pet)};
static gql_type_t t_cat = {.kind = GK_OBJECT, .name = "Cat", FIELDS(cat_fields), .interfaces = TYPES(&t_pet)};
static gql_type_t t_alien = {
    .kind = GK_OBJECT, .name = "Alien", FIELDS(alien_fields), .interfaces = TYPES(&t_sentient)};
static gql_type_t t_human = {
    .kind = GK_OBJECT, .name = "Human", FIELDS(human_fields), .interfaces = TYPES(&t_sentient)};
static gql_type_t t_cat_or_dog = {.kind = GK_UNION, .name = "CatOrDog", .possible = TYPES(&t_cat, &t_dog)};
static gql_type_t t_dog_or_human = {
    .kind = GK_UNION, .name = "DogOrHuman", .possible = TYPES(&t_dog, &t_human)};
static gql_type_t t_human_or_alien = {
    .kind = GK_UNION, .name = "HumanOrAlien", .possible = TYPES(&t_human, &t_alien)};

static const gql_input_t complex_inputs[] = {{.name = "name", .type = &t_string},
                                             {.name = "owner", .type = &t_string}};
static gql_type_t t_complex_input = {.kind = GK_INPUT_OBJECT, .name = "ComplexInput", INPUTS(complex_inputs)};
static gql_type_t t_find_dog_input = {
    .kind = GK_INPUT_OBJECT, .name = "FindDogInput", INPUTS(complex_inputs)};
static const gql_input_t field_inputs[] = {{.name = "field", .type = &t_boolean}};
static gql_type_t t_field_input = {.kind = GK_INPUT_OBJECT, .name = "FieldInput", INPUTS(field_inputs)};
static gql_type_t t_deep_input;
static const gql_input_t deep_inputs[] = {
    {.name = "name", .type = NN(&t_string)},  {.name = "count", .type = &t_int, .default_value = "3"},
    {.name = "inner", .type = &t_deep_input}, {.name = "tags", .type = LIST(NN(&t_string))},
    {.name = "when", .type = &t_date},
};
static gql_type_t t_deep_input = {.kind = GK_INPUT_OBJECT, .name = "DeepInput", INPUTS(deep_inputs)};

static const gql_field_t arguments_fields[] = {
    {.name = "multipleRequirements",
     .type = NN(&t_int),
     ARGS({.name = "x", .type = NN(&t_int)}, {.name = "y", .type = NN(&t_int)})},
    {.name = "booleanArgField", .type = &t_boolean, ARGS({.name = "booleanArg", .type = &t_boolean})},
    {.name = "floatArgField", .type = &t_float, ARGS({.name = "floatArg", .type = &t_float})},
    {.name = "intArgField", .type = &t_int, ARGS({.name = "intArg", .type = &t_int})},
    {.name = "nonNullBooleanArgField",
     .type = NN(&t_boolean),
     ARGS({.name = "nonNullBooleanArg", .type = NN(&t_boolean)})},
    {.name = "booleanListArgField",
     .type = LIST(&t_boolean),
     ARGS({.name = "booleanListArg", .type = NN(LIST(&t_boolean))})},
    {.name = "optionalNonNullBooleanArgField",
     .type = NN(&t_boolean),
     ARGS({.name = "optionalBooleanArg", .type = NN(&t_boolean), .default_value = "false"})},
    {.name = "nonNullBooleanListField",
     .type = LIST(&t_boolean),
     ARGS({.name = "nonNullBooleanListArg", .type = NN(LIST(&t_boolean))})},
};
static gql_type_t t_arguments = {.kind = GK_OBJECT, .name = "Arguments", FIELDS(arguments_fields)};

static const gql_field_t query_fields[] = {
    {.name = "dog", .type = &t_dog},
    {.name = "findDog",
     .type = &t_dog,
     ARGS({.name = "complex", .type = &t_complex_input}, {.name = "searchBy", .type = &t_find_dog_input})},
    {.name = "booleanList",
     .type = &t_boolean,
     ARGS({.name = "booleanListArg", .type = LIST(NN(&t_boolean))})},
    {.name = "arguments", .type = &t_arguments},
    {.name = "human", .type = &t_human},
    {.name = "pet", .type = &t_pet},
    {.name = "catOrDog", .type = &t_cat_or_dog},
    {.name = "field", .type = &t_boolean, ARGS({.name = "arg", .type = &t_field_input})},
    {.name = "scalars",
     .type = &t_boolean,
     ARGS({.name = "id", .type = &t_id}, {.name = "f", .type = &t_float}, {.name = "i", .type = &t_int},
          {.name = "s", .type = &t_string}, {.name = "b", .type = &t_boolean},
          {.name = "ints", .type = LIST(&t_int)}, {.name = "nn", .type = NN(&t_int)},
          {.name = "cmd", .type = &t_dog_command}, {.name = "at", .type = &t_datetime},
          {.name = "on", .type = &t_date}, {.name = "amount", .type = &t_decimal},
          {.name = "deep", .type = &t_deep_input}, {.name = "list", .type = LIST(LIST(NN(&t_int)))})},
};
static gql_type_t t_query = {.kind = GK_OBJECT, .name = "Query", FIELDS(query_fields)};

static const gql_field_t mutate_fields[] = {{.name = "id", .type = &t_id}};
static gql_type_t t_mutate_result = {.kind = GK_OBJECT, .name = "MutateDogResult", FIELDS(mutate_fields)};
static const gql_field_t mutation_fields[] = {{.name = "mutateDog", .type = &t_mutate_result}};
static gql_type_t t_mutation = {.kind = GK_OBJECT, .name = "Mutation", FIELDS(mutation_fields)};
static const gql_field_t message_fields[] = {{.name = "body", .type = &t_string},
                                             {.name = "sender", .type = &t_string}};
static gql_type_t t_message = {.kind = GK_OBJECT, .name = "Message", FIELDS(message_fields)};
static const gql_field_t subscription_fields[] = {{.name = "newMessage", .type = &t_message},
                                                  {.name = "disallowedSecondRootField", .type = &t_boolean}};
static gql_type_t t_subscription = {.kind = GK_OBJECT, .name = "Subscription", FIELDS(subscription_fields)};

/* enough of the introspection types for __schema and __type */
static gql_type_t t__type;
static const gql_field_t t__field_fields[] = {{.name = "name", .type = NN(&t_string)}};
static gql_type_t t__field = {.kind = GK_OBJECT, .name = "__Field", FIELDS(t__field_fields)};
static const gql_field_t t__type_fields[] = {{.name = "name", .type = &t_string},
                                             {.name = "fields", .type = LIST(NN(&t__field))}};
static gql_type_t t__type = {.kind = GK_OBJECT, .name = "__Type", FIELDS(t__type_fields)};
static const gql_field_t t__schema_fields[] = {{.name = "queryType", .type = NN(&t__type)},
                                               {.name = "types", .type = NN(LIST(NN(&t__type)))}};
static gql_type_t t__schema = {.kind = GK_OBJECT, .name = "__Schema", FIELDS(t__schema_fields)};

static const char *const loc_exec[] = {"FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"};
static const char *const loc_field[] = {"FIELD"};
static const char *const loc_query[] = {"QUERY"};
static const char *const loc_var[] = {"VARIABLE_DEFINITION"};
static const char *const loc_deprecated[] = {"FIELD_DEFINITION", "ENUM_VALUE"};
static const gql_input_t if_arg[] = {{.name = "if", .type = NN(&t_boolean)}};
static const gql_input_t tag_arg[] = {{.name = "name", .type = &t_string}};
static const gql_input_t reason_arg[] = {
    {.name = "reason", .type = &t_string, .default_value = "\"No longer\""}};
static const gql_directive_def_t directives[] = {
    {.name = "include", .locations = loc_exec, .nlocations = 3, .args = if_arg, .nargs = 1},
    {.name = "skip", .locations = loc_exec, .nlocations = 3, .args = if_arg, .nargs = 1},
    {.name = "deprecated", .locations = loc_deprecated, .nlocations = 2, .args = reason_arg, .nargs = 1},
    {.name = "tag", .locations = loc_field, .nlocations = 1, .args = tag_arg, .nargs = 1, .repeatable = true},
    {.name = "onQuery", .locations = loc_query, .nlocations = 1},
    {.name = "onVar", .locations = loc_var, .nlocations = 1},
};

static const gql_type_t *const all_types[] = {
    &t_string,
    &t_int,
    &t_float,
    &t_boolean,
    &t_id,
    &t_datetime,
    &t_date,
    &t_decimal,
    &t_dog_command,
    &t_cat_command,
    &t_dog,
    &t_cat,
    &t_human,
    &t_alien,
    &t_pet,
    &t_sentient,
    &t_cat_or_dog,
    &t_dog_or_human,
    &t_human_or_alien,
    &t_complex_input,
    &t_find_dog_input,
    &t_field_input,
    &t_deep_input,
    &t_arguments,
    &t_query,
    &t_mutate_result,
    &t_mutation,
    &t_message,
    &t_subscription,
    &t__field,
    &t__type,
    &t__schema,
};

static const gql_schema_t schema = {
    .query = &t_query,
    .mutation = &t_mutation,
    .subscription = &t_subscription,
    .types = all_types,
    .ntypes = sizeof(all_types) / sizeof(all_types[0]),
    .directives = directives,
    .ndirectives = sizeof(directives) / sizeof(directives[0]),
};

/* the same without the mutation and subscription roots */
static const gql_schema_t schema_query_only = {
    .query = &t_query,
    .types = all_types,
    .ntypes = sizeof(all_types) / sizeof(all_types[0]),
    .directives = directives,
    .ndirectives = sizeof(directives) / sizeof(directives[0]),
};

/* ---- helpers ---- */

typedef struct run {
    arena_t a;
    gql_errors_t errs;
    gql_doc_t *doc;
    bool valid;
} run_t;

/* Parses and validates src; false (with the syntax error printed) when it does not parse. */
static bool run_validate(run_t *r, const gql_schema_t *s, const char *src)
{
    memset(r, 0, sizeof(*r));
    arena_init(&r->a, NULL, 0);
    r->errs.arena = &r->a;
    gql_error_t perr;
    r->doc = gql_parse(&r->a, src, strlen(src), NULL, &perr);
    if (!r->doc) {
        printf("  syntax error %u:%u %s in: %s\n", (unsigned)perr.loc.line, (unsigned)perr.loc.col,
               perr.message, src);
        return false;
    }
    r->valid = gql_validate(s, r->doc, &r->errs);
    return true;
}

static void print_errors(const gql_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        printf("    %s @", errs->e[i].message);
        for (size_t j = 0; j < errs->e[i].nlocs; j++)
            printf(" %u:%u", (unsigned)errs->e[i].locs[j].line, (unsigned)errs->e[i].locs[j].col);
        printf("\n");
    }
}

static void locs_text(const gql_err_t *e, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t j = 0; j < e->nlocs && n < cap; j++)
        n += (size_t)snprintf(out + n, cap - n, "%s%u:%u", j ? " " : "", (unsigned)e->locs[j].line,
                              (unsigned)e->locs[j].col);
}

/* The error with message msg, or NULL. */
static const gql_err_t *find_error(const gql_errors_t *errs, const char *msg)
{
    for (size_t i = 0; i < errs->n; i++)
        if (strcmp(errs->e[i].message, msg) == 0)
            return &errs->e[i];
    return NULL;
}

/* ---- the section 5 examples ---- */

typedef struct vcase {
    const char *name;
    const char *doc;
    int nerrors;         /* 0: valid; -1: at least one */
    const char *message; /* an error with this message must be among them (NULL: any) */
    const char *locs;    /* and have these locations ("3:5 4:5"), or NULL */
} vcase_t;

#define VALID(name, doc)                                                                                     \
    {                                                                                                        \
        name, doc, 0, NULL, NULL                                                                             \
    }

static const vcase_t vcases[] = {
    /* 5.2.1.1 Operation Name Uniqueness */
    VALID("getDogName/getOwnerName", "query getDogName {\n  dog {\n    name\n  }\n}\n\n"
                                     "query getOwnerName {\n  dog {\n    owner {\n      name\n"
                                     "    }\n  }\n}\n"),
    {"getName twice",
     "query getName {\n  dog {\n    name\n  }\n}\n\n"
     "query getName {\n  dog {\n    owner {\n      name\n    }\n"
     "  }\n}\n",
     1, "There can be only one operation named \"getName\".", "1:1 7:1"},
    {"dogOperation query and mutation",
     "query dogOperation {\n  dog {\n    name\n  }\n}\n\n"
     "mutation dogOperation {\n  mutateDog {\n    id\n  }\n}\n",
     1, "There can be only one operation named \"dogOperation\".", "1:1 7:1"},

    /* 5.2.2.1 Lone Anonymous Operation */
    VALID("anonymous alone", "{\n  dog {\n    name\n  }\n}\n"),
    {"anonymous and named",
     "{\n  dog {\n    name\n  }\n}\n\nquery getName {\n  dog {\n    owner {\n      name\n    }\n  }\n}\n", 1,
     "This anonymous operation must be the only defined operation.", "1:1"},
    {"two anonymous", "{ dog { name } } { dog { nickname } }", 2,
     "This anonymous operation must be the only defined operation.", "1:1"},

    /* 5.2.3.1 Single root field */
    VALID("subscription one field", "subscription sub {\n  newMessage {\n    body\n    sender\n  }\n}\n"),
    VALID("subscription through a fragment", "subscription sub {\n  ...newMessageFields\n}\n\n"
                                             "fragment newMessageFields on Subscription {\n"
                                             "  newMessage {\n    body\n    sender\n  }\n}\n"),
    {"subscription two fields",
     "subscription sub {\n  newMessage {\n    body\n    sender\n  }\n  disallowedSecondRootField\n}\n", 1,
     "Subscription \"sub\" must select only one top level field.", "6:3"},
    {"subscription two fields through a fragment",
     "subscription sub {\n  ...multipleSubscriptions\n}\n\n"
     "fragment multipleSubscriptions on Subscription {\n"
     "  newMessage {\n    body\n    sender\n  }\n"
     "  disallowedSecondRootField\n}\n",
     1, "Subscription \"sub\" must select only one top level field.", "10:3"},
    {"subscription introspection root", "subscription sub {\n  __typename\n}\n", 1,
     "Subscription \"sub\" must not select an introspection top level field.", "2:3"},
    {"anonymous subscription two fields", "subscription { newMessage { body } disallowedSecondRootField }", 1,
     "Anonymous Subscription must select only one top level field.", "1:36"},

    /* 5.3.1 Field Selections */
    {"fieldNotDefined",
     "{ dog { ...fieldNotDefined } }\nfragment fieldNotDefined on Dog {\n  meowVolume\n}\n", 1,
     "Cannot query field \"meowVolume\" on type \"Dog\". Did you mean \"barkVolume\"?", "3:3"},
    {"aliasedLyingFieldTargetNotDefined",
     "{ dog { ...aliasedLyingFieldTargetNotDefined } }\n"
     "fragment aliasedLyingFieldTargetNotDefined on Dog {\n"
     "  barkVolume: kawVolume\n}\n",
     1, "Cannot query field \"kawVolume\" on type \"Dog\". Did you mean \"barkVolume\"?", "3:3"},
    VALID("interfaceFieldSelection",
          "{ dog { ...interfaceFieldSelection } }\nfragment interfaceFieldSelection on Pet {\n  name\n}\n"),
    {"definedOnImplementorsButNotInterface",
     "{ dog { ...definedOnImplementorsButNotInterface } }\n"
     "fragment definedOnImplementorsButNotInterface on Pet {\n"
     "  nickname\n}\n",
     1,
     "Cannot query field \"nickname\" on type \"Pet\". Did you mean to use an inline fragment on \"Cat\" or "
     "\"Dog\"?",
     "3:3"},
    VALID("inDirectFieldSelectionOnUnion", "{ dog { ...inDirectFieldSelectionOnUnion } }\n"
                                           "fragment inDirectFieldSelectionOnUnion on CatOrDog {\n"
                                           "  __typename\n  ... on Pet {\n    name\n  }\n"
                                           "  ... on Dog {\n    barkVolume\n  }\n}\n"),
    {"directFieldSelectionOnUnion",
     "{ dog { ...directFieldSelectionOnUnion } }\n"
     "fragment directFieldSelectionOnUnion on CatOrDog {\n"
     "  name\n  barkVolume\n}\n",
     2,
     "Cannot query field \"barkVolume\" on type \"CatOrDog\". Did you mean to use an inline fragment on "
     "\"Dog\"?",
     "4:3"},
    {"unknown root field", "{ foo }", 1,
     "Cannot query field \"foo\" on type \"Query\". Did you mean \"dog\"?", "1:3"},
    VALID("__typename on a union and __schema on the root",
          "{ catOrDog { __typename } __schema { queryType { name } } __type(name: \"Dog\") { name } }"),
    {"__schema below the root", "{ dog { __schema { queryType { name } } } }", 1,
     "Cannot query field \"__schema\" on type \"Dog\".", "1:9"},
    {"__type without its name", "{ __type { name } }", 1,
     "Field \"__type\" argument \"name\" of type \"String!\" is required, but it was not provided.", "1:3"},

    /* 5.3.2 Field Selection Merging */
    VALID("mergeIdenticalFields", "{ dog { ...mergeIdenticalFields ...mergeIdenticalAliasesAndFields } }\n"
                                  "fragment mergeIdenticalFields on Dog {\n  name\n  name\n}\n"
                                  "fragment mergeIdenticalAliasesAndFields on Dog {\n"
                                  "  otherName: name\n  otherName: name\n}\n"),
    {"conflictingBecauseAlias",
     "{ dog { ...conflictingBecauseAlias } }\n"
     "fragment conflictingBecauseAlias on Dog {\n"
     "  name: nickname\n  name\n}\n",
     1,
     "Fields \"name\" conflict because \"nickname\" and \"name\" are different fields. Use different aliases "
     "on the fields to fetch both if this was intentional.",
     "3:3 4:3"},
    VALID("mergeIdenticalFieldsWithIdenticalArgs", "{ dog { ...mergeIdenticalFieldsWithIdenticalArgs } }\n"
                                                   "fragment mergeIdenticalFieldsWithIdenticalArgs on Dog {\n"
                                                   "  doesKnowCommand(dogCommand: SIT)\n"
                                                   "  doesKnowCommand(dogCommand: SIT)\n}\n"),
    VALID("mergeIdenticalFieldsWithIdenticalValues",
          "query ($dogCommand: DogCommand!) { dog { ...mergeIdenticalFieldsWithIdenticalValues } }\n"
          "fragment mergeIdenticalFieldsWithIdenticalValues on Dog {\n"
          "  doesKnowCommand(dogCommand: $dogCommand)\n"
          "  doesKnowCommand(dogCommand: $dogCommand)\n}\n"),
    {"conflictingArgsOnValues",
     "{ dog { ...conflictingArgsOnValues } }\n"
     "fragment conflictingArgsOnValues on Dog {\n"
     "  doesKnowCommand(dogCommand: SIT)\n"
     "  doesKnowCommand(dogCommand: HEEL)\n}\n",
     1,
     "Fields \"doesKnowCommand\" conflict because they have differing arguments. Use different aliases on "
     "the fields to fetch both if this was intentional.",
     "3:3 4:3"},
    {"conflictingArgsValueAndVar",
     "query ($dogCommand: DogCommand!) { dog { ...conflictingArgsValueAndVar } }\n"
     "fragment conflictingArgsValueAndVar on Dog {\n"
     "  doesKnowCommand(dogCommand: SIT)\n"
     "  doesKnowCommand(dogCommand: $dogCommand)\n}\n",
     1, NULL, NULL},
    {"conflictingArgsWithVars",
     "query ($varOne: DogCommand!, $varTwo: DogCommand!) { dog { ...conflictingArgsWithVars } }\n"
     "fragment conflictingArgsWithVars on Dog {\n"
     "  doesKnowCommand(dogCommand: $varOne)\n"
     "  doesKnowCommand(dogCommand: $varTwo)\n}\n",
     1, NULL, NULL},
    {"differingArgs",
     "{ dog { ...differingArgs } }\n"
     "fragment differingArgs on Dog {\n"
     "  doesKnowCommand(dogCommand: SIT)\n  doesKnowCommand\n}\n",
     2,
     "Fields \"doesKnowCommand\" conflict because they have differing arguments. Use different aliases on "
     "the fields to fetch both if this was intentional.",
     "3:3 4:3"},
    VALID("safeDifferingFields", "{ dog { ...safeDifferingFields ...safeDifferingArgs } }\n"
                                 "fragment safeDifferingFields on Pet {\n  ... on Dog {\n"
                                 "    volume: barkVolume\n  }\n  ... on Cat {\n"
                                 "    volume: meowVolume\n  }\n}\n"
                                 "fragment safeDifferingArgs on Pet {\n  ... on Dog {\n"
                                 "    doesKnowCommand(dogCommand: SIT)\n  }\n  ... on Cat {\n"
                                 "    doesKnowCommand(catCommand: JUMP)\n  }\n}\n"),
    {"conflictingDifferingResponses",
     "{ dog { ...conflictingDifferingResponses } }\n"
     "fragment conflictingDifferingResponses on Pet {\n"
     "  ... on Dog {\n    someValue: nickname\n  }\n"
     "  ... on Cat {\n    someValue: meowVolume\n  }\n}\n",
     1,
     "Fields \"someValue\" conflict because they return conflicting types \"String\" and \"Int\". Use "
     "different aliases on the fields to fetch both if this was intentional.",
     "4:5 7:5"},
    {"conflicting subfields", "{\n  dog {\n    x: name\n  }\n  dog {\n    x: nickname\n  }\n}\n", 1,
     "Fields \"dog\" conflict because subfields \"x\" conflict because \"name\" and \"nickname\" are "
     "different fields. Use different aliases on the fields to fetch both if this was intentional.",
     "2:3 3:5 5:3 6:5"},
    {"conflict between a field and a fragment", "{ dog { name ...F } }\nfragment F on Dog { name: nickname }",
     1,
     "Fields \"name\" conflict because \"name\" and \"nickname\" are different fields. Use different aliases "
     "on the fields to fetch both if this was intentional.",
     "1:9 2:21"},
    {"conflict between two fragments",
     "{ dog { ...A ...B } }\nfragment A on Dog { x: name }\nfragment B on Dog { x: barkVolume }", 1,
     "Fields \"x\" conflict because \"name\" and \"barkVolume\" are different fields. Use different aliases "
     "on the fields to fetch both if this was intentional.",
     "2:21 3:21"},
    {"list and non-list", "{ human { pets { name } } human { pets: name } }", -1, NULL, NULL},
    {"nullable and non-null", "{ catOrDog { ... on Dog { x: nickname } ... on Cat { x: name } } }", 1,
     "Fields \"x\" conflict because they return conflicting types \"String\" and \"String!\". Use different "
     "aliases on the fields to fetch both if this was intentional.",
     "1:27 1:54"},
    VALID("different fields of one shape on two objects",
          "{ catOrDog { ... on Dog { v: barkVolume } ... on Cat { v: meowVolume } } }"),
    {"object and leaf on two objects",
     "{ catOrDog { ... on Dog { x: owner { name } } ... on Cat { x: nickname } } }", 1,
     "Fields \"x\" conflict because they return conflicting types \"Human\" and \"String\". Use different "
     "aliases on the fields to fetch both if this was intentional.",
     "1:27 1:60"},
    {"abstract parent meets both objects",
     "{ pet { ... on Dog { x: name } ... on Cat { x: nickname } x: name } }", 2,
     "Fields \"x\" conflict because \"nickname\" and \"name\" are different fields. Use different aliases on "
     "the fields to fetch both if this was intentional.",
     NULL},

    /* 5.3.3 Leaf Field Selections */
    VALID("scalarSelection",
          "{ dog { ...scalarSelection } }\nfragment scalarSelection on Dog {\n  barkVolume\n}\n"),
    {"scalarSelectionsNotAllowedOnInt",
     "{ dog { ...scalarSelectionsNotAllowedOnInt } }\n"
     "fragment scalarSelectionsNotAllowedOnInt on Dog {\n"
     "  barkVolume {\n    sinceWhen\n  }\n}\n",
     1, "Field \"barkVolume\" must not have a selection since type \"Int\" has no subfields.", "3:14"},
    {"directQueryOnObjectWithoutSubFields", "query directQueryOnObjectWithoutSubFields {\n  human\n}\n", 1,
     "Field \"human\" of type \"Human\" must have a selection of subfields. Did you mean \"human { ... }\"?",
     "2:3"},
    {"directQueryOnInterfaceWithoutSubFields", "query directQueryOnInterfaceWithoutSubFields {\n  pet\n}\n",
     1, "Field \"pet\" of type \"Pet\" must have a selection of subfields. Did you mean \"pet { ... }\"?",
     "2:3"},
    {"directQueryOnUnionWithoutSubFields", "query directQueryOnUnionWithoutSubFields {\n  catOrDog\n}\n", 1,
     "Field \"catOrDog\" of type \"CatOrDog\" must have a selection of subfields. Did you mean \"catOrDog { "
     "... }\"?",
     "2:3"},
    {"selection on a non-null leaf", "{ dog { name { x } } }", 1,
     "Field \"name\" must not have a selection since type \"String!\" has no subfields.", "1:14"},
    {"list of objects without selection", "{ human { pets } }", 1,
     "Field \"pets\" of type \"[Pet!]\" must have a selection of subfields. Did you mean \"pets { ... }\"?",
     "1:11"},

    /* 5.4.1 Argument Names */
    VALID("argOnRequiredArg", "{ dog { ...argOnRequiredArg ...argOnOptional } }\n"
                              "fragment argOnRequiredArg on Dog {\n"
                              "  doesKnowCommand(dogCommand: SIT)\n}\n"
                              "fragment argOnOptional on Dog {\n"
                              "  isHouseTrained(atOtherHomes: true) @include(if: true)\n"
                              "}\n"),
    {"invalidArgName on a field",
     "{ dog { ...invalidArgName } }\n"
     "fragment invalidArgName on Dog {\n"
     "  doesKnowCommand(command: CLEAN_UP_HOUSE)\n}\n",
     2, "Unknown argument \"command\" on field \"Dog.doesKnowCommand\". Did you mean \"dogCommand\"?",
     "3:19"},
    {"invalidArgName on a field: the required one",
     "{ dog { ...invalidArgName } }\n"
     "fragment invalidArgName on Dog {\n"
     "  doesKnowCommand(command: CLEAN_UP_HOUSE)\n}\n",
     2,
     "Field \"doesKnowCommand\" argument \"dogCommand\" of type \"DogCommand!\" is required, but it was not "
     "provided.",
     "3:3"},
    {"invalidArgName on a directive",
     "{ dog { ...invalidArgName } }\n"
     "fragment invalidArgName on Dog {\n"
     "  isHouseTrained(atOtherHomes: true) @include(unless: false)\n"
     "}\n",
     2, "Unknown argument \"unless\" on directive \"@include\".", "3:47"},
    {"unknown argument suggestion", "{ dog { isHouseTrained(atOtherHome: true) } }", 1,
     "Unknown argument \"atOtherHome\" on field \"Dog.isHouseTrained\". Did you mean \"atOtherHomes\"?",
     "1:24"},
    VALID("multipleArgs", "{ arguments { ...multipleArgs ...multipleArgsReverseOrder } }\n"
                          "fragment multipleArgs on Arguments {\n"
                          "  multipleRequirements(x: 1, y: 2)\n}\n"
                          "fragment multipleArgsReverseOrder on Arguments {\n"
                          "  multipleRequirements(y: 2, x: 1)\n}\n"),

    /* 5.4.2 Argument Uniqueness */
    {"duplicate argument", "{ arguments { multipleRequirements(x: 1, x: 2, y: 3) } }", 1,
     "There can be only one argument named \"x\".", "1:36 1:42"},
    {"duplicate directive argument", "{ dog @include(if: true, if: false) { name } }", 1,
     "There can be only one argument named \"if\".", "1:16 1:26"},

    /* 5.4.2.1 Required Arguments */
    VALID("goodBooleanArg", "{ arguments { ...goodBooleanArg ...goodNonNullArg } }\n"
                            "fragment goodBooleanArg on Arguments {\n"
                            "  booleanArgField(booleanArg: true)\n}\n"
                            "fragment goodNonNullArg on Arguments {\n"
                            "  nonNullBooleanArgField(nonNullBooleanArg: true)\n}\n"),
    VALID("goodBooleanArgDefault", "{ arguments { ...goodBooleanArgDefault } }\n"
                                   "fragment goodBooleanArgDefault on Arguments {\n"
                                   "  booleanArgField\n}\n"),
    {"missingRequiredArg",
     "{ arguments { ...missingRequiredArg } }\n"
     "fragment missingRequiredArg on Arguments {\n"
     "  nonNullBooleanArgField\n}\n",
     1,
     "Field \"nonNullBooleanArgField\" argument \"nonNullBooleanArg\" of type \"Boolean!\" is required, but "
     "it was not provided.",
     "3:3"},
    {"missingRequiredArg null",
     "{ arguments { ...missingRequiredArg } }\n"
     "fragment missingRequiredArg on Arguments {\n"
     "  nonNullBooleanArgField(nonNullBooleanArg: null)\n}\n",
     1, "Expected value of type \"Boolean!\", found null.", "3:45"},
    VALID("required argument with a default may be left out",
          "{ arguments { optionalNonNullBooleanArgField } }"),
    {"required directive argument", "{ dog @skip { name } }", 1,
     "Directive \"@skip\" argument \"if\" of type \"Boolean!\" is required, but it was not provided.", "1:7"},

    /* 5.5.1.1 Fragment Name Uniqueness */
    VALID("fragmentOne and fragmentTwo", "{\n  dog {\n    ...fragmentOne\n    ...fragmentTwo\n  }\n"
                                         "}\n\nfragment fragmentOne on Dog {\n  name\n}\n\n"
                                         "fragment fragmentTwo on Dog {\n  owner {\n    name\n  }\n"
                                         "}\n"),
    {"fragmentOne twice",
     "{\n  dog {\n    ...fragmentOne\n  }\n}\n\n"
     "fragment fragmentOne on Dog {\n  name\n}\n\n"
     "fragment fragmentOne on Dog {\n  owner {\n    name\n  }\n"
     "}\n",
     1, "There can be only one fragment named \"fragmentOne\".", "7:1 11:1"},

    /* 5.5.1.2 Fragment Spread Type Existence */
    VALID("correctType", "{ dog { ...correctType ...inlineFragment ...inlineFragment2 } }\n"
                         "fragment correctType on Dog {\n  name\n}\n"
                         "fragment inlineFragment on Dog {\n  ... on Dog {\n"
                         "    name\n  }\n}\nfragment inlineFragment2 on Dog {\n"
                         "  ... @include(if: true) {\n    name\n  }\n}\n"),
    {"notOnExistingType",
     "{ dog { ...notOnExistingType } }\nfragment notOnExistingType on NotInSchema {\n  name\n}\n", 1,
     "Unknown type \"NotInSchema\". Did you mean \"__Schema\"?", "2:1"},
    {"inlineNotExistingType",
     "{ dog { ...inlineNotExistingType } }\n"
     "fragment inlineNotExistingType on Dog {\n"
     "  ... on NotInSchema {\n    name\n  }\n}\n",
     1, "Unknown type \"NotInSchema\". Did you mean \"__Schema\"?", "3:3"},
    {"unknown type suggestion", "{ dog { ... on Dgo { name } } }", 1,
     "Unknown type \"Dgo\". Did you mean \"Dog\"?", "1:9"},

    /* 5.5.1.3 Fragments On Composite Types */
    VALID("fragOnObject", "{ dog { ...fragOnObject ...fragOnInterface ...fragOnUnion } }\n"
                          "fragment fragOnObject on Dog {\n  name\n}\n"
                          "fragment fragOnInterface on Pet {\n  name\n}\n"
                          "fragment fragOnUnion on CatOrDog {\n  ... on Dog {\n"
                          "    name\n  }\n}\n"),
    {"fragOnScalar", "{ dog { ...fragOnScalar } }\nfragment fragOnScalar on Int {\n  something\n}\n", 1,
     "Fragment \"fragOnScalar\" cannot condition on non composite type \"Int\".", "2:1"},
    {"inlineFragOnScalar",
     "{ dog { ...inlineFragOnScalar } }\n"
     "fragment inlineFragOnScalar on Dog {\n  ... on Boolean {\n"
     "    somethingElse\n  }\n}\n",
     1, "Fragment cannot condition on non composite type \"Boolean\".", "3:3"},

    /* 5.5.1.4 Fragments Must Be Used */
    {"nameFragment unused",
     "fragment nameFragment on Dog { # unused\n  name\n}\n\n{\n  dog {\n    name\n  }\n}\n", 1,
     "Fragment \"nameFragment\" is never used.", "1:1"},
    {"fragment used only by an unused fragment",
     "{ dog { name } }\nfragment A on Dog { ...B }\nfragment B on Dog { name }", 2,
     "Fragment \"B\" is never used.", "3:1"},

    /* 5.5.2.1 Fragment spread target defined */
    {"undefinedFragment", "{\n  dog {\n    ...undefinedFragment\n  }\n}\n", 1,
     "Unknown fragment \"undefinedFragment\".", "3:5"},

    /* 5.5.2.2 Fragment spreads must not form cycles */
    {"nameFragment cycle",
     "{\n  dog {\n    ...nameFragment\n  }\n}\n\n"
     "fragment nameFragment on Dog {\n  name\n"
     "  ...barkVolumeFragment\n}\n\n"
     "fragment barkVolumeFragment on Dog {\n  barkVolume\n"
     "  ...nameFragment\n}\n",
     1, "Cannot spread fragment \"nameFragment\" within itself via \"barkVolumeFragment\".", "9:3 14:3"},
    {"dogFragment cycle through data",
     "{\n  dog {\n    ...dogFragment\n  }\n}\n\n"
     "fragment dogFragment on Dog {\n  name\n  owner {\n"
     "    ...ownerFragment\n  }\n}\n\n"
     "fragment ownerFragment on Human {\n  name\n  pets {\n"
     "    ...dogFragment\n  }\n}\n",
     1, "Cannot spread fragment \"dogFragment\" within itself via \"ownerFragment\".", "10:5 17:5"},
    {"self spread", "{ dog { ...F } }\nfragment F on Dog { name ...F }", 1,
     "Cannot spread fragment \"F\" within itself.", "2:26"},
    {"three fragment cycle",
     "{ dog { ...A } }\nfragment A on Dog { ...B }\nfragment B on Dog { ...C }\nfragment C on Dog { ...A }",
     1, "Cannot spread fragment \"A\" within itself via \"B\", \"C\".", "2:21 3:21 4:21"},

    /* 5.5.2.3 Fragment spread is possible */
    VALID("dogFragment inline", "{ dog { ...dogFragment } }\nfragment dogFragment on Dog {\n"
                                "  ... on Dog {\n    barkVolume\n  }\n}\n"),
    {"catInDogFragmentInvalid",
     "{ dog { ...catInDogFragmentInvalid } }\n"
     "fragment catInDogFragmentInvalid on Dog {\n  ... on Cat {\n"
     "    meowVolume\n  }\n}\n",
     1, "Fragment cannot be spread here as objects of type \"Dog\" can never be of type \"Cat\".", "3:3"},
    VALID("interfaceWithinObjectFragment", "{ dog { ...interfaceWithinObjectFragment } }\n"
                                           "fragment petNameFragment on Pet {\n  name\n}\n\n"
                                           "fragment interfaceWithinObjectFragment on Dog {\n"
                                           "  ...petNameFragment\n}\n"),
    VALID("unionWithObjectFragment", "{ dog { ...unionWithObjectFragment } }\n"
                                     "fragment catOrDogNameFragment on CatOrDog {\n"
                                     "  ... on Cat {\n    meowVolume\n  }\n}\n\n"
                                     "fragment unionWithObjectFragment on Dog {\n"
                                     "  ...catOrDogNameFragment\n}\n"),
    VALID("petFragment", "{ dog { ...petFragment ...catOrDogFragment } }\n"
                         "fragment petFragment on Pet {\n  name\n  ... on Dog {\n"
                         "    barkVolume\n  }\n}\n\n"
                         "fragment catOrDogFragment on CatOrDog {\n  ... on Cat {\n"
                         "    meowVolume\n  }\n}\n"),
    {"sentientFragment",
     "{ human { ...sentientFragment } }\n"
     "fragment sentientFragment on Sentient {\n  ... on Dog {\n"
     "    barkVolume\n  }\n}\n",
     1, "Fragment cannot be spread here as objects of type \"Sentient\" can never be of type \"Dog\".",
     "3:3"},
    {"humanOrAlienFragment",
     "{ human { ...humanOrAlienFragment } }\n"
     "fragment humanOrAlienFragment on HumanOrAlien {\n"
     "  ... on Cat {\n    meowVolume\n  }\n}\n",
     1, "Fragment cannot be spread here as objects of type \"HumanOrAlien\" can never be of type \"Cat\".",
     "3:3"},
    VALID("unionWithInterface", "{ dog { ...unionWithInterface } }\n"
                                "fragment unionWithInterface on Pet {\n"
                                "  ...dogOrHumanFragment\n}\n\n"
                                "fragment dogOrHumanFragment on DogOrHuman {\n"
                                "  ... on Dog {\n    barkVolume\n  }\n}\n"),
    {"nonIntersectingInterfaces",
     "{ dog { ...nonIntersectingInterfaces } }\n"
     "fragment nonIntersectingInterfaces on Pet {\n"
     "  ...sentientFragment\n}\n\n"
     "fragment sentientFragment on Sentient {\n  name\n}\n",
     1,
     "Fragment \"sentientFragment\" cannot be spread here as objects of type \"Pet\" can never be of type "
     "\"Sentient\".",
     "3:3"},

    /* 5.6.1 Values of Correct Type */
    VALID("goodBooleanArg value", "{ arguments { ...goodBooleanArg ...coercedIntIntoFloatArg } }\n"
                                  "fragment goodBooleanArg on Arguments {\n"
                                  "  booleanArgField(booleanArg: true)\n}\n"
                                  "fragment coercedIntIntoFloatArg on Arguments {\n"
                                  "  floatArgField(floatArg: 123)\n}\n"),
    VALID("goodComplexDefaultValue",
          "query goodComplexDefaultValue($search: ComplexInput = { name: \"Fido\" }) {\n"
          "  findDog(complex: $search) { name }\n}\n"),
    {"stringIntoInt",
     "{ arguments { ...stringIntoInt } }\n"
     "fragment stringIntoInt on Arguments {\n"
     "  intArgField(intArg: \"123\")\n}\n",
     1, "Int cannot represent non-integer value: \"123\"", "3:23"},
    {"badComplexValue", "query badComplexValue {\n  findDog(complex: { name: 123 }) { name }\n}\n", 1,
     "String cannot represent a non string value: 123 at \"complex.name\"", "2:28"},
    {"Int from 1.5", "{ scalars(nn: 1.5) }", 1, "Int cannot represent non-integer value: 1.5", "1:15"},
    {"Int from 2^31", "{ scalars(nn: 2147483648) }", 1,
     "Int cannot represent non 32-bit signed integer value: 2147483648", "1:15"},
    {"Int below -2^31", "{ scalars(nn: -2147483649) }", 1,
     "Int cannot represent non 32-bit signed integer value: -2147483649", "1:15"},
    {"Int huge", "{ scalars(nn: 99999999999999999999999) }", 1,
     "Int cannot represent non 32-bit signed integer value: 99999999999999999999999", "1:15"},
    VALID("Int bounds", "{ a: scalars(nn: 2147483647) b: scalars(nn: -2147483648) }"),
    {"Int from an object", "{ scalars(nn: {a: 1}) }", 1, "Int cannot represent non-integer value: {a: 1}",
     "1:15"},
    {"Int from a list", "{ scalars(nn: [1, 2]) }", 1, "Int cannot represent non-integer value: [1, 2]",
     "1:15"},
    VALID("Float from Int and Float", "{ a: scalars(nn: 1, f: 1) b: scalars(nn: 1, f: -1.5e3) }"),
    {"Float from a string", "{ scalars(nn: 1, f: \"1.5\") }", 1,
     "Float cannot represent non numeric value: \"1.5\"", "1:21"},
    {"Float out of range", "{ scalars(nn: 1, f: 1e400) }", 1,
     "Float cannot represent non numeric value: 1e400", "1:21"},
    {"String from Int", "{ scalars(nn: 1, s: 1) }", 1, "String cannot represent a non string value: 1",
     "1:21"},
    VALID("String and block string",
          "{ a: scalars(nn: 1, s: \"x\") b: scalars(nn: 1, s: \"\"\"block\"\"\") }"),
    {"String with escapes printed", "{ scalars(nn: 1, b: \"a\\\"b\\n\") }", 1,
     "Boolean cannot represent a non boolean value: \"a\\\"b\\n\"", "1:21"},
    {"Boolean from a string", "{ scalars(nn: 1, b: \"true\") }", 1,
     "Boolean cannot represent a non boolean value: \"true\"", "1:21"},
    VALID("ID from string and Int", "{ a: scalars(nn: 1, id: \"1\") b: scalars(nn: 1, id: 1) }"),
    {"ID from 1.5", "{ scalars(nn: 1, id: 1.5) }", 1,
     "ID cannot represent a non-string and non-integer value: 1.5", "1:22"},
    {"ID from true", "{ scalars(nn: 1, id: true) }", 1,
     "ID cannot represent a non-string and non-integer value: true", "1:22"},
    VALID("enum by name", "{ scalars(nn: 1, cmd: SIT) }"),
    {"enum from a string", "{ scalars(nn: 1, cmd: \"SIT\") }", 1,
     "Enum \"DogCommand\" cannot represent non-enum value: \"SIT\". Did you mean the enum value \"SIT\"?",
     "1:23"},
    {"enum lowercase", "{ scalars(nn: 1, cmd: sit) }", 1,
     "Value \"sit\" does not exist in \"DogCommand\" enum. Did you mean the enum value \"SIT\"?", "1:23"},
    {"enum of another type", "{ scalars(nn: 1, cmd: JUMP) }", 1,
     "Value \"JUMP\" does not exist in \"DogCommand\" enum.", "1:23"},
    VALID("single value for a list", "{ a: scalars(nn: 1, ints: 1) b: scalars(nn: 1, ints: [1, 2]) c: "
                                     "scalars(nn: 1, ints: null) d: scalars(nn: 1, ints: [null]) }"),
    VALID(
        "nested lists",
        "{ a: scalars(nn: 1, list: [[1], [2, 3]]) b: scalars(nn: 1, list: 1) c: scalars(nn: 1, list: [1]) }"),
    {"list item of the wrong type", "{ scalars(nn: 1, ints: [1, \"x\"]) }", 1,
     "Int cannot represent non-integer value: \"x\" at \"ints[1]\"", "1:28"},
    {"null in a list of non-null", "{ scalars(nn: 1, list: [[null]]) }", 1,
     "Expected value of type \"Int!\", found null at \"list[0][0]\".", "1:26"},
    {"list for an input object", "{ scalars(nn: 1, deep: [1]) }", 1,
     "Expected value of type \"DeepInput\", found [1].", "1:24"},
    {"null for a non-null argument", "{ scalars(nn: null) }", 1,
     "Expected value of type \"Int!\", found null.", "1:15"},
    VALID("DateTime, Date, Decimal",
          "{ a: scalars(nn: 1, at: \"2026-01-17T10:30:00Z\", on: \"2024-02-29\", amount: 1) b: scalars(nn: "
          "1, at: \"2026-01-17T11:30:00.5+01:00\", amount: 1.25) c: scalars(nn: 1, amount: \"12.50\") d: "
          "scalars(nn: 1, amount: \"-1e3\") }"),
    {"DateTime without a time", "{ scalars(nn: 1, at: \"2026-01-17\") }", 1,
     "Expected value of type \"DateTime\", found \"2026-01-17\"; DateTime must be an RFC 3339 timestamp such "
     "as \"2026-01-17T10:30:00Z\".",
     "1:22"},
    {"DateTime from Int", "{ scalars(nn: 1, at: 5) }", 1, NULL, "1:22"},
    {"Date not in the calendar", "{ scalars(nn: 1, on: \"2026-02-30\") }", 1,
     "Expected value of type \"Date\", found \"2026-02-30\"; Date must be a calendar date such as "
     "\"2026-01-17\".",
     "1:22"},
    {"Date in an input object", "{ scalars(nn: 1, deep: {name: \"a\", when: \"2027-13-45\"}) }", 1,
     "Expected value of type \"Date\", found \"2027-13-45\" at \"deep.when\"; Date must be a calendar date "
     "such as \"2026-01-17\".",
     "1:42"},
    {"Decimal from a word", "{ scalars(nn: 1, amount: \"abc\") }", 1,
     "Expected value of type \"Decimal\", found \"abc\"; Decimal must be a number or a numeric string such "
     "as \"12.50\".",
     "1:26"},
    {"Decimal from a Boolean", "{ scalars(nn: 1, amount: true) }", 1, NULL, "1:26"},

    /* 5.6.2 Input Object Field Names */
    VALID("known input field", "{\n  findDog(complex: { name: \"Fido\" }) { name }\n}\n"),
    {"favoriteCookieFlavor", "{\n  findDog(complex: { favoriteCookieFlavor: \"Bacon\" }) { name }\n}\n", 1,
     "Field \"favoriteCookieFlavor\" is not defined by type \"ComplexInput\".", "2:22"},
    {"unknown input field suggestion", "{ findDog(complex: { nmae: \"Fido\" }) { name } }", 1,
     "Field \"nmae\" is not defined by type \"ComplexInput\". Did you mean \"name\"?", "1:22"},

    /* 5.6.3 Input Object Field Uniqueness */
    {"field: true, field: false", "{\n  field(arg: { field: true, field: false })\n}\n", 1,
     "There can be only one input field named \"field\".", "2:16 2:29"},

    /* 5.6.4 Input Object Required Fields */
    {"required input field missing", "{ scalars(nn: 1, deep: {}) }", 1,
     "Field \"DeepInput.name\" of required type \"String!\" was not provided.", "1:24"},
    {"required input field null", "{ scalars(nn: 1, deep: {name: null}) }", 1,
     "Expected value of type \"String!\", found null at \"deep.name\".", "1:31"},
    {"required input field missing deeper", "{ scalars(nn: 1, deep: {name: \"a\", inner: {count: 1}}) }", 1,
     "Field \"DeepInput.name\" of required type \"String!\" was not provided at \"deep.inner\".", "1:43"},
    VALID("input field with a default may be left out",
          "{ scalars(nn: 1, deep: {name: \"a\", tags: \"one\"}) }"),

    /* 5.7.1 Directives Are Defined */
    {"unknown directive", "{ dog @nope { name } }", 1, "Unknown directive \"@nope\".", "1:7"},

    /* 5.7.2 Directives Are In Valid Locations */
    {"skip on a query", "query ($foo: Boolean!) @skip(if: $foo) {\n  dog { name }\n}\n", 1,
     "Directive \"@skip\" may not be used on QUERY.", "1:24"},
    {"query directive on a field", "{ dog @onQuery { name } }", 1,
     "Directive \"@onQuery\" may not be used on FIELD.", "1:7"},
    {"skip on a fragment definition", "{ dog { ...F } }\nfragment F on Dog @skip(if: true) { name }", 1,
     "Directive \"@skip\" may not be used on FRAGMENT_DEFINITION.", "2:19"},
    {"field directive on a variable", "query ($v: Boolean @tag) { dog { isHouseTrained(atOtherHomes: $v) } }",
     1, "Directive \"@tag\" may not be used on VARIABLE_DEFINITION.", "1:20"},
    VALID("directives where they belong",
          "query Q($v: Boolean @onVar) @onQuery { dog @include(if: true) { isHouseTrained(atOtherHomes: $v) "
          "...F @skip(if: false) ... @include(if: true) { name } } }\n"
          "fragment F on Dog { name }"),

    /* 5.7.3 Directives Are Unique Per Location */
    {"skip twice",
     "query ($foo: Boolean = true, $bar: Boolean = false) {\n  field @skip(if: $foo) @skip(if: $bar)\n}\n", 1,
     "The directive \"@skip\" can only be used once at this location.", "2:9 2:25"},
    VALID("skip once per location", "query ($foo: Boolean = true, $bar: Boolean = false) {\n"
                                    "  dog @skip(if: $foo) {\n    name\n  }\n"
                                    "  dog @skip(if: $bar) {\n    nickname\n  }\n}\n"),
    VALID("repeatable directive", "{ dog @tag(name: \"a\") @tag(name: \"b\") { name } }"),

    /* 5.8.1 Variable Uniqueness */
    {"houseTrainedQuery",
     "query houseTrainedQuery($atOtherHomes: Boolean, $atOtherHomes: Boolean) {\n"
     "  dog {\n    isHouseTrained(atOtherHomes: $atOtherHomes)\n"
     "  }\n}\n",
     1, "There can be only one variable named \"$atOtherHomes\".", "1:26 1:50"},
    VALID("two operations, one fragment", "query A($atOtherHomes: Boolean) {\n"
                                          "  ...HouseTrainedFragment\n}\n\n"
                                          "query B($atOtherHomes: Boolean) {\n"
                                          "  ...HouseTrainedFragment\n}\n\n"
                                          "fragment HouseTrainedFragment on Query {\n  dog {\n"
                                          "    isHouseTrained(atOtherHomes: $atOtherHomes)\n  }\n}\n"),

    /* 5.8.2 Variables Are Input Types */
    VALID("takesBoolean", "query takesBoolean($atOtherHomes: Boolean) {\n  dog {\n"
                          "    isHouseTrained(atOtherHomes: $atOtherHomes)\n  }\n}\n"),
    VALID("takesComplexInput", "query takesComplexInput($complexInput: ComplexInput) {\n"
                               "  findDog(complex: $complexInput) {\n    name\n  }\n}\n"),
    VALID("TakesListOfBooleanBang", "query TakesListOfBooleanBang($booleans: [Boolean!]) {\n"
                                    "  booleanList(booleanListArg: $booleans)\n}\n"),
    {"takesCat", "query takesCat($cat: Cat) {\n  dog { name }\n}\n", 2,
     "Variable \"$cat\" cannot be non-input type \"Cat\".", "1:22"},
    {"takesDogBang", "query takesDogBang($dog: Dog!) {\n  dog { name }\n}\n", 2,
     "Variable \"$dog\" cannot be non-input type \"Dog!\".", "1:26"},
    {"takesListOfPet", "query takesListOfPet($pets: [Pet]) {\n  dog { name }\n}\n", 2,
     "Variable \"$pets\" cannot be non-input type \"[Pet]\".", "1:29"},
    {"takesCatOrDog", "query takesCatOrDog($catOrDog: CatOrDog) {\n  dog { name }\n}\n", 2,
     "Variable \"$catOrDog\" cannot be non-input type \"CatOrDog\".", "1:32"},
    {"variable of an unknown type", "query ($x: [Nope!]) { dog { name } }", 2, "Unknown type \"Nope\".",
     "1:13"},
    {"bad default value", "query ($x: Int = \"one\") { scalars(nn: $x) }", 1,
     "Int cannot represent non-integer value: \"one\"", "1:18"},

    /* 5.8.3 All Variable Uses Defined */
    VALID("variableIsDefined", "query variableIsDefined($atOtherHomes: Boolean) {\n"
                               "  dog {\n    isHouseTrained(atOtherHomes: $atOtherHomes)\n"
                               "  }\n}\n"),
    {"variableIsNotDefined",
     "query variableIsNotDefined {\n  dog {\n    isHouseTrained(atOtherHomes: $atOtherHomes)\n  }\n}\n", 1,
     "Variable \"$atOtherHomes\" is not defined by operation \"variableIsNotDefined\".", "3:34 1:1"},
    VALID("variableIsDefinedUsedInSingleFragment",
          "query variableIsDefinedUsedInSingleFragment($atOtherHomes: Boolean) {\n"
          "  dog {\n    ...isHouseTrainedFragment\n  }\n}\n\n"
          "fragment isHouseTrainedFragment on Dog {\n"
          "  isHouseTrained(atOtherHomes: $atOtherHomes)\n}\n"),
    {"variableIsNotDefinedUsedInSingleFragment",
     "query variableIsNotDefinedUsedInSingleFragment {\n  dog {\n"
     "    ...isHouseTrainedFragment\n  }\n}\n\n"
     "fragment isHouseTrainedFragment on Dog {\n"
     "  isHouseTrained(atOtherHomes: $atOtherHomes)\n}\n",
     1,
     "Variable \"$atOtherHomes\" is not defined by operation \"variableIsNotDefinedUsedInSingleFragment\".",
     "8:32 1:1"},
    {"variableIsNotDefinedUsedInNestedFragment",
     "query variableIsNotDefinedUsedInNestedFragment {\n  dog {\n"
     "    ...outerHouseTrainedFragment\n  }\n}\n\n"
     "fragment outerHouseTrainedFragment on Dog {\n"
     "  ...isHouseTrainedFragment\n}\n\n"
     "fragment isHouseTrainedFragment on Dog {\n"
     "  isHouseTrained(atOtherHomes: $atOtherHomes)\n}\n",
     1,
     "Variable \"$atOtherHomes\" is not defined by operation \"variableIsNotDefinedUsedInNestedFragment\".",
     "12:32 1:1"},
    VALID("houseTrainedQueryOne and Two", "query houseTrainedQueryOne($atOtherHomes: Boolean) {\n"
                                          "  dog {\n    ...isHouseTrainedFragment\n  }\n}\n\n"
                                          "query houseTrainedQueryTwo($atOtherHomes: Boolean) {\n"
                                          "  dog {\n    ...isHouseTrainedFragment\n  }\n}\n\n"
                                          "fragment isHouseTrainedFragment on Dog {\n"
                                          "  isHouseTrained(atOtherHomes: $atOtherHomes)\n}\n"),
    {"houseTrainedQueryTwoNotDefined",
     "query houseTrainedQueryOne($atOtherHomes: Boolean) {\n"
     "  dog {\n    ...isHouseTrainedFragment\n  }\n}\n\n"
     "query houseTrainedQueryTwoNotDefined {\n  dog {\n"
     "    ...isHouseTrainedFragment\n  }\n}\n\n"
     "fragment isHouseTrainedFragment on Dog {\n"
     "  isHouseTrained(atOtherHomes: $atOtherHomes)\n}\n",
     1, "Variable \"$atOtherHomes\" is not defined by operation \"houseTrainedQueryTwoNotDefined\".",
     "14:32 7:1"},
    {"undefined in a directive", "{ dog @include(if: $x) { name } }", 1, "Variable \"$x\" is not defined.",
     "1:20 1:1"},

    /* 5.8.4 All Variables Used */
    {"variableUnused",
     "query variableUnused($atOtherHomes: Boolean) {\n  dog {\n    isHouseTrained\n  }\n}\n", 1,
     "Variable \"$atOtherHomes\" is never used in operation \"variableUnused\".", "1:22"},
    VALID("variableUsedInFragment", "query variableUsedInFragment($atOtherHomes: Boolean) {\n"
                                    "  dog {\n    ...isHouseTrainedFragment\n  }\n}\n\n"
                                    "fragment isHouseTrainedFragment on Dog {\n"
                                    "  isHouseTrained(atOtherHomes: $atOtherHomes)\n}\n"),
    {"variableNotUsedWithinFragment",
     "query variableNotUsedWithinFragment($atOtherHomes: Boolean) {\n"
     "  dog {\n    ...isHouseTrainedWithoutVariableFragment\n"
     "  }\n}\n\n"
     "fragment isHouseTrainedWithoutVariableFragment on Dog {\n"
     "  isHouseTrained\n}\n",
     1, "Variable \"$atOtherHomes\" is never used in operation \"variableNotUsedWithinFragment\".", "1:37"},
    {"queryWithExtraVar",
     "query queryWithUsedVar($atOtherHomes: Boolean) {\n  dog {\n"
     "    ...isHouseTrainedFragment\n  }\n}\n\n"
     "query queryWithExtraVar($atOtherHomes: Boolean, $extra: Int) {\n"
     "  dog {\n    ...isHouseTrainedFragment\n  }\n}\n\n"
     "fragment isHouseTrainedFragment on Dog {\n"
     "  isHouseTrained(atOtherHomes: $atOtherHomes)\n}\n",
     1, "Variable \"$extra\" is never used in operation \"queryWithExtraVar\".", "7:49"},
    {"anonymous unused", "query ($x: Int) { dog { name } }", 1, "Variable \"$x\" is never used.", "1:8"},

    /* 5.8.5 All Variable Usages are Allowed */
    {"intCannotGoIntoBoolean",
     "query intCannotGoIntoBoolean($intArg: Int) {\n"
     "  arguments {\n    booleanArgField(booleanArg: $intArg)\n"
     "  }\n}\n",
     1, "Variable \"$intArg\" of type \"Int\" used in position expecting type \"Boolean\".", "1:30 3:33"},
    {"booleanListCannotGoIntoBoolean",
     "query booleanListCannotGoIntoBoolean($booleanListArg: [Boolean]) {\n"
     "  arguments {\n"
     "    booleanArgField(booleanArg: $booleanListArg)\n  }\n}\n",
     1, "Variable \"$booleanListArg\" of type \"[Boolean]\" used in position expecting type \"Boolean\".",
     "1:38 3:33"},
    {"booleanArgQuery",
     "query booleanArgQuery($booleanArg: Boolean) {\n"
     "  arguments {\n"
     "    nonNullBooleanArgField(nonNullBooleanArg: $booleanArg)\n"
     "  }\n}\n",
     1, "Variable \"$booleanArg\" of type \"Boolean\" used in position expecting type \"Boolean!\".",
     "1:23 3:47"},
    VALID("nonNullListToList", "query nonNullListToList($nonNullBooleanList: [Boolean]!) {\n"
                               "  arguments {\n"
                               "    booleanListArgField(booleanListArg: $nonNullBooleanList)\n"
                               "  }\n}\n"),
    {"listToNonNullList",
     "query listToNonNullList($booleanList: [Boolean]) {\n"
     "  arguments {\n"
     "    nonNullBooleanListField(nonNullBooleanListArg: $booleanList)\n"
     "  }\n}\n",
     1, "Variable \"$booleanList\" of type \"[Boolean]\" used in position expecting type \"[Boolean]!\".",
     "1:25 3:52"},
    {"[T] into [T!]", "query ($b: [Boolean]) { booleanList(booleanListArg: $b) }", 1,
     "Variable \"$b\" of type \"[Boolean]\" used in position expecting type \"[Boolean!]\".", "1:8 1:53"},
    VALID("booleanArgQueryWithDefault (argument default)",
          "query booleanArgQueryWithDefault($booleanArg: Boolean) {\n"
          "  arguments {\n"
          "    optionalNonNullBooleanArgField(optionalBooleanArg: $booleanArg)\n"
          "  }\n}\n"),
    VALID("booleanArgQueryWithDefault (variable default)",
          "query booleanArgQueryWithDefault($booleanArg: Boolean = true) {\n"
          "  arguments {\n"
          "    nonNullBooleanArgField(nonNullBooleanArg: $booleanArg)\n"
          "  }\n}\n"),
    {"null default does not count",
     "query ($b: Boolean = null) { arguments { nonNullBooleanArgField(nonNullBooleanArg: $b) } }", 1,
     "Variable \"$b\" of type \"Boolean\" used in position expecting type \"Boolean!\".", NULL},
    {"variable as a list item", "query ($b: Boolean) { booleanList(booleanListArg: [$b]) }", 1,
     "Variable \"$b\" of type \"Boolean\" used in position expecting type \"Boolean!\".", "1:8 1:52"},
    {"variable in an input object", "query ($n: Int) { findDog(complex: {name: $n}) { name } }", 1,
     "Variable \"$n\" of type \"Int\" used in position expecting type \"String\".", "1:8 1:43"},
    VALID("non-null variable into nullable",
          "query ($b: Boolean!) { arguments { booleanArgField(booleanArg: $b) } }"),
    {"variable in a fragment, position checked per operation",
     "query A($v: Boolean!) { dog { ...F } }\n"
     "query B($v: Int) { dog { ...F } }\n"
     "fragment F on Dog { isHouseTrained(atOtherHomes: $v) }",
     1, "Variable \"$v\" of type \"Int\" used in position expecting type \"Boolean\".", "2:9 3:50"},
    VALID("skip with a variable", "query ($s: Boolean!) { dog @skip(if: $s) { name } }"),
};

TEST(section5_examples)
{
    for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
        const vcase_t *vc = &vcases[i];
        run_t r;
        int failed_before = test_failed_now;
        test_failed_now = 0;
        bool parsed = run_validate(&r, &schema, vc->doc);
        CHECK(parsed);
        if (parsed) {
            if (vc->nerrors == 0) {
                CHECK(r.valid);
                CHECK_EQ_INT(r.errs.n, 0);
            } else {
                CHECK(!r.valid);
                if (vc->nerrors > 0)
                    CHECK_EQ_INT(r.errs.n, vc->nerrors);
                else
                    CHECK(r.errs.n > 0);
                for (size_t j = 0; j < r.errs.n; j++)
                    CHECK(r.errs.e[j].code && strcmp(r.errs.e[j].code, "GRAPHQL_VALIDATION_FAILED") == 0 &&
                          r.errs.e[j].nlocs > 0);
            }
            const gql_err_t *e = vc->message ? find_error(&r.errs, vc->message)
                                 : r.errs.n  ? &r.errs.e[0]
                                             : NULL;
            if (vc->message)
                CHECK(e != NULL);
            if (e && vc->locs) {
                char got[96];
                locs_text(e, got, sizeof(got));
                CHECK_STRN(got, strlen(got), vc->locs);
            }
        }
        if (test_failed_now) {
            printf("  in case \"%s\": %s\n", vc->name, r.valid ? "valid" : "invalid");
            print_errors(&r.errs);
        }
        test_failed_now |= failed_before;
        arena_destroy(&r.a);
    }
}

/* ---- schemas without some roots, executable definitions, limits ---- */

TEST(missing_roots)
{
    run_t r;
    CHECK(run_validate(&r, &schema_query_only, "subscription { newMessage { body } }"));
    CHECK(!r.valid);
    CHECK(find_error(&r.errs, "Schema is not configured to execute subscription operation.") != NULL);
    arena_destroy(&r.a);
    CHECK(run_validate(&r, &schema_query_only, "mutation M { mutateDog { id } }"));
    CHECK(!r.valid);
    CHECK(find_error(&r.errs, "Schema is not configured to execute mutation operation.") != NULL);
    arena_destroy(&r.a);
}

TEST(executable_definitions_only)
{
    /* 5.1.1's counter-example: the parser refuses type system definitions outright */
    const char *src =
        "query getDogName {\n  dog {\n    name\n    color\n  }\n}\n\nextend type Dog {\n  color: String\n}\n";
    arena_t a;
    arena_init(&a, NULL, 0);
    gql_error_t err;
    CHECK(gql_parse(&a, src, strlen(src), NULL, &err) == NULL);
    arena_destroy(&a);
}

TEST(error_list_is_bounded)
{
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "{");
    for (int i = 0; i < 200; i++)
        buf_printf(&b, " f%d", i);
    buf_append_lit(&b, " }");
    run_t r;
    CHECK(run_validate(&r, &schema, buf_cstr(&b)));
    CHECK(!r.valid);
    CHECK_EQ_INT(r.errs.n, GQL_MAX_ERRORS);
    CHECK(r.errs.truncated);
    arena_destroy(&r.a);
    buf_free(&b);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(merging_is_not_quadratic_in_time)
{
    /* 1000 repeated fields, and 1000 with their subfields */
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "{ dog {");
    for (int i = 0; i < 1000; i++)
        buf_append_lit(&b, " name");
    buf_append_lit(&b, " }");
    for (int i = 0; i < 1000; i++)
        buf_append_lit(&b, " dog { name owner { name } }");
    buf_append_lit(&b, " }");
    run_t r;
    double t0 = now_seconds();
    CHECK(run_validate(&r, &schema, buf_cstr(&b)));
    double dt = now_seconds() - t0;
    CHECK(r.valid);
    CHECK(dt < 0.5);
    if (dt >= 0.5)
        printf("  took %.3f s\n", dt);
    arena_destroy(&r.a);

    /* the same with one conflict at the end */
    b.len -= 2;
    buf_append_lit(&b, " dog { name: nickname } }");
    t0 = now_seconds();
    CHECK(run_validate(&r, &schema, buf_cstr(&b)));
    dt = now_seconds() - t0;
    CHECK(!r.valid);
    CHECK(dt < 0.5);
    arena_destroy(&r.a);
    buf_free(&b);
}

TEST(merging_through_fragments_is_not_exponential)
{
    /* each fragment spreads the next twice: 2^30 fields once expanded */
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "{ dog { ...F0 } }\n");
    for (int i = 0; i < 30; i++)
        buf_printf(&b,
                   "fragment F%d on Dog { name a: owner { pets { ...F%d } } b: owner { pets { ...F%d } } }\n",
                   i, i + 1, i + 1);
    buf_append_lit(&b, "fragment F30 on Dog { name }\n");
    run_t r;
    double t0 = now_seconds();
    CHECK(run_validate(&r, &schema, buf_cstr(&b)));
    double dt = now_seconds() - t0;
    CHECK(r.valid);
    print_errors(&r.errs);
    CHECK(dt < 0.5);
    arena_destroy(&r.a);
    buf_free(&b);
}

TEST(merging_through_deep_fragments_is_bounded)
{
    /* a chain of 300 fragments nests 600 selection sets: refused, not recursed through */
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "{ dog { ...F0 } }\n");
    for (int i = 0; i < 300; i++)
        buf_printf(&b, "fragment F%d on Dog { owner { pets { ...F%d } } }\n", i, i + 1);
    buf_append_lit(&b, "fragment F300 on Dog { name }\n");
    run_t r;
    CHECK(run_validate(&r, &schema, buf_cstr(&b)));
    CHECK(!r.valid);
    CHECK(r.errs.n == 1 && strstr(r.errs.e[0].message, "Validation aborted") != NULL);
    arena_destroy(&r.a);
    /* a long chain of spreads at one level, and a long cycle: no deep recursion either */
    b.len = 0;
    buf_append_lit(&b, "{ dog { ...G0 } }\n");
    for (int i = 0; i < 2000; i++)
        buf_printf(&b, "fragment G%d on Dog { ...G%d }\n", i, i + 1);
    buf_append_lit(&b, "fragment G2000 on Dog { name }\n");
    CHECK(run_validate(&r, &schema, buf_cstr(&b)));
    CHECK(r.valid);
    arena_destroy(&r.a);
    b.len = 0;
    buf_append_lit(&b, "{ dog { ...G0 } }\n");
    for (int i = 0; i < 2000; i++)
        buf_printf(&b, "fragment G%d on Dog { ...G%d }\n", i, (i + 1) % 2000);
    CHECK(run_validate(&r, &schema, buf_cstr(&b)));
    CHECK(!r.valid);
    CHECK_EQ_INT(r.errs.n, 1);
    CHECK(r.errs.n && strncmp(r.errs.e[0].message,
                              "Cannot spread fragment \"G0\" within itself via \"G1\", \"G2\"", 50) == 0);
    arena_destroy(&r.a);
    buf_free(&b);
}

/* ---- lookups ---- */

TEST(lookups)
{
    CHECK(gql_schema_type(&schema, "Dog") == &t_dog);
    CHECK(gql_schema_type(&schema, "Nope") == NULL);
    CHECK(gql_schema_directive(&schema, "skip") == &directives[1]);
    CHECK(gql_schema_directive(&schema, "nope") == NULL);
    CHECK(gql_field_lookup(&schema, &t_dog, "barkVolume") == &dog_fields[2]);
    CHECK(gql_field_lookup(&schema, &t_dog, "meowVolume") == NULL);
    const gql_field_t *tn = gql_field_lookup(&schema, &t_cat_or_dog, "__typename");
    CHECK(tn && tn->type->kind == GK_NON_NULL && tn->type->of == &t_string);
    CHECK(gql_field_lookup(&schema, &t_pet, "__typename") == tn);
    const gql_field_t *sf = gql_field_lookup(&schema, &t_query, "__schema");
    CHECK(sf && gql_named_type(sf->type) == &t__schema);
    const gql_field_t *tf = gql_field_lookup(&schema, &t_query, "__type");
    CHECK(tf && tf->type == &t__type && tf->nargs == 1 &&
          gql_arg_lookup(tf->args, tf->nargs, "name") != NULL);
    CHECK(gql_field_lookup(&schema, &t_dog, "__schema") == NULL);
    CHECK(gql_field_lookup(&schema, &t_string, "__typename") == NULL);
    CHECK(gql_arg_lookup(dog_fields[3].args, dog_fields[3].nargs, "dogCommand") == &dog_fields[3].args[0]);
    CHECK(gql_named_type(human_fields[1].type) == &t_pet);
    CHECK(gql_is_leaf(&t_dog_command) && gql_is_leaf(&t_int) && !gql_is_leaf(&t_dog));
    CHECK(gql_is_composite(&t_cat_or_dog) && gql_is_composite(&t_pet) && !gql_is_composite(&t_complex_input));
    CHECK(gql_is_input_type(&t_complex_input) && gql_is_input_type(LIST(NN(&t_int))) &&
          !gql_is_input_type(&t_dog));
    CHECK(gql_is_possible(&t_pet, &t_dog) && gql_is_possible(&t_dog, &t_dog) &&
          !gql_is_possible(&t_pet, &t_human));
}

TEST(type_from_ref_and_print)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    gql_error_t err;
    const char *src = "query ($a: [Int!]!, $b: Nope, $c: [[DogCommand]]) { dog { name } }";
    gql_doc_t *doc = gql_parse(&a, src, strlen(src), NULL, &err);
    CHECK(doc != NULL);
    if (doc) {
        const gql_type_t *t = gql_type_from_ref(&schema, &a, doc->defs[0].vars[0].type);
        buf_t b = BUF_INIT;
        gql_type_print(&b, t);
        CHECK_STRN(b.data, b.len, "[Int!]!");
        CHECK(gql_named_type(t) == &t_int);
        CHECK(gql_type_from_ref(&schema, &a, doc->defs[0].vars[1].type) == NULL);
        b.len = 0;
        gql_type_print(&b, gql_type_from_ref(&schema, &a, doc->defs[0].vars[2].type));
        CHECK_STRN(b.data, b.len, "[[DogCommand]]");
        buf_free(&b);
    }
    arena_destroy(&a);
}

TEST(errors_write)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    gql_errors_t errs = {.arena = &a};
    gql_loc_t locs[5] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}};
    gql_err_t *e = gql_errors_add(&errs, locs, 2, "Bad \"%s\" %d", "x", 7);
    CHECK(e != NULL);
    gql_path_t p0 = {"companies", 0, NULL}, p1 = {NULL, 3, &p0}, p2 = {"name", 0, &p1};
    e->path = &p2;
    e->code = "BAD_USER_INPUT";
    e->field = "name";
    e = gql_errors_add(&errs, locs, 5, "%s", "second");
    CHECK(e && e->nlocs == GQL_ERR_LOCS);
    gql_errors_add(&errs, NULL, 0, "third");
    buf_t b = BUF_INIT;
    gql_errors_write(&b, &errs);
    CHECK_STRN(b.data, b.len,
               "[{\"message\":\"Bad \\\"x\\\" "
               "7\",\"locations\":[{\"line\":1,\"column\":2},{\"line\":3,\"column\":4}],\"path\":["
               "\"companies\",3,\"name\"],\"extensions\":{\"code\":\"BAD_USER_INPUT\",\"field\":\"name\"}},{"
               "\"message\":\"second\",\"locations\":[{\"line\":1,\"column\":2},{\"line\":3,\"column\":4},{"
               "\"line\":5,\"column\":6},{\"line\":7,\"column\":8}]},{\"message\":\"third\"}]");
    /* a full list refuses more and says so */
    for (int i = 0; i < 100; i++)
        gql_errors_add(&errs, NULL, 0, "more %d", i);
    CHECK_EQ_INT(errs.n, GQL_MAX_ERRORS);
    CHECK(errs.truncated);
    CHECK(gql_errors_add(&errs, NULL, 0, "x") == NULL);
    /* a long message is copied whole */
    char big[1000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    errs.n = 0;
    e = gql_errors_add(&errs, NULL, 0, "%s!", big);
    CHECK(e && strlen(e->message) == 1000 && e->message[999] == '!');
    b.len = 0;
    gql_errors_t none = {.arena = &a};
    gql_errors_write(&b, &none);
    CHECK_STRN(b.data, b.len, "[]");
    buf_free(&b);
    arena_destroy(&a);
}

TEST(select_operation)
{
    run_t r;
    CHECK(run_validate(&r, &schema, "query A { dog { name } } query B { dog { nickname } }"));
    CHECK(r.valid);
    const gql_def_t *op = gql_select_operation(r.doc, "B", &r.errs);
    CHECK(op && strcmp(op->name, "B") == 0);
    CHECK(gql_select_operation(r.doc, NULL, &r.errs) == NULL);
    CHECK(find_error(&r.errs, "Must provide operation name if query contains multiple operations.") != NULL);
    CHECK(gql_select_operation(r.doc, "C", &r.errs) == NULL);
    CHECK(find_error(&r.errs, "Unknown operation named \"C\".") != NULL);
    arena_destroy(&r.a);
    CHECK(run_validate(&r, &schema, "{ dog { name } } fragment F on Dog { name }"));
    op = gql_select_operation(r.doc, NULL, &r.errs);
    CHECK(op && op->kind == GD_QUERY && op->name == NULL);
    arena_destroy(&r.a);
}

/* ---- coercion (6.1.2, and section 3's input coercion) ---- */

typedef struct ccase {
    const char *vartype; /* "Int", "[Int]", "DeepInput!", ... */
    const char *json;    /* the variables object, or NULL for none */
    const char *message; /* NULL: coerces; else the error's message */
    const char *shape;   /* what it coerces to, printed (see shape()) */
} ccase_t;

static void shape(buf_t *b, const gql_value_t *v)
{
    if (!v) {
        buf_append_lit(b, "absent");
        return;
    }
    switch (v->kind) {
    case GV_INT:
        buf_printf(b, "I%s", v->s);
        break;
    case GV_FLOAT:
        buf_printf(b, "F%s", v->s);
        break;
    case GV_STRING:
        buf_printf(b, "\"%.*s\"", (int)v->n, v->s);
        break;
    case GV_BOOL:
        buf_printf(b, "%s", v->b ? "true" : "false");
        break;
    case GV_NULL:
        buf_append_lit(b, "null");
        break;
    case GV_ENUM:
        buf_printf(b, "E%s", v->s);
        break;
    case GV_VARIABLE:
        buf_printf(b, "$%s", v->s);
        break;
    case GV_LIST:
        buf_putc(b, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_putc(b, ',');
            shape(b, v->items[i]);
        }
        buf_putc(b, ']');
        break;
    case GV_OBJECT:
        buf_putc(b, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_putc(b, ',');
            buf_printf(b, "%s:", v->fields[i].name);
            shape(b, v->fields[i].value);
        }
        buf_putc(b, '}');
        break;
    }
}

static const ccase_t ccases[] = {
    {"Int", "{\"v\": 1}", NULL, "I1"},
    {"Int", "{\"v\": 1.5}",
     "Variable \"$v\" got invalid value 1.5; Int cannot represent non-integer value: 1.5", NULL},
    {"Int", "{\"v\": \"1\"}",
     "Variable \"$v\" got invalid value \"1\"; Int cannot represent non-integer value: \"1\"", NULL},
    {"Int", "{\"v\": 2147483648}",
     "Variable \"$v\" got invalid value 2147483648; Int cannot represent non 32-bit signed integer value: "
     "2147483648",
     NULL},
    {"Int", "{\"v\": -2147483648}", NULL, "I-2147483648"},
    {"Int", "{\"v\": 1e3}", NULL, "I1000"},
    {"Int", "{\"v\": [1]}",
     "Variable \"$v\" got invalid value [1]; Int cannot represent non-integer value: [1]", NULL},
    {"Int", "{}", NULL, "absent"},
    {"Int", NULL, NULL, "absent"},
    {"Int", "{\"v\": null}", NULL, "null"},
    {"Float", "{\"v\": 1}", NULL, "I1"},
    {"Float", "{\"v\": -2.5e3}", NULL, "F-2.5e3"},
    {"Float", "{\"v\": true}",
     "Variable \"$v\" got invalid value true; Float cannot represent non numeric value: true", NULL},
    {"String", "{\"v\": \"x\\u00e9y\"}", NULL, "\"x\xc3\xa9y\""},
    {"String", "{\"v\": 5}",
     "Variable \"$v\" got invalid value 5; String cannot represent a non string value: 5", NULL},
    {"Boolean", "{\"v\": false}", NULL, "false"},
    {"Boolean", "{\"v\": \"yes\"}",
     "Variable \"$v\" got invalid value \"yes\"; Boolean cannot represent a non boolean value: \"yes\"",
     NULL},
    {"ID", "{\"v\": \"1\"}", NULL, "\"1\""},
    {"ID", "{\"v\": 1}", NULL, "I1"},
    {"ID", "{\"v\": 1.5}", "Variable \"$v\" got invalid value 1.5; ID cannot represent value: 1.5", NULL},
    {"ID", "{\"v\": true}", "Variable \"$v\" got invalid value true; ID cannot represent value: true", NULL},
    {"ID", "{\"v\": {\"a\": 1}}",
     "Variable \"$v\" got invalid value {\"a\":1}; ID cannot represent value: {\"a\":1}", NULL},
    {"DogCommand", "{\"v\": \"SIT\"}", NULL, "ESIT"},
    {"DogCommand", "{\"v\": \"sit\"}",
     "Variable \"$v\" got invalid value \"sit\"; Value \"sit\" does not exist in \"DogCommand\" enum.", NULL},
    {"DogCommand", "{\"v\": 1}",
     "Variable \"$v\" got invalid value 1; Enum \"DogCommand\" cannot represent non-string value: 1.", NULL},
    {"[Int]", "{\"v\": 1}", NULL, "[I1]"},
    {"[Int]", "{\"v\": [1, null, 3]}", NULL, "[I1,null,I3]"},
    {"[Int]", "{\"v\": [1, \"x\"]}",
     "Variable \"$v\" got invalid value \"x\" at \"v[1]\"; Int cannot represent non-integer value: \"x\"",
     NULL},
    {"[Int!]", "{\"v\": [1, null]}",
     "Variable \"$v\" got invalid value null at \"v[1]\"; Expected non-nullable type \"Int!\" not to be "
     "null.",
     NULL},
    {"[[Int]]", "{\"v\": 7}", NULL, "[[I7]]"},
    {"DeepInput", "{\"v\": {\"name\": \"x\"}}", NULL, "{name:\"x\",count:I3}"},
    {"DeepInput",
     "{\"v\": {\"name\": \"x\", \"count\": null, \"tags\": \"t\", \"inner\": {\"name\": \"y\"}}}", NULL,
     "{name:\"x\",count:null,inner:{name:\"y\",count:I3},tags:[\"t\"]}"},
    {"DeepInput", "{\"v\": {\"name\": \"x\", \"nope\": 1}}",
     "Variable \"$v\" got invalid value {\"name\":\"x\",\"nope\":1}; Field \"nope\" is not defined by type "
     "\"DeepInput\".",
     NULL},
    {"DeepInput", "{\"v\": {}}",
     "Variable \"$v\" got invalid value {}; Field \"name\" of required type \"String!\" was not provided.",
     NULL},
    {"DeepInput", "{\"v\": {\"name\": null}}",
     "Variable \"$v\" got invalid value null at \"v.name\"; Expected non-nullable type \"String!\" not to be "
     "null.",
     NULL},
    {"DeepInput", "{\"v\": {\"name\": \"x\", \"inner\": {\"name\": 5}}}",
     "Variable \"$v\" got invalid value 5 at \"v.inner.name\"; String cannot represent a non string value: 5",
     NULL},
    {"DeepInput", "{\"v\": \"x\"}",
     "Variable \"$v\" got invalid value \"x\"; Expected type \"DeepInput\" to be an object.", NULL},
    {"Int!", "{}", "Variable \"$v\" of required type \"Int!\" was not provided.", NULL},
    {"Int!", NULL, "Variable \"$v\" of required type \"Int!\" was not provided.", NULL},
    {"Int!", "{\"v\": null}", "Variable \"$v\" of non-null type \"Int!\" must not be null.", NULL},
    {"Int! = 5", "{}", NULL, "I5"},
    {"Boolean = true", "{}", NULL, "true"},
    {"Boolean = true", "{\"v\": null}", NULL, "null"},
    {"[Int] = 4", "{}", NULL, "[I4]"},
    {"DeepInput = {name: \"d\"}", "{}", NULL, "{name:\"d\",count:I3}"},
    {"Date", "{\"v\": \"2026-02-28\"}", NULL, "\"2026-02-28\""},
    {"Date", "{\"v\": \"2026-02-30\"}",
     "Variable \"$v\" got invalid value \"2026-02-30\"; Expected type \"Date\". Date must be a calendar date "
     "such as \"2026-01-17\".",
     NULL},
    {"DateTime", "{\"v\": \"2026-01-17T10:30:00Z\"}", NULL, "\"2026-01-17T10:30:00Z\""},
    {"DateTime", "{\"v\": \"2026-01-17\"}",
     "Variable \"$v\" got invalid value \"2026-01-17\"; Expected type \"DateTime\". DateTime must be an RFC "
     "3339 timestamp such as \"2026-01-17T10:30:00Z\".",
     NULL},
    {"Decimal", "{\"v\": 12.5}", NULL, "F12.5"},
    {"Decimal", "{\"v\": \"12.50\"}", NULL, "\"12.50\""},
    {"Decimal", "{\"v\": \"abc\"}",
     "Variable \"$v\" got invalid value \"abc\"; Expected type \"Decimal\". Decimal must be a number or a "
     "numeric string such as \"12.50\".",
     NULL},
    {"Decimal", "{\"v\": true}",
     "Variable \"$v\" got invalid value true; Expected type \"Decimal\". Decimal must be a number or a "
     "numeric string such as \"12.50\".",
     NULL},
};

TEST(coerce_variables)
{
    for (size_t i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++) {
        const ccase_t *cc = &ccases[i];
        arena_t a;
        arena_init(&a, NULL, 0);
        gql_errors_t errs = {.arena = &a};
        char src[256];
        snprintf(src, sizeof(src), "query ($v: %s) { __typename }", cc->vartype);
        gql_error_t perr;
        gql_doc_t *doc = gql_parse(&a, src, strlen(src), NULL, &perr);
        json_value_t *vars = NULL;
        if (cc->json) {
            json_error_t jerr;
            vars = json_parse(&a, cc->json, strlen(cc->json), &jerr);
            CHECK(vars != NULL);
        }
        int failed_before = test_failed_now;
        test_failed_now = 0;
        CHECK(doc != NULL);
        if (doc) {
            gql_vars_t out;
            bool ok = gql_coerce_variables(&schema, &doc->defs[0], vars, &a, &out, &errs);
            CHECK(ok == (cc->message == NULL));
            CHECK_EQ_INT(out.n, 1);
            if (cc->message) {
                CHECK_EQ_INT(errs.n, 1);
                if (errs.n) {
                    CHECK_STRN(errs.e[0].message, strlen(errs.e[0].message), cc->message);
                    CHECK(errs.e[0].code && strcmp(errs.e[0].code, "BAD_USER_INPUT") == 0);
                    CHECK(errs.e[0].nlocs == 1 && errs.e[0].locs[0].line == 1 && errs.e[0].locs[0].col == 8);
                }
            } else {
                CHECK_EQ_INT(errs.n, 0);
                buf_t b = BUF_INIT;
                shape(&b, out.values[0]);
                CHECK_STRN(b.data, b.len, cc->shape);
                buf_free(&b);
            }
        }
        if (test_failed_now) {
            printf("  in case %s %s\n", cc->vartype, cc->json ? cc->json : "(none)");
            print_errors(&errs);
        }
        test_failed_now |= failed_before;
        arena_destroy(&a);
    }
}

TEST(several_variables_report_each)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    gql_errors_t errs = {.arena = &a};
    const char *src = "query ($a: Int!, $b: String, $c: ID) { __typename }";
    const char *json = "{\"b\": 1, \"c\": \"7\"}";
    gql_error_t perr;
    json_error_t jerr;
    gql_doc_t *doc = gql_parse(&a, src, strlen(src), NULL, &perr);
    json_value_t *vars = json_parse(&a, json, strlen(json), &jerr);
    gql_vars_t out;
    CHECK(doc && vars);
    CHECK(!gql_coerce_variables(&schema, &doc->defs[0], vars, &a, &out, &errs));
    CHECK_EQ_INT(errs.n, 2);
    CHECK(find_error(&errs, "Variable \"$a\" of required type \"Int!\" was not provided.") != NULL);
    CHECK(out.values[2] && out.values[2]->kind == GV_STRING);
    arena_destroy(&a);
}

/* ---- argument values (6.4.1) and directives ---- */

typedef struct acase {
    const char *doc;  /* an operation whose first field's argument is read */
    const char *json; /* its variables */
    const char *arg;  /* the argument's name */
    const char *shape;
} acase_t;

static const acase_t acases[] = {
    {"{ scalars(nn: 1, i: 7) }", NULL, "i", "I7"},
    {"query ($x: Int) { scalars(nn: 1, i: $x) }", "{\"x\": 9}", "i", "I9"},
    {"query ($x: Int) { scalars(nn: 1, i: $x) }", "{}", "i", "absent"},
    {"query ($x: Int) { scalars(nn: 1, i: $x) }", "{\"x\": null}", "i", "absent"},
    {"query ($x: Int = 3) { scalars(nn: 1, i: $x) }", "{}", "i", "I3"},
    {"{ scalars(nn: 1) }", NULL, "i", "absent"},
    {"{ scalars(nn: 1, i: null) }", NULL, "i", "absent"},
    {"{ scalars(nn: 1, ints: 5) }", NULL, "ints", "[I5]"},
    {"query ($x: Int) { scalars(nn: 1, ints: [1, $x]) }", "{}", "ints", "[I1,null]"},
    {"query ($n: String!) { scalars(nn: 1, deep: {name: $n, tags: \"t\"}) }", "{\"n\": \"x\"}", "deep",
     "{name:\"x\",count:I3,tags:[\"t\"]}"},
    {"query ($c: Int) { scalars(nn: 1, deep: {name: \"x\", count: $c}) }", "{}", "deep",
     "{name:\"x\",count:I3}"},
    {"query ($c: Int) { scalars(nn: 1, deep: {name: \"x\", count: $c}) }", "{\"c\": null}", "deep",
     "{name:\"x\",count:null}"},
    {"{ scalars(nn: 1, cmd: HEEL) }", NULL, "cmd", "EHEEL"},
    {"{ arguments { optionalNonNullBooleanArgField } }", NULL, "optionalBooleanArg", "false"},
    {"query ($b: Boolean) { arguments { optionalNonNullBooleanArgField(optionalBooleanArg: $b) } }", "{}",
     "optionalBooleanArg", "false"},
    {"query ($b: Boolean) { arguments { optionalNonNullBooleanArgField(optionalBooleanArg: $b) } }",
     "{\"b\": true}", "optionalBooleanArg", "true"},
};

/* The first field of the operation, one level down when the root field has a selection. */
static const gql_selection_t *first_leaf(const gql_def_t *op, const gql_type_t **parent)
{
    const gql_selection_t *s = &op->sel.items[0];
    *parent = &t_query;
    if (s->sel.n) {
        *parent = gql_named_type(gql_field_lookup(&schema, &t_query, s->name)->type);
        s = &s->sel.items[0];
    }
    return s;
}

TEST(arg_values)
{
    for (size_t i = 0; i < sizeof(acases) / sizeof(acases[0]); i++) {
        const acase_t *ac = &acases[i];
        run_t r;
        int failed_before = test_failed_now;
        test_failed_now = 0;
        CHECK(run_validate(&r, &schema, ac->doc));
        CHECK(r.valid);
        json_value_t *vars = ac->json ? json_parse(&r.a, ac->json, strlen(ac->json), NULL) : NULL;
        gql_vars_t v;
        CHECK(gql_coerce_variables(&schema, &r.doc->defs[0], vars, &r.a, &v, &r.errs));
        const gql_type_t *parent;
        const gql_selection_t *s = first_leaf(&r.doc->defs[0], &parent);
        const gql_field_t *f = gql_field_lookup(&schema, parent, s->name);
        const gql_input_t *decl = gql_arg_lookup(f->args, f->nargs, ac->arg);
        CHECK(decl != NULL);
        buf_t b = BUF_INIT;
        shape(&b, gql_arg_value(&schema, &r.a, decl, s->args, s->nargs, &v));
        CHECK_STRN(b.data, b.len, ac->shape);
        buf_free(&b);
        if (test_failed_now) {
            printf("  in case %s %s\n", ac->doc, ac->json ? ac->json : "");
            print_errors(&r.errs);
        }
        test_failed_now |= failed_before;
        arena_destroy(&r.a);
    }
}

TEST(directives_include)
{
    static const struct {
        const char *doc;
        const char *json;
        bool include;
    } cases[] = {
        {"{ dog @skip(if: true) { name } }", NULL, false},
        {"{ dog @skip(if: false) { name } }", NULL, true},
        {"{ dog @include(if: true) { name } }", NULL, true},
        {"{ dog @include(if: false) { name } }", NULL, false},
        {"{ dog @include(if: true) @skip(if: true) { name } }", NULL, false},
        {"{ dog @include(if: false) @skip(if: false) { name } }", NULL, false},
        {"{ dog @tag(name: \"x\") { name } }", NULL, true},
        {"{ dog { name } }", NULL, true},
        {"query ($s: Boolean!) { dog @skip(if: $s) { name } }", "{\"s\": true}", false},
        {"query ($s: Boolean!) { dog @skip(if: $s) { name } }", "{\"s\": false}", true},
        {"query ($i: Boolean = false) { dog @include(if: $i) { name } }", "{}", false},
        {"query ($i: Boolean = false) { dog @include(if: $i) { name } }", "{\"i\": true}", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_t r;
        CHECK(run_validate(&r, &schema, cases[i].doc));
        CHECK(r.valid);
        json_value_t *vars =
            cases[i].json ? json_parse(&r.a, cases[i].json, strlen(cases[i].json), NULL) : NULL;
        gql_vars_t v;
        CHECK(gql_coerce_variables(&schema, &r.doc->defs[0], vars, &r.a, &v, &r.errs));
        const gql_selection_t *s = &r.doc->defs[0].sel.items[0];
        bool got = gql_directives_include(s->dirs, s->ndirs, &v);
        CHECK(got == cases[i].include);
        if (got != cases[i].include)
            printf("  in case %s\n", cases[i].doc);
        arena_destroy(&r.a);
    }
}

TEST_MAIN()
