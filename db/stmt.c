/*
 * The prepared-statement registry: statement text → small stable id, shared by every thread.
 * Insert-only and lock-free: an open-addressed table of atomic entry pointers claimed with a
 * compare-and-swap; readers never wait. Each connection prepares an id the first time it
 * uses it (db/pool.c), so the registry itself never talks to PostgreSQL.
 */
#include "db/db.h"
#include "core/hash.h"
#include "core/common.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"

#define TABLE_SIZE (DB_STMT_MAX * 2)

typedef struct {
    uint64_t hash;
    db_stmt_t id;
    char sql[];
} entry_t;

static _Atomic(entry_t *) table[TABLE_SIZE];
static _Atomic(entry_t *) by_id[DB_STMT_MAX];
static _Atomic uint32_t next_id;

static uint64_t hash_sql(const char *s, size_t n)
{
    return hash64(s, n);
}

db_stmt_t db_stmt(const char *sql)
{
    size_t n = strlen(sql);
    uint64_t h = hash_sql(sql, n);
    entry_t *mine = NULL;
    for (size_t i = h & (TABLE_SIZE - 1), probes = 0; probes < TABLE_SIZE;
         i = (i + 1) & (TABLE_SIZE - 1), probes++) {
        entry_t *e = atomic_load_explicit(&table[i], memory_order_acquire);
        if (!e) {
            if (!mine) {
                uint32_t id = atomic_fetch_add(&next_id, 1);
                if (id >= DB_STMT_MAX)
                    die("more than %d distinct SQL statements registered", DB_STMT_MAX);
                mine = xmalloc(sizeof(entry_t) + n + 1);
                mine->hash = h;
                mine->id = id;
                memcpy(mine->sql, sql, n + 1);
                atomic_store_explicit(&by_id[id], mine, memory_order_release);
            }
            entry_t *expected = NULL;
            if (atomic_compare_exchange_strong_explicit(&table[i], &expected, mine, memory_order_acq_rel,
                                                        memory_order_acquire))
                return mine->id;
            e = expected; /* another thread took the slot: it may hold our text */
        }
        if (e->hash == h && strcmp(e->sql, sql) == 0)
            return e->id; /* our own id, if we made one, stays a valid unused alias */
    }
    die("SQL statement registry is full");
}

const char *db_stmt_sql(db_stmt_t id)
{
    entry_t *e = id < DB_STMT_MAX ? atomic_load_explicit(&by_id[id], memory_order_acquire) : NULL;
    return e ? e->sql : NULL;
}

uint32_t db_stmt_count(void)
{
    uint32_t n = atomic_load(&next_id);
    return n > DB_STMT_MAX ? DB_STMT_MAX : n;
}

bool db_sqlstate_transient(const char *s)
{
    static const char *const codes[] = {"40001", "40P01", "57P01", "57P02", "57P03",
                                        "08000", "08003", "08006", "08001", "08004"};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++)
        if (strcmp(s, codes[i]) == 0)
            return true;
    return false;
}
