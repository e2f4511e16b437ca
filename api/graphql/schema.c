/*
 * The CRM's GraphQL schema, built from the resource table (see schema.h). Built once, before
 * reactor threads start, into process-lifetime memory; read-only afterwards.
 */
#include "api/graphql/schema.h"
#include "core/common.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable array of anything, for building ---- */

typedef struct vec {
    void *v;
    size_t n, cap, size;
} vec_t;

static void *vec_push(vec_t *a)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = xrealloc(a->v, a->cap * a->size);
    }
    void *p = (char *)a->v + a->n++ * a->size;
    memset(p, 0, a->size);
    return p;
}

#define VEC(T)                                                                                               \
    {                                                                                                        \
        NULL, 0, 0, sizeof(T)                                                                                \
    }

static vec_t all_types = VEC(const gql_type_t *);
static gql_schema_t the_schema;
static bool built;

static gql_type_t *named(uint8_t kind, const char *name, const char *description)
{
    gql_type_t *t = xcalloc(1, sizeof(*t));
    t->kind = kind;
    t->name = name;
    t->description = description;
    *(const gql_type_t **)vec_push(&all_types) = t;
    return t;
}

static const gql_type_t *wrap(uint8_t kind, const gql_type_t *of)
{
    gql_type_t *t = xcalloc(1, sizeof(*t));
    t->kind = kind;
    t->of = of;
    return t;
}

static const gql_type_t *nn(const gql_type_t *t)
{
    return wrap(GK_NON_NULL, t);
}

static const gql_type_t *list_of(const gql_type_t *t)
{
    return wrap(GK_LIST, t);
}

/* [T!]! */
static const gql_type_t *nn_list_nn(const gql_type_t *t)
{
    return nn(list_of(nn(t)));
}

static gql_field_t *field(vec_t *fields, const char *name, const gql_type_t *type, uint16_t resolve,
                          const void *data, const char *description)
{
    gql_field_t *f = vec_push(fields);
    f->name = name;
    f->type = type;
    f->resolve = resolve;
    f->data = data;
    f->description = description;
    return f;
}

static void set_args(gql_field_t *f, vec_t *args)
{
    f->args = args->v;
    f->nargs = args->n;
}

static gql_input_t *input(vec_t *args, const char *name, const gql_type_t *type, const char *def,
                          const char *description)
{
    gql_input_t *a = vec_push(args);
    a->name = name;
    a->type = type;
    a->default_value = def;
    a->description = description;
    return a;
}

static void set_fields(gql_type_t *t, vec_t *fields)
{
    t->fields = fields->v;
    t->nfields = fields->n;
}

/* ---- names ---- */

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

const char *gql_camel(const char *snake)
{
    size_t n = strlen(snake);
    char *out = xmalloc(n + 1), *o = out;
    bool up = false;
    for (const char *p = snake; *p; p++) {
        if (*p == '_' && o != out) {
            up = true;
            continue;
        }
        *o++ = up ? (char)toupper((unsigned char)*p) : *p;
        up = false;
    }
    *o = '\0';
    return out;
}

/* "company" -> "Company", with a suffix. */
static const char *type_name(const char *singular, const char *suffix)
{
    const char *c = gql_camel(singular);
    char buf[128];
    snprintf(buf, sizeof(buf), "%c%s%s", toupper((unsigned char)c[0]), c + 1, suffix);
    free((void *)c);
    return xstrdup(buf);
}

/* "first_name" -> "FIRST_NAME"; NULL when a value cannot be an enum value name. */
static const char *enum_value_name(const char *v)
{
    if (!*v || !(islower((unsigned char)*v) || *v == '_'))
        return NULL;
    char *out = xstrdup(v);
    for (char *p = out; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')) {
            free(out);
            return NULL;
        }
        *p = (char)toupper((unsigned char)*p);
    }
    return out;
}

/* ---- scalars ---- */

static const gql_type_t *t_int, *t_float, *t_string, *t_boolean, *t_id, *t_datetime, *t_date, *t_decimal;

static const gql_type_t *scalar(const char *name, uint8_t which, const char *description)
{
    gql_type_t *t = named(GK_SCALAR, name, description);
    t->scalar = which;
    return t;
}

/* ---- enums of stored values: one type per value list of the resource table ---- */

