#include "api/limit/limit.h"
#include "test.h"

#include <arpa/inet.h>
#include <stdint.h>

static const rl_params_t standard = {.limit = 100, .window_s = 60, .burst = 20, .max_block_s = 0};

TEST(burst_then_reject)
{
    rl_state_t s = {0};
    uint64_t now = 1000000;
    for (int i = 0; i < 20; i++) {
        rl_result_t r = rl_take(&s, &standard, now);
        CHECK(r.allowed);
        CHECK_EQ_INT(r.remaining, 19 - i);
    }
    rl_result_t r = rl_take(&s, &standard, now);
    CHECK(!r.allowed);
    CHECK_EQ_INT(r.remaining, 0);
    CHECK_EQ_INT(r.retry_after_s, 1); /* one token every 600 ms */
}

TEST(refill_at_the_rate)
{
    rl_state_t s = {0};
    uint64_t now = 5000;
    for (int i = 0; i < 20; i++)
        rl_take(&s, &standard, now);
    CHECK(!rl_take(&s, &standard, now + 599).allowed);
    CHECK(rl_take(&s, &standard, now + 600).allowed);
    CHECK(!rl_take(&s, &standard, now + 600).allowed);
    /* a minute later: 100 more at most, spread over the minute */
    int ok = 0;
    for (uint64_t t = now + 610; t <= now + 60600; t += 10)
        ok += rl_take(&s, &standard, t).allowed;
    CHECK_EQ_INT(ok, 100);
}

TEST(exact_retry_after_and_reset)
{
    rl_params_t free_tier = {.limit = 10, .window_s = 60, .burst = 2};
    rl_state_t s = {0};
    rl_result_t r = rl_take(&s, &free_tier, 0);
    CHECK(r.allowed);
    CHECK_EQ_INT(r.remaining, 1);
    CHECK_EQ_INT(r.reset_s, 6);
    r = rl_take(&s, &free_tier, 0);
    CHECK_EQ_INT(r.remaining, 0);
    CHECK_EQ_INT(r.reset_s, 12);
    r = rl_take(&s, &free_tier, 1500);
    CHECK(!r.allowed);
    CHECK_EQ_INT(r.retry_after_s, 5); /* next token at 6000 ms: 4.5 s, rounded up */
    CHECK(rl_take(&s, &free_tier, 6000).allowed);
}

TEST(repeat_violators_double_up_to_cap)
{
    rl_params_t p = {.limit = 10, .window_s = 60, .burst = 1, .max_block_s = 3600};
    rl_state_t s = {0};
    uint64_t now = 0;
    CHECK(rl_take(&s, &p, now).allowed);
    rl_result_t r = rl_take(&s, &p, now);
    CHECK(!r.allowed);
    CHECK_EQ_INT(r.retry_after_s, 6);
    /* ignoring Retry-After: 12, 24, 48 ... capped at 3600 */
    r = rl_take(&s, &p, now + 1000);
    CHECK_EQ_INT(r.retry_after_s, 12);
    r = rl_take(&s, &p, now + 2000);
    CHECK_EQ_INT(r.retry_after_s, 24);
    for (int i = 0; i < 20; i++)
        r = rl_take(&s, &p, now + 3000 + (uint64_t)i * 1000);
    CHECK(!r.allowed);
    CHECK_EQ_INT(r.retry_after_s, 3600);
    /* waiting the block out lets the next request in, and the block resets */
    uint64_t later = s.block_until;
    CHECK(rl_take(&s, &p, later).allowed);
    CHECK_EQ_INT(s.block_ms, 0);
}

TEST(requests_sent_together_are_one_violation)
{
    /* a page load: ten requests in the same millisecond on a burst of 2 */
    rl_params_t p = {.limit = 10, .window_s = 60, .burst = 2, .max_block_s = 3600};
    rl_state_t s = {0};
    rl_result_t r;
    for (int i = 0; i < 10; i++)
        r = rl_take(&s, &p, 5000);
    CHECK(!r.allowed);
    CHECK(r.retry_after_s <= 6);
}

TEST(honouring_retry_after_never_escalates)
{
    rl_params_t p = {.limit = 10, .window_s = 60, .burst = 1, .max_block_s = 3600};
    rl_state_t s = {0};
    uint64_t now = 0;
    for (int i = 0; i < 10; i++) {
        CHECK(rl_take(&s, &p, now).allowed);
        rl_result_t r = rl_take(&s, &p, now);
        CHECK(!r.allowed);
        CHECK(r.retry_after_s <= 6);
        now += (uint64_t)r.retry_after_s * 1000;
    }
}

TEST(params_parse)
{
    rl_params_t p;
    CHECK(rl_params_parse("60/60/10", &p));
    CHECK_EQ_INT(p.limit, 60);
    CHECK_EQ_INT(p.window_s, 60);
    CHECK_EQ_INT(p.burst, 10);
    CHECK(rl_params_parse("1000/900", &p));
    CHECK_EQ_INT(p.burst, 1000);
    CHECK(!rl_params_parse("0/60", &p));
    CHECK(!rl_params_parse("10", &p));
    CHECK(!rl_params_parse("10/60/x", &p));
    CHECK(!rl_params_parse("10/60/0", &p));
}

