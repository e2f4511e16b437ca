// fuzz-sources: api/graphql/parse.c api/graphql/lex.c core/buf.c core/common.c core/utf8.c
/*
 * libFuzzer harness for the GraphQL parser (api/graphql/parse.c, api/graphql/lex.c). Each input
 * is parsed from an exact-size heap copy (so ASan sees any read past the slice). A refusal must
 * carry a "Syntax Error: " message in well-formed UTF-8 and a line and column inside the input
 * (at most one past the end of a line). An accepted tree must have every node's line and column
 * on the character that starts it ('[' for a list, '$' for a variable, '@' for a directive,
 * ...). It is then printed back as GraphQL, which must parse again and print the same: decoded
 * strings, number texts, names, aliases, directives and nesting all survive the round trip.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/graphql/ast.h"
#include "core/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                          \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static arena_t arena;
static buf_t out1, out2;

/* ---- where a line:column is ---- */

typedef struct lines {
    const unsigned char *src;
    size_t n;
    size_t *start; /* byte offset of each line; line terminators CR, LF, CRLF */
    size_t count;
} lines_t;

static void lines_init(lines_t *l, const char *src, size_t n)
{
    l->src = (const unsigned char *)src;
    l->n = n;
    l->start = malloc((n + 1) * sizeof *l->start);
    l->count = 0;
    l->start[l->count++] = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r' && i + 1 < n && src[i + 1] == '\n')
            i++;
        if (src[i] == '\n' || src[i] == '\r')
            l->start[l->count++] = i + 1;
    }
}

/* The byte offset of loc, or SIZE_MAX when it is not in the text; one past a line's last
 * character is allowed only when at_end. */
static size_t offset_of(const lines_t *l, gql_loc_t loc, int at_end)
{
    if (loc.line < 1 || loc.line > l->count || loc.col < 1)
        return SIZE_MAX;
    size_t p = l->start[loc.line - 1];
    size_t end = loc.line < l->count ? l->start[loc.line] : l->n;
    for (uint32_t c = 1; c < loc.col; c++) {
        if (p >= end)
            return SIZE_MAX;
        p++;
        while (p < end && (l->src[p] & 0xc0) == 0x80)
            p++;
    }
    /* the column must not fall on the line terminator, unless it is the error's place */
    if (!at_end && (p >= l->n || l->src[p] == '\n' || l->src[p] == '\r'))
        return SIZE_MAX;
    return p;
}

/* The node at loc starts with one of the characters in first. */
static void check_at(const lines_t *l, gql_loc_t loc, const char *first)
{
    size_t p = offset_of(l, loc, 0);
    ASSERT(p != SIZE_MAX);
    ASSERT(strchr(first, l->src[p]) != NULL);
}

#define NAME_START "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

static void check_value(const lines_t *l, const gql_value_t *v)
{
    static const char *const first[] = {
        [GV_VARIABLE] = "$",    [GV_INT] = "-0123456789", [GV_FLOAT] = "-0123456789",
        [GV_STRING] = "\"",     [GV_BOOL] = "tf",         [GV_NULL] = "n",
        [GV_ENUM] = NAME_START, [GV_LIST] = "[",          [GV_OBJECT] = "{",
    };
    ASSERT(v->kind <= GV_OBJECT);
    check_at(l, v->loc, first[v->kind]);
    if (v->kind == GV_LIST)
        for (size_t i = 0; i < v->n; i++)
            check_value(l, v->items[i]);
    if (v->kind == GV_OBJECT)
        for (size_t i = 0; i < v->n; i++) {
            check_at(l, v->fields[i].loc, NAME_START);
            check_value(l, v->fields[i].value);
        }
}

static void check_dirs(const lines_t *l, const gql_directive_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        check_at(l, d[i].loc, "@");
        for (size_t k = 0; k < d[i].nargs; k++) {
            check_at(l, d[i].args[k].loc, NAME_START);
            check_value(l, d[i].args[k].value);
        }
    }
}

