/*
 * The connection state machine of one reactor thread.
 *
 * A connection owns no receive memory while idle: multishot recv fills buffers of the
 * reactor's provided-buffer ring, the bytes are appended to conn->in (taken from the thread's
 * buffer pool only while a request is incomplete or being answered) and the ring buffer is
 * handed back at once. Requests are parsed from conn->in in order; responses are appended to
 * conn->out, and at most one send is in flight, so the answers to a pipelined batch leave in
 * one send. A connection slot is freed only after its last CQE.
 */
#include "http/server.h"
#include "http/trace.h"
#include "http/server_internal.h"
#include "http/compress.h"
#include "http/cors.h"
#include "http/etag.h"
#include "core/common.h"
#include "core/shards.h"
#include "core/json.h"
#include "core/log.h"
#include "core/logmask.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

_Atomic int g_server_state;
_Atomic uint32_t g_open_conns;

/* Output queued beyond this stops parsing further pipelined requests until a send drains it. */
#define OUT_HIGH_WATER (256u * 1024)
/* Unparsed input beyond this (a client pipelining without reading) closes the connection. */
#define IN_MAX    (4u << 20)
#define LINGER_MS 2000
/* Draining, an idle keep-alive connection is closed once it has been quiet this long; a
 * request it sends before then is answered (with Connection: close). Closing it at once
 * would meet requests already on the wire. */
#define DRAIN_IDLE_GRACE_MS 500
/* Connection closes (a cancel and a close each) one loop turn issues at most. */
#define HTTP_CLOSES_PER_TURN 256
/* A conn->in this large is not kept in the pool once drained. */
#define CONN_BUF_HINT 4096

static __thread http_server_t *tl_server;

static shards_t server_shards;

static void conn_close(http_server_t *s, http_conn_t *c);
static void conn_issue_close(http_server_t *s, http_conn_t *c);
static void admin_reserve_refill(http_server_t *s);
static void conn_error(http_server_t *s, http_conn_t *c, int status, const char *code, const char *detail);

/* ---------------------------------------------------------------- listener */

static int listen_socket(const config_addr_t *a)
{
    int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&a->addr, a->addr_len) < 0 || listen(fd, 4096) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static void arm_accept(http_server_t *s, int li)
{
    struct io_uring_sqe *sqe = reactor_sqe(s->r);
    io_uring_prep_multishot_accept(sqe, s->listeners[li].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_ACCEPT, (uint32_t)li));
    s->listeners[li].accept_armed = true;
}

static void arm_recv(http_server_t *s, http_conn_t *c)
{
    struct io_uring_sqe *sqe = reactor_sqe(s->r);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = s->r->bgid;
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_RECV, c->idx));
    c->flags |= CONN_RECV_ARMED;
    c->ops++;
}

/* ---------------------------------------------------------------- slots and pools */

static void on_conn_timer(timer_entry_t *e);

static http_conn_t *conn_alloc(http_server_t *s, int fd)
{
    uint32_t idx;
    if (s->nfree)
        idx = s->free_slots[--s->nfree];
    else if (s->next_unused < s->max_conns)
        idx = s->next_unused++;
    else
        return NULL;
    http_conn_t *c = &s->conns[idx];
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->idx = idx;
    timer_init(&c->timer, on_conn_timer);
    s->open_conns++;
    atomic_fetch_add_explicit(&g_open_conns, 1, memory_order_relaxed);
    return c;
}

buf_t *pool_buf(http_server_t *s)
{
    return buf_pool_get(&s->pool, CONN_BUF_HINT);
}

http_ctx_t *ctx_get(http_server_t *s, http_conn_t *c)
{
    http_ctx_t *ctx = s->free_ctx;
    if (ctx) {
        s->free_ctx = ctx->next_free;
    } else {
        ctx = xcalloc(1, sizeof(*ctx));
        ctx->srv = s;
    }
    ctx->conn = c;
    ctx->peer_family = c ? c->peer_family : 0;
    if (c)
        memcpy(ctx->peer_addr, c->peer_addr, 16);
    ctx->route = NULL;
    ctx->nparams = 0;
    ctx->body = (http_str_t){NULL, 0};
    ctx->path = (http_str_t){NULL, 0};
    ctx->body_raw = 0;
    ctx->head_len = 0;
    ctx->status = 0;
    ctx->finished = false;
    ctx->head_only = false;
    ctx->cacheable = false;
    ctx->capture = NULL;
    ctx->sub_done = NULL;
    ctx->no_store = false;
    ctx->handler_data = NULL;
    ctx->request_id_len = 0;
    ctx->key_prefix[0] = '\0';
    ctx->start_ns = s->now_ns;
    ctx->resp = NULL;
    ctx->headers.len = 0;
    ctx->timing.len = 0;
    arena_init(&ctx->arena, ctx->arena_inline, sizeof(ctx->arena_inline));
    return ctx;
}

void ctx_put(http_server_t *s, http_ctx_t *ctx)
{
    arena_reset(&ctx->arena);
    if (ctx->orphan_in) {
        buf_pool_put(&s->pool, ctx->orphan_in);
        ctx->orphan_in = NULL;
    }
    if (ctx->resp) {
        buf_pool_put(&s->pool, ctx->resp);
        ctx->resp = NULL;
    }
    ctx->conn = NULL;
    ctx->next_free = s->free_ctx;
    s->free_ctx = ctx;
}

static void conn_free(http_server_t *s, http_conn_t *c)
{
    timer_del(&c->timer);
    if (c->ctx && c->state == CONN_HANDLER) {
        /* the handler still reads the request (head, params, body) out of the input buffer */
        c->ctx->orphan_in = c->in;
        c->in = NULL;
    }
    if (c->in)
        buf_pool_put(&s->pool, c->in);
    if (c->out)
        buf_pool_put(&s->pool, c->out);
    if (c->sending)
        buf_pool_put(&s->pool, c->sending);
    if (c->ctx) {
        if (c->state == CONN_HANDLER)
            c->ctx->conn = NULL; /* the handler finishes later and discards its answer */
        else
            ctx_put(s, c->ctx);
    }
    c->in = c->out = c->sending = NULL;
    c->ctx = NULL;
    c->fd = -1;
    if (s->listeners[c->listener].admin) {
        s->admin_conns--;
        admin_reserve_refill(s);
    }
    s->free_slots[s->nfree++] = c->idx;
    s->open_conns--;
    atomic_fetch_sub_explicit(&g_open_conns, 1, memory_order_relaxed);
    if (s->draining && s->open_conns == 0)
        s->r->stop = true;
}

