#include "api/common.h"
#include "core/timestamp.h"
#include "core/utf8.h"
#include "core/log.h"
#include "http/parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

/* ---- PostgreSQL text to JSON ---- */

bool api_ts_rfc3339(const char *pg, size_t n, char out[API_TS_LEN])
{
    ts_t t;
    char text[TS_TEXT_MAX];
    if (!ts_parse_pg(pg, n, &t) || ts_format(t, false, text) != API_TS_LEN)
        return false;
    memcpy(out, text, API_TS_LEN);
    return true;
}

/*
 * Formats numeric text as a JSON number with at most 2 decimals, rounding half away from zero
 * in decimal (no binary floating point on money). Returns the length, 0 if not a number.
 */
static size_t money_format(const char *s, size_t n, char *out, size_t cap)
{
    bool neg = n && s[0] == '-';
    const char *ip = s + neg;
    const char *dot = memchr(ip, '.', n - (size_t)neg);
    size_t in = dot ? (size_t)(dot - ip) : n - (size_t)neg;
    const char *fp = dot ? dot + 1 : NULL;
    size_t fn = dot ? n - (size_t)(fp - s) : 0;
    if (in == 0 || in > 40 || !all_digits(ip, in) || (dot && (fn == 0 || !all_digits(fp, fn))))
        return 0;
    /* digits: integer part plus two fraction digits, with a spare leading digit for a carry */
    char d[44];
    size_t nd = 0;
    d[nd++] = '0';
    memcpy(d + nd, ip, in);
    nd += in;
    d[nd++] = fn > 0 ? fp[0] : '0';
    d[nd++] = fn > 1 ? fp[1] : '0';
    if (fn > 2 && fp[2] >= '5') {
        size_t i = nd;
        while (i-- > 0) {
            if (d[i] == '9') {
                d[i] = '0';
            } else {
                d[i]++;
                break;
            }
        }
    }
    /* integer digits are d[0..nd-2), fraction d[nd-2..nd) */
    size_t lead = 0;
    while (lead < nd - 3 && d[lead] == '0')
        lead++;
    size_t frac = 2;
    while (frac > 0 && d[nd - 3 + frac] == '0')
        frac--;
    bool zero = true;
    for (size_t i = 0; i < nd; i++)
        zero = zero && d[i] == '0';
    size_t len = (neg && !zero) + (nd - 2 - lead) + (frac ? 1 + frac : 0);
    if (len + 1 > cap)
        return 0;
    size_t o = 0;
    if (neg && !zero)
        out[o++] = '-';
    memcpy(out + o, d + lead, nd - 2 - lead);
    o += nd - 2 - lead;
    if (frac) {
        out[o++] = '.';
        memcpy(out + o, d + nd - 2, frac);
        o += frac;
    }
    out[o] = '\0';
    return o;
}

void api_json_money(buf_t *b, const char *pg, size_t n)
{
    char out[64];
    size_t len = money_format(pg, n, out, sizeof(out));
    if (len)
        buf_append(b, out, len);
    else
        json_null(b);
}

void api_json_value(json_writer_t *w, const PGresult *r, int row, int col, uint8_t kind)
{
    if (PQgetisnull(r, row, col)) {
        json_w_null(w);
        return;
    }
    const char *v = PQgetvalue(r, row, col);
    size_t n = (size_t)PQgetlength(r, row, col);
    switch (kind) {
    case COL_INT:
        if (n && n < 21 && (is_digit(v[0]) || v[0] == '-') && all_digits(v + 1, n - 1))
            json_w_raw(w, v, n);
        else
            json_w_null(w);
        break;
    case COL_MONEY: {
        char out[64];
        size_t len = money_format(v, n, out, sizeof(out));
        if (len)
            json_w_raw(w, out, len);
        else
            json_w_null(w);
        break;
    }
    case COL_TIMESTAMP: {
        char ts[API_TS_LEN];
        /* a value no RFC 3339 text can show (infinity, BC, year 10000) is null, never
         * PostgreSQL's own spelling; the API accepts none of them */
        if (api_ts_rfc3339(v, n, ts))
            json_w_str(w, ts, sizeof(ts));
        else
            json_w_null(w);
        break;
    }
    case COL_BOOL:
        json_w_bool(w, n && v[0] == 't');
        break;
    case COL_TEXT:
    case COL_DATE:
    default:
        json_w_str(w, v, n);
        break;
    }
}

