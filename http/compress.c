/*
 * Accept-Encoding negotiation and one-shot response compression.
 *
 * The parser follows RFC 9110's grammar for the field (§12.5.3, §5.6: lists, tokens,
 * parameters, qvalue) closely enough that a well-formed value is always read right, and treats
 * anything else element by element: a malformed element is skipped up to the next comma outside
 * a quoted string, and the rest of the list still counts. Skipping is the safe reading, since an
 * element left out can only make a coding unlisted, and an unlisted coding is refused.
 *
 * Compression writes straight into the caller's buffer with an output limit of n - 1 bytes:
 * libdeflate and brotli both give up when the result would not fit, so "not smaller than the
 * input" costs no second copy and no compress-bound sized scratch buffer.
 */
#include "http/compress.h"

#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "build_config.h"

#if HAVE_BROTLI
#include <brotli/encode.h>
#endif

/* ---- negotiation ---- */

#define Q_UNSET (-1)
#define Q_ONE   1000 /* q-values are kept in thousandths: the grammar allows 3 decimals */

/* The q of each coding we care about, Q_UNSET when the client did not list it. */
typedef struct {
    int br, gzip, identity, star;
} ae_prefs_t;

/* tchar of RFC 9110 §5.6.2. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Case-insensitive comparison of p[0..n) with a lowercase literal. */
static bool ieq(const char *p, size_t n, const char *lower, size_t lower_len)
{
    if (n != lower_len)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 'A' && c <= 'Z')
            c += 'a' - 'A';
        if (c != (unsigned char)lower[i])
            return false;
    }
    return true;
}

/* Past a quoted-string starting at p (on the opening quote); NULL when it is not closed. */
static const char *skip_quoted(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\' && p + 1 < end)
            p++;
    }
    return NULL;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths; -1 if not. */
