/*
 * The GraphQL parser: a recursive descent over the executable grammar of the GraphQL spec
 * (October 2021, section 2: ExecutableDocument and everything under it), reading tokens from
 * api/graphql/lex.c and building the tree of ast.h in the request's arena. It is our own
 * because Debian packages no GraphQL library for C (`apt-cache search graphql` lists them for
 * Go, Python, Perl, Ruby, JavaScript and Emacs Lisp only), and the grammar is small. Its error messages
 * are graphql-js's, word for word where graphql-js has one.
 *
 * Type system definitions and descriptions are refused, as the spec's ExecutableDocument does.
 * Recursion is bounded by max_nesting (selection sets, list and object values and list types
 * all count towards one depth, that of the tree), capped at NESTING_CAP whatever the caller
 * asks. Lists of items (definitions, selections, arguments, ...) are collected on one scratch
 * stack and copied into the arena as an array when they close: an item is pushed only after
 * its own children closed, so each list's items lie together at the top of the stack.
 */
#include "api/graphql/ast.h"
#include "api/graphql/lex.h"

#include <stdio.h>

#define NESTING_DEFAULT 64
/* Whatever the caller asks: a level costs about 300 bytes of stack (two or three frames, at
 * -O2), so the deepest document stays under 100 KB of it. */
#define NESTING_CAP 256

typedef struct parser {
    gql_lexer_t lx;
    gql_token_t tok; /* the current token, not yet consumed */
    arena_t *a;
    buf_t stack; /* items of the lists still open */
    uint32_t depth, max_depth;
    gql_error_t *err;
} parser_t;

static bool parse_selset(parser_t *p, gql_selset_t *out);
static gql_value_t *parse_value(parser_t *p, bool is_const);

/* ---- tokens ---- */

static bool advance(parser_t *p)
{
    return gql_lex_next(&p->lx, &p->tok);
}

static bool at(const parser_t *p, int kind)
{
    return p->tok.kind == kind;
}

static bool at_keyword(const parser_t *p, const char *word)
{
    size_t n = strlen(word);
    return p->tok.kind == GT_NAME && p->tok.len == n && memcmp(p->tok.text, word, n) == 0;
}

static const char *const punctuators[] = {
    [GT_BANG] = "!",      [GT_DOLLAR] = "$",  [GT_AMP] = "&",    [GT_PAREN_L] = "(", [GT_PAREN_R] = ")",
    [GT_SPREAD] = "...",  [GT_COLON] = ":",   [GT_EQUALS] = "=", [GT_AT] = "@",      [GT_BRACKET_L] = "[",
    [GT_BRACKET_R] = "]", [GT_BRACE_L] = "{", [GT_PIPE] = "|",   [GT_BRACE_R] = "}",
};

/* The token as graphql-js describes it: <EOF>, "}", Name "foo", Int "1", String "text". */
static const char *token_desc(const gql_token_t *t, char *out, size_t cap)
{
    static const char *const kinds[] = {[GT_NAME] = "Name",
                                        [GT_INT] = "Int",
                                        [GT_FLOAT] = "Float",
                                        [GT_STRING] = "String",
                                        [GT_BLOCK_STRING] = "BlockString"};
    char text[72];
    if (t->kind == GT_EOF)
        snprintf(out, cap, "<EOF>");
    else if (t->kind < GT_NAME)
        snprintf(out, cap, "\"%s\"", punctuators[t->kind]);
    else if (t->kind == GT_STRING || t->kind == GT_BLOCK_STRING)
        snprintf(out, cap, "%s \"%s\"", kinds[t->kind], gql_excerpt(text, sizeof text, t->s, t->n));
    else
        snprintf(out, cap, "%s \"%s\"", kinds[t->kind], gql_excerpt(text, sizeof text, t->text, t->len));
    return out;
}

static bool unexpected(parser_t *p, const gql_token_t *t)
{
    char desc[96];
    gql_syntax_error(p->err, t->loc, "Unexpected %s.", token_desc(t, desc, sizeof desc));
    return false;
}

/* Consumes a token of the kind, or fails with "Expected ..., found ...". */
static bool expect(parser_t *p, int kind)
{
    char desc[96];
    if (at(p, kind))
        return advance(p);
    token_desc(&p->tok, desc, sizeof desc);
    if (kind == GT_NAME)
        gql_syntax_error(p->err, p->tok.loc, "Expected Name, found %s.", desc);
    else
        gql_syntax_error(p->err, p->tok.loc, "Expected \"%s\", found %s.", punctuators[kind], desc);
    return false;
}

static bool expect_keyword(parser_t *p, const char *word)
{
    char desc[96];
    if (at_keyword(p, word))
        return advance(p);
    gql_syntax_error(p->err, p->tok.loc, "Expected \"%s\", found %s.", word,
                     token_desc(&p->tok, desc, sizeof desc));
    return false;
}

