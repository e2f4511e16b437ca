/*
 * Crypto helpers: the only module that calls libsodium. SHA-256 (API keys, idempotency
 * request hashes), BLAKE2b (keys derived from secrets, cursor bindings), XChaCha20-Poly1305
 * sealing (cursors), URL-safe base64, hex, random bytes and wiping.
 */
#ifndef CRMD_CORE_CRYPTO_H
#define CRMD_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEC_SHA256_BYTES 32
#define SEC_KEY_BYTES    32
#define SEC_SEAL_EXTRA   (24 + 16) /* nonce in front, tag behind */
/* "\x" and 64 hex digits: a SHA-256 as PostgreSQL's bytea text input */
#define SEC_SHA256_PG_LEN (2 + 2 * SEC_SHA256_BYTES)

/* Initialises libsodium (dies if it cannot); every function below calls it once itself. */
void sec_init(void);

void sec_sha256(uint8_t out[SEC_SHA256_BYTES], const void *p, size_t n);

/* A SHA-256 over several parts. */
typedef struct sec_sha256_ctx {
    _Alignas(16) unsigned char opaque[128];
} sec_sha256_ctx_t;
void sec_sha256_init(sec_sha256_ctx_t *c);
void sec_sha256_update(sec_sha256_ctx_t *c, const void *p, size_t n);
void sec_sha256_final(sec_sha256_ctx_t *c, uint8_t out[SEC_SHA256_BYTES]);

/* Writes "\x<hex of the SHA-256 of p>" and its NUL to out (SEC_SHA256_PG_LEN + 1 bytes). */
void sec_sha256_pg(char *out, const void *p, size_t n);

/* A BLAKE2b hash of outlen bytes (1..64) over several parts; no key. */
typedef struct sec_hash_ctx {
    _Alignas(64) unsigned char opaque[384];
    size_t outlen;
} sec_hash_ctx_t;
void sec_hash_init(sec_hash_ctx_t *c, size_t outlen);
void sec_hash_update(sec_hash_ctx_t *c, const void *p, size_t n);
void sec_hash_final(sec_hash_ctx_t *c, uint8_t *out);

/* A key from a secret of any length (BLAKE2b-256). */
void sec_key_derive(uint8_t key[SEC_KEY_BYTES], const void *secret, size_t n);

/* n random bytes. */
void sec_random(void *out, size_t n);
/* Zeroes p so the compiler cannot skip it. */
void sec_wipe(void *p, size_t n);

/* Lowercase hex of bin into out (2 n + 1 bytes, NUL-terminated). */
void sec_hex(char *out, const void *bin, size_t n);

/* Seals plain (n bytes) under key with associated data ad: out gets n + SEC_SEAL_EXTRA bytes
 * (a random nonce, the ciphertext, the tag). */
void sec_seal(uint8_t *out, const uint8_t *plain, size_t n, const void *ad, size_t adlen,
              const uint8_t key[SEC_KEY_BYTES]);
/* Opens what sec_seal made (n bytes) into plain (n - SEC_SEAL_EXTRA bytes); false when it was
 * altered or sealed under another key or ad. */
bool sec_open(uint8_t *plain, const uint8_t *sealed, size_t n, const void *ad, size_t adlen,
              const uint8_t key[SEC_KEY_BYTES]);

/* URL-safe base64 without padding. Encoded length of n bytes (with the NUL). */
size_t sec_b64url_len(size_t n);
/* Writes the text and its NUL; returns its length, or 0 when cap is too small. */
size_t sec_b64url_encode(char *out, size_t cap, const void *bin, size_t n);
/* Decodes s[0..n) into bin; the byte count, or -1 when s is not URL-safe base64, does not
 * fit, or is not the canonical spelling of its bytes (no two texts decode alike). */
long sec_b64url_decode(void *bin, size_t cap, const char *s, size_t n);

#endif
