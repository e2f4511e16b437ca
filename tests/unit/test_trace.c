/* http/trace.c: W3C traceparent, every refused shape of the spec and the round trip. */
#include "http/trace.h"
#include "test.h"

static const char valid[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static bool parse(const char *v, char *trace, uint8_t *flags)
{
    return http_traceparent_parse(v, strlen(v), trace, flags);
}

TEST(spec_example)
{
    char trace[33];
    uint8_t flags = 0;
    CHECK(parse(valid, trace, &flags));
    CHECK(strcmp(trace, "4bf92f3577b34da6a3ce929d0e0e4736") == 0);
    CHECK_EQ_INT(flags, 1);
    CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", trace, &flags));
    CHECK_EQ_INT(flags, 0);
    /* a later version may carry more fields after a '-' */
    CHECK(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", trace, &flags));
    CHECK(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", trace, &flags));
    CHECK_EQ_INT(flags, 9);
}

TEST(every_byte_out_of_place_is_refused)
{
    char trace[33];
    uint8_t flags;
    /* each position: an upper-case hex digit, a non-hex letter, a separator where a digit is,
     * a digit where a separator is */
    for (size_t i = 0; i < sizeof(valid) - 1; i++) {
        static const char subs[] = {'A', 'F', 'g', 'z', '-', '0', ' ', '\0', '_'};
        for (size_t k = 0; k < sizeof(subs); k++) {
            char v[64];
            memcpy(v, valid, sizeof(valid));
            if (v[i] == subs[k])
                continue;
            bool sep = i == 2 || i == 35 || i == 52;
            /* a separator position takes only '-'; a digit position only [0-9a-f] */
            bool still_valid = !sep && subs[k] == '0';
            v[i] = subs[k];
            bool ok = http_traceparent_parse(v, sizeof(valid) - 1, trace, &flags);
            if (ok != still_valid)
                printf("  position %zu, '%c': %s\n", i, subs[k] ? subs[k] : '0', ok ? "accepted" : "refused");
            CHECK(ok == still_valid);
        }
    }
}

TEST(refused_classes)
{
    static const char *const bad[] = {
        "",
        "00",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* 00 is exactly 55 */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   /* short trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e47366-0f067aa0ba902b7-01",  /* shifted */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* later version, no '-' */
        "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
    };
    char trace[33];
    uint8_t flags;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool ok = parse(bad[i], trace, &flags);
        if (ok)
            printf("  accepted \"%s\"\n", bad[i]);
        CHECK(!ok);
    }
}

TEST(format_round_trips)
{
    uint64_t x = 88172645463325252ull;
    for (int n = 0; n < 2000; n++) {
        uint8_t t[16], sp[8];
        for (int i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t[i] = n % 97 == 0 ? 0 : (uint8_t)x; /* some all-zero ids: made valid */
            if (i < 8)
                sp[i] = n % 89 == 0 ? 0 : (uint8_t)(x >> 8);
        }
        char trace[33], span[17], tp[56], back[33];
        http_trace_hex(t, 16, trace);
        http_trace_hex(sp, 8, span);
        uint8_t flags = (uint8_t)x, f2;
        http_traceparent_format(trace, span, flags, tp);
        CHECK_EQ_INT(strlen(tp), HTTP_TRACEPARENT_LEN);
        CHECK(http_traceparent_parse(tp, strlen(tp), back, &f2));
        CHECK(strcmp(back, trace) == 0);
        CHECK_EQ_INT(f2, flags);
    }
}

TEST_MAIN()
