// fuzz-sources: http/parser.c http/trace.c core/common.c
/*
 * libFuzzer harness for http/parser.c. Each input is parsed as a request head whole, split in
 * two at a boundary chosen from the input's hash, and fed one byte at a time: all three must
 * give the same result and the same fields. The same bytes go through the chunked decoder
 * (whole, split, byte by byte; again all must agree), and a parsed head's path and query
 * through http_url_decode and http_query_next. Any disagreement aborts, so libFuzzer keeps it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"
#include "http/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                          \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static http_request_t req_whole, req_split, req_bytes;

static char *copy(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);
    ASSERT(p);
    if (n)
        memcpy(p, data, n);
    return p;
}

static uint64_t hash(const uint8_t *data, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ data[i]) * 0x100000001b3u;
    return h;
}

/* Two results for the same bytes in buffers a and b describe the same fields. */
static void same_str(http_str_t x, const char *a, http_str_t y, const char *b, size_t n)
{
    ASSERT(x.len == y.len && !x.p == !y.p);
    if (!x.p)
        return;
    int x_in = x.p >= a && x.p <= a + n, y_in = y.p >= b && y.p <= b + n;
    ASSERT(x_in == y_in);
    if (x_in) {
        ASSERT(x.p - a == y.p - b);
        ASSERT(x.len <= n - (size_t)(x.p - a));
    } else {
        ASSERT(memcmp(x.p, y.p, x.len) == 0);
    }
}

static void same_request(const http_request_t *x, const char *a, const http_request_t *y, const char *b,
                         size_t n)
{
    ASSERT(x->method == y->method && x->version_minor == y->version_minor && x->flags == y->flags);
    ASSERT(x->content_length == y->content_length && x->num_headers == y->num_headers);
    ASSERT(x->num_headers <= HTTP_MAX_HEADERS);
    same_str(x->method_str, a, y->method_str, b, n);
    same_str(x->target, a, y->target, b, n);
    same_str(x->path, a, y->path, b, n);
    same_str(x->query, a, y->query, b, n);
#define SAME(f) same_str(x->f, a, y->f, b, n)
    SAME(host);
    SAME(authorization);
    SAME(x_api_key);
    SAME(x_request_id);
    SAME(accept_encoding);
    SAME(if_none_match);
    SAME(if_match);
    SAME(origin);
    SAME(content_type);
    SAME(idempotency_key);
    SAME(x_forwarded_for);
    SAME(access_control_request_method);
    SAME(access_control_request_headers);
#undef SAME
    for (uint32_t i = 0; i < x->num_headers; i++) {
        same_str(x->headers[i].name, a, y->headers[i].name, b, n);
        same_str(x->headers[i].value, a, y->headers[i].value, b, n);
    }
}

static void check_url_helpers(const http_request_t *r)
{
    char *out = malloc(r->path.len + r->query.len + 1);
    ASSERT(out);
    long n = http_url_decode(out, r->path.p, r->path.len, 0);
    ASSERT(n <= (long)r->path.len);
    for (long i = 0; i < n; i++)
        ASSERT((unsigned char)out[i] >= 0x20 && (unsigned char)out[i] != 0x7f);

    http_query_iter_t it;
    http_str_t k, v;
    size_t pairs = 0;
    http_query_init(&it, r->query);
    while (http_query_next(&it, &k, &v)) {
        ASSERT(++pairs <= r->query.len);
        ASSERT(k.p >= r->query.p && v.p + v.len <= r->query.p + r->query.len);
        /* "=" is a pair with an empty key and value; only "&&" pairs are skipped */
        ASSERT((k.len > 0 || v.p > k.p) && !memchr(k.p, '&', k.len) && !memchr(k.p, '=', k.len));
        ASSERT(!memchr(v.p, '&', v.len));
        ASSERT(http_url_decode(out, k.p, k.len, 1) <= (long)k.len);
        ASSERT(http_url_decode(out, v.p, v.len, 1) <= (long)v.len);
    }
    free(out);

    /* a traceparent that parses formats back to itself (version 00), with a new span */
    if (r->traceparent.p) {
        char trace[HTTP_TRACE_ID_HEX + 1], tp[HTTP_TRACEPARENT_LEN + 1];
        uint8_t flags;
        if (http_traceparent_parse(r->traceparent.p, r->traceparent.len, trace, &flags)) {
            ASSERT(strlen(trace) == HTTP_TRACE_ID_HEX &&
                   strspn(trace, "0123456789abcdef") == HTTP_TRACE_ID_HEX);
            http_traceparent_format(trace, r->traceparent.p + 36, flags, tp);
            if (r->traceparent.p[0] == '0' && r->traceparent.p[1] == '0')
                ASSERT(memcmp(tp, r->traceparent.p, HTTP_TRACEPARENT_LEN) == 0);
        }
    }
}

