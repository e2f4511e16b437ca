/*
 * The type system's lookups (see types.h) and the error list every stage fills: finding named
 * types, directives, fields (with the meta-fields __typename, __schema and __type), arguments;
 * the kind predicates of the spec's section 3; printing a type as GraphQL writes it; and
 * writing the response's "errors" array.
 *
 * The meta-fields are not in any type's field list, so their definitions live here. Their
 * types must be the schema's own (__Schema, __Type, String), and a schema has nowhere to keep
 * them, so each thread keeps a few definitions keyed by the types they point at: in the server
 * there is one schema and so one entry; a unit test that builds several schemas in turn just
 * refills a slot.
 */
#include "api/graphql/types.h"
#include "core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- lookups ---- */

const gql_type_t *gql_schema_type(const gql_schema_t *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->ntypes; i++) {
        const gql_type_t *t = s->types[i];
        if (t->name && t->name[0] == name[0] && strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

const gql_directive_def_t *gql_schema_directive(const gql_schema_t *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->ndirectives; i++)
        if (strcmp(s->directives[i].name, name) == 0)
            return &s->directives[i];
    return NULL;
}

/* The meta-field definitions for one schema's __Schema, __Type and String types. */
typedef struct meta_fields {
    const gql_type_t *string, *schema, *type; /* the key */
    gql_type_t nn_string, nn_schema;
    gql_input_t name_arg;
    gql_field_t typename_f, schema_f, type_f;
} meta_fields_t;

#define META_SLOTS 4

static _Thread_local meta_fields_t meta_slots[META_SLOTS];
static _Thread_local unsigned meta_next;

/* Used when a schema lacks String (a bare test schema): __typename still has a type. */
static const gql_type_t fallback_string = {.kind = GK_SCALAR, .scalar = GSC_STRING, .name = "String"};

static const meta_fields_t *meta_for(const gql_schema_t *s)
{
    const gql_type_t *string = gql_schema_type(s, "String");
    const gql_type_t *schema = gql_schema_type(s, "__Schema");
    const gql_type_t *type = gql_schema_type(s, "__Type");
    if (!string)
        string = &fallback_string;
    for (size_t i = 0; i < META_SLOTS; i++) {
        const meta_fields_t *m = &meta_slots[i];
        if (m->string == string && m->schema == schema && m->type == type)
            return m;
    }
    meta_fields_t *m = &meta_slots[meta_next++ % META_SLOTS];
    memset(m, 0, sizeof(*m));
    m->string = string;
    m->schema = schema;
    m->type = type;
    m->nn_string = (gql_type_t){.kind = GK_NON_NULL, .of = string};
    m->nn_schema = (gql_type_t){.kind = GK_NON_NULL, .of = schema};
    m->name_arg = (gql_input_t){.name = "name", .type = &m->nn_string};
    m->typename_f = (gql_field_t){
        .name = "__typename", .description = "The name of the object's type.", .type = &m->nn_string};
    m->schema_f = (gql_field_t){.name = "__schema", .description = "The schema.", .type = &m->nn_schema};
    m->type_f = (gql_field_t){.name = "__type",
                              .description = "The type called name, or null.",
                              .type = type,
                              .args = &m->name_arg,
                              .nargs = 1};
    return m;
}

static const gql_field_t *meta_field(const gql_schema_t *s, const gql_type_t *parent, const char *name)
{
    if (strcmp(name, "__typename") == 0)
        return &meta_for(s)->typename_f;
    if (!s || parent != s->query)
        return NULL;
    if (strcmp(name, "__schema") == 0) {
        const meta_fields_t *m = meta_for(s);
        return m->schema ? &m->schema_f : NULL;
    }
    if (strcmp(name, "__type") == 0) {
        const meta_fields_t *m = meta_for(s);
        return m->type ? &m->type_f : NULL;
    }
    return NULL;
}

const gql_field_t *gql_field_lookup(const gql_schema_t *s, const gql_type_t *parent, const char *name)
{
    if (!parent || !name || !gql_is_composite(parent))
        return NULL;
    for (size_t i = 0; i < parent->nfields; i++)
        if (strcmp(parent->fields[i].name, name) == 0)
            return &parent->fields[i];
    if (name[0] == '_' && name[1] == '_')
        return meta_field(s, parent, name);
    return NULL;
}

const gql_input_t *gql_arg_lookup(const gql_input_t *args, size_t nargs, const char *name)
{
    for (size_t i = 0; i < nargs; i++)
        if (strcmp(args[i].name, name) == 0)
            return &args[i];
    return NULL;
}

const gql_type_t *gql_named_type(const gql_type_t *t)
{
    while (t && (t->kind == GK_LIST || t->kind == GK_NON_NULL))
        t = t->of;
    return t;
}

bool gql_is_leaf(const gql_type_t *t)
{
    return t && (t->kind == GK_SCALAR || t->kind == GK_ENUM);
}

bool gql_is_composite(const gql_type_t *t)
{
    return t && (t->kind == GK_OBJECT || t->kind == GK_INTERFACE || t->kind == GK_UNION);
}

bool gql_is_input_type(const gql_type_t *t)
{
    t = gql_named_type(t);
    return t && (t->kind == GK_SCALAR || t->kind == GK_ENUM || t->kind == GK_INPUT_OBJECT);
}

static bool same_named(const gql_type_t *a, const gql_type_t *b)
{
    return a == b || (a && b && a->name && b->name && strcmp(a->name, b->name) == 0);
}

bool gql_is_possible(const gql_type_t *t, const gql_type_t *obj)
{
    if (!t || !obj)
        return false;
    if (same_named(t, obj))
        return true;
    if (t->kind != GK_INTERFACE && t->kind != GK_UNION)
        return false;
    for (size_t i = 0; i < t->npossible; i++)
        if (same_named(t->possible[i], obj))
            return true;
    return false;
}

const gql_type_t *gql_type_from_ref(const gql_schema_t *s, arena_t *a, const gql_typeref_t *ref)
{
    if (!ref)
        return NULL;
    if (ref->kind == GTR_NAMED)
        return gql_schema_type(s, ref->name);
    const gql_type_t *of = gql_type_from_ref(s, a, ref->of);
    if (!of)
        return NULL;
    gql_type_t *t = arena_alloc(a, sizeof(*t));
    *t = (gql_type_t){.kind = ref->kind == GTR_LIST ? GK_LIST : GK_NON_NULL, .of = of};
    return t;
}

void gql_type_print(buf_t *b, const gql_type_t *t)
{
    if (!t) {
        buf_append_lit(b, "?");
    } else if (t->kind == GK_LIST) {
        buf_putc(b, '[');
        gql_type_print(b, t->of);
        buf_putc(b, ']');
    } else if (t->kind == GK_NON_NULL) {
        gql_type_print(b, t->of);
        buf_putc(b, '!');
    } else {
        buf_append(b, t->name, strlen(t->name));
    }
}

/* ---- errors ---- */

gql_err_t *gql_errors_add(gql_errors_t *errs, const gql_loc_t *locs, size_t nlocs, const char *fmt, ...)
{
    if (errs->n == GQL_MAX_ERRORS) {
        errs->truncated = true;
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = arena_vprintf(errs->arena, fmt, ap);
    va_end(ap);

    gql_err_t *e = &errs->e[errs->n++];
    memset(e, 0, sizeof(*e));
    e->message = msg;
    for (size_t i = 0; i < nlocs && e->nlocs < GQL_ERR_LOCS; i++)
        if (locs[i].line)
            e->locs[e->nlocs++] = locs[i];
    return e;
}

/* The path's segments, root first, into w. */
static void write_path(json_writer_t *w, const gql_path_t *p)
{
    const gql_path_t *stack[64];
    size_t n = 0;
    const gql_path_t *deeper = NULL; /* a path longer than stack[]: the rest, written first */
    for (const gql_path_t *q = p; q; q = q->parent) {
        if (n == ARRAY_LEN(stack)) {
            deeper = q;
            break;
        }
        stack[n++] = q;
    }
    if (deeper)
        write_path(w, deeper);
    while (n--) {
        if (stack[n]->key)
            json_w_str(w, stack[n]->key, strlen(stack[n]->key));
        else
            json_w_i64(w, stack[n]->index);
    }
}

void gql_errors_write(buf_t *b, const gql_errors_t *errs)
{
    json_writer_t w;
    json_writer_init(&w, b);
    json_arr_begin(&w);
    for (size_t i = 0; i < errs->n; i++) {
        const gql_err_t *e = &errs->e[i];
        json_obj_begin(&w);
        json_kv_str(&w, JSON_K("message"), e->message, strlen(e->message));
        if (e->nlocs) {
            json_w_key(&w, JSON_K("locations"));
            json_arr_begin(&w);
            for (size_t j = 0; j < e->nlocs; j++) {
                json_obj_begin(&w);
                json_kv_u64(&w, JSON_K("line"), e->locs[j].line);
                json_kv_u64(&w, JSON_K("column"), e->locs[j].col);
                json_obj_end(&w);
            }
            json_arr_end(&w);
        }
        if (e->path) {
            json_w_key(&w, JSON_K("path"));
            json_arr_begin(&w);
            write_path(&w, e->path);
            json_arr_end(&w);
        }
        if (e->code || e->field) {
            json_w_key(&w, JSON_K("extensions"));
            json_obj_begin(&w);
            if (e->code)
                json_kv_str(&w, JSON_K("code"), e->code, strlen(e->code));
            if (e->field)
                json_kv_str(&w, JSON_K("field"), e->field, strlen(e->field));
            json_obj_end(&w);
        }
        json_obj_end(&w);
    }
    json_arr_end(&w);
}

/* A JSON number's text: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?. */
bool gql_numeric_text(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
        return false;
    if (s[i] == '0')
        i++;
    else
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return false;
    }
    return i == n;
}
