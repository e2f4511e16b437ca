#include "core/json.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

/* json_str of n bytes, compared with the expected output (quotes included). */
static void check_str(const char *in, size_t n, const char *want)
{
    buf_t b = BUF_INIT;
    json_str(&b, in, n);
    CHECK_STRN(b.data, b.len, want);
    buf_free(&b);
}

#define CHECK_JSTR(lit, want) check_str((lit), sizeof(lit) - 1, (want))

TEST(plain_strings)
{
    CHECK_JSTR("", "\"\"");
    CHECK_JSTR("hello", "\"hello\"");
    CHECK_JSTR("a/b <c> &d 'e' \x7f", "\"a/b <c> &d 'e' \x7f\"");
}

TEST(quotes_and_backslash)
{
    CHECK_JSTR("\"", "\"\\\"\"");
    CHECK_JSTR("\\", "\"\\\\\"");
    CHECK_JSTR("say \"hi\" \\ bye", "\"say \\\"hi\\\" \\\\ bye\"");
    CHECK_JSTR("\\\"\\\"", "\"\\\\\\\"\\\\\\\"\"");
}

TEST(every_control_byte)
{
    for (int c = 0; c < 0x20; c++) {
        char in[3] = {'a', (char)c, 'b'};
        char want[16];
        const char *esc = NULL;
        switch (c) {
        case '\b':
            esc = "\\b";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\r':
            esc = "\\r";
            break;
        }
        if (esc)
            snprintf(want, sizeof(want), "\"a%sb\"", esc);
        else
            snprintf(want, sizeof(want), "\"a\\u%04xb\"", c);
        check_str(in, 3, want);
    }
    /* NUL inside the input is a byte like the others */
    CHECK_JSTR("\0\0", "\"\\u0000\\u0000\"");
    CHECK_JSTR("\x1f\x20", "\"\\u001f \"");
}

TEST(js_line_separators)
{
    CHECK_JSTR("a\xe2\x80\xa8"
               "b",
               "\"a\\u2028b\"");
    CHECK_JSTR("\xe2\x80\xa9", "\"\\u2029\"");
    /* neighbours pass through */
    CHECK_JSTR("\xe2\x80\xa7\xe2\x80\xaa", "\"\xe2\x80\xa7\xe2\x80\xaa\"");
}