static void conn_maybe_free(http_server_t *s, http_conn_t *c)
{
    if ((c->flags & CONN_CLOSING) && !(c->flags & CONN_CLOSE_QUEUED) && c->ops == 0)
        conn_free(s, c);
}

/* Cancels every operation on the socket, then closes it; the slot is freed after the last CQE. */
static void conn_close(http_server_t *s, http_conn_t *c)
{
    if (c->flags & CONN_CLOSING)
        return;
    c->flags |= CONN_CLOSING | CONN_CLOSE_QUEUED;
    timer_del(&c->timer);
    /* Thousands of connections can end in one turn (timeouts, a client pool closing): their
     * closes are spread over turns so requests and dependency completions keep flowing. */
    c->close_next = UINT32_MAX;
    if (s->nclose_queued++)
        s->conns[s->close_tail].close_next = c->idx;
    else
        s->close_head = c->idx;
    s->close_tail = c->idx;
}

/* Issues the cancel and close of up to HTTP_CLOSES_PER_TURN queued connections. */
static void closes_issue(reactor_t *r, void *arg)
{
    http_server_t *s = arg;
    for (int n = 0; n < HTTP_CLOSES_PER_TURN && s->nclose_queued; n++) {
        http_conn_t *c = &s->conns[s->close_head];
        s->close_head = c->close_next;
        s->nclose_queued--;
        c->flags &= ~CONN_CLOSE_QUEUED;
        conn_issue_close(s, c);
    }
    if (s->nclose_queued)
        r->again = true;
}

static void conn_issue_close(http_server_t *s, http_conn_t *c)
{
    /* cancel by user_data, one lookup each: a cancel by fd scans every pending request of
     * the ring, and thousands of those (10,000 idle connections expiring) spun a core for
     * seconds while live sockets starved */
    if (c->flags & CONN_RECV_ARMED) {
        struct io_uring_sqe *sqe = reactor_sqe(s->r);
        io_uring_prep_cancel64(sqe, reactor_ud(OP_RECV, c->idx), 0);
        io_uring_sqe_set_data64(sqe, reactor_ud(OP_IGNORE, 0));
    }
    if (c->flags & CONN_SENDING) {
        struct io_uring_sqe *sqe = reactor_sqe(s->r);
        io_uring_prep_cancel64(sqe, reactor_ud(OP_SEND, c->idx), 0);
        io_uring_sqe_set_data64(sqe, reactor_ud(OP_IGNORE, 0));
    }
    struct io_uring_sqe *sqe = reactor_sqe(s->r);
    io_uring_prep_close(sqe, c->fd);
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_CLOSE, c->idx));
    c->ops++;
}

/* ---------------------------------------------------------------- timers */

/* Chooses the one timer a connection needs in its current state. Fixed deadlines (head, body,
 * linger) are not pushed back by later bytes; idle and send deadlines restart on activity. */
void conn_update_timer(http_server_t *s, http_conn_t *c)
{
    const config_t *cfg = &g_config;
    if (c->flags & CONN_CLOSING)
        return;
    size_t avail = c->in ? c->in->len - c->in_start : 0;
    uint8_t kind;
    int ms;
    if (c->state == CONN_HANDLER)
        kind = TIMER_NONE, ms = 0; /* the handler's own query and cache timeouts bound it */
    else if ((c->flags & CONN_CLOSE_AFTER) && !(c->flags & CONN_SENDING) && !c->out)
        kind = TIMER_LINGER, ms = LINGER_MS;
    else if (c->state == CONN_BODY)
        kind = TIMER_BODY, ms = cfg->request_timeout_ms;
    else if (avail > 0 || c->requests == 0)
        kind = TIMER_HEAD, ms = cfg->header_timeout_ms;
    else if (c->flags & CONN_SENDING)
        kind = TIMER_SEND, ms = cfg->idle_timeout_ms;
    else
        kind = TIMER_IDLE, ms = s->draining ? DRAIN_IDLE_GRACE_MS : cfg->idle_timeout_ms;
    if (kind == TIMER_NONE) {
        timer_del(&c->timer);
    } else if (kind != c->timer_kind || kind == TIMER_IDLE || kind == TIMER_SEND) {
        timer_add(&s->r->timers, &c->timer, s->r->now_ms + (uint64_t)ms);
    }
    c->timer_kind = kind;
}

static void on_conn_timer(timer_entry_t *e)
{
    http_conn_t *c = container_of(e, http_conn_t, timer);
    http_server_t *s = tl_server;
    size_t avail = c->in ? c->in->len - c->in_start : 0;
    c->timer_kind = TIMER_NONE;
    if (c->flags & CONN_CLOSE_AFTER || c->flags & CONN_SENDING) {
        conn_close(s, c); /* lingering done, or a peer that stopped reading */
        return;
    }
    if (c->state == CONN_BODY || (c->state == CONN_HEAD && avail > 0)) {
        log_fields(LOG_WARN, "request timeout", "reason",
                   c->state == CONN_BODY ? "body not received in time" : "request head not received in time",
                   NULL);
        conn_error(s, c, 408, "request-timeout", "the request was not received in time");
        conn_flush(s, c);
        return;
    }
    if (s->draining) {
        /* draining, the close is graceful (FIN, then read until the peer's EOF), so a request
         * that crosses it on the wire meets a clean end of stream, never a reset */
        c->flags |= CONN_CLOSE_AFTER;
        conn_flush(s, c);
        return;
    }
    conn_close(s, c);
}

/* ---------------------------------------------------------------- accept */

/* Out of descriptors, a re-armed accept fails at once for as long as the backlog holds a
 * connection: pause this listener instead, 10 ms doubling to 1 s, and say so once a second. */
#define ACCEPT_BACKOFF_MIN_MS 10
#define ACCEPT_BACKOFF_MAX_MS 1000

static void on_accept_resume(timer_entry_t *e)
{
    http_listener_t *l = timer_owner(e, http_listener_t, resume);
    http_server_t *s = tl_server;
    if (!s->draining && l->fd >= 0 && !l->accept_armed)
        arm_accept(s, (int)(l - s->listeners));
}