static void check_selset(const lines_t *l, const gql_selset_t *s)
{
    check_at(l, s->loc, "{");
    ASSERT(s->n > 0);
    for (size_t i = 0; i < s->n; i++) {
        const gql_selection_t *x = &s->items[i];
        check_at(l, x->loc, x->kind == GS_FIELD ? NAME_START : ".");
        for (size_t k = 0; k < x->nargs; k++) {
            check_at(l, x->args[k].loc, NAME_START);
            check_value(l, x->args[k].value);
        }
        check_dirs(l, x->dirs, x->ndirs);
        if (x->kind != GS_SPREAD && (x->kind == GS_INLINE || x->sel.n))
            check_selset(l, &x->sel);
    }
}

static void check_type(const lines_t *l, const gql_typeref_t *t)
{
    check_at(l, t->loc, t->kind == GTR_LIST ? "[" : t->kind == GTR_NAMED ? NAME_START : "[" NAME_START);
    if (t->kind != GTR_NAMED)
        check_type(l, t->of);
}

static void check_doc(const lines_t *l, const gql_doc_t *d)
{
    ASSERT(d->ndefs > 0);
    for (size_t i = 0; i < d->ndefs; i++) {
        const gql_def_t *f = &d->defs[i];
        check_at(l, f->loc, f->name || f->nvars || f->ndirs || f->kind != GD_QUERY ? "qmsf" : "{q");
        for (size_t k = 0; k < f->nvars; k++) {
            check_at(l, f->vars[k].loc, "$");
            check_type(l, f->vars[k].type);
            if (f->vars[k].def)
                check_value(l, f->vars[k].def);
            check_dirs(l, f->vars[k].dirs, f->vars[k].ndirs);
        }
        check_dirs(l, f->dirs, f->ndirs);
        check_selset(l, &f->sel);
    }
}

/* ---- printing a tree back as GraphQL ---- */

static void print_string(buf_t *b, const char *s, size_t n)
{
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            buf_printf(b, "\\u%04X", c);
        else
            buf_putc(b, (char)c);
    }
    buf_putc(b, '"');
}

static void print_value(buf_t *b, const gql_value_t *v)
{
    switch (v->kind) {
    case GV_VARIABLE:
        buf_printf(b, "$%s", v->s);
        break;
    case GV_INT:
    case GV_FLOAT:
    case GV_ENUM:
        buf_printf(b, "%s", v->s);
        break;
    case GV_STRING:
        print_string(b, v->s, v->n);
        break;
    case GV_BOOL:
        buf_printf(b, "%s", v->b ? "true" : "false");
        break;
    case GV_NULL:
        buf_printf(b, "null");
        break;
    case GV_LIST:
        buf_putc(b, '[');
        for (size_t i = 0; i < v->n; i++) {
            print_value(b, v->items[i]);
            buf_putc(b, ' ');
        }
        buf_putc(b, ']');
        break;
    case GV_OBJECT:
        buf_putc(b, '{');
        for (size_t i = 0; i < v->n; i++) {
            buf_printf(b, "%s: ", v->fields[i].name);
            print_value(b, v->fields[i].value);
            buf_putc(b, ' ');
        }
        buf_putc(b, '}');
        break;
    }
}

static void print_args(buf_t *b, const gql_arg_t *a, size_t n)
{
    if (!n)
        return;
    buf_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, "%s: ", a[i].name);
        print_value(b, a[i].value);
        buf_putc(b, ' ');
    }
    buf_putc(b, ')');
}

static void print_dirs(buf_t *b, const gql_directive_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, " @%s", d[i].name);
        print_args(b, d[i].args, d[i].nargs);
    }
}

