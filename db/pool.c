/*
 * Per-thread PostgreSQL connections in pipeline mode, driven by the reactor (see db.h).
 *
 * Each connection keeps a FIFO of batches sent and not yet answered. Results arrive in the
 * order they were sent; each batch knows the sequence it expects (a PREPARE result before a
 * statement's first use on this connection, one result per query, then the sync), so the
 * reader walks that sequence and completes the batch at its PGRES_PIPELINE_SYNC. Output is
 * flushed once per loop turn, so the batches of many requests share one write.
 *
 * Failure rules: a lost connection fails its batches (reads are retried with backoff on
 * another connection, writes answer DB_UNAVAILABLE) and reconnects with exponential backoff;
 * while no connection is up after a failure, the circuit is open and batches fail at once.
 */
#include "db/db.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/shards.h"
#include "core/fifo.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONNECT_MIN_MS   100
#define RECONNECT_MAX_MS   2000
#define CONNECT_TIMEOUT_MS 5000
#define READ_RETRIES       3
#define SWEEP_MS           250
#define PROBE_MS           1000
/* a connection that answered nothing for this long past statement_timeout is dead */
#define DEAD_GRACE_MS 2000

enum dbc_state { DBC_DOWN = 0, DBC_CONNECTING, DBC_READY };

/* What the next result of a batch is (sequence entries). */
enum { SEQ_PREPARE = 0x40, SEQ_QUERY = 0x80, SEQ_SYNC = 0xC0 };
#define SEQ_MAX (2 * DB_BATCH_MAX + 1)

typedef struct db_conn {
    PGconn *pg;
    int fd;
    uint32_t idx;
    uint8_t state; /* enum dbc_state */
    bool poll_armed;
    uint16_t poll_mask; /* events the armed poll waits for */
    bool expect_null;   /* the next PQgetResult ends the previous query's results */
    bool need_flush;
    uint32_t gen;          /* bumped on every reset; stale poll completions are ignored */
    uint64_t *prepared;    /* bitmap of statement ids prepared on this connection */
    FIFO(db_batch_t) sent; /* sent, awaiting results */
    uint32_t inflight;
    uint64_t connect_started_ms;
    uint32_t backoff_ms;
    timer_entry_t timer; /* reconnect */
    struct db_pool *pool;
} db_conn_t;

typedef struct seq_state {
    uint8_t seq[SEQ_MAX];
    uint8_t len, pos;
} seq_state_t;

typedef struct db_pool {
    reactor_t *r;
    const config_t *cfg;
    char conninfo_options[256];
    db_conn_t *conns;
    int n;
    int rr;
    bool started, stopping, breaker_open;
    FIFO(db_batch_t) waiting; /* waiting for a first connection */
    FIFO(db_batch_t) done;    /* completed, callbacks run at the end of the turn */
    timer_entry_t sweep;
    timer_entry_t probe;
    bool probe_in_flight;
    arena_t probe_arena;
    db_stmt_t probe_stmt;
    uint64_t last_fail_log_ms;
    db_pool_stats_t stats;
    db_stmt_stats_t *stmt_stats;
    hist_t **stmt_hist; /* allocated on a statement's first call on this thread */
} db_pool_t;

static __thread db_pool_t *tl_pool;
static shards_t pool_shards;

static _Atomic bool health_up, health_ever_up;
static _Atomic uint64_t health_latency_us, health_checked_ms;

static void conn_connect(db_pool_t *p, db_conn_t *c);
static void conn_reset(db_pool_t *p, db_conn_t *c, int status, const char *why);
static void conn_drain_results(db_pool_t *p, db_conn_t *c);
static void batch_dispatch(db_pool_t *p, db_batch_t *b);
static void batch_finish(db_pool_t *p, db_batch_t *b);

/* The batch's result sequence is kept in its arena right after the struct. */
static seq_state_t *batch_seq(db_batch_t *b)
{
    return (seq_state_t *)(b + 1);
}

/* ---------------------------------------------------------------- batches */

db_batch_t *db_batch_new(arena_t *arena, unsigned flags)
{
    db_batch_t *b = arena_alloc(arena, sizeof(db_batch_t) + sizeof(seq_state_t));
    memset(b, 0, sizeof(db_batch_t) + sizeof(seq_state_t));
    b->arena = arena;
    b->flags = flags;
    return b;
}

