/*
 * Values at run time: the operation's variables coerced from the request's JSON (GraphQL spec
 * 6.1.2 CoerceVariableValues, with the input coercion rules of section 3), argument values
 * with variables and defaults filled in (6.4.1 CoerceArgumentValues), and @skip/@include.
 *
 * Everything comes out as literals of ast.h, shaped as their type says: a single value where a
 * list is expected becomes a one-item list, an input object gets the defaults of the fields
 * not given, an enum is its name. Defaults are stored in the schema as GraphQL literal text;
 * they are read with the parser, as the argument of a one-field document.
 */
#include "api/graphql/types.h"
#include "core/json.h"
#include "core/timestamp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODE "BAD_USER_INPUT"
/* Bytes of a JSON value quoted in a message. */
#define INSPECT_MAX 200

/* ---- literals ---- */

static gql_value_t *new_value(arena_t *a, uint8_t kind, gql_loc_t loc)
{
    gql_value_t *v = arena_alloc(a, sizeof(*v));
    *v = (gql_value_t){.kind = kind, .loc = loc};
    return v;
}

/* The default value text as a literal (NULL when it does not parse: a broken schema). */
static const gql_value_t *parse_default(arena_t *a, const char *text)
{
    size_t n = strlen(text);
    char *src = arena_alloc(a, n + 8);
    memcpy(src, "{f(a:", 5);
    memcpy(src + 5, text, n);
    memcpy(src + 5 + n, ")}", 3);
    gql_error_t err;
    const gql_doc_t *doc = gql_parse(a, src, n + 7, NULL, &err);
    if (!doc || doc->ndefs != 1 || doc->defs[0].sel.n != 1 || doc->defs[0].sel.items[0].nargs != 1)
        return NULL;
    return doc->defs[0].sel.items[0].args[0].value;
}

static const gql_value_t *var_value(const gql_vars_t *vars, const char *name, bool *given)
{
    *given = false;
    for (size_t i = 0; vars && i < vars->n; i++)
        if (strcmp(vars->defs[i].name, name) == 0) {
            *given = vars->values[i] != NULL;
            return vars->values[i];
        }
    return NULL;
}

/* Input objects filled with defaults nested at most (a schema whose defaults refer to each
 * other, which the spec forbids, stops there). */
#define MAX_DEFAULT_DEPTH 32

static const gql_value_t *coerce_literal(arena_t *a, const gql_value_t *v, const gql_type_t *t,
                                         const gql_vars_t *vars, bool *given, int depth);

/* The default of decl coerced to its type, or NULL. */
static const gql_value_t *default_of(arena_t *a, const gql_input_t *decl, int depth)
{
    if (!decl->default_value || depth > MAX_DEFAULT_DEPTH)
        return NULL;
    const gql_value_t *v = parse_default(a, decl->default_value);
    bool given;
    return v ? coerce_literal(a, v, decl->type, NULL, &given, depth + 1) : NULL;
}

static const gql_value_t *coerce_object(arena_t *a, const gql_value_t *v, const gql_type_t *t,
                                        const gql_vars_t *vars, int depth)
{
    gql_value_t *o = new_value(a, GV_OBJECT, v->loc);
    o->fields = arena_alloc(a, (t->ninputs ? t->ninputs : 1) * sizeof(gql_object_field_t));
    for (size_t j = 0; j < t->ninputs; j++) {
        const gql_input_t *decl = &t->inputs[j];
        const gql_object_field_t *f = NULL;
        for (size_t i = 0; i < v->n && !f; i++)
            if (strcmp(v->fields[i].name, decl->name) == 0)
                f = &v->fields[i];
        const gql_value_t *x = NULL;
        bool given = false;
        if (f)
            x = coerce_literal(a, f->value, decl->type, vars, &given, depth);
        if (!given)
            x = default_of(a, decl, depth);
        if (!x)
            continue;
        o->fields[o->n++] = (gql_object_field_t){decl->name, (gql_value_t *)x, f ? f->loc : v->loc};
    }
    return o;
}

