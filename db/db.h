/*
 * Asynchronous PostgreSQL for reactor threads: libpq in non-blocking pipeline mode, driven
 * by POLL_ADD on each connection's socket. A handler puts the queries of one HTTP request in
 * a batch, submits it, and returns; the batch's callback runs on the same thread when every
 * result is in. A batch is one pipeline segment closed by one PQpipelineSync, so it runs as
 * one implicit transaction: all its statements commit together or none does, and a failed
 * batch aborts only its own queries.
 *
 * Statements are registered once (db_stmt) and prepared lazily per connection, in the same
 * pipeline as their first use.
 */
#ifndef CRMD_DB_DB_H
#define CRMD_DB_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/hist.h"
#include "core/reactor.h"

/* ---- prepared-statement registry (process-wide, insert-only, lock-free reads) ---- */

typedef uint32_t db_stmt_t;
#define DB_STMT_MAX 8192

/* The id of sql (registering it on first sight); the same text always gives the same id.
 * Safe from any thread. Dies if more than DB_STMT_MAX distinct statements are registered. */
db_stmt_t db_stmt(const char *sql);
/* The text of a registered statement. */
const char *db_stmt_sql(db_stmt_t id);
/* Registered statements so far. */
uint32_t db_stmt_count(void);

/* ---- batches ---- */

#define DB_BATCH_MAX 16 /* queries in one batch */

enum db_batch_flags {
    DB_READ = 1u << 0,  /* read-only: may be retried on transient errors */
    DB_WRITE = 1u << 1, /* writes: primary only, never retried after it may have run */
};

enum db_status {
    DB_OK = 0,      /* every query succeeded; results[] are set */
    DB_SQL_ERROR,   /* a statement failed: sqlstate and error say why (e.g. "23505") */
    DB_UNAVAILABLE, /* no usable connection (circuit open, connection lost): answer 503 */
    DB_TIMEOUT,     /* no answer in time (statement_timeout or a dead server) */
};

typedef struct db_batch db_batch_t;
typedef void (*db_done_fn)(db_batch_t *b, void *arg);

struct db_batch {
    /* outcome, valid in the callback */
    int status;          /* enum db_status */
    char sqlstate[6];    /* DB_SQL_ERROR: SQLSTATE of the failed statement */
    char error[256];     /* a message for logs only, never for clients */
    char column[64];     /* DB_SQL_ERROR: the column the error names, or "" */
    char constraint[64]; /* DB_SQL_ERROR: the constraint it names, or "" */
    int failed_index;    /* DB_SQL_ERROR: which query failed */
    int nqueries;
    PGresult *results[DB_BATCH_MAX];
    double dur_ms; /* submit to last result */

    /* internal */
    unsigned flags;
    arena_t *arena;
    db_stmt_t stmts[DB_BATCH_MAX];
    int nparams[DB_BATCH_MAX];
    const char **values[DB_BATCH_MAX];
    const char *oneoff[DB_BATCH_MAX]; /* SQL sent unprepared (db_batch_add_sql), else NULL */
    int *lengths[DB_BATCH_MAX];
    db_done_fn done;
    void *arg;
    uint64_t start_ns;
    uint64_t sent_ns; /* when it was last put on a connection (retries restart it) */
    uint64_t deadline_ms;
    int attempts;
    int received;                   /* results taken so far */
    int expect_prepare;             /* PREPARE results still to skip before the next query */
    uint8_t prepares[DB_BATCH_MAX]; /* 1 when query i was preceded by its PREPARE */
    struct db_batch *next;          /* queue link */
    timer_entry_t retry_timer;
    struct db_pool *pool;
};

/* A batch allocated in arena (the request's), which must outlive the callback. */
db_batch_t *db_batch_new(arena_t *arena, unsigned flags);

/* Adds a query with text-format parameters (NULL value = SQL NULL). The values are copied
 * into the arena, so the caller's strings may be temporary. */
void db_batch_add(db_batch_t *b, db_stmt_t stmt, int nparams, const char *const *values);

/* Adds a statement sent as text with its parameters, never prepared (PQsendQueryParams): for
 * texts too many or too rare to keep in the registry. Its statistics are counted under one
 * registry entry, "-- one-off statements". sql and the values are copied into the arena. */
void db_batch_add_sql(db_batch_t *b, const char *sql, int nparams, const char *const *values);

/* Sends the batch on this thread's pool; done(b, arg) runs later on this thread (never from
 * inside db_batch_submit). */
void db_batch_submit(db_batch_t *b, db_done_fn done, void *arg);

/* Frees the results (call once the response is written). */
void db_batch_release(db_batch_t *b);

/* ---- per-thread pool ---- */

/* Resolves the database host name once, before reactor threads start (they must not block
 * on DNS); the pools then connect to that address. 0, or -1 with the reason in err. */
int db_resolve_host(const char *conninfo, char *err, size_t errlen);

/* Starts this thread's pool on reactor r: connections open asynchronously, with backoff.
 * Returns 0, or -1 when DATABASE_URL is not set (the pool then answers DB_UNAVAILABLE). */
int db_pool_start(reactor_t *r, const config_t *cfg);
/* Closes this thread's connections (batches in flight fail with DB_UNAVAILABLE). */
void db_pool_stop(void);

/* Process-wide database health, from the background probe (db_probe_*). */
typedef struct {
    bool up; /* the last probe reached the primary */
    bool ever_up;
    double latency_ms;   /* of the last successful probe */
    uint64_t checked_ms; /* monotonic time of the last probe */
} db_health_t;
db_health_t db_health(void);

/* Counters of this thread's pool, and of all threads (merged on read). */
typedef struct {
    uint32_t size, connected, busy; /* connections: configured, up, with batches in flight */
    uint64_t waiting;               /* batches queued for a connection */
    uint64_t queries, errors, retries, timeouts, unavailable;
} db_pool_stats_t;
void db_pool_stats(db_pool_stats_t *out); /* all threads */

/* Per-statement latency, merged over threads: calls, total and max microseconds, slow calls,
 * rows returned. */
typedef struct {
    uint64_t calls, total_us, max_us, slow, rows;
} db_stmt_stats_t;
void db_stmt_stats(db_stmt_t id, db_stmt_stats_t *out);
/* Adds every thread's latency histogram (microseconds) of statement id into out. */
void db_stmt_hist(db_stmt_t id, hist_t *out);

/* True for errors worth retrying a read after: serialization failure, deadlock, admin
 * shutdown, connection loss. */
bool db_sqlstate_transient(const char *sqlstate);

#endif