void db_batch_add(db_batch_t *b, db_stmt_t stmt, int nparams, const char *const *values)
{
    if (b->nqueries >= DB_BATCH_MAX)
        die("more than %d queries in one batch", DB_BATCH_MAX);
    int i = b->nqueries++;
    b->stmts[i] = stmt;
    b->nparams[i] = nparams;
    b->values[i] = arena_alloc(b->arena, sizeof(char *) * (size_t)(nparams ? nparams : 1));
    for (int k = 0; k < nparams; k++)
        b->values[i][k] = values[k] ? arena_strndup(b->arena, values[k], strlen(values[k])) : NULL;
}

void db_batch_add_sql(db_batch_t *b, const char *sql, int nparams, const char *const *values)
{
    static _Atomic db_stmt_t oneoff_id = (db_stmt_t)-1;
    db_stmt_t id = atomic_load_explicit(&oneoff_id, memory_order_relaxed);
    if (id == (db_stmt_t)-1)
        atomic_store(&oneoff_id, id = db_stmt("-- one-off statements"));
    db_batch_add(b, id, nparams, values);
    b->oneoff[b->nqueries - 1] = arena_strndup(b->arena, sql, strlen(sql));
}

void db_batch_release(db_batch_t *b)
{
    for (int i = 0; i < b->nqueries; i++) {
        if (b->results[i])
            PQclear(b->results[i]);
        b->results[i] = NULL;
    }
}

/* Completes b with status: its callback runs at the end of this loop turn. */
static void batch_fail(db_pool_t *p, db_batch_t *b, int status, const char *why)
{
    b->status = status;
    if (why && !b->error[0])
        snprintf(b->error, sizeof(b->error), "%s", why);
    batch_finish(p, b);
}

static void batch_finish(db_pool_t *p, db_batch_t *b)
{
    b->dur_ms = (double)(clock_now_ns() - b->start_ns) / 1e6;
    if (b->status != DB_OK) {
        for (int i = 0; i < b->nqueries; i++) {
            if (b->results[i])
                PQclear(b->results[i]);
            b->results[i] = NULL;
        }
        if (b->status == DB_SQL_ERROR)
            p->stats.errors++;
        else if (b->status == DB_TIMEOUT)
            p->stats.timeouts++;
        else
            p->stats.unavailable++;
    }
    fifo_push(&p->done, b);
}

static void on_retry_timer(timer_entry_t *e)
{
    db_batch_t *b = container_of(e, db_batch_t, retry_timer);
    batch_dispatch(b->pool, b);
}

/* A read that failed for a transient reason goes again after a short backoff. */
static bool batch_retry(db_pool_t *p, db_batch_t *b)
{
    if (!(b->flags & DB_READ) || b->attempts >= READ_RETRIES || p->stopping)
        return false;
    for (int i = 0; i < b->nqueries; i++) {
        if (b->results[i])
            PQclear(b->results[i]);
        b->results[i] = NULL;
    }
    b->status = DB_OK;
    b->sqlstate[0] = b->error[0] = b->column[0] = b->constraint[0] = '\0';
    b->received = 0;
    p->stats.retries++;
    uint64_t delay = 20u << b->attempts;
    timer_init(&b->retry_timer, on_retry_timer);
    timer_add(&p->r->timers, &b->retry_timer, p->r->now_ms + delay);
    return true;
}

/* ---------------------------------------------------------------- polling */

static void conn_cancel_poll(db_pool_t *p, db_conn_t *c);

/* One poll at a time; asking for more events than the armed poll waits for replaces it. */
static void conn_arm_poll(db_pool_t *p, db_conn_t *c, unsigned mask)
{
    if (c->fd < 0)
        return;
    if (c->poll_armed) {
        if ((c->poll_mask & mask) == mask)
            return;
        mask |= c->poll_mask;
        conn_cancel_poll(p, c);
    }
    c->poll_mask = (uint16_t)mask;
    struct io_uring_sqe *sqe = reactor_sqe(p->r);
    io_uring_prep_poll_add(sqe, c->fd, mask);
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_PG_POLL, c->idx) | ((uint64_t)(c->gen & 0xffffff) << 32));
    c->poll_armed = true;
}

