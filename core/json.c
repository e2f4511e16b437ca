#include "core/json.h"
#include "core/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- strings ---- */

enum { STR_SAFE = 0, STR_ESCAPE = 1, STR_UTF8 = 2 };

/* What each byte needs inside a JSON string: copied as is, escaped, or UTF-8 checked. */
static const uint8_t str_class[256] = {
    [0x00 ... 0x1f] = STR_ESCAPE,
    ['"'] = STR_ESCAPE,
    ['\\'] = STR_ESCAPE,
    [0x80 ... 0xff] = STR_UTF8,
};

/* The short escapes; every other control byte is written as \u00XX. */
static const char str_short_escape[128] = {
    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r', ['"'] = '"', ['\\'] = '\\',
};

static const char hex_digits[16] = "0123456789abcdef";

static void write_escape(buf_t *b, unsigned char c)
{
    char *p = buf_reserve(b, 6);
    if (str_short_escape[c]) {
        p[0] = '\\';
        p[1] = str_short_escape[c];
        b->len += 2;
        return;
    }
    memcpy(p, "\\u00", 4);
    p[4] = hex_digits[c >> 4];
    p[5] = hex_digits[c & 15];
    b->len += 6;
}

/* U+2028 and U+2029 are valid JSON but end a line in JavaScript: escape them. */
static inline bool is_js_line_break(const unsigned char *p, size_t len)
{
    return len == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9);
}

