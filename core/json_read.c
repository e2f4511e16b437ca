/*
 * Strict JSON reader: a recursive descent over the bytes (depth bounded by
 * JSON_READ_MAX_DEPTH), with the members of every open container collected on one scratch
 * stack and copied into the arena as a contiguous array when the container closes, so each
 * value is copied once and the tree is a few flat arrays.
 */
#include "core/json_read.h"
#include "core/utf8.h"
#include "core/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Objects with more members than this get a sorted index (duplicate check, binary search). */
#define SMALL_OBJECT 8

struct json_value {
    json_type_t type;
    uint32_t len; /* bytes of string or number text; elements or members of a container */
    union {
        const char *text;            /* JSON_STRING (decoded) and JSON_NUMBER (as written) */
        json_value_t *items;         /* JSON_ARRAY */
        struct json_member *members; /* JSON_OBJECT; a larger one is followed by its index */
    } u;
};

typedef struct json_member {
    const char *key;
    uint32_t klen;
    json_value_t value;
} json_member_t;

/* One element or member of a container still open. */
typedef struct slot {
    json_value_t value;
    const char *key; /* NULL in arrays */
    uint32_t klen;
    uint32_t key_off; /* where the key starts in the input, for the duplicate-key error */
} slot_t;

typedef struct parser {
    arena_t *a;
    const unsigned char *start, *p, *end;
    slot_t *slots;
    size_t nslots, cap;
    bool slots_heap; /* slots was malloc'ed (it starts on json_parse's stack) */
    const unsigned char *err_at;
    const char *err_msg;
} parser_t;

static bool parse_value(parser_t *ps, int depth, json_value_t *out);

static bool fail(parser_t *ps, const unsigned char *at, const char *msg)
{
    ps->err_at = at;
    ps->err_msg = msg;
    return false;
}

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static void push_slot(parser_t *ps, const slot_t *s)
{
    if (unlikely(ps->nslots == ps->cap)) {
        size_t cap = ps->cap * 2;
        if (ps->slots_heap) {
            ps->slots = xrealloc(ps->slots, cap * sizeof(slot_t));
        } else {
            slot_t *heap = xmalloc(cap * sizeof(slot_t));
            memcpy(heap, ps->slots, ps->nslots * sizeof(slot_t));
            ps->slots = heap;
            ps->slots_heap = true;
        }
        ps->cap = cap;
    }
    ps->slots[ps->nslots++] = *s;
}

/* ---- strings ---- */

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The code unit of \uXXXX at p (p[0] is the backslash), or -1 when malformed or past end. */
static long read_u_escape(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
        return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int h = hex_value(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

static char *put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xc0 | cp >> 6);
        *d++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xe0 | cp >> 12);
        *d++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *d++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *d++ = (char)(0xf0 | cp >> 18);
        *d++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *d++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *d++ = (char)(0x80 | (cp & 0x3f));
    }
    return d;
}

/* Decodes the \ escape at p (before q, the closing quote) into *d; returns the bytes read, 0 on error. */
static size_t decode_escape(parser_t *ps, const unsigned char *p, const unsigned char *q, char **d)
{
    static const char simple[][2] = {{'"', '"'},  {'\\', '\\'}, {'/', '/'},  {'b', '\b'},
                                     {'f', '\f'}, {'n', '\n'},  {'r', '\r'}, {'t', '\t'}};
    for (size_t i = 0; i < ARRAY_LEN(simple); i++) {
        if (p[1] == (unsigned char)simple[i][0]) {
            *(*d)++ = simple[i][1];
            return 2;
        }
    }
    if (p[1] != 'u') {
        fail(ps, p, "invalid escape in string");
        return 0;
    }
    long cu = read_u_escape(p, q);
    if (cu < 0) {
        fail(ps, p, "invalid \\u escape");
        return 0;
    }
    if (cu >= 0xdc00 && cu <= 0xdfff) {
        fail(ps, p, "unpaired UTF-16 surrogate");
        return 0;
    }
    if (cu < 0xd800 || cu > 0xdbff) {
        *d = put_utf8(*d, (uint32_t)cu);
        return 6;
    }
    long lo = read_u_escape(p + 6, q);
    if (lo < 0xdc00 || lo > 0xdfff) {
        fail(ps, p, "unpaired UTF-16 surrogate");
        return 0;
    }
    *d = put_utf8(*d, 0x10000 + (((uint32_t)cu - 0xd800) << 10 | ((uint32_t)lo - 0xdc00)));
    return 12;
}

/*
 * Parses the string at ps->p (its opening quote) into a decoded, NUL-terminated arena copy.
 * Two passes: find the closing quote, then validate and decode into a buffer of the raw size
 * (decoding never grows a string).
 */
