/*
 * HTTP/1.1 request-head parser and chunked body decoder (RFC 9112).
 *
 * Why our own parser rather than llhttp or picohttpparser:
 * - Strictness. Request smuggling lives in the gap between what a proxy in front of us and what
 *   we think a message says. Every byte sequence two implementations might read differently is
 *   refused: bare CR or LF, obs-fold, whitespace before the colon, ambiguous Content-Length,
 *   Transfer-Encoding other than a final "chunked", TE with CL, leading empty lines (RFC 9112
 *   lets a server skip them; a stray CRLF usually means a client miscounted its last body).
 * - Zero copy. Every string in http_request_t points into the receive buffer; nothing is
 *   allocated, and the common case (a whole GET head in one recv) is one pass over the bytes.
 * - Incremental terminator scan. A head that trickles in is only checked over the new bytes
 *   (state packed into the caller's size_t); fields are extracted once, when the head is whole.
 * - Our limits and statuses: 414 as soon as the target outgrows HTTP_MAX_URI, 431 as soon as
 *   the head outgrows HTTP_MAX_HEAD, and the exact status the router should send for each
 *   refusal.
 *
 * One scanner does both jobs: called with req == NULL it only checks bytes and looks for the
 * end of the head; with req it also records fields. Checks on bytes ("lexical" errors) are
 * returned at once and depend only on the bytes up to where they fire, so a head split at any
 * boundary fails the same way as a whole one. Checks on meaning (Host, Content-Length,
 * Transfer-Encoding, ...) are collected and decided only when the whole head is present.
 *
 * The unit tests and the fuzz seeds draw their cases from the public corpora of llhttp (the
 * test/request markdown files), nodejs/http-parser (test.c) and picohttpparser (test.c), and
 * from published request-smuggling write-ups (CL.TE, TE.CL, TE.TE obfuscations), rewritten as
 * our own data.
 */
#include "http/parser.h"

#include <stdbool.h>
#include <string.h>

#include "core/common.h"

/* ---- byte classes, built at compile time ---- */

