/*
 * Per-thread Redis client on the reactor's ring (see redis.h).
 *
 * Each thread has one command connection, and the subscribing thread a second one for pub/sub.
 * A connection is an explicit state machine (DOWN -> CONNECTING -> READY -> DOWN) whose ring
 * operations (connect, send, recv) all complete under OP_REDIS_POLL; their user_data packs
 * the client slot, the connection, the operation and the connection's generation, bumped on
 * every reset, so completions of a dead connection are recognised and only counted.
 *
 * Buffers handed to the kernel (the receive buffer, the buffer being sent) stay valid until
 * their operation completes: a connection counts its operations in flight across generations,
 * and neither reconnects nor frees its buffers before that count is back to zero.
 */
#include "redis/redis.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/shards.h"
#include "core/fifo.h"
#include "core/log.h"
#include "redis/sentinel.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SUBS           16
#define RECONNECT_MIN_MS   100
#define RECONNECT_MAX_MS   2000
#define CONNECT_TIMEOUT_MS 1000
#define SUB_PING_MS        1000
#define LOG_INTERVAL_MS    5000
#define RECV_BUF_SIZE      (64 * 1024)

enum rconn_state { RC_DOWN = 0, RC_CONNECTING, RC_READY };
enum rconn_kind { RC_CMD = 0, RC_SUB = 1 };

/* The ring operation a completion belongs to (low bits of the user_data index). */
enum rconn_io { RIO_CONNECT = 1, RIO_SEND, RIO_RECV, RIO_POLL };

/* Who is waiting for a reply: a caller, or the connection's own handshake and health checks. */
enum cmd_kind { CMD_USER = 0, CMD_AUTH, CMD_SELECT, CMD_PING };

typedef struct redis_cmd {
    struct redis_cmd *next;
    redis_cb_t cb;
    void *arg;
    uint64_t start_ms;
    redisReply *reply;
    const redis_script_t *script; /* EVALSHA: resent as EVAL on NOSCRIPT */
    char *evalsha;                /* the formatted EVALSHA command, for that resend */
    size_t evalsha_len;
    uint8_t kind; /* enum cmd_kind */
    uint8_t status;
} redis_cmd_t;

struct redis_client;

typedef struct rconn {
    uint8_t kind;              /* enum rconn_kind */
    uint8_t state;             /* enum rconn_state */
    bool send_busy, recv_busy; /* operations of the current generation in flight */
    bool lost;                 /* down since it was last up (or since start): log when restored */
    bool lost_logged;
    int fd;
    uint32_t gen;
    uint32_t ops; /* ring operations in flight, every generation */
    redisReader *reader;
    buf_t out;     /* formatted commands waiting for the next send */
    buf_t sending; /* bytes handed to the kernel */
    size_t sent;   /* of sending */
    char *rbuf;
    FIFO(redis_cmd_t) awaiting; /* sent or queued, awaiting replies in order */
    uint32_t backoff_ms;
    uint64_t down_since_ms;
    uint64_t last_log_ms;   /* of "lost"/"failed": a flapping server logs once per interval */
    uint32_t master_gen;    /* sentinel mode: the generation of the master it connects to */
    timer_entry_t retry;    /* reconnect after backoff; connect timeout */
    timer_entry_t deadline; /* the oldest pending command's timeout */
    timer_entry_t ping;     /* pub/sub health check */
    struct redis_client *cl;
} rconn_t;

typedef struct redis_sub {
    char *channel;
    redis_message_cb_t on_message;
    redis_resubscribe_cb_t on_resubscribe;
    void *arg;
    bool confirmed; /* the server acknowledged it on the current connection */
    bool gap;       /* it was active, then the connection was lost */
} redis_sub_t;

/* Written by the owning thread only, read by redis_stats on any thread. */
typedef struct client_stats {
    _Atomic uint64_t commands, errors, timeouts, unavailable, reconnects, sends, messages;
    _Atomic bool connected, running;
} client_stats_t;

typedef struct redis_client {
    reactor_t *r;
    uint32_t slot;
    bool enabled;  /* a usable URL was given */
    bool stopping; /* redis_client_stop ran: no reconnects, buffers freed once idle */
    redis_url_t url;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t timeout_ms;
    rconn_t conns[2];
    redis_sub_t subs[MAX_SUBS];
    int nsubs;
    FIFO(redis_cmd_t) done; /* completed: callbacks run in the end-of-turn hook */
    redis_cmd_t *free_cmds;
    timer_entry_t kick; /* makes the loop turn again at once when work was queued late */
    client_stats_t st;
} redis_client_t;

static __thread redis_client_t *tl_client;
static shards_t client_shards;

static void conn_reset(redis_client_t *cl, rconn_t *c, int status, const char *why);
static void conn_connect(redis_client_t *cl, rconn_t *c);

/* r->now_ms is read before the loop waits, so it can be a second old when a completion issues a
 * command: deadlines and backoffs read the clock itself (vDSO, no system call). */