void api_json_cols(json_writer_t *w, const PGresult *r, int row, int first_col, const api_col_t *cols,
                   size_t ncols)
{
    for (size_t i = 0; i < ncols; i++) {
        if (cols[i].kind == COL_SKIP)
            continue;
        json_w_key(w, cols[i].key, cols[i].key_len);
        api_json_value(w, r, row, first_col + (int)i, cols[i].kind);
    }
}

/* ---- query parameters ---- */

void api_errors_add(api_errors_t *errs, const char *field, size_t field_len, const char *message)
{
    if (errs->n >= API_MAX_ERRORS)
        return;
    errs->e[errs->n].field = field;
    errs->e[errs->n].field_len = field_len;
    errs->e[errs->n].message = message;
    errs->n++;
}

bool api_parse_id(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 19 || !all_digits(s, n))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    if (v == 0 || v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool valid_date(const char *s, size_t n)
{
    ts_t t;
    return ts_parse_date(s, n, &t);
}

/* Normalizes a decimal into out: no leading zeros, no trailing fraction zeros, no "-0". */
static const char *decimal_normalize(arena_t *arena, const char *s, size_t n, api_value_t *v)
{
    bool neg = n && s[0] == '-';
    const char *ip = s + neg;
    size_t rest = n - (size_t)neg;
    const char *dot = memchr(ip, '.', rest);
    size_t in = dot ? (size_t)(dot - ip) : rest;
    size_t fn = dot ? rest - in - 1 : 0;
    if (in == 0 || in > 15 || !all_digits(ip, in) || (dot && (fn == 0 || fn > 6 || !all_digits(dot + 1, fn))))
        return "must be a decimal number";
    while (in > 1 && ip[0] == '0') {
        ip++;
        in--;
    }
    while (fn > 0 && dot[fn] == '0')
        fn--;
    bool zero = in == 1 && ip[0] == '0' && fn == 0;
    char *out = arena_alloc(arena, n + 2);
    size_t o = 0;
    if (neg && !zero)
        out[o++] = '-';
    memcpy(out + o, ip, in);
    o += in;
    if (fn) {
        out[o++] = '.';
        memcpy(out + o, dot + 1, fn);
        o += fn;
    }
    out[o] = '\0';
    v->s = out;
    v->n = o;
    return NULL;
}

static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

const char *api_param_check(arena_t *arena, const api_param_t *p, const char *s, size_t n, api_value_t *v)
{
    memset(v, 0, sizeof(*v));
    switch (p->kind) {
    case PARAM_ID:
        if (!api_parse_id(s, n, &v->i))
            return "must be a positive integer";
        break;
    case PARAM_LIMIT:
        if (n == 0 || n > 3 || !all_digits(s, n) || (v->i = (int64_t)strtol(s, NULL, 10)) < 1 || v->i > 200)
            return "must be 1..200";
        break;
    case PARAM_DATE:
        if (!valid_date(s, n))
            return "must be a date YYYY-MM-DD";
        break;
    case PARAM_TIME:
        if (valid_date(s, n)) {
            char *t = arena_alloc(arena, 21);
            memcpy(t, s, 10);
            memcpy(t + 10, "T00:00:00Z", 11);
            v->s = t;
            v->n = 20;
        } else {
            /* the instant in UTC, as PostgreSQL will store it: offsets never reach SQL */
            ts_t t;
            if (!ts_parse_rfc3339(s, n, &t))
                return "must be a date YYYY-MM-DD or an RFC 3339 timestamp (years 0001-9999 in UTC)";
            char *text = arena_alloc(arena, TS_TEXT_MAX);
            v->n = ts_format(t, true, text);
            v->s = text;
        }
        break;
    case PARAM_DECIMAL: {
        const char *err = decimal_normalize(arena, s, n, v);
        if (err)
            return err;
        break;
    }
    case PARAM_ENUM: {
        bool found = false;
        for (const char *const *e = p->enums; e && *e && !found; e++)
            found = strlen(*e) == n && memcmp(*e, s, n) == 0;
        if (!found)
            return "is not an allowed value";
        break;
    }
    case PARAM_BOOL:
        if (n == 4 && memcmp(s, "true", 4) == 0)
            v->b = true;
        else if (!(n == 5 && memcmp(s, "false", 5) == 0))
            return "must be true or false";
        break;
    case PARAM_TEXT:
        if (n == 0)
            return "must not be empty";
        if (n > (p->max_len ? p->max_len : 200))
            return "is too long";
        if (has_control(s, n))
            return "must not contain control characters";
        if (!utf8_valid(s, n))
            return "must be valid UTF-8";
        break;
    case PARAM_CURSOR:
        if (n == 0 || n > 4096)
            return "is not a valid cursor";
        break;
    case PARAM_SORT:
        if (n == 0 || n > 64)
            return "is not an allowed sort";
        break;
    default:
        return "is not supported";
    }
    v->present = true;
    if (!v->s) {
        if (p->kind == PARAM_ID || p->kind == PARAM_LIMIT) {
            char num[24];
            int len = snprintf(num, sizeof(num), "%lld", (long long)v->i);
            v->s = arena_strndup(arena, num, (size_t)len);
            v->n = (size_t)len;
        } else {
            v->s = arena_strndup(arena, s, n);
            v->n = n;
        }
    }
    return NULL;
}

/* Percent-decodes into the arena (NUL-terminated); NULL for a bad encoding. */
static char *decode(arena_t *arena, http_str_t raw, size_t *n)
{
    char *d = arena_alloc(arena, raw.len + 1);
    long len = http_url_decode(d, raw.p, raw.len, 1);
    if (len < 0)
        return NULL;
    d[len] = '\0';
    *n = (size_t)len;
    return d;
}

bool api_query_parse(arena_t *arena, http_str_t query, const api_param_t *spec, size_t nspec,
                     api_value_t *values, bool *refresh, api_errors_t *errs)
{
    http_query_iter_t it;
    http_str_t key, val;
    bool seen_refresh = false;
    uint64_t seen = 0; /* spec entries given, valid or not */
    int before = errs->n;
    memset(values, 0, nspec * sizeof(*values));
    if (refresh)
        *refresh = false;
    http_query_init(&it, query);
    while (http_query_next(&it, &key, &val)) {
        size_t kn, vn;
        char *k = decode(arena, key, &kn);
        if (!k) {
            api_errors_add(errs, "query", 5, "bad percent-encoding");
            continue;
        }
        char *v = decode(arena, val, &vn);
        if (!v) {
            api_errors_add(errs, k, kn, "bad percent-encoding");
            continue;
        }
        if (kn == 7 && memcmp(k, "refresh", 7) == 0) {
            static const api_param_t refresh_param = {"refresh", PARAM_BOOL, 0, NULL};
            api_value_t rv;
            const char *err =
                seen_refresh ? "is given more than once" : api_param_check(arena, &refresh_param, v, vn, &rv);
            if (err)
                api_errors_add(errs, k, kn, err);
            else if (refresh)
                *refresh = rv.b;
            seen_refresh = true;
            continue;
        }
        size_t i = 0;
        while (i < nspec && !(strlen(spec[i].name) == kn && memcmp(spec[i].name, k, kn) == 0))
            i++;
        if (i == nspec) {
            api_errors_add(errs, k, kn, "unknown parameter");
            continue;
        }
        if (i < 64 && (seen & (1ull << i))) {
            api_errors_add(errs, k, kn, "is given more than once");
            continue;
        }
        if (i < 64)
            seen |= 1ull << i;
        const char *err = api_param_check(arena, &spec[i], v, vn, &values[i]);
        if (err)
            api_errors_add(errs, k, kn, err);
    }
    return errs->n == before;
}

/* ---- responses ---- */

void api_respond_problem(http_ctx_t *ctx, int status, const char *code, const char *detail,
                         const api_errors_t *errs)
{
    buf_t *b = http_body(ctx);
    b->len = 0;
    json_writer_t w;
    json_writer_init(&w, b);
    json_obj_begin(&w);
    char type[96];
    int tn = snprintf(type, sizeof(type), "/problems/%s", code);
    json_kv_str(&w, JSON_K("type"), type, (size_t)tn);
    const char *title = http_status_text(status);
    json_kv_str(&w, JSON_K("title"), title, strlen(title));
    json_kv_i64(&w, JSON_K("status"), status);
    json_kv_str(&w, JSON_K("detail"), detail, strlen(detail));
    json_kv_str(&w, JSON_K("request_id"), ctx->request_id, ctx->request_id_len);
    if (errs && errs->n) {
        json_w_key(&w, JSON_K("errors"));
        json_arr_begin(&w);
        for (int i = 0; i < errs->n; i++) {
            json_obj_begin(&w);
            json_kv_str(&w, JSON_K("field"), errs->e[i].field, errs->e[i].field_len);
            json_kv_str(&w, JSON_K("message"), errs->e[i].message, strlen(errs->e[i].message));
            json_obj_end(&w);
        }
        json_arr_end(&w);
    }
    json_obj_end(&w);
    http_respond(ctx, status, "application/problem+json");
}

void api_respond_bad_params(http_ctx_t *ctx, const api_errors_t *errs)
{
    api_respond_problem(ctx, 400, "invalid-parameter", "one or more query parameters are invalid", errs);
}

/* "companies_domain_key" -> "domain", "deals_stage_id_fkey" -> "stage_id": PostgreSQL's
 * default constraint names are table_columns_suffix. */
static void constraint_field(const char *con, char *out, size_t cap)
{
    const char *u = strchr(con, '_');
    const char *start = u ? u + 1 : con;
    size_t n = strlen(start);
    static const char *const suffixes[] = {"_key", "_fkey", "_check", "_excl", "_not_null"};
    for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(start + n - k, suffixes[i]) == 0) {
            n -= k;
            break;
        }
    }
    snprintf(out, cap, "%.*s", (int)n, start);
}

