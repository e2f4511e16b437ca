/*
 * The resource table (see schema.h). The SQL types and checks mirror sql/migrations; the read
 * order of columns is the order of the JSON members, and the writable columns, in that order,
 * are the parameters of the write statements.
 */
#include "api/schema.h"
#include "api/cursor.h"
#include "cache/lru.h"
#include "core/buf.h"
#include "core/common.h"

#include <stdlib.h>
#include <string.h>

static const char *const size_enum[] = {"1-10", "11-50", "51-200", "201-1000", "1000+", NULL};
static const char *const deal_status_enum[] = {"open", "won", "lost", NULL};
static const char *const task_status_enum[] = {"open", "done", NULL};
static const char *const priority_enum[] = {"low", "normal", "high", NULL};
static const char *const activity_type_enum[] = {"call", "email", "meeting", "note", "demo", NULL};
static const char *const role_enum[] = {"member", "admin", NULL};
static const char *const stage_kind_enum[] = {"open", "won", "lost", NULL};

/* ---- column shapes ---- */

/* COL(name, SQL type, JSON kind, nullable, more designated members) */
#define COL(n, type, k, null, ...)                                                                           \
    {                                                                                                        \
        .name = n, .sql_type = type, .kind = k, .nullable = null, __VA_ARGS__                                \
    }
#define C_ID      COL("id", "bigint", COL_INT, false)
#define C_CREATED COL("created_at", "timestamptz", COL_TIMESTAMP, false)
#define C_UPDATED COL("updated_at", "timestamptz", COL_TIMESTAMP, false)
/* a writable reference; nullable unless required */
#define C_REF(n, table, req) COL(n, "bigint", COL_INT, !(req), .ref = table, .w = W_REF, .required = req)
#define C_OWNER              C_REF("owner_id", "users", false)
/* writable single-line text of 1..max characters; nullable unless required */
#define C_TEXT(n, mx, req)      COL(n, "text", COL_TEXT, !(req), .w = W_TEXT, .required = req, .max = mx)
#define C_ENUM(n, e, req, null) COL(n, "text", COL_TEXT, null, .enums = e, .w = W_ENUM, .required = req)

/* ---- filter and sort shapes ---- */

#define F_ID(pname, col)                                                                                     \
    {                                                                                                        \
        {pname, PARAM_ID, 0, NULL}, "t." col " = ?::bigint"                                                  \
    }
#define F_OWNER F_ID("ownerId", "owner_id")
#define F_ENUM(pname, col, e)                                                                                \
    {                                                                                                        \
        {pname, PARAM_ENUM, 0, e}, "t." col " = ?::text"                                                     \
    }
#define S_TS(n)                                                                                              \
    {                                                                                                        \
        n, "t." n, NULL, "timestamptz", CURSOR_TIMESTAMP, false                                              \
    }
#define S_TEXT(n, col)                                                                                       \
    {                                                                                                        \
        n, "t." col, NULL, "text", CURSOR_TEXT, false                                                        \
    }

/* users */
static const schema_col_t user_cols[] = {
    C_ID,
    COL("name", "text", COL_TEXT, false),
    COL("email", "text", COL_TEXT, true),
    COL("role", "text", COL_TEXT, false, .enums = role_enum),
    C_CREATED,
};
static const schema_sort_t user_sorts[] = {S_TEXT("name", "name"), S_TS("created_at")};

/* stages */
static const schema_col_t stage_cols[] = {
    C_ID,
    COL("name", "text", COL_TEXT, false),
    COL("color", "text", COL_TEXT, false),
    COL("position", "integer", COL_INT, false),
    COL("probability", "smallint", COL_INT, false),
    COL("kind", "text", COL_TEXT, false, .enums = stage_kind_enum),
};
static const schema_sort_t stage_sorts[] = {
    {"position", "t.position", NULL, "integer", CURSOR_INT, false},
    S_TEXT("name", "name"),
    S_TS("created_at"),
};

