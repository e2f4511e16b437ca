/*
 * Unit tests for http/parser.c. Cases follow the public corpora of llhttp (test/request),
 * nodejs/http-parser (test.c) and picohttpparser (test.c) and published request-smuggling
 * write-ups (CL.TE, TE.CL, TE.TE), rewritten as our own data. Every head that goes through
 * parse_all_ways() is also parsed split at each byte boundary and fed one byte at a time, and
 * must give the same answer each way.
 */
#include "http/parser.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

static http_request_t req, other;

#define LEN(s) (sizeof(s) - 1)

static int parse_n(const char *s, size_t n)
{
    size_t scan = 0;
    return http_parse_request(s, n, &scan, &req);
}

/* Parses a string literal (which may hold NUL bytes) in one call. */
#define PARSE(s) parse_n((s), LEN(s))

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    return p;
}

/* Same field in two parses of the same bytes held in different buffers. */
static int same_str(http_str_t a, const char *abuf, http_str_t b, const char *bbuf, size_t n)
{
    if (a.len != b.len || !a.p != !b.p)
        return 0;
    if (!a.p)
        return 1;
    int a_in = a.p >= abuf && a.p <= abuf + n, b_in = b.p >= bbuf && b.p <= bbuf + n;
    if (a_in != b_in)
        return 0;
    if (a_in)
        return a.p - abuf == b.p - bbuf;
    return memcmp(a.p, b.p, a.len) == 0;
}

static int same_headers(const http_request_t *a, const char *abuf, const http_request_t *b, const char *bbuf,
                        size_t n)
{
    for (uint32_t i = 0; i < a->num_headers; i++)
        if (!same_str(a->headers[i].name, abuf, b->headers[i].name, bbuf, n) ||
            !same_str(a->headers[i].value, abuf, b->headers[i].value, bbuf, n))
            return 0;
    return 1;
}

static int same_request(const http_request_t *a, const char *abuf, const http_request_t *b, const char *bbuf,
                        size_t n)
{
    if (a->method != b->method || a->version_minor != b->version_minor || a->flags != b->flags ||
        a->content_length != b->content_length || a->num_headers != b->num_headers)
        return 0;
#define SAME(f) (same_str(a->f, abuf, b->f, bbuf, n))
    return SAME(method_str) && SAME(target) && SAME(path) && SAME(query) && SAME(host) &&
           SAME(authorization) && SAME(x_api_key) && SAME(x_request_id) && SAME(accept_encoding) &&
           SAME(if_none_match) && SAME(if_match) && SAME(origin) && SAME(content_type) &&
           SAME(idempotency_key) && SAME(x_forwarded_for) && SAME(access_control_request_method) &&
           SAME(access_control_request_headers) && same_headers(a, abuf, b, bbuf, n);
#undef SAME
}

/*
 * Parses s[0..n) in one call (result left in req), then split in two at every boundary (the
 * first part in a buffer of exactly its size, so over-reads trip ASan), then one byte at a time.
 * Returns the one-call result, or 1000 if any other way disagreed.
 */
static int parse_all_ways(const char *s, size_t n)
{
    char *whole = dup_n(s, n);
    size_t scan = 0;
    int r = http_parse_request(whole, n, &scan, &req);
    int agree = 1;

    for (size_t k = 0; k <= n && agree; k++) {
        char *part = dup_n(s, k);
        char *full = dup_n(s, n);
        scan = 0;
        int r1 = http_parse_request(part, k, &scan, &other);
        int r2 = r1 != 0 ? r1 : http_parse_request(full, n, &scan, &other);
        if (r2 != r)
            agree = 0;
        else if (r > 0 && r1 == 0 && !same_request(&req, whole, &other, full, n))
            agree = 0;
        if (!agree)
            printf("  split at %zu: %d then %d, whole %d\n", k, r1, r2, r);
        free(part);
        free(full);
    }

    scan = 0;
    int rb = 0;
    size_t i;
    for (i = 0; i <= n && rb == 0; i++)
        rb = http_parse_request(whole, i, &scan, &other);
    if (rb != r || (r > 0 && (i != (size_t)r + 1 || !same_request(&req, whole, &other, whole, n)))) {
        printf("  byte at a time: %d at %zu, whole %d\n", rb, i, r);
        agree = 0;
    }
    /* req must describe `whole` for the caller's checks; parse once more into a stable copy. */
    static char keep[HTTP_MAX_HEAD * 2];
    if (n <= sizeof(keep)) {
        memcpy(keep, s, n);
        scan = 0;
        http_parse_request(keep, n, &scan, &req);
    }
    free(whole);
    return agree ? r : 1000;
}

#define ALL_WAYS(s) parse_all_ways((s), LEN(s))

static int header_is(uint32_t i, const char *name, const char *value)
{
    return i < req.num_headers && req.headers[i].name.len == strlen(name) &&
           memcmp(req.headers[i].name.p, name, strlen(name)) == 0 &&
           req.headers[i].value.len == strlen(value) &&
           memcmp(req.headers[i].value.p, value, strlen(value)) == 0;
}

/* ---- valid requests ---- */

