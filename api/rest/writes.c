/*
 * POST, PATCH and DELETE handlers of the writable resources (see api/writes.h for how If-Match
 * and Idempotency-Key hold without a transaction across round trips). A request goes: query
 * and headers (400, 415), body (400 malformed JSON, 422 per field), then one batch (two with
 * If-Match), then cache invalidation of every tag it touched, and only then the answer.
 */
#include "api/rest/writes.h"
#include "core/logmask.h"
#include "api/auth.h"
#include "api/route.h"
#include "api/cached.h"
#include "cache/tiered.h"
#include "api/common.h"
#include "api/rest/resources.h"
#include "api/rest/writes_internal.h"
#include "core/common.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/json_read.h"
#include "core/log.h"
#include "db/db.h"
#include "http/etag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum wop { OP_CREATE, OP_UPDATE, OP_DELETE };

/* One write request, in the request arena. */
typedef struct wreq {
    http_ctx_t *ctx;
    const api_auth_t *auth;
    const wres_t *res;
    int op;
    char id_s[24];
    const char *vals[W_MAX_FIELDS]; /* field values as SQL text; NULL: SQL NULL */
    uint32_t mask;                  /* fields given */
    const char *key;                /* Idempotency-Key, or NULL */
    char hash_hex[2 + 64 + 1];      /* "\x" + SHA-256 of method, target and body */
    bool cascade;
    const char *guard; /* md5 of the row the If-Match was checked against */
    /* the answer, sent once every invalidation has been acknowledged */
    int status;
    const char *ctype;
    const char **tags;
    int ntags, cap_tags;
} wreq_t;

/* ---- answering after invalidation ---- */

static void add_tag(wreq_t *w, const char *fmt, const char *a, const char *b)
{
    char tmp[160];
    int n = snprintf(tmp, sizeof(tmp), fmt, a, b);
    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return;
    for (int i = 0; i < w->ntags && i < 16; i++) /* the fixed tags come first; dependents are distinct */
        if (strcmp(w->tags[i], tmp) == 0)
            return;
    if (w->ntags == w->cap_tags) {
        int cap = w->cap_tags ? w->cap_tags * 2 : 16;
        const char **t = arena_alloc(&w->ctx->arena, (size_t)cap * sizeof(*t));
        if (w->ntags)
            memcpy(t, w->tags, (size_t)w->ntags * sizeof(*t));
        w->tags = t;
        w->cap_tags = cap;
    }
    w->tags[w->ntags++] = arena_strndup(&w->ctx->arena, tmp, (size_t)n);
}

static void add_row_tags(wreq_t *w, const char *singular, const char *plural, const char *id)
{
    add_tag(w, "%s:%s", singular, id);
    add_tag(w, "org:%s:%s", w->auth->org_id_s, plural);
}

static void respond_after_invalidation(void *arg)
{
    wreq_t *w = arg;
    http_respond(w->ctx, w->status, w->ctype);
}

/* Invalidates every collected tag (L1 at once, L2 and the other instances through Redis) and
 * answers when Redis has acknowledged them all. */
static void finish(wreq_t *w, int status, const char *ctype)
{
    w->status = status;
    w->ctype = ctype;
    tcache_invalidate_all(w->tags, w->ntags, respond_after_invalidation, w);
}

/* Writes {"data": row} as GET /api/<r>/{id} does and adds its strong ETag. */
static void write_representation(wreq_t *w, const PGresult *r, int first_col)
{
    json_writer_t jw;
    api_json_begin_data(w->ctx, &jw);
    api_resource_write_row(&jw, w->res->s->plural, r, 0, first_col);
    json_obj_end(&jw);
    buf_t *out = http_body(w->ctx);
    char etag[20];
    http_add_header(w->ctx, LIT("ETag"), etag, http_etag_format(http_etag_hash(out->data, out->len), etag));
}

static void validation_failed(http_ctx_t *ctx, const api_errors_t *errs)
{
    api_respond_problem(ctx, 422, "validation-failed", "one or more fields are invalid", errs);
}

