/*
 * Helpers every API handler uses: PostgreSQL text values to JSON (RFC 3339 timestamps, money,
 * rows by a column table), typed query parameters with exact validation and 400 problems that
 * name the parameter, and the mapping of a failed database batch to a response.
 */
#ifndef CRMD_API_COMMON_H
#define CRMD_API_COMMON_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/json_read.h"
#include "db/db.h"
#include "http/server.h"

/* ---- PostgreSQL text to JSON ---- */

/* Bytes of an RFC 3339 timestamp "YYYY-MM-DDTHH:MM:SSZ" (without NUL). */
#define API_TS_LEN 20

/*
 * Converts PostgreSQL timestamptz text in UTC ("2026-01-17 10:30:00.123456+00", as printed under
 * TimeZone=UTC, DateStyle=ISO) to "2026-01-17T10:30:00Z" (fractions dropped) in out. Returns
 * false when the text has another shape (infinity, a non-UTC offset, a year past 9999).
 */
bool api_ts_rfc3339(const char *pg, size_t n, char out[API_TS_LEN]);

/* Writes a money value from numeric text ("1234.50" -> 1234.5, "1200.00" -> 1200) as a JSON
 * number with at most 2 decimals (more are rounded); null for text that is not a number. */
void api_json_money(buf_t *b, const char *pg, size_t n);

/* The kind of a column in a column table: how its PostgreSQL text becomes JSON. */
enum api_col_kind {
    COL_INT = 0,   /* int8/int4/int2: a JSON number, as printed */
    COL_MONEY,     /* numeric: api_json_money */
    COL_TEXT,      /* a JSON string */
    COL_TIMESTAMP, /* timestamptz: RFC 3339 UTC string */
    COL_DATE,      /* date: "YYYY-MM-DD" string, as printed */
    COL_BOOL,      /* bool ("t"/"f"): true/false */
    COL_SKIP,      /* selected but not written (a sort key) */
};

/* A column of a result: its JSON key (JSON_K("name")) and kind. SQL NULL always writes null;
 * nullable documents which columns may be NULL. */
typedef struct api_col {
    const char *key; /* pre-quoted with its colon, from JSON_K */
    size_t key_len;
    uint8_t kind; /* enum api_col_kind */
    bool nullable;
} api_col_t;

/* Column table entries: API_COL("name", COL_TEXT, false). */
#define API_COL(name, kind, nullable)                                                                        \
    {                                                                                                        \
        JSON_K(name), (kind), (nullable)                                                                     \
    }

/* Writes one value of result r (row, col) as JSON by kind. */
void api_json_value(json_writer_t *w, const PGresult *r, int row, int col, uint8_t kind);

/* Writes ncols members of row from result columns first_col.. as cols describes (no braces). */
void api_json_cols(json_writer_t *w, const PGresult *r, int row, int first_col, const api_col_t *cols,
                   size_t ncols);

/* ---- query parameters ---- */

enum api_param_kind {
    PARAM_ID = 0,  /* int64 > 0 */
    PARAM_LIMIT,   /* 1..200 */
    PARAM_DATE,    /* YYYY-MM-DD, a real calendar date */
    PARAM_TIME,    /* a date (midnight UTC) or an RFC 3339 timestamp */
    PARAM_DECIMAL, /* [-]digits[.digits], at most 15 + 6 digits; normalized (no trailing zeros) */
    PARAM_ENUM,    /* one of enums */
    PARAM_BOOL,    /* true or false */
    PARAM_TEXT,    /* any text of 1..max_len bytes (after decoding), no control bytes */
    PARAM_CURSOR,  /* a cursor token: base64url alphabet, bounded length */
    PARAM_SORT,    /* [-]field: validated by the caller against its sort table */
};

/* One accepted query parameter. */
typedef struct api_param {
    const char *name;         /* as sent: "ownerId" */
    uint8_t kind;             /* enum api_param_kind */
    uint16_t max_len;         /* PARAM_TEXT: longest value (0: 200) */
    const char *const *enums; /* PARAM_ENUM: NULL-terminated list */
} api_param_t;

