/*
 * Keyset pagination cursors. A cursor is a position in one listing (sort value + row id, or
 * relevance + id under q) and the direction to page from it, sealed with XChaCha20-Poly1305
 * under a key derived from PAGINATION_KEY, so a client can neither read nor forge one. It also
 * carries a hash binding it to the organization, resource, filters, sort and q that made it:
 * a cursor replayed under another organization, filter or sort fails to open.
 *
 * The seal/open functions are pure (they take the key), so unit tests drive them directly.
 * Cursor plaintext is never logged.
 */
#ifndef CRMD_API_CURSOR_H
#define CRMD_API_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#define CURSOR_KEY_BYTES 32
/* Longest text sort value a cursor carries (bytes per part). */
#define CURSOR_TEXT_MAX 1024
/* Room for any token (base64 of nonce, plaintext and tag) including its NUL. */
#define CURSOR_TOKEN_MAX 2900

typedef struct cursor_key {
    uint8_t k[CURSOR_KEY_BYTES];
} cursor_key_t;

/* Paging direction from the cursor's position. */
enum cursor_dir {
    CURSOR_NEXT = 0, /* rows after the position, in listing order */
    CURSOR_PREV = 1, /* rows before the position */
};

/* Type of the sort value. */
enum cursor_kind {
    CURSOR_NULL = 0,  /* a NULL sort value (sorts after every value, as PostgreSQL's default) */
    CURSOR_INT,       /* int64 (stage position) */
    CURSOR_NUMERIC,   /* numeric as PostgreSQL prints it ("1234.50") */
    CURSOR_TIMESTAMP, /* timestamptz or date as PostgreSQL prints it, full precision */
    CURSOR_TEXT,      /* text (s); with s2 set, a second text key (contacts: last, first name) */
    CURSOR_FLOAT,     /* ts_rank relevance (float4) */
};

typedef struct cursor {
    uint8_t dir;   /* enum cursor_dir */
    uint8_t kind;  /* enum cursor_kind */
    int64_t i;     /* CURSOR_INT */
    float f;       /* CURSOR_FLOAT */
    const char *s; /* NUMERIC, TIMESTAMP, TEXT: the value text (not NUL-terminated by seal) */
    size_t n;
    const char *s2; /* TEXT: optional second key, NULL when none */
    size_t n2;
    int64_t id;       /* the row id, the tie breaker */
    uint64_t binding; /* cursor_binding() of the listing */
} cursor_t;

/* Derives a key from a secret text (BLAKE2b of the text). */
void cursor_key_derive(cursor_key_t *key, const char *secret, size_t n);

/* A random key. */
void cursor_key_random(cursor_key_t *key);

/* The process key: derived from g_config.pagination_key, or random per process (with one
 * warning log line) when it is unset. Safe from any thread. */
const cursor_key_t *cursor_process_key(void);

/*
 * The 64-bit binding of a listing: organization, resource name, its normalized filters (a
 * canonical text the caller builds, e.g. "ownerId=7\nstatus=open\n"), sort ("-created_at",
 * "relevance") and q (NULL or empty for none).
 */
uint64_t cursor_binding(int64_t org_id, const char *resource, const char *filters, size_t filters_len,
                        const char *sort, const char *q, size_t q_len);

/* Seals c into a URL-safe base64 token (no padding) in out (NUL-terminated). Returns its
 * length, or 0 when a text value is longer than CURSOR_TEXT_MAX or out is too small. */
size_t cursor_seal(const cursor_key_t *key, const cursor_t *c, char *out, size_t cap);

/*
 * Opens token[0..n): decodes, verifies the tag and then that the binding equals binding.
 * Text values are copied to scratch (NUL-terminated) and c's pointers point there; scratch
 * needs at least n bytes. Returns false for anything malformed, tampered, truncated, sealed
 * under another key or bound to another listing.
 */
bool cursor_open(const cursor_key_t *key, const char *token, size_t n, uint64_t binding, cursor_t *c,
                 char *scratch, size_t scratch_cap);

/* Seals (with the process key) the cursor at row of a listing's result r: the row id at id_col,
 * the sort value at key_col and, when two, its second key after it (NULL: CURSOR_NULL); kind is
 * the sort's enum cursor_kind, CURSOR_FLOAT for relevance. False when it does not fit out. */
bool cursor_seal_row(const PGresult *r, int row, int id_col, int key_col, uint8_t kind, bool two, uint8_t dir,
                     uint64_t binding, char *out, size_t cap);

#endif
