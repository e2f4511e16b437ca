/*
 * The syntax tree of an executable GraphQL document (GraphQL spec, October 2021, section 2) and
 * the parser that builds it (api/graphql/parse.c). Every node lives in the request's arena;
 * names and string values are NUL-terminated copies (string values decoded: escapes resolved,
 * block strings dedented), so nothing points into the source text. Each node carries the
 * line and column (1-based, in Unicode code points as the spec counts them) where it starts,
 * for the "locations" of errors.
 */
#ifndef CRMD_API_GRAPHQL_AST_H
#define CRMD_API_GRAPHQL_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct gql_loc {
    uint32_t line, col;
} gql_loc_t;

/* ---- values ---- */

enum gql_value_kind {
    GV_VARIABLE = 0, /* $name: s is the name without '$' */
    GV_INT,          /* s is the literal text ("-12") */
    GV_FLOAT,        /* s is the literal text ("1.5e3") */
    GV_STRING,       /* s is the decoded UTF-8 text, n its length (it may hold NUL bytes) */
    GV_BOOL,         /* b */
    GV_NULL,
    GV_ENUM,   /* s is the name */
    GV_LIST,   /* items[0..n) */
    GV_OBJECT, /* fields[0..n) */
};

typedef struct gql_value gql_value_t;
typedef struct gql_object_field gql_object_field_t;

struct gql_value {
    uint8_t kind; /* enum gql_value_kind */
    bool b;
    gql_loc_t loc;
    const char *s;
    size_t n; /* GV_STRING: bytes of s; GV_LIST: items; GV_OBJECT: fields */
    gql_value_t **items;
    gql_object_field_t *fields;
};

struct gql_object_field {
    const char *name;
    gql_value_t *value;
    gql_loc_t loc;
};

/* ---- types of variable definitions ---- */

enum gql_typeref_kind { GTR_NAMED = 0, GTR_LIST, GTR_NONNULL };

typedef struct gql_typeref gql_typeref_t;
struct gql_typeref {
    uint8_t kind;      /* enum gql_typeref_kind */
    const char *name;  /* GTR_NAMED */
    gql_typeref_t *of; /* GTR_LIST, GTR_NONNULL */
    gql_loc_t loc;
};

/* ---- arguments and directives ---- */

typedef struct gql_arg {
    const char *name;
    gql_value_t *value;
    gql_loc_t loc;
} gql_arg_t;

typedef struct gql_directive {
    const char *name;
    gql_arg_t *args;
    size_t nargs;
    gql_loc_t loc;
} gql_directive_t;

/* ---- selections ---- */

enum gql_selection_kind {
    GS_FIELD = 0, /* alias: name(args) @dirs { sel } */
    GS_SPREAD,    /* ...name @dirs */
    GS_INLINE,    /* ... on type_cond @dirs { sel } (type_cond may be NULL) */
};

typedef struct gql_selection gql_selection_t;

typedef struct gql_selset {
    gql_selection_t *items;
    size_t n; /* 0: absent (a field without a selection set) */
    gql_loc_t loc;
} gql_selset_t;

struct gql_selection {
    uint8_t kind; /* enum gql_selection_kind */
    gql_loc_t loc;
    const char *alias;     /* GS_FIELD: NULL when none */
    const char *name;      /* GS_FIELD: the field; GS_SPREAD: the fragment */
    const char *type_cond; /* GS_INLINE: NULL when none */
    gql_arg_t *args;       /* GS_FIELD */
    size_t nargs;
    gql_directive_t *dirs;
    size_t ndirs;
    gql_selset_t sel; /* GS_FIELD (n 0 when absent), GS_INLINE */
};

/* ---- definitions ---- */

typedef struct gql_vardef {
    const char *name; /* without '$' */
    gql_typeref_t *type;
    gql_value_t *def; /* default value, or NULL */
    gql_directive_t *dirs;
    size_t ndirs;
    gql_loc_t loc;
} gql_vardef_t;

enum gql_def_kind { GD_QUERY = 0, GD_MUTATION, GD_SUBSCRIPTION, GD_FRAGMENT };

typedef struct gql_def {
    uint8_t kind;          /* enum gql_def_kind */
    const char *name;      /* NULL for an anonymous operation (and for the shorthand "{ ... }") */
    const char *type_cond; /* GD_FRAGMENT: "on Type" */
    gql_vardef_t *vars;
    size_t nvars;
    gql_directive_t *dirs;
    size_t ndirs;
    gql_selset_t sel;
    gql_loc_t loc;
} gql_def_t;

typedef struct gql_doc {
    gql_def_t *defs;
    size_t ndefs;
    uint32_t ntokens; /* lexical tokens read (punctuators, names, values; not ignored tokens) */
} gql_doc_t;

/* ---- parsing ---- */

/* Bounds the parser enforces while it reads (a document past one is refused as it is met, so
 * an abusive document costs no more than the bound). */
typedef struct gql_parse_limits {
    uint32_t max_tokens;  /* 0: unbounded */
    uint32_t max_nesting; /* selection sets, list/object values and type wrappers nested; 0: 64 */
} gql_parse_limits_t;

/* A syntax error: a message fit for a client ("Syntax Error: Expected Name, found \"}\".")
 * and where. */
typedef struct gql_error {
    char message[160];
    gql_loc_t loc;
} gql_error_t;

/*
 * Parses src[0..n) as an executable document: one or more operation or fragment definitions
 * and nothing else (a type system definition is a syntax error here, per the spec's
 * ExecutableDocument). The source must be valid UTF-8 without control characters other than
 * tab, line feed and carriage return (a byte order mark at the start is ignored). Returns the
 * document (in arena a), or NULL with err set.
 */
gql_doc_t *gql_parse(arena_t *a, const char *src, size_t n, const gql_parse_limits_t *lim, gql_error_t *err);

/* Writes r as GraphQL prints it ("[ID!]!") into b. */
void gql_typeref_print(buf_t *b, const gql_typeref_t *r);

/* The fragment of doc called name, or NULL. */
const gql_def_t *gql_doc_fragment(const gql_doc_t *doc, const char *name);

#endif
