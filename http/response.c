/*
 * Writing responses: the status line and the headers every response carries (Date,
 * Content-Length, X-Request-Id, X-Response-Time, Server-Timing, the security headers, CORS),
 * compression and strong ETags for cacheable GETs, problem+json errors. Only serialising:
 * a request is finished (accounted, logged, its connection resumed) by http_respond_raw in
 * server.c.
 */
#include "http/trace.h"
#include "http/server.h"
#include "http/server_internal.h"
#include "core/common.h"
#include "core/json.h"
#include "http/compress.h"
#include "http/cors.h"
#include "http/etag.h"

#include <stdio.h>
#include <string.h>

static const struct {
    int code;
    const char *text;
} status_texts[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

int http_status_slot(int status)
{
    for (size_t i = 0; i < ARRAY_LEN(status_texts) && i < HTTP_STATUS_SLOTS - 1; i++)
        if (status_texts[i].code == status)
            return (int)i;
    return HTTP_STATUS_SLOTS - 1;
}

int http_status_of_slot(int slot)
{
    return slot >= 0 && slot < (int)ARRAY_LEN(status_texts) && slot < HTTP_STATUS_SLOTS - 1
               ? status_texts[slot].code
               : 0;
}

const char *http_status_text(int status)
{
    for (size_t i = 0; i < ARRAY_LEN(status_texts); i++)
        if (status_texts[i].code == status)
            return status_texts[i].text;
    return "Unknown";
}

void http_add_header(http_ctx_t *ctx, const char *name, size_t name_len, const char *value, size_t value_len)
{
    buf_append(&ctx->headers, name, name_len);
    buf_append(&ctx->headers, LIT(": "));
    buf_append(&ctx->headers, value, value_len);
    buf_append(&ctx->headers, LIT("\r\n"));
}

/* Microseconds as "0.412" into out (at least 24 bytes); returns the length. */
size_t http_format_ms(uint64_t us, char *out)
{
    size_t n = u64_text(out, us / 1000);
    out[n++] = '.';
    out[n++] = (char)('0' + us / 100 % 10);
    out[n++] = (char)('0' + us / 10 % 10);
    out[n++] = (char)('0' + us % 10);
    return n;
}

static const char security_headers[] =
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
    "Cross-Origin-Resource-Policy: same-origin\r\n";

void http_respond(http_ctx_t *ctx, int status, const char *content_type)
{
    http_server_t *s = ctx->srv;
    if (ctx->capture) {
        /* a cache fill takes the response (it answers from what it stored) */
        http_capture_fn capture = ctx->capture;
        ctx->capture = NULL;
        if (capture(ctx, status, content_type))
            return;
    }
    const char *body = ctx->resp ? ctx->resp->data : NULL;
    size_t body_len = ctx->resp ? ctx->resp->len : 0;
    /* a 304 carries the Vary of the 200 it stands for */
    bool compressible = body_len > HTTP_COMPRESS_MIN && content_type &&
                        http_compressible_type(content_type) && status != 204 && status >= 200;
    if (compressible)
        http_add_header(ctx, LIT("Vary"), LIT("Accept-Encoding"));
    if (ctx->cacheable && status == 200) {
        char tag[20];
        uint64_t etag = http_etag_hash(body, body_len);
        http_add_header(ctx, LIT("ETag"), tag, http_etag_format(etag, tag));
        http_add_header(ctx, LIT("Cache-Control"), LIT("private, max-age=0, must-revalidate"));
        if (ctx->req.if_none_match.len && http_if_none_match(ctx->req.if_none_match, etag))
            status = 304;
    }
    if (compressible && status != 304) {
        http_encoding_t enc = http_negotiate_encoding(ctx->req.accept_encoding);
        if (enc == HTTP_ENCODING_GZIP || enc == HTTP_ENCODING_BR) {
            s->zbuf.len = 0;
            if (http_compress(s->compressor, enc, body, body_len, &s->zbuf)) {
                const char *name = http_encoding_name(enc);
                http_add_header(ctx, LIT("Content-Encoding"), name, strlen(name));
                body = s->zbuf.data;
                body_len = s->zbuf.len;
            }
        }
    }
    http_respond_raw(ctx, status, content_type, body, body_len);
}

void http_serialise(buf_t *o, const http_ctx_t *ctx, int status, const char *content_type, const char *body,
                    size_t body_len, bool keep, uint64_t us)
{
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);

    buf_reserve(o, 512 + ctx->headers.len + (ctx->head_only || no_body ? 0 : body_len));
    buf_append(o, LIT("HTTP/1.1 "));
    buf_append_u64(o, (uint64_t)status);
    buf_putc(o, ' ');
    const char *reason = http_status_text(status);
    buf_append(o, reason, strlen(reason));
    buf_append(o, LIT("\r\nDate: "));
    buf_append(o, ctx->srv->r->date.text, CLOCK_HTTP_DATE_LEN);
    if (content_type && !no_body) {
        buf_append(o, LIT("\r\nContent-Type: "));
        buf_append(o, content_type, strlen(content_type));
    }
    if (!no_body) {
        buf_append(o, LIT("\r\nContent-Length: "));
        buf_append_u64(o, body_len);
    }
    buf_append(o, LIT("\r\nX-Request-Id: "));
    buf_append(o, ctx->request_id, ctx->request_id_len);
    char tp[HTTP_TRACEPARENT_LEN + 1];
    http_traceparent_format(ctx->trace_id, ctx->span_id, ctx->trace_flags, tp);
    buf_append(o, LIT("\r\ntraceparent: "));
    buf_append(o, tp, HTTP_TRACEPARENT_LEN);
    char ms[24];
    size_t ms_len = http_format_ms(us, ms);
    buf_append(o, LIT("\r\nX-Response-Time: "));
    buf_append(o, ms, ms_len);
    buf_append(o, LIT("ms\r\nServer-Timing: "));
    if (ctx->timing.len) {
        buf_append(o, ctx->timing.data, ctx->timing.len);
        buf_append(o, LIT(", "));
    }
    buf_append(o, LIT("total;dur="));
    buf_append(o, ms, ms_len);
    buf_append(o, LIT("\r\n"));
    buf_append(o, security_headers, sizeof(security_headers) - 1);
    if (g_config.hsts_max_age > 0) {
        buf_append(o, LIT("Strict-Transport-Security: max-age="));
        buf_append_u64(o, (uint64_t)g_config.hsts_max_age);
        buf_append(o, LIT("; includeSubDomains\r\n"));
    }
    http_cors_out_t cors;
    http_cors_headers(&ctx->req, &cors);
    for (int i = 0; i < cors.n; i++) {
        buf_append(o, cors.h[i].name, cors.h[i].name_len);
        buf_append(o, LIT(": "));
        buf_append(o, cors.h[i].value, cors.h[i].value_len);
        buf_append(o, LIT("\r\n"));
    }
    if (ctx->headers.len)
        buf_append(o, ctx->headers.data, ctx->headers.len);
    if (!keep)
        buf_append(o, LIT("Connection: close\r\n"));
    else if (ctx->req.version_minor == 0)
        buf_append(o, LIT("Connection: keep-alive\r\n"));
    buf_append(o, LIT("\r\n"));
    if (body_len && !ctx->head_only && !no_body)
        buf_append(o, body, body_len);
}