typedef struct enum_map {
    const char *const *values;
    const gql_type_t *type; /* NULL: the values are not names, the field is a String */
} enum_map_t;
static vec_t enum_maps = VEC(enum_map_t);

static const char *enum_name_for(const schema_res_t *res, const schema_col_t *c);

/* The enum type of a list of stored values (named after res and c on first sight), or String
 * when the values cannot be enum value names. */
static const gql_type_t *enum_type(const char *const *values, const schema_res_t *res, const schema_col_t *c)
{
    for (size_t i = 0; i < enum_maps.n; i++) {
        enum_map_t *m = (enum_map_t *)enum_maps.v + i;
        if (m->values == values)
            return m->type ? m->type : t_string;
    }
    enum_map_t *m = vec_push(&enum_maps);
    m->values = values;
    vec_t vals = VEC(gql_enum_value_t);
    for (const char *const *v = values; *v; v++) {
        const char *nm = enum_value_name(*v);
        if (!nm) {
            free(vals.v);
            return t_string;
        }
        gql_enum_value_t *ev = vec_push(&vals);
        ev->name = nm;
        ev->sql = *v;
    }
    gql_type_t *t = named(GK_ENUM, enum_name_for(res, c), NULL);
    t->enums = vals.v;
    t->nenums = vals.n;
    m->type = t;
    return t;
}

const char *gql_enum_sql(const gql_type_t *t, const char *name)
{
    for (size_t i = 0; i < t->nenums; i++)
        if (strcmp(t->enums[i].name, name) == 0)
            return t->enums[i].sql ? t->enums[i].sql : t->enums[i].name;
    return NULL;
}

const char *gql_enum_name(const gql_type_t *t, const char *sql, size_t n)
{
    for (size_t i = 0; i < t->nenums; i++) {
        const char *v = t->enums[i].sql ? t->enums[i].sql : t->enums[i].name;
        if (strlen(v) == n && memcmp(v, sql, n) == 0)
            return t->enums[i].name;
    }
    return NULL;
}

/* ---- resources ---- */

typedef struct res_types {
    gql_type_t *object, *connection, *edge, *sort, *create, *update;
} res_types_t;
static res_types_t rt[SR_COUNT];
static const gql_type_t *t_page_info;

static int res_index(const schema_res_t *res)
{
    return (int)(res - g_schema);
}

const gql_type_t *gql_resource_type(const schema_res_t *res)
{
    return rt[res_index(res)].object;
}

static const char *enum_name_for(const schema_res_t *res, const schema_col_t *c)
{
    char buf[64];
    const char *col = gql_camel(c->name);
    snprintf(buf, sizeof(buf), "%c%s", toupper((unsigned char)col[0]), col + 1);
    free((void *)col);
    return type_name(res->singular, buf);
}

/* The output type of a column's value. */
static const gql_type_t *column_type(const schema_res_t *res, const schema_col_t *c)
{
    const gql_type_t *t;
    if (strcmp(c->name, "id") == 0 || c->ref)
        t = t_id;
    else if (c->enums)
        t = enum_type(c->enums, res, c);
    else if (c->kind == COL_INT)
        t = t_int;
    else if (c->kind == COL_MONEY)
        t = t_decimal;
    else if (c->kind == COL_TIMESTAMP)
        t = t_datetime;
    else if (c->kind == COL_DATE)
        t = t_date;
    else if (c->kind == COL_BOOL)
        t = t_boolean;
    else
        t = t_string;
    return c->nullable ? t : nn(t);
}

/* The input type of a writable column's value (nullable: any of them may be omitted). */
static const gql_type_t *write_type(const schema_res_t *res, const schema_col_t *c)
{
    switch (c->w) {
    case W_REF:
        return t_id;
    case W_ENUM:
        return enum_type(c->enums, res, c);
    case W_MONEY:
        return t_decimal;
    case W_PERCENT:
        return t_int;
    case W_DATE:
        return t_date;
    case W_TIME:
        return t_datetime;
    default:
        return t_string;
    }
}