int api_db_error_status(int db_status, const char *sqlstate, const char **code)
{
    switch (db_status) {
    case DB_UNAVAILABLE:
        *code = "service-unavailable";
        return 503;
    case DB_TIMEOUT:
        *code = "timeout";
        return 504;
    default:
        break;
    }
    if (strcmp(sqlstate, "23505") == 0) {
        *code = "conflict";
        return 409;
    }
    /* class 23: the data breaks a constraint (not null, foreign key, check, exclusion) */
    if (strncmp(sqlstate, "23", 2) == 0) {
        *code = "validation-failed";
        return 422;
    }
    /* class 22: a value PostgreSQL cannot take (encoding, range, format, ...): the request's
     * fault, never ours; our own faults (class 42, XX, ...) stay 500 */
    if (strncmp(sqlstate, "22", 2) == 0) {
        *code = "bad-request";
        return 400;
    }
    *code = "internal";
    return 500;
}

static const char *db_status_name(int status)
{
    switch (status) {
    case DB_UNAVAILABLE:
        return "unavailable";
    case DB_TIMEOUT:
        return "timeout";
    case DB_SQL_ERROR:
        return "sql-error";
    default:
        return "ok";
    }
}

void api_respond_db_error(http_ctx_t *ctx, db_batch_t *b)
{
    const char *code;
    int status = api_db_error_status(b->status, b->sqlstate, &code);
    char rid[sizeof(ctx->request_id)];
    memcpy(rid, ctx->request_id, ctx->request_id_len);
    rid[ctx->request_id_len] = '\0';
    log_fields(status >= 500 ? LOG_ERROR : LOG_WARN, "database request failed", "request_id", rid, "route",
               ctx->route && ctx->route->name ? ctx->route->name : "", "db_status", db_status_name(b->status),
               "sqlstate", b->sqlstate, "error", b->error, "#failed_index", (int64_t)b->failed_index,
               "#status", (int64_t)status, NULL);
    /* the field a data error names: its column, else the constraint's subject
     * ("companies_domain_key" -> "domain") */
    api_errors_t errs = {0};
    char field[64] = "";
    if (status == 400 || status == 409 || status == 422) {
        if (b->column[0])
            snprintf(field, sizeof(field), "%s", b->column);
        else if (b->constraint[0])
            constraint_field(b->constraint, field, sizeof(field));
    }
    db_batch_release(b);
    /* a write's body is what a data error came from: 422 with the field, as validation says */
    bool write = ctx->req.method == HTTP_POST || ctx->req.method == HTTP_PATCH || ctx->req.method == HTTP_PUT;
    if (status == 400 && write) {
        status = 422;
        code = "validation-failed";
    }
    if (field[0])
        api_errors_add(&errs, arena_strndup(&ctx->arena, field, strlen(field)), strlen(field),
                       status == 409 ? "is already taken" : "is not a value the database accepts");
    const char *detail;
    switch (status) {
    case 503:
        http_add_header(ctx, LIT("Retry-After"), LIT("2"));
        detail = "the database is unavailable; retry shortly";
        break;
    case 504:
        detail = "the database did not answer in time";
        break;
    case 409:
        detail = "the request conflicts with an existing row";
        break;
    case 422:
        detail = "the request refers to rows that do not exist or breaks a constraint";
        break;
    case 400:
        detail = "a value in the request is out of range or malformed";
        break;
    default:
        detail = "internal error";
        break;
    }
    api_respond_problem(ctx, status, code, detail, errs.n ? &errs : NULL);
}