/* companies */
static const schema_col_t company_cols[] = {
    C_ID,
    C_OWNER,
    C_TEXT("name", 200, true),
    COL("domain", "text", COL_TEXT, true, .w = W_TEXT, .max = 253, .unique = true),
    C_TEXT("industry", 100, false),
    C_ENUM("size", size_enum, false, true),
    C_TEXT("website", 2048, false),
    C_CREATED,
    C_UPDATED,
};
static const schema_sort_t company_sorts[] = {S_TEXT("name", "name"), S_TS("created_at"), S_TS("updated_at")};
static const schema_filter_t company_filters[] = {
    F_OWNER,
    {{"industry", PARAM_TEXT, 100, NULL}, "t.industry = ?::text"},
    F_ENUM("size", "size", size_enum),
};
static const char *const company_search[] = {"name", "domain", NULL};
static const schema_stat_t company_stats[] = {
    {"contact_count", COL_INT,
     "(SELECT count(*) FROM contacts c WHERE c.org_id = t.org_id AND c.company_id = t.id)", "contacts",
     "company_id"},
    {"deal_count", COL_INT,
     "(SELECT count(*) FROM deals d WHERE d.org_id = t.org_id AND d.company_id = t.id)", "deals",
     "company_id"},
    {"deals_value", COL_MONEY,
     "(SELECT coalesce(sum(d.value), 0) FROM deals d WHERE d.org_id = t.org_id AND d.company_id = t.id"
     " AND d.status = 'open')",
     "deals", "company_id"},
};
/* A deleted company clears the references of its deals' tasks and activities and deletes the
 * deals (only reached with ?cascade=true or when it has none), then clears its own references. */
static const schema_dep_t company_deps[] = {
    {"tasks", "deal_id", "task", "tasks", true, false},
    {"activities", "deal_id", "activity", "activities", true, false},
    {"deals", "company_id", "deal", "deals", false, true},
    {"contacts", "company_id", "contact", "contacts", false, false},
    {"tasks", "company_id", "task", "tasks", false, false},
    {"activities", "company_id", "activity", "activities", false, false},
};

/* contacts */
static const schema_col_t contact_cols[] = {
    C_ID,
    C_REF("company_id", "companies", false),
    C_OWNER,
    C_TEXT("first_name", 100, true),
    C_TEXT("last_name", 100, true),
    COL("email", "text", COL_TEXT, true, .w = W_EMAIL, .max = 320, .unique = true),
    C_TEXT("phone", 50, false),
    C_TEXT("title", 200, false),
    C_CREATED,
    C_UPDATED,
};
static const schema_sort_t contact_sorts[] = {
    {"name", "t.last_name", "t.first_name", "text", CURSOR_TEXT, false},
    S_TS("created_at"),
    S_TS("updated_at"),
};
static const schema_filter_t contact_filters[] = {F_OWNER, F_ID("companyId", "company_id")};
static const char *const contact_search[] = {"first_name", "last_name", "email", NULL};
static const schema_dep_t contact_deps[] = {
    {"deals", "contact_id", "deal", "deals", false, false},
    {"activities", "contact_id", "activity", "activities", false, false},
};