/* The value of one parameter after api_query_parse. */
typedef struct api_value {
    bool present;
    bool b;        /* PARAM_BOOL */
    int64_t i;     /* PARAM_ID, PARAM_LIMIT */
    const char *s; /* canonical text (NUL-terminated, in the request arena): what goes to SQL */
    size_t n;
} api_value_t;

#define API_MAX_ERRORS 16

/* Field errors collected for one problem response. */
typedef struct api_errors {
    int n;
    struct {
        const char *field; /* need not be NUL-terminated */
        size_t field_len;
        const char *message;
    } e[API_MAX_ERRORS];
} api_errors_t;

/* Adds an error (dropped past API_MAX_ERRORS). */
void api_errors_add(api_errors_t *errs, const char *field, size_t field_len, const char *message);

/*
 * Validates one raw value (already percent-decoded) against p; on success fills v (copying
 * into arena) and returns NULL, else returns the message for errors[] ("must be 1..200").
 */
const char *api_param_check(arena_t *arena, const api_param_t *p, const char *s, size_t n, api_value_t *v);

/*
 * Parses a raw query string against spec: values[i] gets spec[i]'s value. Unknown parameters,
 * repeated parameters, bad encodings and bad values are added to errs. "refresh" (the cache
 * bypass of API.md) is always accepted; *refresh is set when given as true (may be NULL).
 * Returns true when errs stayed empty.
 */
bool api_query_parse(arena_t *arena, http_str_t query, const api_param_t *spec, size_t nspec,
                     api_value_t *values, bool *refresh, api_errors_t *errs);

/* Parses a positive int64 in decimal (digits only); false otherwise. */
bool api_parse_id(const char *s, size_t n, int64_t *out);

/* ---- request bodies ---- */

/* True when the Content-Type ct is the media type lower (parameters after ';' allowed). */
bool api_media_type_is(http_str_t ct, const char *lower);

/* The request body parsed as JSON, sent as application/json (or as also_type, when given: it
 * is then offered in Accept-Patch on a 415). Answers 415 (wrong type) or 400 (malformed, with
 * line and column) and returns NULL when the body cannot be used. */
const json_value_t *api_json_body(http_ctx_t *ctx, const char *also_type);

/*
 * The request's Idempotency-Key (1..255 visible ASCII characters), scoped to the user who sent
 * it ("<user_id>:<key>", in the arena): two users of one organization may pick the same key
 * without one getting the other's replay. NULL when absent; "" after answering 400.
 */
const char *api_idempotency_key(http_ctx_t *ctx, const char *user_id_s);

/* ---- responses ---- */

/* Empties the response body and starts {"data": in it; the caller writes the value and closes
 * the outer object with json_obj_end. */
void api_json_begin_data(http_ctx_t *ctx, json_writer_t *w);

/* Answers a problem (application/problem+json) with errors[] when errs has any. */
void api_respond_problem(http_ctx_t *ctx, int status, const char *code, const char *detail,
                         const api_errors_t *errs);

/* Answers 400 invalid-parameter with the collected field errors. */
void api_respond_bad_params(http_ctx_t *ctx, const api_errors_t *errs);

/*
 * Answers a failed batch: DB_UNAVAILABLE 503 service-unavailable (Retry-After: 2), DB_TIMEOUT
 * 504 timeout, SQL errors 23505 409, other class 23 422, class 22 400 (422 for a write, whose body
 * it came from), else 500
 * internal. The SQL error and SQLSTATE go to the log with the request id, never to the client.
 * Releases the batch.
 */
void api_respond_db_error(http_ctx_t *ctx, db_batch_t *b);

/* The HTTP status api_respond_db_error answers for a batch outcome (for tests). */
int api_db_error_status(int db_status, const char *sqlstate, const char **code);

/* Adds the batch's `db;dur=..;desc="N queries"` entry to Server-Timing. */
void api_timing_db(http_ctx_t *ctx, const db_batch_t *b);

#endif