static inline void stat_add(_Atomic uint64_t *v, uint64_t n)
{
    /* one writer: a relaxed load and store, no locked instruction */
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n, memory_order_relaxed);
}

/* ---------------------------------------------------------------- URL */

static bool url_fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return false;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Copies s[0..n) into out (cap bytes with the NUL), decoding %XX; false when malformed. */
static bool pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (ch == '\0' || o + 1 >= cap)
            return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}

/* Parses decimal digits s[0..n) into *v, at most max; false when empty, not digits or too big. */
static bool parse_uint(const char *s, size_t n, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x > max)
        return false;
    *v = x;
    return true;
}

static bool parse_hostport(const char *p, const char *end, redis_url_t *out, const char **why)
{
    const char *host = p, *host_end;
    bool bracketed = p < end && *p == '[';
    if (bracketed) { /* [ipv6] */
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end)
            return url_fail(why, "unterminated [ in host");
        p = host_end + 1;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (!host_end)
            host_end = end;
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0)
        return url_fail(why, "empty host");
    if (hlen >= sizeof(out->host))
        return url_fail(why, "host too long");
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)host[i] <= ' ' || host[i] == '@' || host[i] == '[' || host[i] == ']' ||
            (host[i] == ':' && !bracketed))
            return url_fail(why, "bad character in host");
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (p == end)
        return true;
    if (*p != ':')
        return url_fail(why, "unexpected text after host");
    uint64_t port;
    if (!parse_uint(p + 1, (size_t)(end - p - 1), 65535, &port) || port == 0)
        return url_fail(why, "bad port");
    out->port = (uint16_t)port;
    return true;
}

bool redis_url_parse(const char *url, redis_url_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || !*url)
        return url_fail(why, "empty URL");
    if (strncmp(url, "rediss://", 9) == 0)
        return url_fail(why, "rediss:// (TLS) is not supported");
    if (strncmp(url, "redis://", 8) != 0)
        return url_fail(why, "not a redis:// URL");
    const char *p = url + 8;
    const char *auth_end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return url_fail(why, "credentials need a ':' before the password");
        if (!pct_decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) ||
            !pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof(out->password)))
            return url_fail(why, "bad user or password");
        if (out->password[0] == '\0')
            return url_fail(why, "empty password");
        p = at + 1;
    }
    if (!parse_hostport(p, auth_end, out, why))
        return false;
    p = auth_end;
    if (*p == '/') {
        size_t n = strlen(p + 1);
        uint64_t db = 0;
        if (n && !parse_uint(p + 1, n, 1u << 20, &db))
            return url_fail(why, "bad database number");
        out->db = (uint32_t)db;
        p += 1 + n;
    }
    if (*p)
        return url_fail(why, "query or fragment in URL is not supported");
    return true;
}

/* ---------------------------------------------------------------- scripts */

static uint32_t rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

/* The lowercase hex SHA1 that Redis names a script by. */
static void sha1_hex(const char *data, size_t len, char out[41])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const uint8_t *p = (const uint8_t *)data;
    size_t n = len;
    for (; n >= 64; p += 64, n -= 64)
        sha1_block(h, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, n);
    tail[n] = 0x80;
    size_t tlen = n < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 1 - (size_t)i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tlen == 128)
        sha1_block(h, tail + 64);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        uint8_t byte = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 15];
    }
    out[40] = '\0';
}

void redis_script_init(redis_script_t *s, const char *src)
{
    s->src = src;
    s->len = strlen(src);
    sha1_hex(src, s->len, s->sha);
}

/* ---------------------------------------------------------------- commands */

static redis_cmd_t *cmd_new(redis_client_t *cl)
{
    redis_cmd_t *cmd = cl->free_cmds;
    if (cmd)
        cl->free_cmds = cmd->next;
    else
        cmd = xmalloc(sizeof(*cmd));
    memset(cmd, 0, sizeof(*cmd));
    return cmd;
}

static void cmd_free(redis_client_t *cl, redis_cmd_t *cmd)
{
    if (cmd->reply)
        freeReplyObject(cmd->reply);
    free(cmd->evalsha);
    if (cl->stopping) {
        free(cmd);
        return;
    }
    cmd->next = cl->free_cmds;
    cl->free_cmds = cmd;
}

/* The loop must turn again without waiting: work was queued after this turn's hook ran. */
static void client_kick(redis_client_t *cl)
{
    if (!timer_armed(&cl->kick))
        timer_add(&cl->r->timers, &cl->kick, 0);
}

/* Completes cmd: its callback runs in the end-of-turn hook; internal commands just go. */
static void cmd_finish(redis_client_t *cl, redis_cmd_t *cmd, int status, redisReply *reply)
{
    cmd->status = (uint8_t)status;
    cmd->reply = reply;
    if (cmd->kind != CMD_USER) {
        cmd_free(cl, cmd);
        return;
    }
    if (status == REDIS_STATUS_ERROR)
        stat_add(&cl->st.errors, 1);
    else if (status == REDIS_STATUS_TIMEOUT)
        stat_add(&cl->st.timeouts, 1);
    else if (status == REDIS_STATUS_UNAVAILABLE)
        stat_add(&cl->st.unavailable, 1);
    if (!cmd->cb) {
        cmd_free(cl, cmd);
        return;
    }
    fifo_push(&cl->done, cmd);
    client_kick(cl);
}