/* deals */
#define STAGE_OF(col) "(SELECT s." col " FROM stages s WHERE s.org_id = $1::bigint AND s.id = {S}::bigint)"
static const schema_col_t deal_cols[] = {
    C_ID,
    C_OWNER,
    C_REF("company_id", "companies", true),
    C_REF("contact_id", "contacts", false),
    C_TEXT("name", 200, true),
    COL("value", "numeric(14,2)", COL_MONEY, false, .w = W_MONEY, .required = true),
    C_REF("stage_id", "stages", true),
    COL("probability", "smallint", COL_INT, false, .w = W_PERCENT, .ins_default = STAGE_OF("probability"),
        .on_stage = STAGE_OF("probability")),
    COL("expected_close_date", "date", COL_DATE, true, .w = W_DATE),
    COL("status", "text", COL_TEXT, false, .enums = deal_status_enum, .w = W_ENUM,
        .ins_default = STAGE_OF("kind"), .on_stage = STAGE_OF("kind")),
    C_CREATED,
    C_UPDATED,
    COL("closed_at", "timestamptz", COL_TIMESTAMP, true),
};
static const schema_sort_t deal_sorts[] = {
    S_TEXT("name", "name"),
    S_TS("created_at"),
    S_TS("updated_at"),
    {"value", "t.value", NULL, "numeric", CURSOR_NUMERIC, false},
    {"expected_close_date", "t.expected_close_date", NULL, "date", CURSOR_TIMESTAMP, true},
};
static const schema_filter_t deal_filters[] = {
    F_OWNER,
    F_ID("stageId", "stage_id"),
    F_ENUM("status", "status", deal_status_enum),
    F_ID("companyId", "company_id"),
    {{"minValue", PARAM_DECIMAL, 0, NULL}, "t.value >= ?::numeric"},
    {{"maxValue", PARAM_DECIMAL, 0, NULL}, "t.value <= ?::numeric"},
    {{"closingAfter", PARAM_DATE, 0, NULL}, "t.expected_close_date >= ?::date"},
    {{"closingBefore", PARAM_DATE, 0, NULL}, "t.expected_close_date <= ?::date"},
};
static const char *const deal_search[] = {"name", NULL};
static const schema_embed_t deal_embeds[] = {
    {"company", "company_id", "co", {"id", "name"}},
    {"stage", "stage_id", "st", {"id", "name", "color"}},
    {"contact", "contact_id", "ct", {"id", "first_name", "last_name"}},
};
static const schema_dep_t deal_deps[] = {
    {"tasks", "deal_id", "task", "tasks", false, false},
    {"activities", "deal_id", "activity", "activities", false, false},
};

/* activities */
static const schema_col_t activity_cols[] = {
    C_ID,
    C_OWNER,
    C_REF("company_id", "companies", false),
    C_REF("contact_id", "contacts", false),
    C_REF("deal_id", "deals", false),
    C_ENUM("type", activity_type_enum, true, false),
    C_TEXT("subject", 300, true),
    COL("body", "text", COL_TEXT, true, .w = W_LONGTEXT, .max = 100000),
    COL("occurred_at", "timestamptz", COL_TIMESTAMP, false, .w = W_TIME, .required = true),
    C_CREATED,
};
static const schema_sort_t activity_sorts[] = {S_TS("created_at"), S_TS("occurred_at")};
static const schema_filter_t activity_filters[] = {
    F_OWNER,
    F_ENUM("type", "type", activity_type_enum),
    F_ID("dealId", "deal_id"),
    F_ID("companyId", "company_id"),
    F_ID("contactId", "contact_id"),
    {{"since", PARAM_TIME, 0, NULL}, "t.occurred_at >= ?::timestamptz"},
    {{"until", PARAM_TIME, 0, NULL}, "t.occurred_at < ?::timestamptz"},
};
static const char *const activity_search[] = {"subject", "body", NULL};

/* tasks */
static const schema_col_t task_cols[] = {
    C_ID,
    C_OWNER,
    C_REF("company_id", "companies", false),
    C_REF("deal_id", "deals", false),
    C_TEXT("title", 200, true),
    COL("priority", "text", COL_TEXT, false, .enums = priority_enum, .w = W_ENUM, .ins_default = "'normal'"),
    COL("status", "text", COL_TEXT, false, .enums = task_status_enum, .w = W_ENUM, .ins_default = "'open'"),
    COL("due_at", "timestamptz", COL_TIMESTAMP, false, .w = W_TIME, .required = true),
    C_CREATED,
    COL("completed_at", "timestamptz", COL_TIMESTAMP, true),
};
static const schema_sort_t task_sorts[] = {S_TEXT("name", "title"), S_TS("created_at"), S_TS("due_at")};
static const schema_filter_t task_filters[] = {
    F_OWNER,
    F_ENUM("status", "status", task_status_enum),
    {{"dueBefore", PARAM_TIME, 0, NULL}, "t.due_at < ?::timestamptz"},
    F_ID("dealId", "deal_id"),
};

