/*
 * Response compression: Accept-Encoding negotiation (RFC 9110 §12.5.3) and a per-thread
 * one-shot compressor (gzip through libdeflate, br through libbrotlienc when built with it).
 * Callers compress only bodies over HTTP_COMPRESS_MIN bytes of a compressible type, send
 * "Vary: Accept-Encoding" on every response that could have been compressed, and fall back to
 * the plain body whenever http_compress returns false.
 */
#ifndef CRMD_HTTP_COMPRESS_H
#define CRMD_HTTP_COMPRESS_H

#include "core/buf.h"
#include "core/common.h"
#include "http/parser.h"

/* Bodies of at most this many bytes are sent as they are: the gain is lost in the headers. */
#define HTTP_COMPRESS_MIN 1024

/* Suggested levels for dynamic responses: cheap enough per request, most of the gain. */
#define HTTP_COMPRESS_GZIP_LEVEL_DEFAULT     6
#define HTTP_COMPRESS_BROTLI_QUALITY_DEFAULT 4

/* The outcome of negotiation; values other than GZIP and BR mean "send the body as it is". */
typedef enum {
    HTTP_ENCODING_IDENTITY = 0,
    HTTP_ENCODING_GZIP,
    HTTP_ENCODING_BR,
    /*
     * No content coding we offer is acceptable and neither is identity ("identity;q=0" or
     * "*;q=0" without an identity entry). The caller may answer 406; sending the body
     * uncompressed instead is allowed too and is what most servers do (http_compress treats
     * this value like identity and returns false).
     */
    HTTP_ENCODING_NOT_ACCEPTABLE,
} http_encoding_t;

/*
 * Picks the response coding for an Accept-Encoding field value (empty when the header is
 * absent or empty: both give IDENTITY). Highest q wins; br beats gzip at equal q (br only with
 * HAVE_BROTLI); a coding beats identity at equal q; an unlisted identity is acceptable but
 * least preferred. Tokens are case-insensitive, "x-gzip" is gzip, "*" stands for every coding
 * not listed, q=0 refuses. A malformed element (bad token, q outside the RFC grammar such as
 * "q=abc" or "q=1.5", junk after it) is ignored as if absent: that can only move the choice
 * towards identity, never send a coding the client did not clearly accept. When a coding is
 * listed twice (also gzip and x-gzip) the lower q counts, so a refusal is never overridden.
 * No allocation; one pass over the bytes.
 */
http_encoding_t http_negotiate_encoding(http_str_t accept_encoding);

/* The Content-Encoding token for GZIP and BR ("gzip", "br"); NULL for the other values. */
const char *http_encoding_name(http_encoding_t enc);

/* A per-thread compressor (not thread-safe: one per reactor thread). */
typedef struct http_compressor http_compressor_t;

/*
 * gzip_level is libdeflate's 1-12, brotli_quality brotli's 0-11; out-of-range values are
 * clamped. Aborts on allocation failure.
 */
http_compressor_t *http_compressor_new(int gzip_level, int brotli_quality);

/* Frees the compressor (NULL is ignored). */
void http_compressor_free(http_compressor_t *c);

/*
 * Appends in[0..n) compressed with enc (GZIP or BR) to out and returns true, only when the
 * result is strictly smaller than n. Otherwise returns false and out's length and bytes are
 * unchanged (its capacity may have grown by up to n bytes): identity, NOT_ACCEPTABLE, BR in a
 * build without brotli, incompressible or tiny input, an encoder error.
 */
bool http_compress(http_compressor_t *c, http_encoding_t enc, const void *in, size_t n, buf_t *out);

/*
 * Whether a response of this Content-Type (parameters such as "; charset=utf-8" allowed, case
 * ignored) is worth compressing: any text/ type except text/event-stream (a stream must not be
 * buffered), application/json and any application/...+json (problem+json,
 * graphql-response+json), application/xml and ...+xml, application/javascript. Not images,
 * octet-stream or anything else already compressed. NULL is false.
 */
bool http_compressible_type(const char *content_type);

#endif
