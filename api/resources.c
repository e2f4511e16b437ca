/*
 * Resource reads. Each resource is a table of columns, sorts and filters; one generic list and
 * one generic get handler walk it. A list's SQL depends on which filters are present, the sort,
 * q and the cursor's direction, so it is built as text with $n placeholders (values are never
 * interpolated), registered with db_stmt (prepared once per connection) and remembered in a
 * small per-thread cache keyed by that combination.
 *
 * Keyset pagination: a page asks for limit + 1 rows after (or, for a backward page, before) the
 * cursor's (sort value, id), so inserts and deletes between pages never shift rows. A backward
 * page queries in reverse order and is written reversed.
 */
#include "api/resources.h"
#include "api/auth.h"
#include "api/common.h"
#include "api/cursor.h"
#include "core/common.h"
#include "core/json.h"
#include "core/log.h"
#include "db/db.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- resource tables ---- */

typedef struct sort_def {
    const char *name;  /* as in ?sort= */
    const char *expr;  /* SQL of the key */
    const char *expr2; /* second key (contacts' first name), or NULL */
    const char *cast;  /* type of a cursor value parameter */
    uint8_t kind;      /* enum cursor_kind of the value */
    bool nullable;
} sort_def_t;

typedef struct filter_def {
    api_param_t param;
    const char *sql; /* one '?' stands for the value's placeholder */
} filter_def_t;

enum res_extra { EXTRA_NONE = 0, EXTRA_STATS, EXTRA_RELS };

#define MAX_FILTERS 12
#define MAX_SPEC    (MAX_FILTERS + 5)

typedef struct resource {
    const char *name; /* "companies" */
    const char *noun; /* "company", for 404 details */
    const char *table;
    const char *select; /* the columns of cols, in order */
    const api_col_t *cols;
    size_t ncols;
    const sort_def_t *sorts;
    size_t nsorts;
    const char *default_sort;
    const filter_def_t *filters;
    size_t nfilters;
    bool search;   /* has a search tsvector; accepts q */
    uint8_t extra; /* enum res_extra */
    uint8_t index; /* position in resources[] */
    /* filled at registration */
    api_param_t list_spec[MAX_SPEC];
    size_t nlist_spec;
    int p_cursor, p_sort, p_q, p_extra, p_filter0;
    api_param_t get_spec[1];
    size_t nget_spec;
    db_stmt_t get_stmt[2]; /* without, with the extra */
} resource_t;

static const char *const size_enum[] = {"1-10", "11-50", "51-200", "201-1000", "1000+", NULL};
static const char *const deal_status_enum[] = {"open", "won", "lost", NULL};
static const char *const task_status_enum[] = {"open", "done", NULL};
static const char *const activity_type_enum[] = {"call", "email", "meeting", "note", "demo", NULL};

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
static const api_col_t user_cols[] = {
    API_COL("id", COL_INT, false),
    API_COL("name", COL_TEXT, false),
    API_COL("email", COL_TEXT, true),
    API_COL("role", COL_TEXT, false),
    API_COL("created_at", COL_TIMESTAMP, false),
};
static const sort_def_t user_sorts[] = {S_TEXT("name", "name"), S_TS("created_at")};

/* stages */
static const api_col_t stage_cols[] = {
    API_COL("id", COL_INT, false),          API_COL("name", COL_TEXT, false),
    API_COL("color", COL_TEXT, false),      API_COL("position", COL_INT, false),
    API_COL("probability", COL_INT, false), API_COL("kind", COL_TEXT, false),
};
static const sort_def_t stage_sorts[] = {
    {"position", "t.position", NULL, "integer", CURSOR_INT, false},
    S_TEXT("name", "name"),
    S_TS("created_at"),
};

/* companies */
static const api_col_t company_cols[] = {
    API_COL("id", COL_INT, false),
    API_COL("owner_id", COL_INT, true),
    API_COL("name", COL_TEXT, false),
    API_COL("domain", COL_TEXT, true),
    API_COL("industry", COL_TEXT, true),
    API_COL("size", COL_TEXT, true),
    API_COL("website", COL_TEXT, true),
    API_COL("created_at", COL_TIMESTAMP, false),
    API_COL("updated_at", COL_TIMESTAMP, false),
};
static const sort_def_t company_sorts[] = {S_TEXT("name", "name"), S_TS("created_at"), S_TS("updated_at")};
static const filter_def_t company_filters[] = {
    F_OWNER,
    {{"industry", PARAM_TEXT, 100, NULL}, "t.industry = ?::text"},
    F_ENUM("size", "size", size_enum),
};
static const api_col_t company_stats_cols[] = {
    API_COL("contact_count", COL_INT, false),
    API_COL("deal_count", COL_INT, false),
    API_COL("deals_value", COL_MONEY, false),
};