/* Puts cmd on c's reply queue (its bytes are already in c->out) and watches its deadline. */
static void conn_expect(redis_client_t *cl, rconn_t *c, redis_cmd_t *cmd)
{
    cmd->start_ms = clock_now_ms();
    fifo_push(&c->awaiting, cmd);
    if (!timer_armed(&c->deadline))
        timer_add(&cl->r->timers, &c->deadline, cmd->start_ms + cl->timeout_ms);
    client_kick(cl);
}

/* Formats argv onto c's output; returns the formatted bytes when keep (free with
 * redisFreeCommand), else NULL. */
static char *conn_append_argv(rconn_t *c, int argc, const char **argv, const size_t *argvlen, bool keep,
                              size_t *len)
{
    char *fmt = NULL;
    int n = redisFormatCommandArgv(&fmt, argc, argv, argvlen);
    if (n < 0 || !fmt)
        die("redis: cannot format a command (out of memory)");
    buf_append(&c->out, fmt, (size_t)n);
    if (len)
        *len = (size_t)n;
    if (keep)
        return fmt;
    redisFreeCommand(fmt);
    return NULL;
}

static void conn_internal(redis_client_t *cl, rconn_t *c, enum cmd_kind kind, int argc, const char **argv)
{
    conn_append_argv(c, argc, argv, NULL, false, NULL);
    redis_cmd_t *cmd = cmd_new(cl);
    cmd->kind = (uint8_t)kind;
    conn_expect(cl, c, cmd);
}

static redis_client_t *client_get(void)
{
    redis_client_t *cl = tl_client;
    if (!cl)
        die("redis command on a thread without redis_client_start");
    return cl;
}

static void command_submit(int argc, const char **argv, const size_t *argvlen, const redis_script_t *script,
                           redis_cb_t cb, void *arg)
{
    redis_client_t *cl = client_get();
    rconn_t *c = &cl->conns[RC_CMD];
    stat_add(&cl->st.commands, 1);
    redis_cmd_t *cmd = cmd_new(cl);
    cmd->cb = cb;
    cmd->arg = arg;
    if (c->state != RC_READY || cl->stopping) {
        /* no queueing while down: the caller falls back at once */
        cmd_finish(cl, cmd, REDIS_STATUS_UNAVAILABLE, NULL);
        return;
    }
    cmd->evalsha = conn_append_argv(c, argc, argv, argvlen, script != NULL, &cmd->evalsha_len);
    cmd->script = script;
    conn_expect(cl, c, cmd);
}

void redis_command_argv(int argc, const char **argv, const size_t *argvlen, redis_cb_t cb, void *arg)
{
    command_submit(argc, argv, argvlen, NULL, cb, arg);
}

void redis_get(const char *key, size_t keylen, redis_cb_t cb, void *arg)
{
    const char *argv[] = {"GET", key};
    const size_t lens[] = {3, keylen};
    command_submit(2, argv, lens, NULL, cb, arg);
}

void redis_set_px(const char *key, size_t keylen, const char *val, size_t vallen, uint64_t ttl_ms,
                  redis_cb_t cb, void *arg)
{
    char ttl[24];
    int n = snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)(ttl_ms ? ttl_ms : 1));
    const char *argv[] = {"SET", key, val, "PX", ttl};
    const size_t lens[] = {3, keylen, vallen, 2, (size_t)n};
    command_submit(5, argv, lens, NULL, cb, arg);
}

void redis_del(const char *key, size_t keylen, redis_cb_t cb, void *arg)
{
    const char *argv[] = {"DEL", key};
    const size_t lens[] = {3, keylen};
    command_submit(2, argv, lens, NULL, cb, arg);
}

void redis_publish(const char *channel, const char *msg, size_t len, redis_cb_t cb, void *arg)
{
    const char *argv[] = {"PUBLISH", channel, msg};
    const size_t lens[] = {7, strlen(channel), len};
    command_submit(3, argv, lens, NULL, cb, arg);
}

void redis_eval(const redis_script_t *script, int nkeys, int argc, const char **argv, const size_t *argvlen,
                redis_cb_t cb, void *arg)
{
    char nk[16];
    int nklen = snprintf(nk, sizeof(nk), "%d", nkeys);
    size_t total = (size_t)argc + 3;
    const char **av = xmalloc(total * sizeof(*av));
    size_t *al = xmalloc(total * sizeof(*al));
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = script->sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = (size_t)nklen;
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    command_submit((int)total, av, al, script, cb, arg);
    free(av);
    free(al);
}

