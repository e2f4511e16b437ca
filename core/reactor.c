/* The per-thread io_uring loop; see reactor.h. */
#include "core/reactor.h"
#include "core/common.h"

#include "build_config.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define REACTOR_SQ_ENTRIES 4096
#define REACTOR_TICK_MS    10

static void on_wake(reactor_t *r, struct io_uring_cqe *cqe);
static void on_log_write(reactor_t *r, struct io_uring_cqe *cqe);

static int ring_setup(reactor_t *r)
{
    struct io_uring_params p;
    static const unsigned flag_sets[] = {
#if HAVE_DEFER_TASKRUN
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
#endif
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int ret = -EINVAL;
    for (size_t i = 0; i < ARRAY_LEN(flag_sets); i++) {
        memset(&p, 0, sizeof(p));
        p.flags = flag_sets[i] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = REACTOR_SQ_ENTRIES * 4;
        ret = io_uring_queue_init_params(REACTOR_SQ_ENTRIES, &r->ring, &p);
        if (ret == 0) {
            if (i > 0)
                log_warn("io_uring: SINGLE_ISSUER|DEFER_TASKRUN unavailable, using %s",
                         flag_sets[i] ? "COOP_TASKRUN" : "default task running");
            break;
        }
        if (ret != -EINVAL)
            break;
    }
    if (ret < 0) {
        log_error("io_uring_queue_init failed: %s%s", strerror(-ret),
                  ret == -ENOSYS || ret == -EPERM
                      ? " (io_uring is disabled: check sysctl kernel.io_uring_disabled)"
                      : "");
        return ret;
    }
    if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_FAST_POLL)) {
        log_error("this kernel's io_uring lacks EXT_ARG/FAST_POLL: crmd needs Linux 6.0 or newer");
        io_uring_queue_exit(&r->ring);
        return -ENOTSUP;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
    static const int needed[] = {IORING_OP_ACCEPT,   IORING_OP_RECV,         IORING_OP_SEND, IORING_OP_CLOSE,
                                 IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL, IORING_OP_READ, IORING_OP_WRITE};
    for (size_t i = 0; probe && i < ARRAY_LEN(needed); i++) {
        if (!io_uring_opcode_supported(probe, needed[i])) {
            log_error("this kernel's io_uring lacks opcode %d: crmd needs Linux 6.0 or newer", needed[i]);
            io_uring_free_probe(probe);
            io_uring_queue_exit(&r->ring);
            return -ENOTSUP;
        }
    }
    if (probe)
        io_uring_free_probe(probe);
    /* Saves an fd lookup per io_uring_enter; optional. */
    io_uring_register_ring_fd(&r->ring);
    return 0;
}

/* liburing 2.3 has io_uring_register_buf_ring but not io_uring_setup_buf_ring: map the ring
 * ourselves. The buffers are pre-faulted so their memory shows in RSS from the start rather
 * than as growth per connection. */
static int buf_ring_setup(reactor_t *r, uint32_t count, uint32_t size)
{
    size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)mem, .ring_entries = count, .bgid = 0};
    int ret = io_uring_register_buf_ring(&r->ring, &reg, 0);
    if (ret < 0) {
        munmap(mem, ring_bytes);
        log_error("io_uring_register_buf_ring failed: %s (provided buffer rings need Linux 5.19+)",
                  strerror(-ret));
        return ret;
    }
    r->br = mem;
    r->bufs = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
    if (r->bufs == MAP_FAILED)
        die("cannot map %u receive buffers", count);
    r->buf_count = count;
    r->buf_size = size;
    r->buf_mask = io_uring_buf_ring_mask(count);
    r->bgid = 0;
    io_uring_buf_ring_init(r->br);
    for (uint32_t i = 0; i < count; i++)
        io_uring_buf_ring_add(r->br, r->bufs + (size_t)i * size, size, (unsigned short)i, r->buf_mask,
                              (int)i);
    io_uring_buf_ring_advance(r->br, (int)count);
    return 0;
}

static void arm_wake(reactor_t *r)
{
    struct io_uring_sqe *sqe = reactor_sqe(r);
    io_uring_prep_read(sqe, r->wake_fd, &r->wake_val, sizeof(r->wake_val), 0);
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_WAKE, 0));
}

int reactor_init(reactor_t *r, unsigned id, uint32_t buf_count, uint32_t buf_size)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    int ret = ring_setup(r);
    if (ret < 0)
        return ret;
    ret = buf_ring_setup(r, buf_count, buf_size);
    if (ret < 0) {
        io_uring_queue_exit(&r->ring);
        return ret;
    }
    r->now_ms = clock_now_ms();
    clock_http_date_update(&r->date);
    timer_wheel_init(&r->timers, r->now_ms, REACTOR_TICK_MS);
    r->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (r->wake_fd < 0)
        die("eventfd: %s", strerror(errno));
    r->handlers[OP_WAKE] = on_wake;
    r->handlers[OP_LOG] = on_log_write;
    arm_wake(r);
    log_set_sink(&r->log);
    return 0;
}

void reactor_destroy(reactor_t *r)
{
    log_set_sink(NULL);
    /* whatever was logged and not yet written goes out synchronously */
    for (buf_t *b = &r->log.writing; b; b = b == &r->log.writing ? &r->log.pending : NULL) {
        size_t off = b == &r->log.writing ? r->log.written : 0;
        while (off < b->len) {
            ssize_t n = write(STDERR_FILENO, b->data + off, b->len - off);
            if (n <= 0) {
                log_count_dropped(log_count_lines(b->data + off, b->len - off));
                break;
            }
            off += (size_t)n;
        }
    }
    buf_free(&r->log.writing);
    buf_free(&r->log.pending);
    io_uring_queue_exit(&r->ring);
    munmap(r->br, (size_t)r->buf_count * sizeof(struct io_uring_buf));
    munmap(r->bufs, (size_t)r->buf_count * r->buf_size);
    close(r->wake_fd);
}