/* contacts */
static const api_col_t contact_cols[] = {
    API_COL("id", COL_INT, false),
    API_COL("company_id", COL_INT, true),
    API_COL("owner_id", COL_INT, true),
    API_COL("first_name", COL_TEXT, false),
    API_COL("last_name", COL_TEXT, false),
    API_COL("email", COL_TEXT, true),
    API_COL("phone", COL_TEXT, true),
    API_COL("title", COL_TEXT, true),
    API_COL("created_at", COL_TIMESTAMP, false),
    API_COL("updated_at", COL_TIMESTAMP, false),
};
static const sort_def_t contact_sorts[] = {
    {"name", "t.last_name", "t.first_name", "text", CURSOR_TEXT, false},
    S_TS("created_at"),
    S_TS("updated_at"),
};
static const filter_def_t contact_filters[] = {F_OWNER, F_ID("companyId", "company_id")};

/* deals */
static const api_col_t deal_cols[] = {
    API_COL("id", COL_INT, false),
    API_COL("owner_id", COL_INT, true),
    API_COL("company_id", COL_INT, false),
    API_COL("contact_id", COL_INT, true),
    API_COL("name", COL_TEXT, false),
    API_COL("value", COL_MONEY, false),
    API_COL("stage_id", COL_INT, false),
    API_COL("probability", COL_INT, false),
    API_COL("expected_close_date", COL_DATE, true),
    API_COL("status", COL_TEXT, false),
    API_COL("created_at", COL_TIMESTAMP, false),
    API_COL("updated_at", COL_TIMESTAMP, false),
    API_COL("closed_at", COL_TIMESTAMP, true),
};
static const sort_def_t deal_sorts[] = {
    S_TEXT("name", "name"),
    S_TS("created_at"),
    S_TS("updated_at"),
    {"value", "t.value", NULL, "numeric", CURSOR_NUMERIC, false},
    {"expected_close_date", "t.expected_close_date", NULL, "date", CURSOR_TIMESTAMP, true},
};
static const filter_def_t deal_filters[] = {
    F_OWNER,
    F_ID("stageId", "stage_id"),
    F_ENUM("status", "status", deal_status_enum),
    F_ID("companyId", "company_id"),
    {{"minValue", PARAM_DECIMAL, 0, NULL}, "t.value >= ?::numeric"},
    {{"maxValue", PARAM_DECIMAL, 0, NULL}, "t.value <= ?::numeric"},
    {{"closingAfter", PARAM_DATE, 0, NULL}, "t.expected_close_date >= ?::date"},
    {{"closingBefore", PARAM_DATE, 0, NULL}, "t.expected_close_date <= ?::date"},
};
static const api_col_t rel_company_cols[] = {API_COL("id", COL_INT, false), API_COL("name", COL_TEXT, false)};
static const api_col_t rel_stage_cols[] = {API_COL("id", COL_INT, false), API_COL("name", COL_TEXT, false),
                                           API_COL("color", COL_TEXT, false)};
static const api_col_t rel_contact_cols[] = {API_COL("id", COL_INT, false),
                                             API_COL("first_name", COL_TEXT, false),
                                             API_COL("last_name", COL_TEXT, false)};

/* activities */
static const api_col_t activity_cols[] = {
    API_COL("id", COL_INT, false),
    API_COL("owner_id", COL_INT, true),
    API_COL("company_id", COL_INT, true),
    API_COL("contact_id", COL_INT, true),
    API_COL("deal_id", COL_INT, true),
    API_COL("type", COL_TEXT, false),
    API_COL("subject", COL_TEXT, false),
    API_COL("body", COL_TEXT, true),
    API_COL("occurred_at", COL_TIMESTAMP, false),
    API_COL("created_at", COL_TIMESTAMP, false),
};
static const sort_def_t activity_sorts[] = {S_TS("created_at"), S_TS("occurred_at")};
static const filter_def_t activity_filters[] = {
    F_OWNER,
    F_ENUM("type", "type", activity_type_enum),
    F_ID("dealId", "deal_id"),
    F_ID("companyId", "company_id"),
    F_ID("contactId", "contact_id"),
    {{"since", PARAM_TIME, 0, NULL}, "t.occurred_at >= ?::timestamptz"},
    {{"until", PARAM_TIME, 0, NULL}, "t.occurred_at < ?::timestamptz"},
};

/* tasks */
static const api_col_t task_cols[] = {
    API_COL("id", COL_INT, false),
    API_COL("owner_id", COL_INT, true),
    API_COL("company_id", COL_INT, true),
    API_COL("deal_id", COL_INT, true),
    API_COL("title", COL_TEXT, false),
    API_COL("priority", COL_TEXT, false),
    API_COL("status", COL_TEXT, false),
    API_COL("due_at", COL_TIMESTAMP, false),
    API_COL("created_at", COL_TIMESTAMP, false),
    API_COL("completed_at", COL_TIMESTAMP, true),
};
static const sort_def_t task_sorts[] = {S_TEXT("name", "title"), S_TS("created_at"), S_TS("due_at")};
static const filter_def_t task_filters[] = {
    F_OWNER,
    F_ENUM("status", "status", task_status_enum),
    {{"dueBefore", PARAM_TIME, 0, NULL}, "t.due_at < ?::timestamptz"},
    F_ID("dealId", "deal_id"),
};