static bool parse_string(parser_t *ps, const char **out, uint32_t *out_len)
{
    const unsigned char *open = ps->p, *q = open + 1;
    while (q < ps->end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    if (q >= ps->end)
        return fail(ps, open, "unterminated string");

    char *dst = arena_alloc(ps->a, (size_t)(q - open));
    char *d = dst;
    const unsigned char *p = open + 1;
    while (p < q) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            *d++ = (char)c;
            p++;
        } else if (c == '\\') {
            size_t n = decode_escape(ps, p, q, &d);
            if (!n)
                return false;
            p += n;
        } else if (c < 0x20) {
            return fail(ps, p, "control character in string");
        } else {
            size_t n = utf8_seq_len(p, (size_t)(q - p));
            if (!n)
                return fail(ps, p, "invalid UTF-8");
            memcpy(d, p, n);
            d += n;
            p += n;
        }
    }
    *d = '\0';
    *out = dst;
    *out_len = (uint32_t)(d - dst);
    ps->p = q + 1;
    return true;
}

/* ---- numbers and literals ---- */

static bool is_digit(const parser_t *ps, const unsigned char *p)
{
    return p < ps->end && *p >= '0' && *p <= '9';
}

/* RFC 8259: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?; the text is kept as written. */
static bool parse_number(parser_t *ps, json_value_t *out)
{
    const unsigned char *start = ps->p, *p = start;
    if (*p == '-')
        p++;
    if (!is_digit(ps, p))
        return fail(ps, p, "invalid number");
    if (*p == '0') {
        p++;
        if (is_digit(ps, p))
            return fail(ps, p, "leading zero in number");
    } else {
        while (is_digit(ps, p))
            p++;
    }
    if (p < ps->end && *p == '.') {
        p++;
        if (!is_digit(ps, p))
            return fail(ps, p, "expected digit after '.'");
        while (is_digit(ps, p))
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (!is_digit(ps, p))
            return fail(ps, p, "expected digit in exponent");
        while (is_digit(ps, p))
            p++;
    }
    out->type = JSON_NUMBER;
    out->len = (uint32_t)(p - start);
    out->u.text = arena_strndup(ps->a, (const char *)start, out->len);
    ps->p = p;
    return true;
}

static bool parse_literal(parser_t *ps, const char *word, size_t n, json_type_t type, json_value_t *out)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, "invalid literal");
    ps->p += n;
    out->type = type;
    out->len = 0;
    out->u.text = NULL;
    return true;
}

/* ---- containers ---- */

static int key_cmp(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
    int c = memcmp(a, b, MIN(alen, blen));
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Stable merge sort of member numbers idx[0..n) by key, using tmp[0..n). */
static void sort_index(const json_member_t *m, uint32_t *idx, uint32_t *tmp, uint32_t n)
{
    if (n < 2)
        return;
    uint32_t h = n / 2;
    sort_index(m, idx, tmp, h);
    sort_index(m, idx + h, tmp, n - h);
    uint32_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        const json_member_t *x = &m[idx[i]], *y = &m[idx[j]];
        tmp[k++] = key_cmp(y->key, y->klen, x->key, x->klen) < 0 ? idx[j++] : idx[i++];
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof(uint32_t));
}

/*
 * The first member (in document order) whose key repeats an earlier one, or n. Small objects
 * compare pairwise; larger ones sort an index, stored after the members for json_object_get.
 */
