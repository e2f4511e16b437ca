/*
 * Strong ETags from a hash of the response body, and the If-None-Match / If-Match
 * preconditions (RFC 9110 §13.1.1, §13.1.2) against one current ETag. Callers evaluate the
 * preconditions only for a resource that exists: for a missing one If-Match fails (412) and
 * If-None-Match never matches, whatever the header says.
 */
#ifndef CRMD_HTTP_ETAG_H
#define CRMD_HTTP_ETAG_H

#include "core/common.h"
#include "http/parser.h"

/* Length of a formatted ETag: '"', 16 lowercase hex digits, '"'. */
#define HTTP_ETAG_LEN 18

/*
 * A 64-bit hash of the body: XXH3_64bits with xxhash, else FNV-1a with a 64-bit finaliser
 * (slower, same use). The two differ, so ETags change once when a build switches; clients
 * then just get a 200 instead of a 304.
 */
uint64_t http_etag_hash(const void *body, size_t n);

/* Writes the strong ETag of h ("0123456789abcdef" with the quotes) and a NUL; returns 18. */
size_t http_etag_format(uint64_t h, char out[20]);

/*
 * Whether an If-None-Match field value matches etag, by weak comparison: "*" alone, or a
 * comma-separated list holding "<etag>" or W/"<etag>". Whitespace around members is allowed;
 * malformed members (no quotes, lowercase "w/", "*" inside a list, ...) are ignored. Empty:
 * false. A match means 304 for GET/HEAD, 412 for other methods.
 */
bool http_if_none_match(http_str_t header, uint64_t etag);

/*
 * Whether an If-Match field value matches etag, by strong comparison: "*" alone (the resource
 * exists), or a list holding "<etag>"; a weak W/"..." member never matches. Malformed members
 * are ignored. Callers check it only when the header is present: false means 412.
 */
bool http_if_match(http_str_t header, uint64_t etag);

#endif