static void conn_cancel_poll(db_pool_t *p, db_conn_t *c)
{
    if (!c->poll_armed)
        return;
    struct io_uring_sqe *sqe = reactor_sqe(p->r);
    io_uring_prep_poll_remove(sqe, reactor_ud(OP_PG_POLL, c->idx) | ((uint64_t)(c->gen & 0xffffff) << 32));
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_IGNORE, 0));
    c->poll_armed = false;
    c->gen++; /* whatever the old poll still reports is stale */
}

static void conn_flush(db_pool_t *p, db_conn_t *c)
{
    int ret = PQflush(c->pg);
    if (ret < 0) {
        conn_reset(p, c, DB_UNAVAILABLE, PQerrorMessage(c->pg));
        return;
    }
    c->need_flush = ret == 1;
    conn_arm_poll(p, c, POLLIN | (c->need_flush ? POLLOUT : 0));
}

static void log_conn_failure(db_pool_t *p, const char *what, const char *why)
{
    if (p->r->now_ms - p->last_fail_log_ms < 5000)
        return;
    p->last_fail_log_ms = p->r->now_ms;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", why ? why : "");
    for (char *q = msg; *q; q++)
        if (*q == '\n')
            *q = ' ';
    log_fields(LOG_WARN, what, "reason", msg, "#thread", (int64_t)p->r->id, NULL);
}

static void on_reconnect_timer(timer_entry_t *e)
{
    db_conn_t *c = container_of(e, db_conn_t, timer);
    if (c->state == DBC_CONNECTING) { /* connect took too long */
        conn_reset(c->pool, c, DB_UNAVAILABLE, "connect timeout");
        return;
    }
    conn_connect(c->pool, c);
}

static bool any_ready(db_pool_t *p)
{
    for (int i = 0; i < p->n; i++)
        if (p->conns[i].state == DBC_READY)
            return true;
    return false;
}

/* Drops the connection, fails or retries its batches, and schedules a reconnect. */
static void conn_reset(db_pool_t *p, db_conn_t *c, int status, const char *why_in)
{
    /* why_in may point into the PGconn freed below */
    char why[256];
    snprintf(why, sizeof(why), "%s", why_in ? why_in : "");
    bool was_ready = c->state == DBC_READY;
    conn_cancel_poll(p, c);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->fd = -1;
    c->state = DBC_DOWN;
    c->need_flush = false;
    c->expect_null = false;
    memset(c->prepared, 0, DB_STMT_MAX / 8);
    db_batch_t *b;
    while ((b = fifo_pop(&c->sent))) {
        if (!batch_retry(p, b))
            batch_fail(p, b, status, why);
    }
    c->inflight = 0;
    if (!p->stopping)
        log_conn_failure(p, was_ready ? "database connection lost" : "database connection failed", why);
    if (!any_ready(p)) {
        p->breaker_open = true;
        /* nothing can serve the queued batches now: fail them rather than let them hang */
        while ((b = fifo_pop(&p->waiting)))
            batch_fail(p, b, DB_UNAVAILABLE, "database unavailable");
    }
    if (p->stopping)
        return;
    c->backoff_ms = c->backoff_ms ? MIN(c->backoff_ms * 2, RECONNECT_MAX_MS) : RECONNECT_MIN_MS;
    uint32_t jitter = (uint32_t)(clock_now_ns() % (c->backoff_ms / 4 + 1));
    timer_add(&p->r->timers, &c->timer, p->r->now_ms + c->backoff_ms + jitter);
}

static void conn_ready(db_pool_t *p, db_conn_t *c)
{
    if (PQenterPipelineMode(c->pg) != 1) {
        conn_reset(p, c, DB_UNAVAILABLE, "cannot enter pipeline mode");
        return;
    }
    c->state = DBC_READY;
    c->backoff_ms = 0;
    timer_del(&c->timer);
    if (p->breaker_open)
        log_fields(LOG_INFO, "database connection restored", "#thread", (int64_t)p->r->id, NULL);
    p->breaker_open = false;
    conn_arm_poll(p, c, POLLIN);
    db_batch_t *b;
    while ((b = fifo_pop(&p->waiting)))
        batch_dispatch(p, b);
}

