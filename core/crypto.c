/* Crypto helpers over libsodium (see crypto.h). */
#include "core/crypto.h"
#include "core/common.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(((sec_sha256_ctx_t *)0)->opaque) >= sizeof(crypto_hash_sha256_state), "sha256 state");
_Static_assert(sizeof(((sec_hash_ctx_t *)0)->opaque) >= sizeof(crypto_generichash_state), "blake2b state");
_Static_assert(SEC_SEAL_EXTRA ==
                   crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "seal overhead");
_Static_assert(SEC_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(SEC_SHA256_BYTES == crypto_hash_sha256_BYTES, "sha256 size");

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define B64   sodium_base64_VARIANT_URLSAFE_NO_PADDING

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    if (sodium_init() < 0)
        die("libsodium failed to initialize");
}

void sec_init(void)
{
    pthread_once(&once, init_once);
}

void sec_sha256(uint8_t out[SEC_SHA256_BYTES], const void *p, size_t n)
{
    crypto_hash_sha256(out, p, n);
}

void sec_sha256_init(sec_sha256_ctx_t *c)
{
    crypto_hash_sha256_init((crypto_hash_sha256_state *)c->opaque);
}

void sec_sha256_update(sec_sha256_ctx_t *c, const void *p, size_t n)
{
    crypto_hash_sha256_update((crypto_hash_sha256_state *)c->opaque, p, n);
}

void sec_sha256_final(sec_sha256_ctx_t *c, uint8_t out[SEC_SHA256_BYTES])
{
    crypto_hash_sha256_final((crypto_hash_sha256_state *)c->opaque, out);
}

void sec_sha256_pg(char *out, const void *p, size_t n)
{
    uint8_t d[SEC_SHA256_BYTES];
    sec_sha256(d, p, n);
    out[0] = '\\', out[1] = 'x';
    sec_hex(out + 2, d, sizeof(d));
}

void sec_hash_init(sec_hash_ctx_t *c, size_t outlen)
{
    c->outlen = outlen;
    crypto_generichash_init((crypto_generichash_state *)c->opaque, NULL, 0, outlen);
}

void sec_hash_update(sec_hash_ctx_t *c, const void *p, size_t n)
{
    crypto_generichash_update((crypto_generichash_state *)c->opaque, p, n);
}

void sec_hash_final(sec_hash_ctx_t *c, uint8_t *out)
{
    crypto_generichash_final((crypto_generichash_state *)c->opaque, out, c->outlen);
}

void sec_key_derive(uint8_t key[SEC_KEY_BYTES], const void *secret, size_t n)
{
    sec_init();
    crypto_generichash(key, SEC_KEY_BYTES, secret, n, NULL, 0);
}

void sec_random(void *out, size_t n)
{
    sec_init();
    randombytes_buf(out, n);
}

void sec_wipe(void *p, size_t n)
{
    sodium_memzero(p, n);
}

void sec_hex(char *out, const void *bin, size_t n)
{
    sodium_bin2hex(out, 2 * n + 1, bin, n);
}

void sec_seal(uint8_t *out, const uint8_t *plain, size_t n, const void *ad, size_t adlen,
              const uint8_t key[SEC_KEY_BYTES])
{
    sec_random(out, NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE, NULL, plain, n, ad, adlen, NULL, out, key);
}

bool sec_open(uint8_t *plain, const uint8_t *sealed, size_t n, const void *ad, size_t adlen,
              const uint8_t key[SEC_KEY_BYTES])
{
    if (n < SEC_SEAL_EXTRA)
        return false;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sealed + NONCE, n - NONCE, ad, adlen,
                                                      sealed, key) == 0;
}

size_t sec_b64url_len(size_t n)
{
    return sodium_base64_ENCODED_LEN(n, B64);
}

size_t sec_b64url_encode(char *out, size_t cap, const void *bin, size_t n)
{
    if (cap < sec_b64url_len(n))
        return 0;
    sodium_bin2base64(out, cap, bin, n, B64);
    return strlen(out);
}

long sec_b64url_decode(void *bin, size_t cap, const char *s, size_t n)
{
    size_t len;
    if (sodium_base642bin(bin, cap, s, n, NULL, &len, NULL, B64) != 0)
        return -1;
    /* libsodium ignores the unused low bits of the last character: only the canonical spelling
     * of the bytes is accepted */
    char canon[4096];
    if (sec_b64url_len(len) > sizeof(canon))
        return -1;
    sodium_bin2base64(canon, sizeof(canon), bin, len, B64);
    if (strlen(canon) != n || memcmp(canon, s, n) != 0)
        return -1;
    return (long)len;
}
