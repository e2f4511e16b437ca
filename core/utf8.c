/* UTF-8 well-formedness; see utf8.h. */
#include "core/utf8.h"

size_t utf8_seq_check(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned c = s[0], lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < len && i < n; i++) {
        unsigned d = s[i];
        if (i == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xbf))
            break;
    }
    if (i == len)
        return len;
    *bad = i;
    return 0;
}

size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    size_t bad;
    return p[0] < 0x80 ? 1 : utf8_seq_check(p, avail, &bad);
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq_len(p, (size_t)(end - p));
        if (k == 0)
            return false;
        p += k;
    }
    return true;
}
