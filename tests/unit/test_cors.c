#include "http/cors.h"
#include "test.h"

static bool allowed(const char *list, const char *origin)
{
    http_cors_list_t l;
    CHECK(http_cors_parse_list(list, &l));
    return http_cors_origin_allowed(&l, origin, strlen(origin));
}

TEST(exact_origins)
{
    const char *list = "https://app.example.com, http://localhost:3000";
    CHECK(allowed(list, "https://app.example.com"));
    CHECK(allowed(list, "http://localhost:3000"));
    CHECK(!allowed(list, "http://app.example.com"));       /* scheme */
    CHECK(!allowed(list, "https://app.example.com:8443")); /* port */
    CHECK(!allowed(list, "http://localhost:3001"));
    CHECK(!allowed(list, "http://localhost"));
}

TEST(no_wildcard_tricks)
{
    const char *list = "https://app.example.com";
    CHECK(!allowed(list, "https://evilapp.example.com"));
    CHECK(!allowed(list, "https://app.example.com.evil.org"));
    CHECK(!allowed(list, "https://evil.org/https://app.example.com"));
    CHECK(!allowed(list, "https://app.example.com@evil.org"));
    CHECK(!allowed(list, "https://app.example.com/"));
    CHECK(!allowed(list, "https://app.example.com/path"));
    CHECK(!allowed(list, "null"));
    CHECK(!allowed(list, "*"));
    CHECK(!allowed(list, ""));
    CHECK(!allowed(list, "https://app.example.co"));
    CHECK(!allowed(list, "https://pp.example.com"));
    CHECK(!allowed(list, "https://app.example.com\r\nX: y"));
    http_cors_list_t l;
    CHECK(!http_cors_parse_list("*", &l)); /* a wildcard is not an origin */
}

TEST(default_ports_and_case)
{
    CHECK(allowed("https://app.example.com", "https://app.example.com:443"));
    CHECK(allowed("https://app.example.com:443", "https://app.example.com"));
    CHECK(allowed("http://x.test", "http://x.test:80"));
    CHECK(allowed("https://App.Example.com", "HTTPS://app.example.COM"));
    CHECK(allowed("https://app.example.com/", "https://app.example.com")); /* config trailing slash */
    CHECK(allowed("http://[::1]:8080", "http://[::1]:8080"));
    CHECK(!allowed("http://[::1]:8080", "http://[::2]:8080"));
}

TEST(bad_lists)
{
    http_cors_list_t l;
    CHECK(!http_cors_parse_list("app.example.com", &l));
    CHECK(!http_cors_parse_list("https://a.com, ftp//b", &l));
    CHECK(!http_cors_parse_list("https://a.com:99999999", &l));
    CHECK(http_cors_parse_list("", &l));
    CHECK_EQ_INT(l.n, 0);
    CHECK(!allowed("", "https://a.com"));
}

TEST_MAIN()
