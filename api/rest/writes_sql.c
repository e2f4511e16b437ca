/*
 * The writable resources as tables of fields, and the statements built from them once at
 * start-up: one create, one update, one pre-read, one replay and one delete chain per resource,
 * so the number of prepared statements is fixed whatever field sets clients send. Values are
 * always parameters; only names from the tables below are ever part of the SQL text.
 *
 * Parameters. Create: $1 org, $2 idempotency key (NULL without one), $3.. the fields in table
 * order (NULL when absent). Update: $1 org, $2 id, $3 bitmask of the fields given, $4 md5 guard
 * (NULL without If-Match), $5.. the fields. Delete: $1 org, $2 id, $3 guard, $4 cascade.
 */
#include "api/schema.h"
#include "api/rest/writes.h"
#include "api/rest/writes_internal.h"
#include "core/buf.h"
#include "core/common.h"

#include <string.h>

wres_t g_wres[WR_COUNT];

db_stmt_t g_w_claim, g_w_release;

/* The members of the request envelopes (batch, bulk, clear-cache) whose values say what was
 * asked, not what was sent: loggable like the resources' own fields. */
static const char *const envelope_fields[] = {"id",        "method",  "path",    "query", "body",
                                              "operation", "dealIds", "updates", "scope", "tag",
                                              "type",      "payload", NULL};

bool api_field_loggable(const char *name, size_t n)
{
    for (int i = 0; envelope_fields[i]; i++)
        if (strlen(envelope_fields[i]) == n && memcmp(envelope_fields[i], name, n) == 0)
            return true;
    return schema_writable_name(name, n);
}

static const char *cast_of(const wfield_t *f)
{
    switch (f->kind) {
    case W_REF:
        return "bigint";
    case W_MONEY:
        return "numeric";
    case W_PERCENT:
        return "smallint";
    case W_DATE:
        return "date";
    case W_TIME:
        return "timestamptz";
    default:
        return "text";
    }
}

/* Appends tpl with each "{S}" replaced by the stage parameter $stage. */
static void append_tpl(buf_t *s, const char *tpl, int stage)
{
    const char *p;
    while ((p = strstr(tpl, "{S}"))) {
        buf_append(s, tpl, (size_t)(p - tpl));
        buf_printf(s, "$%d", stage);
        tpl = p + 3;
    }
    buf_append(s, tpl, strlen(tpl));
}

/* "WITH refs AS (...)": one ok_<field> column per reference, true when absent (NULL). */
static void append_refs(buf_t *s, const wres_t *res, int base)
{
    buf_append_lit(s, "WITH refs AS (SELECT ");
    bool first = true;
    for (size_t i = 0; i < res->nfields; i++) {
        const wfield_t *f = &res->fields[i];
        if (f->kind != W_REF)
            continue;
        int p = base + (int)i;
        buf_printf(
            s,
            "%s($%d::bigint IS NULL OR EXISTS (SELECT 1 FROM %s r WHERE r.org_id = $1::bigint AND r.id = "
            "$%d::bigint)) AS ok_%s",
            first ? "" : ", ", p, f->ref, p, f->name);
        first = false;
    }
    buf_append_lit(s, ")");
}

static void append_all_ok(buf_t *s, const wres_t *res)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (res->fields[i].kind == W_REF)
            buf_printf(s, " AND refs.ok_%s", res->fields[i].name);
}

static void append_guard(buf_t *s, const wres_t *res, int p)
{
    buf_printf(s, "($%d::text IS NULL OR md5(ROW(%s)::text) = $%d::text)", p, res->s->select, p);
}

static db_stmt_t register_sql(buf_t *s)
{
    db_stmt_t id = db_stmt(buf_cstr(s));
    buf_free(s);
    return id;
}