static const gql_type_t *filter_type(const schema_res_t *res, const schema_filter_t *f)
{
    switch (f->param.kind) {
    case PARAM_ID:
        return t_id;
    case PARAM_DATE:
        return t_date;
    case PARAM_TIME:
        return t_datetime;
    case PARAM_DECIMAL:
        return t_decimal;
    case PARAM_BOOL:
        return t_boolean;
    case PARAM_LIMIT:
        return t_int;
    case PARAM_ENUM:
        for (size_t i = 0; i < res->ncols; i++)
            if (res->cols[i].enums == f->param.enums)
                return enum_type(f->param.enums, res, &res->cols[i]);
        return t_string;
    default:
        return t_string;
    }
}

/* "company_id" -> "company"; NULL when the name has no _id suffix. */
static const char *ref_field_name(const char *col)
{
    size_t n = strlen(col);
    if (n < 4 || strcmp(col + n - 3, "_id") != 0)
        return NULL;
    char *s = xstrndup(col, n - 3);
    const char *c = gql_camel(s);
    free(s);
    return c;
}

static bool has_field(const vec_t *fields, const char *name)
{
    for (size_t i = 0; i < fields->n; i++)
        if (strcmp(((gql_field_t *)fields->v)[i].name, name) == 0)
            return true;
    return false;
}

/* Sort enum: NAME_ASC, NAME_DESC, ... with the REST ?sort= value as sql. */
static gql_type_t *sort_enum(const schema_res_t *res)
{
    vec_t vals = VEC(gql_enum_value_t);
    for (size_t i = 0; i < res->nsorts; i++) {
        for (int desc = 0; desc < 2; desc++) {
            gql_enum_value_t *ev = vec_push(&vals);
            char buf[96];
            const char *u = enum_value_name(res->sorts[i].name);
            snprintf(buf, sizeof(buf), "%s_%s", u, desc ? "DESC" : "ASC");
            free((void *)u);
            ev->name = xstrdup(buf);
            snprintf(buf, sizeof(buf), "%s%s", desc ? "-" : "", res->sorts[i].name);
            ev->sql = xstrdup(buf);
        }
    }
    gql_type_t *t = named(GK_ENUM, type_name(res->singular, "Sort"), NULL);
    t->enums = vals.v;
    t->nenums = vals.n;
    return t;
}

#define MAX_LIST "200"

static void list_args(vec_t *args, const schema_res_t *res, bool connection)
{
    if (connection) {
        input(args, "first", t_int, NULL,
              "Rows from the start (or after `after`): 0 to " MAX_LIST ", default 50.");
        input(args, "after", t_string, NULL, "A cursor of this listing: rows after it.");
        input(args, "last", t_int, NULL, "Rows from the end (or before `before`): 0 to " MAX_LIST ".");
        input(args, "before", t_string, NULL, "A cursor of this listing: rows before it.");
    } else {
        input(args, "limit", t_int, "50", "At most this many rows: 0 to " MAX_LIST ".");
    }
    input(args, "orderBy", rt[res_index(res)].sort, NULL,
          res->search ? "Default: the resource's default order, or relevance with `search`." : NULL);
    if (!connection)
        return;
    for (size_t i = 0; i < res->nfilters; i++)
        input(args, res->filters[i].param.name, filter_type(res, &res->filters[i]), NULL, NULL);
    if (res->search)
        input(args, "search", t_string, NULL, "Full-text search (websearch syntax); ordered by relevance.");
    if (res->nstats)
        input(args, "includeStats", t_boolean, "false",
              "Accepted as in REST; the statistics fields are computed whenever selected.");
}

static void build_resource_shells(void)
{
    for (int i = 0; i < SR_COUNT; i++) {
        const schema_res_t *res = &g_schema[i];
        rt[i].object = named(GK_OBJECT, type_name(res->singular, ""), NULL);
        rt[i].object->data = res;
        rt[i].sort = sort_enum(res);
    }
}