struct io_uring_sqe *reactor_sqe(reactor_t *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    while (unlikely(!sqe)) {
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    return sqe;
}

void reactor_buf_return(reactor_t *r, uint16_t bid)
{
    io_uring_buf_ring_add(r->br, reactor_buf(r, bid), r->buf_size, bid, r->buf_mask, 0);
    io_uring_buf_ring_advance(r->br, 1);
}

void reactor_set_handler(reactor_t *r, enum reactor_op op, reactor_cqe_fn fn)
{
    r->handlers[op] = fn;
}

void reactor_add_hook(reactor_t *r, reactor_hook_fn fn, void *arg)
{
    if (r->nhooks >= REACTOR_MAX_HOOKS)
        die("too many reactor hooks");
    r->hooks[r->nhooks] = fn;
    r->hook_args[r->nhooks++] = arg;
}

void reactor_wake(reactor_t *r)
{
    uint64_t one = 1;
    ssize_t n = write(r->wake_fd, &one, sizeof(one));
    (void)n;
}

static void on_wake(reactor_t *r, struct io_uring_cqe *cqe)
{
    if (r->on_wake)
        r->on_wake(r, r->on_wake_arg);
    if (!r->stop)
        arm_wake(r);
}

/* Queues the next write of the sink's buffer: all of it, or on a pipe as many whole lines as
 * fit in one atomic write (a longer line goes alone), so threads never tear each other's lines. */
static void log_write_next(reactor_t *r)
{
    log_sink_t *s = &r->log;
    const char *p = s->writing.data + s->written;
    size_t left = s->writing.len - s->written, n = left, chunk = log_write_chunk();
    if (chunk && left > chunk) {
        const char *nl = memrchr(p, '\n', chunk);
        if (!nl)
            nl = memchr(p + chunk, '\n', left - chunk);
        n = nl ? (size_t)(nl - p) + 1 : left;
    }
    struct io_uring_sqe *sqe = reactor_sqe(r);
    io_uring_prep_write(sqe, STDERR_FILENO, p, (unsigned)n, (uint64_t)-1);
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_LOG, 0));
    s->in_flight = 1;
}

/* Hands the pending log lines to the ring unless a write is already in flight. */
static void log_flush(reactor_t *r)
{
    log_sink_t *s = &r->log;
    if (s->in_flight || s->pending.len == 0)
        return;
    buf_t tmp = s->writing;
    s->writing = s->pending;
    s->pending = tmp;
    s->pending.len = 0;
    s->written = 0;
    log_write_next(r);
}

static void on_log_write(reactor_t *r, struct io_uring_cqe *cqe)
{
    log_sink_t *s = &r->log;
    s->in_flight = 0;
    if (cqe->res <= 0) {
        /* stderr is gone or broken: count every line we lose rather than spin on it */
        log_count_dropped(MAX(log_count_lines(s->writing.data + s->written, s->writing.len - s->written), 1));
        s->writing.len = 0;
        return;
    }
    s->written += (size_t)cqe->res;
    if (s->written < s->writing.len) {
        log_write_next(r);
        return;
    }
    s->writing.len = 0;
}

void reactor_run(reactor_t *r)
{
    r->now_ms = clock_now_ms();
    atomic_store_explicit(&r->beat_ms, r->now_ms, memory_order_relaxed);
    while (!r->stop) {
        clock_http_date_update(&r->date);
        /* thousands of connections expiring together (408s, closes) are spread over turns,
         * so requests, PostgreSQL and Redis completions keep flowing between them */
        timer_run_budget(&r->timers, r->now_ms, REACTOR_TIMER_BUDGET);
        r->again = false;
        for (int i = 0; i < r->nhooks; i++)
            r->hooks[i](r, r->hook_args[i]);
        log_tick();
        log_flush(r);

        int64_t wait_ms = timer_next_ms(&r->timers, r->now_ms);
        if (wait_ms < 0 || wait_ms > 1000)
            wait_ms = 1000; /* the Date header and drain checks want a turn a second */
        if (r->again)
            wait_ms = 0;
        struct __kernel_timespec ts = {.tv_sec = wait_ms / 1000, .tv_nsec = (wait_ms % 1000) * 1000000};
        struct io_uring_cqe *cqe;
        int ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
            die("io_uring_submit_and_wait_timeout: %s", strerror(-ret));
        /* one clock read per turn, after the wait, so completion handlers see current time */
        r->now_ms = clock_now_ms();
        atomic_store_explicit(&r->beat_ms, r->now_ms, memory_order_relaxed);

        /* completions are handled REACTOR_CQE_BUDGET per turn, like timers: thousands arriving
         * together (a storm of sends or closes) are spread over turns, so the output of the
         * first ones is submitted before the last ones run */
        unsigned head, n = 0;
        io_uring_for_each_cqe(&r->ring, head, cqe)
        {
            enum reactor_op op = reactor_ud_op(cqe->user_data);
            if (op < OP_MAX && r->handlers[op])
                r->handlers[op](r, cqe);
            if (++n == REACTOR_CQE_BUDGET)
                break; /* the rest: next turn, whose wait returns at once while they are there */
        }
        io_uring_cq_advance(&r->ring, n);
    }
    log_flush(r);
}