#define TABLE(a) (a), ARRAY_LEN(a)

enum { R_COMPANIES, R_CONTACTS, R_DEALS, R_ACTIVITIES, R_TASKS, R_STAGES, R_USERS, R_COUNT };

static resource_t resources[R_COUNT] = {
    [R_COMPANIES] = {"companies", "company", "companies",
                     "t.id, t.owner_id, t.name, t.domain, t.industry, t.size, t.website, t.created_at, "
                     "t.updated_at",
                     TABLE(company_cols), TABLE(company_sorts), "-created_at", TABLE(company_filters), true,
                     EXTRA_STATS, R_COMPANIES},
    [R_CONTACTS] = {"contacts", "contact", "contacts",
                    "t.id, t.company_id, t.owner_id, t.first_name, t.last_name, t.email, t.phone, t.title, "
                    "t.created_at, t.updated_at",
                    TABLE(contact_cols), TABLE(contact_sorts), "-created_at", TABLE(contact_filters), true,
                    EXTRA_NONE, R_CONTACTS},
    [R_DEALS] = {"deals", "deal", "deals",
                 "t.id, t.owner_id, t.company_id, t.contact_id, t.name, t.value, t.stage_id, t.probability, "
                 "t.expected_close_date, t.status, t.created_at, t.updated_at, t.closed_at",
                 TABLE(deal_cols), TABLE(deal_sorts), "-created_at", TABLE(deal_filters), true, EXTRA_RELS,
                 R_DEALS},
    [R_ACTIVITIES] = {"activities", "activity", "activities",
                      "t.id, t.owner_id, t.company_id, t.contact_id, t.deal_id, t.type, t.subject, t.body, "
                      "t.occurred_at, t.created_at",
                      TABLE(activity_cols), TABLE(activity_sorts), "-created_at", TABLE(activity_filters),
                      true, EXTRA_NONE, R_ACTIVITIES},
    [R_TASKS] = {"tasks", "task", "tasks",
                 "t.id, t.owner_id, t.company_id, t.deal_id, t.title, t.priority, t.status, t.due_at, "
                 "t.created_at, t.completed_at",
                 TABLE(task_cols), TABLE(task_sorts), "-created_at", TABLE(task_filters), false, EXTRA_NONE,
                 R_TASKS},
    [R_STAGES] = {"stages", "stage", "stages", "t.id, t.name, t.color, t.position, t.probability, t.kind",
                  TABLE(stage_cols), TABLE(stage_sorts), "position", NULL, 0, false, EXTRA_NONE, R_STAGES},
    [R_USERS] = {"users", "user", "users", "t.id, t.name, t.email, t.role, t.created_at", TABLE(user_cols),
                 TABLE(user_sorts), "name", NULL, 0, false, EXTRA_NONE, R_USERS},
};

static const char stats_select[] =
    ", (SELECT count(*) FROM contacts c WHERE c.org_id = t.org_id AND c.company_id = t.id)"
    ", (SELECT count(*) FROM deals d WHERE d.org_id = t.org_id AND d.company_id = t.id)"
    ", (SELECT coalesce(sum(d.value), 0) FROM deals d"
    " WHERE d.org_id = t.org_id AND d.company_id = t.id AND d.status = 'open')";
static const char rels_select[] =
    ", co.id, co.name, st.id, st.name, st.color, ct.id, ct.first_name, ct.last_name";
static const char rels_join[] = " LEFT JOIN companies co ON co.org_id = t.org_id AND co.id = t.company_id"
                                " LEFT JOIN stages st ON st.org_id = t.org_id AND st.id = t.stage_id"
                                " LEFT JOIN contacts ct ON ct.org_id = t.org_id AND ct.id = t.contact_id";

static void append_select(buf_t *sql, const resource_t *res, bool extra)
{
    buf_append_lit(sql, "SELECT ");
    buf_append(sql, res->select, strlen(res->select));
    if (extra && res->extra == EXTRA_STATS)
        buf_append(sql, stats_select, sizeof(stats_select) - 1);
    else if (extra && res->extra == EXTRA_RELS)
        buf_append(sql, rels_select, sizeof(rels_select) - 1);
}

static void append_from(buf_t *sql, const resource_t *res, bool extra)
{
    buf_printf(sql, " FROM %s t", res->table);
    if (extra && res->extra == EXTRA_RELS)
        buf_append(sql, rels_join, sizeof(rels_join) - 1);
    buf_append_lit(sql, " WHERE t.org_id = $1::bigint");
}

