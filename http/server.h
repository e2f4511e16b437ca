/*
 * The HTTP/1.1 server of one reactor thread: its listener, its connection slots and the
 * request path from received bytes to queued response bytes. Handlers get an http_ctx_t,
 * write a body and call one of the http_respond* functions, at once or later from a
 * completion (an asynchronous handler); responses to pipelined requests leave in order.
 */
#ifndef CRMD_HTTP_SERVER_H
#define CRMD_HTTP_SERVER_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/hist.h"
#include "core/reactor.h"
#include "core/timer.h"
#include "http/parser.h"
#include "http/router.h"

/* Process-wide lifecycle, read by the health endpoints. */
enum server_state { SERVER_STARTING = 0, SERVER_READY, SERVER_DRAINING };
extern _Atomic int g_server_state;

typedef struct http_server http_server_t;
typedef struct http_conn http_conn_t;

/* What a connection is waiting for. */
enum conn_state {
    CONN_HEAD = 0, /* the next request head */
    CONN_BODY,     /* the body of the request in ctx */
    CONN_HANDLER,  /* an asynchronous handler to answer ctx */
};

/* Documented connection flags. */
enum conn_flags {
    CONN_RECV_ARMED = 1u << 0,    /* a multishot recv is outstanding */
    CONN_SENDING = 1u << 1,       /* a send is in flight; at most one */
    CONN_CLOSE_AFTER = 1u << 2,   /* close once the queued output is sent */
    CONN_CLOSING = 1u << 3,       /* cancel and close issued; waiting for the last CQEs */
    CONN_CONTINUE_SENT = 1u << 4, /* "100 Continue" already sent for this request */
    CONN_PEER_EOF = 1u << 5,      /* the peer shut down its sending side */
    CONN_CLOSE_QUEUED = 1u << 6,  /* closing: cancel and close wait for a turn with room */
};

/* Which deadline the connection's one timer stands for. */
enum conn_timer_kind { TIMER_NONE = 0, TIMER_HEAD, TIMER_BODY, TIMER_IDLE, TIMER_SEND, TIMER_LINGER };

struct http_conn {
    int fd;
    uint32_t idx;
    uint16_t flags;      /* enum conn_flags */
    uint8_t state;       /* enum conn_state */
    uint8_t ops;         /* CQEs still to come: recv, send, close */
    uint8_t timer_kind;  /* enum conn_timer_kind */
    timer_entry_t timer; /* header, idle, body or send timeout, by state */
    buf_t *in;           /* received bytes not yet consumed (NULL when none) */
    size_t in_start;     /* consumed bytes at the front of in */
    size_t head_scan;    /* parser state for the head at in_start */
    buf_t *out;          /* responses queued behind the send in flight */
    buf_t *sending;      /* bytes of the send in flight */
    size_t sent;
    http_ctx_t *ctx;     /* the request whose head was parsed, until answered */
    uint32_t requests;   /* answered on this connection */
    uint32_t close_next; /* next in the server's close queue (CONN_CLOSE_QUEUED) */
    uint8_t listener;    /* index into the server's listeners */
    uint8_t peer_family;
    uint16_t peer_port;
    uint8_t peer_addr[16];
};

/* Where a sub-request's answer goes instead of a connection. */
typedef void (*http_sub_done_fn)(void *arg, int status, const char *content_type, const char *body,
                                 size_t len);

/* Takes over a response (a cache fill): returns true when it answered ctx itself. */
typedef bool (*http_capture_fn)(http_ctx_t *ctx, int status, const char *content_type);