static void build_resource(int i)
{
    const schema_res_t *res = &g_schema[i];
    res_types_t *r = &rt[i];
    vec_t fields = VEC(gql_field_t);
    for (size_t k = 0; k < res->ncols; k++) {
        const schema_col_t *c = &res->cols[k];
        field(&fields, gql_camel(c->name), column_type(res, c), GR_COLUMN, c, NULL);
    }
    for (size_t k = 0; k < res->ncols; k++) {
        const schema_col_t *c = &res->cols[k];
        const char *name = c->ref ? ref_field_name(c->name) : NULL;
        if (!name || has_field(&fields, name))
            continue;
        const gql_type_t *target = gql_resource_type(schema_by_table(c->ref));
        field(&fields, name, c->nullable ? target : nn(target), GR_TO_ONE, c, NULL);
    }
    for (size_t k = 0; k < res->nstats; k++) {
        const schema_stat_t *s = &res->stats[k];
        field(&fields, gql_camel(s->name), nn(s->kind == COL_MONEY ? t_decimal : t_int), GR_STAT, s, NULL);
    }
    /* the resources whose references point here */
    for (int j = 0; j < SR_COUNT; j++) {
        const schema_res_t *other = &g_schema[j];
        for (size_t k = 0; k < other->ncols; k++) {
            const schema_col_t *c = &other->cols[k];
            const char *name = gql_camel(other->plural);
            if (!c->ref || strcmp(c->ref, res->table) != 0 || has_field(&fields, name)) {
                free((void *)name);
                continue;
            }
            gql_rel_t *rel = xcalloc(1, sizeof(*rel));
            rel->res = other;
            rel->fk = c->name;
            gql_field_t *f = field(&fields, name, nn_list_nn(rt[j].object), GR_TO_MANY, rel, NULL);
            vec_t args = VEC(gql_input_t);
            list_args(&args, other, false);
            set_args(f, &args);
        }
    }
    set_fields(r->object, &fields);

    /* edge and connection */
    r->edge = named(GK_OBJECT, type_name(res->singular, "Edge"), NULL);
    vec_t ef = VEC(gql_field_t);
    field(&ef, "node", nn(r->object), GR_NODE, res, NULL);
    field(&ef, "cursor", nn(t_string), GR_CURSOR, res, "Where this row is in the listing, for after/before.");
    set_fields(r->edge, &ef);
    r->connection = named(GK_OBJECT, type_name(res->singular, "Connection"), NULL);
    vec_t cf = VEC(gql_field_t);
    field(&cf, "edges", nn_list_nn(r->edge), GR_EDGES, res, NULL);
    field(&cf, "nodes", nn_list_nn(r->object), GR_NODES, res, NULL);
    field(&cf, "pageInfo", nn(t_page_info), GR_PAGE_INFO, res, NULL);
    field(&cf, "totalCount", nn(t_int), GR_TOTAL, res,
          "Rows matching the filters and search, on every page.");
    set_fields(r->connection, &cf);

    /* write inputs */
    if (!res->writable)
        return;
    r->create = named(GK_INPUT_OBJECT, type_name(res->singular, "CreateInput"), NULL);
    r->update = named(GK_INPUT_OBJECT, type_name(res->singular, "UpdateInput"), NULL);
    vec_t ci = VEC(gql_input_t), ui = VEC(gql_input_t);
    for (size_t k = 0; k < res->ncols; k++) {
        const schema_col_t *c = &res->cols[k];
        if (c->w == W_NONE)
            continue;
        const gql_type_t *t = write_type(res, c);
        input(&ci, gql_camel(c->name), c->required ? nn(t) : t, NULL, NULL);
        input(&ui, gql_camel(c->name), t, NULL, NULL);
    }
    r->create->inputs = ci.v;
    r->create->ninputs = ci.n;
    r->update->inputs = ui.v;
    r->update->ninputs = ui.n;
}

/* ---- aggregates, projected from their REST bodies ---- */

typedef struct member_spec {
    const char *member; /* REST member (dotted path from the body for the root type) */
    const gql_type_t *type;
} member_spec_t;

static gql_type_t *projected(const char *name, const member_spec_t *m, size_t n, const char *description)
{
    gql_type_t *t = named(GK_OBJECT, name, description);
    vec_t fields = VEC(gql_field_t);
    for (size_t i = 0; i < n; i++) {
        const char *last = strrchr(m[i].member, '.');
        field(&fields, gql_camel(last ? last + 1 : m[i].member), m[i].type, GR_MEMBER, m[i].member, NULL);
    }
    set_fields(t, &fields);
    return t;
}