static void build_create(wres_t *res)
{
    buf_t s = BUF_INIT;
    int base = 3, stage = base + res->f_stage;
    append_refs(&s, res, base);
    buf_printf(&s, ", ins AS (INSERT INTO %s AS t (org_id", res->s->table);
    for (size_t i = 0; i < res->nfields; i++)
        buf_printf(&s, ", %s", res->fields[i].name);
    buf_append_lit(&s, ") SELECT $1::bigint");
    for (size_t i = 0; i < res->nfields; i++) {
        const wfield_t *f = &res->fields[i];
        if (f->ins_default) {
            buf_printf(&s, ", COALESCE($%d::%s, ", base + (int)i, cast_of(f));
            append_tpl(&s, f->ins_default, stage);
            buf_append_lit(&s, ")");
        } else {
            buf_printf(&s, ", $%d::%s", base + (int)i, cast_of(f));
        }
    }
    buf_append_lit(&s, " FROM refs WHERE true");
    append_all_ok(&s, res);
    buf_printf(
        &s,
        " AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.org_id = $1::bigint"
        " AND k.key = $2::text AND k.status IS NULL)) RETURNING %s)"
        ", idem AS (UPDATE idempotency_keys k SET status = 201, response_headers = 'Location: /api/%s/' "
        "|| ins.id, response_body = convert_to(to_jsonb(ins)::text, 'UTF8') FROM ins"
        " WHERE k.org_id = $1::bigint AND k.key = $2::text AND k.status IS NULL)"
        " SELECT refs.*, ins.* FROM refs LEFT JOIN ins ON true",
        res->s->select, res->s->plural);
    res->create = register_sql(&s);
}

/* The field's value after the update, as SQL: the parameter when given, else prev. */
static void append_new_value(buf_t *s, const wres_t *res, int fi, const char *prev)
{
    buf_printf(s, "CASE WHEN ($3::integer & %u) <> 0 THEN $%d::%s ELSE %s END", 1u << fi, 5 + fi,
               cast_of(&res->fields[fi]), prev);
}

static void append_anchor(buf_t *s, const wres_t *res, const char *company, const char *contact,
                          const char *deal)
{
    if (!res->s->anchor) {
        buf_append_lit(s, "true");
        return;
    }
    buf_append_lit(s, "(");
    append_new_value(s, res, res->f_company, company);
    buf_append_lit(s, " IS NOT NULL OR ");
    append_new_value(s, res, res->f_contact, contact);
    buf_append_lit(s, " IS NOT NULL OR ");
    append_new_value(s, res, res->f_deal, deal);
    buf_append_lit(s, " IS NOT NULL)");
}

static const char *col_or_null(int fi, const char *col)
{
    return fi >= 0 ? col : "NULL::bigint";
}

static void build_update(wres_t *res)
{
    buf_t s = BUF_INIT;
    append_refs(&s, res, 5);
    buf_printf(
        &s,
        ", cur AS (SELECT t.id AS cur_id, %s AS cur_company, %s AS cur_contact, %s AS cur_deal FROM %s t"
        " WHERE t.org_id = $1::bigint AND t.id = $2::bigint)",
        col_or_null(res->f_company, "t.company_id"), col_or_null(res->f_contact, "t.contact_id"),
        col_or_null(res->f_deal, "t.deal_id"), res->s->table);
    buf_printf(&s, ", upd AS (UPDATE %s AS t SET ", res->s->table);
    for (size_t i = 0; i < res->nfields; i++) {
        const wfield_t *f = &res->fields[i];
        buf_printf(&s, "%s%s = CASE WHEN ($3::integer & %u) <> 0 THEN $%d::%s", i ? ", " : "", f->name,
                   1u << i, 5 + (int)i, cast_of(f));
        if (f->on_stage) {
            int sp = 5 + res->f_stage;
            buf_printf(&s, " WHEN ($3::integer & %u) <> 0 AND $%d::bigint IS DISTINCT FROM t.stage_id THEN ",
                       1u << res->f_stage, sp);
            append_tpl(&s, f->on_stage, sp);
        }
        buf_printf(&s, " ELSE t.%s END", f->name);
    }
    buf_append_lit(&s, " FROM refs WHERE t.org_id = $1::bigint AND t.id = $2::bigint");
    append_all_ok(&s, res);
    buf_append_lit(&s, " AND ");
    append_guard(&s, res, 4);
    buf_append_lit(&s, " AND ");
    append_anchor(&s, res, "t.company_id", "t.contact_id", "t.deal_id");
    buf_printf(&s,
               " RETURNING %s) SELECT refs.*, cur.cur_id, cur.cur_company, cur.cur_contact, cur.cur_deal, ",
               res->s->select);
    append_anchor(&s, res, "cur.cur_company", "cur.cur_contact", "cur.cur_deal");
    buf_append_lit(&s, ", upd.* FROM refs LEFT JOIN cur ON true LEFT JOIN upd ON true");
    res->update = register_sql(&s);
}