static void conn_connect_poll(db_pool_t *p, db_conn_t *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    c->fd = PQsocket(c->pg);
    switch (st) {
    case PGRES_POLLING_OK:
        conn_ready(p, c);
        break;
    case PGRES_POLLING_READING:
        conn_arm_poll(p, c, POLLIN);
        break;
    case PGRES_POLLING_WRITING:
        conn_arm_poll(p, c, POLLOUT);
        break;
    default:
        conn_reset(p, c, DB_UNAVAILABLE, PQerrorMessage(c->pg));
        break;
    }
}

/* Server notices (and the FATAL text of a terminated session) become log lines instead of
 * libpq's default raw write to stderr. */
static void on_notice(void *arg, const char *message)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", message);
    for (char *q = msg; *q; q++)
        if (*q == '\n')
            *q = ' ';
    log_fields(LOG_INFO, "database notice", "notice", msg, NULL);
}

/* The database host resolved once at start-up (db_resolve_host): libpq would otherwise call
 * getaddrinfo, which blocks, on a reactor thread at every reconnect. */
static char resolved_hostaddr[64];

int db_resolve_host(const char *conninfo, char *err, size_t errlen)
{
    resolved_hostaddr[0] = '\0';
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        snprintf(err, errlen, "bad DATABASE_URL: %s", perr ? perr : "unparsable");
        PQfreemem(perr);
        return -1;
    }
    const char *host = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
    }
    int rc = 0;
    struct in6_addr a6;
    struct in_addr a4;
    /* nothing to do for a numeric address, a unix socket, several hosts, or a given hostaddr */
    if (host && *host && !(hostaddr && *hostaddr) && host[0] != '/' && !strchr(host, ',') &&
        inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int gai = getaddrinfo(host, NULL, &hints, &res);
        if (gai != 0 || !res) {
            snprintf(err, errlen, "cannot resolve database host %s: %s", host, gai_strerror(gai));
            rc = -1;
        } else {
            /* libpq tries every address of a name; we get one: prefer IPv4 ("localhost" is
             * often ::1 first while servers listen on 127.0.0.1) */
            struct addrinfo *pick = res;
            for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                if (ai->ai_family == AF_INET) {
                    pick = ai;
                    break;
                }
            void *addr = pick->ai_family == AF_INET
                             ? (void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
                             : (void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
            inet_ntop(pick->ai_family, addr, resolved_hostaddr, sizeof(resolved_hostaddr));
            freeaddrinfo(res);
        }
    }
    PQconninfoFree(opts);
    return rc;
}

static void conn_connect(db_pool_t *p, db_conn_t *c)
{
    const char *keys[] = {"dbname", "options", "application_name", resolved_hostaddr[0] ? "hostaddr" : NULL,
                          NULL};
    const char *vals[] = {p->cfg->database_url, p->conninfo_options, "crmd", resolved_hostaddr, NULL};
    c->pg = PQconnectStartParams(keys, vals, 1);
    c->state = DBC_CONNECTING;
    c->connect_started_ms = p->r->now_ms;
    if (c->pg)
        PQsetNoticeProcessor(c->pg, on_notice, p);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD || PQsetnonblocking(c->pg, 1) != 0) {
        conn_reset(p, c, DB_UNAVAILABLE, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    timer_add(&p->r->timers, &c->timer, p->r->now_ms + CONNECT_TIMEOUT_MS);
    conn_connect_poll(p, c);
}

/* ---------------------------------------------------------------- sending */

static void stmt_name(db_stmt_t id, char out[16])
{
    snprintf(out, 16, "s%u", id);
}

static bool bit_get(const uint64_t *bits, uint32_t i)
{
    return bits[i >> 6] & (1ull << (i & 63));
}

static void bit_set(uint64_t *bits, uint32_t i, bool on)
{
    if (on)
        bits[i >> 6] |= 1ull << (i & 63);
    else
        bits[i >> 6] &= ~(1ull << (i & 63));
}

/* Queues b's statements and its sync on c's output buffer; the flush happens at turn end. */
static bool conn_send(db_pool_t *p, db_conn_t *c, db_batch_t *b)
{
    seq_state_t *sq = batch_seq(b);
    sq->len = sq->pos = 0;
    char name[16];
    for (int i = 0; i < b->nqueries; i++) {
        db_stmt_t id = b->stmts[i];
        b->prepares[i] = 0;
        /* without prepared statements (PgBouncer in transaction mode hands each transaction
         * to any server connection) every statement is sent whole, as an unnamed one */
        const char *whole = b->oneoff[i] ? b->oneoff[i] : !p->cfg->db_prepared ? db_stmt_sql(id) : NULL;
        if (whole) {
            if (!PQsendQueryParams(c->pg, whole, b->nparams[i], NULL, b->values[i], NULL, NULL, 0))
                return false;
            sq->seq[sq->len++] = (uint8_t)(SEQ_QUERY | i);
            continue;
        }
        stmt_name(id, name);
        if (!bit_get(c->prepared, id)) {
            if (!PQsendPrepare(c->pg, name, db_stmt_sql(id), b->nparams[i], NULL))
                return false;
            bit_set(c->prepared, id, true);
            b->prepares[i] = 1;
            sq->seq[sq->len++] = (uint8_t)(SEQ_PREPARE | i);
        }
        if (!PQsendQueryPrepared(c->pg, name, b->nparams[i], b->values[i], NULL, NULL, 0))
            return false;
        sq->seq[sq->len++] = (uint8_t)(SEQ_QUERY | i);
    }
    if (!PQpipelineSync(c->pg))
        return false;
    sq->seq[sq->len++] = SEQ_SYNC;
    fifo_push(&c->sent, b);
    c->inflight++;
    c->need_flush = true;
    b->sent_ns = clock_now_ns();
    return true;
}

static db_conn_t *pick_conn(db_pool_t *p)
{
    db_conn_t *best = NULL;
    for (int k = 0; k < p->n; k++) {
        db_conn_t *c = &p->conns[(p->rr + k) % p->n];
        if (c->state == DBC_READY && (!best || c->inflight < best->inflight))
            best = c;
    }
    p->rr = (p->rr + 1) % p->n;
    return best;
}

static void batch_dispatch(db_pool_t *p, db_batch_t *b)
{
    b->attempts++;
    db_conn_t *c = pick_conn(p);
    if (!c) {
        if (p->breaker_open || p->stopping || p->n == 0) {
            batch_fail(p, b, DB_UNAVAILABLE, "database unavailable");
            return;
        }
        p->stats.waiting++;
        fifo_push(&p->waiting, b); /* first connections still opening */
        return;
    }
    if (!conn_send(p, c, b)) {
        char why[256];
        snprintf(why, sizeof(why), "%s", PQerrorMessage(c->pg));
        /* the batch is not on the connection's queue yet: retry or fail it with the rest */
        if (!batch_retry(p, b))
            batch_fail(p, b, DB_UNAVAILABLE, why);
        conn_reset(p, c, DB_UNAVAILABLE, why);
    }
}

void db_batch_submit(db_batch_t *b, db_done_fn done, void *arg)
{
    db_pool_t *p = tl_pool;
    b->done = done;
    b->arg = arg;
    b->start_ns = clock_now_ns();
    b->status = DB_OK;
    if (!p) {
        static db_pool_t none_pool;
        die("db_batch_submit on a thread without a database pool (%p)", (void *)&none_pool);
    }
    b->pool = p;
    p->stats.queries += (uint64_t)b->nqueries;
    batch_dispatch(p, b);
}

/* ---------------------------------------------------------------- receiving */

static void record_stmt(db_pool_t *p, db_batch_t *b, int i, PGresult *res)
{
    db_stmt_stats_t *st = &p->stmt_stats[b->stmts[i]];
    uint64_t us = (clock_now_ns() - b->start_ns) / 1000;
    st->calls++;
    st->total_us += us;
    db_stmt_t id = b->stmts[i];
    if (!p->stmt_hist[id])
        p->stmt_hist[id] = xcalloc(1, sizeof(hist_t));
    hist_record(p->stmt_hist[id], us);
    if (us > st->max_us)
        st->max_us = us;
    if (res)
        st->rows += (uint64_t)PQntuples(res);
    if (p->cfg->slow_query_ms && us >= (uint64_t)p->cfg->slow_query_ms * 1000) {
        st->slow++;
        char sql[200];
        snprintf(sql, sizeof(sql), "%s", db_stmt_sql(b->stmts[i]));
        log_fields(LOG_WARN, "slow query", "#stmt", (int64_t)b->stmts[i], "#dur_us", (int64_t)us, "sql", sql,
                   NULL);
    }
}

static void batch_sql_error(db_batch_t *b, int i, PGresult *res)
{
    if (b->status != DB_OK)
        return;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(b->sqlstate, sizeof(b->sqlstate), "%s", state ? state : "XX000");
    snprintf(b->error, sizeof(b->error), "%s", PQresultErrorMessage(res));
    const char *col = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
    const char *con = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    snprintf(b->column, sizeof(b->column), "%s", col ? col : "");
    snprintf(b->constraint, sizeof(b->constraint), "%s", con ? con : "");
    for (char *q = b->error; *q; q++)
        if (*q == '\n')
            *q = ' ';
    b->failed_index = i;
    b->status = strcmp(b->sqlstate, "57014") == 0 ? DB_TIMEOUT : DB_SQL_ERROR;
}

/* Takes one non-NULL result for the batch at the head of c's queue. */
static void take_result(db_pool_t *p, db_conn_t *c, PGresult *res)
{
    db_batch_t *b = c->sent.head;
    ExecStatusType st = PQresultStatus(res);
    if (!b) { /* nothing expected it: the protocol is out of step */
        PQclear(res);
        conn_reset(p, c, DB_UNAVAILABLE, "unexpected result");
        return;
    }
    seq_state_t *sq = batch_seq(b);
    uint8_t kind = sq->pos < sq->len ? sq->seq[sq->pos] & 0xC0 : SEQ_SYNC;
    int i = sq->pos < sq->len ? sq->seq[sq->pos] & 0x3F : 0;
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        c->expect_null = false;
        fifo_pop(&c->sent);
        c->inflight--;
        if (b->status == DB_SQL_ERROR && db_sqlstate_transient(b->sqlstate) && batch_retry(p, b))
            return;
        /* Nothing of the batch ran (it is one transaction), so even a write may go again when
         * it lost a serialization conflict or a deadlock (40001, 40P01), or when a statement it
         * relied on was never prepared (26000: its PREPARE was in a pipeline that aborted). */
        if (b->status == DB_SQL_ERROR && b->attempts < READ_RETRIES &&
            (strcmp(b->sqlstate, "26000") == 0 || strcmp(b->sqlstate, "40001") == 0 ||
             strcmp(b->sqlstate, "40P01") == 0)) {
            if (strcmp(b->sqlstate, "26000") == 0)
                bit_set(c->prepared, b->stmts[b->failed_index], false);
            unsigned flags = b->flags;
            b->flags |= DB_READ;
            bool again = batch_retry(p, b);
            b->flags = flags;
            if (again)
                return;
        }
        batch_finish(p, b);
        return;
    }
    c->expect_null = true;
    sq->pos++;
    if (kind == SEQ_PREPARE) {
        if (st != PGRES_COMMAND_OK) {
            bit_set(c->prepared, b->stmts[i], false);
            if (st == PGRES_FATAL_ERROR)
                batch_sql_error(b, i, res);
        }
        PQclear(res);
        return;
    }
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        record_stmt(p, b, i, res);
        b->results[i] = res;
        return;
    }
    if (st == PGRES_FATAL_ERROR)
        batch_sql_error(b, i, res);
    PQclear(res);
}