static gql_field_t *member_rows(vec_t *fields, const char *name, const char *member, const schema_res_t *res)
{
    gql_member_rows_t *mr = xcalloc(1, sizeof(*mr));
    mr->member = member;
    mr->res = res;
    return field(fields, name, nn_list_nn(gql_resource_type(res)), GR_MEMBER_ROWS, mr, NULL);
}

static const gql_type_t *t_dashboard, *t_pipeline_stats;

static void build_aggregates(void)
{
    const gql_type_t *i = nn(t_int), *d = nn(t_decimal), *s = nn(t_string), *id = nn(t_id);
    member_spec_t deals[] = {{"total_deals", i},
                             {"open_deals", i},
                             {"pipeline_value", d},
                             {"weighted_value", d},
                             {"won_value_30d", d}};
    member_spec_t acts[] = {{"today_activities", i}, {"week_activities", i}};
    member_spec_t comps[] = {{"total_companies", i}, {"companies_with_deals", i}};
    member_spec_t pipe[] = {{"stage_id", id}, {"name", s}, {"color", s}, {"deal_count", i}, {"value", d}};
    const gql_type_t *t_deals = projected("DealsOverview", deals, ARRAY_LEN(deals), NULL);
    const gql_type_t *t_acts =
        projected("ActivitiesOverview", acts, ARRAY_LEN(acts), "Activities today and this week (UTC).");
    const gql_type_t *t_comps = projected("CompaniesOverview", comps, ARRAY_LEN(comps), NULL);
    const gql_type_t *t_pipe = projected("PipelineStageSummary", pipe, ARRAY_LEN(pipe), NULL);
    member_spec_t over[] = {{"deals", nn(t_deals)},
                            {"activities", nn(t_acts)},
                            {"companies", nn(t_comps)},
                            {"pipeline", nn_list_nn(t_pipe)}};
    const gql_type_t *t_over = projected("DashboardOverview", over, ARRAY_LEN(over), NULL);
    gql_type_t *t_recent = named(GK_OBJECT, "DashboardRecent", NULL);
    vec_t rf = VEC(gql_field_t);
    member_rows(&rf, "activities", "activities", &g_schema[SR_ACTIVITIES])->description =
        "The last 10 activities.";
    member_rows(&rf, "tasks", "tasks", &g_schema[SR_TASKS])->description =
        "The next 5 open tasks by due date.";
    set_fields(t_recent, &rf);
    member_spec_t dash[] = {{"data.overview", nn(t_over)},
                            {"data.recent", nn(t_recent)},
                            {"metadata.generated_at", nn(t_datetime)}};
    t_dashboard = projected("Dashboard", dash, ARRAY_LEN(dash), "GET /api/dashboard.");

    const gql_type_t *f = nn(t_float);
    member_spec_t stage[] = {{"stage_id", id},  {"name", s},        {"position", i},
                             {"deal_count", i}, {"total_value", d}, {"weighted_value", d},
                             {"avg_value", d},  {"avg_age_days", f}};
    member_spec_t totals[] = {{"deal_count", i}, {"total_value", d}, {"weighted_value", d}, {"win_rate", f}};
    const gql_type_t *t_stage = projected("PipelineStageStats", stage, ARRAY_LEN(stage), NULL);
    const gql_type_t *t_totals = projected("PipelineTotals", totals, ARRAY_LEN(totals),
                                           "winRate: won / (won + lost) over closed deals, 0 when none.");
    member_spec_t ps[] = {{"data.stages", nn_list_nn(t_stage)}, {"data.totals", nn(t_totals)}};
    t_pipeline_stats = projected("PipelineStats", ps, ARRAY_LEN(ps), "GET /api/deals/pipeline-stats.");
}

/* ---- introspection types (spec section 4.5) ---- */

static const char *const type_kinds[] = {"SCALAR", "OBJECT",       "INTERFACE", "UNION",
                                         "ENUM",   "INPUT_OBJECT", "LIST",      "NON_NULL"};
static const char *const directive_locations[] = {"QUERY",
                                                  "MUTATION",
                                                  "SUBSCRIPTION",
                                                  "FIELD",
                                                  "FRAGMENT_DEFINITION",
                                                  "FRAGMENT_SPREAD",
                                                  "INLINE_FRAGMENT",
                                                  "VARIABLE_DEFINITION",
                                                  "SCHEMA",
                                                  "SCALAR",
                                                  "OBJECT",
                                                  "FIELD_DEFINITION",
                                                  "ARGUMENT_DEFINITION",
                                                  "INTERFACE",
                                                  "UNION",
                                                  "ENUM",
                                                  "ENUM_VALUE",
                                                  "INPUT_OBJECT",
                                                  "INPUT_FIELD_DEFINITION"};