#define COLS(a)    .cols = (a), .ncols = ARRAY_LEN(a)
#define SORTS(a)   .sorts = (a), .nsorts = ARRAY_LEN(a)
#define FILTERS(a) .filters = (a), .nfilters = ARRAY_LEN(a)
#define EMBEDS(a)  .embeds = (a), .nembeds = ARRAY_LEN(a)
#define STATS(a)   .stats = (a), .nstats = ARRAY_LEN(a)
#define DEPS(a)    .deps = (a), .ndeps = ARRAY_LEN(a)

schema_res_t g_schema[SR_COUNT] = {
    [SR_COMPANIES] =
        {
            .plural = "companies",
            .singular = "company",
            .table = "companies",
            COLS(company_cols),
            SORTS(company_sorts),
            .default_sort = "-created_at",
            FILTERS(company_filters),
            .search = company_search,
            STATS(company_stats),
            .writable = true,
            DEPS(company_deps),
            .cascade = true,
            .tier = CACHE_TIER_FREQUENT,
        },
    [SR_CONTACTS] =
        {
            .plural = "contacts",
            .singular = "contact",
            .table = "contacts",
            COLS(contact_cols),
            SORTS(contact_sorts),
            .default_sort = "-created_at",
            FILTERS(contact_filters),
            .search = contact_search,
            .writable = true,
            DEPS(contact_deps),
            .tier = CACHE_TIER_FREQUENT,
        },
    [SR_DEALS] =
        {
            .plural = "deals",
            .singular = "deal",
            .table = "deals",
            COLS(deal_cols),
            SORTS(deal_sorts),
            .default_sort = "-created_at",
            FILTERS(deal_filters),
            .search = deal_search,
            EMBEDS(deal_embeds),
            .writable = true,
            DEPS(deal_deps),
            .tier = CACHE_TIER_FREQUENT,
        },
    /* a bulk deal delete clears deal_id on many tasks and activities without naming them: their
     * single views also follow the org-level tag */
    [SR_ACTIVITIES] =
        {
            .plural = "activities",
            .singular = "activity",
            .table = "activities",
            COLS(activity_cols),
            SORTS(activity_sorts),
            .default_sort = "-created_at",
            FILTERS(activity_filters),
            .search = activity_search,
            .writable = true,
            .anchor = true,
            .tier = CACHE_TIER_FREQUENT,
            .row_follows_org = true,
        },
    /* tasks have no search vector: ?q= is not accepted */
    [SR_TASKS] =
        {
            .plural = "tasks",
            .singular = "task",
            .table = "tasks",
            COLS(task_cols),
            SORTS(task_sorts),
            .default_sort = "-created_at",
            FILTERS(task_filters),
            .writable = true,
            .tier = CACHE_TIER_FREQUENT,
            .row_follows_org = true,
        },
    [SR_STAGES] =
        {
            .plural = "stages",
            .singular = "stage",
            .table = "stages",
            COLS(stage_cols),
            SORTS(stage_sorts),
            .default_sort = "position",
            .tier = CACHE_TIER_STATIC,
        },
    [SR_USERS] =
        {
            .plural = "users",
            .singular = "user",
            .table = "users",
            COLS(user_cols),
            SORTS(user_sorts),
            .default_sort = "name",
            .tier = CACHE_TIER_FREQUENT,
        },
};

const schema_res_t *schema_find_n(const char *plural, size_t n)
{
    for (int i = 0; i < SR_COUNT; i++)
        if (strlen(g_schema[i].plural) == n && memcmp(g_schema[i].plural, plural, n) == 0)
            return &g_schema[i];
    return NULL;
}