/* Puts the spent admin reserve back, as far as descriptors allow. */
static void admin_reserve_refill(http_server_t *s)
{
    for (int i = 0; i < HTTP_ADMIN_FD_RESERVE; i++)
        if (s->admin_reserve[i] < 0 && (s->admin_reserve[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
            return;
}

static void on_accept_no_fds(http_server_t *s, int li, int err)
{
    http_listener_t *l = &s->listeners[li];
    reactor_t *r = s->r;
    l->fd_errors++;
    s->stats.accept_fd_exhausted++;
    if (r->now_ms - l->last_fd_log_ms >= 1000) {
        log_fields(LOG_ERROR, "accept: out of file descriptors, pausing this listener", "error",
                   strerror(err), "listener", l->admin ? "admin" : "public", "#failures",
                   (int64_t)(l->fd_errors - l->fd_errors_logged), "#backoff_ms",
                   (int64_t)(l->backoff_ms ? l->backoff_ms : ACCEPT_BACKOFF_MIN_MS), NULL);
        l->last_fd_log_ms = r->now_ms;
        l->fd_errors_logged = l->fd_errors;
    }
    if (l->admin) {
        /* give one reserved descriptor back to the kernel so the operator's accept succeeds */
        for (int i = 0; i < HTTP_ADMIN_FD_RESERVE; i++)
            if (s->admin_reserve[i] >= 0) {
                close(s->admin_reserve[i]);
                s->admin_reserve[i] = -1;
                if (!l->accept_armed)
                    arm_accept(s, li);
                return;
            }
    }
    l->backoff_ms = l->backoff_ms ? MIN(l->backoff_ms * 2, ACCEPT_BACKOFF_MAX_MS) : ACCEPT_BACKOFF_MIN_MS;
    if (l->accept_armed) {
        /* a multishot accept that reported an error may still be armed: stop it for the pause */
        struct io_uring_sqe *sqe = reactor_sqe(r);
        io_uring_prep_cancel64(sqe, reactor_ud(OP_ACCEPT, (uint32_t)li), 0);
        io_uring_sqe_set_data64(sqe, reactor_ud(OP_IGNORE, 0));
    }
    timer_add(&r->timers, &l->resume, r->now_ms + l->backoff_ms);
}

static void on_accept(reactor_t *r, struct io_uring_cqe *cqe)
{
    http_server_t *s = tl_server;
    int li = (int)reactor_ud_index(cqe->user_data);
    http_listener_t *l = &s->listeners[li];
    if (!(cqe->flags & IORING_CQE_F_MORE))
        l->accept_armed = false;
    if (cqe->res == -EMFILE || cqe->res == -ENFILE) {
        on_accept_no_fds(s, li, -cqe->res);
        return;
    }
    if (!l->accept_armed && !s->draining && l->fd >= 0 && !timer_armed(&l->resume))
        arm_accept(s, li);
    if (cqe->res < 0) {
        if (cqe->res != -ECANCELED)
            log_warn("accept: %s", strerror(-cqe->res));
        return;
    }
    l->backoff_ms = 0;
    int fd = cqe->res;
    bool full =
        l->admin ? s->admin_conns >= HTTP_ADMIN_MAX_CONNS
                 : atomic_load_explicit(&g_open_conns, memory_order_relaxed) >= (uint32_t)g_config.max_conns;
    if (s->draining || full) {
        s->stats.rejected++;
        if (!s->draining && r->now_ms - s->last_cap_log_ms >= 1000) {
            s->last_cap_log_ms = r->now_ms;
            log_fields(LOG_WARN, "connection limit reached: refusing connections", "listener",
                       l->admin ? "admin" : "public", "#max_conns",
                       (int64_t)(l->admin ? HTTP_ADMIN_MAX_CONNS : g_config.max_conns), "#refused",
                       (int64_t)s->stats.rejected, NULL);
        }
        close(fd);
        return;
    }
    http_conn_t *c = conn_alloc(s, fd);
    if (!c) {
        close(fd);
        return;
    }
    s->stats.accepted++;
    c->listener = (uint8_t)li;
    if (l->admin)
        s->admin_conns++;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        c->peer_family = (uint8_t)ss.ss_family;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
            memcpy(c->peer_addr, &in4->sin_addr, 4);
            c->peer_port = ntohs(in4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            memcpy(c->peer_addr, &in6->sin6_addr, 16);
            c->peer_port = ntohs(in6->sin6_port);
        }
    }
    arm_recv(s, c);
    conn_update_timer(s, c);
}

/* ---------------------------------------------------------------- receive */

static void str_rebase(http_str_t *str, const char *lo, const char *hi, ptrdiff_t d)
{
    if (str->p >= lo && str->p < hi)
        str->p += d;
}

/* conn->in moved while ctx points into it: move every such pointer along. */
static void ctx_rebase(http_ctx_t *ctx, const char *old, size_t old_len, const char *new_base)
{
    const char *hi = old + old_len + 1;
    ptrdiff_t d = new_base - old;
    http_request_t *q = &ctx->req;
    http_str_t *fixed[] = {&q->method_str,
                           &q->target,
                           &q->path,
                           &q->query,
                           &q->host,
                           &q->authorization,
                           &q->x_api_key,
                           &q->x_request_id,
                           &q->accept_encoding,
                           &q->if_none_match,
                           &q->if_match,
                           &q->origin,
                           &q->content_type,
                           &q->idempotency_key,
                           &q->x_forwarded_for,
                           &q->access_control_request_method,
                           &q->access_control_request_headers,
                           &q->traceparent,
                           &ctx->path,
                           &ctx->body};
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        str_rebase(fixed[i], old, hi, d);
    for (uint32_t i = 0; i < q->num_headers; i++) {
        str_rebase(&q->headers[i].name, old, hi, d);
        str_rebase(&q->headers[i].value, old, hi, d);
    }
    for (int i = 0; i < ctx->nparams; i++)
        str_rebase(&ctx->params[i], old, hi, d);
}

static void conn_append_input(http_server_t *s, http_conn_t *c, const char *data, size_t len)
{
    if (!c->in)
        c->in = pool_buf(s);
    buf_t *in = c->in;
    /* drop consumed bytes first when nothing points into them */
    if (c->in_start && (!c->ctx || c->state == CONN_HEAD)) {
        buf_consume(in, c->in_start);
        c->in_start = 0;
    }
    const char *old = in->data;
    size_t old_len = in->len;
    buf_append(in, data, len);
    if (in->data != old && old && c->ctx && c->state != CONN_HEAD)
        ctx_rebase(c->ctx, old, old_len, in->data);
}

/* How much unread input c may hold: IN_MAX, plus the body being received (bounded by its
 * route's limit, checked when the head arrived; a chunked body by the same limit, doubled for
 * its framing). */
static size_t in_cap(const http_conn_t *c)
{
    if (!c->ctx || c->state != CONN_BODY)
        return IN_MAX;
    const http_ctx_t *ctx = c->ctx;
    uint64_t body = ctx->req.flags & HTTP_REQ_CHUNKED ? 2 * ctx->chunked.limit : ctx->req.content_length;
    return IN_MAX + ctx->head_len + (size_t)body;
}

static void on_recv(reactor_t *r, struct io_uring_cqe *cqe)
{
    http_server_t *s = tl_server;
    http_conn_t *c = &s->conns[reactor_ud_index(cqe->user_data)];
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        c->flags &= ~CONN_RECV_ARMED;
        c->ops--;
    }
    if (cqe->res > 0) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        /* one clock read per receive: the requests it carries all arrived now */
        s->now_ns = clock_now_ns();
        if (!(c->flags & (CONN_CLOSING | CONN_CLOSE_AFTER))) {
            conn_append_input(s, c, reactor_buf(r, bid), (size_t)cqe->res);
            reactor_buf_return(r, bid);
            if (c->in->len - c->in_start > in_cap(c)) {
                log_fields(LOG_WARN, "closing connection: too much unread pipelined input", NULL);
                conn_close(s, c);
            } else {
                conn_on_input(s, c);
                conn_flush(s, c);
            }
        } else {
            reactor_buf_return(r, bid); /* lingering close: discard */
        }
        if (!more && !(c->flags & CONN_CLOSING))
            arm_recv(s, c);
    } else if (cqe->res == 0) {
        c->flags |= CONN_PEER_EOF;
        /* the peer only stopped sending: requests it already sent (one in a handler, others
         * still buffered) get their answers, and conn_flush closes once nothing is left; a
         * partial request cannot complete */
        if (!(c->flags & CONN_CLOSING) && c->state != CONN_HANDLER && !(c->flags & CONN_SENDING) && !c->out)
            conn_close(s, c);
    } else if (cqe->res == -ENOBUFS) {
        if (cqe->flags & IORING_CQE_F_BUFFER)
            reactor_buf_return(r, (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
        if (!more && !(c->flags & CONN_CLOSING))
            arm_recv(s, c);
    } else if (cqe->flags & IORING_CQE_F_BUFFER) {
        reactor_buf_return(r, (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
    }
    if (cqe->res < 0 && cqe->res != -ENOBUFS && !(c->flags & CONN_CLOSING)) {
        if (cqe->res != -ECONNRESET && cqe->res != -ECANCELED)
            log_debug("recv: %s", strerror(-cqe->res));
        conn_close(s, c);
    }
    if (c->flags & CONN_CLOSING)
        conn_maybe_free(s, c);
    else
        conn_update_timer(s, c);
}

/* ---------------------------------------------------------------- send */

static void submit_send(http_server_t *s, http_conn_t *c)
{
    struct io_uring_sqe *sqe = reactor_sqe(s->r);
    io_uring_prep_send(sqe, c->fd, c->sending->data + c->sent, c->sending->len - c->sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_SEND, c->idx));
    c->flags |= CONN_SENDING;
    c->ops++;
}

void conn_flush(http_server_t *s, http_conn_t *c)
{
    if (c->flags & (CONN_SENDING | CONN_CLOSING))
        return;
    if (c->out && c->out->len) {
        c->sending = c->out;
        c->out = NULL;
        c->sent = 0;
        submit_send(s, c);
        return;
    }
    if (c->flags & CONN_CLOSE_AFTER) {
        if (c->flags & CONN_PEER_EOF || !(c->flags & CONN_RECV_ARMED)) {
            conn_close(s, c);
        } else {
            /* lingering close: stop sending, read and discard until EOF or a short timeout, so
             * unread request bytes do not turn our last response into a reset */
            shutdown(c->fd, SHUT_WR);
            conn_update_timer(s, c);
        }
    } else if ((c->flags & CONN_PEER_EOF) && c->state != CONN_HANDLER) {
        conn_close(s, c); /* everything the peer sent before its EOF is answered */
    }
}

static void on_send(reactor_t *r, struct io_uring_cqe *cqe)
{
    http_server_t *s = tl_server;
    http_conn_t *c = &s->conns[reactor_ud_index(cqe->user_data)];
    c->flags &= ~CONN_SENDING;
    c->ops--;
    if (c->flags & CONN_CLOSING) {
        conn_maybe_free(s, c);
        return;
    }
    if (cqe->res < 0) {
        if (cqe->res != -EPIPE && cqe->res != -ECONNRESET)
            log_debug("send: %s", strerror(-cqe->res));
        conn_close(s, c);
        conn_maybe_free(s, c);
        return;
    }
    c->sent += (size_t)cqe->res;
    if (c->sent < c->sending->len) {
        submit_send(s, c);
        return;
    }
    buf_pool_put(&s->pool, c->sending);
    c->sending = NULL;
    /* parsing may have paused on the output high-water mark */
    if (c->in && c->in->len > c->in_start && c->state == CONN_HEAD)
        conn_on_input(s, c);
    conn_flush(s, c);
    conn_update_timer(s, c);
}

static void on_close(reactor_t *r, struct io_uring_cqe *cqe)
{
    http_server_t *s = tl_server;
    http_conn_t *c = &s->conns[reactor_ud_index(cqe->user_data)];
    c->ops--;
    conn_maybe_free(s, c);
}

/* ---------------------------------------------------------------- requests */

static bool request_id_valid(http_str_t id)
{
    if (id.len == 0 || id.len > 64)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        unsigned char ch = (unsigned char)id.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* splitmix64: trace and span ids need to be unique, not secret */
static uint64_t trace_next(http_server_t *s)
{
    uint64_t z = (s->trace_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The caller's trace (a valid, single traceparent) or a new one, and a new span in it. */
static void ctx_set_trace(http_server_t *s, http_ctx_t *ctx)
{
    uint64_t r[2];
    const http_str_t tp = ctx->req.traceparent;
    if ((ctx->req.flags & HTTP_REQ_TRACE_MANY) || !tp.len ||
        !http_traceparent_parse(tp.p, tp.len, ctx->trace_id, &ctx->trace_flags)) {
        r[0] = trace_next(s);
        r[1] = trace_next(s);
        http_trace_hex((const uint8_t *)r, 16, ctx->trace_id);
        ctx->trace_flags = 0;
    }
    r[0] = trace_next(s);
    http_trace_hex((const uint8_t *)r, 8, ctx->span_id);
}

void ctx_set_request_id(http_server_t *s, http_ctx_t *ctx)
{
    ctx_set_trace(s, ctx);
    if (request_id_valid(ctx->req.x_request_id)) {
        memcpy(ctx->request_id, ctx->req.x_request_id.p, ctx->req.x_request_id.len);
        ctx->request_id_len = (uint8_t)ctx->req.x_request_id.len;
    } else {
        static const char hex[] = "0123456789abcdef";
        uint64_t n = ++s->rid_counter;
        memcpy(ctx->request_id, s->rid_prefix, 8);
        ctx->request_id[8] = '-';
        for (int i = 0; i < 12; i++)
            ctx->request_id[9 + 11 - i] = hex[(n >> (4 * i)) & 15];
        ctx->request_id_len = 21;
    }
    ctx->request_id[ctx->request_id_len] = '\0';
}

/* Answers a request that never reached a handler (bad head, timeout) and closes after it. */
static void conn_error(http_server_t *s, http_conn_t *c, int status, const char *code, const char *detail)
{
    http_ctx_t *ctx = c->ctx ? c->ctx : (c->ctx = ctx_get(s, c));
    /* the head may be half-parsed: answer as HTTP/1.1 without trusting any of it */
    memset(&ctx->req, 0, offsetof(http_request_t, headers));
    ctx->req.version_minor = 1;
    ctx->route = NULL;
    ctx->head_only = false;
    c->flags |= CONN_CLOSE_AFTER;
    s->stats.bad_requests++;
    http_respond_problem(ctx, status, code, detail);
}

static const char *parse_error_detail(int status, const char **code)
{
    switch (status) {
    case 414:
        *code = "uri-too-long";
        return "the request target is longer than 8192 bytes";
    case 431:
        *code = "headers-too-large";
        return "the request head is over 16 KiB or has more than 100 fields";
    case 501:
        *code = "not-implemented";
        return "unsupported transfer coding";
    case 505:
        *code = "http-version-not-supported";
        return "only HTTP/1.0 and HTTP/1.1 are served";
    case 417:
        *code = "expectation-failed";
        return "the only supported expectation is 100-continue";
    default:
        *code = "bad-request";
        return "malformed or ambiguous HTTP request";
    }
}

static void dispatch(http_server_t *s, http_conn_t *c, http_ctx_t *ctx)
{
    c->state = CONN_HANDLER;
    ctx->resp = buf_pool_get(&s->pool, 1024);
    http_ctx_t *outer = s->dispatching;
    s->dispatching = ctx;
    ctx->route->handler(ctx);
    s->dispatching = outer;
    /* a handler that returned without answering is asynchronous: parsing waits for it */
}

/* ctx->path is the request's path decoded for routing (an encoded '/' stays data); a bad
 * escape is answered 400 and false returned. */
static bool ctx_decode_path(http_ctx_t *ctx)
{
    http_str_t raw = ctx->req.path;
    ctx->path = raw;
    if (!raw.p || !memchr(raw.p, '%', raw.len))
        return true;
    char *p = arena_alloc(&ctx->arena, raw.len + 1);
    long n = http_path_decode(p, raw.p, raw.len);
    if (n < 0) {
        http_respond_problem(ctx, 400, "bad-request", "bad percent-encoding in the path");
        return false;
    }
    ctx->path = (http_str_t){p, (size_t)n};
    return true;
}

/* Routes a complete head. Returns false when the request was answered (an error). */
static bool route_request(http_server_t *s, http_conn_t *c, http_ctx_t *ctx)
{
    http_request_t *q = &ctx->req;
    ctx->head_only = q->method == HTTP_HEAD;
    ctx_set_request_id(s, ctx);
    if (!ctx_decode_path(ctx))
        return false;
    bool has_body = (q->flags & HTTP_REQ_CHUNKED) || q->content_length > 0;
    if (q->method == HTTP_OTHER) {
        if (has_body)
            c->flags |= CONN_CLOSE_AFTER;
        http_respond_problem(ctx, 501, "not-implemented", "unknown request method");
        return false;
    }
    uint32_t allowed;
    ctx->route = router_match(s->listeners[c->listener].router, q->method, ctx->path.p, ctx->path.len,
                              ctx->params, &ctx->nparams, &allowed);
    if (!ctx->route) {
        if (has_body)
            c->flags |= CONN_CLOSE_AFTER;
        if (allowed) {
            char allow[96];
            size_t n = router_allow_header(allowed, allow, sizeof(allow));
            http_add_header(ctx, LIT("Allow"), allow, n);
            if (q->method == HTTP_OPTIONS) {
                char scratch[96];
                http_cors_out_t cors;
                http_cors_preflight(q, allowed, scratch, &cors);
                for (int i = 0; i < cors.n; i++)
                    http_add_header(ctx, cors.h[i].name, cors.h[i].name_len, cors.h[i].value,
                                    cors.h[i].value_len);
                http_respond(ctx, 204, NULL);
                return false;
            }
            http_respond_problem(ctx, 405, "method-not-allowed",
                                 "this method is not allowed on this resource");
        } else {
            http_respond_problem(ctx, 404, "not-found", "no such resource");
        }
        return false;
    }
    int64_t limit = ctx->route->body_limit ? ctx->route->body_limit : g_config.max_body_bytes;
    if (q->content_length > (uint64_t)limit) {
        c->flags |= CONN_CLOSE_AFTER;
        http_respond_problem(ctx, 413, "payload-too-large",
                             "the request body is larger than this endpoint accepts");
        return false;
    }
    ctx->chunked = (http_chunked_t){.limit = (uint64_t)limit};
    return true;
}

/* Waits for, or decodes, the body of ctx. Returns true when the body is complete. */
static bool body_ready(http_server_t *s, http_conn_t *c, http_ctx_t *ctx)
{
    http_request_t *q = &ctx->req;
    char *start = c->in->data + c->in_start + ctx->head_len;
    size_t avail = c->in->len - c->in_start - ctx->head_len;
    if (!(q->flags & HTTP_REQ_CHUNKED)) {
        if (avail >= q->content_length) {
            ctx->body = (http_str_t){start, (size_t)q->content_length};
            ctx->body_raw = (size_t)q->content_length;
            return true;
        }
    } else {
        /* decoded bytes are compacted in place at the front of the body area */
        size_t raw_len = avail - ctx->body_raw, consumed = 0;
        size_t out_len = raw_len;
        char *raw = start + ctx->body_raw;
        int ret = http_chunked_decode(&ctx->chunked, raw, &out_len, &consumed);
        if (ret < 0) {
            c->flags |= CONN_CLOSE_AFTER;
            if (ret == -413)
                http_respond_problem(ctx, 413, "payload-too-large",
                                     "the request body is larger than this endpoint accepts");
            else
                http_respond_problem(ctx, 400, "bad-request", "malformed chunked request body");
            return false;
        }
        size_t decoded_before = ctx->body.len;
        memmove(start + decoded_before, raw, out_len);
        ctx->body = (http_str_t){start, decoded_before + out_len};
        /* the raw bytes used are gone; keep the undecoded tail right after the decoded data */
        size_t tail = raw_len - consumed;
        memmove(start + decoded_before + out_len, raw + consumed, tail);
        size_t removed = consumed - out_len;
        c->in->len -= removed;
        ctx->body_raw = decoded_before + out_len;
        if (ret == 1)
            return true;
    }
    if (q->flags & HTTP_REQ_EXPECT_CONTINUE && !(c->flags & CONN_CONTINUE_SENT)) {
        c->flags |= CONN_CONTINUE_SENT;
        if (!c->out)
            c->out = pool_buf(s);
        buf_append(c->out, LIT("HTTP/1.1 100 Continue\r\n\r\n"));
    }
    return false;
}

/* Parses and answers requests from conn->in until it runs dry, an answer is pending, or the
 * output is backed up. */
void conn_on_input(http_server_t *s, http_conn_t *c)
{
    while (!(c->flags & (CONN_CLOSING | CONN_CLOSE_AFTER)) && c->in) {
        if (c->state == CONN_HANDLER)
            return;
        if (c->out && c->out->len > OUT_HIGH_WATER)
            return;
        size_t avail = c->in->len - c->in_start;
        if (c->state == CONN_HEAD) {
            if (avail == 0)
                break;
            http_ctx_t *ctx = c->ctx ? c->ctx : (c->ctx = ctx_get(s, c));
            int ret = http_parse_request(c->in->data + c->in_start, avail, &c->head_scan, &ctx->req);
            if (ret == HTTP_PARSE_INCOMPLETE)
                return;
            c->head_scan = 0;
            if (ret < 0) {
                const char *code, *detail = parse_error_detail(-ret, &code);
                log_fields(LOG_WARN, "bad request", "reason", detail, "#status", (int64_t)-ret, NULL);
                conn_error(s, c, -ret, code, detail);
                return;
            }
            ctx->head_len = (size_t)ret;
            ctx->start_ns = s->now_ns;
            c->flags &= ~CONN_CONTINUE_SENT;
            if (!route_request(s, c, ctx))
                continue;
            if ((ctx->req.flags & HTTP_REQ_CHUNKED) || ctx->req.content_length > 0)
                c->state = CONN_BODY;
            else {
                dispatch(s, c, ctx);
                continue;
            }
        }
        /* CONN_BODY */
        if (!body_ready(s, c, c->ctx)) {
            if (c->state == CONN_BODY)
                return; /* more body bytes to come */
            continue;   /* answered with an error */
        }
        dispatch(s, c, c->ctx);
    }
    /* an idle connection keeps no input buffer */
    if (c->in && c->in_start == c->in->len && c->state == CONN_HEAD && !c->ctx) {
        buf_pool_put(&s->pool, c->in);
        c->in = NULL;
        c->in_start = 0;
    }
}

/* ---------------------------------------------------------------- statistics */

void http_totals(http_totals_t *out)
{
    memset(out, 0, sizeof(*out));
    out->open = atomic_load(&g_open_conns);
    SHARDS_EACH(&server_shards, http_server_t, s)
    {
        out->accepted += s->stats.accepted;
        out->rejected += s->stats.rejected;
        out->requests += s->stats.requests;
        out->bad_requests += s->stats.bad_requests;
        out->accept_fd_exhausted += s->stats.accept_fd_exhausted;
        out->internal_errors += s->stats.internal_errors;
        for (int i = 0; i < 6; i++)
            out->by_class[i] += s->stats.by_class[i];
    }
}

void http_route_totals(int listener, uint16_t id, http_route_stats_t *out)
{
    SHARDS_EACH(&server_shards, http_server_t, s)
    {
        if (listener >= s->nlisteners)
            continue;
        if (id > router_route_count(s->listeners[listener].router))
            continue;
        http_route_stats_t *rs = &s->route_stats[listener][id];
        for (int i = 0; i < HTTP_STATUS_SLOTS; i++)
            out->status[i] += rs->status[i];
        hist_merge(&out->latency_us, &rs->latency_us);
    }
}

/* ---------------------------------------------------------------- lifecycle */

static void on_wake_hook(reactor_t *r, void *arg)
{
    http_server_t *s = arg;
    if (atomic_load(&g_server_state) == SERVER_DRAINING && !s->draining)
        http_server_drain(s);
}

int http_server_listen(http_server_t *s, const config_addr_t *addr, const router_t *router, bool admin)
{
    if (s->nlisteners >= HTTP_MAX_LISTENERS)
        die("too many listeners");
    int fd = listen_socket(addr);
    if (fd < 0) {
        log_error("cannot listen on %s: %s", addr->text, strerror(-fd));
        return fd;
    }
    int li = s->nlisteners++;
    s->listeners[li] = (http_listener_t){.fd = fd, .router = router, .admin = admin};
    timer_init(&s->listeners[li].resume, on_accept_resume);
    if (admin)
        admin_reserve_refill(s);
    s->route_stats[li] = xcalloc((size_t)router_route_count(router) + 1, sizeof(http_route_stats_t));
    arm_accept(s, li);
    return 0;
}

int http_server_init(http_server_t *s, reactor_t *r, const router_t *router, const config_t *cfg)
{
    memset(s, 0, sizeof(*s));
    s->r = r;
    tl_server = s;
    /* the admin listener's connections come on top of --max-conns */
    s->max_conns = (uint32_t)cfg->max_conns + HTTP_ADMIN_MAX_CONNS;
    for (int i = 0; i < HTTP_ADMIN_FD_RESERVE; i++)
        s->admin_reserve[i] = -1;
    /* untouched slots cost no memory: calloc of this size maps zero pages lazily */
    s->conns = xcalloc(s->max_conns, sizeof(http_conn_t));
    s->free_slots = xmalloc(sizeof(uint32_t) * s->max_conns);
    buf_pool_init(&s->pool, 0, 0);
    s->compressor = http_compressor_new(cfg->gzip_level, HTTP_COMPRESS_BROTLI_QUALITY_DEFAULT);
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = (uint32_t)clock_now_ns();
    snprintf(s->rid_prefix, sizeof(s->rid_prefix), "%08x", rnd ^ (r->id * 0x9e3779b9u));
    if (getrandom(&s->trace_rng, sizeof(s->trace_rng), 0) != sizeof(s->trace_rng))
        s->trace_rng = clock_now_ns() ^ ((uint64_t)r->id << 56);
    reactor_set_handler(r, OP_ACCEPT, on_accept);
    reactor_set_handler(r, OP_RECV, on_recv);
    reactor_set_handler(r, OP_SEND, on_send);
    reactor_set_handler(r, OP_CLOSE, on_close);
    reactor_add_hook(r, closes_issue, s);
    r->on_wake = on_wake_hook;
    r->on_wake_arg = s;
    /* no router: no public listener (crmd worker serves the admin listener alone) */
    int ret = router ? http_server_listen(s, &cfg->listen, router, false) : 0;
    if (ret < 0)
        return ret;
    shards_add(&server_shards, s);
    return 0;
}

void http_server_drain(http_server_t *s)
{
    if (s->draining)
        return;
    s->draining = true;
    for (int li = 0; li < s->nlisteners; li++) {
        http_listener_t *l = &s->listeners[li];
        timer_del(&l->resume);
        if (l->accept_armed) {
            struct io_uring_sqe *sqe = reactor_sqe(s->r);
            io_uring_prep_cancel64(sqe, reactor_ud(OP_ACCEPT, (uint32_t)li), 0);
            io_uring_sqe_set_data64(sqe, reactor_ud(OP_IGNORE, 0));
        }
        if (l->fd >= 0) {
            close(l->fd);
            l->fd = -1;
        }
    }
    for (uint32_t i = 0; i < s->next_unused; i++) {
        http_conn_t *c = &s->conns[i];
        if (c->fd < 0 || (c->flags & CONN_CLOSING))
            continue;
        /* idle connections get a short grace (their next request is answered with
         * "Connection: close"), the others "Connection: close" on their answer */
        size_t avail = c->in ? c->in->len - c->in_start : 0;
        if (c->state == CONN_HEAD && avail == 0 && !(c->flags & CONN_SENDING) && !c->out) {
            c->timer_kind = TIMER_NONE; /* re-arm with the drain's grace */
            conn_update_timer(s, c);
        }
    }
    if (s->open_conns == 0)
        s->r->stop = true;
}

void http_server_destroy(http_server_t *s)
{
    for (int li = 0; li < s->nlisteners; li++) {
        timer_del(&s->listeners[li].resume);
        if (s->listeners[li].fd >= 0)
            close(s->listeners[li].fd);
    }
    for (int i = 0; i < HTTP_ADMIN_FD_RESERVE; i++)
        if (s->admin_reserve[i] >= 0)
            close(s->admin_reserve[i]);
    /* the route statistics stay: /metrics readers on other threads may still merge them */
    while (s->free_ctx) {
        http_ctx_t *n = s->free_ctx->next_free;
        buf_free(&s->free_ctx->headers);
        buf_free(&s->free_ctx->timing);
        free(s->free_ctx);
        s->free_ctx = n;
    }
    buf_pool_destroy(&s->pool);
    http_compressor_free(s->compressor);
    buf_free(&s->zbuf);
    free(s->conns);
    s->conns = NULL;
    free(s->free_slots);
    tl_server = NULL;
}

void http_server_release(http_server_t *s)
{
    for (int li = 0; li < s->nlisteners; li++) {
        free(s->route_stats[li]);
        s->route_stats[li] = NULL;
    }
    s->nlisteners = 0;
}

void http_subrequest(http_ctx_t *parent, const http_subrequest_t *sr)
{
    http_server_t *s = parent->srv;
    http_ctx_t *ctx = ctx_get(s, NULL);
    ctx->start_ns = clock_now_ns();
    ctx->sub_done = sr->done;
    ctx->sub_arg = sr->arg;
    http_request_t *q = &ctx->req;
    memset(q, 0, offsetof(http_request_t, headers));
    static const char *const names[] = {
        [HTTP_GET] = "GET",     [HTTP_HEAD] = "HEAD",     [HTTP_POST] = "POST",      [HTTP_PUT] = "PUT",
        [HTTP_PATCH] = "PATCH", [HTTP_DELETE] = "DELETE", [HTTP_OPTIONS] = "OPTIONS"};
    q->method = sr->method;
    const char *mname = sr->method > HTTP_OTHER && sr->method <= HTTP_OPTIONS ? names[sr->method] : "OTHER";
    q->method_str = (http_str_t){mname, strlen(mname)};
    q->path = (http_str_t){sr->path, sr->path_len};
    q->target = q->path;
    q->query = (http_str_t){sr->query ? sr->query : "", sr->query_len};
    q->version_minor = 1;
    q->flags = HTTP_REQ_KEEPALIVE | (sr->body_len ? HTTP_REQ_HAS_LENGTH : 0);
    q->content_length = sr->body_len;
    /* copies: the parent's head lives in its connection's input, which may move or go away */
    http_str_t creds[3] = {parent->req.authorization, parent->req.x_api_key, parent->req.x_forwarded_for};
    for (int i = 0; i < 3; i++)
        if (creds[i].len)
            creds[i].p = arena_strndup(&ctx->arena, creds[i].p, creds[i].len);
    q->authorization = creds[0];
    q->x_api_key = creds[1];
    q->x_forwarded_for = creds[2];
    if (sr->body_len)
        q->content_type = (http_str_t){"application/json", 16};
    q->x_request_id = (http_str_t){sr->request_id, sr->request_id ? strlen(sr->request_id) : 0};
    if (sr->idempotency_key)
        q->idempotency_key =
            (http_str_t){arena_strndup(&ctx->arena, sr->idempotency_key, strlen(sr->idempotency_key)),
                         strlen(sr->idempotency_key)};
    ctx_set_request_id(s, ctx);
    /* a sub-request is a span of its parent's trace */
    memcpy(ctx->trace_id, parent->trace_id, sizeof(ctx->trace_id));
    ctx->trace_flags = parent->trace_flags;
    ctx->peer_family = parent->peer_family;
    memcpy(ctx->peer_addr, parent->peer_addr, 16);
    ctx->body = (http_str_t){sr->body, sr->body_len};
    ctx->head_only = sr->method == HTTP_HEAD;
    if (!ctx_decode_path(ctx))
        return;
    uint32_t allowed;
    ctx->route = router_match(s->listeners[0].router, q->method, ctx->path.p, ctx->path.len, ctx->params,
                              &ctx->nparams, &allowed);
    if (!ctx->route) {
        if (allowed) {
            char allow[96];
            size_t n = router_allow_header(allowed, allow, sizeof(allow));
            http_add_header(ctx, LIT("Allow"), allow, n);
            http_respond_problem(ctx, 405, "method-not-allowed",
                                 "this method is not allowed on this resource");
        } else {
            http_respond_problem(ctx, 404, "not-found", "no such resource");
        }
        return;
    }
    int64_t limit = ctx->route->body_limit ? ctx->route->body_limit : g_config.max_body_bytes;
    if ((int64_t)sr->body_len > limit) {
        http_respond_problem(ctx, 413, "payload-too-large",
                             "the request body is larger than this endpoint accepts");
        return;
    }
    ctx->resp = buf_pool_get(&s->pool, 1024);
    ctx->route->handler(ctx);
}

/* ---- finishing a request ---- */

static void put_ms(buf_t *b, uint64_t us)
{
    char ms[24];
    buf_append(b, ms, http_format_ms(us, ms));
}

static void access_log(http_server_t *s, http_ctx_t *ctx, int status, size_t bytes, uint64_t us)
{
    int level = status >= 500 ? LOG_ERROR : LOG_INFO;
    if (level < g_log_level)
        return;
    if (status < 400 && g_config.log_sample > 1 && (s->log_counter++ % (uint64_t)g_config.log_sample) != 0)
        return;
    /* failed requests are always logged, but under a flood (an outage) only a sample */
    unsigned weight = status >= 400 ? log_flood_admit() : 1;
    if (weight == 0)
        return;
    buf_t *b = log_line_begin(level, "request");
    if (!b)
        return;
    if (weight > 1) {
        buf_append(b, LIT(",\"sampled\":"));
        buf_append_u64(b, weight);
    }
    char ip[INET6_ADDRSTRLEN] = "-";
    if (ctx->peer_family)
        inet_ntop(ctx->peer_family, ctx->peer_addr, ip, sizeof(ip));
    buf_append(b, LIT(",\"request_id\":"));
    json_str(b, ctx->request_id, ctx->request_id_len);
    buf_append(b, LIT(",\"trace_id\":\""));
    buf_append(b, ctx->trace_id, HTTP_TRACE_ID_HEX);
    buf_append(b, LIT("\",\"span_id\":\""));
    buf_append(b, ctx->span_id, HTTP_SPAN_ID_HEX);
    buf_append(b, LIT("\",\"method\":"));
    json_str(b, ctx->req.method_str.p ? ctx->req.method_str.p : "-",
             ctx->req.method_str.p ? ctx->req.method_str.len : 1);
    buf_append(b, LIT(",\"route\":"));
    const char *rn = ctx->route && ctx->route->name ? ctx->route->name : "-";
    json_str(b, rn, strlen(rn));
    buf_append(b, LIT(",\"path\":"));
    json_str(b, ctx->path.p ? ctx->path.p : "-", ctx->path.p ? MIN(ctx->path.len, 256) : 1);
    buf_append(b, LIT(",\"status\":"));
    buf_append_u64(b, (uint64_t)status);
    buf_append(b, LIT(",\"dur_ms\":"));
    put_ms(b, us);
    buf_append(b, LIT(",\"bytes\":"));
    buf_append_u64(b, bytes);
    buf_append(b, LIT(",\"client\":"));
    json_str(b, ip, strlen(ip));
    if (ctx->key_prefix[0]) {
        buf_append(b, LIT(",\"key_prefix\":"));
        json_str(b, ctx->key_prefix, strlen(ctx->key_prefix));
    }
    /* a refused body helps whoever debugs the client: logged with its secrets masked */
    if (status >= 400 && status < 500 && ctx->body.len) {
        /* masked and cut to about 1 KiB; a huge body is not even parsed for the log */
        buf_append(b, LIT(",\"body\":"));
        log_mask_json(b, ctx->body.p, ctx->body.len);
    }
    log_line_end(b);
}

/* The one place a request ends: its answer serialised into the connection's output (or handed
 * to a sub-request's owner), counted, logged, its bytes consumed, and the connection resumed
 * when the answer came from a completion. Pipelined answers go out in request order. */
void http_respond_raw(http_ctx_t *ctx, int status, const char *content_type, const char *body,
                      size_t body_len)
{
    http_server_t *s = ctx->srv;
    http_conn_t *c = ctx->conn;
    ctx->finished = true;
    ctx->status = status;
    if (!ctx->request_id_len) /* answered before its head was read through */
        ctx_set_request_id(s, ctx);
    if (ctx->sub_done) {
        uint64_t now = clock_now_ns();
        access_log(s, ctx, status, body_len, now > ctx->start_ns ? (now - ctx->start_ns) / 1000 : 0);
        ctx->sub_done(ctx->sub_arg, status, content_type, ctx->head_only ? NULL : body,
                      ctx->head_only ? 0 : body_len);
        ctx_put(s, ctx);
        return;
    }
    if (!c) { /* the connection closed while an asynchronous handler ran */
        ctx_put(s, ctx);
        return;
    }
    /* answered from a completion rather than inside dispatch: resume the connection after */
    bool async = c->state == CONN_HANDLER && s->dispatching != ctx;
    uint64_t now = clock_now_ns();
    uint64_t us = ctx->start_ns && now > ctx->start_ns ? (now - ctx->start_ns) / 1000 : 0;
    bool keep = (ctx->req.flags & HTTP_REQ_KEEPALIVE) && !(c->flags & CONN_CLOSE_AFTER) && !s->draining;
    if (!keep)
        c->flags |= CONN_CLOSE_AFTER;
    if (!c->out)
        c->out = pool_buf(s);
    http_serialise(c->out, ctx, status, content_type, body, body_len, keep, us);

    s->stats.requests++;
    if (status >= 100 && status < 600)
        s->stats.by_class[status / 100]++;
    s->stats.internal_errors += status == 500;
    http_route_stats_t *rs = &s->route_stats[c->listener][ctx->route ? ctx->route->id : 0];
    rs->status[http_status_slot(status)]++;
    hist_record(&rs->latency_us, us);
    access_log(s, ctx, status, body_len, us);

    /* consume the request's bytes and get ready for the next head */
    if (c->in) {
        c->in_start += ctx->head_len + ctx->body_raw;
        if (c->in_start > c->in->len || ctx->head_len == 0)
            c->in_start = c->in->len; /* an error answer: the rest of the input is not trusted */
    }
    c->state = CONN_HEAD;
    c->ctx = NULL;
    c->requests++;
    ctx_put(s, ctx);
    if (async && !(c->flags & CONN_CLOSING)) {
        conn_on_input(s, c);
        conn_flush(s, c);
        conn_update_timer(s, c);
    }
}