static void conn_drain_results(db_pool_t *p, db_conn_t *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_reset(p, c, DB_UNAVAILABLE, PQerrorMessage(c->pg));
        return;
    }
    while (c->state == DBC_READY && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            if (c->expect_null) {
                c->expect_null = false;
                continue;
            }
            break; /* nothing more to read now */
        }
        take_result(p, c, res);
    }
    if (c->state == DBC_READY && PQstatus(c->pg) == CONNECTION_BAD)
        conn_reset(p, c, DB_UNAVAILABLE, PQerrorMessage(c->pg));
}

static void on_pg_poll(reactor_t *r, struct io_uring_cqe *cqe)
{
    db_pool_t *p = tl_pool;
    uint32_t idx = reactor_ud_index(cqe->user_data);
    uint32_t gen = (uint32_t)(cqe->user_data >> 32) & 0xffffff;
    if (!p || idx >= (uint32_t)p->n)
        return;
    db_conn_t *c = &p->conns[idx];
    if (gen != (c->gen & 0xffffff) || cqe->res == -ECANCELED)
        return;
    c->poll_armed = false;
    if (cqe->res < 0) {
        conn_reset(p, c, DB_UNAVAILABLE, strerror(-cqe->res));
        return;
    }
    if (c->state == DBC_CONNECTING) {
        conn_connect_poll(p, c);
        return;
    }
    if (c->state != DBC_READY)
        return;
    if (cqe->res & (POLLIN | POLLERR | POLLHUP))
        conn_drain_results(p, c);
    if (c->state != DBC_READY)
        return;
    if (c->need_flush || (cqe->res & POLLOUT))
        conn_flush(p, c);
    else
        conn_arm_poll(p, c, POLLIN);
}

