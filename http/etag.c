/*
 * ETags and their preconditions. Our ETags are always strong and always the same shape, so a
 * member of an If-(None-)Match list matches exactly when its opaque-tag is byte for byte the
 * formatted current ETag (RFC 9110 §8.8.3.2: comparison is octet-wise, so an uppercase hex tag
 * from a client does not match).
 */
#include "http/etag.h"
#include "core/hash.h"

#include <string.h>

#include "build_config.h"

uint64_t http_etag_hash(const void *body, size_t n)
{
    return hash64(body, n);
}

size_t http_etag_format(uint64_t h, char out[20])
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '"';
    for (int i = 16; i >= 1; i--, h >>= 4)
        out[i] = hex[h & 15];
    out[17] = '"';
    out[18] = '\0';
    return HTTP_ETAG_LEN;
}

/* etagc = %x21 / %x23-7E / obs-text */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Whether the whole field value, whitespace aside, is "*". */
static bool is_star(http_str_t h)
{
    const char *p = skip_ows(h.p, h.p + h.len), *end = h.p + h.len;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end - p == 1 && *p == '*';
}

/*
 * Walks the list "#entity-tag" looking for the formatted etag; weak members count only with
 * weak_ok. A malformed member is skipped up to the next comma.
 */
static bool list_matches(http_str_t h, uint64_t etag, bool weak_ok)
{
    char want[20];
    http_etag_format(etag, want);
    if (is_star(h))
        return true;

    const char *p = h.p, *end = h.p + h.len;
    while (p < end) {
        p = skip_ows(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        bool weak = end - p >= 2 && p[0] == 'W' && p[1] == '/';
        if (weak)
            p += 2;
        if (p < end && *p == '"') {
            const char *tag = p++;
            while (p < end && is_etagc((unsigned char)*p))
                p++;
            if (p < end && *p == '"') {
                size_t tag_len = (size_t)(++p - tag);
                const char *next = skip_ows(p, end);
                if (next == end || *next == ',') {
                    if ((weak_ok || !weak) && tag_len == HTTP_ETAG_LEN &&
                        memcmp(tag, want, HTTP_ETAG_LEN) == 0)
                        return true;
                    p = next;
                    continue;
                }
            }
        }
        while (p < end && *p != ',')
            p++;
    }
    return false;
}

bool http_if_none_match(http_str_t header, uint64_t etag)
{
    return list_matches(header, etag, true);
}

bool http_if_match(http_str_t header, uint64_t etag)
{
    return list_matches(header, etag, false);
}