/* Consumes a token of the kind if it is the current one (*took says whether it was). */
static bool accept(parser_t *p, int kind, bool *took)
{
    *took = at(p, kind);
    return !*took || advance(p);
}

/* A Name: its text copied to the arena. */
static bool parse_name(parser_t *p, const char **name)
{
    if (!at(p, GT_NAME))
        return expect(p, GT_NAME);
    *name = arena_strndup(p->a, p->tok.text, p->tok.len);
    return advance(p);
}

/* A fragment's name: any Name but "on". */
static bool parse_fragment_name(parser_t *p, const char **name)
{
    if (at_keyword(p, "on"))
        return unexpected(p, &p->tok);
    return parse_name(p, name);
}

/* ---- nesting and lists ---- */

static bool enter(parser_t *p, gql_loc_t loc)
{
    if (++p->depth <= p->max_depth)
        return true;
    gql_syntax_error(p->err, loc, "Document is nested more than %u levels deep. Parsing aborted.",
                     (unsigned)p->max_depth);
    return false;
}

static void leave(parser_t *p)
{
    p->depth--;
}

static void push(parser_t *p, const void *item, size_t size)
{
    buf_append(&p->stack, item, size);
}

/* The items pushed since mark, moved into an arena array (NULL when none). */
static void *pop_list(parser_t *p, size_t mark, size_t size, size_t *n)
{
    size_t bytes = p->stack.len - mark;
    *n = bytes / size;
    void *items = bytes ? arena_memdup(p->a, p->stack.data + mark, bytes) : NULL;
    p->stack.len = mark;
    return items;
}

/* ---- values ---- */

/* $name */
static bool parse_variable(parser_t *p, const char **name)
{
    return expect(p, GT_DOLLAR) && parse_name(p, name);
}

/* [ value* ]; the current token is the '['. */
static bool parse_list(parser_t *p, gql_value_t *v, bool is_const)
{
    if (!enter(p, v->loc) || !advance(p))
        return false;
    size_t mark = p->stack.len;
    while (!at(p, GT_BRACKET_R)) {
        gql_value_t *item = parse_value(p, is_const);
        if (!item)
            return false;
        push(p, &item, sizeof item);
    }
    v->kind = GV_LIST;
    v->items = pop_list(p, mark, sizeof(gql_value_t *), &v->n);
    leave(p);
    return advance(p);
}

/* { (name: value)* }; the current token is the '{'. */
static bool parse_object(parser_t *p, gql_value_t *v, bool is_const)
{
    if (!enter(p, v->loc) || !advance(p))
        return false;
    size_t mark = p->stack.len;
    while (!at(p, GT_BRACE_R)) {
        gql_object_field_t f = {.loc = p->tok.loc};
        if (!parse_name(p, &f.name) || !expect(p, GT_COLON) || !(f.value = parse_value(p, is_const)))
            return false;
        push(p, &f, sizeof f);
    }
    v->kind = GV_OBJECT;
    v->fields = pop_list(p, mark, sizeof(gql_object_field_t), &v->n);
    leave(p);
    return advance(p);
}

/* A variable where a constant value must be (a default value, a const directive's argument). */
static bool variable_in_const(parser_t *p)
{
    gql_token_t dollar = p->tok;
    if (!advance(p))
        return false;
    if (!at(p, GT_NAME))
        return unexpected(p, &dollar);
    char name[72];
    gql_excerpt(name, sizeof name, p->tok.text, p->tok.len);
    gql_syntax_error(p->err, dollar.loc, "Unexpected variable \"$%s\" in constant value.", name);
    return false;
}

/* Value[Const] when is_const: no variables inside. */
static gql_value_t *parse_value(parser_t *p, bool is_const)
{
    const gql_token_t *t = &p->tok;
    gql_value_t *v = arena_alloc(p->a, sizeof *v);
    *v = (gql_value_t){.loc = t->loc};
    switch (t->kind) {
    case GT_BRACKET_L:
        return parse_list(p, v, is_const) ? v : NULL;
    case GT_BRACE_L:
        return parse_object(p, v, is_const) ? v : NULL;
    case GT_DOLLAR:
        if (is_const) {
            variable_in_const(p);
            return NULL;
        }
        v->kind = GV_VARIABLE;
        return parse_variable(p, &v->s) ? v : NULL;
    case GT_INT:
    case GT_FLOAT:
        v->kind = t->kind == GT_INT ? GV_INT : GV_FLOAT;
        v->s = arena_strndup(p->a, t->text, t->len);
        break;
    case GT_STRING:
    case GT_BLOCK_STRING:
        v->kind = GV_STRING;
        v->s = t->s;
        v->n = t->n;
        break;
    case GT_NAME:
        if (at_keyword(p, "true") || at_keyword(p, "false")) {
            v->kind = GV_BOOL;
            v->b = at_keyword(p, "true");
        } else if (at_keyword(p, "null")) {
            v->kind = GV_NULL;
        } else {
            v->kind = GV_ENUM;
            v->s = arena_strndup(p->a, t->text, t->len);
        }
        break;
    default:
        unexpected(p, t);
        return NULL;
    }
    return advance(p) ? v : NULL;
}