void api_timing_db(http_ctx_t *ctx, const db_batch_t *b)
{
    if (ctx->timing.len)
        buf_append_lit(&ctx->timing, ", ");
    buf_printf(&ctx->timing, "db;dur=%.2f;desc=\"%d %s\"", b->dur_ms, b->nqueries,
               b->nqueries == 1 ? "query" : "queries");
}

bool api_media_type_is(http_str_t ct, const char *lower)
{
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';')
        n++;
    while (n && (ct.p[n - 1] == ' ' || ct.p[n - 1] == '\t'))
        n--;
    http_str_t t = {ct.p, n};
    return http_str_ieq(t, lower, strlen(lower));
}

/* Appends to path (cap bytes, NUL-terminated) the JSON path of the first string (value or key)
 * of v holding a DEL byte, the stand-in sanitize_utf8 put where input was not UTF-8. */
static bool find_marked(const json_value_t *v, char *path, size_t len, size_t cap)
{
    size_t n;
    switch (json_type(v)) {
    case JSON_STRING: {
        const char *t = json_string(v, &n);
        return memchr(t, 0x7f, n) != NULL;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_len(v); i++) {
            int k = snprintf(path + len, cap - len, "[%zu]", i);
            size_t l2 = MIN(len + (size_t)MAX(k, 0), cap - 1);
            if (find_marked(json_array_at(v, i), path, l2, cap))
                return true;
            path[len] = '\0';
        }
        return false;
    case JSON_OBJECT:
        for (size_t i = 0; i < json_object_len(v); i++) {
            const char *key = json_object_key_at(v, i, &n);
            int k = snprintf(path + len, cap - len, "%s%.*s", len ? "." : "", (int)MIN(n, 64), key);
            size_t l2 = MIN(len + (size_t)MAX(k, 0), cap - 1);
            if (memchr(key, 0x7f, n) || find_marked(json_object_value_at(v, i), path, l2, cap))
                return true;
            path[len] = '\0';
        }
        return false;
    default:
        return false;
    }
}