#define CL_TOKEN 0x01 /* tchar: method, field name, transfer-coding */
#define CL_VALUE 0x02 /* field-value byte: HTAB, SP, VCHAR, obs-text */
#define CL_PATH  0x04 /* request-target byte before '?' */
#define CL_QUERY 0x08 /* request-target byte after '?' */
#define CL_HEX   0x10
#define CL_HOST  0x20 /* uri-host and port: reg-name, IP literal, ':' (no ',' or '@') */
#define CL_VCHAR 0x40

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_VCHAR(c) ((c) > 0x20 && (c) < 0x7f)
#define IS_TCHAR(c)                                                                                          \
    (IS_DIGIT(c) || IS_ALPHA(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' ||     \
     (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||      \
     (c) == '`' || (c) == '|' || (c) == '~')
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define IS_HOST(c)                                                                                           \
    (IS_DIGIT(c) || IS_ALPHA(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == '!' ||     \
     (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' || (c) == '*' || (c) == '+' ||      \
     (c) == ';' || (c) == '=' || (c) == ':' || (c) == '[' || (c) == ']' || (c) == '%')
#define CLASS(c)                                                                                             \
    ((IS_TCHAR(c) ? CL_TOKEN : 0) | ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f) ? CL_VALUE : 0) |           \
     (IS_VCHAR(c) && (c) != '#' && (c) != '?' ? CL_PATH : 0) | (IS_VCHAR(c) && (c) != '#' ? CL_QUERY : 0) |  \
     (IS_HEX(c) ? CL_HEX : 0) | (IS_HOST(c) ? CL_HOST : 0) | (IS_VCHAR(c) ? CL_VCHAR : 0))
#define LOWER(c) ((c) >= 'A' && (c) <= 'Z' ? (uint8_t)((c) + 32) : (uint8_t)(c))

#define C4(f, c)  f(c), f(c + 1), f(c + 2), f(c + 3)
#define C16(f, c) C4(f, c), C4(f, c + 4), C4(f, c + 8), C4(f, c + 12)
#define C64(f, c) C16(f, c), C16(f, c + 16), C16(f, c + 32), C16(f, c + 48)

static const uint8_t byte_class[256] = {C64(CLASS, 0), C64(CLASS, 64), C64(CLASS, 128), C64(CLASS, 192)};
static const uint8_t lower_of[256] = {C64(LOWER, 0), C64(LOWER, 64), C64(LOWER, 128), C64(LOWER, 192)};

#define HAS(c, cls) (byte_class[(unsigned char)(c)] & (cls))

/* Value of a byte already known to be a hex digit. */
static inline unsigned hex_value(unsigned char c)
{
    return (c & 0xf) + (c >> 6) * 9;
}

int http_str_ieq(http_str_t s, const char *lit, size_t lit_len)
{
    if (s.len != lit_len)
        return 0;
    for (size_t i = 0; i < lit_len; i++)
        if (lower_of[(unsigned char)s.p[i]] != (unsigned char)lit[i])
            return 0;
    return 1;
}

static inline http_str_t str_trim(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return (http_str_t){p, (size_t)(end - p)};
}

static inline bool str_eq(http_str_t a, http_str_t b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static bool all_of(http_str_t s, uint8_t cls)
{
    for (size_t i = 0; i < s.len; i++)
        if (!HAS(s.p[i], cls))
            return false;
    return true;
}

/*
 * uri-host [ ":" port ] (RFC 9110 4.2.1, RFC 3986 3.2.2): a bracketed IPv6 or IPvFuture
 * literal, or a non-empty reg-name (IPv4 is one) of unreserved, sub-delims and %HH; a port of
 * at most five digits up to 65535. An empty host is invalid for "http" URIs, so an empty Host.
 */
static bool host_valid(http_str_t v)
{
    size_t i = 0, n = v.len;
    if (n == 0)
        return false;
    if (v.p[0] == '[') {
        size_t close = 1;
        while (close < n && v.p[close] != ']')
            close++;
        if (close == n || close == 1)
            return false;
        for (size_t k = 1; k < close; k++) {
            uint8_t c = (uint8_t)v.p[k];
            if (!(IS_HEX(c) || c == ':' || c == '.' || ((c == 'v' || c == 'V') && k == 1)))
                return false;
        }
        i = close + 1;
    } else {
        while (i < n && v.p[i] != ':') {
            uint8_t c = (uint8_t)v.p[i];
            if (c == '%') {
                if (i + 2 >= n || !IS_HEX(v.p[i + 1]) || !IS_HEX(v.p[i + 2]))
                    return false;
                i += 3;
                continue;
            }
            if (!IS_HOST(c) || c == '[' || c == ']')
                return false;
            i++;
        }
        if (i == 0)
            return false;
    }
    if (i == n)
        return true;
    if (v.p[i] != ':' || n - i - 1 > 5)
        return false;
    uint32_t port = 0;
    for (size_t k = i + 1; k < n; k++) {
        if (!IS_DIGIT(v.p[k]))
            return false;
        port = port * 10 + (uint32_t)(v.p[k] - '0');
    }
    return port <= 65535;
}

/* Comma-separated list elements, trimmed; empty elements are returned too, so callers see them. */
typedef struct {
    const char *p, *end;
    bool done;
} list_iter_t;

static bool list_next(list_iter_t *it, http_str_t *elem)
{
    if (it->done)
        return false;
    const char *comma = memchr(it->p, ',', (size_t)(it->end - it->p));
    const char *stop = comma ? comma : it->end;
    *elem = str_trim(it->p, stop);
    if (comma)
        it->p = comma + 1;
    else
        it->done = true;
    return true;
}

/*
 * Fast skips over runs of ordinary bytes, 16 at a time (SSE2 is part of x86-64). Each returns
 * where the byte-class loop that follows must take over; that loop stays the judge of every
 * byte, so without SSE2 the skips are no-ops.
 */
#ifdef __SSE2__
#include <emmintrin.h>

/* Field-value bytes: stops at a CTL other than HTAB, or DEL (CR included). */
static inline size_t skip_value(const unsigned char *b, size_t p, size_t end)
{
    const __m128i sp = _mm_set1_epi8(0x20), tab = _mm_set1_epi8('\t'), del = _mm_set1_epi8(0x7f);
    const __m128i minus1 = _mm_set1_epi8(-1);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(b + p));
        /* signed compare: obs-text (>= 0x80) is negative and must not stop */
        __m128i ctl = _mm_and_si128(_mm_cmplt_epi8(v, sp), _mm_cmpgt_epi8(v, minus1));
        __m128i stop = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctl), _mm_cmpeq_epi8(v, del));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m)
            return p + (unsigned)__builtin_ctz(m);
        p += 16;
    }
    return p;
}

/* Request-target bytes: stops at anything outside 0x21..0x7e, at '#', and at `also`. */
static inline size_t skip_target(const unsigned char *b, size_t p, size_t end, char also)
{
    const __m128i lo = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f), hash = _mm_set1_epi8('#');
    const __m128i extra = _mm_set1_epi8(also);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(b + p));
        /* signed compare: bytes >= 0x80 are negative, so they stop too */
        __m128i stop = _mm_or_si128(_mm_cmplt_epi8(v, lo), _mm_cmpeq_epi8(v, del));
        stop = _mm_or_si128(stop, _mm_or_si128(_mm_cmpeq_epi8(v, hash), _mm_cmpeq_epi8(v, extra)));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m)
            return p + (unsigned)__builtin_ctz(m);
        p += 16;
    }
    return p;
}
/* Field-name bytes: stops at anything but a letter, digit or '-' (other tchars are rare). */
static inline size_t skip_name(const unsigned char *b, size_t p, size_t end)
{
    const __m128i lower = _mm_set1_epi8(0x20), dash = _mm_set1_epi8('-');
    /* x in [lo, lo + n) <=> (int8_t)(x + 0x80 - lo) < -128 + n */
    const __m128i to_a = _mm_set1_epi8((char)(0x80 - 'a')), to_0 = _mm_set1_epi8((char)(0x80 - '0'));
    const __m128i n26 = _mm_set1_epi8(-128 + 26), n10 = _mm_set1_epi8(-128 + 10);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(b + p));
        __m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, lower), to_a), n26);
        __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, to_0), n10);
        __m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(v, dash));
        unsigned m = ~(unsigned)_mm_movemask_epi8(ok) & 0xffff;
        if (m)
            return p + (unsigned)__builtin_ctz(m);
        p += 16;
    }
    return p;
}
#else
static inline size_t skip_name(const unsigned char *b, size_t p, size_t end)
{
    (void)b, (void)end;
    return p;
}

static inline size_t skip_value(const unsigned char *b, size_t p, size_t end)
{
    (void)b, (void)end;
    return p;
}

static inline size_t skip_target(const unsigned char *b, size_t p, size_t end, char also)
{
    (void)b, (void)end, (void)also;
    return p;
}
#endif

/* ---- request head ---- */

/* Where the scanner stands; packed into the caller's *scan between calls. */
enum head_state {
    H_METHOD,
    H_PATH,
    H_QUERY,
    H_VERSION,
    H_VERSION_LF,
    H_LINE,
    H_NAME,
    H_VALUE,
    H_VALUE_LF,
    H_END_LF,
    H_NSTATES,
};

struct head_pos {
    uint32_t pos;     /* next byte to look at */
    uint32_t mark;    /* start of the current target, version or header line */
    uint32_t nfields; /* header lines begun */
    uint32_t state;   /* enum head_state */
};

_Static_assert(sizeof(size_t) >= 8, "the head scan state is packed into a 64-bit size_t");
_Static_assert(HTTP_MAX_HEAD < 65536 && HTTP_MAX_HEADERS < 65536, "scan state fields are 16 bits");

static inline size_t pos_pack(struct head_pos hp)
{
    return (size_t)hp.pos | (size_t)hp.mark << 16 | (size_t)hp.nfields << 32 | (size_t)hp.state << 48;
}

static inline struct head_pos pos_unpack(size_t s)
{
    return (struct head_pos){(uint32_t)(s & 0xffff), (uint32_t)(s >> 16 & 0xffff),
                             (uint32_t)(s >> 32 & 0xffff), (uint32_t)(s >> 48 & 0xffff)};
}

/* What the header fields said, judged once the head is complete. */
struct head_meaning {
    bool bad;        /* malformed or ambiguous: 400 */
    bool te_seen;    /* any Transfer-Encoding field */
    bool te_chunked; /* "chunked" seen; nothing may follow it */
    bool te_unknown; /* another coding: 501 */
    bool expect_bad; /* an expectation we cannot meet: 417 */
    bool expect_continue;
    bool conn_close;
    bool conn_keep_alive;
    uint32_t hosts;
    http_str_t authority; /* from an absolute-form target */
};

static http_method_t method_of(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0)
            return HTTP_POST;
        if (memcmp(m, "HEAD", 4) == 0)
            return HTTP_HEAD;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return HTTP_PATCH;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return HTTP_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return HTTP_OPTIONS;
        break;
    }
    return HTTP_OTHER;
}

/* "HTTP/1.1" -> 1, "HTTP/1.0" -> 0; another "HTTP/d.d" -> -505; anything else -> -400. */
static int version_minor(const unsigned char *v, size_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !IS_DIGIT(v[5]) || v[6] != '.' || !IS_DIGIT(v[7]))
        return -400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return -505;
    return v[7] - '0';
}

/*
 * Checks the form of a complete request-target t[0..n) (bytes already checked) and, when path
 * is non-NULL, splits it. qpos is the offset of the first '?' in t, or n when there is none.
 * origin-form "/p?q", asterisk "*" (OPTIONS only), absolute-form "http[s]://host/p?q" whose
 * authority (no userinfo) goes to *authority.
 */
static int split_target(const char *t, size_t n, size_t qpos, bool is_options, http_str_t *path,
                        http_str_t *query, http_str_t *authority)
{
    size_t path_start = 0;
    if (t[0] == '*') {
        if (n != 1 || !is_options)
            return -400;
        if (path)
            *path = (http_str_t){t, 1};
        return 0;
    }
    if (t[0] != '/') {
        size_t s;
        if (n > 7 && http_str_ieq((http_str_t){t, 7}, LIT("http://")))
            s = 7;
        else if (n > 8 && http_str_ieq((http_str_t){t, 8}, LIT("https://")))
            s = 8;
        else
            return -400;
        size_t e = s;
        while (e < n && t[e] != '/' && t[e] != '?')
            e++;
        http_str_t auth = {t + s, e - s};
        if (!host_valid(auth))
            return -400;
        if (authority)
            *authority = auth;
        path_start = e;
    }
    if (!path)
        return 0;
    if (path_start == qpos || path_start == n)
        *path = (http_str_t){"/", 1}; /* "http://host" or "http://host?q" */
    else
        *path = (http_str_t){t + path_start, qpos - path_start};
    if (qpos < n)
        *query = (http_str_t){t + qpos + 1, n - qpos - 1};
    return 0;
}

/*
 * A field name of n bytes equals a lowercase literal of letters and '-'. Names hold only
 * tchars, and OR-ing 0x20 into a tchar gives a lowercase letter or '-' only when it was that
 * letter (either case) or '-', so eight bytes are compared at a time.
 */
static inline bool name_eq(const char *p, const char *lit, size_t n)
{
    const uint64_t to_lower = 0x2020202020202020u;
    uint64_t x, y;
    size_t i = 0;
    if (n < 8) {
        for (; i < n; i++)
            if (((unsigned char)p[i] | 0x20) != (unsigned char)lit[i])
                return false;
        return true;
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, p + i, 8);
        memcpy(&y, lit + i, 8);
        if ((x | to_lower) != y)
            return false;
    }
    if (i == n)
        return true;
    memcpy(&x, p + n - 8, 8); /* the last 8 bytes, overlapping what was compared */
    memcpy(&y, lit + n - 8, 8);
    return (x | to_lower) == y;
}

#define NAME_IS(name, lit) ((name).len == sizeof(lit) - 1 && name_eq((name).p, lit, sizeof(lit) - 1))

/* Captures a header that must not carry two different values. */
static void capture_single(http_str_t *slot, http_str_t v, struct head_meaning *hm)
{
    if (!slot->p)
        *slot = v;
    else if (!str_eq(*slot, v))
        hm->bad = true;
}

static void capture_first(http_str_t *slot, http_str_t v)
{
    if (!slot->p)
        *slot = v;
}

/* Content-Length: 1*DIGIT, or a list of identical ones; all fields must agree. */
static void on_content_length(http_request_t *req, http_str_t v, struct head_meaning *hm)
{
    list_iter_t it = {v.p, v.p + v.len, false};
    http_str_t e;
    while (list_next(&it, &e)) {
        uint64_t n = 0;
        if (e.len == 0) {
            hm->bad = true;
            return;
        }
        for (size_t i = 0; i < e.len; i++) {
            unsigned d = (unsigned char)e.p[i] - '0';
            if (d > 9 || n > ((uint64_t)INT64_MAX - d) / 10) {
                hm->bad = true;
                return;
            }
            n = n * 10 + d;
        }
        if ((req->flags & HTTP_REQ_HAS_LENGTH) && req->content_length != n)
            hm->bad = true;
        req->flags |= HTTP_REQ_HAS_LENGTH;
        req->content_length = n;
    }
}

/* Transfer-Encoding: codings in order over all fields; only a single, final "chunked" is ours. */
static void on_transfer_encoding(http_str_t v, struct head_meaning *hm)
{
    list_iter_t it = {v.p, v.p + v.len, false};
    http_str_t e;
    hm->te_seen = true;
    while (list_next(&it, &e)) {
        if (e.len == 0 || hm->te_chunked) {
            hm->bad = true; /* empty element, or anything after chunked (chunked twice too) */
            continue;
        }
        if (http_str_ieq(e, LIT("chunked"))) {
            hm->te_chunked = true;
            continue;
        }
        const char *semi = memchr(e.p, ';', e.len);
        http_str_t name = semi ? str_trim(e.p, semi) : e;
        if (name.len == 0 || !all_of(name, CL_TOKEN) || http_str_ieq(name, LIT("chunked")))
            hm->bad = true;
        else
            hm->te_unknown = true;
    }
}

static void on_connection(http_str_t v, struct head_meaning *hm)
{
    list_iter_t it = {v.p, v.p + v.len, false};
    http_str_t e;
    while (list_next(&it, &e)) {
        if (http_str_ieq(e, LIT("close")))
            hm->conn_close = true;
        else if (http_str_ieq(e, LIT("keep-alive")))
            hm->conn_keep_alive = true;
    }
}

/* Records one complete field line and what it means; names are compared by length first. */
static void on_field(http_request_t *req, struct head_meaning *hm, http_str_t name, http_str_t v)
{
    req->headers[req->num_headers++] = (http_header_t){name, v};
    switch (name.len) {
    case 4:
        if (NAME_IS(name, "host")) {
            if (++hm->hosts > 1 || !host_valid(v))
                hm->bad = true;
            req->host = v;
        }
        break;
    case 6:
        if (NAME_IS(name, "origin"))
            capture_single(&req->origin, v, hm);
        else if (NAME_IS(name, "expect")) {
            if (http_str_ieq(v, LIT("100-continue")))
                hm->expect_continue = true;
            else
                hm->expect_bad = true;
        }
        break;
    case 8:
        if (NAME_IS(name, "if-match"))
            capture_first(&req->if_match, v);
        break;
    case 9:
        if (NAME_IS(name, "x-api-key"))
            capture_single(&req->x_api_key, v, hm);
        break;
    case 10:
        if (NAME_IS(name, "connection"))
            on_connection(v, hm);
        break;
    case 11:
        if (NAME_IS(name, "traceparent")) {
            if (req->traceparent.p)
                req->flags |= HTTP_REQ_TRACE_MANY; /* W3C: not one trace to follow */
            req->traceparent = v;
        }
        break;
    case 12:
        if (NAME_IS(name, "x-request-id"))
            capture_single(&req->x_request_id, v, hm);
        else if (NAME_IS(name, "content-type"))
            capture_single(&req->content_type, v, hm);
        break;
    case 13:
        if (NAME_IS(name, "authorization"))
            capture_single(&req->authorization, v, hm);
        else if (NAME_IS(name, "if-none-match"))
            capture_first(&req->if_none_match, v);
        break;
    case 14:
        if (NAME_IS(name, "content-length"))
            on_content_length(req, v, hm);
        break;
    case 15:
        if (NAME_IS(name, "accept-encoding"))
            capture_first(&req->accept_encoding, v);
        else if (NAME_IS(name, "idempotency-key"))
            capture_single(&req->idempotency_key, v, hm);
        else if (NAME_IS(name, "x-forwarded-for"))
            req->x_forwarded_for = v; /* the last line holds the hop nearest to us */
        break;
    case 17:
        if (NAME_IS(name, "transfer-encoding"))
            on_transfer_encoding(v, hm);
        break;
    case 29:
        if (NAME_IS(name, "access-control-request-method"))
            capture_first(&req->access_control_request_method, v);
        break;
    case 30:
        if (NAME_IS(name, "access-control-request-headers"))
            capture_first(&req->access_control_request_headers, v);
        break;
    }
}

/*
 * Decides what the fields meant together; 0 when the request is acceptable. Whatever the field
 * order, a malformed or ambiguous head (400) outranks an unknown coding (501), which outranks
 * an unmet expectation (417).
 */
static int judge_head(http_request_t *req, struct head_meaning *hm)
{
    bool v11 = req->version_minor == 1;
    if (v11 && hm->hosts == 0)
        hm->bad = true;
    if (hm->te_seen && (!v11 || (req->flags & HTTP_REQ_HAS_LENGTH)))
        hm->bad = true;
    if (hm->bad)
        return -400;
    if (hm->te_unknown)
        return -501;
    if (hm->expect_bad)
        return -417;
    if (hm->te_chunked)
        req->flags |= HTTP_REQ_CHUNKED;
    if (hm->expect_continue && v11)
        req->flags |= HTTP_REQ_EXPECT_CONTINUE;
    if (v11 ? !hm->conn_close : hm->conn_keep_alive && !hm->conn_close)
        req->flags |= HTTP_REQ_KEEPALIVE;
    /* RFC 9112 3.2.2: with an absolute-form target, its authority replaces the Host field. */
    if (hm->authority.p)
        req->host = hm->authority;
    return 0;
}

#define SUSPEND(s)                                                                                           \
    do {                                                                                                     \
        hp->state = (s);                                                                                     \
        goto suspend;                                                                                        \
    } while (0)

/*
 * Scans buf[hp->pos..len) from the state in *hp. With req == NULL it only checks bytes and
 * finds the end; with req (always from pos 0) it also fills req. Returns the head length, 0
 * when more bytes are needed (*hp updated), or -status.
 */
static inline __attribute__((always_inline)) int scan_head(const char *buf, size_t len, struct head_pos *hp,
                                                           http_request_t *req)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t end = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    size_t p = hp->pos, mark = hp->mark, colon = 0, qpos = 0;
    uint32_t nfields = hp->nfields;
    struct head_meaning hm = {0};
    int st;

    switch (hp->state) {
    case H_METHOD:
        goto method;
    case H_PATH:
        goto path;
    case H_QUERY:
        goto query;
    case H_VERSION:
        goto version;
    case H_VERSION_LF:
        goto version_lf;
    case H_LINE:
        goto line;
    case H_NAME:
        goto name;
    case H_VALUE:
        goto value;
    case H_VALUE_LF:
        goto value_lf;
    case H_END_LF:
        goto end_lf;
    }
    return -400;

method:
    while (p < end && HAS(b[p], CL_TOKEN))
        p++;
    if (p == end)
        SUSPEND(H_METHOD);
    if (b[p] != ' ' || p == 0)
        return -400;
    if (req) {
        req->method_str = (http_str_t){buf, p};
        req->method = method_of(buf, p);
    }
    mark = ++p;

path:
    p = skip_target(b, p, end, '?');
    while (p < end && HAS(b[p], CL_PATH))
        p++;
    if (p - mark > HTTP_MAX_URI)
        return -414;
    if (p == end)
        SUSPEND(H_PATH);
    if (b[p] != '?')
        goto target_end;
    qpos = p++;

query:
    p = skip_target(b, p, end, '#');
    while (p < end && HAS(b[p], CL_QUERY))
        p++;
    if (p - mark > HTTP_MAX_URI)
        return -414;
    if (p == end)
        SUSPEND(H_QUERY);

target_end:
    if (b[p] != ' ' || p == mark)
        return -400;
    {
        size_t n = p - mark, q = qpos ? qpos - mark : n;
        bool is_options = mark - 1 == 7 && memcmp(buf, "OPTIONS", 7) == 0;
        if (req) {
            req->target = (http_str_t){buf + mark, n};
            st = split_target(buf + mark, n, q, is_options, &req->path, &req->query, &hm.authority);
        } else {
            st = split_target(buf + mark, n, q, is_options, NULL, NULL, NULL);
        }
        if (st < 0)
            return st;
    }
    mark = ++p;

version:
    while (p < end && HAS(b[p], CL_VCHAR) && p - mark < 8)
        p++;
    if (p == end)
        SUSPEND(H_VERSION);
    if (b[p] != '\r')
        return -400;
    st = version_minor(b + mark, p - mark);
    if (st < 0)
        return st;
    if (req)
        req->version_minor = (uint8_t)st;
    p++;

version_lf:
    if (p == end)
        SUSPEND(H_VERSION_LF);
    if (b[p] != '\n')
        return -400;
    p++;

line:
    if (p == end)
        SUSPEND(H_LINE);
    if (b[p] == '\r') {
        p++;
        goto end_lf;
    }
    /* not a tchar: obs-fold (SP/HTAB), bare LF, empty name, control bytes */
    if (!HAS(b[p], CL_TOKEN))
        return -400;
    if (++nfields > HTTP_MAX_HEADERS)
        return -431;
    mark = p++;

name:
    p = skip_name(b, p, end);
    while (p < end && HAS(b[p], CL_TOKEN))
        p++;
    if (p == end)
        SUSPEND(H_NAME);
    if (b[p] != ':')
        return -400; /* whitespace before the colon, a bad byte, or no colon */
    colon = p++;

value:
    p = skip_value(b, p, end);
    while (p < end && HAS(b[p], CL_VALUE))
        p++;
    if (p == end)
        SUSPEND(H_VALUE);
    if (b[p] != '\r')
        return -400;
    p++;

value_lf:
    if (p == end)
        SUSPEND(H_VALUE_LF);
    if (b[p] != '\n')
        return -400;
    p++;
    if (req)
        on_field(req, &hm, (http_str_t){buf + mark, colon - mark}, str_trim(buf + colon + 1, buf + p - 2));
    goto line;

end_lf:
    if (p == end)
        SUSPEND(H_END_LF);
    if (b[p] != '\n')
        return -400;
    p++;
    if (req && (st = judge_head(req, &hm)) < 0)
        return st;
    return (int)p;

suspend:
    /* Out of bytes; past the limit that means the head is too big. */
    if (end < len)
        return -431;
    hp->pos = (uint32_t)p;
    hp->mark = (uint32_t)mark;
    hp->nfields = nfields;
    return HTTP_PARSE_INCOMPLETE;
}

static int scan_check(const char *buf, size_t len, struct head_pos *hp)
{
    return scan_head(buf, len, hp, NULL);
}

static int scan_fill(const char *buf, size_t len, struct head_pos *hp, http_request_t *req)
{
    memset(req, 0, offsetof(http_request_t, headers));
    return scan_head(buf, len, hp, req);
}

int http_parse_request(const char *buf, size_t len, size_t *scan, http_request_t *req)
{
    struct head_pos hp = pos_unpack(*scan);
    int r;

    /* A later call for the same head: check only the new bytes until the end shows up. */
    if (hp.pos > 0 && hp.pos <= len && hp.state < H_NSTATES) {
        r = scan_check(buf, len, &hp);
        if (r == HTTP_PARSE_INCOMPLETE) {
            *scan = pos_pack(hp);
            return r;
        }
        if (r < 0) {
            *scan = 0;
            return r;
        }
        len = (size_t)r;
    }
    hp = (struct head_pos){0};
    r = scan_fill(buf, len, &hp, req);
    *scan = r == HTTP_PARSE_INCOMPLETE ? pos_pack(hp) : 0;
    return r;
}

/* ---- chunked body ---- */

#define CHUNK_LINE_MAX    4096 /* size line with extensions */
#define CHUNK_TRAILER_MAX 8192 /* all trailer lines together */
#define CHUNK_DIGITS_MAX  16

enum chunk_state {
    C_SIZE,
    C_EXT,
    C_SIZE_LF,
    C_DATA,
    C_DATA_CR,
    C_DATA_LF,
    C_TRAILER,
    C_TR_NAME,
    C_TR_VALUE,
    C_TR_LF,
    C_END_LF,
    C_DONE,
    C_BAD,
};

/* One byte of the trailer section: field lines until an empty line, checked and dropped. */
static uint32_t trailer_step(uint32_t state, unsigned char c)
{
    switch (state) {
    case C_TRAILER:
        return c == '\r' ? C_END_LF : HAS(c, CL_TOKEN) ? C_TR_NAME : C_BAD;
    case C_TR_NAME:
        return c == ':' ? C_TR_VALUE : HAS(c, CL_TOKEN) ? C_TR_NAME : C_BAD;
    case C_TR_VALUE:
        return c == '\r' ? C_TR_LF : HAS(c, CL_VALUE) ? C_TR_VALUE : C_BAD;
    case C_TR_LF:
        return c == '\n' ? C_TRAILER : C_BAD;
    case C_END_LF:
        return c == '\n' ? C_DONE : C_BAD;
    }
    return C_BAD;
}

int http_chunked_decode(http_chunked_t *d, char *buf, size_t *len, size_t *consumed)
{
    size_t n = *len, i = 0, out = 0;
    uint32_t state = d->state, count = d->count;
    int ret = 0;

    while (i < n && state != C_DONE) {
        unsigned char c = (unsigned char)buf[i];
        switch (state) {
        case C_SIZE:
            if (HAS(c, CL_HEX)) {
                /* count is the number of digits so far; the size must stay below 2^63 */
                if (count >= CHUNK_DIGITS_MAX || d->remaining > (uint64_t)INT64_MAX >> 4)
                    goto bad;
                d->remaining = d->remaining << 4 | hex_value(c);
            } else if (count == 0) {
                goto bad;
            } else if (c == ';') {
                state = C_EXT;
            } else if (c == '\r') {
                state = C_SIZE_LF;
            } else {
                goto bad;
            }
            count++;
            i++;
            break;
        case C_EXT:
            if (c == '\r')
                state = C_SIZE_LF;
            else if (!HAS(c, CL_VALUE))
                goto bad;
            if (++count > CHUNK_LINE_MAX)
                goto bad;
            i++;
            break;
        case C_SIZE_LF:
            if (c != '\n')
                goto bad;
            i++;
            count = 0;
            if (d->remaining == 0) {
                state = C_TRAILER;
            } else if (d->remaining > d->limit - d->total) {
                ret = -413;
                goto out;
            } else {
                state = C_DATA;
            }
            break;
        case C_DATA: {
            size_t take = (size_t)MIN(d->remaining, (uint64_t)(n - i));
            memmove(buf + out, buf + i, take);
            out += take;
            i += take;
            d->remaining -= take;
            d->total += take;
            if (d->remaining == 0)
                state = C_DATA_CR;
            break;
        }
        case C_DATA_CR:
        case C_DATA_LF:
            if (c != (state == C_DATA_CR ? '\r' : '\n'))
                goto bad;
            state = state == C_DATA_CR ? C_DATA_LF : C_SIZE;
            i++;
            break;
        default:
            if (++count > CHUNK_TRAILER_MAX)
                goto bad;
            state = trailer_step(state, c);
            if (state == C_BAD)
                goto bad;
            i++;
            break;
        }
    }
    if (state == C_DONE)
        ret = 1;
    goto out;
bad:
    ret = -400;
out:
    d->state = state;
    d->count = count;
    *len = out;
    *consumed = i;
    return ret;
}

/* ---- URL helpers ---- */

/* Percent-decodes src; plus_is_space turns '+' into ' '; keep_slash leaves "%2F" encoded. */
static long url_decode(char *dst, const char *src, size_t len, int plus_is_space, bool keep_slash)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (len - i < 3 || !HAS(src[i + 1], CL_HEX) || !HAS(src[i + 2], CL_HEX))
                return -1;
            c = (unsigned char)(hex_value((unsigned char)src[i + 1]) << 4 |
                                hex_value((unsigned char)src[i + 2]));
            i += 2;
            if (c == '/' && keep_slash) {
                memcpy(dst + o, "%2F", 3);
                o += 3;
                continue;
            }
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        dst[o++] = (char)c;
    }
    return (long)o;
}

long http_url_decode(char *dst, const char *src, size_t len, int plus_is_space)
{
    return url_decode(dst, src, len, plus_is_space, false);
}

long http_path_decode(char *dst, const char *src, size_t len)
{
    /* an encoded '/' is data inside its segment, not a separator: it stays encoded */
    return url_decode(dst, src, len, 0, true);
}

void http_query_init(http_query_iter_t *it, http_str_t query)
{
    it->p = query.p;
    it->end = query.p ? query.p + query.len : NULL;
}

int http_query_next(http_query_iter_t *it, http_str_t *key, http_str_t *value)
{
    while (it->p < it->end) {
        const char *s = it->p;
        const char *amp = memchr(s, '&', (size_t)(it->end - s));
        const char *e = amp ? amp : it->end;
        it->p = amp ? amp + 1 : it->end;
        if (e == s)
            continue; /* "a=1&&b=2" */
        const char *eq = memchr(s, '=', (size_t)(e - s));
        *key = (http_str_t){s, (size_t)((eq ? eq : e) - s)};
        *value = eq ? (http_str_t){eq + 1, (size_t)(e - eq - 1)} : (http_str_t){e, 0};
        return 1;
    }
    return 0;
}