/* ---- arguments, directives, types ---- */

/* ( (name: value)+ )?, no variables when is_const. */
static bool parse_arguments(parser_t *p, bool is_const, gql_arg_t **args, size_t *n)
{
    bool took;
    if (!accept(p, GT_PAREN_L, &took) || !took)
        return !took;
    size_t mark = p->stack.len;
    do {
        gql_arg_t arg = {.loc = p->tok.loc};
        if (!parse_name(p, &arg.name) || !expect(p, GT_COLON) || !(arg.value = parse_value(p, is_const)))
            return false;
        push(p, &arg, sizeof arg);
    } while (!at(p, GT_PAREN_R));
    *args = pop_list(p, mark, sizeof(gql_arg_t), n);
    return advance(p);
}

/* (@name arguments?)*. */
static bool parse_directives(parser_t *p, bool is_const, gql_directive_t **dirs, size_t *n)
{
    size_t mark = p->stack.len;
    while (at(p, GT_AT)) {
        gql_directive_t d = {.loc = p->tok.loc};
        if (!advance(p) || !parse_name(p, &d.name) || !parse_arguments(p, is_const, &d.args, &d.nargs))
            return false;
        push(p, &d, sizeof d);
    }
    *dirs = pop_list(p, mark, sizeof(gql_directive_t), n);
    return true;
}

/* Name, [Type] or either followed by '!'. */
static gql_typeref_t *parse_type(parser_t *p)
{
    gql_typeref_t *t = arena_alloc(p->a, sizeof *t);
    *t = (gql_typeref_t){.loc = p->tok.loc};
    if (at(p, GT_BRACKET_L)) {
        t->kind = GTR_LIST;
        if (!enter(p, t->loc) || !advance(p) || !(t->of = parse_type(p)) || !expect(p, GT_BRACKET_R))
            return NULL;
        leave(p);
    } else {
        t->kind = GTR_NAMED;
        if (!parse_name(p, &t->name))
            return NULL;
    }
    if (!at(p, GT_BANG))
        return t;
    gql_typeref_t *nn = arena_alloc(p->a, sizeof *nn);
    *nn = (gql_typeref_t){.kind = GTR_NONNULL, .of = t, .loc = t->loc};
    return advance(p) ? nn : NULL;
}

/* ---- selections ---- */

/* alias: name(args) @dirs { ... }, with the alias and the selection set optional. */
static bool parse_field(parser_t *p, gql_selection_t *s)
{
    bool aliased;
    s->kind = GS_FIELD;
    if (!parse_name(p, &s->name) || !accept(p, GT_COLON, &aliased))
        return false;
    if (aliased) {
        s->alias = s->name;
        if (!parse_name(p, &s->name))
            return false;
    }
    if (!parse_arguments(p, false, &s->args, &s->nargs) || !parse_directives(p, false, &s->dirs, &s->ndirs))
        return false;
    return !at(p, GT_BRACE_L) || parse_selset(p, &s->sel);
}

/* ...name @dirs, or ... on Type @dirs { ... } with the type condition optional; the current
 * token is the "...". */
static bool parse_fragment(parser_t *p, gql_selection_t *s)
{
    if (!advance(p))
        return false;
    if (at(p, GT_NAME) && !at_keyword(p, "on")) {
        s->kind = GS_SPREAD;
        return parse_fragment_name(p, &s->name) && parse_directives(p, false, &s->dirs, &s->ndirs);
    }
    s->kind = GS_INLINE;
    if (at_keyword(p, "on") && (!advance(p) || !parse_name(p, &s->type_cond)))
        return false;
    return parse_directives(p, false, &s->dirs, &s->ndirs) && parse_selset(p, &s->sel);
}

/* { selection+ } */
static bool parse_selset(parser_t *p, gql_selset_t *out)
{
    out->loc = p->tok.loc;
    if (!at(p, GT_BRACE_L))
        return expect(p, GT_BRACE_L);
    if (!enter(p, out->loc) || !advance(p))
        return false;
    size_t mark = p->stack.len;
    do {
        gql_selection_t s = {.loc = p->tok.loc};
        if (!(at(p, GT_SPREAD) ? parse_fragment(p, &s) : parse_field(p, &s)))
            return false;
        push(p, &s, sizeof s);
    } while (!at(p, GT_BRACE_R));
    out->items = pop_list(p, mark, sizeof(gql_selection_t), &out->n);
    leave(p);
    return advance(p);
}