/* The server lost the script (restart, SCRIPT FLUSH): send the same call as EVAL, which also
 * loads it for the next EVALSHA. The EVALSHA bytes are "*N\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n"
 * followed by the arguments, which are kept as they are. */
static void eval_fallback(redis_client_t *cl, rconn_t *c, redis_cmd_t *cmd)
{
    const char *s = cmd->evalsha;
    const char *nl = memchr(s, '\n', cmd->evalsha_len);
    size_t head = (size_t)(nl - s) + 1;
    size_t skip = head + 13 + 5 + 40 + 2;
    buf_append(&c->out, s, head);
    buf_append_lit(&c->out, "$4\r\nEVAL\r\n$");
    buf_append_u64(&c->out, cmd->script->len);
    buf_append_lit(&c->out, "\r\n");
    buf_append(&c->out, cmd->script->src, cmd->script->len);
    buf_append_lit(&c->out, "\r\n");
    buf_append(&c->out, s + skip, cmd->evalsha_len - skip);
    free(cmd->evalsha);
    cmd->evalsha = NULL;
    cmd->script = NULL;
    conn_expect(cl, c, cmd);
}

/* ---------------------------------------------------------------- ring operations */

static uint64_t conn_ud(redis_client_t *cl, rconn_t *c, enum rconn_io io)
{
    uint32_t index = cl->slot << 8 | (uint32_t)c->kind << 4 | (uint32_t)io;
    return reactor_ud(OP_REDIS_POLL, index) | (uint64_t)(c->gen & 0xffffff) << 32;
}

/* Submits an operation; after -EAGAIN (a kernel that honours O_NONBLOCK on ring receives) it
 * is preceded by a linked poll for readiness. */
static struct io_uring_sqe *conn_sqe(redis_client_t *cl, rconn_t *c, unsigned poll_first)
{
    if (poll_first) {
        struct io_uring_sqe *p = reactor_sqe(cl->r);
        io_uring_prep_poll_add(p, c->fd, poll_first);
        io_uring_sqe_set_data64(p, conn_ud(cl, c, RIO_POLL));
        p->flags |= IOSQE_IO_LINK;
        c->ops++;
    }
    c->ops++;
    return reactor_sqe(cl->r);
}

static void conn_arm_recv(redis_client_t *cl, rconn_t *c, unsigned poll_first)
{
    struct io_uring_sqe *sqe = conn_sqe(cl, c, poll_first);
    io_uring_prep_recv(sqe, c->fd, c->rbuf, RECV_BUF_SIZE, 0);
    io_uring_sqe_set_data64(sqe, conn_ud(cl, c, RIO_RECV));
    c->recv_busy = true;
}

static void conn_arm_send(redis_client_t *cl, rconn_t *c, unsigned poll_first)
{
    struct io_uring_sqe *sqe = conn_sqe(cl, c, poll_first);
    io_uring_prep_send(sqe, c->fd, c->sending.data + c->sent, c->sending.len - c->sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, conn_ud(cl, c, RIO_SEND));
    c->send_busy = true;
    stat_add(&cl->st.sends, 1);
}

/* One send at a time: what is queued meanwhile goes out together after it. */
static void conn_flush(redis_client_t *cl, rconn_t *c)
{
    if (c->state != RC_READY || c->send_busy || c->out.len == 0)
        return;
    buf_t tmp = c->sending;
    c->sending = c->out;
    c->out = tmp;
    c->out.len = 0;
    c->sent = 0;
    conn_arm_send(cl, c, 0);
}

static void conn_cancel(redis_client_t *cl, rconn_t *c, enum rconn_io io)
{
    struct io_uring_sqe *sqe = reactor_sqe(cl->r);
    io_uring_prep_cancel64(sqe, conn_ud(cl, c, io), IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, reactor_ud(OP_IGNORE, 0));
}

/* ---------------------------------------------------------------- connection life */

static const char *conn_name(const rconn_t *c)
{
    return c->kind == RC_CMD ? "commands" : "pubsub";
}

static void conn_log_lost(redis_client_t *cl, rconn_t *c, const char *what, const char *why)
{
    if (cl->stopping || (c->last_log_ms && clock_now_ms() - c->last_log_ms < LOG_INTERVAL_MS))
        return;
    c->last_log_ms = clock_now_ms();
    c->lost_logged = true;
    log_fields(LOG_WARN, what, "reason", why, "conn", conn_name(c), "#thread", (int64_t)cl->r->id, NULL);
}

static void conn_schedule(redis_client_t *cl, rconn_t *c)
{
    if (cl->stopping)
        return;
    c->backoff_ms = c->backoff_ms ? MIN(c->backoff_ms * 2, RECONNECT_MAX_MS) : RECONNECT_MIN_MS;
    uint32_t jitter = (uint32_t)(clock_now_ns() % (c->backoff_ms / 4 + 1));
    timer_add(&cl->r->timers, &c->retry, clock_now_ms() + c->backoff_ms + jitter);
}