static uint32_t find_duplicate(parser_t *ps, json_member_t *m, uint32_t n)
{
    if (n <= SMALL_OBJECT) {
        for (uint32_t j = 1; j < n; j++)
            for (uint32_t i = 0; i < j; i++)
                if (!key_cmp(m[i].key, m[i].klen, m[j].key, m[j].klen))
                    return j;
        return n;
    }
    uint32_t *idx = (uint32_t *)(m + n);
    uint32_t *tmp = arena_alloc(ps->a, n * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    sort_index(m, idx, tmp, n);
    uint32_t first = n;
    for (uint32_t i = 1; i < n; i++) {
        const json_member_t *x = &m[idx[i - 1]], *y = &m[idx[i]];
        /* the sort is stable, so idx[i] is the later of the two */
        if (!key_cmp(x->key, x->klen, y->key, y->klen) && idx[i] < first)
            first = idx[i];
    }
    return first;
}

/* Moves the slots of the container opened at base into the arena. */
static bool close_container(parser_t *ps, size_t base, json_value_t *out)
{
    uint32_t n = (uint32_t)(ps->nslots - base);
    const slot_t *s = ps->slots + base;
    out->len = n;
    if (out->type == JSON_ARRAY) {
        out->u.items = n ? arena_alloc(ps->a, n * sizeof(json_value_t)) : NULL;
        for (uint32_t i = 0; i < n; i++)
            out->u.items[i] = s[i].value;
    } else {
        size_t size = n * sizeof(json_member_t) + (n > SMALL_OBJECT ? n * sizeof(uint32_t) : 0);
        json_member_t *m = n ? arena_alloc(ps->a, size) : NULL;
        for (uint32_t i = 0; i < n; i++)
            m[i] = (json_member_t){s[i].key, s[i].klen, s[i].value};
        out->u.members = m;
        uint32_t dup = find_duplicate(ps, m, n);
        if (dup < n)
            return fail(ps, ps->start + s[dup].key_off, "duplicate key");
    }
    ps->nslots = base;
    return true;
}

/* After an element or member: true at ',' (consumed), false at the closer (consumed) or an error. */
static bool next_or_close(parser_t *ps, unsigned char closer, bool *more)
{
    skip_ws(ps);
    if (ps->p == ps->end)
        return fail(ps, ps->p, "unexpected end of input");
    if (*ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == closer)
            return fail(ps, ps->p, "trailing comma");
        *more = true;
    } else if (*ps->p == closer) {
        ps->p++;
        *more = false;
    } else {
        return fail(ps, ps->p, closer == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
    }
    return true;
}

static bool parse_array(parser_t *ps, int depth, json_value_t *out)
{
    size_t base = ps->nslots;
    out->type = JSON_ARRAY;
    ps->p++;
    skip_ws(ps);
    bool more = ps->p == ps->end || *ps->p != ']';
    if (!more)
        ps->p++;
    while (more) {
        slot_t s = {.key = NULL};
        if (!parse_value(ps, depth, &s.value))
            return false;
        push_slot(ps, &s);
        if (!next_or_close(ps, ']', &more))
            return false;
    }
    return close_container(ps, base, out);
}

static bool parse_object(parser_t *ps, int depth, json_value_t *out)
{
    size_t base = ps->nslots;
    out->type = JSON_OBJECT;
    ps->p++;
    skip_ws(ps);
    bool more = ps->p == ps->end || *ps->p != '}';
    if (!more)
        ps->p++;
    while (more) {
        slot_t s;
        if (ps->p == ps->end)
            return fail(ps, ps->p, "unexpected end of input");
        if (*ps->p != '"')
            return fail(ps, ps->p, "expected a string key");
        s.key_off = (uint32_t)(ps->p - ps->start);
        if (!parse_string(ps, &s.key, &s.klen))
            return false;
        skip_ws(ps);
        if (ps->p == ps->end || *ps->p != ':')
            return fail(ps, ps->p, "expected ':'");
        ps->p++;
        if (!parse_value(ps, depth, &s.value))
            return false;
        push_slot(ps, &s);
        if (!next_or_close(ps, '}', &more))
            return false;
    }
    return close_container(ps, base, out);
}

/* Parses one value after optional whitespace; depth counts the containers around it. */
static bool parse_value(parser_t *ps, int depth, json_value_t *out)
{
    skip_ws(ps);
    if (ps->p == ps->end)
        return fail(ps, ps->p, "unexpected end of input");
    switch (*ps->p) {
    case '[':
    case '{':
        if (depth >= JSON_READ_MAX_DEPTH)
            return fail(ps, ps->p, "nesting too deep");
        return *ps->p == '[' ? parse_array(ps, depth + 1, out) : parse_object(ps, depth + 1, out);
    case '"':
        out->type = JSON_STRING;
        return parse_string(ps, &out->u.text, &out->len);
    case 't':
        return parse_literal(ps, LIT("true"), JSON_TRUE, out);
    case 'f':
        return parse_literal(ps, LIT("false"), JSON_FALSE, out);
    case 'n':
        return parse_literal(ps, LIT("null"), JSON_NULL, out);
    case '\'':
        return fail(ps, ps->p, "strings need double quotes");
    case '/':
        return fail(ps, ps->p, "comments are not allowed");
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps, out);
        return fail(ps, ps->p, "unexpected character");
    }
}

static void set_error(json_error_t *err, const char *text, size_t off, const char *msg)
{
    if (!err)
        return;
    err->offset = off;
    err->line = 1;
    err->column = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            err->line++;
            err->column = 1;
        } else {
            err->column++;
        }
    }
    err->message = msg;
}

json_value_t *json_parse(arena_t *a, const char *text, size_t len, json_error_t *err)
{
    if (!text)
        text = ""; /* (NULL, 0) is the empty input, refused below */
    slot_t stack_slots[32];
    parser_t ps = {
        .a = a,
        .start = (const unsigned char *)text,
        .p = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .slots = stack_slots,
        .cap = ARRAY_LEN(stack_slots),
    };
    json_value_t root, *out = NULL;
    if (len > UINT32_MAX) {
        fail(&ps, ps.p, "input too large");
    } else if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        fail(&ps, ps.p, "byte order mark not allowed");
    } else if (skip_ws(&ps), ps.p == ps.end) {
        fail(&ps, ps.p, "empty input");
    } else if (parse_value(&ps, 0, &root)) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            fail(&ps, ps.p, "unexpected data after the value");
        } else {
            out = arena_alloc(a, sizeof(*out));
            *out = root;
        }
    }
    if (ps.slots_heap)
        free(ps.slots);
    if (!out)
        set_error(err, text, (size_t)(ps.err_at - ps.start), ps.err_msg);
    return out;
}