static void print_type(buf_t *b, const gql_typeref_t *t)
{
    if (t->kind == GTR_NAMED) {
        buf_printf(b, "%s", t->name);
    } else if (t->kind == GTR_LIST) {
        buf_putc(b, '[');
        print_type(b, t->of);
        buf_putc(b, ']');
    } else {
        ASSERT(t->of->kind != GTR_NONNULL);
        print_type(b, t->of);
        buf_putc(b, '!');
    }
}

static void print_selset(buf_t *b, const gql_selset_t *s)
{
    buf_printf(b, " {\n");
    for (size_t i = 0; i < s->n; i++) {
        const gql_selection_t *x = &s->items[i];
        if (x->kind == GS_FIELD) {
            if (x->alias)
                buf_printf(b, "%s: ", x->alias);
            buf_printf(b, "%s", x->name);
            print_args(b, x->args, x->nargs);
            print_dirs(b, x->dirs, x->ndirs);
            if (x->sel.n)
                print_selset(b, &x->sel);
        } else if (x->kind == GS_SPREAD) {
            ASSERT(strcmp(x->name, "on") != 0);
            buf_printf(b, "...%s", x->name);
            print_dirs(b, x->dirs, x->ndirs);
        } else {
            buf_printf(b, "...");
            if (x->type_cond)
                buf_printf(b, " on %s", x->type_cond);
            print_dirs(b, x->dirs, x->ndirs);
            print_selset(b, &x->sel);
        }
        buf_putc(b, '\n');
    }
    buf_putc(b, '}');
}

static void print_doc(buf_t *b, const gql_doc_t *d)
{
    static const char *const kinds[] = {"query", "mutation", "subscription", "fragment"};
    buf_reset(b);
    for (size_t i = 0; i < d->ndefs; i++) {
        const gql_def_t *f = &d->defs[i];
        ASSERT(f->kind <= GD_FRAGMENT);
        buf_printf(b, "%s", kinds[f->kind]);
        if (f->name)
            buf_printf(b, " %s", f->name);
        if (f->kind == GD_FRAGMENT)
            buf_printf(b, " on %s", f->type_cond);
        if (f->nvars) {
            buf_putc(b, '(');
            for (size_t k = 0; k < f->nvars; k++) {
                buf_printf(b, "$%s: ", f->vars[k].name);
                print_type(b, f->vars[k].type);
                if (f->vars[k].def) {
                    buf_printf(b, " = ");
                    print_value(b, f->vars[k].def);
                }
                print_dirs(b, f->vars[k].dirs, f->vars[k].ndirs);
                buf_putc(b, ' ');
            }
            buf_putc(b, ')');
        }
        print_dirs(b, f->dirs, f->ndirs);
        print_selset(b, &f->sel);
        buf_putc(b, '\n');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    arena_reset(&arena);
    lines_t l;
    lines_init(&l, text, size);

    gql_error_t err;
    gql_doc_t *d = gql_parse(&arena, text, size, NULL, &err);
    if (!d) {
        size_t len = strnlen(err.message, sizeof err.message);
        ASSERT(len < sizeof err.message && strncmp(err.message, "Syntax Error: ", 14) == 0);
        ASSERT(utf8_valid(err.message, len));
        ASSERT(offset_of(&l, err.loc, 1) != SIZE_MAX);
        goto out;
    }
    ASSERT(utf8_valid(text, size));
    check_doc(&l, d);

    /* printed, parsed again and printed again: the same text */
    print_doc(&out1, d);
    gql_doc_t *d2 = gql_parse(&arena, out1.data, out1.len, NULL, &err);
    if (!d2)
        fprintf(stderr, "reparse failed at %u:%u: %s\n%.*s\n", (unsigned)err.loc.line, (unsigned)err.loc.col,
                err.message, (int)out1.len, out1.data);
    ASSERT(d2 != NULL);
    print_doc(&out2, d2);
    ASSERT(out1.len == out2.len && memcmp(out1.data, out2.data, out1.len) == 0);
out:
    free(l.start);
    free(text);
    return 0;
}
