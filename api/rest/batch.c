/*
 * POST /api/batch [{"id", "method", "path", "query"?, "body"?}] (at most 25) →
 * 200 [{"id", "status", "body"}] in input order.
 *
 * Each operation is a sub-request (http_subrequest) with the caller's key, so auth, limits,
 * validation and caching apply to it exactly as to a request of its own. Order: GETs run
 * concurrently; a write starts once every operation before it has answered, and the
 * operations after a write wait for it. A nested /api/batch is refused for that operation.
 */
#include "api/rest/batch.h"
#include "api/auth.h"
#include "api/route.h"
#include "api/common.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/json_read.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

#define BATCH_MAX 25

typedef struct batch batch_t;

typedef struct {
    batch_t *batch;
    int index;
    const json_value_t *id;
    http_method_t method;
    char *path;
    size_t path_len;
    char *query;
    size_t query_len;
    char *body;
    size_t body_len;
    char request_id[72];
    char idem_key[112]; /* derived from the batch's Idempotency-Key for a write (else empty) */
    bool started, done;
    int status;
    buf_t result; /* the answer's body, as JSON */
} op_t;

struct batch {
    http_ctx_t *ctx;
    op_t ops[BATCH_MAX];
    int n;
    int next; /* first operation not started */
    int in_flight;
    bool answering;
};

static bool is_write(http_method_t m)
{
    return m != HTTP_GET && m != HTTP_HEAD;
}

static void pump(batch_t *bt);

static void answer(batch_t *bt)
{
    http_ctx_t *ctx = bt->ctx;
    buf_t *o = http_body(ctx);
    buf_putc(o, '[');
    for (int i = 0; i < bt->n; i++) {
        op_t *op = &bt->ops[i];
        if (i)
            buf_putc(o, ',');
        buf_append_lit(o, "{\"id\":");
        json_value_write(o, op->id);
        buf_append_lit(o, ",\"status\":");
        buf_append_i64(o, op->status);
        buf_append_lit(o, ",\"body\":");
        if (op->result.len)
            buf_append(o, op->result.data, op->result.len);
        else
            buf_append_lit(o, "null");
        buf_putc(o, '}');
        buf_free(&op->result);
    }
    buf_putc(o, ']');
    http_respond(ctx, 200, "application/json");
}

static void op_done(void *arg, int status, const char *content_type, const char *body, size_t len)
{
    op_t *op = arg;
    batch_t *bt = op->batch;
    op->done = true;
    op->status = status;
    bool json = content_type && (strncmp(content_type, "application/json", 16) == 0 ||
                                 strncmp(content_type, "application/problem+json", 24) == 0);
    if (len && json)
        buf_append(&op->result, body, len);
    else if (len)
        json_str(&op->result, body, len); /* not JSON: carried as a string */
    bt->in_flight--;
    if (!bt->answering)
        pump(bt);
}

static void start(batch_t *bt, op_t *op)
{
    op->started = true;
    bt->in_flight++;
    if (op->path_len >= 10 && memcmp(op->path, "/api/batch", 10) == 0 &&
        (op->path_len == 10 || op->path[10] == '/' || op->path[10] == '?')) {
        buf_t *r = &op->result;
        buf_append_lit(r, "{\"type\":\"/problems/bad-request\",\"title\":\"Bad Request\",\"status\":400,"
                          "\"detail\":\"a batch cannot contain /api/batch\"}");
        op->done = true;
        op->status = 400;
        bt->in_flight--;
        return;
    }
    http_subrequest_t sr = {
        .method = op->method,
        .path = op->path,
        .path_len = op->path_len,
        .query = op->query,
        .query_len = op->query_len,
        .body = op->body,
        .body_len = op->body_len,
        .request_id = op->request_id,
        .idempotency_key = op->idem_key[0] ? op->idem_key : NULL,
        .done = op_done,
        .arg = op,
    };
    http_subrequest(bt->ctx, &sr);
}

/* Starts whatever may start now; answers once everything is done. Re-entrant: a sub-request
 * may answer before http_subrequest returns. */