static void not_found(wreq_t *w)
{
    char detail[64];
    snprintf(detail, sizeof(detail), "no such %s", w->res->s->singular);
    api_respond_problem(w->ctx, 404, "not-found", detail, NULL);
}

static void precondition_failed(http_ctx_t *ctx)
{
    api_respond_problem(ctx, 412, "precondition-failed", "the resource does not match If-Match", NULL);
}

/* A failed batch: unique and foreign-key violations name their field when the constraint says
 * which; everything else goes through the common mapping. */
static void db_failed(wreq_t *w, db_batch_t *b)
{
    http_ctx_t *ctx = w->ctx;
    if (b->status != DB_SQL_ERROR) {
        api_respond_db_error(ctx, b);
        return;
    }
    api_errors_t errs = {0};
    if (strcmp(b->sqlstate, "23505") == 0) {
        const char *f = w->res->uniq_field;
        if (f && strstr(b->error, f))
            api_errors_add(&errs, f, strlen(f), "is already used by another row of the organization");
        log_fields(LOG_WARN, "write conflict", "request_id", ctx->request_id, "error", b->error, NULL);
        db_batch_release(b);
        api_respond_problem(ctx, 409, "conflict", "the request conflicts with an existing row", &errs);
        return;
    }
    if (strcmp(b->sqlstate, "23503") == 0) {
        bool company_delete = w->op == OP_DELETE && w->res->s->cascade;
        for (size_t i = 0; i < w->res->nfields && !company_delete; i++) {
            const wfield_t *f = &w->res->fields[i];
            char needle[64];
            snprintf(needle, sizeof(needle), "_%s_fkey", f->name);
            if (f->kind == W_REF && strstr(b->error, needle))
                api_errors_add(&errs, f->name, strlen(f->name), "refers to no row of the organization");
        }
        log_fields(LOG_WARN, "write refused by a foreign key", "request_id", ctx->request_id, "error",
                   b->error, NULL);
        db_batch_release(b);
        if (company_delete) /* a deal was added while the company was being deleted */
            api_respond_problem(ctx, 409, "conflict",
                                "the company has deals; pass ?cascade=true to delete them", NULL);
        else
            api_respond_problem(ctx, 422, "validation-failed", "a referenced row does not exist", &errs);
        return;
    }
    api_respond_db_error(ctx, b);
}

/* ---- request checks ---- */

/* The id path parameter and the query (cascade for companies' DELETE): false when answered. */
static bool parse_target(wreq_t *w, bool has_id)
{
    http_ctx_t *ctx = w->ctx;
    api_errors_t errs = {0};
    static const api_param_t cascade_spec[] = {{"cascade", PARAM_BOOL, 0, NULL}};
    api_value_t v[1];
    size_t nspec = w->op == OP_DELETE && w->res->s->cascade ? 1 : 0;
    bool ok = api_query_parse(&ctx->arena, ctx->req.query, cascade_spec, nspec, v, NULL, &errs);
    w->cascade = nspec && v[0].present && v[0].b;
    if (has_id) {
        int64_t id;
        if (ctx->nparams < 1 || !api_parse_id(ctx->params[0].p, ctx->params[0].len, &id)) {
            api_errors_add(&errs, LIT("id"), "must be a positive integer");
            ok = false;
        } else {
            snprintf(w->id_s, sizeof(w->id_s), "%lld", (long long)id);
        }
    }
    if (!ok)
        api_respond_bad_params(ctx, &errs);
    return ok;
}

/* Idempotency-Key (api_idempotency_key) and the digest of the request it is bound to. */
static bool parse_idempotency_key(wreq_t *w)
{
    http_ctx_t *ctx = w->ctx;
    const char *scoped = api_idempotency_key(ctx, w->auth->user_id_s);
    if (!scoped)
        return true;
    if (!*scoped)
        return false;
    w->key = scoped;
    sec_sha256_ctx_t st;
    uint8_t d[SEC_SHA256_BYTES];
    sec_sha256_init(&st);
    sec_sha256_update(&st, ctx->req.method_str.p, ctx->req.method_str.len);
    sec_sha256_update(&st, "\n", 1);
    sec_sha256_update(&st, ctx->req.target.p, ctx->req.target.len);
    sec_sha256_update(&st, "\n", 1);
    sec_sha256_update(&st, ctx->body.p, ctx->body.len);
    sec_sha256_final(&st, d);
    memcpy(w->hash_hex, "\\x", 2);
    sec_hex(w->hash_hex + 2, d, sizeof(d));
    return true;
}

