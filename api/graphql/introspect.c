/*
 * Introspection (see introspect.h). Each introspection type has a writer for one of its
 * fields; object() walks the collected selection and calls it per response key.
 */
#include "api/graphql/introspect.h"
#include "core/json.h"

#include <string.h>

static const char *const kind_names[] = {"SCALAR", "OBJECT",       "INTERFACE", "UNION",
                                         "ENUM",   "INPUT_OBJECT", "LIST",      "NON_NULL"};

/* Writes the value of field f (its name: f->nodes[0]->name) of obj. */
typedef void (*field_fn)(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                         buf_t *b);

static void str_or_null(buf_t *b, const char *s)
{
    if (s)
        json_str(b, s, strlen(s));
    else
        json_null(b);
}

/* obj (or null) as an object of introspection type tname, the selection of f. */
static void object(const gql_run_t *run, const gql_cfield_t *f, const char *tname, field_fn w,
                   const void *obj, buf_t *b)
{
    if (!obj) {
        json_null(b);
        return;
    }
    gql_cset_t fs = {0};
    gql_collect_sub(run, f, gql_schema_type(run->s, tname), &fs);
    buf_putc(b, '{');
    for (size_t i = 0; i < fs.n; i++) {
        const char *name = fs.f[i].nodes[0]->name;
        if (i)
            buf_putc(b, ',');
        json_key_str(b, fs.f[i].key, strlen(fs.f[i].key));
        if (strcmp(name, "__typename") == 0)
            json_str(b, tname, strlen(tname));
        else
            w(run, &fs.f[i], name, obj, b);
    }
    buf_putc(b, '}');
}

static void type_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                       buf_t *b);
static void field_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                        buf_t *b);
static void input_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                        buf_t *b);
static void enum_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                       buf_t *b);
static void directive_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                            buf_t *b);

static void type_obj(const gql_run_t *run, const gql_cfield_t *f, const gql_type_t *t, buf_t *b)
{
    object(run, f, "__Type", type_field, t, b);
}

static void input_list(const gql_run_t *run, const gql_cfield_t *f, const gql_input_t *in, size_t n, buf_t *b)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(b, ',');
        object(run, f, "__InputValue", input_field, &in[i], b);
    }
    buf_putc(b, ']');
}

static void type_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                       buf_t *b)
{
    const gql_type_t *t = obj;
    bool has_fields = t->kind == GK_OBJECT || t->kind == GK_INTERFACE;
    if (strcmp(name, "kind") == 0) {
        json_str(b, kind_names[t->kind], strlen(kind_names[t->kind]));
    } else if (strcmp(name, "name") == 0) {
        str_or_null(b, t->name);
    } else if (strcmp(name, "description") == 0) {
        str_or_null(b, t->description);
    } else if (strcmp(name, "fields") == 0 && has_fields) {
        buf_putc(b, '[');
        for (size_t i = 0; i < t->nfields; i++) {
            if (i)
                buf_putc(b, ',');
            object(run, f, "__Field", field_field, &t->fields[i], b);
        }
        buf_putc(b, ']');
    } else if (strcmp(name, "interfaces") == 0 && has_fields) {
        buf_putc(b, '[');
        for (size_t i = 0; i < t->ninterfaces; i++) {
            if (i)
                buf_putc(b, ',');
            type_obj(run, f, t->interfaces[i], b);
        }
        buf_putc(b, ']');
    } else if (strcmp(name, "possibleTypes") == 0 && (t->kind == GK_INTERFACE || t->kind == GK_UNION)) {
        buf_putc(b, '[');
        for (size_t i = 0; i < t->npossible; i++) {
            if (i)
                buf_putc(b, ',');
            type_obj(run, f, t->possible[i], b);
        }
        buf_putc(b, ']');
    } else if (strcmp(name, "enumValues") == 0 && t->kind == GK_ENUM) {
        buf_putc(b, '[');
        for (size_t i = 0; i < t->nenums; i++) {
            if (i)
                buf_putc(b, ',');
            object(run, f, "__EnumValue", enum_field, &t->enums[i], b);
        }
        buf_putc(b, ']');
    } else if (strcmp(name, "inputFields") == 0 && t->kind == GK_INPUT_OBJECT) {
        input_list(run, f, t->inputs, t->ninputs, b);
    } else if (strcmp(name, "ofType") == 0 && t->of) {
        type_obj(run, f, t->of, b);
    } else if (strcmp(name, "isOneOf") == 0 && t->kind == GK_INPUT_OBJECT) {
        json_bool(b, false);
    } else {
        json_null(b); /* specifiedByURL, and the fields that do not apply to this kind */
    }
}

