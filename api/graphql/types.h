/*
 * The GraphQL type system as data (GraphQL spec section 3 and the introspection types of
 * section 4), the error list every stage fills, and the stages that only read the schema:
 * validation of a parsed document (section 5, api/graphql/validate.c) and coercion of variable
 * values (section 6.1.2). The CRM schema itself is built from the resource table by
 * api/graphql/schema.c; validation and coercion work over any schema built of these structs.
 */
#ifndef CRMD_API_GRAPHQL_TYPES_H
#define CRMD_API_GRAPHQL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/graphql/ast.h"
#include "core/buf.h"
#include "core/json_read.h"

/* __TypeKind */
enum gql_kind {
    GK_SCALAR = 0,
    GK_OBJECT,
    GK_INTERFACE,
    GK_UNION,
    GK_ENUM,
    GK_INPUT_OBJECT,
    GK_LIST,
    GK_NON_NULL
};

/* Which scalar a GK_SCALAR type is: how input is coerced and output serialised. */
enum gql_scalar {
    GSC_INT = 0, /* 32-bit signed integer */
    GSC_FLOAT,   /* double; an Int literal is accepted */
    GSC_STRING,
    GSC_BOOLEAN,
    GSC_ID,       /* serialised as a string; input: a string or an Int literal */
    GSC_DATETIME, /* RFC 3339 timestamp string */
    GSC_DATE,     /* YYYY-MM-DD string */
    GSC_DECIMAL,  /* money: serialised as a JSON number, input Float, Int or numeric string */
};

typedef struct gql_type gql_type_t;

/* An argument, an input object's field, or a directive's argument. */
typedef struct gql_input {
    const char *name;
    const char *description;
    const gql_type_t *type;
    const char *default_value; /* the default as GraphQL literal text ("50", "\"x\"", "TRUE"), or NULL */
} gql_input_t;

/* A field of an object or interface type. resolve and data belong to the executor. */
typedef struct gql_field {
    const char *name;
    const char *description;
    const gql_type_t *type;
    const gql_input_t *args;
    size_t nargs;
    const char *deprecation_reason; /* NULL: not deprecated */
    uint16_t resolve;               /* how api/graphql/exec.c resolves it */
    const void *data;               /* and with what (a column, a resource, ...) */
} gql_field_t;

typedef struct gql_enum_value {
    const char *name;
    const char *description;
    const char *deprecation_reason;
    const char *sql; /* the value as stored ("open"), or NULL when the name is the value */
} gql_enum_value_t;

struct gql_type {
    uint8_t kind;     /* enum gql_kind */
    uint8_t scalar;   /* GK_SCALAR: enum gql_scalar */
    const char *name; /* NULL for GK_LIST and GK_NON_NULL */
    const char *description;
    const gql_field_t *fields; /* GK_OBJECT, GK_INTERFACE */
    size_t nfields;
    const gql_input_t *inputs; /* GK_INPUT_OBJECT */
    size_t ninputs;
    const gql_enum_value_t *enums; /* GK_ENUM */
    size_t nenums;
    const gql_type_t *const *interfaces; /* GK_OBJECT: interfaces it implements */
    size_t ninterfaces;
    const gql_type_t *const *possible; /* GK_INTERFACE, GK_UNION: the object types */
    size_t npossible;
    const gql_type_t *of; /* GK_LIST, GK_NON_NULL */
    const void *data;     /* the executor's (a resource for a CRM object type) */
};

/* __DirectiveLocation names a directive may be used at ("FIELD", "QUERY", ...). */
typedef struct gql_directive_def {
    const char *name;
    const char *description;
    const char *const *locations;
    size_t nlocations;
    const gql_input_t *args;
    size_t nargs;
    bool repeatable;
} gql_directive_def_t;

typedef struct gql_schema {
    const char *description;
    const gql_type_t *query;
    const gql_type_t *mutation;     /* or NULL */
    const gql_type_t *subscription; /* or NULL */
    const gql_type_t *const *types; /* every named type, introspection types and scalars included */
    size_t ntypes;
    const gql_directive_def_t *directives; /* @include, @skip, @deprecated, @specifiedBy, ... */
    size_t ndirectives;
} gql_schema_t;

/* ---- lookups ---- */

/* The named type called name, or NULL. */
const gql_type_t *gql_schema_type(const gql_schema_t *s, const char *name);
/* The directive called name, or NULL. */
const gql_directive_def_t *gql_schema_directive(const gql_schema_t *s, const char *name);
/*
 * The field name of composite type parent, including the meta-fields: __typename on every
 * object, interface and union, and __schema and __type(name: String!) on the query root type.
 * NULL when there is none.
 */