/* Writes one row: the resource's columns, then the extra's. */
static void write_row(json_writer_t *w, const resource_t *res, const PGresult *r, int row, bool extra)
{
    json_obj_begin(w);
    api_json_cols(w, r, row, 0, res->cols, res->ncols);
    int c = (int)res->ncols;
    if (extra && res->extra == EXTRA_STATS) {
        api_json_cols(w, r, row, c, company_stats_cols, ARRAY_LEN(company_stats_cols));
    } else if (extra && res->extra == EXTRA_RELS) {
        static const struct {
            const char *key;
            size_t key_len;
            const api_col_t *cols;
            size_t ncols;
        } rels[] = {
            {JSON_K("company"), TABLE(rel_company_cols)},
            {JSON_K("stage"), TABLE(rel_stage_cols)},
            {JSON_K("contact"), TABLE(rel_contact_cols)},
        };
        for (size_t i = 0; i < ARRAY_LEN(rels); i++) {
            json_w_key(w, rels[i].key, rels[i].key_len);
            if (PQgetisnull(r, row, c)) {
                json_w_null(w);
            } else {
                json_obj_begin(w);
                api_json_cols(w, r, row, c, rels[i].cols, rels[i].ncols);
                json_obj_end(w);
            }
            c += (int)rels[i].ncols;
        }
    }
    json_obj_end(w);
}

static const resource_t *resource_named(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(resources); i++)
        if (strcmp(resources[i].name, name) == 0)
            return &resources[i];
    return NULL;
}

const char *api_resource_select(const char *name)
{
    const resource_t *res = resource_named(name);
    return res ? res->select : NULL;
}

void api_resource_write_row(json_writer_t *w, const char *name, const PGresult *r, int row, int first_col)
{
    const resource_t *res = resource_named(name);
    json_obj_begin(w);
    if (res)
        api_json_cols(w, r, row, first_col, res->cols, res->ncols);
    json_obj_end(w);
}

/* ---- list statements ---- */

#define SORT_RELEVANCE 31

/* Everything that shapes a list query's text. */
typedef struct list_plan {
    const resource_t *res;
    uint32_t fmask;  /* filters present, bit i for filters[i] */
    int sort;        /* index in res->sorts, or SORT_RELEVANCE */
    bool desc;       /* listing order descending */
    bool q;          /* search condition */
    bool cursor;     /* keyset condition */
    bool backward;   /* a backward page: reversed comparison and order */
    bool null_value; /* the cursor's sort value is NULL */
    bool extra;      /* includeStats / includeRelationships */
    bool generic;    /* every filter as "($n IS NULL OR ...)": one text for all filter sets */
} list_plan_t;

static uint64_t plan_key(const list_plan_t *p)
{
    return (uint64_t)p->res->index | (uint64_t)p->fmask << 4 | (uint64_t)p->sort << 20 |
           (uint64_t)p->desc << 25 | (uint64_t)p->q << 26 | (uint64_t)p->cursor << 27 |
           (uint64_t)p->backward << 28 | (uint64_t)p->null_value << 29 | (uint64_t)p->extra << 30 |
           (uint64_t)p->generic << 31;
}

/* Appends a filter's SQL with its '?' replaced by $n; optional: true when $n may be NULL. */
static void append_filter(buf_t *sql, const char *tpl, int n, bool optional)
{
    const char *q = strchr(tpl, '?');
    buf_append_lit(sql, " AND ");
    if (optional) {
        const char *cast = q + 1, *end = cast + strcspn(cast, " )");
        buf_printf(sql, "($%d%.*s IS NULL OR ", n, (int)(end - cast), cast);
    }
    buf_append(sql, tpl, (size_t)(q - tpl));
    buf_printf(sql, "$%d", n);
    buf_append(sql, q + 1, strlen(q + 1));
    if (optional)
        buf_putc(sql, ')');
}

/* The keyset condition: rows after (v[, v2], id) in the query's order, NULL sorting last. */
static void append_keyset(buf_t *sql, const list_plan_t *p, const sort_def_t *s, const char *e, int *np)
{
    bool qdesc = p->desc != p->backward;
    const char *cmp = qdesc ? "<" : ">";
    if (p->null_value) {
        int id = (*np)++;
        if (qdesc)
            buf_printf(sql, " AND (%s IS NOT NULL OR t.id < $%d::bigint)", e, id);
        else
            buf_printf(sql, " AND (%s IS NULL AND t.id > $%d::bigint)", e, id);
        return;
    }
    const char *cast = s ? s->cast : "real";
    buf_printf(sql, " AND ((%s", e);
    if (s && s->expr2)
        buf_printf(sql, ", %s", s->expr2);
    buf_printf(sql, ", t.id) %s ($%d::%s", cmp, (*np)++, cast);
    if (s && s->expr2)
        buf_printf(sql, ", $%d::%s", (*np)++, cast);
    buf_printf(sql, ", $%d::bigint)", (*np)++);
    if (s && s->nullable && !qdesc)
        buf_printf(sql, " OR %s IS NULL", e);
    buf_append_lit(sql, ")");
}

