/* Client addresses and CIDR ranges (see addr.h): pure functions. */
#include "api/limit/addr.h"
#include "core/common.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- addresses ---- */

void rl_ip_from_peer(int family, const uint8_t *addr, uint8_t out[16])
{
    if (family == AF_INET) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, addr, 4);
    } else {
        memcpy(out, addr, 16);
    }
}

bool rl_ip_parse(const char *s, size_t n, bool allow_port, uint8_t out[16])
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char tmp[INET6_ADDRSTRLEN + 8];
    if (allow_port && n && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        if (!end)
            return false;
        size_t rest = n - (size_t)(end + 1 - s);
        if (rest && (end[1] != ':' || rest < 2))
            return false;
        n = (size_t)(end - s - 1);
        s++;
    } else if (allow_port && memchr(s, '.', n)) {
        const char *colon = memchr(s, ':', n);
        if (colon)
            n = (size_t)(colon - s);
    }
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    uint8_t v4[4];
    if (inet_pton(AF_INET, tmp, v4) == 1) {
        rl_ip_from_peer(AF_INET, v4, out);
        return true;
    }
    return inet_pton(AF_INET6, tmp, out) == 1;
}

bool rl_cidr_parse(const char *s, size_t n, rl_cidr_t *out)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    if (!rl_ip_parse(s, alen, false, out->addr))
        return false;
    bool v4 = !memchr(s, ':', alen);
    unsigned max = v4 ? 32 : 128, bits = max;
    if (slash) {
        const char *d = slash + 1, *end = s + n;
        while (end > d && end[-1] == ' ')
            end--;
        if (d == end || end - d > 3)
            return false;
        bits = 0;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9')
                return false;
            bits = bits * 10 + (unsigned)(*d - '0');
        }
        if (bits > max)
            return false;
    }
    out->bits = (uint8_t)(v4 ? bits + 96 : bits);
    /* clear host bits so matching is a plain prefix compare */
    for (unsigned i = out->bits; i < 128; i++)
        out->addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return true;
}

int rl_cidr_list_parse(const char *list, rl_cidr_t *out, int max)
{
    int n = 0;
    const char *p = list ? list : "", *q;
    size_t qn;
    while (csv_next(&p, &q, &qn)) {
        if (n >= max || !rl_cidr_parse(q, qn, &out[n]))
            return -1;
        n++;
    }
    return n;
}

bool rl_cidr_match(const rl_cidr_t *ranges, int n, const uint8_t ip[16])
{
    for (int i = 0; i < n; i++) {
        const rl_cidr_t *c = &ranges[i];
        unsigned full = c->bits / 8, rest = c->bits % 8;
        if (memcmp(c->addr, ip, full) != 0)
            continue;
        if (rest && ((ip[full] ^ c->addr[full]) & (uint8_t)(0xff00u >> rest)))
            continue;
        return true;
    }
    return false;
}

void rl_client_ip(const uint8_t peer[16], const char *xff, size_t xff_len, const rl_cidr_t *trusted,
                  int ntrusted, uint8_t out[16])
{
    memcpy(out, peer, 16);
    if (!ntrusted || !rl_cidr_match(trusted, ntrusted, peer))
        return;
    /* walk right to left: each trusted hop vouches for the one before it */
    size_t end = xff_len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        uint8_t ip[16];
        if (!rl_ip_parse(xff + start, end - start, true, ip))
            return; /* malformed: keep the last address we could trust */
        memcpy(out, ip, 16);
        if (!rl_cidr_match(trusted, ntrusted, ip))
            return;
        end = start ? start - 1 : 0;
    }
}