const schema_res_t *schema_find(const char *plural)
{
    return schema_find_n(plural, strlen(plural));
}

const schema_res_t *schema_of_path(const char *path, const char **rest)
{
    if (strncmp(path, "/api/", 5) != 0)
        return NULL;
    const char *p = path + 5, *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (rest)
        *rest = p + n;
    return schema_find_n(p, n);
}

const schema_res_t *schema_by_table(const char *table)
{
    for (int i = 0; i < SR_COUNT; i++)
        if (strcmp(g_schema[i].table, table) == 0)
            return &g_schema[i];
    return NULL;
}

const schema_col_t *schema_col(const schema_res_t *res, const char *name)
{
    for (size_t i = 0; i < res->ncols; i++)
        if (strcmp(res->cols[i].name, name) == 0)
            return &res->cols[i];
    return NULL;
}

const schema_res_t *schema_embed_target(const schema_res_t *res, const schema_embed_t *em)
{
    return schema_by_table(schema_col(res, em->fk)->ref); /* both checked by schema_init */
}

const schema_res_t *schema_stats_parent(const schema_res_t *res, const char **fk)
{
    for (int i = 0; i < SR_COUNT; i++)
        for (size_t k = 0; k < g_schema[i].nstats; k++)
            if (strcmp(g_schema[i].stats[k].source, res->plural) == 0) {
                *fk = g_schema[i].stats[k].fk;
                return &g_schema[i];
            }
    return NULL;
}

bool schema_writable_name(const char *name, size_t n)
{
    for (int i = 0; i < SR_COUNT; i++)
        for (size_t k = 0; k < g_schema[i].ncols; k++) {
            const schema_col_t *c = &g_schema[i].cols[k];
            if (c->w != W_NONE && strlen(c->name) == n && memcmp(c->name, name, n) == 0)
                return true;
        }
    return false;
}

/* A JSON member key as JSON_K writes it: "\"name\":". */
static api_col_t json_col(const char *name, uint8_t kind, bool nullable)
{
    size_t n = strlen(name);
    char *k = xmalloc(n + 4);
    k[0] = '"';
    memcpy(k + 1, name, n);
    memcpy(k + 1 + n, "\":", 3);
    return (api_col_t){k, n + 3, kind, nullable};
}

static bool inited;

void schema_init(void)
{
    if (inited)
        return;
    inited = true;
    for (int i = 0; i < SR_COUNT; i++) {
        schema_res_t *res = &g_schema[i];
        buf_t sel = BUF_INIT;
        res->json = xmalloc(res->ncols * sizeof(*res->json));
        for (size_t k = 0; k < res->ncols; k++) {
            const schema_col_t *c = &res->cols[k];
            buf_printf(&sel, "%st.%s", k ? ", " : "", c->name);
            res->json[k] = json_col(c->name, c->kind, c->nullable);
            if (c->ref && !schema_by_table(c->ref))
                die("schema: %s.%s refers to unknown table %s", res->plural, c->name, c->ref);
            if (c->w == W_REF && !c->ref)
                die("schema: %s.%s is a reference without a table", res->plural, c->name);
        }
        res->stats_json = res->nstats ? xmalloc(res->nstats * sizeof(*res->stats_json)) : NULL;
        for (size_t k = 0; k < res->nstats; k++)
            res->stats_json[k] = json_col(res->stats[k].name, res->stats[k].kind, false);
        res->select = xstrndup(sel.data, sel.len);
        buf_free(&sel);
        for (size_t e = 0; e < res->nembeds; e++) {
            const schema_col_t *fk = schema_col(res, res->embeds[e].fk);
            if (!fk || !fk->ref)
                die("schema: %s embeds %s through a column that is not a reference", res->plural,
                    res->embeds[e].key);
        }
        for (size_t s = 0; s < res->nstats; s++)
            if (!schema_find(res->stats[s].source))
                die("schema: %s statistic %s counts unknown %s", res->plural, res->stats[s].name,
                    res->stats[s].source);
    }
}
