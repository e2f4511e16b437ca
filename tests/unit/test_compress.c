/* Tests for http/compress.c: Accept-Encoding negotiation, compression round trips, types. */
#include <stdlib.h>

#include <libdeflate.h>

#include "build_config.h"
#include "http/compress.h"
#include "test.h"

#if HAVE_BROTLI
#include <brotli/decode.h>
#endif

enum {
    ID = HTTP_ENCODING_IDENTITY,
    GZ = HTTP_ENCODING_GZIP,
    BR = HTTP_ENCODING_BR,
    NA = HTTP_ENCODING_NOT_ACCEPTABLE
};

/* One case: the header, the answer with brotli, the answer in a build without it. */
struct ae_case {
    const char *header;
    int with_br, without_br;
};

static const struct ae_case ae_cases[] = {
    /* browsers and tools */
    {"gzip, deflate, br", BR, GZ},       /* Safari, older Chrome */
    {"gzip, deflate, br, zstd", BR, GZ}, /* Chrome, Firefox */
    {"deflate, gzip, br, zstd", BR, GZ}, /* curl --compressed */
    {"gzip, deflate", GZ, GZ},           /* python-requests */
    {"gzip", GZ, GZ},
    {"br", BR, ID},
    {"deflate", ID, ID},
    {"zstd", ID, ID},
    {"", ID, ID},
    {"identity", ID, ID},
    /* RFC 9110 §12.5.3 examples */
    {"compress, gzip", GZ, GZ},
    {"*", BR, GZ},
    {"compress;q=0.5, gzip;q=1.0", GZ, GZ},
    {"gzip;q=1.0, identity; q=0.5, *;q=0", GZ, GZ},
    /* q-values */
    {"br;q=0, gzip", GZ, GZ},
    {"gzip;q=0", ID, ID},
    {"gzip;q=0.5, br;q=0.8", BR, GZ},
    {"gzip;q=0.9, br;q=0.8", GZ, GZ},
    {"gzip;q=0.5", GZ, GZ},           /* unlisted identity ranks last */
    {"gzip;q=0.5, identity", ID, ID}, /* listed identity preferred */
    {"gzip, identity", GZ, GZ},       /* tie: coding wins */
    {"br;q=0.001", BR, ID},
    {"gzip;q=1.000, br;q=1.0", BR, GZ},
    {"gzip;Q=0", ID, ID},
    /* "*" and identity refusals */
    {"*;q=0", NA, NA},
    {"identity;q=0", NA, NA},
    {"gzip, identity;q=0", GZ, GZ},
    {"deflate, identity;q=0", NA, NA},
    {"*;q=0, identity", ID, ID},
    {"gzip;q=0, *", BR, ID},
    {"br;q=0, *", GZ, GZ},
    {"*;q=0.5, gzip", GZ, GZ},
    {"*, gzip;q=0.2", BR, ID},
    /* case, aliases, whitespace, list syntax */
    {"GZIP", GZ, GZ},
    {"Br, GZip", BR, GZ},
    {"x-gzip", GZ, GZ},
    {"X-GZIP;q=0.7, br;q=0.6", GZ, GZ},
    {"gzip;q=0, x-gzip", ID, ID}, /* the refusal stands */
    {"gzip;q=0.8, gzip;q=0.9, identity;q=0.85", ID, ID},
    {"  gzip  ;  q=0.5  ,\tbr\t", BR, GZ},
    {",,, gzip ,,", GZ, GZ},
    {"gzip;", GZ, GZ},
    {"gzip;;q=0", ID, ID},
    /* malformed elements are ignored, the rest counts */
    {"gzip;q=abc", ID, ID},
    {"gzip;q=abc, br", BR, ID},
    {"gzip;q=1.5", ID, ID},
    {"gzip;q=1.001", ID, ID},
    {"gzip;q=0.0001", ID, ID},
    {"gzip;q=", ID, ID},
    {"gzip;q=\"0.5\"", ID, ID},
    {"gzip;q=-1", ID, ID},
    {"gzip;q=.5", ID, ID},
    {"gzip;q = 0.5", ID, ID},
    {"gzip;q=0.5;q=1", ID, ID},
    {"gzip br", ID, ID},
    {"gzip;level=9", GZ, GZ},     /* unknown parameter skipped */
    {"br;x=\"a, gzip\"", BR, ID}, /* commas inside a quoted string */
    {"gzip;x=\"a, br\", deflate", GZ, GZ},
    {"br;x=\"unterminated, gzip", ID, ID},
    {"\"gzip\", br", BR, ID},
    {"*gzip", ID, ID},
    {"gzip, br;q=0.5\xff", GZ, GZ},
    {"identity;q=0, gzip;q=bad", NA, NA},
};

