// fuzz-sources: http/compress.c core/buf.c core/common.c
/*
 * libFuzzer harness for http/compress.c. Each input is negotiated as an Accept-Encoding value
 * from an exact-size heap copy (so ASan sees any read past the slice), and must give the same
 * answer after ASCII case folding (tokens and the q parameter are case-insensitive) and when
 * wrapped in empty list members and whitespace. An input naming neither gzip, br nor "*" must
 * never select a coding. The same bytes then go through http_compressible_type and, for one
 * input in 16 (picked by a hash of the bytes: brotli allocates its tables per call, which under
 * ASan would cut the negotiation rate twentyfold), a gzip and br round trip: a compressed result
 * must be smaller than the input and decode to it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "build_config.h"
#include "http/compress.h"

#if HAVE_BROTLI
#include <brotli/decode.h>
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                          \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static http_compressor_t *compressor;
static struct libdeflate_decompressor *decompressor;

static char *copy(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);
    ASSERT(p);
    if (n)
        memcpy(p, data, n);
    return p;
}

static bool mentions(const char *p, size_t n, const char *lower)
{
    size_t l = strlen(lower);
    for (size_t i = 0; i + l <= n; i++) {
        size_t j = 0;
        while (j < l && (p[i + j] | 0x20) == lower[j])
            j++;
        if (j == l)
            return true;
    }
    return false;
}

static void check_negotiation(const uint8_t *data, size_t size)
{
    char *s = copy(data, size);
    http_encoding_t enc = http_negotiate_encoding((http_str_t){s, size});
    ASSERT(enc == HTTP_ENCODING_IDENTITY || enc == HTTP_ENCODING_GZIP || enc == HTTP_ENCODING_BR ||
           enc == HTTP_ENCODING_NOT_ACCEPTABLE);
    ASSERT(HAVE_BROTLI || enc != HTTP_ENCODING_BR);
    if (!mentions(s, size, "gzip") && !mentions(s, size, "br") && !memchr(s, '*', size))
        ASSERT(enc == HTTP_ENCODING_IDENTITY || enc == HTTP_ENCODING_NOT_ACCEPTABLE);

    for (size_t i = 0; i < size; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] += 'a' - 'A';
    ASSERT(http_negotiate_encoding((http_str_t){s, size}) == enc);

    /* ", \t" + input + " ,," : only empty members and whitespace are added. A leading/trailing
       quote could pair differently, so skip inputs with '"'. */
    if (!memchr(s, '"', size)) {
        char *w = malloc(size + 7);
        ASSERT(w);
        memcpy(w, ", \t", 3);
        memcpy(w + 3, data, size);
        memcpy(w + 3 + size, " ,,", 3);
        ASSERT(http_negotiate_encoding((http_str_t){w, size + 6}) == enc);
        free(w);
    }
    free(s);
}

static void check_round_trip(const uint8_t *data, size_t size, http_encoding_t enc)
{
    buf_t out = BUF_INIT;
    buf_append_lit(&out, "pre");
    if (!http_compress(compressor, enc, data, size, &out)) {
        ASSERT(out.len == 3 && memcmp(out.data, "pre", 3) == 0);
        buf_free(&out);
        return;
    }
    ASSERT(out.len > 3 && out.len - 3 < size);
    char *back = malloc(size);
    ASSERT(back);
    size_t back_len = size;
    if (enc == HTTP_ENCODING_GZIP) {
        ASSERT(libdeflate_gzip_decompress(decompressor, out.data + 3, out.len - 3, back, size, &back_len) ==
               LIBDEFLATE_SUCCESS);
    } else {
#if HAVE_BROTLI
        ASSERT(BrotliDecoderDecompress(out.len - 3, (const uint8_t *)out.data + 3, &back_len,
                                       (uint8_t *)back) == BROTLI_DECODER_RESULT_SUCCESS);
#else
        ASSERT(0);
#endif
    }
    ASSERT(back_len == size && memcmp(back, data, size) == 0);
    free(back);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!compressor) {
        compressor =
            http_compressor_new(HTTP_COMPRESS_GZIP_LEVEL_DEFAULT, HTTP_COMPRESS_BROTLI_QUALITY_DEFAULT);
        decompressor = libdeflate_alloc_decompressor();
        ASSERT(decompressor);
    }
    check_negotiation(data, size);

    char *cstr = malloc(size + 1);
    ASSERT(cstr);
    memcpy(cstr, data, size);
    cstr[size] = '\0';
    (void)http_compressible_type(cstr);
    free(cstr);

    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    if ((h & 15) == 0) {
        check_round_trip(data, size, HTTP_ENCODING_GZIP);
        check_round_trip(data, size, HTTP_ENCODING_BR);
    }
    return 0;
}