/* ---- body validation ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Characters (code points) of valid UTF-8. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static const char *check_text(const char *s, size_t n, const wfield_t *f)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0)
            return "must not contain NUL characters";
        if ((c < 0x20 || c == 0x7f) && !(f->kind == W_LONGTEXT && (c == '\n' || c == '\r' || c == '\t')))
            return "must not contain control characters";
    }
    size_t chars = utf8_chars(s, n);
    if (chars == 0 && f->kind != W_LONGTEXT)
        return "must not be empty";
    if (chars > f->max)
        return f->max == 100   ? "must be at most 100 characters"
               : f->max == 200 ? "must be at most 200 characters"
                               : "is too long";
    return NULL;
}

static const char *check_email(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (n < 3 || !at || at == s || memchr(at + 1, '@', n - (size_t)(at - s) - 1))
        return "must be an email address";
    const char *dom = at + 1;
    size_t dn = n - (size_t)(dom - s);
    const char *dot = dn ? memchr(dom, '.', dn) : NULL;
    if (!dot || dot == dom || dom[dn - 1] == '.')
        return "must be an email address";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return "must be an email address";
    return NULL;
}

/*
 * A JSON number as a money value: >= 0, at most 2 decimals, below 10^12 (numeric(14,2)).
 * Exact decimal arithmetic on the text (1e2, 12.50 and 0.125e1 all work). Returns the error or
 * NULL with the canonical text in *out.
 */
static const char *money_text(arena_t *a, const char *s, size_t n, const char **out)
{
    char digits[64];
    size_t nd = 0, i = 0;
    long point = 0; /* digits before the decimal point */
    bool neg = n && s[0] == '-', nonzero = false;
    i = neg;
    for (; i < n && is_digit(s[i]); i++) {
        if (nd == 0 && s[i] == '0')
            continue; /* leading zeros */
        if (nd >= sizeof(digits))
            return "must be below 1000000000000";
        digits[nd++] = s[i];
        point++;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++) {
            if (nd == 0 && s[i] == '0') {
                point--;
                continue;
            }
            if (nd >= sizeof(digits))
                return "must have at most 2 decimals";
            digits[nd++] = s[i];
        }
    }
    long exp = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = i < n && s[i] == '-';
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && is_digit(s[i]); i++)
            if (exp < 100000)
                exp = exp * 10 + (s[i] - '0');
        if (eneg)
            exp = -exp;
    }
    while (nd && digits[nd - 1] == '0')
        nd--; /* trailing zeros of the significand change nothing */
    for (size_t k = 0; k < nd; k++)
        nonzero = nonzero || digits[k] != '0';
    if (!nonzero) {
        *out = "0";
        return NULL;
    }
    if (neg)
        return "must be greater than or equal to 0";
    point += exp;
    if (point > 12)
        return "must be below 1000000000000";
    if ((long)nd - point > 2)
        return "must have at most 2 decimals";
    char buf[80];
    size_t o = 0;
    if (point <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (long z = 0; z < -point; z++)
            buf[o++] = '0';
        memcpy(buf + o, digits, nd);
        o += nd;
    } else {
        for (long k = 0; k < point; k++)
            buf[o++] = (size_t)k < nd ? digits[k] : '0';
        if ((long)nd > point) {
            buf[o++] = '.';
            for (size_t k = (size_t)point; k < nd; k++)
                buf[o++] = digits[k];
        }
    }
    *out = arena_strndup(a, buf, o);
    return NULL;
}