static void pump(batch_t *bt)
{
    bt->answering = true;
    for (;;) {
        if (bt->next >= bt->n) {
            if (bt->in_flight == 0) {
                answer(bt);
                return;
            }
            break;
        }
        op_t *op = &bt->ops[bt->next];
        if (is_write(op->method) && bt->in_flight > 0)
            break; /* a write waits for everything before it */
        bt->next++;
        start(bt, op);
        if (is_write(op->method) && !op->done)
            break; /* and everything after it waits for the write */
    }
    bt->answering = false;
}

static http_method_t parse_method(const char *s)
{
    static const struct {
        const char *name;
        http_method_t m;
    } methods[] = {{"GET", HTTP_GET}, {"HEAD", HTTP_HEAD},   {"POST", HTTP_POST},
                   {"PUT", HTTP_PUT}, {"PATCH", HTTP_PATCH}, {"DELETE", HTTP_DELETE}};
    for (size_t i = 0; i < ARRAY_LEN(methods); i++)
        if (strcmp(s, methods[i].name) == 0)
            return methods[i].m;
    return HTTP_OTHER;
}

/* Percent-encodes a query component. */
static void put_encoded(buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '_' || ch == '.' || ch == '~') {
            buf_putc(b, (char)ch);
        } else {
            buf_putc(b, '%');
            buf_putc(b, hex[ch >> 4]);
            buf_putc(b, hex[ch & 15]);
        }
    }
}

/* "query": an object of scalars, or a raw query string. */
static const char *build_query(arena_t *a, const json_value_t *q, size_t *len)
{
    size_t n;
    if (json_type(q) == JSON_STRING) {
        const char *s = json_string(q, &n);
        if (n && s[0] == '?')
            s++, n--;
        *len = n;
        return arena_strndup(a, s, n);
    }
    if (json_type(q) != JSON_OBJECT)
        return NULL;
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < json_object_len(q); i++) {
        const json_value_t *v = json_object_value_at(q, i);
        const char *k = json_object_key_at(q, i, &n);
        if (b.len)
            buf_putc(&b, '&');
        put_encoded(&b, k, n);
        buf_putc(&b, '=');
        switch (json_type(v)) {
        case JSON_STRING:
            k = json_string(v, &n);
            put_encoded(&b, k, n);
            break;
        case JSON_NUMBER:
            k = json_number_text(v, &n);
            put_encoded(&b, k, n);
            break;
        case JSON_TRUE:
            buf_append_lit(&b, "true");
            break;
        case JSON_FALSE:
            buf_append_lit(&b, "false");
            break;
        default:
            buf_free(&b);
            return NULL;
        }
    }
    *len = b.len;
    const char *out = arena_strndup(a, b.data ? b.data : "", b.len);
    buf_free(&b);
    return out;
}

static bool id_ok(const json_value_t *id)
{
    if (!id)
        return false;
    if (json_type(id) == JSON_NUMBER)
        return true;
    size_t n;
    return json_type(id) == JSON_STRING && json_string(id, &n) && n > 0 && n <= 64;
}