/* ---------------------------------------------------------------- per turn */

static void pool_turn(reactor_t *r, void *arg)
{
    db_pool_t *p = arg;
    for (int i = 0; i < p->n; i++) {
        db_conn_t *c = &p->conns[i];
        if (c->state == DBC_READY && c->need_flush)
            conn_flush(p, c);
    }
    /* callbacks may submit new batches (that land on the queue again next turn) */
    db_batch_t *b;
    while ((b = fifo_pop(&p->done)))
        b->done(b, b->arg);
    /* a callback may have queued output: flush it in this same turn */
    for (int i = 0; i < p->n; i++) {
        db_conn_t *c = &p->conns[i];
        if (c->state == DBC_READY && c->need_flush)
            conn_flush(p, c);
    }
}

/* Finds connections whose oldest batch waited far past statement_timeout: the server or the
 * network is gone without closing the socket. */
static void on_sweep(timer_entry_t *e)
{
    db_pool_t *p = container_of(e, db_pool_t, sweep);
    uint64_t limit_ms = (uint64_t)p->cfg->statement_timeout_ms + DEAD_GRACE_MS;
    uint64_t now_ns = clock_now_ns();
    for (int i = 0; i < p->n; i++) {
        db_conn_t *c = &p->conns[i];
        if (c->state == DBC_READY && c->sent.head && (now_ns - c->sent.head->sent_ns) / 1000000 > limit_ms)
            conn_reset(p, c, DB_TIMEOUT, "no answer from the database");
    }
    timer_add(&p->r->timers, &p->sweep, p->r->now_ms + SWEEP_MS);
}