static void build_list_sql(buf_t *sql, const list_plan_t *p)
{
    const resource_t *res = p->res;
    const sort_def_t *s = p->sort == SORT_RELEVANCE ? NULL : &res->sorts[p->sort];
    int np = 2;
    append_select(sql, res, p->extra);
    buf_t where = BUF_INIT;
    for (size_t i = 0; i < res->nfilters; i++)
        if (p->generic || (p->fmask & (1u << i)))
            append_filter(&where, res->filters[i].sql, np++, p->generic);
    char rank[96];
    const char *e = s ? s->expr : rank;
    if (p->q) {
        int qn = np++;
        buf_printf(&where, " AND t.search @@ websearch_to_tsquery('simple', $%d::text)", qn);
        snprintf(rank, sizeof(rank), "ts_rank(t.search, websearch_to_tsquery('simple', $%d::text))", qn);
    }
    if (p->cursor)
        append_keyset(&where, p, s, e, &np);
    /* the sort key, selected last, is what the next cursor carries */
    buf_printf(sql, ", %s", e);
    if (s && s->expr2)
        buf_printf(sql, ", %s", s->expr2);
    append_from(sql, res, p->extra);
    buf_append(sql, where.data, where.len);
    buf_free(&where);
    const char *dir = p->desc != p->backward ? "DESC" : "ASC";
    buf_printf(sql, " ORDER BY %s %s", e, dir);
    if (s && s->expr2)
        buf_printf(sql, ", %s %s", s->expr2, dir);
    buf_printf(sql, ", t.id %s LIMIT $%d::integer", dir, np);
}

#define STMT_CACHE 1024
/*
 * Statement texts one filter set each are only built this many times per process (cache misses,
 * counted on every thread, so an over-estimate of distinct texts); past it, lists use the generic
 * text. Without the budget, clients could register every filter x sort x direction combination
 * (tens of thousands) and exhaust the statement registry.
 */
#define SPECIFIC_BUDGET 2000
static _Atomic uint32_t specific_built;

static __thread struct {
    uint64_t key;
    db_stmt_t stmt;
    bool used;
} stmt_cache[STMT_CACHE];

static db_stmt_t list_stmt(list_plan_t *p)
{
    uint64_t key = plan_key(p);
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t slot = (size_t)(h >> 56) % STMT_CACHE;
    if (stmt_cache[slot].used && stmt_cache[slot].key == key)
        return stmt_cache[slot].stmt;
    if (!p->generic && p->fmask && atomic_fetch_add(&specific_built, 1) >= SPECIFIC_BUDGET) {
        p->generic = true;
        p->fmask = 0;
        return list_stmt(p);
    }
    buf_t sql = BUF_INIT;
    build_list_sql(&sql, p);
    db_stmt_t id = db_stmt(buf_cstr(&sql));
    buf_free(&sql);
    stmt_cache[slot].key = key;
    stmt_cache[slot].stmt = id;
    stmt_cache[slot].used = true;
    return id;
}

/* ---- list handler ---- */

/* A list request between submit and its completion (in the request arena). */
typedef struct list_req {
    http_ctx_t *ctx;
    const resource_t *res;
    const sort_def_t *sort; /* NULL: relevance */
    bool extra;
    bool has_cursor;
    cursor_t cur; /* the request's cursor; its texts live in the arena */
    uint64_t binding;
    int limit;
} list_req_t;

static void invalid_cursor(http_ctx_t *ctx)
{
    api_respond_problem(ctx, 400, "invalid-cursor",
                        "the cursor is malformed, was altered, or belongs to another listing", NULL);
}

/* Seals a cursor at a row of the page (the sort key is in the row's last columns). */
static bool seal_row(const list_req_t *lr, const PGresult *r, int row, uint8_t dir, char *out, size_t cap)
{
    int kc = PQnfields(r) - (lr->sort && lr->sort->expr2 ? 2 : 1);
    cursor_t c = {.dir = dir, .binding = lr->binding};
    c.id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
    const char *v = PQgetvalue(r, row, kc);
    if (PQgetisnull(r, row, kc)) {
        c.kind = CURSOR_NULL;
    } else if (!lr->sort) {
        c.kind = CURSOR_FLOAT;
        c.f = strtof(v, NULL);
    } else {
        c.kind = lr->sort->kind;
        if (c.kind == CURSOR_INT) {
            c.i = strtoll(v, NULL, 10);
        } else {
            c.s = v;
            c.n = (size_t)PQgetlength(r, row, kc);
            if (lr->sort->expr2) {
                c.s2 = PQgetvalue(r, row, kc + 1);
                c.n2 = (size_t)PQgetlength(r, row, kc + 1);
            }
        }
    }
    return cursor_seal(cursor_process_key(), &c, out, cap) > 0;
}