TEST(valid_multibyte_passes_through)
{
    CHECK_JSTR("caf\xc3\xa9", "\"caf\xc3\xa9\"");                           /* é */
    CHECK_JSTR("\xe2\x82\xac 5", "\"\xe2\x82\xac 5\"");                     /* € */
    CHECK_JSTR("\xe6\x97\xa5\xe6\x9c\xac", "\"\xe6\x97\xa5\xe6\x9c\xac\""); /* 日本 */
    CHECK_JSTR("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");                 /* U+1F600 */
    CHECK_JSTR("\xc2\x80\xdf\xbf", "\"\xc2\x80\xdf\xbf\"");                 /* U+0080, U+07FF */
    CHECK_JSTR("\xe0\xa0\x80\xef\xbf\xbf", "\"\xe0\xa0\x80\xef\xbf\xbf\""); /* U+0800, U+FFFF */
    CHECK_JSTR("\xed\x9f\xbf\xee\x80\x80", "\"\xed\x9f\xbf\xee\x80\x80\""); /* U+D7FF, U+E000 */
    CHECK_JSTR("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
               "\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""); /* U+10000, U+10FFFF */
}

#define FFFD "\xef\xbf\xbd"

TEST(invalid_utf8_becomes_replacement)
{
    CHECK_JSTR("\xff", "\"" FFFD "\"");
    CHECK_JSTR("a\xfe"
               "b",
               "\"a" FFFD "b\"");
    CHECK_JSTR("\x80", "\"" FFFD "\""); /* lone continuation */
    CHECK_JSTR("\xbf\x80", "\"" FFFD FFFD "\"");
    /* overlongs: each byte is its own maximal subpart */
    CHECK_JSTR("\xc0\x80", "\"" FFFD FFFD "\""); /* NUL */
    CHECK_JSTR("\xc1\xbf", "\"" FFFD FFFD "\"");
    CHECK_JSTR("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\""); /* '/' */
    CHECK_JSTR("\xf0\x80\x80\xaf", "\"" FFFD FFFD FFFD FFFD "\"");
    /* UTF-16 surrogates encoded in UTF-8 */
    CHECK_JSTR("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\""); /* U+D800 */
    CHECK_JSTR("\xed\xbf\xbf", "\"" FFFD FFFD FFFD "\""); /* U+DFFF */
    CHECK_JSTR("\xed\xa0\xbd\xed\xb8\x80", "\"" FFFD FFFD FFFD FFFD FFFD FFFD "\"");
    /* above U+10FFFF, and lead bytes that never start a sequence */
    CHECK_JSTR("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
    CHECK_JSTR("\xf5\x80", "\"" FFFD FFFD "\"");
    CHECK_JSTR("\xf8\x88\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD FFFD "\"");
    /* truncated sequences: the valid prefix is one subpart */
    CHECK_JSTR("\xe2\x82", "\"" FFFD "\"");
    CHECK_JSTR("\xe2\x82"
               "A",
               "\"" FFFD "A\"");
    CHECK_JSTR("\xf0\x9f\x98", "\"" FFFD "\"");
    CHECK_JSTR("\xf0\x9f\x98"
               "x\xf0\x9f\x98\x80",
               "\"" FFFD "x\xf0\x9f\x98\x80\"");
    CHECK_JSTR("\xc3", "\"" FFFD "\"");
    CHECK_JSTR("\xc3\"", "\"" FFFD "\\\"\"");
    CHECK_JSTR("\xe2\x80"
               "\n",
               "\"" FFFD "\\n\"");
    /* a broken sequence next to a line separator */
    CHECK_JSTR("\xe2\xe2\x80\xa8", "\"" FFFD "\\u2028\"");
}

/* ---- property checks on random input ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static size_t utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Strict UTF-8 check written from the code point side: decode, then reject what is wrong. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n)
            return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a JSON string token into out; false when it is not one (raw control byte etc.). */
static bool json_unquote(const unsigned char *s, size_t n, buf_t *out)
{
    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        return false;
    for (size_t i = 1; i < n - 1; i++) {
        unsigned char c = s[i];
        if (c < 0x20 || c == '"')
            return false;
        if (c != '\\') {
            buf_putc(out, (char)c);
            continue;
        }
        if (++i >= n - 1)
            return false;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *k = strchr(from, s[i]);
        if (k && s[i]) {
            buf_putc(out, to[k - from]);
            continue;
        }
        if (s[i] != 'u' || i + 4 >= n - 1)
            return false;
        uint32_t cp = 0;
        for (int d = 1; d <= 4; d++) {
            int h = hexval(s[i + (size_t)d]);
            if (h < 0)
                return false;
            cp = cp << 4 | (uint32_t)h;
        }
        i += 4;
        unsigned char enc[4];
        buf_append(out, enc, utf8_encode(cp, enc));
    }
    return true;
}

TEST(random_valid_text_round_trips)
{
    int bad = 0;
    for (int round = 0; round < 2000; round++) {
        buf_t in = BUF_INIT, out = BUF_INIT, back = BUF_INIT;
        int count = (int)(rng() % 40);
        for (int i = 0; i < count; i++) {
            uint32_t r = rng(), cp;
            switch (r % 6) {
            case 0:
                cp = r % 0x20; /* control */
                break;
            case 1:
                cp = (uint32_t) "\"\\/\x7f a"[r % 6];
                break;
            case 2:
                cp = 0x2028 + (r >> 8) % 2;
                break;
            case 3:
                cp = 0x20 + (r >> 8) % 0x60;
                break;
            default:
                cp = (r >> 8) % 0x110000;
                if (cp >= 0xd800 && cp <= 0xdfff)
                    cp = 0xfffd;
                break;
            }
            unsigned char enc[4];
            buf_append(&in, enc, utf8_encode(cp, enc));
        }
        json_str(&out, in.data, in.len);
        if (!json_unquote((unsigned char *)out.data, out.len, &back) || back.len != in.len ||
            (in.len && memcmp(back.data, in.data, in.len) != 0) ||
            !utf8_valid((unsigned char *)out.data, out.len))
            bad++;
        /* U+2028/9 never appear raw */
        if (out.len &&
            (memmem(out.data, out.len, "\xe2\x80\xa8", 3) || memmem(out.data, out.len, "\xe2\x80\xa9", 3)))
            bad++;
        buf_free(&in);
        buf_free(&out);
        buf_free(&back);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(random_bytes_give_valid_json_strings)
{
    int bad = 0;
    for (int round = 0; round < 5000; round++) {
        unsigned char in[64];
        size_t n = rng() % sizeof(in);
        for (size_t i = 0; i < n; i++) {
            uint32_t r = rng();
            /* bias toward bytes that make UTF-8 interesting */
            static const unsigned char pick[] = {0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe2, 0xed,
                                                 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f, 0x8f};
            in[i] = r % 3 ? pick[(r >> 4) % sizeof(pick)] : (unsigned char)(r >> 8);
        }
        buf_t out = BUF_INIT, back = BUF_INIT;
        json_str(&out, (const char *)in, n);
        if (!utf8_valid((unsigned char *)out.data, out.len) ||
            !json_unquote((unsigned char *)out.data, out.len, &back))
            bad++;
        /* valid input is unchanged by the round trip */
        if (utf8_valid(in, n) && (back.len != n || (n && memcmp(back.data, in, n) != 0)))
            bad++;
        buf_free(&out);
        buf_free(&back);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(long_string_crosses_growth)
{
    buf_t in = BUF_INIT, out = BUF_INIT, back = BUF_INIT;
    for (int i = 0; i < 100000; i++) {
        if (i % 1000 == 999)
            buf_append_lit(&in, "\n\xe2\x80\xa8\xc3\xa9\"");
        else
            buf_putc(&in, (char)('a' + i % 26));
    }
    json_str(&out, in.data, in.len);
    CHECK(json_unquote((unsigned char *)out.data, out.len, &back));
    CHECK_EQ_INT(back.len, in.len);
    CHECK(memcmp(back.data, in.data, in.len) == 0);
    /* +2 quotes; per 1000: \n 1 more, U+2028 3 more, " 1 more */
    CHECK_EQ_INT(out.len, in.len + 2 + 100 * 5);
    buf_free(&in);
    buf_free(&out);
    buf_free(&back);
}

/* ---- numbers and literals ---- */

static void check_double(double v, int decimals, const char *want)
{
    buf_t b = BUF_INIT;
    json_double(&b, v, decimals);
    CHECK_STRN(b.data, b.len, want);
    buf_free(&b);
}

TEST(integers)
{
    buf_t b = BUF_INIT;
    json_i64(&b, INT64_MIN);
    buf_putc(&b, ' ');
    json_i64(&b, 0);
    buf_putc(&b, ' ');
    json_i64(&b, -42);
    buf_putc(&b, ' ');
    json_u64(&b, UINT64_MAX);
    buf_putc(&b, ' ');
    json_u64(&b, 7);
    CHECK_STRN(b.data, b.len, "-9223372036854775808 0 -42 18446744073709551615 7");
    buf_free(&b);
}

TEST(money)
{
    check_double(1234.5, 2, "1234.5");
    check_double(1234.56, 2, "1234.56");
    check_double(1200, 2, "1200");
    check_double(1200.0, 0, "1200");
    check_double(0, 2, "0");
    check_double(-0.0, 2, "0");
    check_double(0.05, 2, "0.05");
    check_double(-0.05, 2, "-0.05");
    check_double(-1234.5, 2, "-1234.5");
    check_double(0.1 + 0.2, 2, "0.3");
    check_double(19.99, 2, "19.99");
    check_double(1e9 + 0.01, 2, "1000000000.01");
    check_double(99999999999.99, 2, "99999999999.99");
    check_double(1e15, 2, "1000000000000000");
    check_double(1e15 + 0.25, 2, "1000000000000000");
    check_double(1e14 + 0.5, 2, "100000000000000.5");
    check_double(-4e18, 2, "-4000000000000000000");
    check_double(1e19, 2, "1e+19");
    /* rounding to the allowed decimals */
    check_double(0.001, 2, "0");
    check_double(-0.004, 2, "0");
    check_double(2.675000001, 2, "2.68");
    check_double(0.999, 2, "1");
    check_double(-0.999, 2, "-1");
    check_double(2.5, 0, "3");
    check_double(3.14159265, 4, "3.1416");
    check_double(1.5, 9, "1.5");
    check_double(0.000000001, 9, "0.000000001");
    check_double(0.0705, 3, "0.071");
}

TEST(doubles_without_decimal_limit)
{
    check_double(0.1, -1, "0.1");
    check_double(1.0 / 3, -1, "0.3333333333333333");
    check_double(1e300, -1, "1e+300");
    check_double(-2.5e-7, -1, "-2.5e-07");
    check_double(123456.789, 10, "123456.789");
    /* too large to scale: falls back to the shortest exact form, still no exponent here */
    check_double(9007199254740993.0, 2, "9007199254740992");
    /* shortest forms read back exactly */
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        double v = ldexp((double)rng() / 4294967296.0 + 1.0, (int)(rng() % 200) - 100) * (i % 2 ? -1 : 1);
        buf_t b = BUF_INIT;
        json_double(&b, v, -1);
        if (strtod(buf_cstr(&b), NULL) != v)
            bad++;
        buf_free(&b);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(non_finite_is_null)
{
    check_double(NAN, 2, "null");
    check_double(INFINITY, 2, "null");
    check_double(-INFINITY, -1, "null");
}

TEST(literals_and_keys)
{
    buf_t b = BUF_INIT;
    json_bool(&b, true);
    json_bool(&b, false);
    json_null(&b);
    json_key(&b, "name");
    json_key_str(&b, LIT("we\"ird\n"));
    CHECK_STRN(b.data, b.len, "truefalsenull\"name\":\"we\\\"ird\\n\":");
    buf_free(&b);
}

/* ---- writer ---- */

TEST(writer_object)
{
    buf_t b = BUF_INIT;
    json_writer_t w;
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_kv_i64(&w, JSON_K("id"), 42);
    json_kv_str(&w, JSON_K("name"), LIT("Acme \"Inc\""));
    json_kv_double(&w, JSON_K("amount"), 1234.5, 2);
    json_kv_bool(&w, JSON_K("won"), false);
    json_kv_null(&w, JSON_K("deleted_at"));
    json_kv_u64(&w, JSON_K("n"), 18446744073709551615ull);
    json_obj_end(&w);
    CHECK_STRN(b.data, b.len,
               "{\"id\":42,\"name\":\"Acme \\\"Inc\\\"\",\"amount\":1234.5,\"won\":false,"
               "\"deleted_at\":null,\"n\":18446744073709551615}");
    CHECK_EQ_INT(w.depth, 0);
    buf_free(&b);
}

TEST(writer_nested)
{
    buf_t b = BUF_INIT;
    json_writer_t w;
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_w_key(&w, JSON_K("data"));
    json_arr_begin(&w);
    for (int i = 1; i <= 2; i++) {
        json_obj_begin(&w);
        json_kv_i64(&w, JSON_K("id"), i);
        json_w_key(&w, JSON_K("tags"));
        json_arr_begin(&w);
        for (int t = 0; t < i; t++)
            json_w_str(&w, "t", 1);
        json_arr_end(&w);
        json_w_key(&w, JSON_K("owner"));
        json_obj_begin(&w);
        json_obj_end(&w);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_w_key(&w, JSON_K("empty"));
    json_arr_begin(&w);
    json_arr_end(&w);
    json_w_key(&w, JSON_K("matrix"));
    json_arr_begin(&w);
    json_arr_begin(&w);
    json_w_i64(&w, 1);
    json_w_u64(&w, 2);
    json_arr_end(&w);
    json_arr_begin(&w);
    json_arr_end(&w);
    json_arr_begin(&w);
    json_w_null(&w);
    json_w_bool(&w, true);
    json_w_double(&w, 0.5, 2);
    json_arr_end(&w);
    json_arr_end(&w);
    json_w_key_str(&w, LIT("odd\tkey"));
    json_w_raw(&w, LIT("{\"cached\":[1,2]}"));
    json_w_key(&w, JSON_K("after"));
    json_w_i64(&w, -1);
    json_obj_end(&w);
    CHECK_STRN(b.data, b.len,
               "{\"data\":[{\"id\":1,\"tags\":[\"t\"],\"owner\":{}},{\"id\":2,\"tags\":[\"t\",\"t\"],"
               "\"owner\":{}}],\"empty\":[],\"matrix\":[[1,2],[],[null,true,0.5]],"
               "\"odd\\tkey\":{\"cached\":[1,2]},\"after\":-1}");
    CHECK_EQ_INT(w.depth, 0);
    buf_free(&b);
}

TEST(writer_top_level_array)
{
    buf_t b = BUF_INIT;
    json_writer_t w;
    json_writer_init(&w, &b);
    json_arr_begin(&w);
    json_arr_end(&w);
    CHECK_STRN(b.data, b.len, "[]");
    /* a writer reused on a fresh buffer */
    buf_reset(&b);
    json_writer_init(&w, &b);
    json_arr_begin(&w);
    json_obj_begin(&w);
    json_obj_end(&w);
    json_obj_begin(&w);
    json_kv_i64(&w, JSON_K("a"), 1);
    json_obj_end(&w);
    json_arr_end(&w);
    CHECK_STRN(b.data, b.len, "[{},{\"a\":1}]");
    buf_free(&b);
}

TEST(writer_max_depth)
{
    buf_t b = BUF_INIT, want = BUF_INIT;
    json_writer_t w;
    json_writer_init(&w, &b);
    /* every level holds a value before and after its child, so commas at all 63 depths */
    for (int d = 0; d < JSON_MAX_DEPTH; d++) {
        json_arr_begin(&w);
        if (d < JSON_MAX_DEPTH - 1)
            json_w_i64(&w, d);
        buf_append_lit(&want, "[");
        if (d < JSON_MAX_DEPTH - 1) {
            buf_append_i64(&want, d);
            buf_putc(&want, ',');
        }
    }
    /* "[0,[1,...[61,[-62],-61],...,0]" */
    for (int d = JSON_MAX_DEPTH - 1; d >= 0; d--) {
        json_w_i64(&w, -d);
        json_arr_end(&w);
        if (d < JSON_MAX_DEPTH - 1)
            buf_putc(&want, ',');
        buf_append_i64(&want, -d);
        buf_putc(&want, ']');
    }
    CHECK_EQ_INT(w.depth, 0);
    CHECK(b.len == want.len && memcmp(b.data, want.data, b.len) == 0);
    buf_free(&b);
    buf_free(&want);
}

TEST_MAIN()