/* One request, from its parsed head to its response. */
struct http_ctx {
    http_server_t *srv;
    http_conn_t *conn;
    http_request_t req;
    const http_route_t *route;
    http_str_t params[ROUTER_MAX_PARAMS];
    int nparams;
    http_str_t path; /* percent-decoded path */
    http_str_t body; /* the complete request body (decoded if chunked) */
    http_chunked_t chunked;
    size_t body_raw; /* chunked: raw bytes already decoded, after the head */
    size_t head_len;
    uint64_t start_ns;
    arena_t arena; /* freed in one call when the response is queued */
    buf_t *resp;   /* response body being written by the handler */
    buf_t headers; /* extra response header lines ("Name: value\r\n"), handler-set */
    buf_t timing;  /* extra Server-Timing entries ("db;dur=0.84") */
    int status;
    bool finished;
    bool head_only;          /* HEAD: headers of the GET, no body */
    bool cacheable;          /* a 200 gets a strong ETag and Cache-Control; If-None-Match gives 304 */
    buf_t *orphan_in;        /* the closed connection's input, which req/body still point into */
    http_capture_fn capture; /* called once by http_respond before anything is written */
    void *capture_arg;
    bool no_store;             /* the response must not be kept by the response cache */
    void *handler_data;        /* a handler's state across a cached fill (GraphQL's parsed request) */
    http_sub_done_fn sub_done; /* a sub-request: the answer goes here, not to conn */
    void *sub_arg;
    char key_prefix[9];  /* the API key's 8-character prefix, for logs (empty: none) */
    uint8_t peer_family; /* the client's address (copied: outlives the connection) */
    uint8_t peer_addr[16];
    char request_id[65];
    uint8_t request_id_len;
    uint8_t trace_flags; /* the caller's traceparent flags (sampled, ...), 0 for a new trace */
    char trace_id[33];   /* W3C trace id: the caller's, or new */
    char span_id[17];    /* this request's span in it */
    struct http_ctx *next_free;
    char arena_inline[2048];
};

#define HTTP_MAX_LISTENERS 2
#define HTTP_STATUS_SLOTS  32 /* per-route counters: known statuses, then "other" */

/* Descriptors the admin listener keeps open in reserve: when the process runs out, it closes
 * one to accept an operator's connection, so /metrics and health still answer. */
#define HTTP_ADMIN_FD_RESERVE 8
/* Connections the admin listener may hold beyond --max-conns. */
#define HTTP_ADMIN_MAX_CONNS 64

typedef struct {
    int fd;
    bool accept_armed;
    bool admin; /* the operator listener: its own connection and descriptor reserve */
    const router_t *router;
    /* out of descriptors (EMFILE/ENFILE): accepting pauses, with a doubling backoff */
    timer_entry_t resume;
    uint32_t backoff_ms;
    uint64_t fd_errors;        /* accept failures for lack of descriptors, since start */
    uint64_t fd_errors_logged; /* of those, how many the last log line covered */
    uint64_t last_fd_log_ms;
} http_listener_t;

/* Requests of one route on one thread. */
typedef struct {
    uint64_t status[HTTP_STATUS_SLOTS];
    hist_t latency_us;
} http_route_stats_t;

struct http_server {
    reactor_t *r;
    http_listener_t listeners[HTTP_MAX_LISTENERS];
    int nlisteners;
    bool draining;
    /* [listener][route id]; id 0 counts requests that matched no route */
    http_route_stats_t *route_stats[HTTP_MAX_LISTENERS];
    http_conn_t *conns;
    uint32_t max_conns;
    uint32_t *free_slots;
    uint32_t nfree;
    uint32_t next_unused;
    uint32_t open_conns;
    uint32_t admin_conns; /* open connections of the admin listener */
    /* connections whose cancel and close are not issued yet, oldest first (slot indices
     * linked through close_next): a turn issues at most HTTP_CLOSES_PER_TURN of them */
    uint32_t close_head, close_tail, nclose_queued;
    int admin_reserve[HTTP_ADMIN_FD_RESERVE]; /* -1: slot spent */
    buf_pool_t pool;
    http_ctx_t *free_ctx;
    http_ctx_t *dispatching; /* the request whose handler is running right now */
    uint64_t now_ns;         /* monotonic time of the latest receive */
    struct http_compressor *compressor;
    buf_t zbuf; /* compressed body of the response being written */
    char rid_prefix[9];
    uint64_t trace_rng; /* splitmix64 state for trace and span ids, seeded at random */
    uint64_t rid_counter;
    uint64_t log_counter;
    uint64_t last_cap_log_ms;
    struct {
        uint64_t accepted, rejected, requests, bad_requests;
        uint64_t accept_fd_exhausted; /* accepts that failed with EMFILE/ENFILE */
        uint64_t internal_errors;     /* 500s: our own faults, never the client's data */
        uint64_t by_class[6];         /* 1xx..5xx responses */
    } stats;
};