const char *writes_check_value(arena_t *a, const wfield_t *f, const json_value_t *v, const char **out)
{
    *out = NULL;
    json_type_t t = json_type(v);
    if (t == JSON_NULL)
        return f->nullable ? NULL : "must not be null";
    size_t n = 0;
    const char *s = t == JSON_STRING ? json_string(v, &n) : NULL;
    switch (f->kind) {
    case W_REF: {
        int64_t id;
        if (t != JSON_NUMBER || !json_get_i64(v, &id) || id <= 0)
            return "must be a positive integer id";
        char num[24];
        snprintf(num, sizeof(num), "%lld", (long long)id);
        *out = arena_strndup(a, num, strlen(num));
        return NULL;
    }
    case W_PERCENT: {
        int64_t p;
        if (t != JSON_NUMBER || !json_get_i64(v, &p))
            return "must be an integer";
        if (p < 0 || p > 100)
            return "must be between 0 and 100";
        char num[8];
        snprintf(num, sizeof(num), "%d", (int)p);
        *out = arena_strndup(a, num, strlen(num));
        return NULL;
    }
    case W_MONEY: {
        if (t != JSON_NUMBER)
            return "must be a number";
        size_t tn;
        const char *txt = json_number_text(v, &tn);
        return money_text(a, txt, tn, out);
    }
    default:
        break;
    }
    if (t != JSON_STRING)
        return "must be a string";
    const char *err = NULL;
    switch (f->kind) {
    case W_ENUM: {
        bool found = false;
        for (const char *const *e = f->enums; *e && !found; e++)
            found = strlen(*e) == n && memcmp(*e, s, n) == 0;
        if (!found)
            err = "is not an allowed value";
        break;
    }
    case W_EMAIL:
        err = check_text(s, n, f);
        if (!err)
            err = check_email(s, n);
        break;
    case W_DATE:
    case W_TIME: {
        api_param_t p = {f->name, f->kind == W_DATE ? PARAM_DATE : PARAM_TIME, 0, NULL};
        api_value_t pv;
        if ((f->kind == W_TIME && n == 10) || memchr(s, 0, n) || api_param_check(a, &p, s, n, &pv))
            err = f->kind == W_DATE ? "must be a date YYYY-MM-DD"
                                    : "must be an RFC 3339 timestamp (years 0001-9999 in UTC)";
        else
            s = pv.s, n = pv.n; /* the canonical UTC text is what SQL gets */
        break;
    }
    default:
        err = check_text(s, n, f);
        break;
    }
    if (!err)
        *out = arena_strndup(a, s, n);
    return err;
}

static const char *const read_only[] = {"id", "created_at", "updated_at", "closed_at", "completed_at", NULL};

/* Content type, JSON and every field; false when answered (415, 400 or 422). */
static bool parse_body(wreq_t *w)
{
    http_ctx_t *ctx = w->ctx;
    bool patch = w->op == OP_UPDATE;
    const json_value_t *root = api_json_body(ctx, patch ? "application/merge-patch+json" : NULL);
    if (!root)
        return false;
    api_errors_t errs = {0};
    if (json_type(root) != JSON_OBJECT) {
        api_errors_add(&errs, LIT("$"), "the body must be a JSON object");
        validation_failed(ctx, &errs);
        return false;
    }
    const wres_t *res = w->res;
    for (size_t i = 0, n = json_object_len(root); i < n; i++) {
        size_t kn;
        const char *k = json_object_key_at(root, i, &kn);
        size_t fi = 0;
        while (fi < res->nfields &&
               !(strlen(res->fields[fi].name) == kn && memcmp(res->fields[fi].name, k, kn) == 0))
            fi++;
        if (fi == res->nfields) {
            bool ro = false;
            for (const char *const *r = read_only; *r && !ro; r++)
                ro = strlen(*r) == kn && memcmp(*r, k, kn) == 0;
            api_errors_add(&errs, k, MIN(kn, 64), ro ? "is read-only" : "is not a field of this resource");
            continue;
        }
        const char *err =
            writes_check_value(&ctx->arena, &res->fields[fi], json_object_value_at(root, i), &w->vals[fi]);
        if (err)
            api_errors_add(&errs, res->fields[fi].name, strlen(res->fields[fi].name), err);
        w->mask |= 1u << fi;
    }
    if (w->op == OP_CREATE) {
        for (size_t fi = 0; fi < res->nfields; fi++)
            if (res->fields[fi].required && !(w->mask & (1u << fi)))
                api_errors_add(&errs, res->fields[fi].name, strlen(res->fields[fi].name), "is required");
        if (res->f_owner >= 0 && !(w->mask & (1u << res->f_owner))) {
            w->vals[res->f_owner] = w->auth->user_id_s;
            w->mask |= 1u << res->f_owner;
        }
        if (res->s->anchor && !w->vals[res->f_company] && !w->vals[res->f_contact] && !w->vals[res->f_deal]) {
            static const char msg[] = "one of company_id, contact_id and deal_id is required";
            api_errors_add(&errs, LIT("company_id"), msg);
            api_errors_add(&errs, LIT("contact_id"), msg);
            api_errors_add(&errs, LIT("deal_id"), msg);
        }
    }
    if (errs.n) {
        validation_failed(ctx, &errs);
        return false;
    }
    return true;
}