static http_str_t str(const char *s)
{
    return (http_str_t){s, strlen(s)};
}

TEST(negotiate_table)
{
    for (size_t i = 0; i < ARRAY_LEN(ae_cases); i++) {
        const struct ae_case *c = &ae_cases[i];
        int want = HAVE_BROTLI ? c->with_br : c->without_br;
        int got = http_negotiate_encoding(str(c->header));
        if (got != want)
            printf("  case \"%s\"\n", c->header);
        CHECK_EQ_INT(got, want);
    }
}

TEST(negotiate_not_nul_terminated)
{
    /* The value is a slice of a larger buffer: nothing past len may be read. */
    const char buf[] = "gzip;q=0.5br";
    CHECK_EQ_INT(http_negotiate_encoding((http_str_t){buf, 10}), GZ);
    CHECK_EQ_INT(http_negotiate_encoding((http_str_t){buf, 4}), GZ);
    CHECK_EQ_INT(http_negotiate_encoding((http_str_t){NULL, 0}), ID);
}

TEST(encoding_name)
{
    CHECK(strcmp(http_encoding_name(HTTP_ENCODING_GZIP), "gzip") == 0);
    CHECK(strcmp(http_encoding_name(HTTP_ENCODING_BR), "br") == 0);
    CHECK(http_encoding_name(HTTP_ENCODING_IDENTITY) == NULL);
    CHECK(http_encoding_name(HTTP_ENCODING_NOT_ACCEPTABLE) == NULL);
}

/* A JSON list body of roughly n bytes, like a page of deals. */
static void json_body(buf_t *b, size_t n)
{
    buf_append_lit(b, "{\"data\": [");
    for (uint64_t i = 1; b->len < n; i++) {
        buf_printf(b,
                   "%s{\"id\": %llu, \"name\": \"Deal %llu\", \"value\": %llu.50, \"status\": \"open\", "
                   "\"created_at\": \"2026-01-17T10:30:00Z\"}",
                   i > 1 ? ", " : "", (unsigned long long)i, (unsigned long long)i * 7,
                   (unsigned long long)i * 1000);
    }
    buf_append_lit(b, "]}");
}

TEST(gzip_round_trip)
{
    http_compressor_t *c =
        http_compressor_new(HTTP_COMPRESS_GZIP_LEVEL_DEFAULT, HTTP_COMPRESS_BROTLI_QUALITY_DEFAULT);
    buf_t body = BUF_INIT, out = BUF_INIT;
    json_body(&body, 20000);
    buf_append_lit(&out, "HEAD"); /* compressed bytes are appended after what is there */
    CHECK(http_compress(c, HTTP_ENCODING_GZIP, body.data, body.len, &out));
    CHECK(out.len > 4 && out.len - 4 < body.len / 4);
    CHECK(memcmp(out.data, "HEAD", 4) == 0);
    CHECK((unsigned char)out.data[4] == 0x1f && (unsigned char)out.data[5] == 0x8b);

    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    char *back = malloc(body.len);
    size_t back_len = 0;
    CHECK(libdeflate_gzip_decompress(d, out.data + 4, out.len - 4, back, body.len, &back_len) ==
          LIBDEFLATE_SUCCESS);
    CHECK_EQ_INT(back_len, body.len);
    CHECK(memcmp(back, body.data, body.len) == 0);
    free(back);
    libdeflate_free_decompressor(d);
    buf_free(&body);
    buf_free(&out);
    http_compressor_free(c);
}

TEST(brotli_round_trip)
{
    http_compressor_t *c = http_compressor_new(6, 5);
    buf_t body = BUF_INIT, out = BUF_INIT;
    json_body(&body, 20000);
#if HAVE_BROTLI
    CHECK(http_compress(c, HTTP_ENCODING_BR, body.data, body.len, &out));
    CHECK(out.len > 0 && out.len < body.len / 4);
    char *back = malloc(body.len);
    size_t back_len = body.len;
    CHECK(BrotliDecoderDecompress(out.len, (const uint8_t *)out.data, &back_len, (uint8_t *)back) ==
          BROTLI_DECODER_RESULT_SUCCESS);
    CHECK_EQ_INT(back_len, body.len);
    CHECK(memcmp(back, body.data, body.len) == 0);
    free(back);
#else
    CHECK(!http_compress(c, HTTP_ENCODING_BR, body.data, body.len, &out));
    CHECK_EQ_INT(out.len, 0);
#endif
    buf_free(&body);
    buf_free(&out);
    http_compressor_free(c);
}