/* Drops the connection, fails what waits on it, and schedules a reconnect. */
static void conn_reset(redis_client_t *cl, rconn_t *c, int status, const char *why)
{
    if (c->state == RC_DOWN)
        return;
    bool was_ready = c->state == RC_READY;
    if (c->state == RC_CONNECTING)
        conn_cancel(cl, c, RIO_CONNECT);
    if (c->recv_busy)
        conn_cancel(cl, c, RIO_RECV);
    if (c->send_busy)
        conn_cancel(cl, c, RIO_SEND);
    if (c->recv_busy || c->send_busy)
        conn_cancel(cl, c, RIO_POLL); /* a poll ahead of a linked operation holds it back */
    /* the operations hold the socket until they complete; the descriptor can go now */
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->state = RC_DOWN;
    c->send_busy = c->recv_busy = false;
    c->out.len = 0;
    c->sending.len = 0; /* memory kept: a cancelled send may still read it */
    c->sent = 0;
    timer_del(&c->deadline);
    timer_del(&c->ping);
    timer_del(&c->retry);
    if (c->kind == RC_CMD)
        atomic_store_explicit(&cl->st.connected, false, memory_order_relaxed);
    for (int i = 0; c->kind == RC_SUB && i < cl->nsubs; i++) {
        if (cl->subs[i].confirmed)
            cl->subs[i].gap = true;
        cl->subs[i].confirmed = false;
    }
    redis_cmd_t *cmd;
    while ((cmd = fifo_pop(&c->awaiting)))
        cmd_finish(cl, cmd, status, NULL);
    if (!c->lost) {
        c->lost = true;
        c->down_since_ms = clock_now_ms();
        conn_log_lost(cl, c, was_ready ? "redis connection lost" : "redis connection failed", why);
    }
    conn_schedule(cl, c);
}

static void conn_ready(redis_client_t *cl, rconn_t *c)
{
    c->state = RC_READY;
    timer_del(&c->retry);
    if (c->reader)
        redisReaderFree(c->reader); /* a partial reply of the old connection must not leak in */
    c->reader = redisReaderCreate();
    if (!c->reader)
        die("redis: cannot create a reader (out of memory)");
    /* the handshake goes first in the pipeline; commands may follow it at once */
    if (cl->url.password[0]) {
        const char *argv[] = {"AUTH", cl->url.user, cl->url.password};
        if (cl->url.user[0])
            conn_internal(cl, c, CMD_AUTH, 3, argv);
        else
            conn_internal(cl, c, CMD_AUTH, 2, (const char *[]){"AUTH", cl->url.password});
    }
    if (c->kind == RC_CMD && cl->url.db) {
        char db[16];
        snprintf(db, sizeof(db), "%u", cl->url.db);
        conn_internal(cl, c, CMD_SELECT, 2, (const char *[]){"SELECT", db});
    }
    if (c->kind == RC_SUB) {
        for (int i = 0; i < cl->nsubs; i++)
            conn_append_argv(c, 2, (const char *[]){"SUBSCRIBE", cl->subs[i].channel}, NULL, false, NULL);
        timer_add(&cl->r->timers, &c->ping, clock_now_ms() + SUB_PING_MS);
    } else {
        atomic_store_explicit(&cl->st.connected, true, memory_order_relaxed);
    }
    conn_arm_recv(cl, c, 0);
    client_kick(cl);
    if (c->lost) {
        c->lost = false;
        stat_add(&cl->st.reconnects, 1);
        if (c->lost_logged)
            log_fields(LOG_INFO, "redis connection restored", "conn", conn_name(c), "#down_ms",
                       (int64_t)(clock_now_ms() - c->down_since_ms), "#thread", (int64_t)cl->r->id, NULL);
        c->lost_logged = false;
    }
}