const gql_field_t *gql_field_lookup(const gql_schema_t *s, const gql_type_t *parent, const char *name);
/* The argument name of f, or NULL. */
const gql_input_t *gql_arg_lookup(const gql_input_t *args, size_t nargs, const char *name);
/* t without its list and non-null wrappers. */
const gql_type_t *gql_named_type(const gql_type_t *t);
/* True for scalars and enums (a field of such a type must have no selection set). */
bool gql_is_leaf(const gql_type_t *t);
/* True for objects, interfaces and unions. */
bool gql_is_composite(const gql_type_t *t);
/* True for types allowed as inputs (scalars, enums, input objects and wrappers of them). */
bool gql_is_input_type(const gql_type_t *t);
/* True when object type obj is t, or a possible type of abstract type t. */
bool gql_is_possible(const gql_type_t *t, const gql_type_t *obj);
/* The type the AST type reference names, wrappers allocated in arena a; NULL when its named
 * type is unknown. */
const gql_type_t *gql_type_from_ref(const gql_schema_t *s, arena_t *a, const gql_typeref_t *ref);
/* True when s[0..n) is a JSON number: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? (a Decimal given as a
 * string, a number variable). */
bool gql_numeric_text(const char *s, size_t n);
/* Writes t as GraphQL prints it ("[Int!]!") into b. */
void gql_type_print(buf_t *b, const gql_type_t *t);

/* ---- errors ---- */

#define GQL_ERR_LOCS   4
#define GQL_MAX_ERRORS 50

/* One entry of a response's "errors". path segments: a field's response key, or (key NULL) a
 * list index. */
typedef struct gql_path {
    const char *key;
    int64_t index;
    const struct gql_path *parent;
} gql_path_t;

typedef struct gql_err {
    const char *message; /* for the client */
    gql_loc_t locs[GQL_ERR_LOCS];
    uint8_t nlocs;
    const gql_path_t *path; /* NULL: none (request errors) */
    const char *code;       /* extensions.code, or NULL ("GRAPHQL_VALIDATION_FAILED", ...) */
    const char *field;      /* extensions.field: the input member a validation error names, or NULL */
} gql_err_t;

typedef struct gql_errors {
    arena_t *arena;
    gql_err_t e[GQL_MAX_ERRORS];
    size_t n;
    bool truncated; /* more errors than GQL_MAX_ERRORS were found */
} gql_errors_t;

/* Adds an error with a printf-formatted message (copied into errs->arena) and up to
 * GQL_ERR_LOCS locations (nlocs may be 0); returns it so the caller may set path, code, field
 * (NULL when the list is full). */
gql_err_t *gql_errors_add(gql_errors_t *errs, const gql_loc_t *locs, size_t nlocs, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "errors":[...] members' array (the value only: "[{...},...]") as the GraphQL spec's
 * response format (message, locations, path, extensions). */
void gql_errors_write(buf_t *b, const gql_errors_t *errs);

/* ---- validation (section 5) ---- */

/*
 * Applies every validation rule of the spec to doc against s, adding one error per violation
 * (with the locations of the nodes involved and code "GRAPHQL_VALIDATION_FAILED"). Returns true
 * when the document is valid.
 */
bool gql_validate(const gql_schema_t *s, const gql_doc_t *doc, gql_errors_t *errs);

/*
 * The operation to run: the one named operation_name (NULL: the document's only operation).
 * NULL with an error added when there is no such operation, or none was named and the document
 * has several.
 */
const gql_def_t *gql_select_operation(const gql_doc_t *doc, const char *operation_name, gql_errors_t *errs);

/* ---- variables and arguments (sections 6.1.2 and 6.4.1) ---- */

/* The coerced value of each variable of an operation, as literals. */
typedef struct gql_vars {
    const gql_vardef_t *defs;
    gql_value_t **values; /* values[i] for defs[i]; NULL when neither given nor defaulted */
    size_t n;
} gql_vars_t;

/*
 * Coerces the JSON object vars (NULL: none given) for op's variable definitions: each value is
 * checked against its declared type (input objects field by field, lists item by item, a single
 * value where a list is expected becomes a one-item list, Int within 32 bits, ID from a string
 * or an integer, enums by name) and turned into a gql_value_t literal of that shape; defaults
 * are used for absent variables; a missing non-null variable or a null for a non-null type is an
 * error. Adds errors (code "BAD_USER_INPUT", message naming the variable, e.g. "Variable
 * \"$id\" got invalid value \"x\"; ID cannot represent value: \"x\".") and returns false on any.
 */
bool gql_coerce_variables(const gql_schema_t *s, const gql_def_t *op, const json_value_t *vars, arena_t *a,
                          gql_vars_t *out, gql_errors_t *errs);

/*
 * The value of argument name given to a field or directive (args[0..nargs) as written), with
 * variables replaced by their coerced values and the declared default used when absent; NULL
 * when absent without a default or null. Call only on a validated document.
 */
const gql_value_t *gql_arg_value(const gql_schema_t *s, arena_t *a, const gql_input_t *decl,
                                 const gql_arg_t *args, size_t nargs, const gql_vars_t *vars);

/* Whether @skip/@include let a selection with directives dirs run under vars. */
bool gql_directives_include(const gql_directive_t *dirs, size_t ndirs, const gql_vars_t *vars);

#endif