void json_str(buf_t *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    buf_putc(b, '"');
    while (p < end) {
        /* the longest run that is copied unchanged: safe ASCII and well-formed UTF-8 */
        const unsigned char *run = p;
        size_t bad = 0, len = 0;
        while (p < end) {
            uint8_t cls = str_class[*p];
            if (likely(cls == STR_SAFE)) {
                p++;
                continue;
            }
            if (cls == STR_ESCAPE)
                break;
            len = utf8_seq_check(p, (size_t)(end - p), &bad);
            if (!len || is_js_line_break(p, len))
                break;
            p += len;
        }
        buf_append(b, run, (size_t)(p - run));
        if (p == end)
            break;
        if (str_class[*p] == STR_ESCAPE) {
            write_escape(b, *p);
            p++;
        } else if (bad) {
            buf_append_lit(b, "\xef\xbf\xbd");
            p += bad;
        } else {
            buf_append(b, p[2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
            p += 3;
        }
    }
    buf_putc(b, '"');
}

void json_key_str(buf_t *b, const char *s, size_t n)
{
    json_str(b, s, n);
    buf_putc(b, ':');
}

/* ---- numbers and literals ---- */

void json_i64(buf_t *b, int64_t v)
{
    buf_append_i64(b, v);
}

void json_u64(buf_t *b, uint64_t v)
{
    buf_append_u64(b, v);
}

static const uint64_t pow10_u64[10] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
};

/* Writes q / 10^decimals with trailing fractional zeros (and a bare point) dropped. */
static void write_scaled(buf_t *b, int64_t q, int decimals)
{
    if (q < 0)
        buf_putc(b, '-');
    uint64_t u = q < 0 ? 0 - (uint64_t)q : (uint64_t)q;
    uint64_t scale = pow10_u64[decimals];
    uint64_t frac = u % scale;
    buf_append_u64(b, u / scale);
    if (!frac)
        return;
    while (frac % 10 == 0) {
        frac /= 10;
        decimals--;
    }
    char *p = buf_reserve(b, (size_t)decimals + 1);
    p[0] = '.';
    for (int i = decimals; i >= 1; i--) {
        p[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    b->len += (size_t)decimals + 1;
}

/* The shortest %g form that reads back as v. */
static void write_shortest(buf_t *b, double v)
{
    char tmp[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    buf_append(b, tmp, strlen(tmp));
}

void json_double(buf_t *b, double v, int max_decimals)
{
    if (!isfinite(v)) {
        json_null(b);
        return;
    }
    if (max_decimals < 0 || max_decimals > 9) {
        write_shortest(b, v);
        return;
    }
    /* below 2^53 the scaled value is an exact integer; past it, decimals carry no precision */
    const double exact = 9007199254740992.0;
    int d = max_decimals;
    while (d > 0 && fabs(v) * (double)pow10_u64[d] >= exact)
        d--;
    double r = round(v * (double)pow10_u64[d]);
    if (fabs(r) < exact || (d == 0 && fabs(r) < 9223372036854775808.0)) {
        int64_t q = (int64_t)r;
        if (q == 0)
            buf_putc(b, '0'); /* never "-0" */
        else
            write_scaled(b, q, d);
        return;
    }
    write_shortest(b, v);
}

void json_bool(buf_t *b, bool v)
{
    if (v)
        buf_append_lit(b, "true");
    else
        buf_append_lit(b, "false");
}

void json_null(buf_t *b)
{
    buf_append_lit(b, "null");
}

/* ---- writer ---- */

void json_writer_init(json_writer_t *w, buf_t *b)
{
    w->b = b;
    w->depth = 0;
    w->need_comma_bits = 0;
}

/* Before a value: a comma when this level already holds one; then it does. */
static inline void value_sep(json_writer_t *w)
{
    uint64_t bit = 1ull << w->depth;
    if (w->need_comma_bits & bit)
        buf_putc(w->b, ',');
    w->need_comma_bits |= bit;
}

/* Before a key: a comma when the object already holds a member; its value then adds none. */
static inline void key_sep(json_writer_t *w)
{
    uint64_t bit = 1ull << w->depth;
    if (w->need_comma_bits & bit)
        buf_putc(w->b, ',');
    w->need_comma_bits &= ~bit;
}

static void open_container(json_writer_t *w, char c)
{
    if (w->depth >= JSON_MAX_DEPTH)
        die("json writer: nesting deeper than %d", JSON_MAX_DEPTH);
    value_sep(w);
    buf_putc(w->b, c);
    w->depth++;
    w->need_comma_bits &= ~(1ull << w->depth);
}

static void close_container(json_writer_t *w, char c)
{
    if (w->depth == 0)
        die("json writer: closing '%c' with nothing open", c);
    w->depth--;
    buf_putc(w->b, c);
}

void json_obj_begin(json_writer_t *w)
{
    open_container(w, '{');
}

void json_obj_end(json_writer_t *w)
{
    close_container(w, '}');
}

void json_arr_begin(json_writer_t *w)
{
    open_container(w, '[');
}

void json_arr_end(json_writer_t *w)
{
    close_container(w, ']');
}

void json_w_key(json_writer_t *w, const char *quoted_key, size_t n)
{
    key_sep(w);
    buf_append(w->b, quoted_key, n);
}

void json_w_key_str(json_writer_t *w, const char *s, size_t n)
{
    key_sep(w);
    json_key_str(w->b, s, n);
}

void json_w_str(json_writer_t *w, const char *s, size_t n)
{
    value_sep(w);
    json_str(w->b, s, n);
}

void json_w_i64(json_writer_t *w, int64_t v)
{
    value_sep(w);
    buf_append_i64(w->b, v);
}

void json_w_u64(json_writer_t *w, uint64_t v)
{
    value_sep(w);
    buf_append_u64(w->b, v);
}

void json_w_double(json_writer_t *w, double v, int max_decimals)
{
    value_sep(w);
    json_double(w->b, v, max_decimals);
}

void json_w_bool(json_writer_t *w, bool v)
{
    value_sep(w);
    json_bool(w->b, v);
}

void json_w_null(json_writer_t *w)
{
    value_sep(w);
    json_null(w->b);
}

void json_w_raw(json_writer_t *w, const char *json, size_t n)
{
    value_sep(w);
    buf_append(w->b, json, n);
}

void json_kv_str(json_writer_t *w, const char *quoted_key, size_t kn, const char *s, size_t n)
{
    json_w_key(w, quoted_key, kn);
    json_w_str(w, s, n);
}

void json_kv_i64(json_writer_t *w, const char *quoted_key, size_t kn, int64_t v)
{
    json_w_key(w, quoted_key, kn);
    json_w_i64(w, v);
}

void json_kv_u64(json_writer_t *w, const char *quoted_key, size_t kn, uint64_t v)
{
    json_w_key(w, quoted_key, kn);
    json_w_u64(w, v);
}

void json_kv_double(json_writer_t *w, const char *quoted_key, size_t kn, double v, int max_decimals)
{
    json_w_key(w, quoted_key, kn);
    json_w_double(w, v, max_decimals);
}

void json_kv_bool(json_writer_t *w, const char *quoted_key, size_t kn, bool v)
{
    json_w_key(w, quoted_key, kn);
    json_w_bool(w, v);
}

void json_kv_null(json_writer_t *w, const char *quoted_key, size_t kn)
{
    json_w_key(w, quoted_key, kn);
    json_w_null(w);
}