/* A copy of the body with every byte that is not part of well-formed UTF-8 replaced by DEL
 * (same length, so the document keeps its shape). */
static char *sanitize_utf8(arena_t *a, const char *s, size_t n)
{
    char *c = arena_alloc(a, n + 1);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len(p + i, n - i);
        if (k == 0) {
            c[i++] = 0x7f;
            continue;
        }
        memcpy(c + i, s + i, k);
        i += k;
    }
    c[n] = '\0';
    return c;
}

/* A body that fails only for text that is not UTF-8 is a 422 naming the field (as every other
 * bad value is), not a malformed document. Returns whether it answered so. */
static bool respond_bad_utf8(http_ctx_t *ctx)
{
    json_error_t jerr;
    char *copy = sanitize_utf8(&ctx->arena, ctx->body.p, ctx->body.len);
    const json_value_t *root = json_parse(&ctx->arena, copy, ctx->body.len, &jerr);
    char path[160] = "";
    if (!root || !find_marked(root, path, 0, sizeof(path)))
        return false;
    api_errors_t errs = {0};
    api_errors_add(&errs, path[0] ? arena_strndup(&ctx->arena, path, strlen(path)) : "body",
                   path[0] ? strlen(path) : 4, "must be valid UTF-8");
    api_respond_problem(ctx, 422, "validation-failed", "the body is not valid", &errs);
    return true;
}

