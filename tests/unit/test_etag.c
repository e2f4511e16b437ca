/* Tests for http/etag.c: ETag hashing and format, If-None-Match and If-Match parsing. */
#include "build_config.h"
#include "http/etag.h"
#include "test.h"

static http_str_t str(const char *s)
{
    return (http_str_t){s, strlen(s)};
}

/* The ETag used in the header cases below. */
#define H   0x0123456789abcdefu
#define TAG "\"0123456789abcdef\""

TEST(format)
{
    char out[20];
    memset(out, 'x', sizeof(out));
    CHECK_EQ_INT(http_etag_format(H, out), HTTP_ETAG_LEN);
    CHECK_STRN(out, HTTP_ETAG_LEN, TAG);
    CHECK_EQ_INT(out[18], '\0');
    CHECK_EQ_INT(http_etag_format(0, out), 18);
    CHECK(strcmp(out, "\"0000000000000000\"") == 0);
    CHECK_EQ_INT(http_etag_format(UINT64_MAX, out), 18);
    CHECK(strcmp(out, "\"ffffffffffffffff\"") == 0);
    http_etag_format(0xa, out);
    CHECK(strcmp(out, "\"000000000000000a\"") == 0);
}

TEST(hash)
{
    const char a[] = "{\"data\": {\"id\": 1, \"name\": \"Acme\"}}";
    char b[sizeof(a)];
    memcpy(b, a, sizeof(a));
    CHECK(http_etag_hash(a, sizeof(a) - 1) == http_etag_hash(b, sizeof(b) - 1));
    b[sizeof(b) - 3] = 'f';
    CHECK(http_etag_hash(a, sizeof(a) - 1) != http_etag_hash(b, sizeof(b) - 1));
    CHECK(http_etag_hash(a, 10) != http_etag_hash(a, 11));
    CHECK(http_etag_hash("", 0) == http_etag_hash(NULL, 0));
#if HAVE_XXHASH
    CHECK(http_etag_hash("", 0) == 0x2d06800538d394c2u); /* XXH3_64bits of the empty input */
#endif
}

struct inm_case {
    const char *header;
    bool if_none_match, if_match;
};

static const struct inm_case cases[] = {
    {TAG, true, true},
    {"*", true, true},
    {"  *\t", true, true},
    {"W/" TAG, true, false},
    {"\"other\", " TAG, true, true},
    {"\"other\"," TAG ",\"third\"", true, true},
    {"W/\"other\", W/" TAG, true, false},
    {"W/\"other\", W/" TAG ", " TAG, true, true},
    {" \t" TAG " \t", true, true},
    {",," TAG ",,", true, true},
    {"\"other\"", false, false},
    {"", false, false},
    {"   ", false, false},
    {"\"0123456789ABCDEF\"", false, false}, /* octet-wise comparison */
    {"\"0123456789abcde\"", false, false},
    {"\"0123456789abcdef0\"", false, false},
    {"0123456789abcdef", false, false}, /* no quotes */
    {"w/" TAG, false, false},           /* "W/" is case-sensitive */
    {"W/ " TAG, false, false},
    {"W" TAG, false, false},
    {"\"a,b\", " TAG, true, true},        /* ',' is a valid etagc */
    {"\"0123456789abcdef", false, false}, /* unterminated */
    {TAG "x", false, false},              /* junk after the tag */
    {TAG " " TAG, false, false},          /* members without a comma */
    {"\"with space\", " TAG, true, true}, /* malformed member skipped */
    {"garbage, " TAG, true, true},
    {"*, " TAG, true, true}, /* "*" in a list is ignored, the tag still counts */
    {"*, \"other\"", false, false},
    {"**", false, false},
    {"\"\", " TAG, true, true},            /* empty opaque-tag is valid, just not ours */
    {"\"caf\xc3\xa9\", " TAG, true, true}, /* obs-text */
    {"\"bad\x01\", " TAG, true, true},
};

TEST(preconditions)
{
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const struct inm_case *c = &cases[i];
        bool inm = http_if_none_match(str(c->header), H), im = http_if_match(str(c->header), H);
        if (inm != c->if_none_match || im != c->if_match)
            printf("  case '%s'\n", c->header);
        CHECK_EQ_INT(inm, c->if_none_match);
        CHECK_EQ_INT(im, c->if_match);
    }
}

TEST(not_nul_terminated)
{
    /* The header is a slice of the receive buffer: nothing past len may be read or matched. */
    const char buf[] = "\"other\", \"0123456789abcdef\"";
    CHECK(!http_if_none_match((http_str_t){buf, 26}, H));
    CHECK(http_if_none_match((http_str_t){buf, 27}, H));
    CHECK(!http_if_match((http_str_t){buf, 8}, H));
    CHECK(!http_if_none_match((http_str_t){NULL, 0}, H));
    CHECK(!http_if_match((http_str_t){NULL, 0}, H));
}

TEST(round_trip_with_format)
{
    const char body[] = "{\"data\": []}";
    uint64_t h = http_etag_hash(body, sizeof(body) - 1);
    char tag[20], hdr[64];
    http_etag_format(h, tag);
    CHECK(http_if_none_match(str(tag), h));
    CHECK(http_if_match(str(tag), h));
    CHECK(!http_if_match(str(tag), h + 1));
    snprintf(hdr, sizeof(hdr), "W/%s", tag);
    CHECK(http_if_none_match(str(hdr), h));
    CHECK(!http_if_match(str(hdr), h));
}

TEST_MAIN()