static void conn_connect(redis_client_t *cl, rconn_t *c)
{
    if (cl->stopping || c->state != RC_DOWN)
        return;
    if (c->ops > 0) { /* cancelled operations still own the buffers: wait for them */
        timer_add(&cl->r->timers, &c->retry, clock_now_ms() + 10);
        return;
    }
    if (redis_sentinel_enabled()) {
        /* the master the sentinels named last; none yet: try again after the backoff */
        c->master_gen = redis_sentinel_master(&cl->addr, &cl->addrlen);
        if (!c->master_gen) {
            c->lost = true;
            conn_schedule(cl, c);
            return;
        }
    }
    int fd = socket(cl->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        conn_log_lost(cl, c, "redis connection failed", strerror(errno));
        c->lost = true;
        conn_schedule(cl, c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    c->fd = fd;
    c->state = RC_CONNECTING;
    if (!c->rbuf)
        c->rbuf = xmalloc(RECV_BUF_SIZE);
    struct io_uring_sqe *sqe = conn_sqe(cl, c, 0);
    io_uring_prep_connect(sqe, fd, (struct sockaddr *)&cl->addr, cl->addrlen);
    io_uring_sqe_set_data64(sqe, conn_ud(cl, c, RIO_CONNECT));
    timer_add(&cl->r->timers, &c->retry, clock_now_ms() + CONNECT_TIMEOUT_MS);
}

static void on_retry_timer(timer_entry_t *e)
{
    rconn_t *c = container_of(e, rconn_t, retry);
    if (c->state == RC_CONNECTING) {
        conn_reset(c->cl, c, REDIS_STATUS_UNAVAILABLE, "connect timeout");
        return;
    }
    conn_connect(c->cl, c);
}

/* The oldest command is overdue: the server or the path to it is gone without a word. */
static void on_deadline_timer(timer_entry_t *e)
{
    rconn_t *c = container_of(e, rconn_t, deadline);
    redis_client_t *cl = c->cl;
    if (c->state != RC_READY || !c->awaiting.head)
        return;
    uint64_t due = c->awaiting.head->start_ms + cl->timeout_ms;
    if (clock_now_ms() >= due) {
        conn_reset(cl, c, REDIS_STATUS_TIMEOUT, "command timeout");
        return;
    }
    timer_add(&cl->r->timers, &c->deadline, due);
}

/* A subscribed connection is otherwise silent: a PING proves it alive (or times out). */
static void on_ping_timer(timer_entry_t *e)
{
    rconn_t *c = container_of(e, rconn_t, ping);
    redis_client_t *cl = c->cl;
    if (c->state != RC_READY)
        return;
    if (!c->awaiting.head)
        conn_internal(cl, c, CMD_PING, 1, (const char *[]){"PING"});
    timer_add(&cl->r->timers, &c->ping, clock_now_ms() + SUB_PING_MS);
}

static void on_kick_timer(timer_entry_t *e)
{
    (void)e; /* the end-of-turn hook, which runs right after the timers, does the work */
}

/* ---------------------------------------------------------------- replies */

static bool is_str(const redisReply *r, const char *s)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->len == strlen(s) &&
           strcasecmp(r->str, s) == 0;
}

static redis_sub_t *sub_find(redis_client_t *cl, const redisReply *ch)
{
    for (int i = 0; ch && ch->type == REDIS_REPLY_STRING && i < cl->nsubs; i++)
        if (strlen(cl->subs[i].channel) == ch->len && memcmp(cl->subs[i].channel, ch->str, ch->len) == 0)
            return &cl->subs[i];
    return NULL;
}

/* A reply on the pub/sub connection that is not an answer to a queued command: a message, or
 * the confirmation of a subscription. Returns false when it is an ordinary reply. */
static bool sub_push(redis_client_t *cl, redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3)
        return false;
    redisReply *kind = rep->element[0];
    redis_sub_t *s = sub_find(cl, rep->element[1]);
    if (is_str(kind, "message")) {
        stat_add(&cl->st.messages, 1);
        if (s && rep->element[2]->type == REDIS_REPLY_STRING)
            s->on_message(s->channel, rep->element[2]->str, rep->element[2]->len, s->arg);
        return true;
    }
    if (is_str(kind, "subscribe")) {
        if (s) {
            s->confirmed = true;
            if (s->gap) {
                s->gap = false;
                if (s->on_resubscribe)
                    s->on_resubscribe(s->channel, s->arg);
            }
        }
        return true;
    }
    return is_str(kind, "unsubscribe") || is_str(kind, "pmessage") || is_str(kind, "psubscribe");
}

static void conn_take_reply(redis_client_t *cl, rconn_t *c, redisReply *rep)
{
    if (c->kind == RC_SUB && sub_push(cl, rep)) {
        freeReplyObject(rep);
        return;
    }
    redis_cmd_t *cmd = fifo_pop(&c->awaiting);
    if (!cmd) { /* nothing asked for it: the stream is out of step */
        freeReplyObject(rep);
        conn_reset(cl, c, REDIS_STATUS_UNAVAILABLE, "unexpected reply");
        return;
    }
    bool error = rep->type == REDIS_REPLY_ERROR;
    if (error && cmd->kind != CMD_USER) {
        char why[160];
        snprintf(why, sizeof(why), "%s: %s", cmd->kind == CMD_AUTH ? "AUTH" : "handshake", rep->str);
        freeReplyObject(rep);
        cmd_free(cl, cmd);
        conn_reset(cl, c, REDIS_STATUS_UNAVAILABLE, why);
        return;
    }
    if (!error)
        c->backoff_ms = 0; /* the server answers sensibly: the next loss starts over at 100 ms */
    if (error && cmd->script && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        eval_fallback(cl, c, cmd);
        return;
    }
    cmd_finish(cl, cmd, error ? REDIS_STATUS_ERROR : REDIS_STATUS_OK, rep);
}