/* Adds a 422 error for every reference column (ok_*) that came back false. */
/* False (and answered 422, the batch released first: a sub-request's answer frees its arena,
 * where the batch lives) when a reference names no row of the organization. */
static bool refs_ok(wreq_t *w, db_batch_t *b, const PGresult *r)
{
    api_errors_t errs = {0};
    int c = 0;
    for (size_t i = 0; i < w->res->nfields; i++) {
        const wfield_t *f = &w->res->fields[i];
        if (f->kind != W_REF)
            continue;
        if (PQgetvalue(r, 0, c)[0] != 't')
            api_errors_add(&errs, f->name, strlen(f->name), "refers to no row of the organization");
        c++;
    }
    if (errs.n) {
        db_batch_release(b);
        validation_failed(w->ctx, &errs);
    }
    return errs.n == 0;
}

/* The tag of the row whose statistics count the written row (a contact's or deal's company),
 * from result column col: before and after the write. */
static void add_company_tag(wreq_t *w, const PGresult *r, int col)
{
    const schema_res_t *parent = w->res->stats_parent;
    if (parent && col >= 0 && !PQgetisnull(r, 0, col))
        add_tag(w, "%s:%s", parent->singular, PQgetvalue(r, 0, col));
}

/* ---- create ---- */

static void create_done(db_batch_t *b, void *arg)
{
    wreq_t *w = arg;
    http_ctx_t *ctx = w->ctx;
    if (b->status != DB_OK) {
        db_failed(w, b);
        return;
    }
    api_timing_db(ctx, b);
    const wres_t *res = w->res;
    const PGresult *r = b->results[w->key ? 1 : 0];
    int row = res->nrefs;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, row)) {
        const char *id = PQgetvalue(r, 0, row);
        char loc[96];
        int ln = snprintf(loc, sizeof(loc), "/api/%s/%s", res->s->plural, id);
        http_add_header(ctx, LIT("Location"), loc, (size_t)ln);
        write_representation(w, r, row);
        /* a new row has no cached view of its own yet: only the lists (and its company) change */
        add_tag(w, "org:%s:%s", w->auth->org_id_s, res->s->plural);
        if (res->stats_parent)
            add_company_tag(w, r, PQfnumber(r, "company_id"));
        db_batch_release(b);
        finish(w, 201, "application/json");
        return;
    }
    const PGresult *rr = w->key ? b->results[3] : NULL;
    if (rr && PQntuples(rr) == 1) {
        if (PQgetvalue(rr, 0, 0)[0] != 't') {
            db_batch_release(b);
            api_respond_problem(ctx, 422, "idempotency-key-reused",
                                "this Idempotency-Key was used with another request", NULL);
            return;
        }
        /* a replay: the first response, rendered from the row values stored with it */
        int status = atoi(PQgetvalue(rr, 0, 1));
        const char *h = PQgetvalue(rr, 0, 2);
        if (strncmp(h, "Location: ", 10) == 0)
            http_add_header(ctx, LIT("Location"), h + 10, strlen(h + 10));
        http_add_header(ctx, LIT("Idempotent-Replayed"), LIT("true"));
        write_representation(w, rr, 3);
        db_batch_release(b);
        http_respond(ctx, status, "application/json");
        return;
    }
    if (PQntuples(r) == 1 && !refs_ok(w, b, r))
        return;
    db_batch_release(b);
    api_respond_problem(ctx, 409, "idempotency-key-in-use",
                        "a request with this Idempotency-Key is in progress", NULL);
}