/* ---- definitions ---- */

/* ( $name: Type = default @dirs )+, or nothing. */
static bool parse_vardefs(parser_t *p, gql_def_t *d)
{
    bool took;
    if (!accept(p, GT_PAREN_L, &took) || !took)
        return !took;
    size_t mark = p->stack.len;
    do {
        gql_vardef_t v = {.loc = p->tok.loc};
        bool has_default;
        if (!parse_variable(p, &v.name) || !expect(p, GT_COLON) || !(v.type = parse_type(p)) ||
            !accept(p, GT_EQUALS, &has_default))
            return false;
        if (has_default && !(v.def = parse_value(p, true)))
            return false;
        if (!parse_directives(p, true, &v.dirs, &v.ndirs))
            return false;
        push(p, &v, sizeof v);
    } while (!at(p, GT_PAREN_R));
    d->vars = pop_list(p, mark, sizeof(gql_vardef_t), &d->nvars);
    return advance(p);
}

/* query|mutation|subscription name? vars? @dirs { ... }; the current token is the keyword. */
static bool parse_operation(parser_t *p, gql_def_t *d)
{
    d->kind = at_keyword(p, "query") ? GD_QUERY : at_keyword(p, "mutation") ? GD_MUTATION : GD_SUBSCRIPTION;
    if (!advance(p) || (at(p, GT_NAME) && !parse_name(p, &d->name)))
        return false;
    return parse_vardefs(p, d) && parse_directives(p, false, &d->dirs, &d->ndirs) && parse_selset(p, &d->sel);
}

/* fragment name on Type @dirs { ... }; the current token is "fragment". */
static bool parse_fragment_def(parser_t *p, gql_def_t *d)
{
    d->kind = GD_FRAGMENT;
    return advance(p) && parse_fragment_name(p, &d->name) && expect_keyword(p, "on") &&
           parse_name(p, &d->type_cond) && parse_directives(p, false, &d->dirs, &d->ndirs) &&
           parse_selset(p, &d->sel);
}

static bool parse_definition(parser_t *p, gql_def_t *d)
{
    *d = (gql_def_t){.loc = p->tok.loc};
    if (at(p, GT_BRACE_L)) {
        d->kind = GD_QUERY;
        return parse_selset(p, &d->sel);
    }
    if (at_keyword(p, "query") || at_keyword(p, "mutation") || at_keyword(p, "subscription"))
        return parse_operation(p, d);
    if (at_keyword(p, "fragment"))
        return parse_fragment_def(p, d);
    if (at(p, GT_STRING) || at(p, GT_BLOCK_STRING)) {
        gql_syntax_error(p->err, p->tok.loc,
                         "Unexpected description, descriptions are supported only on type definitions.");
        return false;
    }
    /* type, schema, extend, ... (type system definitions) and anything else */
    return unexpected(p, &p->tok);
}

gql_doc_t *gql_parse(arena_t *a, const char *src, size_t n, const gql_parse_limits_t *lim, gql_error_t *err)
{
    gql_error_t ignored;
    parser_t p = {.a = a, .err = err ? err : &ignored, .max_depth = NESTING_DEFAULT};
    if (lim && lim->max_nesting)
        p.max_depth = MIN(lim->max_nesting, NESTING_CAP);
    gql_lex_init(&p.lx, a, src ? src : "", src ? n : 0, lim ? lim->max_tokens : 0, p.err);

    gql_doc_t *doc = NULL;
    if (!advance(&p))
        goto out;
    do {
        gql_def_t d;
        if (!parse_definition(&p, &d))
            goto out;
        push(&p, &d, sizeof d);
    } while (!at(&p, GT_EOF));
    doc = arena_alloc(a, sizeof *doc);
    doc->defs = pop_list(&p, 0, sizeof(gql_def_t), &doc->ndefs);
    doc->ntokens = p.lx.ntokens;
out:
    gql_lex_free(&p.lx);
    buf_free(&p.stack);
    return doc;
}

const gql_def_t *gql_doc_fragment(const gql_doc_t *doc, const char *name)
{
    for (size_t i = 0; i < doc->ndefs; i++)
        if (doc->defs[i].kind == GD_FRAGMENT && strcmp(doc->defs[i].name, name) == 0)
            return &doc->defs[i];
    return NULL;
}

void gql_typeref_print(buf_t *b, const gql_typeref_t *r)
{
    if (r->kind == GTR_NAMED) {
        buf_append(b, r->name, strlen(r->name));
    } else if (r->kind == GTR_LIST) {
        buf_putc(b, '[');
        gql_typeref_print(b, r->of);
        buf_putc(b, ']');
    } else {
        gql_typeref_print(b, r->of);
        buf_putc(b, '!');
    }
}