const json_value_t *api_json_body(http_ctx_t *ctx, const char *also_type)
{
    http_str_t ct = ctx->req.content_type;
    if (!api_media_type_is(ct, "application/json") && !(also_type && api_media_type_is(ct, also_type))) {
        if (also_type) {
            char accept[128];
            int n = snprintf(accept, sizeof(accept), "application/json, %s", also_type);
            http_add_header(ctx, LIT("Accept-Patch"), accept, (size_t)n);
        }
        api_respond_problem(ctx, 415, "unsupported-media-type", "send the body as application/json", NULL);
        return NULL;
    }
    json_error_t jerr;
    const json_value_t *root = json_parse(&ctx->arena, ctx->body.p ? ctx->body.p : "", ctx->body.len, &jerr);
    if (!root && ctx->body.len && !utf8_valid(ctx->body.p, ctx->body.len) && respond_bad_utf8(ctx))
        return NULL;
    if (!root) {
        char detail[160];
        snprintf(detail, sizeof(detail), "malformed JSON at line %zu, column %zu: %s", jerr.line, jerr.column,
                 jerr.message);
        api_respond_problem(ctx, 400, "malformed-json", detail, NULL);
    }
    return root;
}

void api_json_begin_data(http_ctx_t *ctx, json_writer_t *w)
{
    buf_t *out = http_body(ctx);
    out->len = 0;
    json_writer_init(w, out);
    json_obj_begin(w);
    json_w_key(w, JSON_K("data"));
}

const char *api_idempotency_key(http_ctx_t *ctx, const char *user_id_s)
{
    http_str_t k = ctx->req.idempotency_key;
    if (k.len == 0)
        return NULL;
    bool ok = k.len <= 255;
    for (size_t i = 0; ok && i < k.len; i++)
        ok = k.p[i] > 0x20 && k.p[i] < 0x7f;
    if (!ok) {
        api_respond_problem(ctx, 400, "invalid-idempotency-key",
                            "Idempotency-Key must be 1 to 255 visible ASCII characters", NULL);
        return "";
    }
    size_t ul = strlen(user_id_s);
    char *scoped = arena_alloc(&ctx->arena, ul + 1 + k.len + 1);
    memcpy(scoped, user_id_s, ul);
    scoped[ul] = ':';
    memcpy(scoped + ul + 1, k.p, k.len);
    scoped[ul + 1 + k.len] = '\0';
    return scoped;
}
