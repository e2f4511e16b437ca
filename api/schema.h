/*
 * THE resource table. Per CRM resource: its table, columns (SQL name = JSON member, SQL type, how
 * the value is written, nullability, the resource a reference points at, and for a writable
 * column the rule a body value must meet), sorts, filters with the SQL each adds, search, the
 * relations includeRelationships embeds, computed statistics, the delete chain, and its cache
 * tier and tags. Nothing else describes a resource: REST lists and gets (api/resources.c), write
 * SQL and body validation (api/writes_sql.c, api/writes.c), cache keys and tags (api/cached.c),
 * the log allow-list and OpenAPI (api/openapi.c) are derived from it. A new column touches its
 * migration and this table.
 */
#ifndef CRMD_API_SCHEMA_H
#define CRMD_API_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/common.h"

/* How a writable column's body value is checked and cast (W_NONE: read-only). */
enum schema_wkind {
    W_NONE = 0,
    W_REF,      /* id of a row of ref in the caller's organization */
    W_TEXT,     /* single-line text of 1..max characters */
    W_LONGTEXT, /* text of 0..max characters, newlines and tabs allowed */
    W_ENUM,     /* one of enums */
    W_EMAIL,    /* an email address of 3..max characters */
    W_MONEY,    /* a number >= 0 with at most 2 decimals, below 10^12 */
    W_PERCENT,  /* an integer 0..100 */
    W_DATE,     /* YYYY-MM-DD */
    W_TIME,     /* an RFC 3339 timestamp */
};

typedef struct schema_col {
    const char *name;     /* SQL column and JSON member */
    const char *sql_type; /* "bigint", "text", "numeric(14,2)", ... */
    uint8_t kind;         /* enum api_col_kind: how the value is written */
    bool nullable;
    const char *ref;          /* the table this id refers to (a relation), or NULL */
    const char *const *enums; /* the values a text column takes, or NULL */
    /* writable columns */
    uint8_t w; /* enum schema_wkind */
    bool required;
    uint32_t max;            /* longest text, in characters */
    const char *ins_default; /* SQL when not given on create ({S}: the stage parameter) */
    const char *on_stage;    /* SQL when the stage changes and the column is not given */
    bool unique;             /* a unique violation names this column (409 conflict) */
} schema_col_t;

typedef struct schema_sort {
    const char *name;  /* as in ?sort= */
    const char *expr;  /* SQL of the key */
    const char *expr2; /* second key (contacts' first name), or NULL */
    const char *cast;  /* type of a cursor value parameter */
    uint8_t kind;      /* enum cursor_kind of the value */
    bool nullable;
} schema_sort_t;

typedef struct schema_filter {
    api_param_t param;
    const char *sql; /* one '?' stands for the value's placeholder */
} schema_filter_t;

/* A related row embedded by includeRelationships: the row the reference column fk points at,
 * written as member key with the target's columns cols. */
#define SCHEMA_EMBED_COLS 4
typedef struct schema_embed {
    const char *key; /* "company" */
    const char *fk;  /* "company_id": a column of the resource whose ref is the target table */
    const char *alias;
    const char *cols[SCHEMA_EMBED_COLS]; /* target columns, NULL-terminated */
} schema_embed_t;

/* A statistic includeStats adds: SQL over table t, and the resource whose rows it counts (its
 * writes change the statistic: they invalidate the counted row's parent through fk). */
typedef struct schema_stat {
    const char *name;
    uint8_t kind; /* enum api_col_kind */
    const char *sql;
    const char *source; /* plural of the counted resource */
    const char *fk;     /* its column naming this resource's row */
} schema_stat_t;

/* A row whose reference to a deleted row the delete clears (or deletes: a cascade). */
typedef struct schema_dep {
    const char *table, *col, *singular, *plural;
    bool via_deals; /* references the deleted company's deals */
    bool del;       /* deletes them (?cascade=true) instead of clearing the reference */
} schema_dep_t;

typedef struct schema_res {
    const char *plural, *singular, *table;
    const schema_col_t *cols;
    size_t ncols;
    const schema_sort_t *sorts;
    size_t nsorts;
    const char *default_sort;
    const schema_filter_t *filters;
    size_t nfilters;
    const char *const *search; /* columns the search tsvector is built from; NULL: no ?q= */
    const schema_embed_t *embeds;
    size_t nembeds;
    const schema_stat_t *stats;
    size_t nstats;
    bool writable;            /* POST, PATCH and DELETE routes */
    const schema_dep_t *deps; /* writable: the delete chain */
    size_t ndeps;
    bool anchor;          /* activities: one of company_id, contact_id, deal_id */
    bool cascade;         /* companies: DELETE accepts ?cascade=true */
    uint8_t tier;         /* enum cache_tier of its GET responses */
    bool row_follows_org; /* a single row's view also carries the org-level tag (rows
                             changed in bulk without being named) */
    /* derived by schema_init */
    const char *select;    /* "t.id, t.owner_id, ..." over alias t */
    api_col_t *json;       /* the columns as api_json_cols writes them */
    api_col_t *stats_json; /* the statistics, likewise */
} schema_res_t;

enum { SR_COMPANIES, SR_CONTACTS, SR_DEALS, SR_ACTIVITIES, SR_TASKS, SR_STAGES, SR_USERS, SR_COUNT };

extern schema_res_t g_schema[SR_COUNT];

/* Derives select lists and JSON column tables (call once, before any other use). */
void schema_init(void);

/* The resource named by its plural ("companies"), or NULL; the _n form takes a length. */
const schema_res_t *schema_find(const char *plural);
const schema_res_t *schema_find_n(const char *plural, size_t n);
/* The resource a path or route pattern names ("/api/<plural>[/...]"), or NULL; *rest (may be
 * NULL) is set to what follows the plural ("", "/{id}", "/42/analytics"). */
const schema_res_t *schema_of_path(const char *path, const char **rest);
/* The resource stored in table, or NULL. */
const schema_res_t *schema_by_table(const char *table);
/* The column named name of res, or NULL. */
const schema_col_t *schema_col(const schema_res_t *res, const char *name);

/* The resource an embed of res shows (the table its reference column points at). */
const schema_res_t *schema_embed_target(const schema_res_t *res, const schema_embed_t *em);

/* The resource whose statistics count res's rows, and res's column naming that row; NULL when
 * none does. A write to res invalidates "<parent singular>:<fk value>". */
const schema_res_t *schema_stats_parent(const schema_res_t *res, const char **fk);

/* Query parameter names of the extras. */
#define SCHEMA_STATS_PARAM "includeStats"
#define SCHEMA_EMBED_PARAM "includeRelationships"

/* True for a member name of some writable column (the log keeps their values). */
bool schema_writable_name(const char *name, size_t n);

#endif
