/*
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the traceparent header
 * "VV-TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT-PPPPPPPPPPPPPPPP-FF". crmd keeps a caller's trace id
 * (or starts a trace when there is none), logs it with the request, and answers with a
 * traceparent of its own span in that trace. Pure functions: the caller brings the bytes and
 * the random numbers.
 */
#ifndef CRMD_HTTP_TRACE_H
#define CRMD_HTTP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_TRACE_ID_HEX    32
#define HTTP_SPAN_ID_HEX     16
#define HTTP_TRACEPARENT_LEN 55 /* "00-" trace "-" span "-" flags */

/* Parses a traceparent value; true with the trace id (32 lowercase hex, NUL-terminated) and
 * the flags. Refused, as the spec says: a version other than two lowercase hex digits or
 * "ff"; version 00 with any other length than 55; a later version without '-' after the 55
 * bytes it shares with 00; upper-case hex; an all-zero trace or parent id. */
bool http_traceparent_parse(const char *v, size_t n, char trace_id[HTTP_TRACE_ID_HEX + 1], uint8_t *flags);

/* Writes n random bytes from r as 2n lowercase hex digits and a NUL; a zero id is not valid,
 * so an all-zero r gives ...01. */
void http_trace_hex(const uint8_t *r, size_t n, char *out);

/* "00-<trace_id>-<span_id>-<flags>" into out (HTTP_TRACEPARENT_LEN + 1 bytes). */
void http_traceparent_format(const char *trace_id, const char *span_id, uint8_t flags,
                             char out[HTTP_TRACEPARENT_LEN + 1]);

#endif