/* The delete condition: the row exists with the guard, and (companies) has no deals left or
 * the caller asked for the cascade. */
static void append_will_delete(buf_t *s, const wres_t *res)
{
    buf_printf(s, "EXISTS (SELECT 1 FROM %s t WHERE t.org_id = $1::bigint AND t.id = $2::bigint AND ",
               res->s->table);
    append_guard(s, res, 3);
    buf_append_lit(s, ")");
    if (res->s->cascade)
        buf_append_lit(s, " AND ($4::boolean OR NOT EXISTS (SELECT 1 FROM deals d WHERE d.org_id = $1::bigint"
                          " AND d.company_id = $2::bigint))");
}

static void build_delete(wres_t *res)
{
    /* The row is locked before anything else in the delete's transaction: a concurrent PATCH
     * (the If-Match guard) and a concurrent insert referencing it (the has-deals check, via
     * its foreign-key lock) wait, so the dependents' statements and the final delete agree. */
    buf_t lock = BUF_INIT;
    buf_printf(&lock, "SELECT 1 FROM %s t WHERE t.org_id = $1::bigint AND t.id = $2::bigint FOR UPDATE",
               res->s->table);
    res->del_lock = register_sql(&lock);
    for (size_t i = 0; i < res->s->ndeps; i++) {
        const wdep_t *d = &res->s->deps[i];
        buf_t s = BUF_INIT;
        if (d->del)
            buf_printf(&s, "DELETE FROM %s x WHERE x.org_id = $1::bigint", d->table);
        else
            buf_printf(&s, "UPDATE %s x SET %s = NULL WHERE x.org_id = $1::bigint", d->table, d->col);
        if (d->via_deals)
            buf_printf(
                &s,
                " AND x.%s IN (SELECT d.id FROM deals d WHERE d.org_id = $1::bigint AND d.company_id = "
                "$2::bigint)",
                d->col);
        else
            buf_printf(&s, " AND x.%s = $2::bigint", d->col);
        buf_append_lit(&s, " AND ");
        append_will_delete(&s, res);
        buf_append_lit(&s, " RETURNING x.id");
        res->dep_stmts[i] = register_sql(&s);
    }
    buf_t s = BUF_INIT;
    buf_printf(&s, "WITH cur AS (SELECT t.id AS cur_id, %s AS cur_company, ",
               col_or_null(res->f_company, "t.company_id"));
    append_guard(&s, res, 3);
    buf_printf(&s, " AS guard_ok FROM %s t WHERE t.org_id = $1::bigint AND t.id = $2::bigint)",
               res->s->table);
    buf_printf(&s, ", del AS (DELETE FROM %s t WHERE t.org_id = $1::bigint AND t.id = $2::bigint AND ",
               res->s->table);
    append_guard(&s, res, 3);
    if (res->s->cascade)
        buf_append_lit(&s, " AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.org_id = $1::bigint"
                           " AND d.company_id = $2::bigint AND NOT $4::boolean)");
    buf_append_lit(&s, " RETURNING t.id) SELECT cur.cur_id, cur.cur_company, cur.guard_ok, ");
    if (res->s->cascade)
        buf_append_lit(
            &s, "(SELECT count(*) FROM deals d WHERE d.org_id = $1::bigint AND d.company_id = $2::bigint)");
    else
        buf_append_lit(&s, "0::bigint");
    buf_append_lit(&s, ", del.id FROM (SELECT 1) one LEFT JOIN cur ON true LEFT JOIN del ON true");
    res->del_final = register_sql(&s);
}

