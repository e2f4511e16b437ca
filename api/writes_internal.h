/*
 * Shared between api/writes.c (handlers) and api/writes_sql.c (resource tables and the SQL
 * built from them at start-up).
 */
#ifndef CRMD_API_WRITES_INTERNAL_H
#define CRMD_API_WRITES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* How a body field is checked and cast. */
enum wkind {
    W_REF = 0,  /* id of a row of ref in the caller's organization */
    W_TEXT,     /* single-line text of 1..max characters */
    W_LONGTEXT, /* text of 0..max characters, newlines and tabs allowed */
    W_ENUM,     /* one of enums */
    W_EMAIL,    /* an email address of 3..max characters */
    W_MONEY,    /* a number >= 0 with at most 2 decimals, below 10^12 */
    W_PERCENT,  /* an integer 0..100 */
    W_DATE,     /* YYYY-MM-DD */
    W_TIME,     /* an RFC 3339 timestamp */
};

typedef struct wfield {
    const char *name;
    uint8_t kind; /* enum wkind */
    bool required;
    bool nullable;
    uint32_t max;
    const char *const *enums;
    const char *ref;         /* W_REF: the referenced table */
    const char *ins_default; /* SQL when not given on create ({S}: the stage parameter) */
    const char *on_stage;    /* SQL when the stage changes and the field is not given */
} wfield_t;

/* Rows whose reference to the deleted row the delete clears (or deletes: a cascade). */
typedef struct wdep {
    const char *table, *col, *singular, *plural;
    bool via_deals; /* references the deleted company's deals */
    bool del;       /* deletes them (?cascade=true) instead of clearing the reference */
} wdep_t;

#define W_MAX_FIELDS 16
#define W_MAX_DEPS   8

typedef struct wres {
    const char *plural, *singular, *table;
    const wfield_t *fields;
    size_t nfields;
    const wdep_t *deps;
    size_t ndeps;
    bool anchor;  /* activities: one of company_id, contact_id, deal_id */
    bool cascade; /* companies: DELETE accepts ?cascade=true */
    /* filled by writes_sql_init */
    const char *select;
    int nrefs;     /* W_REF fields: the ok_* columns leading create and update results */
    int f_company; /* index of company_id in fields, or -1 */
    int f_contact, f_deal, f_stage, f_owner;
    const char *uniq_field; /* the field a unique violation names, or NULL */
    db_stmt_t create, update, preread, replay, del_final;
    db_stmt_t del_lock; /* locks the row first: a delete then cannot be refused after its dependents changed */
    db_stmt_t dep_stmts[W_MAX_DEPS];
} wres_t;

enum { WR_COMPANIES, WR_CONTACTS, WR_DEALS, WR_ACTIVITIES, WR_TASKS, WR_COUNT };

extern wres_t g_wres[WR_COUNT];
extern db_stmt_t g_w_claim, g_w_release;

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
