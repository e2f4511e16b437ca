/*
 * HTTP/1.1 request-head parser and chunked body decoder (RFC 9112), strict by design: anything
 * a proxy in front of us might read differently (request smuggling) is refused, not guessed.
 * The parser is pure: it takes bytes and fills a struct whose strings point into those bytes.
 */
#ifndef CRMD_HTTP_PARSER_H
#define CRMD_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_URI     8192
#define HTTP_MAX_HEAD    16384

typedef struct {
    const char *p;
    size_t len;
} http_str_t;

typedef struct {
    http_str_t name;
    http_str_t value;
} http_header_t;

typedef enum {
    HTTP_OTHER = 0,
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
    HTTP_OPTIONS,
} http_method_t;

/* What the head says about the connection and the body. */
enum http_req_flags {
    HTTP_REQ_KEEPALIVE = 1u << 0,       /* connection stays open after this request */
    HTTP_REQ_CHUNKED = 1u << 1,         /* body uses Transfer-Encoding: chunked */
    HTTP_REQ_HAS_LENGTH = 1u << 2,      /* Content-Length was given */
    HTTP_REQ_EXPECT_CONTINUE = 1u << 3, /* Expect: 100-continue */
    HTTP_REQ_TRACE_MANY = 1u << 4,      /* traceparent sent twice: the trace restarts */
};

typedef struct http_request {
    http_method_t method;
    http_str_t method_str;
    http_str_t target;     /* request-target as sent */
    http_str_t path;       /* raw (still percent-encoded) path, starts with '/' or is "*" */
    http_str_t query;      /* raw query after '?', empty if none */
    uint8_t version_minor; /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    uint32_t flags;        /* enum http_req_flags */
    uint64_t content_length;
    /* Frequently used headers, captured while parsing (empty when absent). */
    http_str_t host, authorization, x_api_key, x_request_id, accept_encoding, if_none_match, if_match, origin,
        content_type, idempotency_key, x_forwarded_for, access_control_request_method,
        access_control_request_headers, traceparent;
    uint32_t num_headers;
    http_header_t headers[HTTP_MAX_HEADERS];
} http_request_t;

#define HTTP_PARSE_INCOMPLETE 0

/*
 * Parses the request head at buf[0..len). *scan is parser state between calls for one head:
 * set it to 0 before the first call; later calls only scan the bytes that arrived since, so a
 * head delivered one byte at a time costs O(n). Returns the head length (> 0, including the
 * final CRLF CRLF) when complete, HTTP_PARSE_INCOMPLETE when more bytes are needed, or
 * -status when the request must be refused: -400 malformed or ambiguous, -414 target over
 * HTTP_MAX_URI, -431 head over HTTP_MAX_HEAD bytes or more than HTTP_MAX_HEADERS fields,
 * -501 unknown transfer coding, -505 unsupported HTTP version, -417 unknown expectation.
 * Errors that can be seen before the head is complete (an oversized target or head, bad bytes)
 * are reported early.
 */
int http_parse_request(const char *buf, size_t len, size_t *scan, http_request_t *req);

/* Incremental, in-place decoder of a chunked request body (chunk extensions and trailers are
 * read and dropped). */
typedef struct {
    uint64_t limit;     /* maximum decoded body size; set by the caller */
    uint64_t total;     /* decoded bytes so far */
    uint64_t remaining; /* bytes left in the current chunk */
    uint32_t state;     /* internal */
    uint32_t count;     /* internal (digits or line length) */
} http_chunked_t;

/*
 * Decodes raw bytes buf[0..*len). Decoded data is moved to the front of buf and *len is set to
 * its length; *consumed is set to the number of raw bytes used. Returns 1 when the last chunk
 * and the trailers are complete (raw bytes from *consumed on belong to the next request), 0
 * when all input was used and more is needed, -400 on a malformed chunk size, line or
 * trailer, -413 when the decoded size would exceed limit.
 */
int http_chunked_decode(http_chunked_t *d, char *buf, size_t *len, size_t *consumed);

/* Percent-decodes src into dst (dst may equal src); '+' becomes ' ' when plus_is_space.
 * Returns the decoded length, or -1 for a bad escape or a decoded NUL or control byte. */
long http_url_decode(char *dst, const char *src, size_t len, int plus_is_space);

/* Percent-decodes a path for routing, segment by segment: an encoded '/' (%2F) is data inside
 * its segment, not a separator, so it stays "%2F" (and matches no literal segment or id).
 * dst needs len bytes. Returns the length, or -1 as http_url_decode. */
long http_path_decode(char *dst, const char *src, size_t len);

/* Iterates "k=v&k2=v2" pairs of a raw query; returns 0 when done. Key and value stay encoded. */
typedef struct {
    const char *p, *end;
} http_query_iter_t;
void http_query_init(http_query_iter_t *it, http_str_t query);
int http_query_next(http_query_iter_t *it, http_str_t *key, http_str_t *value);

/* Case-insensitive comparison of a token with a lowercase literal. */
int http_str_ieq(http_str_t s, const char *lower, size_t lower_len);

#endif