static void create_resource(http_ctx_t *ctx, const api_auth_t *auth, const wres_t *res)
{
    wreq_t *w = arena_alloc(&ctx->arena, sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->auth = auth;
    w->res = res;
    w->op = OP_CREATE;
    if (!parse_target(w, false) || !parse_idempotency_key(w) || !parse_body(w))
        return;
    const char *vals[2 + W_MAX_FIELDS];
    vals[0] = auth->org_id_s;
    vals[1] = w->key;
    for (size_t i = 0; i < res->nfields; i++)
        vals[2 + i] = w->vals[i];
    const char *kv[3] = {auth->org_id_s, w->key, w->hash_hex};
    db_batch_t *b = db_batch_new(&ctx->arena, DB_WRITE);
    if (w->key)
        db_batch_add(b, g_w_claim, 3, kv);
    db_batch_add(b, res->create, 2 + (int)res->nfields, vals);
    if (w->key) {
        db_batch_add(b, g_w_release, 2, kv);
        db_batch_add(b, res->replay, 3, kv);
    }
    db_batch_submit(b, create_done, w);
}

/* ---- If-Match: read, compare, then write guarded ---- */

static void submit_write(wreq_t *w);

static void preread_done(db_batch_t *b, void *arg)
{
    wreq_t *w = arg;
    if (b->status != DB_OK) {
        db_failed(w, b);
        return;
    }
    api_timing_db(w->ctx, b);
    const PGresult *r = b->results[0];
    if (PQntuples(r) != 1) {
        db_batch_release(b);
        not_found(w);
        return;
    }
    /* the ETag of exactly the body GET /api/<r>/{id} answers now */
    buf_t body = BUF_INIT;
    json_writer_t jw;
    json_writer_init(&jw, &body);
    json_obj_begin(&jw);
    json_w_key(&jw, JSON_K("data"));
    api_resource_write_row(&jw, w->res->s->plural, r, 0, 0);
    json_obj_end(&jw);
    uint64_t etag = http_etag_hash(body.data, body.len);
    buf_free(&body);
    int gcol = PQnfields(r) - 1;
    w->guard = arena_strndup(&w->ctx->arena, PQgetvalue(r, 0, gcol), (size_t)PQgetlength(r, 0, gcol));
    db_batch_release(b);
    if (!http_if_match(w->ctx->req.if_match, etag)) {
        precondition_failed(w->ctx);
        return;
    }
    submit_write(w);
}

static void update_done(db_batch_t *b, void *arg);
static void delete_done(db_batch_t *b, void *arg);

static void start_write(wreq_t *w)
{
    if (w->ctx->req.if_match.len) {
        const char *vals[2] = {w->auth->org_id_s, w->id_s};
        db_batch_t *b = db_batch_new(&w->ctx->arena, DB_WRITE); /* the primary: no replica lag */
        db_batch_add(b, w->res->preread, 2, vals);
        db_batch_submit(b, preread_done, w);
        return;
    }
    submit_write(w);
}

static void submit_write(wreq_t *w)
{
    const wres_t *res = w->res;
    db_batch_t *b = db_batch_new(&w->ctx->arena, DB_WRITE);
    if (w->op == OP_UPDATE) {
        char mask[16];
        snprintf(mask, sizeof(mask), "%u", w->mask);
        const char *vals[4 + W_MAX_FIELDS] = {w->auth->org_id_s, w->id_s, mask, w->guard};
        for (size_t i = 0; i < res->nfields; i++)
            vals[4 + i] = w->vals[i];
        db_batch_add(b, res->update, 4 + (int)res->nfields, vals);
        db_batch_submit(b, update_done, w);
        return;
    }
    const char *vals[4] = {w->auth->org_id_s, w->id_s, w->guard, w->cascade ? "true" : "false"};
    int np = res->s->cascade ? 4 : 3;
    db_batch_add(b, res->del_lock, 2, vals);
    for (size_t i = 0; i < res->s->ndeps; i++)
        db_batch_add(b, res->dep_stmts[i], np, vals);
    db_batch_add(b, res->del_final, np, vals);
    db_batch_submit(b, delete_done, w);
}

/* ---- update ---- */

static void update_done(db_batch_t *b, void *arg)
{
    wreq_t *w = arg;
    http_ctx_t *ctx = w->ctx;
    if (b->status != DB_OK) {
        db_failed(w, b);
        return;
    }
    api_timing_db(ctx, b);
    const wres_t *res = w->res;
    const PGresult *r = b->results[0];
    int row = W_UPD_ROW(res);
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, W_UPD_CUR(res))) {
        db_batch_release(b);
        not_found(w);
        return;
    }
    if (!refs_ok(w, b, r))
        return;
    if (PQgetvalue(r, 0, W_UPD_ANCHOR(res))[0] != 't') {
        db_batch_release(b);
        api_errors_t errs = {0};
        static const char msg[] = "one of company_id, contact_id and deal_id must stay set";
        api_errors_add(&errs, LIT("company_id"), msg);
        api_errors_add(&errs, LIT("contact_id"), msg);
        api_errors_add(&errs, LIT("deal_id"), msg);
        validation_failed(ctx, &errs);
        return;
    }
    if (PQgetisnull(r, 0, row)) {
        /* the row changed after the If-Match check, or was deleted meanwhile */
        db_batch_release(b);
        if (w->guard)
            precondition_failed(ctx);
        else
            not_found(w);
        return;
    }
    write_representation(w, r, row);
    add_row_tags(w, res->s->singular, res->s->plural, w->id_s);
    if (res->stats_parent) {
        add_company_tag(w, r, W_UPD_CUR(res) + 1);
        add_company_tag(w, r, PQfnumber(r, "company_id"));
    }
    db_batch_release(b);
    finish(w, 200, "application/json");
}

