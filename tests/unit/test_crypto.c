/* core/crypto: known SHA-256 vectors, seal/open against every single-byte alteration, and
 * URL-safe base64 round trips with every non-canonical spelling refused. */
#include "test.h"

#include "core/crypto.h"

TEST(sha256_known_vectors)
{
    char pg[SEC_SHA256_PG_LEN + 1];
    sec_sha256_pg(pg, "abc", 3);
    CHECK(strcmp(pg, "\\xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    sec_sha256_pg(pg, "", 0);
    CHECK(strcmp(pg, "\\xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    /* in parts, the same as at once */
    sec_sha256_ctx_t c;
    uint8_t a[SEC_SHA256_BYTES], b[SEC_SHA256_BYTES];
    sec_sha256_init(&c);
    sec_sha256_update(&c, "a", 1);
    sec_sha256_update(&c, "bc", 2);
    sec_sha256_final(&c, a);
    sec_sha256(b, "abc", 3);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
}

TEST(seal_opens_only_unaltered)
{
    uint8_t key[SEC_KEY_BYTES], other[SEC_KEY_BYTES];
    sec_key_derive(key, "secret", 6);
    sec_key_derive(other, "secret2", 7);
    const uint8_t plain[] = "a cursor's plaintext";
    size_t n = sizeof(plain);
    uint8_t sealed[64 + SEC_SEAL_EXTRA], out[64];
    sec_seal(sealed, plain, n, "ad", 2, key);
    CHECK(sec_open(out, sealed, n + SEC_SEAL_EXTRA, "ad", 2, key));
    CHECK(memcmp(out, plain, n) == 0);
    CHECK(!sec_open(out, sealed, n + SEC_SEAL_EXTRA, "ad", 2, other));
    CHECK(!sec_open(out, sealed, n + SEC_SEAL_EXTRA, "AD", 2, key));
    CHECK(!sec_open(out, sealed, n + SEC_SEAL_EXTRA - 1, "ad", 2, key));
    CHECK(!sec_open(out, sealed, SEC_SEAL_EXTRA - 1, "ad", 2, key));
    for (size_t i = 0; i < n + SEC_SEAL_EXTRA; i++)
        for (int bit = 0; bit < 8; bit++) {
            sealed[i] ^= (uint8_t)(1 << bit);
            CHECK(!sec_open(out, sealed, n + SEC_SEAL_EXTRA, "ad", 2, key));
            sealed[i] ^= (uint8_t)(1 << bit);
        }
    /* two seals of one plaintext differ (random nonces) */
    uint8_t again[64 + SEC_SEAL_EXTRA];
    sec_seal(again, plain, n, "ad", 2, key);
    CHECK(memcmp(again, sealed, n + SEC_SEAL_EXTRA) != 0);
}

TEST(b64url_round_trips_and_only_canonical_spellings_decode)
{
    uint8_t bin[40], back[40];
    char text[80];
    for (size_t n = 0; n <= sizeof(bin); n++) {
        sec_random(bin, n);
        size_t tl = sec_b64url_encode(text, sizeof(text), bin, n);
        CHECK(tl == sec_b64url_len(n) - 1);
        CHECK(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == tl);
        CHECK_EQ_INT(sec_b64url_decode(back, sizeof(back), text, tl), n);
        CHECK(n == 0 || memcmp(back, bin, n) == 0);
        if (tl == 0)
            continue;
        /* every other last character either decodes to other bytes or is refused */
        static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.";
        char orig = text[tl - 1];
        for (const char *a = alpha; *a; a++) {
            if (*a == orig)
                continue;
            text[tl - 1] = *a;
            long got = sec_b64url_decode(back, sizeof(back), text, tl);
            CHECK(got < 0 || memcmp(back, bin, n) != 0);
        }
        text[tl - 1] = orig;
    }
    CHECK(sec_b64url_encode(text, 3, bin, 8) == 0);       /* too small */
    CHECK(sec_b64url_decode(back, 2, "AAAAAAAA", 8) < 0); /* does not fit */
}

TEST(hex_and_random)
{
    char hex[9];
    sec_hex(hex, "\x01\xab\xff\x00", 4);
    CHECK(strcmp(hex, "01abff00") == 0);
    uint8_t a[32] = {0}, b[32] = {0};
    sec_random(a, sizeof(a));
    sec_random(b, sizeof(b));
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    sec_wipe(a, sizeof(a));
    for (size_t i = 0; i < sizeof(a); i++)
        CHECK(a[i] == 0);
}

TEST_MAIN()