static void write_cursor(json_writer_t *w, const char *key, size_t kn, bool present, const char *tok)
{
    if (present && tok[0])
        json_kv_str(w, key, kn, tok, strlen(tok));
    else
        json_kv_null(w, key, kn);
}

static void list_done(db_batch_t *b, void *arg)
{
    list_req_t *lr = arg;
    http_ctx_t *ctx = lr->ctx;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    const PGresult *r = b->results[0];
    int n = PQntuples(r);
    bool more = n > lr->limit;
    int rows = more ? lr->limit : n;
    bool backward = lr->has_cursor && lr->cur.dir == CURSOR_PREV;
    bool has_next = backward ? true : more;
    bool has_prev = backward ? more : lr->has_cursor;

    json_writer_t w;
    api_json_begin_data(ctx, &w);
    json_arr_begin(&w);
    for (int i = 0; i < rows; i++)
        write_row(&w, lr->res, r, backward ? rows - 1 - i : i, lr->extra);
    json_arr_end(&w);

    /* cursors at the first and last row shown; an empty page pages on from the request's cursor */
    char next[CURSOR_TOKEN_MAX] = "", prev[CURSOR_TOKEN_MAX] = "";
    int first = backward ? rows - 1 : 0, last = backward ? 0 : rows - 1;
    if (has_next) {
        if (rows > 0) {
            seal_row(lr, r, last, CURSOR_NEXT, next, sizeof(next));
        } else {
            cursor_t c = lr->cur;
            c.dir = CURSOR_NEXT;
            cursor_seal(cursor_process_key(), &c, next, sizeof(next));
        }
    }
    if (has_prev) {
        if (rows > 0) {
            seal_row(lr, r, first, CURSOR_PREV, prev, sizeof(prev));
        } else {
            cursor_t c = lr->cur;
            c.dir = CURSOR_PREV;
            cursor_seal(cursor_process_key(), &c, prev, sizeof(prev));
        }
    }
    json_w_key(&w, JSON_K("pagination"));
    json_obj_begin(&w);
    json_kv_i64(&w, JSON_K("limit"), lr->limit);
    json_kv_bool(&w, JSON_K("has_next"), has_next);
    json_kv_bool(&w, JSON_K("has_prev"), has_prev);
    write_cursor(&w, JSON_K("next_cursor"), has_next, next);
    write_cursor(&w, JSON_K("prev_cursor"), has_prev, prev);
    json_obj_end(&w);
    json_obj_end(&w);

    api_timing_db(ctx, b);
    db_batch_release(b);
    http_respond(ctx, 200, "application/json");
}

/* Resolves ?sort= (or its default) into the plan; false when it names no allowed sort. */
static bool resolve_sort(const resource_t *res, const api_value_t *sort, bool q, list_plan_t *p,
                         const char **canon)
{
    if (!sort->present && q) {
        p->sort = SORT_RELEVANCE;
        p->desc = true;
        *canon = "relevance";
        return true;
    }
    const char *s = sort->present ? sort->s : res->default_sort;
    *canon = s;
    p->desc = s[0] == '-';
    const char *name = s + p->desc;
    for (size_t i = 0; i < res->nsorts; i++) {
        if (strcmp(res->sorts[i].name, name) == 0) {
            p->sort = (int)i;
            return true;
        }
    }
    return false;
}

/* The cursor's value must have the type of the sort it claims to continue. */
static bool cursor_fits(const cursor_t *c, const sort_def_t *s)
{
    if (!s)
        return c->kind == CURSOR_FLOAT;
    if (c->kind == CURSOR_NULL)
        return s->nullable;
    return c->kind == s->kind && (c->s2 != NULL) == (s->expr2 != NULL);
}

/* Adds the keyset parameters of the request's cursor. */
static int add_cursor_params(arena_t *a, const list_req_t *lr, const char **values, int nv)
{
    const cursor_t *c = &lr->cur;
    char num[48];
    if (c->kind != CURSOR_NULL) {
        if (c->kind == CURSOR_INT) {
            snprintf(num, sizeof(num), "%lld", (long long)c->i);
            values[nv++] = arena_strndup(a, num, strlen(num));
        } else if (c->kind == CURSOR_FLOAT) {
            snprintf(num, sizeof(num), "%.9g", (double)c->f);
            values[nv++] = arena_strndup(a, num, strlen(num));
        } else {
            values[nv++] = c->s;
            if (c->s2)
                values[nv++] = c->s2;
        }
    }
    snprintf(num, sizeof(num), "%lld", (long long)c->id);
    values[nv++] = arena_strndup(a, num, strlen(num));
    return nv;
}