static void update_resource(http_ctx_t *ctx, const api_auth_t *auth, const wres_t *res)
{
    wreq_t *w = arena_alloc(&ctx->arena, sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->auth = auth;
    w->res = res;
    w->op = OP_UPDATE;
    if (!parse_target(w, true) || !parse_body(w))
        return;
    start_write(w);
}

/* ---- delete ---- */

static void delete_done(db_batch_t *b, void *arg)
{
    wreq_t *w = arg;
    http_ctx_t *ctx = w->ctx;
    if (b->status != DB_OK) {
        db_failed(w, b);
        return;
    }
    api_timing_db(ctx, b);
    const wres_t *res = w->res;
    const PGresult *r = b->results[1 + res->s->ndeps]; /* after the lock and the dependents */
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, WD_CUR)) {
        db_batch_release(b);
        not_found(w);
        return;
    }
    if (PQgetvalue(r, 0, WD_GUARD)[0] != 't') {
        db_batch_release(b);
        precondition_failed(ctx);
        return;
    }
    if (PQgetisnull(r, 0, WD_DELETED)) {
        bool has_deals = strcmp(PQgetvalue(r, 0, WD_DEALS), "0") != 0;
        db_batch_release(b);
        if (has_deals)
            api_respond_problem(ctx, 409, "company-has-deals",
                                "the company has deals; delete them first or pass ?cascade=true", NULL);
        else
            precondition_failed(ctx);
        return;
    }
    add_row_tags(w, res->s->singular, res->s->plural, w->id_s);
    if (res->stats_parent)
        add_company_tag(w, r, WD_COMPANY);
    for (size_t i = 0; i < res->s->ndeps; i++) {
        const PGresult *dr = b->results[1 + i];
        const wdep_t *d = &res->s->deps[i];
        for (int k = 0, n = PQntuples(dr); k < n; k++)
            add_row_tags(w, d->singular, d->plural, PQgetvalue(dr, k, 0));
    }
    db_batch_release(b);
    http_body(ctx)->len = 0;
    finish(w, 204, NULL);
}