static void ip(const char *s, uint8_t out[16])
{
    CHECK(rl_ip_parse(s, strlen(s), true, out));
}

TEST(cidr_parse_and_match)
{
    rl_cidr_t c[8];
    int n = rl_cidr_list_parse(" 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::1", c, 8);
    CHECK_EQ_INT(n, 4);
    uint8_t a[16];
    ip("10.200.3.4", a);
    CHECK(rl_cidr_match(c, n, a));
    ip("11.0.0.1", a);
    CHECK(!rl_cidr_match(c, n, a));
    ip("192.168.1.7", a);
    CHECK(rl_cidr_match(c, n, a));
    ip("192.168.1.8", a);
    CHECK(!rl_cidr_match(c, n, a));
    ip("2001:db8:ffff::1", a);
    CHECK(rl_cidr_match(c, n, a));
    ip("2001:db9::1", a);
    CHECK(!rl_cidr_match(c, n, a));
    ip("::1", a);
    CHECK(rl_cidr_match(c, n, a));
    /* an IPv4 range never matches IPv6 addresses outside ::ffff:0:0/96 */
    rl_cidr_t all4;
    CHECK(rl_cidr_parse(LIT("0.0.0.0/0"), &all4));
    ip("::2", a);
    CHECK(!rl_cidr_match(&all4, 1, a));
    ip("1.2.3.4", a);
    CHECK(rl_cidr_match(&all4, 1, a));
    /* odd prefix lengths */
    rl_cidr_t c9;
    CHECK(rl_cidr_parse(LIT("10.128.0.0/9"), &c9));
    ip("10.200.0.1", a);
    CHECK(rl_cidr_match(&c9, 1, a));
    ip("10.100.0.1", a);
    CHECK(!rl_cidr_match(&c9, 1, a));
    CHECK(rl_cidr_list_parse("10.0.0.0/33", c, 8) < 0);
    CHECK(rl_cidr_list_parse("10.0.0/8", c, 8) < 0);
    CHECK(rl_cidr_list_parse("::/129", c, 8) < 0);
    CHECK(rl_cidr_list_parse("nonsense", c, 8) < 0);
    CHECK_EQ_INT(rl_cidr_list_parse("", c, 8), 0);
}

TEST(ip_parse_ports_and_brackets)
{
    uint8_t a[16], b[16];
    ip("1.2.3.4:5678", a);
    ip("1.2.3.4", b);
    CHECK(memcmp(a, b, 16) == 0);
    ip("[2001:db8::1]:443", a);
    ip("2001:db8::1", b);
    CHECK(memcmp(a, b, 16) == 0);
    CHECK(!rl_ip_parse(LIT("1.2.3"), true, a));
    CHECK(!rl_ip_parse(LIT("unknown"), true, a));
    CHECK(!rl_ip_parse(LIT("1.2.3.4:80"), false, a));
}

static void client(const char *peer, const char *xff, const char *trusted, const char *want)
{
    rl_cidr_t t[8];
    int n = rl_cidr_list_parse(trusted, t, 8);
    uint8_t p[16], out[16], w[16];
    ip(peer, p);
    ip(want, w);
    rl_client_ip(p, xff, strlen(xff), t, n, out);
    if (memcmp(out, w, 16) != 0) {
        printf("  client(%s, \"%s\", %s) is not %s\n", peer, xff, trusted, want);
        test_failed_now = 1;
    }
}

TEST(xff_selection)
{
    /* untrusted peer: X-Forwarded-For is ignored */
    client("203.0.113.9", "1.1.1.1", "10.0.0.0/8", "203.0.113.9");
    client("203.0.113.9", "1.1.1.1", "", "203.0.113.9");
    /* trusted peer: the rightmost untrusted hop */
    client("10.0.0.2", "1.1.1.1", "10.0.0.0/8", "1.1.1.1");
    client("10.0.0.2", "6.6.6.6, 1.1.1.1, 10.0.0.5", "10.0.0.0/8", "1.1.1.1");
    /* a client-supplied spoof on the left never wins over the real hop */
    client("10.0.0.2", "127.0.0.1, 2.2.2.2", "10.0.0.0/8, 127.0.0.1", "2.2.2.2");
    /* all trusted: the leftmost */
    client("10.0.0.2", "10.0.0.9,10.0.0.8", "10.0.0.0/8", "10.0.0.9");
    /* empty header: the peer */
    client("10.0.0.2", "", "10.0.0.0/8", "10.0.0.2");
    /* garbage: the last address we could trust */
    client("10.0.0.2", "1.1.1.1, garbage, 10.0.0.7", "10.0.0.0/8", "10.0.0.7");
    /* ports and IPv6 */
    client("::1", "[2001:db8::5]:1234", "::1", "2001:db8::5");
    client("10.0.0.2", "3.3.3.3:999", "10.0.0.0/8", "3.3.3.3");
}

TEST_MAIN()