/*
 * v (a literal of a validated document) coerced to t: variables replaced by their values,
 * input objects completed with defaults, single values wrapped in lists. *given is false when
 * v is a variable with no value (the caller then uses its default or leaves it out).
 */
static const gql_value_t *coerce_literal(arena_t *a, const gql_value_t *v, const gql_type_t *t,
                                         const gql_vars_t *vars, bool *given, int depth)
{
    *given = true;
    if (v->kind == GV_VARIABLE)
        return var_value(vars, v->s, given);
    if (!t || v->kind == GV_NULL)
        return v;
    if (t->kind == GK_NON_NULL)
        t = t->of;
    if (t->kind == GK_LIST) {
        gql_value_t *l = new_value(a, GV_LIST, v->loc);
        if (v->kind != GV_LIST) {
            bool g;
            const gql_value_t *x = coerce_literal(a, v, t->of, vars, &g, depth);
            l->items = arena_alloc(a, sizeof(*l->items));
            l->items[0] = (gql_value_t *)(x ? x : new_value(a, GV_NULL, v->loc));
            l->n = 1;
            return l;
        }
        l->items = arena_alloc(a, (v->n ? v->n : 1) * sizeof(*l->items));
        for (size_t i = 0; i < v->n; i++) {
            bool g;
            const gql_value_t *x = coerce_literal(a, v->items[i], t->of, vars, &g, depth);
            l->items[i] = (gql_value_t *)(x ? x : new_value(a, GV_NULL, v->items[i]->loc));
        }
        l->n = v->n;
        return l;
    }
    if (t->kind == GK_INPUT_OBJECT && v->kind == GV_OBJECT)
        return coerce_object(a, v, t, vars, depth);
    return v;
}

const gql_value_t *gql_arg_value(const gql_schema_t *s, arena_t *a, const gql_input_t *decl,
                                 const gql_arg_t *args, size_t nargs, const gql_vars_t *vars)
{
    (void)s;
    if (!decl)
        return NULL;
    const gql_value_t *v = NULL;
    bool given = false;
    for (size_t i = 0; i < nargs; i++)
        if (strcmp(args[i].name, decl->name) == 0) {
            v = coerce_literal(a, args[i].value, decl->type, vars, &given, 0);
            break;
        }
    if (!given)
        v = default_of(a, decl, 0);
    return v && v->kind != GV_NULL ? v : NULL;
}

bool gql_directives_include(const gql_directive_t *dirs, size_t ndirs, const gql_vars_t *vars)
{
    for (size_t i = 0; i < ndirs; i++) {
        bool skip = strcmp(dirs[i].name, "skip") == 0;
        if (!skip && strcmp(dirs[i].name, "include") != 0)
            continue;
        for (size_t j = 0; j < dirs[i].nargs; j++) {
            if (strcmp(dirs[i].args[j].name, "if") != 0)
                continue;
            const gql_value_t *v = dirs[i].args[j].value;
            bool given = true;
            if (v->kind == GV_VARIABLE)
                v = var_value(vars, v->s, &given);
            if (!given || !v || v->kind != GV_BOOL)
                continue;
            if (v->b == skip)
                return false;
        }
    }
    return true;
}

/* ---- variables from JSON ---- */

typedef struct pseg {
    const char *key; /* NULL: an index */
    size_t index;
} pseg_t;

#define PATH_MAX_SEGS 64

typedef struct cctx {
    const gql_schema_t *s;
    arena_t *a;
    gql_errors_t *errs;
    const gql_vardef_t *var;
    pseg_t path[PATH_MAX_SEGS];
    size_t depth;
    bool failed;
} cctx_t;

static void inspect(buf_t *b, const json_value_t *v)
{
    size_t start = b->len;
    json_value_write(b, v);
    if (b->len - start > INSPECT_MAX) {
        size_t n = start + INSPECT_MAX;
        while (n > start && ((unsigned char)b->data[n] & 0xC0) == 0x80)
            n--;
        b->len = n;
        buf_append_lit(b, "...");
    }
}