TEST(levels_clamped)
{
    /* Out-of-range levels must not fail or abort; the results still decode. */
    int levels[][2] = {{-5, -5}, {0, 0}, {1, 0}, {12, 11}, {99, 99}};
    buf_t body = BUF_INIT;
    json_body(&body, 4000);
    for (size_t i = 0; i < ARRAY_LEN(levels); i++) {
        http_compressor_t *c = http_compressor_new(levels[i][0], levels[i][1]);
        buf_t out = BUF_INIT;
        CHECK(http_compress(c, HTTP_ENCODING_GZIP, body.data, body.len, &out));
        buf_reset(&out);
        CHECK(http_compress(c, HTTP_ENCODING_BR, body.data, body.len, &out) == (bool)HAVE_BROTLI);
        buf_free(&out);
        http_compressor_free(c);
    }
    buf_free(&body);
}

TEST(incompressible_returns_false)
{
    http_compressor_t *c = http_compressor_new(12, 11);
    size_t n = 8192;
    unsigned char *rnd = malloc(n);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        rnd[i] = (unsigned char)(x >> 24);
    }
    buf_t out = BUF_INIT;
    buf_append_lit(&out, "keep");
    CHECK(!http_compress(c, HTTP_ENCODING_GZIP, rnd, n, &out));
    CHECK(!http_compress(c, HTTP_ENCODING_BR, rnd, n, &out));
    CHECK_EQ_INT(out.len, 4);
    CHECK(memcmp(out.data, "keep", 4) == 0);
    free(rnd);
    buf_free(&out);
    http_compressor_free(c);
}

TEST(no_coding_or_tiny_returns_false)
{
    http_compressor_t *c = http_compressor_new(6, 4);
    buf_t body = BUF_INIT, out = BUF_INIT;
    json_body(&body, 4000);
    CHECK(!http_compress(c, HTTP_ENCODING_IDENTITY, body.data, body.len, &out));
    CHECK(!http_compress(c, HTTP_ENCODING_NOT_ACCEPTABLE, body.data, body.len, &out));
    CHECK(!http_compress(c, (http_encoding_t)42, body.data, body.len, &out));
    CHECK(!http_compress(c, HTTP_ENCODING_GZIP, "", 0, &out));
    CHECK(!http_compress(c, HTTP_ENCODING_GZIP, "x", 1, &out));
    CHECK(!http_compress(c, HTTP_ENCODING_GZIP, "{\"a\":1}", 7, &out));
    CHECK(!http_compress(c, HTTP_ENCODING_BR, "", 0, &out));
    CHECK_EQ_INT(out.len, 0);
    buf_free(&body);
    buf_free(&out);
    http_compressor_free(c);
}

TEST(borderline_sizes)
{
    /* Around the break-even point the answer may be either, but a true result is always smaller. */
    http_compressor_t *c = http_compressor_new(6, 4);
    char in[64];
    for (size_t n = 2; n <= sizeof(in); n++) {
        memset(in, 'a', n);
        for (int e = HTTP_ENCODING_GZIP; e <= HTTP_ENCODING_BR; e++) {
            buf_t out = BUF_INIT;
            if (http_compress(c, (http_encoding_t)e, in, n, &out))
                CHECK(out.len > 0 && out.len < n);
            else
                CHECK_EQ_INT(out.len, 0);
            buf_free(&out);
        }
    }
    http_compressor_free(c);
}

TEST(compressible_types)
{
    CHECK(http_compressible_type("application/json"));
    CHECK(http_compressible_type("application/json; charset=utf-8"));
    CHECK(http_compressible_type("Application/JSON;charset=UTF-8"));
    CHECK(http_compressible_type("application/problem+json"));
    CHECK(http_compressible_type("application/graphql-response+json"));
    CHECK(http_compressible_type("text/csv"));
    CHECK(http_compressible_type("text/plain; version=0.0.4"));
    CHECK(http_compressible_type("text/html"));
    CHECK(http_compressible_type(" application/xml"));
    CHECK(http_compressible_type("application/javascript"));
    CHECK(!http_compressible_type("text/event-stream"));
    CHECK(!http_compressible_type("image/png"));
    CHECK(!http_compressible_type("image/svg+xml"));
    CHECK(!http_compressible_type("application/octet-stream"));
    CHECK(!http_compressible_type("application/gzip"));
    CHECK(!http_compressible_type("application/zip"));
    CHECK(!http_compressible_type("application/jsonx"));
    CHECK(!http_compressible_type("application/+json"));
    CHECK(!http_compressible_type("application/"));
    CHECK(!http_compressible_type("json"));
    CHECK(!http_compressible_type(""));
    CHECK(!http_compressible_type(NULL));
}

TEST_MAIN()