static gql_type_t *plain_enum(const char *name, const char *const *names, size_t n)
{
    gql_type_t *t = named(GK_ENUM, name, NULL);
    gql_enum_value_t *v = xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i].name = names[i];
    t->enums = v;
    t->nenums = n;
    return t;
}

static void deprecated_arg(gql_field_t *f)
{
    vec_t a = VEC(gql_input_t);
    input(&a, "includeDeprecated", t_boolean, "false", NULL);
    set_args(f, &a);
}

static void build_introspection(void)
{
    gql_type_t *schema = named(GK_OBJECT, "__Schema", NULL);
    gql_type_t *type = named(GK_OBJECT, "__Type", NULL);
    gql_type_t *fieldt = named(GK_OBJECT, "__Field", NULL);
    gql_type_t *inputv = named(GK_OBJECT, "__InputValue", NULL);
    gql_type_t *enumv = named(GK_OBJECT, "__EnumValue", NULL);
    gql_type_t *dir = named(GK_OBJECT, "__Directive", NULL);
    gql_type_t *kind = plain_enum("__TypeKind", type_kinds, ARRAY_LEN(type_kinds));
    gql_type_t *loc = plain_enum("__DirectiveLocation", directive_locations, ARRAY_LEN(directive_locations));
    const gql_type_t *s = t_string, *ns = nn(t_string), *nb = nn(t_boolean);

    vec_t f = VEC(gql_field_t);
    field(&f, "description", s, 0, NULL, NULL);
    field(&f, "types", nn_list_nn(type), 0, NULL, NULL);
    field(&f, "queryType", nn(type), 0, NULL, NULL);
    field(&f, "mutationType", type, 0, NULL, NULL);
    field(&f, "subscriptionType", type, 0, NULL, NULL);
    field(&f, "directives", nn_list_nn(dir), 0, NULL, NULL);
    set_fields(schema, &f);

    f = (vec_t)VEC(gql_field_t);
    field(&f, "kind", nn(kind), 0, NULL, NULL);
    field(&f, "name", s, 0, NULL, NULL);
    field(&f, "description", s, 0, NULL, NULL);
    field(&f, "specifiedByURL", s, 0, NULL, NULL);
    deprecated_arg(field(&f, "fields", list_of(nn(fieldt)), 0, NULL, NULL));
    field(&f, "interfaces", list_of(nn(type)), 0, NULL, NULL);
    field(&f, "possibleTypes", list_of(nn(type)), 0, NULL, NULL);
    deprecated_arg(field(&f, "enumValues", list_of(nn(enumv)), 0, NULL, NULL));
    deprecated_arg(field(&f, "inputFields", list_of(nn(inputv)), 0, NULL, NULL));
    field(&f, "ofType", type, 0, NULL, NULL);
    field(&f, "isOneOf", t_boolean, 0, NULL, NULL);
    set_fields(type, &f);

    f = (vec_t)VEC(gql_field_t);
    field(&f, "name", ns, 0, NULL, NULL);
    field(&f, "description", s, 0, NULL, NULL);
    deprecated_arg(field(&f, "args", nn_list_nn(inputv), 0, NULL, NULL));
    field(&f, "type", nn(type), 0, NULL, NULL);
    field(&f, "isDeprecated", nb, 0, NULL, NULL);
    field(&f, "deprecationReason", s, 0, NULL, NULL);
    set_fields(fieldt, &f);

    f = (vec_t)VEC(gql_field_t);
    field(&f, "name", ns, 0, NULL, NULL);
    field(&f, "description", s, 0, NULL, NULL);
    field(&f, "type", nn(type), 0, NULL, NULL);
    field(&f, "defaultValue", s, 0, NULL, NULL);
    field(&f, "isDeprecated", nb, 0, NULL, NULL);
    field(&f, "deprecationReason", s, 0, NULL, NULL);
    set_fields(inputv, &f);

    f = (vec_t)VEC(gql_field_t);
    field(&f, "name", ns, 0, NULL, NULL);
    field(&f, "description", s, 0, NULL, NULL);
    field(&f, "isDeprecated", nb, 0, NULL, NULL);
    field(&f, "deprecationReason", s, 0, NULL, NULL);
    set_fields(enumv, &f);

    f = (vec_t)VEC(gql_field_t);
    field(&f, "name", ns, 0, NULL, NULL);
    field(&f, "description", s, 0, NULL, NULL);
    field(&f, "locations", nn_list_nn(loc), 0, NULL, NULL);
    deprecated_arg(field(&f, "args", nn_list_nn(inputv), 0, NULL, NULL));
    field(&f, "isRepeatable", nb, 0, NULL, NULL);
    set_fields(dir, &f);
}