/* Sets up the thread's server on reactor r: binds an SO_REUSEPORT listener on the configured
 * address and arms multishot accept. Returns 0 or -errno (logged). */
int http_server_init(http_server_t *s, reactor_t *r, const router_t *router, const config_t *cfg);

/* Adds another listener served with its own routes; `admin` gives it a connection and
 * descriptor reserve of its own, so operators get in while the public listener is full. */
int http_server_listen(http_server_t *s, const config_addr_t *addr, const router_t *router, bool admin);

/* Merged over every thread's server: connection counts and per-route statistics. */
typedef struct {
    uint64_t open, accepted, rejected, requests, bad_requests;
    uint64_t accept_fd_exhausted, internal_errors;
    uint64_t by_class[6];
} http_totals_t;
void http_totals(http_totals_t *out);
/* Adds every thread's statistics for route id of listener into out (zero it first). */
void http_route_totals(int listener, uint16_t id, http_route_stats_t *out);
/* The status code a per-route counter slot stands for (0 for "other"). */
int http_status_of_slot(int slot);
void http_server_destroy(http_server_t *s);
/* Frees what http_server_destroy leaves for late metrics readers; call once every thread has
 * stopped. */
void http_server_release(http_server_t *s);

/* Starts draining: stop accepting, close idle connections, let in-flight requests finish.
 * The reactor stops when the last connection has closed. */
void http_server_drain(http_server_t *s);

/* Open connections across all threads (for the cap and for operations endpoints). */
extern _Atomic uint32_t g_open_conns;

/* ---- for handlers ---- */

/* The body buffer to write the response into (JSON straight into it). */
static inline buf_t *http_body(http_ctx_t *ctx)
{
    return ctx->resp;
}

/* Adds a header line; name and value are written as given (no CR/LF allowed in either). */
void http_add_header(http_ctx_t *ctx, const char *name, size_t name_len, const char *value, size_t value_len);

/* Marks a GET/HEAD response as a cacheable representation (strong ETag, revalidation). */
static inline void http_set_cacheable(http_ctx_t *ctx)
{
    ctx->cacheable = true;
}

/* Queues the response: status, headers, and the body written to http_body(ctx), compressed
 * when the client accepts it and the body is over HTTP_COMPRESS_MIN of a compressible type.
 * Completes the request; ctx must not be used afterwards. */
void http_respond(http_ctx_t *ctx, int status, const char *content_type);

/* Queues exactly this status, body and the headers added so far: no compression, no ETag
 * (for bodies that are already encoded, like a cache entry's variant). */
void http_respond_raw(http_ctx_t *ctx, int status, const char *content_type, const char *body,
                      size_t body_len);

/* Queues a JSON body given as a string (for constant bodies). */
void http_respond_json_const(http_ctx_t *ctx, int status, const char *json, size_t len);

/* Queues an RFC 9457 problem (application/problem+json) with type "/problems/<code>". */
void http_respond_problem(http_ctx_t *ctx, int status, const char *code, const char *detail);

/* One request made by a handler on behalf of its client (POST /api/batch): it runs through
 * the same routes, auth, limits and caches as a request from a connection. */
typedef struct {
    http_method_t method;
    const char *path; /* decoded, starting with '/' */
    size_t path_len;
    const char *query; /* raw (percent-encoded), without '?' */
    size_t query_len;
    const char *body; /* JSON */
    size_t body_len;
    const char *request_id;      /* 1-64 of [A-Za-z0-9._-] */
    const char *idempotency_key; /* NULL: none */
    http_sub_done_fn done;       /* called once with the answer (possibly before http_subrequest returns) */
    void *arg;
} http_subrequest_t;

/* Runs sr as a request with parent's credentials (Authorization, X-API-Key) and client. The
 * strings in sr must live until done is called (e.g. in parent's arena). */
void http_subrequest(http_ctx_t *parent, const http_subrequest_t *sr);

/* Reason phrase of a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