/* ---- accessors ---- */

json_type_t json_type(const json_value_t *v)
{
    return v->type;
}

const char *json_string(const json_value_t *v, size_t *len)
{
    bool ok = v && v->type == JSON_STRING;
    if (len)
        *len = ok ? v->len : 0;
    return ok ? v->u.text : NULL;
}

const char *json_number_text(const json_value_t *v, size_t *len)
{
    bool ok = v && v->type == JSON_NUMBER;
    if (len)
        *len = ok ? v->len : 0;
    return ok ? v->u.text : NULL;
}

bool json_get_i64(const json_value_t *v, int64_t *out)
{
    if (!v || v->type != JSON_NUMBER)
        return false;
    const char *p = v->u.text, *end = p + v->len;
    bool neg = *p == '-';
    p += neg;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false; /* a fraction or an exponent */
        unsigned d = (unsigned)(*p - '0');
        if (acc > (limit - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return true;
}

bool json_get_double(const json_value_t *v, double *out)
{
    if (!v || v->type != JSON_NUMBER)
        return false;
    char *endp;
    double d = strtod(v->u.text, &endp);
    /* endp short of the end: a locale whose decimal point is not '.' */
    if (endp != v->u.text + v->len || isinf(d))
        return false;
    *out = d;
    return true;
}

size_t json_array_len(const json_value_t *v)
{
    return v && v->type == JSON_ARRAY ? v->len : 0;
}

const json_value_t *json_array_at(const json_value_t *v, size_t i)
{
    return v && v->type == JSON_ARRAY && i < v->len ? &v->u.items[i] : NULL;
}

size_t json_object_len(const json_value_t *v)
{
    return v && v->type == JSON_OBJECT ? v->len : 0;
}

const json_value_t *json_object_getn(const json_value_t *v, const char *key, size_t klen)
{
    if (!v || v->type != JSON_OBJECT || klen > UINT32_MAX)
        return NULL;
    const json_member_t *m = v->u.members;
    uint32_t n = v->len;
    if (n <= SMALL_OBJECT) {
        for (uint32_t i = 0; i < n; i++)
            if (m[i].klen == klen && memcmp(m[i].key, key, klen) == 0)
                return &m[i].value;
        return NULL;
    }
    const uint32_t *idx = (const uint32_t *)(m + n);
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const json_member_t *x = &m[idx[mid]];
        int c = key_cmp(x->key, x->klen, key, (uint32_t)klen);
        if (c == 0)
            return &x->value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const json_value_t *json_object_get(const json_value_t *v, const char *key)
{
    return json_object_getn(v, key, strlen(key));
}

const char *json_object_key_at(const json_value_t *v, size_t i, size_t *klen)
{
    bool ok = v && v->type == JSON_OBJECT && i < v->len;
    if (klen)
        *klen = ok ? v->u.members[i].klen : 0;
    return ok ? v->u.members[i].key : NULL;
}

const json_value_t *json_object_value_at(const json_value_t *v, size_t i)
{
    return v && v->type == JSON_OBJECT && i < v->len ? &v->u.members[i].value : NULL;
}

void json_value_write(buf_t *b, const json_value_t *v)
{
    size_t n;
    switch (json_type(v)) {
    case JSON_NULL:
        buf_append_lit(b, "null");
        break;
    case JSON_FALSE:
        buf_append_lit(b, "false");
        break;
    case JSON_TRUE:
        buf_append_lit(b, "true");
        break;
    case JSON_NUMBER: {
        const char *t = json_number_text(v, &n);
        buf_append(b, t, n);
        break;
    }
    case JSON_STRING: {
        const char *t = json_string(v, &n);
        json_str(b, t, n);
        break;
    }
    case JSON_ARRAY:
        buf_putc(b, '[');
        for (size_t i = 0; i < json_array_len(v); i++) {
            if (i)
                buf_putc(b, ',');
            json_value_write(b, json_array_at(v, i));
        }
        buf_putc(b, ']');
        break;
    case JSON_OBJECT:
        buf_putc(b, '{');
        for (size_t i = 0; i < json_object_len(v); i++) {
            if (i)
                buf_putc(b, ',');
            const char *k = json_object_key_at(v, i, &n);
            json_str(b, k, n);
            buf_putc(b, ':');
            json_value_write(b, json_object_value_at(v, i));
        }
        buf_putc(b, '}');
        break;
    }
}