static void probe_done(db_batch_t *b, void *arg)
{
    db_pool_t *p = arg;
    p->probe_in_flight = false;
    bool up = b->status == DB_OK;
    atomic_store(&health_up, up);
    if (up) {
        atomic_store(&health_ever_up, true);
        atomic_store(&health_latency_us, (uint64_t)(b->dur_ms * 1000));
    }
    atomic_store(&health_checked_ms, clock_now_ms());
    db_batch_release(b);
    arena_reset(&p->probe_arena);
}

static void on_probe(timer_entry_t *e)
{
    db_pool_t *p = container_of(e, db_pool_t, probe);
    if (!p->probe_in_flight) {
        p->probe_in_flight = true;
        db_batch_t *b = db_batch_new(&p->probe_arena, 0);
        db_batch_add(b, p->probe_stmt, 0, NULL);
        db_batch_submit(b, probe_done, p);
    }
    timer_add(&p->r->timers, &p->probe, p->r->now_ms + PROBE_MS);
}

/* ---------------------------------------------------------------- lifecycle */

int db_pool_start(reactor_t *r, const config_t *cfg)
{
    db_pool_t *p = xcalloc(1, sizeof(db_pool_t));
    p->r = r;
    p->cfg = cfg;
    p->stmt_stats = xcalloc(DB_STMT_MAX, sizeof(db_stmt_stats_t));
    p->stmt_hist = xcalloc(DB_STMT_MAX, sizeof(hist_t *));
    tl_pool = p;
    shards_add(&pool_shards, p);
    reactor_set_handler(r, OP_PG_POLL, on_pg_poll);
    reactor_add_hook(r, pool_turn, p);
    if (!cfg->database_url || !*cfg->database_url) {
        p->breaker_open = true;
        return -1;
    }
    /* PgBouncer refuses startup options: behind it the session settings below belong in its
     * connect_query (dev/stack pgbouncer-up does that); an empty value sends none */
    p->conninfo_options[0] = '\0';
    if (cfg->db_prepared)
        snprintf(p->conninfo_options, sizeof(p->conninfo_options),
                 /* generic plans: the list queries take LIMIT and keyset bounds as parameters, and
                  * re-planning them per call cost more than running them (measured 2.3x on deals) */
                 "-c statement_timeout=%d -c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=1 "
                 "-c plan_cache_mode=force_generic_plan",
                 cfg->statement_timeout_ms);
    p->n = cfg->db_pool_size;
    p->conns = xcalloc((size_t)p->n, sizeof(db_conn_t));
    for (int i = 0; i < p->n; i++) {
        db_conn_t *c = &p->conns[i];
        c->idx = (uint32_t)i;
        c->fd = -1;
        c->pool = p;
        c->prepared = xcalloc(DB_STMT_MAX / 64, sizeof(uint64_t));
        timer_init(&c->timer, on_reconnect_timer);
        conn_connect(p, c);
    }
    p->started = true;
    timer_init(&p->sweep, on_sweep);
    timer_add(&r->timers, &p->sweep, r->now_ms + SWEEP_MS);
    if (r->id == 0) { /* one health probe per process */
        p->probe_stmt = db_stmt("SELECT 1");
        arena_init(&p->probe_arena, NULL, 0);
        timer_init(&p->probe, on_probe);
        timer_add(&r->timers, &p->probe, r->now_ms + 1);
    }
    return 0;
}

