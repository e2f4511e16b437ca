/*
 * Strict JSON reader for request bodies (RFC 8259), parsing into a compact tree in the
 * request's arena_t, freed with the arena in one call.
 *
 * Why our own rather than Debian's jansson or json-c: those accept duplicate keys and/or lone
 * UTF-16 surrogates, and allocate every node with malloc. Duplicate keys let two layers (a
 * proxy, a validator, this server) disagree on what a body says, and a lone surrogate cannot
 * be stored as UTF-8 at all; so we refuse both, with invalid UTF-8 anywhere (overlong forms,
 * encoded surrogates, above U+10FFFF, truncated), control characters in strings, numbers
 * outside the RFC grammar ("01", "+1", ".5", "1.", "1e"), nesting deeper than
 * JSON_READ_MAX_DEPTH, anything but whitespace after the value, empty input, a byte order
 * mark, NaN/Infinity, single quotes, comments and trailing commas. Every refusal carries a
 * byte offset, line, column and a short message. No dependency, no per-node malloc.
 *
 * Numbers keep their text; json_get_i64 and json_get_double convert on demand and fail on
 * what does not fit, so a huge exponent parses but does not silently become infinity.
 *
 * Cost: parsing is linear in the input, except that objects of more than 8 members are
 * checked for duplicate keys by sorting (O(k log k) key comparisons); the sorted index is kept
 * so json_object_get on them is a binary search. Recursion is bounded by the depth limit.
 */
#ifndef CRMD_CORE_JSON_READ_H
#define CRMD_CORE_JSON_READ_H

#include "core/buf.h"
#include "core/common.h"

/* Deepest nesting of arrays and objects accepted ([[1]] is depth 2). */
#define JSON_READ_MAX_DEPTH 64

/* The kind of a parsed value. */
typedef enum {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type_t;

/* A parsed value, in the arena given to json_parse; opaque, read through the accessors. */
typedef struct json_value json_value_t;

/* Why and where a parse failed. */
typedef struct json_error {
    size_t offset;       /* byte offset of the offending byte in the input */
    size_t line;         /* 1-based line of offset (lines end at \n) */
    size_t column;       /* 1-based byte column of offset within its line */
    const char *message; /* short static text, e.g. "duplicate key" */
} json_error_t;

/*
 * Parses text[0..len) as one JSON value into arena a. Returns the root, or NULL with *err
 * filled in (err may be NULL). On failure the arena may hold partial allocations.
 */
json_value_t *json_parse(arena_t *a, const char *text, size_t len, json_error_t *err);

/*
 * Accessors. Except json_type, each takes NULL or a value of another type and then returns
 * NULL, 0 or false, so lookups chain: json_object_get(json_object_get(v, "a"), "b").
 */

/* The type of v (v not NULL). */
json_type_t json_type(const json_value_t *v);

/* A string's decoded UTF-8 (NUL-terminated; may hold \u0000 NULs) and its length in *len. */
const char *json_string(const json_value_t *v, size_t *len);

/* A number's text exactly as in the input (NUL-terminated), and its length in *len (may be NULL). */
const char *json_number_text(const json_value_t *v, size_t *len);

/* Reads an integer number into *out; false if v has a fraction or exponent or overflows int64. */
bool json_get_i64(const json_value_t *v, int64_t *out);

/* Reads a number as the nearest double; false when it overflows to infinity (underflow gives 0). */
bool json_get_double(const json_value_t *v, double *out);

/* The number of elements of an array. */
size_t json_array_len(const json_value_t *v);

/* Element i of an array, or NULL past the end. */
const json_value_t *json_array_at(const json_value_t *v, size_t i);

/* The number of members of an object. */
size_t json_object_len(const json_value_t *v);

/* The value of member key (a C string), or NULL when absent. */
const json_value_t *json_object_get(const json_value_t *v, const char *key);

/* The value of member key[0..klen) (a key may hold NULs), or NULL when absent. */
const json_value_t *json_object_getn(const json_value_t *v, const char *key, size_t klen);

/* The decoded key of member i, in document order (NUL-terminated), its length in *klen; NULL past the end. */
const char *json_object_key_at(const json_value_t *v, size_t i, size_t *klen);

/* The value of member i, in document order, or NULL past the end. */
const json_value_t *json_object_value_at(const json_value_t *v, size_t i);

/* Appends v as compact JSON (strings re-escaped by core/json.h), e.g. to forward a parsed
 * body. */
void json_value_write(buf_t *b, const json_value_t *v);

#endif