/* Rewrites values[1..nv) (present filters, then the rest) for the generic text. */
static int generic_params(const resource_t *res, const api_value_t *v, const char **values, int nv)
{
    const char *rest[8 + MAX_FILTERS];
    int nf = 0, nrest = 0;
    for (size_t i = 0; i < res->nfilters; i++)
        nf += v[res->p_filter0 + (int)i].present;
    for (int i = 1 + nf; i < nv; i++)
        rest[nrest++] = values[i];
    int o = 1;
    for (size_t i = 0; i < res->nfilters; i++) {
        const api_value_t *f = &v[res->p_filter0 + (int)i];
        values[o++] = f->present ? f->s : NULL;
    }
    for (int i = 0; i < nrest; i++)
        values[o++] = rest[i];
    return o;
}

static void list_resource(http_ctx_t *ctx, const api_auth_t *auth, const resource_t *res)
{
    arena_t *a = &ctx->arena;
    api_value_t v[MAX_SPEC];
    api_errors_t errs = {0};
    if (!api_query_parse(a, ctx->req.query, res->list_spec, res->nlist_spec, v, NULL, &errs)) {
        api_respond_bad_params(ctx, &errs);
        return;
    }
    list_req_t *lr = arena_alloc(a, sizeof(*lr));
    memset(lr, 0, sizeof(*lr));
    lr->ctx = ctx;
    lr->res = res;
    lr->limit = v[0].present ? (int)v[0].i : 50;
    const api_value_t *q = res->p_q >= 0 && v[res->p_q].present ? &v[res->p_q] : NULL;
    list_plan_t plan = {.res = res, .q = q != NULL};
    plan.extra = lr->extra = res->p_extra >= 0 && v[res->p_extra].b;
    const char *sort_canon;
    if (!resolve_sort(res, &v[res->p_sort], q != NULL, &plan, &sort_canon)) {
        api_errors_add(&errs, LIT("sort"), "is not an allowed sort");
        api_respond_bad_params(ctx, &errs);
        return;
    }
    lr->sort = plan.sort == SORT_RELEVANCE ? NULL : &res->sorts[plan.sort];

    /* the filters in table order, canonical: the cursor binding and the parameters */
    const char *values[8 + MAX_FILTERS];
    int nv = 0;
    values[nv++] = auth->org_id_s;
    buf_t canon = BUF_INIT;
    for (size_t i = 0; i < res->nfilters; i++) {
        const api_value_t *f = &v[res->p_filter0 + (int)i];
        if (!f->present)
            continue;
        plan.fmask |= 1u << i;
        buf_printf(&canon, "%s=%s\n", res->filters[i].param.name, f->s);
        values[nv++] = f->s;
    }
    if (q)
        values[nv++] = q->s;
    lr->binding = cursor_binding(auth->org_id, res->name, canon.data, canon.len, sort_canon, q ? q->s : NULL,
                                 q ? q->n : 0);
    buf_free(&canon);

    const api_value_t *cv = &v[res->p_cursor];
    if (cv->present) {
        char *scratch = arena_alloc(a, cv->n + 1);
        if (!cursor_open(cursor_process_key(), cv->s, cv->n, lr->binding, &lr->cur, scratch, cv->n + 1) ||
            !cursor_fits(&lr->cur, lr->sort)) {
            invalid_cursor(ctx);
            return;
        }
        lr->has_cursor = plan.cursor = true;
        plan.backward = lr->cur.dir == CURSOR_PREV;
        plan.null_value = lr->cur.kind == CURSOR_NULL;
        nv = add_cursor_params(a, lr, values, nv);
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", lr->limit + 1);
    values[nv++] = lim;

    db_stmt_t stmt = list_stmt(&plan);
    if (plan.generic) /* every filter has its parameter, NULL when absent */
        nv = generic_params(res, v, values, nv);
    db_batch_t *b = db_batch_new(a, DB_READ);
    db_batch_add(b, stmt, nv, values);
    db_batch_submit(b, list_done, lr);
}

/* ---- get one ---- */

typedef struct get_req {
    http_ctx_t *ctx;
    const resource_t *res;
    bool extra;
} get_req_t;

static void get_done(db_batch_t *b, void *arg)
{
    get_req_t *gr = arg;
    http_ctx_t *ctx = gr->ctx;
    if (b->status != DB_OK) {
        api_respond_db_error(ctx, b);
        return;
    }
    const PGresult *r = b->results[0];
    api_timing_db(ctx, b);
    if (PQntuples(r) == 0) {
        db_batch_release(b);
        char detail[64];
        snprintf(detail, sizeof(detail), "no such %s", gr->res->noun);
        api_respond_problem(ctx, 404, "not-found", detail, NULL);
        return;
    }
    json_writer_t w;
    api_json_begin_data(ctx, &w);
    write_row(&w, gr->res, r, 0, gr->extra);
    json_obj_end(&w);
    db_batch_release(b);
    http_respond(ctx, 200, "application/json");
}

static void get_resource(http_ctx_t *ctx, const api_auth_t *auth, const resource_t *res)
{
    arena_t *a = &ctx->arena;
    api_value_t v[1];
    api_errors_t errs = {0};
    int64_t id;
    bool ok = api_query_parse(a, ctx->req.query, res->get_spec, res->nget_spec, v, NULL, &errs);
    if (ctx->nparams < 1 || !api_parse_id(ctx->params[0].p, ctx->params[0].len, &id)) {
        api_errors_add(&errs, LIT("id"), "must be a positive integer");
        ok = false;
    }
    if (!ok) {
        api_respond_bad_params(ctx, &errs);
        return;
    }
    get_req_t *gr = arena_alloc(a, sizeof(*gr));
    gr->ctx = ctx;
    gr->res = res;
    gr->extra = res->nget_spec && v[0].b;
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    const char *values[2] = {auth->org_id_s, ids};
    db_batch_t *b = db_batch_new(a, DB_READ);
    db_batch_add(b, res->get_stmt[gr->extra], 2, values);
    db_batch_submit(b, get_done, gr);
}

/* ---- registration ---- */

static void prepare_resource(resource_t *res)
{
    size_t n = 0;
    res->list_spec[n++] = (api_param_t){"limit", PARAM_LIMIT, 0, NULL};
    res->p_cursor = (int)n;
    res->list_spec[n++] = (api_param_t){"cursor", PARAM_CURSOR, 0, NULL};
    res->p_sort = (int)n;
    res->list_spec[n++] = (api_param_t){"sort", PARAM_SORT, 0, NULL};
    res->p_q = res->p_extra = -1;
    if (res->search) {
        res->p_q = (int)n;
        res->list_spec[n++] = (api_param_t){"q", PARAM_TEXT, 200, NULL};
    }
    const char *extra_name = res->extra == EXTRA_STATS  ? "includeStats"
                             : res->extra == EXTRA_RELS ? "includeRelationships"
                                                        : NULL;
    res->nget_spec = 0;
    if (extra_name) {
        res->p_extra = (int)n;
        res->list_spec[n++] = (api_param_t){extra_name, PARAM_BOOL, 0, NULL};
        res->get_spec[res->nget_spec++] = (api_param_t){extra_name, PARAM_BOOL, 0, NULL};
    }
    res->p_filter0 = (int)n;
    if (res->nfilters > MAX_FILTERS)
        die("resource %s has too many filters", res->name);
    for (size_t i = 0; i < res->nfilters; i++)
        res->list_spec[n++] = res->filters[i].param;
    res->nlist_spec = n;

    for (int extra = 0; extra < 2; extra++) {
        if (extra && !res->extra) {
            res->get_stmt[1] = res->get_stmt[0];
            continue;
        }
        buf_t sql = BUF_INIT;
        append_select(&sql, res, extra);
        append_from(&sql, res, extra);
        buf_append_lit(&sql, " AND t.id = $2::bigint");
        res->get_stmt[extra] = db_stmt(buf_cstr(&sql));
        buf_free(&sql);
    }
}

#define HANDLERS(slot, lname)                                                                                \
    static void list_##lname(http_ctx_t *ctx, const api_auth_t *auth)                                        \
    {                                                                                                        \
        list_resource(ctx, auth, &resources[slot]);                                                          \
    }                                                                                                        \
    static void get_##lname(http_ctx_t *ctx, const api_auth_t *auth)                                         \
    {                                                                                                        \
        get_resource(ctx, auth, &resources[slot]);                                                           \
    }

HANDLERS(R_COMPANIES, companies)
HANDLERS(R_CONTACTS, contacts)
HANDLERS(R_DEALS, deals)
HANDLERS(R_ACTIVITIES, activities)
HANDLERS(R_TASKS, tasks)
HANDLERS(R_STAGES, stages)
HANDLERS(R_USERS, users)

void api_resources_routes(router_t *rt)
{
    static const struct {
        int slot;
        api_handler_fn list, get;
        const char *list_pattern, *get_pattern, *list_name, *get_name;
    } routes[] = {
#define R(slot, n)                                                                                           \
    {slot, list_##n, get_##n, "/api/" #n, "/api/" #n "/{id}", "GET /api/" #n, "GET /api/" #n "/{id}"}
        R(R_COMPANIES, companies), R(R_CONTACTS, contacts), R(R_DEALS, deals), R(R_ACTIVITIES, activities),
        R(R_TASKS, tasks),         R(R_STAGES, stages),     R(R_USERS, users),
#undef R
    };
    cursor_process_key(); /* the warning for a missing PAGINATION_KEY comes at start-up */
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        prepare_resource(&resources[routes[i].slot]);
        api_route(rt, HTTP_GET, routes[i].list_pattern, routes[i].list, 0, ROUTE_CLASS_NORMAL,
                  routes[i].list_name);
        api_route(rt, HTTP_GET, routes[i].get_pattern, routes[i].get, 0, ROUTE_CLASS_NORMAL,
                  routes[i].get_name);
    }
}