/* Adds `Variable "$x" got invalid value <v>[ at "x.path"]; <message>`. */
__attribute__((format(printf, 3, 4))) static void fail(cctx_t *c, const json_value_t *v, const char *f, ...)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "Variable \"$%s\" got invalid value ", c->var->name);
    inspect(&b, v);
    const char *field = NULL;
    if (c->depth) {
        buf_printf(&b, " at \"%s", c->var->name);
        for (size_t i = 0; i < c->depth && i < PATH_MAX_SEGS; i++) {
            if (c->path[i].key) {
                buf_printf(&b, ".%s", c->path[i].key);
                field = c->path[i].key;
            } else {
                buf_printf(&b, "[%zu]", c->path[i].index);
            }
        }
        buf_putc(&b, '"');
    }
    buf_append_lit(&b, "; ");
    va_list ap;
    va_start(ap, f);
    buf_vprintf(&b, f, ap);
    va_end(ap);
    gql_err_t *e = gql_errors_add(c->errs, &c->var->loc, 1, "%s", buf_cstr(&b));
    buf_free(&b);
    c->failed = true;
    if (e) {
        e->code = CODE;
        e->field = field;
    }
}

static const char *type_text(cctx_t *c, const gql_type_t *t)
{
    buf_t b = BUF_INIT;
    gql_type_print(&b, t);
    const char *s = arena_strndup(c->a, b.data ? b.data : "", b.len);
    buf_free(&b);
    return s;
}

static const char *json_text(cctx_t *c, const json_value_t *v)
{
    buf_t b = BUF_INIT;
    inspect(&b, v);
    const char *s = arena_strndup(c->a, b.data ? b.data : "", b.len);
    buf_free(&b);
    return s;
}

static const char *typeref_text(arena_t *a, const gql_typeref_t *r)
{
    buf_t b = BUF_INIT;
    gql_typeref_print(&b, r);
    const char *s = arena_strndup(a, b.data ? b.data : "", b.len);
    buf_free(&b);
    return s;
}

static void push(cctx_t *c, const char *key, size_t index)
{
    if (c->depth < PATH_MAX_SEGS)
        c->path[c->depth] = (pseg_t){key, index};
    c->depth++;
}