static void field_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                        buf_t *b)
{
    const gql_field_t *fd = obj;
    if (strcmp(name, "name") == 0)
        json_str(b, fd->name, strlen(fd->name));
    else if (strcmp(name, "description") == 0)
        str_or_null(b, fd->description);
    else if (strcmp(name, "args") == 0)
        input_list(run, f, fd->args, fd->nargs, b);
    else if (strcmp(name, "type") == 0)
        type_obj(run, f, fd->type, b);
    else if (strcmp(name, "isDeprecated") == 0)
        json_bool(b, fd->deprecation_reason != NULL);
    else
        str_or_null(b, fd->deprecation_reason);
}

static void input_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                        buf_t *b)
{
    const gql_input_t *in = obj;
    if (strcmp(name, "name") == 0)
        json_str(b, in->name, strlen(in->name));
    else if (strcmp(name, "description") == 0)
        str_or_null(b, in->description);
    else if (strcmp(name, "type") == 0)
        type_obj(run, f, in->type, b);
    else if (strcmp(name, "defaultValue") == 0)
        str_or_null(b, in->default_value);
    else if (strcmp(name, "isDeprecated") == 0)
        json_bool(b, false);
    else
        json_null(b);
}

static void enum_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                       buf_t *b)
{
    (void)run, (void)f;
    const gql_enum_value_t *ev = obj;
    if (strcmp(name, "name") == 0)
        json_str(b, ev->name, strlen(ev->name));
    else if (strcmp(name, "description") == 0)
        str_or_null(b, ev->description);
    else if (strcmp(name, "isDeprecated") == 0)
        json_bool(b, ev->deprecation_reason != NULL);
    else
        str_or_null(b, ev->deprecation_reason);
}

static void directive_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                            buf_t *b)
{
    const gql_directive_def_t *d = obj;
    if (strcmp(name, "name") == 0) {
        json_str(b, d->name, strlen(d->name));
    } else if (strcmp(name, "description") == 0) {
        str_or_null(b, d->description);
    } else if (strcmp(name, "locations") == 0) {
        buf_putc(b, '[');
        for (size_t i = 0; i < d->nlocations; i++) {
            if (i)
                buf_putc(b, ',');
            json_str(b, d->locations[i], strlen(d->locations[i]));
        }
        buf_putc(b, ']');
    } else if (strcmp(name, "args") == 0) {
        input_list(run, f, d->args, d->nargs, b);
    } else {
        json_bool(b, d->repeatable);
    }
}

static void schema_field(const gql_run_t *run, const gql_cfield_t *f, const char *name, const void *obj,
                         buf_t *b)
{
    const gql_schema_t *s = obj;
    if (strcmp(name, "description") == 0) {
        str_or_null(b, s->description);
    } else if (strcmp(name, "types") == 0) {
        buf_putc(b, '[');
        for (size_t i = 0; i < s->ntypes; i++) {
            if (i)
                buf_putc(b, ',');
            type_obj(run, f, s->types[i], b);
        }
        buf_putc(b, ']');
    } else if (strcmp(name, "queryType") == 0) {
        type_obj(run, f, s->query, b);
    } else if (strcmp(name, "mutationType") == 0) {
        type_obj(run, f, s->mutation, b);
    } else if (strcmp(name, "subscriptionType") == 0) {
        type_obj(run, f, s->subscription, b);
    } else {
        buf_putc(b, '[');
        for (size_t i = 0; i < s->ndirectives; i++) {
            if (i)
                buf_putc(b, ',');
            object(run, f, "__Directive", directive_field, &s->directives[i], b);
        }
        buf_putc(b, ']');
    }
}

void gql_introspect(const gql_run_t *run, const gql_cfield_t *f, buf_t *b)
{
    if (strcmp(f->nodes[0]->name, "__schema") == 0) {
        object(run, f, "__Schema", schema_field, run->s, b);
        return;
    }
    const gql_value_t *name = gql_cfield_arg(run, f, "name");
    const gql_type_t *t = name && name->kind == GV_STRING ? gql_schema_type(run->s, name->s) : NULL;
    type_obj(run, f, t, b);
}