TEST(get_with_query)
{
    static const char s[] = "GET /api/items?limit=10&sort=name HTTP/1.1\r\n"
                            "Host: example.com\r\n"
                            "User-Agent: curl/8.0\r\n"
                            "Accept: */*\r\n"
                            "\r\n";
    CHECK_EQ_INT(ALL_WAYS(s), LEN(s));
    CHECK_EQ_INT(req.method, HTTP_GET);
    CHECK_STRN(req.method_str.p, req.method_str.len, "GET");
    CHECK_STRN(req.target.p, req.target.len, "/api/items?limit=10&sort=name");
    CHECK_STRN(req.path.p, req.path.len, "/api/items");
    CHECK_STRN(req.query.p, req.query.len, "limit=10&sort=name");
    CHECK_STRN(req.host.p, req.host.len, "example.com");
    CHECK_EQ_INT(req.version_minor, 1);
    CHECK_EQ_INT(req.num_headers, 3);
    CHECK(header_is(1, "User-Agent", "curl/8.0"));
    CHECK_EQ_INT(req.flags, HTTP_REQ_KEEPALIVE);
}

TEST(get_without_query_has_empty_query)
{
    static const char s[] = "GET /favicon.ico HTTP/1.1\r\nHost: 0.0.0.0=5000\r\n\r\n";
    CHECK_EQ_INT(ALL_WAYS(s), LEN(s));
    CHECK_STRN(req.path.p, req.path.len, "/favicon.ico");
    CHECK_EQ_INT(req.query.len, 0);
    /* a '?' inside the query stays in the query (http-parser "query url with question mark") */
    CHECK(ALL_WAYS("GET /test.cgi?foo=bar?baz HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_STRN(req.path.p, req.path.len, "/test.cgi");
    CHECK_STRN(req.query.p, req.query.len, "foo=bar?baz");
    CHECK(ALL_WAYS("GET /x? HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_STRN(req.path.p, req.path.len, "/x");
    CHECK_EQ_INT(req.query.len, 0);
}

TEST(post_with_content_length_and_body)
{
    static const char s[] = "POST /post_identity_body_world?q=search HTTP/1.1\r\n"
                            "Host: example.com\r\n"
                            "Content-Type: application/json\r\n"
                            "Content-Length: 5\r\n"
                            "\r\n"
                            "World";
    CHECK_EQ_INT(ALL_WAYS(s), LEN(s) - 5);
    CHECK_EQ_INT(req.method, HTTP_POST);
    CHECK_EQ_INT(req.content_length, 5);
    CHECK_EQ_INT(req.flags, HTTP_REQ_KEEPALIVE | HTTP_REQ_HAS_LENGTH);
    CHECK_STRN(req.content_type.p, req.content_type.len, "application/json");
}

TEST(pipelined_two_requests)
{
    static const char s[] = "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
                            "POST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
    size_t scan = 0;
    int n1 = http_parse_request(s, LEN(s), &scan, &req);
    CHECK_EQ_INT(n1, 32);
    CHECK_STRN(req.path.p, req.path.len, "/first");
    scan = 0;
    int n2 = http_parse_request(s + n1, LEN(s) - (size_t)n1, &scan, &req);
    CHECK_EQ_INT(n2, LEN(s) - 32 - 2);
    CHECK_STRN(req.path.p, req.path.len, "/second");
    CHECK_EQ_INT(req.content_length, 2);
    CHECK_STRN(s + n1 + n2, 2, "hi");
}

TEST(methods_map_to_enum)
{
    static const struct {
        const char *line;
        http_method_t m;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_GET},
        {"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_HEAD},
        {"POST / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_POST},
        {"PUT / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_PUT},
        {"PATCH / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_PATCH},
        {"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_DELETE},
        {"OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_OPTIONS},
        /* unknown but well-formed methods are the router's business (405/501) */
        {"PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_OTHER},
        {"PURGE /file.txt HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_OTHER},
        {"M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_OTHER},
        {"get / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_OTHER}, /* methods are case-sensitive */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(parse_n(cases[i].line, strlen(cases[i].line)) > 0);
        CHECK_EQ_INT(req.method, cases[i].m);
    }
}

TEST(bad_method_refused)
{
    CHECK_EQ_INT(PARSE("GE@T / HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n"), -400); /* picohttpparser: NUL */
    CHECK_EQ_INT(PARSE("G\tT / HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE(" / HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    /* an empty line before the request line (http-parser "newline prefix get") */
    CHECK_EQ_INT(PARSE("\r\nGET /test HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
}

TEST(well_known_headers_captured)
{
    static const char s[] = "PUT /r HTTP/1.1\r\n"
                            "hOsT: api.example\r\n"
                            "AUTHORIZATION: Bearer abc\r\n"
                            "x-api-key: k1\r\n"
                            "X-Request-ID: r-42\r\n"
                            "Accept-Encoding: gzip, br\r\n"
                            "If-None-Match: \"e1\"\r\n"
                            "If-Match: \"e2\"\r\n"
                            "Origin: https://app.example\r\n"
                            "Content-Type: text/plain\r\n"
                            "Idempotency-Key: idem-1\r\n"
                            "X-Forwarded-For: 10.0.0.1\r\n"
                            "Access-Control-Request-Method: PUT\r\n"
                            "Access-Control-Request-Headers: x-api-key\r\n"
                            "X-Unknown: kept\r\n"
                            "\r\n";
    CHECK_EQ_INT(ALL_WAYS(s), LEN(s));
    CHECK_STRN(req.host.p, req.host.len, "api.example");
    CHECK_STRN(req.authorization.p, req.authorization.len, "Bearer abc");
    CHECK_STRN(req.x_api_key.p, req.x_api_key.len, "k1");
    CHECK_STRN(req.x_request_id.p, req.x_request_id.len, "r-42");
    CHECK_STRN(req.accept_encoding.p, req.accept_encoding.len, "gzip, br");
    CHECK_STRN(req.if_none_match.p, req.if_none_match.len, "\"e1\"");
    CHECK_STRN(req.if_match.p, req.if_match.len, "\"e2\"");
    CHECK_STRN(req.origin.p, req.origin.len, "https://app.example");
    CHECK_STRN(req.content_type.p, req.content_type.len, "text/plain");
    CHECK_STRN(req.idempotency_key.p, req.idempotency_key.len, "idem-1");
    CHECK_STRN(req.x_forwarded_for.p, req.x_forwarded_for.len, "10.0.0.1");
    CHECK_STRN(req.access_control_request_method.p, req.access_control_request_method.len, "PUT");
    CHECK_STRN(req.access_control_request_headers.p, req.access_control_request_headers.len, "x-api-key");
    CHECK_EQ_INT(req.num_headers, 14);
    CHECK(header_is(13, "X-Unknown", "kept"));
}

TEST(field_value_ows_trimmed)
{
    /* picohttpparser: "foo: a \t " and "foo: \t a" trim to "a"; empty values are fine */
    static const char s[] = "GET / HTTP/1.1\r\n"
                            "Host:example.com\r\n"
                            "X-Foo: \t hello world \t \r\n"
                            "Cookie: \r\n"
                            "X-Empty:\r\n"
                            "\r\n";
    CHECK_EQ_INT(ALL_WAYS(s), LEN(s));
    CHECK(header_is(0, "Host", "example.com"));
    CHECK(header_is(1, "X-Foo", "hello world"));
    CHECK(header_is(2, "Cookie", ""));
    CHECK(header_is(3, "X-Empty", ""));
}

TEST(obs_text_and_tab_allowed_in_values)
{
    /* picohttpparser: UTF-8 in a field value is obs-text, allowed; HTAB inside is allowed */
    static const char s[] =
        "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: \xe3\x81\xb2\xe3/1.0\r\nX-Tab: a\tb\r\n\r\n";
    CHECK_EQ_INT(ALL_WAYS(s), LEN(s));
    CHECK(header_is(1, "User-Agent", "\xe3\x81\xb2\xe3/1.0"));
    CHECK(header_is(2, "X-Tab", "a\tb"));
}

TEST(absolute_form)
{
    CHECK(ALL_WAYS("GET http://hypnotoad.org/a/b?hail=all HTTP/1.1\r\nHost: other.example\r\n\r\n") > 0);
    CHECK_STRN(req.path.p, req.path.len, "/a/b");
    CHECK_STRN(req.query.p, req.query.len, "hail=all");
    CHECK_STRN(req.host.p, req.host.len, "hypnotoad.org"); /* RFC 9112 3.2.2 */
    /* host terminated by a query string, host:port terminated by a space */
    CHECK(ALL_WAYS("GET http://hypnotoad.org?hail=all HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
    CHECK_STRN(req.path.p, req.path.len, "/");
    CHECK_STRN(req.query.p, req.query.len, "hail=all");
    CHECK(ALL_WAYS("GET HTTPS://hypnotoad.org:1234 HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
    CHECK_STRN(req.host.p, req.host.len, "hypnotoad.org:1234");
    CHECK_STRN(req.path.p, req.path.len, "/");
    /* userinfo, other schemes, no authority, authority-form: refused */
    CHECK_EQ_INT(ALL_WAYS("GET http://a%12:b!&*$@hypnotoad.org:1234/toto HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET ftp://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("CONNECT home_0.netscape.com:443 HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET foo/bar HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
}

TEST(options_asterisk)
{
    CHECK(ALL_WAYS("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_EQ_INT(req.method, HTTP_OPTIONS);
    CHECK_STRN(req.path.p, req.path.len, "*");
    CHECK_EQ_INT(req.query.len, 0);
    CHECK_EQ_INT(ALL_WAYS("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
}

TEST(target_bad_bytes)
{
    CHECK_EQ_INT(PARSE("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\n\r\n") > 0, 1);
    CHECK_EQ_INT(PARSE("GET /\x7fhello HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET /\xa0 HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET /\xce\xb4 HTTP/1.1\r\nHost: a\r\n\r\n"), -400); /* must be percent-encoded */
    CHECK_EQ_INT(PARSE("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET /page#frag HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET /%CE%B4?q=\"x\"|{} HTTP/1.1\r\nHost: a\r\n\r\n") > 0, 1);
}

TEST(target_too_long)
{
    static char s[HTTP_MAX_URI + 64];
    size_t n = 0;
    memcpy(s, "GET /", 5);
    n = 5;
    memset(s + n, 'a', HTTP_MAX_URI - 1);
    n += HTTP_MAX_URI - 1; /* target is exactly HTTP_MAX_URI bytes so far */
    CHECK_EQ_INT(parse_n(s, n), HTTP_PARSE_INCOMPLETE);
    s[n] = 'a';
    CHECK_EQ_INT(parse_n(s, n + 1), -414); /* incomplete head, but the target is already too long */
    memcpy(s + n, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
    CHECK(parse_n(s, n + 22) > 0);
    CHECK_EQ_INT(req.target.len, HTTP_MAX_URI);
}

TEST(version_rules)
{
    CHECK_EQ_INT(PARSE("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -505);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), -505);
    CHECK_EQ_INT(PARSE("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), -505);
    CHECK_EQ_INT(PARSE("GET / HTTP/5.6\r\nHost: a\r\n\r\n"), -505); /* llhttp "invalid HTTP version" */
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / http/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/11.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET /music/sweet/music ICE/1.0\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET /music/sweet/music IHTTP/1.0\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET /\r\n\r\n"), -400); /* HTTP/0.9 request line */
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/2.0\r\n\r\n"), -505);
}

TEST(bare_cr_and_bare_lf)
{
    /* llhttp "only LFs present", "headers separated by CR/LF", "dummy characters" */
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/1.1\nHost: a\n\n"), -400);
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/1.1\r\nFoo: 1\rBar: 2\r\n\r\n"), -400);
    CHECK_EQ_INT(
        ALL_WAYS("POST / HTTP/1.1\r\nHost: localhost:5000\r\nx:x\nTransfer-Encoding: chunked\r\n\r\n"), -400);
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nx:\rTransfer-Encoding: chunked\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: localhost\r\nDummy: x\nContent-Length: 23\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\n\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), -400);
}

TEST(control_bytes_refused)
{
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nab: c\0d\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\na\033b: c\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nFoo\001\test: Bar\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nX: del\x7f\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nX: \x0b\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nFo@: Failure\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\n/: 1\r\n\r\n"), -400);
    /* llhttp "corrupted Connection header" */
    CHECK_EQ_INT(
        PARSE("GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection\r\033\065\325eep-Alive\r\n\r\n"), -400);
}

TEST(obs_fold_refused)
{
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/1.1\r\nHost: a\r\nX-Foo: bar\r\n baz\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nfoo: b\r\n  \tc\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\n Host: foo\r\n\r\n"), -400); /* space after the start line */
    CHECK_EQ_INT(PARSE("POST /hello HTTP/1.1\r\nHost: a\r\nFoo: bar\r\n Content-Length: 38\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nname\r\n : value\r\n\r\n"), -400);
}

TEST(field_name_rules)
{
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nfoo\t: ab\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\n: Bar\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\n:a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nno-colon\r\n\r\n"), -400);
}

TEST(head_too_large)
{
    static char s[HTTP_MAX_HEAD + 64];
    const char *line = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    size_t n = strlen(line);
    memcpy(s, line, n);
    /* pad the value so the head is exactly HTTP_MAX_HEAD bytes */
    memset(s + n, 'p', HTTP_MAX_HEAD - n - 4);
    memcpy(s + HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
    CHECK_EQ_INT(parse_n(s, HTTP_MAX_HEAD), HTTP_MAX_HEAD);
    CHECK_EQ_INT(parse_n(s, HTTP_MAX_HEAD - 1), HTTP_PARSE_INCOMPLETE);
    /* one more byte of padding: 431 as soon as the limit is passed without a complete head */
    memset(s + n, 'p', HTTP_MAX_HEAD - n);
    CHECK_EQ_INT(parse_n(s, HTTP_MAX_HEAD), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse_n(s, HTTP_MAX_HEAD + 1), -431);
    size_t scan = 0;
    CHECK_EQ_INT(http_parse_request(s, HTTP_MAX_HEAD - 100, &scan, &req), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(http_parse_request(s, HTTP_MAX_HEAD + 1, &scan, &req), -431);
}

static size_t build_fields(char *s, int count)
{
    size_t n = (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < count; i++)
        n += (size_t)sprintf(s + n, "X-F%d: %d\r\n", i, i);
    return n + (size_t)sprintf(s + n, "\r\n");
}

TEST(too_many_fields)
{
    static char s[4096];
    size_t n = build_fields(s, HTTP_MAX_HEADERS);
    CHECK_EQ_INT(parse_all_ways(s, n), n);
    CHECK_EQ_INT(req.num_headers, HTTP_MAX_HEADERS);
    n = build_fields(s, HTTP_MAX_HEADERS + 1);
    CHECK_EQ_INT(parse_all_ways(s, n), -431);
    /* reported as soon as the 101st line begins */
    CHECK_EQ_INT(parse_n(s, n - 2 - strlen("X-F100: 100\r\n") + 1), -431);
}

TEST(host_rules)
{
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), -400);
    CHECK_EQ_INT(ALL_WAYS("GET / HTTP/1.0\r\n\r\n"), 18);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), -400);
    CHECK(PARSE("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") > 0);
    /* an "http" URI with an empty host is invalid (RFC 9110 4.2.1), so is an empty Host */
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost:\r\n\r\n"), -400);
}

/* Every Host shape: valid uri-host[:port] values parse, everything else is 400, whatever the
 * version, and the absolute-form authority obeys the same rule. */
TEST(host_values_table)
{
    static const char *const good[] = {
        "a",
        "example.com",
        "EXAMPLE.com.",
        "127.0.0.1",
        "127.0.0.1:80",
        "localhost:8080",
        "a:",
        "a:65535",
        "[::1]",
        "[::1]:443",
        "[2001:db8::7]",
        "[v1.fe]",
        "xn--bcher-kva.example",
        "a%20b",
        "a-b_c~d",
        "a!$&'()*+;=",
        "0.0.0.0=5000",
    };
    static const char *const bad[] = {
        "",         " ",       ":80",  ":",    "a b",  "a,b",         "user@a", "a:80:90",
        "a:123456", "a:65536", "a:8x", "a:-1", "[::1", "::1]",        "[]",     "[::1]x",
        "[g::1]",   "a%2",     "a%zz", "a/b",  "a?b",  "a#b",         "a\"b",   "a<b",
        "a{b}",     "a\\b",    "a^b",  "a|b",  "a`b",  "[::1]:99999", "\x80",   "\xc3\xa9.example",
    };
    char head[256];
    for (size_t i = 0; i < (sizeof(good) / sizeof(good[0])); i++) {
        int n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
        if (parse_n(head, (size_t)n) <= 0)
            printf("  Host %s refused\n", good[i]);
        CHECK(parse_n(head, (size_t)n) > 0);
        n = snprintf(head, sizeof(head), "GET http://%s/x HTTP/1.1\r\nHost: a\r\n\r\n", good[i]);
        CHECK(parse_n(head, (size_t)n) > 0);
    }
    for (size_t i = 0; i < (sizeof(bad) / sizeof(bad[0])); i++) {
        int n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
        if (parse_n(head, (size_t)n) != -400)
            printf("  Host '%s' accepted\n", bad[i]);
        CHECK_EQ_INT(parse_n(head, (size_t)n), -400);
        n = snprintf(head, sizeof(head), "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", bad[i]);
        CHECK_EQ_INT(parse_n(head, (size_t)n), -400);
        if (strpbrk(bad[i], "/?# ") || !bad[i][0])
            continue; /* these end or break the authority in a target */
        n = snprintf(head, sizeof(head), "GET http://%s/x HTTP/1.1\r\nHost: a\r\n\r\n", bad[i]);
        CHECK_EQ_INT(parse_n(head, (size_t)n), -400);
    }
}

TEST(content_length_valid)
{
    CHECK(ALL_WAYS("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_HAS_LENGTH, HTTP_REQ_HAS_LENGTH);
    CHECK_EQ_INT(req.content_length, 0);
    CHECK(ALL_WAYS("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\ncontent-length: 42\r\n\r\n") > 0);
    CHECK_EQ_INT(req.content_length, 42);
    CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7 ,7\r\n\r\n") > 0);
    CHECK_EQ_INT(req.content_length, 7);
    CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n") > 0);
    CHECK_EQ_INT(req.content_length, INT64_MAX);
}

TEST(content_length_refused)
{
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), -400);
    CHECK_EQ_INT(ALL_WAYS("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n"), -400);
}

TEST(transfer_encoding_chunked)
{
    static const char s[] = "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n0\r\n\r\n";
    CHECK_EQ_INT(ALL_WAYS(s), LEN(s) - 15);
    CHECK_EQ_INT(req.flags, HTTP_REQ_KEEPALIVE | HTTP_REQ_CHUNKED);
    CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_CHUNKED, HTTP_REQ_CHUNKED);
    /* TE.TE: a tab is valid OWS, so this is plain chunked */
    CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\t\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_CHUNKED, HTTP_REQ_CHUNKED);
}

TEST(smuggling_cl_te)
{
    /* CL.TE and TE.CL: both framings present, whatever the order */
    CHECK_EQ_INT(
        ALL_WAYS("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "0\r\n\r\nSMUGGLED"),
        -400);
    CHECK_EQ_INT(
        PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), -400);
    /* even with a coding we would refuse with 501, the ambiguity wins */
    CHECK_EQ_INT(
        PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n"),
        -400);
    /* an empty TE beside CL (llhttp) */
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\n"),
                 -400);
}

TEST(smuggling_te_obfuscations)
{
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), -501);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: pigeons\r\n\r\n"), -501);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"), -501);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), -501);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), -400);
    CHECK_EQ_INT(
        PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n"),
        -400);
    CHECK_EQ_INT(
        PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
        -501);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0b"
                       "chunked\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.1\r\nHost: a\r\nFoo: x\r\n Transfer-Encoding: chunked\r\n\r\n"), -400);
}

TEST(transfer_encoding_in_http10)
{
    CHECK_EQ_INT(ALL_WAYS("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n"), -400);
}

TEST(connection_keepalive_http11)
{
    CHECK(ALL_WAYS("GET / HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_KEEPALIVE, HTTP_REQ_KEEPALIVE);
    CHECK(ALL_WAYS("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_KEEPALIVE, 0);
    CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_KEEPALIVE, 0);
    CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_KEEPALIVE, 0);
    CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_KEEPALIVE, HTTP_REQ_KEEPALIVE);
}

TEST(connection_keepalive_http10)
{
    CHECK(ALL_WAYS("GET / HTTP/1.0\r\n\r\n") > 0);
    CHECK_EQ_INT(req.version_minor, 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_KEEPALIVE, 0);
    CHECK(ALL_WAYS("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_KEEPALIVE, HTTP_REQ_KEEPALIVE);
    CHECK(PARSE("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_KEEPALIVE, 0);
}

TEST(expect_rules)
{
    CHECK(ALL_WAYS("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_EXPECT_CONTINUE, HTTP_REQ_EXPECT_CONTINUE);
    CHECK(PARSE("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_EXPECT_CONTINUE, HTTP_REQ_EXPECT_CONTINUE);
    CHECK_EQ_INT(ALL_WAYS("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"), -417);
    CHECK_EQ_INT(PARSE("PUT / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n"), -417);
    /* RFC 9110 10.1.1: a 100-continue from an HTTP/1.0 client is ignored */
    CHECK(PARSE("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n") > 0);
    CHECK_EQ_INT(req.flags & HTTP_REQ_EXPECT_CONTINUE, 0);
}

TEST(duplicate_credentials)
{
    CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic x\r\nAuthorization: Basic x\r\n\r\n") > 0);
    CHECK_EQ_INT(
        ALL_WAYS("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic x\r\nAuthorization: Basic y\r\n\r\n"),
        -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nX-API-Key: one\r\nx-api-key: two\r\n\r\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: 1\r\nX-Request-Id: 2\r\n\r\n"), -400);
    CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: 1\r\nX-Request-Id:  1 \r\n\r\n") > 0);
}

TEST(list_headers_keep_every_line)
{
    CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nAccept-Encoding: br\r\n"
                "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n") > 0);
    CHECK_STRN(req.accept_encoding.p, req.accept_encoding.len, "gzip");
    CHECK_STRN(req.x_forwarded_for.p, req.x_forwarded_for.len, "2.2.2.2");
    CHECK(header_is(2, "Accept-Encoding", "br"));
    CHECK_EQ_INT(req.num_headers, 5);
}

TEST(incomplete_heads)
{
    /* picohttpparser's partial inputs */
    CHECK_EQ_INT(PARSE("GET"), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(PARSE("GET "), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(PARSE("GET /"), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(PARSE("GET / HTTP/1."), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\n\r"), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(PARSE(""), HTTP_PARSE_INCOMPLETE);
}

TEST(early_errors_before_head_complete)
{
    CHECK_EQ_INT(PARSE("GET /a\0"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\nX: \x01"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\n"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/2.0\r"), -505);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost: a\r\n folded"), -400);
    CHECK_EQ_INT(PARSE("GET / HTTP/1.1\r\nHost : a"), -400);
}

TEST(scan_resumes_where_it_stopped)
{
    static const char s[] = "GET /resume HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789\r\n\r\n";
    size_t scan = 0;
    CHECK_EQ_INT(http_parse_request(s, 20, &scan, &req), HTTP_PARSE_INCOMPLETE);
    size_t first = scan;
    CHECK(first != 0);
    CHECK_EQ_INT(http_parse_request(s, 40, &scan, &req), HTTP_PARSE_INCOMPLETE);
    CHECK(scan != first);
    /* no new bytes: still incomplete, nothing changes */
    size_t again = scan;
    CHECK_EQ_INT(http_parse_request(s, 40, &scan, &req), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(scan, again);
    CHECK_EQ_INT(http_parse_request(s, LEN(s), &scan, &req), LEN(s));
    CHECK_STRN(req.path.p, req.path.len, "/resume");
    CHECK(header_is(1, "X-Long", "0123456789"));
}

TEST(every_split_agrees)
{
    static const char *const heads[] = {
        "GET /test HTTP/1.1\r\nUser-Agent: curl/7.18.0 (i486-pc-linux-gnu) libcurl/7.18.0 OpenSSL/0.9.8g\r\n"
        "Host: 0.0.0.0=5000\r\nAccept: */*\r\n\r\n",
        "GET /favicon.ico HTTP/1.1\r\nHost: 0.0.0.0=5000\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n"
        "Accept-Language: en-us,en;q=0.5\r\nAccept-Encoding: gzip,deflate\r\nKeep-Alive: 300\r\n"
        "Connection: keep-alive\r\n\r\n",
        "GET /dumbluck HTTP/1.1\r\naaaaaaaaaaaaa:++++++++++\r\nHost: a\r\n\r\n",
        "POST /post_chunked_all_your_base HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1e\r\nall your base are belong to us\r\n0\r\n\r\n",
        "GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nSec-WebSocket-Key2: 12998 5 Y3 1  "
        ".P00\r\n"
        "Upgrade: WebSocket\r\n\r\nHot^",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://example.org:8080/p?q=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nExpect: nope\r\nHost: b\r\nX: \x01\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: bar\r\n\tbaz\r\n\r\n",
        "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        int r = parse_all_ways(heads[i], strlen(heads[i]));
        CHECK(r != 1000);
        CHECK(r != HTTP_PARSE_INCOMPLETE);
    }
}

/* ---- chunked bodies ---- */

/*
 * Decodes raw[0..n) fed in pieces of `step` bytes (each piece in its own buffer); the decoded
 * bytes are appended to out. Returns the decoder's last result; *used counts raw bytes consumed.
 */
static int dechunk(const char *raw, size_t n, size_t step, uint64_t limit, char *out, size_t *outlen,
                   size_t *used)
{
    http_chunked_t d = {.limit = limit};
    int r = 0;
    *outlen = 0;
    *used = 0;
    for (size_t off = 0; off < n && r == 0; off += step) {
        size_t len = step < n - off ? step : n - off, cons = 0;
        char *piece = dup_n(raw + off, len);
        size_t in = len;
        r = http_chunked_decode(&d, piece, &len, &cons);
        memcpy(out + *outlen, piece, len);
        *outlen += len;
        *used += cons;
        if (r == 0 && cons != in)
            r = 999;
        free(piece);
    }
    return r;
}

TEST(chunked_basic)
{
    static const char raw[] = "5\r\nhello\r\n6\r\n world\r\n000\r\n\r\n";
    char out[64];
    size_t olen, used;
    CHECK_EQ_INT(dechunk(raw, LEN(raw), LEN(raw), 1 << 20, out, &olen, &used), 1);
    CHECK_STRN(out, olen, "hello world");
    CHECK_EQ_INT(used, LEN(raw));
    /* upper and lower case sizes (llhttp) */
    CHECK_EQ_INT(dechunk("a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", 35, 35, 100, out, &olen, &used),
                 1);
    CHECK_EQ_INT(olen, 20);
}

TEST(chunked_one_byte_at_a_time)
{
    static const char raw[] =
        "1e;ext=\"q\"\r\nall your base are belong to us\r\n3\r\nabc\r\n0\r\nVary: *\r\n\r\n";
    char out[64], out1[64];
    size_t olen, used, olen1, used1;
    CHECK_EQ_INT(dechunk(raw, LEN(raw), LEN(raw), 1000, out, &olen, &used), 1);
    CHECK_EQ_INT(dechunk(raw, LEN(raw), 1, 1000, out1, &olen1, &used1), 1);
    CHECK_STRN(out1, olen1, "all your base are belong to usabc");
    CHECK_EQ_INT(olen, olen1);
    CHECK_EQ_INT(used1, LEN(raw));
    for (size_t step = 2; step < LEN(raw); step++)
        CHECK_EQ_INT(dechunk(raw, LEN(raw), step, 1000, out1, &olen1, &used1) == 1 && olen1 == olen, 1);
}

TEST(chunked_extensions_and_trailers)
{
    static const char raw[] = "5;ilovew3;somuchlove=aretheseparametersfor;another=withvalue\r\nhello\r\n"
                              "6;blahblah;blah\r\n world\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n";
    char out[64];
    size_t olen, used;
    CHECK_EQ_INT(dechunk(raw, LEN(raw), LEN(raw), 100, out, &olen, &used), 1);
    CHECK_STRN(out, olen, "hello world");
    /* a bad trailer line is still refused */
    CHECK_EQ_INT(dechunk("0\r\nVary *\r\n\r\n", 13, 13, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("0\r\n folded: x\r\n\r\n", 18, 18, 100, out, &olen, &used), -400);
}

TEST(chunked_bad_sizes)
{
    char out[64];
    size_t olen, used;
    CHECK_EQ_INT(dechunk("\r\nhello\r\n0\r\n\r\n", 14, 14, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk(";x\r\n", 4, 4, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("g\r\n", 3, 3, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("-1\r\n", 4, 4, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("0x5\r\n", 5, 5, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk(" 5\r\n", 4, 4, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("2 erfrferferf\r\naa\r\n", 19, 19, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("00000000000000001\r\n", 19, 19, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("8000000000000000\r\n", 18, 18, UINT64_MAX, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("7fffffffffffffff\r\n", 18, 18, UINT64_MAX, out, &olen, &used), 0);
}

TEST(chunked_framing_errors)
{
    char out[64];
    size_t olen, used;
    CHECK_EQ_INT(dechunk("5\r\nhelloX\r\n0\r\n\r\n", 17, 17, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("5\r\nhello\n0\r\n\r\n", 14, 14, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("5\nhello\r\n0\r\n\r\n", 14, 14, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("5\rhello\r\n", 9, 9, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("0\r\n\n", 4, 4, 100, out, &olen, &used), -400);
    CHECK_EQ_INT(dechunk("1;a\0b\r\nx\r\n", 10, 10, 100, out, &olen, &used), -400);
}

TEST(chunked_extension_line_cap)
{
    static char raw[8192];
    char out[64];
    size_t olen, used;
    raw[0] = '1';
    raw[1] = ';';
    memset(raw + 2, 'e', 4093); /* 4095 bytes, with CR 4096: at the cap */
    memcpy(raw + 4095, "\r\nx\r\n0\r\n\r\n", 10);
    CHECK_EQ_INT(dechunk(raw, 4105, 4105, 100, out, &olen, &used), 1);
    memset(raw + 2, 'e', 4094);
    memcpy(raw + 4096, "\r\nx\r\n0\r\n\r\n", 10);
    CHECK_EQ_INT(dechunk(raw, 4106, 4106, 100, out, &olen, &used), -400);
}

TEST(chunked_trailer_cap)
{
    static char raw[16384];
    char out[64];
    size_t olen, used, n = 0;
    n += (size_t)sprintf(raw, "0\r\n");
    while (n < 3 + 8192)
        n += (size_t)sprintf(raw + n, "X-Trailer-Pad: %0100d\r\n", 0);
    n += (size_t)sprintf(raw + n, "\r\n");
    CHECK_EQ_INT(dechunk(raw, n, n, 100, out, &olen, &used), -400);
    size_t some = 3 + 4 * LEN("X-Trailer-Pad: \r\n") + 4 * 100; /* four whole lines, no end yet */
    CHECK_EQ_INT(dechunk(raw, some, some, 100, out, &olen, &used), 0);
}

TEST(chunked_limit)
{
    char out[64];
    size_t olen, used;
    CHECK_EQ_INT(dechunk("a\r\n0123456789\r\n0\r\n\r\n", 20, 20, 10, out, &olen, &used), 1);
    CHECK_EQ_INT(dechunk("a\r\n0123456789\r\n1\r\nx\r\n0\r\n\r\n", 26, 26, 10, out, &olen, &used), -413);
    CHECK_EQ_INT(dechunk("b\r\n", 3, 3, 10, out, &olen, &used), -413);
}

TEST(chunked_bodies_back_to_back)
{
    static const char raw[] = "3\r\nabc\r\n0\r\n\r\n"
                              "2\r\nde\r\n0\r\n\r\n"
                              "GET / HTTP/1.1\r\n";
    char buf[sizeof(raw)];
    memcpy(buf, raw, sizeof(raw));
    http_chunked_t d = {.limit = 100};
    size_t len = LEN(raw), used;
    CHECK_EQ_INT(http_chunked_decode(&d, buf, &len, &used), 1);
    CHECK_STRN(buf, len, "abc");
    CHECK_EQ_INT(used, 13);
    d = (http_chunked_t){.limit = 100};
    size_t off = used;
    len = LEN(raw) - off;
    CHECK_EQ_INT(http_chunked_decode(&d, buf + off, &len, &used), 1);
    CHECK_STRN(buf + off, len, "de");
    CHECK_STRN(buf + off + used, 16, "GET / HTTP/1.1\r\n");
}

/* ---- URL helpers ---- */

TEST(url_decode)
{
    char out[64];
    CHECK_EQ_INT(http_url_decode(out, "%41%62c", 7, 0), 3);
    CHECK_STRN(out, 3, "Abc");
    CHECK_EQ_INT(http_url_decode(out, "a%2fb%2F", 8, 0), 4);
    CHECK_STRN(out, 4, "a/b/");
    CHECK_EQ_INT(http_url_decode(out, "a+b", 3, 1), 3);
    CHECK_STRN(out, 3, "a b");
    CHECK_EQ_INT(http_url_decode(out, "a+b", 3, 0), 3);
    CHECK_STRN(out, 3, "a+b");
    CHECK_EQ_INT(http_url_decode(out, "%C3%A9", 6, 0), 2);
    CHECK_EQ_INT(http_url_decode(out, "", 0, 0), 0);
    char inplace[] = "x%20y%3Dz";
    CHECK_EQ_INT(http_url_decode(inplace, inplace, 9, 0), 5);
    CHECK_STRN(inplace, 5, "x y=z");
}

/* A path decodes segment by segment: %2F (either case) stays data in its segment. */
TEST(path_decode_keeps_encoded_slash)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/api/companies/1", "/api/companies/1"},
        {"/api%2Fcompanies", "/api%2Fcompanies"},
        {"/api%2fcompanies", "/api%2Fcompanies"},
        {"/api/companies%2F1", "/api/companies%2F1"},
        {"/a%20b/%41", "/a b/A"},
        {"/%252F", "/%2F"},
        {"/%C3%A9/x", "/\xc3\xa9/x"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long n = http_path_decode(out, cases[i].in, strlen(cases[i].in));
        CHECK_EQ_INT(n, (long)strlen(cases[i].out));
        CHECK_STRN(out, (size_t)n, cases[i].out);
    }
    CHECK_EQ_INT(http_path_decode(out, "/%2", 3), -1);
    CHECK_EQ_INT(http_path_decode(out, "/%00", 4), -1);
    CHECK_EQ_INT(http_path_decode(out, "/%zz", 4), -1);
}

TEST(url_decode_refusals)
{
    char out[64];
    CHECK_EQ_INT(http_url_decode(out, "%4", 2, 0), -1);
    CHECK_EQ_INT(http_url_decode(out, "ab%", 3, 0), -1);
    CHECK_EQ_INT(http_url_decode(out, "%zz", 3, 0), -1);
    CHECK_EQ_INT(http_url_decode(out, "%4g", 3, 0), -1);
    CHECK_EQ_INT(http_url_decode(out, "a%00b", 5, 0), -1);
    CHECK_EQ_INT(http_url_decode(out, "%0a", 3, 0), -1);
    CHECK_EQ_INT(http_url_decode(out, "%1F", 3, 0), -1);
    CHECK_EQ_INT(http_url_decode(out, "%7f", 3, 0), -1);
    CHECK_EQ_INT(http_url_decode(out, "a\tb", 3, 0), -1);
}

static int next_is(http_query_iter_t *it, const char *k, const char *v)
{
    http_str_t key, value;
    if (!http_query_next(it, &key, &value))
        return 0;
    return key.len == strlen(k) && memcmp(key.p, k, key.len) == 0 && value.len == strlen(v) &&
           memcmp(value.p, v, value.len) == 0;
}

TEST(query_iteration)
{
    static const char q[] = "a=1&&b=2&flag&=x&d=&k=v=w&=&";
    http_query_iter_t it;
    http_str_t k, v;
    http_query_init(&it, (http_str_t){q, LEN(q)});
    CHECK(next_is(&it, "a", "1"));
    CHECK(next_is(&it, "b", "2"));
    CHECK(next_is(&it, "flag", ""));
    CHECK(next_is(&it, "", "x"));
    CHECK(next_is(&it, "d", ""));
    CHECK(next_is(&it, "k", "v=w"));
    CHECK(next_is(&it, "", "")); /* "=" is a pair, not an empty one */
    CHECK_EQ_INT(http_query_next(&it, &k, &v), 0);
    http_query_init(&it, (http_str_t){"&&&", 3});
    CHECK_EQ_INT(http_query_next(&it, &k, &v), 0);
    http_query_init(&it, (http_str_t){NULL, 0});
    CHECK_EQ_INT(http_query_next(&it, &k, &v), 0);
}

TEST(query_from_parsed_request)
{
    CHECK(PARSE("GET /search?q=caf%C3%A9+au+lait&page=2 HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    http_query_iter_t it;
    http_str_t k, v;
    char out[64];
    http_query_init(&it, req.query);
    CHECK(http_query_next(&it, &k, &v));
    CHECK_STRN(k.p, k.len, "q");
    long n = http_url_decode(out, v.p, v.len, 1);
    CHECK_STRN(out, (size_t)n, "caf\xc3\xa9 au lait");
    CHECK(next_is(&it, "page", "2"));
}

TEST(str_ieq)
{
    CHECK(http_str_ieq((http_str_t){"Content-LENGTH", 14}, "content-length", 14));
    CHECK(!http_str_ieq((http_str_t){"content-lengt", 13}, "content-length", 14));
    CHECK(!http_str_ieq((http_str_t){"\x11"
                                     "00-continue",
                                     12},
                        "100-continue", 12));
    CHECK(http_str_ieq((http_str_t){"", 0}, "", 0));
}

TEST_MAIN()