static bool integer_text(const char *s, size_t n)
{
    size_t i = s[0] == '-';
    if (i >= n)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static gql_value_t *text_value(cctx_t *c, uint8_t kind, const char *s, size_t n)
{
    gql_value_t *v = new_value(c->a, kind, c->var->loc);
    v->s = arena_strndup(c->a, s, n);
    v->n = kind == GV_STRING ? n : 0;
    return v;
}

/* A JSON number as an Int or Float literal (its text kept when it is one). */
static gql_value_t *number_value(cctx_t *c, const json_value_t *j)
{
    size_t n;
    const char *s = json_number_text(j, &n);
    return text_value(c, integer_text(s, n) ? GV_INT : GV_FLOAT, s, n);
}

static gql_value_t *coerce_scalar(cctx_t *c, const json_value_t *j, const gql_type_t *t)
{
    json_type_t k = json_type(j);
    size_t n = 0;
    const char *s = k == JSON_STRING ? json_string(j, &n) : NULL;
    double d;
    ts_t ts;
    switch (t->scalar) {
    case GSC_INT:
        if (k != JSON_NUMBER || !json_get_double(j, &d) || d != floor(d)) {
            fail(c, j, "Int cannot represent non-integer value: %s", json_text(c, j));
        } else if (d < INT32_MIN || d > INT32_MAX) {
            fail(c, j, "Int cannot represent non 32-bit signed integer value: %s", json_text(c, j));
        } else {
            char buf[16];
            int len = snprintf(buf, sizeof(buf), "%d", (int)d);
            return text_value(c, GV_INT, buf, (size_t)len);
        }
        return NULL;
    case GSC_FLOAT:
        if (k == JSON_NUMBER && json_get_double(j, &d) && isfinite(d))
            return number_value(c, j);
        fail(c, j, "Float cannot represent non numeric value: %s", json_text(c, j));
        return NULL;
    case GSC_STRING:
        if (k == JSON_STRING)
            return text_value(c, GV_STRING, s, n);
        fail(c, j, "String cannot represent a non string value: %s", json_text(c, j));
        return NULL;
    case GSC_BOOLEAN:
        if (k == JSON_TRUE || k == JSON_FALSE) {
            gql_value_t *v = new_value(c->a, GV_BOOL, c->var->loc);
            v->b = k == JSON_TRUE;
            return v;
        }
        fail(c, j, "Boolean cannot represent a non boolean value: %s", json_text(c, j));
        return NULL;
    case GSC_ID:
        if (k == JSON_STRING)
            return text_value(c, GV_STRING, s, n);
        if (k == JSON_NUMBER) {
            const char *num = json_number_text(j, &n);
            if (integer_text(num, n))
                return text_value(c, GV_INT, num, n);
        }
        fail(c, j, "ID cannot represent value: %s", json_text(c, j));
        return NULL;
    case GSC_DATETIME:
        if (k == JSON_STRING && ts_parse_rfc3339(s, n, &ts))
            return text_value(c, GV_STRING, s, n);
        fail(c, j,
             "Expected type \"%s\". DateTime must be an RFC 3339 timestamp such as \"2026-01-17T10:30:00Z\".",
             t->name);
        return NULL;
    case GSC_DATE:
        if (k == JSON_STRING && ts_parse_date(s, n, &ts))
            return text_value(c, GV_STRING, s, n);
        fail(c, j, "Expected type \"%s\". Date must be a calendar date such as \"2026-01-17\".", t->name);
        return NULL;
    case GSC_DECIMAL:
        if (k == JSON_NUMBER && json_get_double(j, &d))
            return number_value(c, j);
        if (k == JSON_STRING && gql_numeric_text(s, n))
            return text_value(c, GV_STRING, s, n);
        fail(c, j, "Expected type \"%s\". Decimal must be a number or a numeric string such as \"12.50\".",
             t->name);
        return NULL;
    default:
        return NULL;
    }
}

static gql_value_t *coerce_json(cctx_t *c, const json_value_t *j, const gql_type_t *t);

static gql_value_t *coerce_input_object(cctx_t *c, const json_value_t *j, const gql_type_t *t)
{
    if (json_type(j) != JSON_OBJECT) {
        fail(c, j, "Expected type \"%s\" to be an object.", t->name);
        return NULL;
    }
    gql_value_t *o = new_value(c->a, GV_OBJECT, c->var->loc);
    o->fields = arena_alloc(c->a, (t->ninputs ? t->ninputs : 1) * sizeof(gql_object_field_t));
    for (size_t i = 0; i < t->ninputs; i++) {
        const gql_input_t *decl = &t->inputs[i];
        const json_value_t *x = json_object_get(j, decl->name);
        gql_value_t *v = NULL;
        if (x) {
            push(c, decl->name, 0);
            v = coerce_json(c, x, decl->type);
            c->depth--;
        } else if (decl->default_value) {
            v = (gql_value_t *)default_of(c->a, decl, 0);
        } else if (decl->type->kind == GK_NON_NULL) {
            fail(c, j, "Field \"%s\" of required type \"%s\" was not provided.", decl->name,
                 type_text(c, decl->type));
        }
        if (v)
            o->fields[o->n++] = (gql_object_field_t){decl->name, v, c->var->loc};
    }
    for (size_t i = 0; i < json_object_len(j); i++) {
        size_t kn;
        const char *key = json_object_key_at(j, i, &kn);
        if (strlen(key) != kn || !gql_arg_lookup(t->inputs, t->ninputs, key))
            fail(c, j, "Field \"%s\" is not defined by type \"%s\".", key, t->name);
    }
    return c->failed ? NULL : o;
}

/* j coerced to t (section 3's input coercion); NULL with an error added when it cannot be. */
static gql_value_t *coerce_json(cctx_t *c, const json_value_t *j, const gql_type_t *t)
{
    if (json_type(j) == JSON_NULL) {
        if (t->kind == GK_NON_NULL) {
            fail(c, j, "Expected non-nullable type \"%s\" not to be null.", type_text(c, t));
            return NULL;
        }
        return new_value(c->a, GV_NULL, c->var->loc);
    }
    if (t->kind == GK_NON_NULL)
        t = t->of;
    if (t->kind == GK_LIST) {
        gql_value_t *l = new_value(c->a, GV_LIST, c->var->loc);
        if (json_type(j) != JSON_ARRAY) {
            gql_value_t *x = coerce_json(c, j, t->of);
            if (!x)
                return NULL;
            l->items = arena_alloc(c->a, sizeof(*l->items));
            l->items[0] = x;
            l->n = 1;
            return l;
        }
        size_t n = json_array_len(j);
        l->items = arena_alloc(c->a, (n ? n : 1) * sizeof(*l->items));
        for (size_t i = 0; i < n; i++) {
            push(c, NULL, i);
            l->items[i] = coerce_json(c, json_array_at(j, i), t->of);
            c->depth--;
        }
        l->n = n;
        return c->failed ? NULL : l;
    }
    switch (t->kind) {
    case GK_INPUT_OBJECT:
        return coerce_input_object(c, j, t);
    case GK_ENUM: {
        size_t n;
        const char *s = json_type(j) == JSON_STRING ? json_string(j, &n) : NULL;
        if (!s) {
            fail(c, j, "Enum \"%s\" cannot represent non-string value: %s.", t->name, json_text(c, j));
            return NULL;
        }
        for (size_t i = 0; i < t->nenums; i++)
            if (strlen(t->enums[i].name) == n && memcmp(t->enums[i].name, s, n) == 0)
                return text_value(c, GV_ENUM, s, n);
        fail(c, j, "Value %s does not exist in \"%s\" enum.", json_text(c, j), t->name);
        return NULL;
    }
    case GK_SCALAR:
        return coerce_scalar(c, j, t);
    default:
        fail(c, j, "Expected type \"%s\".", type_text(c, t));
        return NULL;
    }
}

bool gql_coerce_variables(const gql_schema_t *s, const gql_def_t *op, const json_value_t *vars, arena_t *a,
                          gql_vars_t *out, gql_errors_t *errs)
{
    out->defs = op->vars;
    out->n = op->nvars;
    out->values = arena_alloc(a, (op->nvars ? op->nvars : 1) * sizeof(*out->values));
    if (vars && json_type(vars) != JSON_OBJECT)
        vars = NULL;
    bool ok = true;
    for (size_t i = 0; i < op->nvars; i++) {
        const gql_vardef_t *vd = &op->vars[i];
        cctx_t c = {.s = s, .a = a, .errs = errs, .var = vd};
        out->values[i] = NULL;
        const gql_type_t *t = gql_type_from_ref(s, a, vd->type);
        if (!t || !gql_is_input_type(t)) {
            gql_err_t *e =
                gql_errors_add(errs, &vd->loc, 1,
                               "Variable \"$%s\" expected value of type \"%s\" which cannot be used as an "
                               "input type.",
                               vd->name, typeref_text(a, vd->type));
            if (e)
                e->code = CODE;
            ok = false;
            continue;
        }
        const json_value_t *j = json_object_get(vars, vd->name);
        if (!j && vd->def) {
            bool given;
            out->values[i] = (gql_value_t *)coerce_literal(a, vd->def, t, NULL, &given, 0);
            continue;
        }
        if (t->kind == GK_NON_NULL && (!j || json_type(j) == JSON_NULL)) {
            gql_err_t *e = j ? gql_errors_add(errs, &vd->loc, 1,
                                              "Variable \"$%s\" of non-null type \"%s\" must not be null.",
                                              vd->name, type_text(&c, t))
                             : gql_errors_add(errs, &vd->loc, 1,
                                              "Variable \"$%s\" of required type \"%s\" was not provided.",
                                              vd->name, type_text(&c, t));
            if (e)
                e->code = CODE;
            ok = false;
            continue;
        }
        if (!j)
            continue;
        out->values[i] = coerce_json(&c, j, t);
        if (c.failed) {
            out->values[i] = NULL;
            ok = false;
        }
    }
    return ok;
}