void http_respond_json_const(http_ctx_t *ctx, int status, const char *json, size_t len)
{
    if (!ctx->resp)
        ctx->resp = buf_pool_get(&ctx->srv->pool, len);
    ctx->resp->len = 0;
    buf_append(ctx->resp, json, len);
    http_respond(ctx, status, "application/json");
}

void http_respond_problem(http_ctx_t *ctx, int status, const char *code, const char *detail)
{
    if (!ctx->resp)
        ctx->resp = buf_pool_get(&ctx->srv->pool, 256);
    if (!ctx->request_id_len)
        ctx_set_request_id(ctx->srv, ctx);
    buf_t *b = ctx->resp;
    b->len = 0;
    buf_append(b, LIT("{\"type\":\"/problems/"));
    buf_append(b, code, strlen(code));
    buf_append(b, LIT("\",\"title\":"));
    const char *title = http_status_text(status);
    json_str(b, title, strlen(title));
    buf_append(b, LIT(",\"status\":"));
    buf_append_u64(b, (uint64_t)status);
    buf_append(b, LIT(",\"detail\":"));
    json_str(b, detail, strlen(detail));
    buf_append(b, LIT(",\"request_id\":"));
    json_str(b, ctx->request_id, ctx->request_id_len);
    buf_putc(b, '}');
    http_respond(ctx, status, "application/problem+json");
}
