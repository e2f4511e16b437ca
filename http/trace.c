/* W3C traceparent parsing and formatting; see trace.h. */
#include "http/trace.h"

#include <string.h>

static int lhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case is not valid in a traceparent */
}

/* n lowercase hex digits; false on any other byte. Sets *nonzero when one digit is not 0. */
static bool hex_run(const char *p, size_t n, bool *nonzero)
{
    *nonzero = false;
    for (size_t i = 0; i < n; i++) {
        int d = lhex(p[i]);
        if (d < 0)
            return false;
        *nonzero |= d != 0;
    }
    return true;
}

bool http_traceparent_parse(const char *v, size_t n, char trace_id[HTTP_TRACE_ID_HEX + 1], uint8_t *flags)
{
    if (n < HTTP_TRACEPARENT_LEN)
        return false;
    bool nz;
    if (!hex_run(v, 2, &nz) || (v[0] == 'f' && v[1] == 'f'))
        return false;
    bool v00 = v[0] == '0' && v[1] == '0';
    /* version 00 is exactly 55 bytes; a later version may append "-..." fields we ignore */
    if (v00 ? n != HTTP_TRACEPARENT_LEN : (n > HTTP_TRACEPARENT_LEN && v[HTTP_TRACEPARENT_LEN] != '-'))
        return false;
    if (v[2] != '-' || v[35] != '-' || v[52] != '-')
        return false;
    bool trace_nz, span_nz;
    if (!hex_run(v + 3, HTTP_TRACE_ID_HEX, &trace_nz) || !trace_nz)
        return false;
    if (!hex_run(v + 36, HTTP_SPAN_ID_HEX, &span_nz) || !span_nz)
        return false;
    if (!hex_run(v + 53, 2, &nz))
        return false;
    memcpy(trace_id, v + 3, HTTP_TRACE_ID_HEX);
    trace_id[HTTP_TRACE_ID_HEX] = '\0';
    *flags = (uint8_t)(lhex(v[53]) << 4 | lhex(v[54]));
    return true;
}

void http_trace_hex(const uint8_t *r, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[r[i] >> 4];
        out[2 * i + 1] = digits[r[i] & 15];
        nonzero |= r[i] != 0;
    }
    if (!nonzero && n)
        out[2 * n - 1] = '1';
    out[2 * n] = '\0';
}

void http_traceparent_format(const char *trace_id, const char *span_id, uint8_t flags,
                             char out[HTTP_TRACEPARENT_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    memcpy(out, "00-", 3);
    memcpy(out + 3, trace_id, HTTP_TRACE_ID_HEX);
    out[35] = '-';
    memcpy(out + 36, span_id, HTTP_SPAN_ID_HEX);
    out[52] = '-';
    out[53] = digits[flags >> 4];
    out[54] = digits[flags & 15];
    out[55] = '\0';
}
