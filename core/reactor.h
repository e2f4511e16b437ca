/*
 * One io_uring reactor per thread: the ring, its provided-buffer ring for receives, a timer
 * wheel, a wake-up eventfd and the asynchronous log writer. Completions are dispatched on the
 * op code packed into user_data to the handler a module registered for that op.
 */
#ifndef CRMD_CORE_REACTOR_H
#define CRMD_CORE_REACTOR_H

/* Timer callbacks one loop turn runs at most (each may answer 408 or close a connection). */
#define REACTOR_TIMER_BUDGET 256
/* Completions one loop turn handles at most. */
#define REACTOR_CQE_BUDGET 512

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "core/timer.h"
#include "core/clock.h"

/* Every op code of the process: one handler each. */
enum reactor_op {
    OP_IGNORE = 0, /* completions nobody waits for (cancels) */
    OP_WAKE,       /* eventfd read: another thread asked us to look at shared state */
    OP_LOG,        /* asynchronous write of log lines to stderr */
    OP_ACCEPT,     /* multishot accept on a listener; index = listener */
    OP_RECV,       /* multishot recv; index = connection slot */
    OP_SEND,       /* send of a connection's output; index = connection slot */
    OP_CLOSE,      /* close of a connection's socket; index = connection slot */
    OP_PG_POLL,    /* POLL_ADD on a PostgreSQL socket; index = pool slot */
    OP_REDIS_POLL, /* POLL_ADD on the Redis socket */
    OP_MAX = 16,
};

static inline uint64_t reactor_ud(enum reactor_op op, uint32_t index)
{
    return ((uint64_t)op << 56) | index;
}
static inline enum reactor_op reactor_ud_op(uint64_t ud)
{
    return (enum reactor_op)(ud >> 56);
}
static inline uint32_t reactor_ud_index(uint64_t ud)
{
    return (uint32_t)ud;
}

typedef struct reactor reactor_t;
typedef void (*reactor_cqe_fn)(reactor_t *r, struct io_uring_cqe *cqe);
typedef void (*reactor_hook_fn)(reactor_t *r, void *arg);

#define REACTOR_MAX_HOOKS 8

struct reactor {
    struct io_uring ring;
    unsigned id;     /* thread index */
    uint64_t now_ms; /* monotonic, read once per loop turn */
    /* now_ms published for other threads: a watchdog sees a loop that stopped turning */
    _Atomic uint64_t beat_ms;
    clock_http_date_t date;
    timer_wheel_t timers;
    bool stop;  /* leave the loop after this turn */
    bool again; /* a hook left work for the next turn: do not sleep */

    /* provided-buffer ring for multishot receives */
    struct io_uring_buf_ring *br;
    char *bufs;
    uint32_t buf_count, buf_size, buf_mask;
    uint16_t bgid;

    int wake_fd;
    uint64_t wake_val;
    log_sink_t log;

    reactor_cqe_fn handlers[OP_MAX];
    /* called once per loop turn before the ring is entered (e.g. flush queued queries) */
    reactor_hook_fn hooks[REACTOR_MAX_HOOKS];
    void *hook_args[REACTOR_MAX_HOOKS];
    int nhooks;
    /* called when the wake eventfd fires */
    reactor_hook_fn on_wake;
    void *on_wake_arg;
};

/* Creates the ring in the calling thread (which must be the only one to use it). Returns 0 or
 * -errno with a logged reason naming the missing kernel feature. */
int reactor_init(reactor_t *r, unsigned id, uint32_t buf_count, uint32_t buf_size);
void reactor_destroy(reactor_t *r);

/* A submission entry; when the SQ is full, submits and retries, so it never fails. */
struct io_uring_sqe *reactor_sqe(reactor_t *r);

/* Returns buffer bid of the provided-buffer ring to the kernel. */
void reactor_buf_return(reactor_t *r, uint16_t bid);
static inline char *reactor_buf(reactor_t *r, uint16_t bid)
{
    return r->bufs + (size_t)bid * r->buf_size;
}

void reactor_set_handler(reactor_t *r, enum reactor_op op, reactor_cqe_fn fn);
void reactor_add_hook(reactor_t *r, reactor_hook_fn fn, void *arg);

/* Wakes r's loop from any thread. */
void reactor_wake(reactor_t *r);

/* Runs until r->stop is set. */
void reactor_run(reactor_t *r);

#endif