static const char *const loc_exec[] = {"FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"};
static const char *const loc_deprecated[] = {"FIELD_DEFINITION", "ARGUMENT_DEFINITION",
                                             "INPUT_FIELD_DEFINITION", "ENUM_VALUE"};
static const char *const loc_scalar[] = {"SCALAR"};

static void build_directives(void)
{
    gql_directive_def_t *d = xcalloc(4, sizeof(*d));
    gql_input_t *if_arg = xcalloc(1, sizeof(*if_arg));
    *if_arg = (gql_input_t){"if", NULL, nn(t_boolean), NULL};
    d[0] = (gql_directive_def_t){"include", "Includes this field or fragment only when `if` is true.",
                                 loc_exec,  ARRAY_LEN(loc_exec),
                                 if_arg,    1,
                                 false};
    d[1] = (gql_directive_def_t){
        "skip", "Skips this field or fragment when `if` is true.", loc_exec, ARRAY_LEN(loc_exec), if_arg, 1,
        false};
    gql_input_t *reason = xcalloc(1, sizeof(*reason));
    *reason = (gql_input_t){"reason", NULL, t_string, "\"No longer supported\""};
    d[2] = (gql_directive_def_t){"deprecated",   "Marks an element of the schema as no longer supported.",
                                 loc_deprecated, ARRAY_LEN(loc_deprecated),
                                 reason,         1,
                                 false};
    gql_input_t *url = xcalloc(1, sizeof(*url));
    *url = (gql_input_t){"url", NULL, nn(t_string), NULL};
    d[3] =
        (gql_directive_def_t){"specifiedBy", "Exposes a URL that specifies the behaviour of a custom scalar.",
                              loc_scalar,    ARRAY_LEN(loc_scalar),
                              url,           1,
                              false};
    the_schema.directives = d;
    the_schema.ndirectives = 4;
}

/* ---- roots ---- */

static void build_query(void)
{
    gql_type_t *q = named(GK_OBJECT, "Query", "Reads. Every row belongs to the API key's organization.");
    vec_t f = VEC(gql_field_t);
    for (int i = 0; i < SR_COUNT; i++) {
        const schema_res_t *res = &g_schema[i];
        vec_t a = VEC(gql_input_t);
        input(&a, "id", nn(t_id), NULL, NULL);
        set_args(field(&f, gql_camel(res->singular), rt[i].object, GR_Q_ONE, res, NULL), &a);
        a = (vec_t)VEC(gql_input_t);
        if (i == SR_STAGES) { /* the pipeline's few stages: all of them, by position */
            field(&f, gql_camel(res->plural), nn_list_nn(rt[i].object), GR_Q_ALL, res, "By position.");
            continue;
        }
        list_args(&a, res, true);
        set_args(field(&f, gql_camel(res->plural), nn(rt[i].connection), GR_Q_LIST, res, NULL), &a);
    }
    vec_t a = VEC(gql_input_t);
    input(&a, "ownerId", t_id, NULL, "Only this owner's figures; default: the whole organization.");
    set_args(field(&f, "dashboard", nn(t_dashboard), GR_Q_REST, "/api/dashboard", NULL), &a);
    a = (vec_t)VEC(gql_input_t);
    input(&a, "ownerId", t_id, NULL, NULL);
    set_args(field(&f, "pipelineStats", nn(t_pipeline_stats), GR_Q_REST, "/api/deals/pipeline-stats", NULL),
             &a);
    set_fields(q, &f);
    the_schema.query = q;
}