static void delete_resource(http_ctx_t *ctx, const api_auth_t *auth, const wres_t *res)
{
    wreq_t *w = arena_alloc(&ctx->arena, sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->auth = auth;
    w->res = res;
    w->op = OP_DELETE;
    if (!parse_target(w, true))
        return;
    start_write(w);
}

/* ---- routes ---- */

/* The writable resource of the route being served. */
static wres_t *route_wres(const http_ctx_t *ctx)
{
    const schema_res_t *sr = schema_of_path(ctx->route->pattern, NULL);
    for (int i = 0; i < WR_COUNT; i++)
        if (g_wres[i].s == sr)
            return &g_wres[i];
    die("no writable resource for route %s", ctx->route->pattern);
}

static void post_handler(http_ctx_t *ctx, const api_auth_t *auth)
{
    create_resource(ctx, auth, route_wres(ctx));
}

static void patch_handler(http_ctx_t *ctx, const api_auth_t *auth)
{
    update_resource(ctx, auth, route_wres(ctx));
}

static void delete_handler(http_ctx_t *ctx, const api_auth_t *auth)
{
    delete_resource(ctx, auth, route_wres(ctx));
}

void api_writes_routes(router_t *rt)
{
    log_mask_set_loggable(api_field_loggable);
    writes_sql_init();
    for (int i = 0; i < WR_COUNT; i++) {
        wres_t *res = &g_wres[i];
        snprintf(res->post_name, sizeof(res->post_name), "POST /api/%s", res->s->plural);
        snprintf(res->patch_name, sizeof(res->patch_name), "PATCH /api/%s/{id}", res->s->plural);
        snprintf(res->delete_name, sizeof(res->delete_name), "DELETE /api/%s/{id}", res->s->plural);
        api_route(rt, HTTP_POST, res->post_name + 5, post_handler, 0, ROUTE_CLASS_NORMAL, res->post_name);
        api_route(rt, HTTP_PATCH, res->patch_name + 6, patch_handler, 0, ROUTE_CLASS_NORMAL, res->patch_name);
        api_route(rt, HTTP_DELETE, res->delete_name + 7, delete_handler, 0, ROUTE_CLASS_NORMAL,
                  res->delete_name);
    }
}

/* ---- housekeeping ---- */

/* Idempotency keys are honoured for 24 h; rows past that are deleted every 10 minutes by one
 * thread of each instance (a few instances doing it at once is harmless). */
#define PURGE_EVERY_MS (10 * 60 * 1000)

static timer_entry_t purge_timer;
static reactor_t *purge_reactor;
static arena_t purge_arena;
static bool purge_running;
static db_stmt_t purge_stmt;

static void purge_done(db_batch_t *b, void *arg)
{
    if (b->status != DB_OK)
        log_fields(LOG_WARN, "idempotency key purge failed", "error", b->error, NULL);
    else if (b->results[0] && atoi(PQcmdTuples(b->results[0])) > 0)
        log_fields(LOG_INFO, "idempotency keys purged", "rows", PQcmdTuples(b->results[0]), NULL);
    db_batch_release(b);
    arena_reset(&purge_arena);
    purge_running = false;
}

static void on_purge_timer(timer_entry_t *e)
{
    if (!purge_running) {
        purge_running = true;
        db_batch_t *b = db_batch_new(&purge_arena, DB_WRITE);
        db_batch_add(b, purge_stmt, 0, NULL);
        db_batch_submit(b, purge_done, NULL);
    }
    timer_add(&purge_reactor->timers, &purge_timer, clock_now_ms() + PURGE_EVERY_MS);
}

void api_writes_housekeeping_start(reactor_t *r)
{
    purge_stmt = db_stmt("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'");
    purge_reactor = r;
    arena_init(&purge_arena, NULL, 0);
    timer_init(&purge_timer, on_purge_timer);
    timer_add(&r->timers, &purge_timer, clock_now_ms() + 60 * 1000);
}

void api_writes_housekeeping_stop(void)
{
    if (!purge_reactor)
        return;
    timer_del(&purge_timer);
    arena_destroy(&purge_arena);
    purge_reactor = NULL;
}