static int field_index(const wres_t *res, const char *name)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (strcmp(res->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

void writes_sql_init(void)
{
    schema_init();
    int k = 0;
    for (int si = 0; si < SR_COUNT; si++) {
        const schema_res_t *sr = &g_schema[si];
        if (!sr->writable)
            continue;
        if (k == WR_COUNT)
            die("writes: more writable resources than WR_COUNT");
        wres_t *res = &g_wres[k++];
        res->s = sr;
        res->nfields = 0;
        res->uniq_field = NULL;
        for (size_t c = 0; c < sr->ncols; c++) {
            const schema_col_t *col = &sr->cols[c];
            if (col->w == W_NONE)
                continue;
            if (res->nfields == W_MAX_FIELDS)
                die("writes: %s has too many fields", res->s->plural);
            res->fields[res->nfields++] =
                (wfield_t){col->name,  col->w,   col->required,    col->nullable, col->max,
                           col->enums, col->ref, col->ins_default, col->on_stage};
            if (col->unique)
                res->uniq_field = col->name;
        }
        if (res->s->ndeps > W_MAX_DEPS)
            die("writes: %s has too many dependents", res->s->plural);
        const char *fk;
        res->stats_parent = schema_stats_parent(sr, &fk);
        if (res->stats_parent && strcmp(fk, "company_id") != 0)
            die("writes: %s: statistics counted through %s (the statements know company_id only)",
                res->s->plural, fk);
        res->nrefs = 0;
        for (size_t i = 0; i < res->nfields; i++)
            res->nrefs += res->fields[i].kind == W_REF;
        res->f_company = field_index(res, "company_id");
        res->f_contact = field_index(res, "contact_id");
        res->f_deal = field_index(res, "deal_id");
        res->f_stage = field_index(res, "stage_id");
        res->f_owner = field_index(res, "owner_id");
        build_create(res);
        build_update(res);
        build_delete(res);
        buf_t s = BUF_INIT;
        buf_printf(
            &s, "SELECT %s, md5(ROW(%s)::text) FROM %s t WHERE t.org_id = $1::bigint AND t.id = $2::bigint",
            res->s->select, res->s->select, res->s->table);
        res->preread = register_sql(&s);
        buf_printf(
            &s,
            "SELECT k.request_hash = $3::bytea, k.status, k.response_headers, %s FROM idempotency_keys k"
            " LEFT JOIN LATERAL jsonb_populate_record(NULL::%s, convert_from(k.response_body, 'UTF8')::jsonb)"
            " t ON true WHERE k.org_id = $1::bigint AND k.key = $2::text AND k.status IS NOT NULL",
            res->s->select, res->s->table);
        res->replay = register_sql(&s);
    }
    /* The claim: a new key, or one whose first use is older than 24 h. A concurrent first use
     * blocks here on the unique index until the winner's transaction ends. */
    g_w_claim =
        db_stmt("INSERT INTO idempotency_keys (org_id, key, request_hash) VALUES ($1::bigint, $2::text,"
                " $3::bytea) ON CONFLICT (org_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
                " status = NULL, response_headers = NULL, response_body = NULL, created_at = now()"
                " WHERE idempotency_keys.created_at < now() - interval '24 hours'");
    /* A claim whose write did not happen (a refused reference) is not kept. */
    g_w_release = db_stmt("DELETE FROM idempotency_keys WHERE org_id = $1::bigint AND key = $2::text"
                          " AND status IS NULL");
}