static int parse_qvalue(const char *p, size_t n)
{
    if (n == 0 || n > 5 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int q = (p[0] - '0') * Q_ONE;
    if (n == 1)
        return q;
    if (p[1] != '.')
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q > Q_ONE ? -1 : q;
}

/*
 * Parses one element (coding *( OWS ";" OWS [ parameter ] )) at *pp, up to but not including
 * the next ',' or the end. Returns false when it is malformed; *pp is where parsing stopped
 * either way. Parameters other than q are skipped (RFC 9110 defines none for codings).
 */
static bool parse_element(const char **pp, const char *end, http_str_t *coding, int *q)
{
    const char *p = *pp;
    bool ok = false, seen_q = false;

    coding->p = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    coding->len = (size_t)(p - coding->p);
    *q = Q_ONE;
    if (coding->len == 0)
        goto out;
    for (;;) {
        p = skip_ows(p, end);
        if (p == end || *p == ',')
            break;
        if (*p != ';')
            goto out;
        p = skip_ows(p + 1, end);
        if (p == end || *p == ',' || *p == ';')
            continue; /* empty parameter */
        const char *name = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        size_t name_len = (size_t)(p - name);
        if (name_len == 0 || p == end || *p != '=')
            goto out;
        const char *val = ++p;
        if (p < end && *p == '"') {
            if (!(p = skip_quoted(p, end)))
                goto out_end;
        } else {
            while (p < end && is_tchar((unsigned char)*p))
                p++;
            if (p == val)
                goto out;
        }
        if (ieq(name, name_len, LIT("q"))) {
            if (seen_q)
                goto out;
            seen_q = true;
            if ((*q = parse_qvalue(val, (size_t)(p - val))) < 0)
                goto out;
        }
    }
    ok = true;
out:
    *pp = p;
    return ok;
out_end:
    *pp = end;
    return false;
}

/* Past the rest of a malformed element: to the next ',' outside a quoted string. */
static const char *skip_element(const char *p, const char *end)
{
    while (p < end && *p != ',') {
        if (*p == '"') {
            if (!(p = skip_quoted(p, end)))
                return end;
        } else {
            p++;
        }
    }
    return p;
}

/* A coding listed twice keeps its lower q, so an explicit refusal always stands. */
static void record(int *slot, int q)
{
    if (*slot == Q_UNSET || q < *slot)
        *slot = q;
}

static void record_coding(ae_prefs_t *prefs, http_str_t c, int q)
{
    if (ieq(c.p, c.len, LIT("gzip")) || ieq(c.p, c.len, LIT("x-gzip")))
        record(&prefs->gzip, q);
    else if (ieq(c.p, c.len, LIT("br")))
        record(&prefs->br, q);
    else if (ieq(c.p, c.len, LIT("identity")))
        record(&prefs->identity, q);
    else if (c.len == 1 && c.p[0] == '*')
        record(&prefs->star, q);
}

/* The q of a coding: its own entry, else the "*" entry, else (unlisted) refused. */
static int coding_q(int listed, int star)
{
    if (listed != Q_UNSET)
        return listed;
    return star != Q_UNSET ? star : 0;
}

http_encoding_t http_negotiate_encoding(http_str_t accept_encoding)
{
    ae_prefs_t prefs = {Q_UNSET, Q_UNSET, Q_UNSET, Q_UNSET};
    const char *p = accept_encoding.p, *end = p + accept_encoding.len;

    while (p < end) {
        p = skip_ows(p, end);
        if (p == end)
            break;
        if (*p == ',') {
            p++;
            continue;
        }
        http_str_t coding;
        int q;
        if (parse_element(&p, end, &coding, &q))
            record_coding(&prefs, coding, q);
        else
            p = skip_element(p, end);
    }

    int q_gzip = coding_q(prefs.gzip, prefs.star);
    int q_br = HAVE_BROTLI ? coding_q(prefs.br, prefs.star) : 0;
    /* identity is acceptable unless refused; unlisted, it ranks below every coding listed. */
    int q_identity = prefs.identity != Q_UNSET ? prefs.identity : prefs.star != Q_UNSET ? prefs.star : 1;

    http_encoding_t best = HTTP_ENCODING_IDENTITY;
    int q_best = 0;
    if (q_br > 0 && q_br >= q_gzip) {
        best = HTTP_ENCODING_BR;
        q_best = q_br;
    } else if (q_gzip > 0) {
        best = HTTP_ENCODING_GZIP;
        q_best = q_gzip;
    }
    if (q_best > 0 && q_best >= q_identity)
        return best;
    return q_identity > 0 ? HTTP_ENCODING_IDENTITY : HTTP_ENCODING_NOT_ACCEPTABLE;
}

const char *http_encoding_name(http_encoding_t enc)
{
    switch (enc) {
    case HTTP_ENCODING_GZIP:
        return "gzip";
    case HTTP_ENCODING_BR:
        return "br";
    default:
        return NULL;
    }
}

/* ---- compressor ---- */

struct http_compressor {
    struct libdeflate_compressor *gzip;
    int brotli_quality;
};

http_compressor_t *http_compressor_new(int gzip_level, int brotli_quality)
{
    http_compressor_t *c = xcalloc(1, sizeof(*c));
    c->gzip = libdeflate_alloc_compressor(MIN(MAX(gzip_level, 1), 12));
    if (!c->gzip)
        die("libdeflate_alloc_compressor: out of memory");
    c->brotli_quality = MIN(MAX(brotli_quality, 0), 11);
    return c;
}

void http_compressor_free(http_compressor_t *c)
{
    if (!c)
        return;
    libdeflate_free_compressor(c->gzip);
    free(c);
}

bool http_compress(http_compressor_t *c, http_encoding_t enc, const void *in, size_t n, buf_t *out)
{
    if (enc != HTTP_ENCODING_GZIP && (enc != HTTP_ENCODING_BR || !HAVE_BROTLI))
        return false;
    if (n < 2)
        return false;
    /* n - 1 bytes of room: an encoder that cannot fit its output there fails, as we want. */
    size_t avail = n - 1, got = 0;
    char *dst = buf_reserve(out, avail);
    if (enc == HTTP_ENCODING_GZIP) {
        got = libdeflate_gzip_compress(c->gzip, in, n, dst, avail);
    } else {
#if HAVE_BROTLI
        size_t size = avail;
        if (BrotliEncoderCompress(c->brotli_quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, n,
                                  (const uint8_t *)in, &size, (uint8_t *)dst))
            got = size;
#endif
    }
    if (got == 0 || got >= n)
        return false;
    out->len += got;
    return true;
}

/* ---- content types ---- */

static bool has_isuffix(const char *p, size_t n, const char *lower, size_t lower_len)
{
    return n >= lower_len && ieq(p + n - lower_len, lower_len, lower, lower_len);
}

bool http_compressible_type(const char *content_type)
{
    if (!content_type)
        return false;
    const char *p = content_type;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *type = p;
    while (*p && *p != '/' && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    size_t type_len = (size_t)(p - type);
    if (*p != '/')
        return false;
    const char *sub = ++p;
    while (*p && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    size_t sub_len = (size_t)(p - sub);
    if (sub_len == 0)
        return false;

    if (ieq(type, type_len, LIT("text")))
        return !ieq(sub, sub_len, LIT("event-stream"));
    if (!ieq(type, type_len, LIT("application")))
        return false;
    return ieq(sub, sub_len, LIT("json")) || ieq(sub, sub_len, LIT("xml")) ||
           ieq(sub, sub_len, LIT("javascript")) || (sub_len > 5 && has_isuffix(sub, sub_len, LIT("+json"))) ||
           (sub_len > 4 && has_isuffix(sub, sub_len, LIT("+xml")));
}