static void on_recv(redis_client_t *cl, rconn_t *c, int res)
{
    if (res == -EAGAIN) {
        conn_arm_recv(cl, c, POLLIN);
        return;
    }
    if (res <= 0) {
        conn_reset(cl, c, REDIS_STATUS_UNAVAILABLE, res == 0 ? "closed by the server" : strerror(-res));
        return;
    }
    if (redisReaderFeed(c->reader, c->rbuf, (size_t)res) != REDIS_OK) {
        conn_reset(cl, c, REDIS_STATUS_UNAVAILABLE, "out of memory in the reply reader");
        return;
    }
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(c->reader, &rep) != REDIS_OK) {
            char why[160];
            snprintf(why, sizeof(why), "protocol error: %s", c->reader->errstr);
            conn_reset(cl, c, REDIS_STATUS_UNAVAILABLE, why);
            return;
        }
        if (!rep)
            break;
        conn_take_reply(cl, c, rep);
        if (c->state != RC_READY)
            return;
    }
    conn_arm_recv(cl, c, 0);
}

static void on_send(redis_client_t *cl, rconn_t *c, int res)
{
    if (res == -EAGAIN) {
        conn_arm_send(cl, c, POLLOUT);
        return;
    }
    if (res < 0) {
        conn_reset(cl, c, REDIS_STATUS_UNAVAILABLE, strerror(-res));
        return;
    }
    c->sent += (size_t)res;
    if (c->sent < c->sending.len) {
        conn_arm_send(cl, c, 0);
        return;
    }
    c->sending.len = 0;
    conn_flush(cl, c);
}

static void conn_free_buffers(rconn_t *c)
{
    if (c->reader)
        redisReaderFree(c->reader);
    c->reader = NULL;
    buf_free(&c->out);
    buf_free(&c->sending);
    free(c->rbuf);
    c->rbuf = NULL;
}

static void on_redis_cqe(reactor_t *r, struct io_uring_cqe *cqe)
{
    uint32_t index = reactor_ud_index(cqe->user_data);
    uint32_t slot = index >> 8, gen = (uint32_t)(cqe->user_data >> 32) & 0xffffff;
    enum rconn_io io = (enum rconn_io)(index & 15);
    redis_client_t *cl = shards_at(&client_shards, (int)slot);
    if (!cl)
        return;
    rconn_t *c = &cl->conns[(index >> 4) & 1];
    /* completions of a dead generation are only counted */
    if (gen == (c->gen & 0xffffff) && !cl->stopping) {
        switch (io) {
        case RIO_CONNECT:
            if (cqe->res < 0)
                conn_reset(cl, c, REDIS_STATUS_UNAVAILABLE, strerror(-cqe->res));
            else
                conn_ready(cl, c);
            break;
        case RIO_SEND:
            c->send_busy = false;
            on_send(cl, c, cqe->res);
            break;
        case RIO_RECV:
            c->recv_busy = false;
            on_recv(cl, c, cqe->res);
            break;
        case RIO_POLL:
            break;
        }
    }
    /* counted last: a callback above may have stopped the client while the buffers were in use */
    if (--c->ops == 0 && cl->stopping)
        conn_free_buffers(c);
}

/* ---------------------------------------------------------------- per turn */

static void client_run_done(redis_client_t *cl)
{
    /* only what is done now: a callback that retries a failed command waits for the next turn */
    redis_cmd_t *cmd = fifo_take_all(&cl->done);
    while (cmd) {
        redis_cmd_t *next = cmd->next;
        cmd->cb(cmd->arg, cmd->reply, cmd->status);
        cmd_free(cl, cmd);
        cmd = next;
    }
}

/* Sentinel mode: a connection to a master the sentinels no longer name is dropped (the old
 * master may be alive, demoted to a replica that refuses writes) and opened again at once. */
static void follow_master(redis_client_t *cl)
{
    uint32_t gen = redis_sentinel_generation();
    for (int k = 0; k < 2; k++) {
        rconn_t *c = &cl->conns[k];
        if (c->master_gen == gen)
            continue;
        c->master_gen = gen;
        c->backoff_ms = 0;
        if (c->state != RC_DOWN) {
            conn_reset(cl, c, REDIS_STATUS_UNAVAILABLE, "the sentinels named a new master");
        } else if (timer_armed(&c->retry)) {
            /* waiting out a backoff after losing the old master: the new one is up now */
            timer_del(&c->retry);
            conn_connect(cl, c);
        }
    }
}

static void client_turn(reactor_t *r, void *arg)
{
    redis_client_t *cl = arg;
    if (cl->enabled && !cl->stopping && redis_sentinel_enabled())
        follow_master(cl);
    client_run_done(cl);
    conn_flush(cl, &cl->conns[RC_CMD]);
    conn_flush(cl, &cl->conns[RC_SUB]);
    if (!cl->done.head)
        timer_del(&cl->kick);
}

/* ---------------------------------------------------------------- lifecycle */

static bool client_resolve(redis_client_t *cl)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", cl->url.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int ret = getaddrinfo(cl->url.host, port, &hints, &res);
    if (ret != 0 || !res) {
        log_fields(LOG_ERROR, "redis: cannot resolve host", "host", cl->url.host, "reason", gai_strerror(ret),
                   NULL);
        return false;
    }
    memcpy(&cl->addr, res->ai_addr, res->ai_addrlen);
    cl->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

