/*
 * Cursor tokens: base64url(nonce[24] || XChaCha20-Poly1305(plaintext, ad = "crmd-cursor")).
 *
 * Plaintext, little-endian:
 *   u8 version (1) | u8 dir | u8 kind | u64 binding | i64 id | value
 * where value is nothing for NULL, 8 bytes for INT, 4 for FLOAT, and for NUMERIC/TIMESTAMP
 * u16 length + bytes; TEXT adds a second u16 length + bytes (0xffff: no second key). Opening
 * requires every byte to be accounted for, so a truncated or padded plaintext never parses.
 */
#include "api/cursor.h"
#include "core/crypto.h"
#include "core/common.h"
#include "core/config.h"
#include "core/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_VERSION 1
#define NO_SECOND      0xffffu
#define HEAD_BYTES     19
#define PLAIN_MAX      (HEAD_BYTES + 4 + 2 * CURSOR_TEXT_MAX)
#define SEALED_MAX     (PLAIN_MAX + SEC_SEAL_EXTRA)

static const unsigned char cursor_ad[] = "crmd-cursor";

_Static_assert(CURSOR_TOKEN_MAX > (SEALED_MAX + 2) / 3 * 4, "CURSOR_TOKEN_MAX too small");

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static unsigned get_u16(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

void cursor_key_derive(cursor_key_t *key, const char *secret, size_t n)
{
    sec_key_derive(key->k, secret, n);
}

void cursor_key_random(cursor_key_t *key)
{
    sec_random(key->k, sizeof(key->k));
}

static cursor_key_t process_key;
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void process_key_init(void)
{
    const char *s = g_config.pagination_key;
    if (s && *s) {
        cursor_key_derive(&process_key, s, strlen(s));
    } else {
        cursor_key_random(&process_key);
        log_warn("PAGINATION_KEY is not set: cursors use a random per-process key and stop working "
                 "across restarts and instances");
    }
}

const cursor_key_t *cursor_process_key(void)
{
    pthread_once(&process_key_once, process_key_init);
    return &process_key;
}

/* Feeds one field with its length in front, so no two field lists hash alike. */
static void hash_field(sec_hash_ctx_t *st, const void *p, size_t n)
{
    unsigned char len[8];
    put_u64(len, (uint64_t)n);
    sec_hash_update(st, len, sizeof(len));
    if (n)
        sec_hash_update(st, p, n);
}

uint64_t cursor_binding(int64_t org_id, const char *resource, const char *filters, size_t filters_len,
                        const char *sort, const char *q, size_t q_len)
{
    sec_hash_ctx_t st;
    unsigned char org[8], out[8];
    sec_hash_init(&st, sizeof(out));
    put_u64(org, (uint64_t)org_id);
    hash_field(&st, org, sizeof(org));
    hash_field(&st, resource, strlen(resource));
    hash_field(&st, filters, filters_len);
    hash_field(&st, sort, strlen(sort));
    hash_field(&st, q, q ? q_len : 0);
    sec_hash_final(&st, out);
    return get_u64(out);
}

/* Serializes c; returns the plaintext length, or 0 when it does not fit. */
static size_t encode_plain(const cursor_t *c, unsigned char *p)
{
    size_t o = HEAD_BYTES;
    p[0] = CURSOR_VERSION;
    p[1] = c->dir;
    p[2] = c->kind;
    put_u64(p + 3, c->binding);
    put_u64(p + 11, (uint64_t)c->id);
    switch (c->kind) {
    case CURSOR_NULL:
        break;
    case CURSOR_INT:
        put_u64(p + o, (uint64_t)c->i);
        o += 8;
        break;
    case CURSOR_FLOAT: {
        uint32_t bits;
        memcpy(&bits, &c->f, sizeof(bits));
        for (int i = 0; i < 4; i++)
            p[o++] = (unsigned char)(bits >> (8 * i));
        break;
    }
    case CURSOR_NUMERIC:
    case CURSOR_TIMESTAMP:
    case CURSOR_TEXT:
        if (c->n > CURSOR_TEXT_MAX)
            return 0;
        put_u16(p + o, (unsigned)c->n);
        memcpy(p + o + 2, c->s, c->n);
        o += 2 + c->n;
        if (c->kind != CURSOR_TEXT)
            break;
        if (!c->s2) {
            put_u16(p + o, NO_SECOND);
            o += 2;
            break;
        }
        if (c->n2 > CURSOR_TEXT_MAX)
            return 0;
        put_u16(p + o, (unsigned)c->n2);
        memcpy(p + o + 2, c->s2, c->n2);
        o += 2 + c->n2;
        break;
    default:
        return 0;
    }
    return o;
}

size_t cursor_seal(const cursor_key_t *key, const cursor_t *c, char *out, size_t cap)
{
    unsigned char plain[PLAIN_MAX], sealed[SEALED_MAX];
    size_t n = encode_plain(c, plain);
    if (!n)
        return 0;
    sec_seal(sealed, plain, n, cursor_ad, sizeof(cursor_ad) - 1, key->k);
    sec_wipe(plain, sizeof(plain));
    return sec_b64url_encode(out, cap, sealed, n + SEC_SEAL_EXTRA);
}

/* Reads a u16-prefixed text at *o into scratch; false when it does not fit the plaintext. */
static bool take_text(const unsigned char *p, size_t n, size_t *o, char **scratch, const char **s,
                      size_t *len)
{
    if (n - *o < 2)
        return false;
    size_t l = get_u16(p + *o);
    *o += 2;
    if (l > CURSOR_TEXT_MAX || n - *o < l)
        return false;
    memcpy(*scratch, p + *o, l);
    (*scratch)[l] = '\0';
    *s = *scratch;
    *len = l;
    *scratch += l + 1;
    *o += l;
    return true;
}

static bool decode_plain(const unsigned char *p, size_t n, cursor_t *c, char *scratch)
{
    if (n < HEAD_BYTES || p[0] != CURSOR_VERSION || p[1] > CURSOR_PREV)
        return false;
    memset(c, 0, sizeof(*c));
    c->dir = p[1];
    c->kind = p[2];
    c->binding = get_u64(p + 3);
    c->id = (int64_t)get_u64(p + 11);
    size_t o = HEAD_BYTES;
    switch (c->kind) {
    case CURSOR_NULL:
        break;
    case CURSOR_INT:
        if (n - o < 8)
            return false;
        c->i = (int64_t)get_u64(p + o);
        o += 8;
        break;
    case CURSOR_FLOAT: {
        if (n - o < 4)
            return false;
        uint32_t bits =
            (uint32_t)p[o] | (uint32_t)p[o + 1] << 8 | (uint32_t)p[o + 2] << 16 | (uint32_t)p[o + 3] << 24;
        memcpy(&c->f, &bits, sizeof(bits));
        o += 4;
        break;
    }
    case CURSOR_NUMERIC:
    case CURSOR_TIMESTAMP:
    case CURSOR_TEXT:
        if (!take_text(p, n, &o, &scratch, &c->s, &c->n))
            return false;
        if (c->kind != CURSOR_TEXT)
            break;
        if (n - o < 2)
            return false;
        if (get_u16(p + o) == NO_SECOND) {
            o += 2;
            break;
        }
        if (!take_text(p, n, &o, &scratch, &c->s2, &c->n2))
            return false;
        break;
    default:
        return false;
    }
    return o == n;
}

bool cursor_open(const cursor_key_t *key, const char *token, size_t n, uint64_t binding, cursor_t *c,
                 char *scratch, size_t scratch_cap)
{
    unsigned char sealed[SEALED_MAX], plain[PLAIN_MAX];
    if (n == 0 || n >= CURSOR_TOKEN_MAX || scratch_cap < n)
        return false;
    /* only the canonical spelling of the bytes opens: no two tokens give the same cursor */
    long len = sec_b64url_decode(sealed, sizeof(sealed), token, n);
    if (len < (long)(SEC_SEAL_EXTRA + HEAD_BYTES))
        return false;
    if (!sec_open(plain, sealed, (size_t)len, cursor_ad, sizeof(cursor_ad) - 1, key->k))
        return false;
    bool ok = decode_plain(plain, (size_t)len - SEC_SEAL_EXTRA, c, scratch) && c->binding == binding;
    sec_wipe(plain, sizeof(plain));
    return ok;
}

bool cursor_seal_row(const PGresult *r, int row, int id_col, int key_col, uint8_t kind, bool two, uint8_t dir,
                     uint64_t binding, char *out, size_t cap)
{
    cursor_t c = {.dir = dir, .binding = binding};
    c.id = strtoll(PQgetvalue(r, row, id_col), NULL, 10);
    const char *v = PQgetvalue(r, row, key_col);
    if (PQgetisnull(r, row, key_col)) {
        c.kind = CURSOR_NULL;
    } else if (kind == CURSOR_FLOAT) {
        c.kind = CURSOR_FLOAT;
        c.f = strtof(v, NULL);
    } else {
        c.kind = kind;
        if (kind == CURSOR_INT) {
            c.i = strtoll(v, NULL, 10);
        } else {
            c.s = v;
            c.n = (size_t)PQgetlength(r, row, key_col);
            if (two) {
                c.s2 = PQgetvalue(r, row, key_col + 1);
                c.n2 = (size_t)PQgetlength(r, row, key_col + 1);
            }
        }
    }
    return cursor_seal(cursor_process_key(), &c, out, cap) > 0;
}
