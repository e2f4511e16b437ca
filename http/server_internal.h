/* What the connection code (server.c) and the response writer (response.c) share. */
#ifndef CRMD_HTTP_SERVER_INTERNAL_H
#define CRMD_HTTP_SERVER_INTERNAL_H

#include "http/server.h"

/* Parses and answers requests from conn->in until it runs dry, an answer is pending, or the
 * output is backed up. */
void conn_on_input(http_server_t *s, http_conn_t *c);
/* Starts a send of the queued output unless one is in flight; closes when asked to. */
void conn_flush(http_server_t *s, http_conn_t *c);
/* Arms the one timer the connection needs in its state. */
void conn_update_timer(http_server_t *s, http_conn_t *c);
/* A buffer from the thread's pool. */
buf_t *pool_buf(http_server_t *s);
/* A request context from the thread's free list, for connection c (NULL: a sub-request). */
http_ctx_t *ctx_get(http_server_t *s, http_conn_t *c);
/* Returns ctx (its arena and body buffer) to the free list. */
void ctx_put(http_server_t *s, http_ctx_t *ctx);
/* The client's X-Request-Id when valid, else a new one. */
void ctx_set_request_id(http_server_t *s, http_ctx_t *ctx);

/* Writes the response (status line, the common headers, ctx's headers, the body unless HEAD
 * or a bodiless status) to o; keep: the connection stays open; us: the time taken. */
void http_serialise(buf_t *o, const http_ctx_t *ctx, int status, const char *content_type, const char *body,
                    size_t body_len, bool keep, uint64_t us);
/* The slot of a status in the per-route counters. */
int http_status_slot(int status);
/* Microseconds as "0.412" into out (at least 24 bytes); returns the length. */
size_t http_format_ms(uint64_t us, char *out);

#endif
