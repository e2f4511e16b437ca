/*
 * JSON writer. Why our own: responses are written straight into the send buffer as the
 * handler walks its rows, with no intermediate tree and no second copy, and string escaping
 * is a table lookup per byte with runs of safe bytes copied by memcpy. Output is always
 * valid UTF-8 (RFC 8259): invalid input bytes become U+FFFD.
 *
 * Two layers: json_* value functions append one token to a buf_t; json_writer_t adds the
 * commas between members and elements so handlers cannot get them wrong.
 */
#ifndef CRMD_CORE_JSON_H
#define CRMD_CORE_JSON_H

#include "core/buf.h"
#include "core/common.h"

/* ---- values into a buf_t ---- */

/* Writes s[0..n) as a quoted, escaped JSON string. */
void json_str(buf_t *b, const char *s, size_t n);

/* Writes a signed integer. */
void json_i64(buf_t *b, int64_t v);

/* Writes an unsigned integer. */
void json_u64(buf_t *b, uint64_t v);

/*
 * Writes v rounded to at most max_decimals (0..9) digits after the point, trailing zeros
 * dropped (1234.5, 1234.56, 1200), with no exponent below 2^63 (decimals a double cannot
 * hold at that magnitude are dropped). A negative max_decimals writes the shortest form that
 * reads back as v (%g style). NaN and infinities write null.
 */
void json_double(buf_t *b, double v, int max_decimals);

/* Writes true or false. */
void json_bool(buf_t *b, bool v);

/* Writes null. */
void json_null(buf_t *b);

/* Writes `"name":` for a string literal that needs no escaping; length known at compile time. */
#define json_key(b, lit) buf_append((b), "\"" lit "\":", sizeof(lit) + 2)

/* Writes `"name":` for any key, escaped. */
void json_key_str(buf_t *b, const char *s, size_t n);

/* A literal key, quoted with its colon, as the (pointer, length) pair json_w_key wants. */
#define JSON_K(lit) "\"" lit "\":", (sizeof(lit) + 2)

/* ---- a writer that places the commas ---- */

/* Most containers the writer keeps open at once (one comma bit per level, top level included). */
#define JSON_MAX_DEPTH 63

/* Comma state over a buf_t: bit d of need_comma_bits is set once depth d holds a value. */
typedef struct json_writer {
    buf_t *b;
    uint32_t depth;
    uint64_t need_comma_bits;
} json_writer_t;

/* Starts writing one JSON value into b. */
void json_writer_init(json_writer_t *w, buf_t *b);

/* Opens an object as the next value. Aborts past JSON_MAX_DEPTH (callers bound nesting). */
void json_obj_begin(json_writer_t *w);

/* Closes the innermost object. */
void json_obj_end(json_writer_t *w);

/* Opens an array as the next value. Aborts past JSON_MAX_DEPTH (callers bound nesting). */
void json_arr_begin(json_writer_t *w);

/* Closes the innermost array. */
void json_arr_end(json_writer_t *w);

/* Writes a member name from JSON_K("name"): a pre-quoted key with its colon. */
void json_w_key(json_writer_t *w, const char *quoted_key, size_t n);

/* Writes a member name from any string, escaped. */
void json_w_key_str(json_writer_t *w, const char *s, size_t n);

/* Writes a string as the next value. */
void json_w_str(json_writer_t *w, const char *s, size_t n);

/* Writes a signed integer as the next value. */
void json_w_i64(json_writer_t *w, int64_t v);

/* Writes an unsigned integer as the next value. */
void json_w_u64(json_writer_t *w, uint64_t v);

/* Writes a number as the next value, as json_double does. */
void json_w_double(json_writer_t *w, double v, int max_decimals);

/* Writes true or false as the next value. */
void json_w_bool(json_writer_t *w, bool v);

/* Writes null as the next value. */
void json_w_null(json_writer_t *w);

/* Writes an already-encoded JSON value (a cached fragment) as the next value. */
void json_w_raw(json_writer_t *w, const char *json, size_t n);

/* Writes a member with a string value; the key is JSON_K("name"). */
void json_kv_str(json_writer_t *w, const char *quoted_key, size_t kn, const char *s, size_t n);

/* Writes a member with a signed integer value: json_kv_i64(&w, JSON_K("id"), 42). */
void json_kv_i64(json_writer_t *w, const char *quoted_key, size_t kn, int64_t v);

/* Writes a member with an unsigned integer value. */
void json_kv_u64(json_writer_t *w, const char *quoted_key, size_t kn, uint64_t v);

/* Writes a member with a number value, as json_double does. */
void json_kv_double(json_writer_t *w, const char *quoted_key, size_t kn, double v, int max_decimals);

/* Writes a member with a true or false value. */
void json_kv_bool(json_writer_t *w, const char *quoted_key, size_t kn, bool v);

/* Writes a member with a null value. */
void json_kv_null(json_writer_t *w, const char *quoted_key, size_t kn);

#endif