static void fuzz_head(const uint8_t *data, size_t size, uint64_t h)
{
    char *whole = copy(data, size);
    size_t scan = 0;
    int r = http_parse_request(whole, size, &scan, &req_whole);
    ASSERT(r <= (int)size && r <= HTTP_MAX_HEAD);
    ASSERT(r >= 0 || r == -400 || r == -414 || r == -431 || r == -501 || r == -505 || r == -417);

    /* split in two; the first part in a buffer of exactly its size */
    size_t k = (size_t)(h % (size + 1));
    char *part = copy(data, k), *full = copy(data, size);
    scan = 0;
    int r1 = http_parse_request(part, k, &scan, &req_split);
    if (r1 != 0) {
        ASSERT(r1 == r);
        if (r > 0)
            same_request(&req_whole, whole, &req_split, part, (size_t)r);
    } else {
        ASSERT(http_parse_request(full, size, &scan, &req_split) == r);
        if (r > 0)
            same_request(&req_whole, whole, &req_split, full, (size_t)r);
    }

    /* one byte at a time (bounded: past the head limit the answer is fixed) */
    size_t stop = size < HTTP_MAX_HEAD + 1 ? size : HTTP_MAX_HEAD + 1;
    int rb = 0;
    size_t i;
    scan = 0;
    for (i = 0; i <= stop && rb == 0; i++)
        rb = http_parse_request(full, i, &scan, &req_bytes);
    if (stop == size || rb != 0) {
        ASSERT(rb == r);
        if (r > 0) {
            ASSERT(i == (size_t)r + 1);
            same_request(&req_whole, whole, &req_bytes, full, (size_t)r);
        }
    }

    if (r > 0)
        check_url_helpers(&req_whole);
    free(whole);
    free(part);
    free(full);
}

struct dechunked {
    int ret;
    size_t used, outlen;
    char *out;
};

/* Decodes data fed in pieces of `step` bytes, each piece in its own exact-size buffer. */
static struct dechunked dechunk(const uint8_t *data, size_t size, size_t step, uint64_t limit)
{
    struct dechunked res = {0, 0, 0, malloc(size + 1)};
    http_chunked_t d = {.limit = limit};
    ASSERT(res.out);
    for (size_t off = 0; off < size && res.ret == 0; off += step) {
        size_t len = step < size - off ? step : size - off, in = len, cons = 0;
        char *piece = copy(data + off, len);
        res.ret = http_chunked_decode(&d, piece, &len, &cons);
        ASSERT(res.ret == 0 || res.ret == 1 || res.ret == -400 || res.ret == -413);
        ASSERT(cons <= in && len <= cons);
        ASSERT(res.ret != 0 || cons == in);
        memcpy(res.out + res.outlen, piece, len);
        res.outlen += len;
        res.used += cons;
        ASSERT(d.total <= d.limit);
        free(piece);
    }
    return res;
}

static void fuzz_chunked(const uint8_t *data, size_t size, uint64_t h)
{
    uint64_t limit = (h >> 8) & 1 ? UINT64_MAX : (h >> 9) % 4096;
    size_t step = 1 + (size_t)((h >> 24) % (size + 1));
    struct dechunked a = dechunk(data, size, size ? size : 1, limit);
    struct dechunked b = dechunk(data, size, step, limit);
    struct dechunked c = dechunk(data, size, 1, limit);
    ASSERT(a.ret == b.ret && a.ret == c.ret);
    if (a.ret >= 0) {
        ASSERT(a.used == b.used && a.used == c.used);
        ASSERT(a.outlen == b.outlen && a.outlen == c.outlen);
        ASSERT(memcmp(a.out, b.out, a.outlen) == 0 && memcmp(a.out, c.out, a.outlen) == 0);
    }
    free(a.out);
    free(b.out);
    free(c.out);
}

static void fuzz_url(const uint8_t *data, size_t size)
{
    char *src = copy(data, size), *dst = malloc(size + 1);
    ASSERT(dst);
    long n = http_url_decode(dst, src, size, data[0] & 1);
    long m = http_url_decode(src, src, size, data[0] & 1); /* in place */
    ASSERT(n == m && n <= (long)size);
    if (n > 0)
        ASSERT(memcmp(dst, src, (size_t)n) == 0);
    free(src);
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = hash(data, size);
    fuzz_head(data, size, h);
    fuzz_chunked(data, size, h);
    if (size)
        fuzz_url(data, size);
    return 0;
}