int redis_client_start(reactor_t *r, const char *url, uint32_t timeout_ms)
{
    redis_client_t *cl = xcalloc(1, sizeof(*cl));
    cl->r = r;
    cl->timeout_ms = timeout_ms ? timeout_ms : REDIS_DEFAULT_TIMEOUT_MS;
    timer_init(&cl->kick, on_kick_timer);
    for (int k = 0; k < 2; k++) {
        rconn_t *c = &cl->conns[k];
        c->kind = (uint8_t)k;
        c->fd = -1;
        c->cl = cl;
        timer_init(&c->retry, on_retry_timer);
        timer_init(&c->deadline, on_deadline_timer);
        timer_init(&c->ping, on_ping_timer);
    }
    atomic_store_explicit(&cl->st.running, true, memory_order_relaxed);
    cl->slot = (uint32_t)shards_add(&client_shards, cl); /* completions name their client by slot */
    tl_client = cl;
    reactor_set_handler(r, OP_REDIS_POLL, on_redis_cqe);
    reactor_add_hook(r, client_turn, cl);
    bool sentinel = redis_sentinel_enabled();
    if ((!url || !*url) && !sentinel)
        return -1;
    const char *why = NULL;
    if (url && *url && !redis_url_parse(url, &cl->url, &why)) {
        log_fields(LOG_ERROR, "redis: bad REDIS_URL", "reason", why, NULL);
        return -1;
    }
    /* with sentinels, REDIS_URL gives the password and database; the address is the master's */
    if (!sentinel && !client_resolve(cl))
        return -1;
    cl->enabled = true;
    conn_connect(cl, &cl->conns[RC_CMD]);
    return 0;
}

void redis_client_stop(void)
{
    redis_client_t *cl = tl_client;
    if (!cl || cl->stopping)
        return;
    cl->stopping = true; /* first: the resets below then log nothing and schedule nothing */
    atomic_store_explicit(&cl->st.running, false, memory_order_relaxed);
    for (int k = 0; k < 2; k++)
        conn_reset(cl, &cl->conns[k], REDIS_STATUS_UNAVAILABLE, "shutting down");
    for (int round = 0; cl->done.head && round < 8; round++)
        client_run_done(cl);
    timer_del(&cl->kick);
    redis_cmd_t *cmd;
    while ((cmd = cl->free_cmds)) {
        cl->free_cmds = cmd->next;
        free(cmd);
    }
    for (int i = 0; i < cl->nsubs; i++)
        free(cl->subs[i].channel);
    cl->nsubs = 0;
    for (int k = 0; k < 2; k++)
        if (cl->conns[k].ops == 0)
            conn_free_buffers(&cl->conns[k]);
    /* the client stays registered: late completions find it and free the buffers they held */
}

bool redis_connected(void)
{
    redis_client_t *cl = tl_client;
    return cl && !cl->stopping && cl->conns[RC_CMD].state == RC_READY;
}

int redis_subscribe(const char *channel, redis_message_cb_t on_message, redis_resubscribe_cb_t on_resubscribe,
                    void *arg)
{
    redis_client_t *cl = tl_client;
    if (!cl || !cl->enabled || cl->stopping || cl->nsubs >= MAX_SUBS)
        return -1;
    redis_sub_t *s = &cl->subs[cl->nsubs++];
    s->channel = xstrndup(channel, strlen(channel));
    s->on_message = on_message;
    s->on_resubscribe = on_resubscribe;
    s->arg = arg;
    rconn_t *c = &cl->conns[RC_SUB];
    if (c->state == RC_READY) {
        conn_append_argv(c, 2, (const char *[]){"SUBSCRIBE", s->channel}, NULL, false, NULL);
        client_kick(cl);
    } else if (c->state == RC_DOWN && !timer_armed(&c->retry)) {
        conn_connect(cl, c); /* first subscription: open the connection */
    }
    return 0;
}

void redis_stats(redis_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    SHARDS_EACH(&client_shards, redis_client_t, cl)
    {
        const client_stats_t *s = &cl->st;
        out->commands += atomic_load_explicit(&s->commands, memory_order_relaxed);
        out->errors += atomic_load_explicit(&s->errors, memory_order_relaxed);
        out->timeouts += atomic_load_explicit(&s->timeouts, memory_order_relaxed);
        out->unavailable += atomic_load_explicit(&s->unavailable, memory_order_relaxed);
        out->reconnects += atomic_load_explicit(&s->reconnects, memory_order_relaxed);
        out->sends += atomic_load_explicit(&s->sends, memory_order_relaxed);
        out->messages += atomic_load_explicit(&s->messages, memory_order_relaxed);
        out->connected += atomic_load_explicit(&s->connected, memory_order_relaxed);
        out->clients += atomic_load_explicit(&s->running, memory_order_relaxed);
    }
}