static void build_mutation(void)
{
    gql_type_t *m =
        named(GK_OBJECT, "Mutation",
              "Writes, run as the REST writes: the same validation, Idempotency-Key and invalidation.");
    vec_t f = VEC(gql_field_t);
    for (int i = 0; i < SR_COUNT; i++) {
        const schema_res_t *res = &g_schema[i];
        if (!res->writable)
            continue;
        const char *tn = type_name(res->singular, "");
        char name[96];
        vec_t a = VEC(gql_input_t);
        input(&a, "input", nn(rt[i].create), NULL, NULL);
        snprintf(name, sizeof(name), "create%s", tn);
        set_args(field(&f, xstrdup(name), rt[i].object, GR_M_CREATE, res, NULL), &a);
        a = (vec_t)VEC(gql_input_t);
        input(&a, "id", nn(t_id), NULL, NULL);
        input(&a, "input", nn(rt[i].update), NULL, "Members given are changed; null clears a nullable one.");
        snprintf(name, sizeof(name), "update%s", tn);
        set_args(field(&f, xstrdup(name), rt[i].object, GR_M_UPDATE, res, NULL), &a);
        a = (vec_t)VEC(gql_input_t);
        input(&a, "id", nn(t_id), NULL, NULL);
        if (res->cascade)
            input(&a, "cascade", t_boolean, "false",
                  "Also delete its deals (refused otherwise when it has some).");
        snprintf(name, sizeof(name), "delete%s", tn);
        set_args(field(&f, xstrdup(name), t_id, GR_M_DELETE, res, "The id of the deleted row."), &a);
        free((void *)tn);
    }
    vec_t a = VEC(gql_input_t);
    input(&a, "id", nn(t_id), NULL, NULL);
    input(&a, "stageId", nn(t_id), NULL, NULL);
    set_args(field(&f, "moveDealStage", rt[SR_DEALS].object, GR_M_MOVE_STAGE, &g_schema[SR_DEALS],
                   "Moves a deal to a stage; its probability and status follow the stage."),
             &a);
    a = (vec_t)VEC(gql_input_t);
    input(&a, "id", nn(t_id), NULL, NULL);
    set_args(field(&f, "completeTask", rt[SR_TASKS].object, GR_M_COMPLETE_TASK, &g_schema[SR_TASKS],
                   "Marks a task done."),
             &a);
    set_fields(m, &f);
    the_schema.mutation = m;
}

void gql_schema_init(void)
{
    if (built)
        return;
    built = true;
    schema_init();
    t_int = scalar("Int", GSC_INT, NULL);
    t_float = scalar("Float", GSC_FLOAT, NULL);
    t_string = scalar("String", GSC_STRING, NULL);
    t_boolean = scalar("Boolean", GSC_BOOLEAN, NULL);
    t_id = scalar("ID", GSC_ID, "A row id: a 64-bit integer, written as a string.");
    t_datetime = scalar("DateTime", GSC_DATETIME, "An RFC 3339 timestamp in UTC: 2026-01-17T10:30:00Z.");
    t_date = scalar("Date", GSC_DATE, "A calendar date: 2026-01-17.");
    t_decimal = scalar("Decimal", GSC_DECIMAL, "Money: a JSON number with at most 2 decimals.");

    gql_type_t *pi = named(GK_OBJECT, "PageInfo", NULL);
    vec_t f = VEC(gql_field_t);
    field(&f, "hasNextPage", nn(t_boolean), GR_HAS_NEXT, NULL, NULL);
    field(&f, "hasPreviousPage", nn(t_boolean), GR_HAS_PREV, NULL, NULL);
    field(&f, "startCursor", t_string, GR_START_CURSOR, NULL, NULL);
    field(&f, "endCursor", t_string, GR_END_CURSOR, NULL, NULL);
    set_fields(pi, &f);
    t_page_info = pi;

    build_resource_shells();
    for (int i = 0; i < SR_COUNT; i++)
        build_resource(i);
    build_aggregates();
    build_query();
    build_mutation();
    build_introspection();
    build_directives();
    the_schema.types = all_types.v;
    the_schema.ntypes = all_types.n;
}

const gql_schema_t *gql_schema(void)
{
    gql_schema_init();
    return &the_schema;
}