void db_pool_stop(void)
{
    db_pool_t *p = tl_pool;
    if (!p)
        return;
    p->stopping = true;
    for (int i = 0; i < p->n; i++) {
        db_conn_t *c = &p->conns[i];
        timer_del(&c->timer);
        if (c->state != DBC_DOWN)
            conn_reset(p, c, DB_UNAVAILABLE, "shutting down");
        timer_del(&c->timer);
    }
    db_batch_t *b;
    while ((b = fifo_pop(&p->waiting)))
        batch_fail(p, b, DB_UNAVAILABLE, "shutting down");
    while ((b = fifo_pop(&p->done)))
        b->done(b, b->arg);
    timer_del(&p->sweep);
    timer_del(&p->probe);
    if (p->r->id == 0)
        arena_destroy(&p->probe_arena);
    /* the pool stays registered (stats readers may hold it); its memory lives until exit */
    for (int i = 0; i < p->n; i++) {
        free(p->conns[i].prepared);
        p->conns[i].prepared = NULL;
    }
    tl_pool = NULL;
}

db_health_t db_health(void)
{
    db_health_t h;
    h.up = atomic_load(&health_up);
    h.ever_up = atomic_load(&health_ever_up);
    h.latency_ms = (double)atomic_load(&health_latency_us) / 1000.0;
    h.checked_ms = atomic_load(&health_checked_ms);
    return h;
}

void db_pool_stats(db_pool_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    SHARDS_EACH(&pool_shards, db_pool_t, p)
    {
        out->size += (uint32_t)p->n;
        for (int i = 0; i < p->n; i++) {
            out->connected += p->conns[i].state == DBC_READY;
            out->busy += p->conns[i].inflight > 0;
        }
        out->waiting += p->stats.waiting;
        out->queries += p->stats.queries;
        out->errors += p->stats.errors;
        out->retries += p->stats.retries;
        out->timeouts += p->stats.timeouts;
        out->unavailable += p->stats.unavailable;
    }
}

void db_stmt_stats(db_stmt_t id, db_stmt_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (id >= DB_STMT_MAX)
        return;
    SHARDS_EACH(&pool_shards, db_pool_t, p)
    {
        db_stmt_stats_t *s = &p->stmt_stats[id];
        out->calls += s->calls;
        out->total_us += s->total_us;
        out->max_us = MAX(out->max_us, s->max_us);
        out->slow += s->slow;
        out->rows += s->rows;
    }
}

void db_stmt_hist(db_stmt_t id, hist_t *out)
{
    if (id >= DB_STMT_MAX)
        return;
    SHARDS_EACH(&pool_shards, db_pool_t, p)
    {
        if (p->stmt_hist[id])
            hist_merge(out, p->stmt_hist[id]);
    }
}