static void batch(http_ctx_t *ctx, const api_auth_t *auth)
{
    const json_value_t *root = api_json_body(ctx, NULL);
    if (!root)
        return;
    api_errors_t errs = {0};
    if (json_type(root) != JSON_ARRAY || json_array_len(root) == 0 || json_array_len(root) > BATCH_MAX) {
        api_errors_add(&errs, LIT(""), "must be an array of 1 to 25 operations");
        api_respond_problem(ctx, 422, "validation-failed", "the batch is not valid", &errs);
        return;
    }
    batch_t *bt = arena_alloc(&ctx->arena, sizeof(*bt));
    memset(bt, 0, sizeof(*bt));
    bt->ctx = ctx;
    bt->n = (int)json_array_len(root);
    for (int i = 0; i < bt->n; i++) {
        const json_value_t *o = json_array_at(root, (size_t)i);
        op_t *op = &bt->ops[i];
        op->batch = bt;
        op->index = i;
        char field[32];
        snprintf(field, sizeof(field), "[%d]", i);
        char *f = arena_strndup(&ctx->arena, field, strlen(field));
        if (json_type(o) != JSON_OBJECT) {
            api_errors_add(&errs, f, strlen(f), "must be an object");
            continue;
        }
        for (size_t k = 0; k < json_object_len(o); k++) {
            size_t kl;
            const char *key = json_object_key_at(o, k, &kl);
            static const char *const known[] = {"id", "method", "path", "query", "body"};
            bool ok = false;
            for (size_t m = 0; m < ARRAY_LEN(known); m++)
                ok |= strlen(known[m]) == kl && memcmp(known[m], key, kl) == 0;
            if (!ok)
                api_errors_add(&errs, f, strlen(f), "unknown field (allowed: id, method, path, query, body)");
        }
        op->id = json_object_get(o, "id");
        if (!id_ok(op->id))
            api_errors_add(&errs, f, strlen(f), "id must be a string of 1-64 characters or a number");
        const json_value_t *m = json_object_get(o, "method"), *p = json_object_get(o, "path");
        size_t n;
        op->method = m && json_type(m) == JSON_STRING ? parse_method(json_string(m, &n)) : HTTP_OTHER;
        if (op->method == HTTP_OTHER)
            api_errors_add(&errs, f, strlen(f), "method must be GET, HEAD, POST, PUT, PATCH or DELETE");
        const char *path = p && json_type(p) == JSON_STRING ? json_string(p, &n) : NULL;
        if (!path || n < 5 || n > 2048 || memcmp(path, "/api/", 5) != 0 || memchr(path, '?', n)) {
            api_errors_add(&errs, f, strlen(f), "path must start with /api/ (put parameters in query)");
        } else {
            op->path = (char *)path;
            op->path_len = n;
        }
        const json_value_t *q = json_object_get(o, "query");
        if (q && !(op->query = (char *)build_query(&ctx->arena, q, &op->query_len)))
            api_errors_add(&errs, f, strlen(f), "query must be an object of scalars or a string");
        const json_value_t *body = json_object_get(o, "body");
        if (body) {
            if (!is_write(op->method)) {
                api_errors_add(&errs, f, strlen(f), "a GET has no body");
            } else {
                buf_t b = BUF_INIT;
                json_value_write(&b, body);
                op->body = arena_strndup(&ctx->arena, b.data, b.len);
                op->body_len = b.len;
                buf_free(&b);
            }
        }
        snprintf(op->request_id, sizeof(op->request_id), "%.50s.%d", ctx->request_id, i);
    }
    /* a batch replayed with its Idempotency-Key replays each write: every write operation gets
     * a key of its own, derived from the batch's and the operation's id */
    if (ctx->req.idempotency_key.len) {
        uint8_t d[SEC_SHA256_BYTES];
        sec_sha256(d, ctx->req.idempotency_key.p, ctx->req.idempotency_key.len);
        char hex[33];
        sec_hex(hex, d, 16);
        for (int i = 0; i < bt->n; i++) {
            op_t *op = &bt->ops[i];
            if (!is_write(op->method) || !op->id)
                continue;
            buf_t idb = BUF_INIT;
            json_value_write(&idb, op->id);
            snprintf(op->idem_key, sizeof(op->idem_key), "batch:%s/%.*s", hex, (int)MIN(idb.len, 64),
                     idb.data ? idb.data : "");
            buf_free(&idb);
        }
    }
    /* ids identify results: they must be unique */
    for (int i = 0; i < bt->n && !errs.n; i++)
        for (int j = 0; j < i; j++) {
            buf_t a = BUF_INIT, b = BUF_INIT;
            json_value_write(&a, bt->ops[i].id);
            json_value_write(&b, bt->ops[j].id);
            bool same = a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
            buf_free(&a);
            buf_free(&b);
            if (same) {
                api_errors_add(&errs, LIT("id"), "operation ids must be unique");
                i = bt->n;
                break;
            }
        }
    if (errs.n) {
        api_respond_problem(ctx, 422, "validation-failed", "the batch is not valid", &errs);
        return;
    }
    log_fields(LOG_DEBUG, "batch", "request_id", ctx->request_id, "#operations", (int64_t)bt->n, "key_prefix",
               auth->prefix, NULL);
    pump(bt);
}

void api_batch_routes(router_t *rt)
{
    api_route_cached(rt, HTTP_POST, "/api/batch", batch, 0, ROUTE_CLASS_NORMAL, "POST /api/batch", NULL);
}
