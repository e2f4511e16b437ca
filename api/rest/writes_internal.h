/*
 * Shared between api/writes.c (handlers) and api/writes_sql.c (resource tables and the SQL
 * built from them at start-up).
 */
#ifndef CRMD_API_REST_WRITES_INTERNAL_H
#define CRMD_API_REST_WRITES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/schema.h"
#include "core/buf.h"
#include "core/json_read.h"
#include "db/db.h"

/* A writable column of a resource, as the write handlers check and cast it (from the schema). */
typedef struct wfield {
    const char *name;
    uint8_t kind; /* enum schema_wkind */
    bool required;
    bool nullable;
    uint32_t max;
    const char *const *enums;
    const char *ref;         /* W_REF: the referenced table */
    const char *ins_default; /* SQL when not given on create ({S}: the stage parameter) */
    const char *on_stage;    /* SQL when the stage changes and the field is not given */
} wfield_t;

typedef schema_dep_t wdep_t;

#define W_MAX_FIELDS 16
#define W_MAX_DEPS   8

typedef struct wres {
    const schema_res_t *s; /* plural, table, select, deps, anchor, cascade: as the schema says */
    /* derived by writes_sql_init */
    wfield_t fields[W_MAX_FIELDS]; /* the writable columns, in column order */
    size_t nfields;
    const schema_res_t *stats_parent; /* whose statistics count these rows (by company_id), or NULL */
    int nrefs;                        /* W_REF fields: the ok_* columns leading create and update results */
    int f_company;                    /* index of company_id in fields, or -1 */
    int f_contact, f_deal, f_stage, f_owner;
    const char *uniq_field; /* the field a unique violation names, or NULL */
    db_stmt_t create, update, preread, replay, del_final;
    db_stmt_t
        del_lock; /* locks the row first: a delete then cannot be refused after its dependents changed */
    db_stmt_t dep_stmts[W_MAX_DEPS];
    char post_name[48], patch_name[56], delete_name[56]; /* route names; patterns after the method */
} wres_t;

enum { WR_COMPANIES, WR_CONTACTS, WR_DEALS, WR_ACTIVITIES, WR_TASKS, WR_COUNT };

extern wres_t g_wres[WR_COUNT];
extern db_stmt_t g_w_claim, g_w_release;

/* Checks one value of field f as a create or update does; sets *out (arena text, NULL for
 * null). Returns the error message or NULL. (Also the rules of imports: api/jobs/import.c.) */
const char *writes_check_value(arena_t *a, const wfield_t *f, const json_value_t *v, const char **out);

/* Fills the derived members and registers every statement. */
void writes_sql_init(void);

/* Columns of an update result before the row: ok_* refs, cur_id, cur_company, cur_contact,
 * cur_deal, anchor_ok. */
#define W_UPD_CUR(res)    ((res)->nrefs)
#define W_UPD_ANCHOR(res) ((res)->nrefs + 4)
#define W_UPD_ROW(res)    ((res)->nrefs + 5)

/* Columns of a final delete result: cur_id, cur_company, guard_ok, deal count, deleted id. */
enum { WD_CUR = 0, WD_COMPANY, WD_GUARD, WD_DEALS, WD_DELETED };

#endif
