#include "core/logmask.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

TEST(field_names)
{
    const char *yes[] = {"password", "Password",      "new_password",  "accessToken",   "api_key",
                         "apiKey",   "client_secret", "card_number",   "ssn",           "pin",
                         "PIN",      "cvv",           "Authorization", "session_cookie"};
    const char *no[] = {"name",   "email",   "shipping", "spinner",
                        "domain", "opinion", "value",    "cardinality_x"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!log_mask_field(yes[i], strlen(yes[i])))
            printf("  not masked: %s\n", yes[i]);
        CHECK(log_mask_field(yes[i], strlen(yes[i])));
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]) - 1; i++) {
        if (log_mask_field(no[i], strlen(no[i])))
            printf("  masked: %s\n", no[i]);
        CHECK(!log_mask_field(no[i], strlen(no[i])));
    }
}

static bool declared(const char *name, size_t n)
{
    static const char *const names[] = {"name", "nested", "ok", "domain", "body", "password", "id"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
            return true;
    return false;
}

TEST(only_declared_fields_keep_their_values)
{
    log_mask_set_loggable(declared);
    buf_t b = BUF_INIT;
    const char *in =
        "{\"name\":\"Acme\",\"password\":\"hunter2\",\"nested\":{\"token\":{\"a\":1},\"ok\":[1,\"x\"]},"
        "\"zq\":\"crmd_abcdefgh_secret\",\"n\":12345,\"arr\":[\"s3cr3t\"]}";
    log_mask_json(&b, in, strlen(in));
    /* "password" is declared here but looks like a secret: still only its shape */
    CHECK_STRN(
        b.data, b.len,
        "{\"name\":\"Acme\",\"password\":{\"type\":\"string\",\"len\":7},\"nested\":{\"token\":{\"type\":"
        "\"object\",\"len\":1},\"ok\":[1,\"x\"]},\"zq\":{\"type\":\"string\",\"len\":20},\"n\":{\"type\":"
        "\"number\",\"len\":5},\"arr\":{\"type\":\"array\",\"len\":1}}");
    buf_free(&b);
}

/* Property: whatever an undeclared field is called, its value never reaches the log. */
TEST(undeclared_values_never_logged_whatever_the_name)
{
    log_mask_set_loggable(declared);
    static const char *const names[] = {"x",       "k",      "pw",     "pass", "auth",          "bearer",
                                        "sesame",  "apiKey", "ApiKey", "key",  "client_secret", "refresh",
                                        "otp",     "mfa",    "hash",   "salt", "sig",           "signature",
                                        "private", "creds",  "login",  "p",    "value",         "data",
                                        "note"};
    int leaks = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in),
                 "[{\"body\":{\"%s\":\"SECRET-%zu-VALUE\",\"deep\":{\"%s\":[\"SECRET-%zu-VALUE\"]}}}]",
                 names[i], i, names[i], i);
        buf_t b = BUF_INIT;
        log_mask_json(&b, in, strlen(in));
        buf_putc(&b, '\0');
        leaks += strstr(b.data, "SECRET-") != NULL;
        buf_free(&b);
    }
    CHECK_EQ_INT(leaks, 0);
}

TEST(not_json_logs_only_its_size)
{
    buf_t b = BUF_INIT;
    log_mask_json(&b, "password=hunter2", 16);
    CHECK_STRN(b.data, b.len, "{\"bytes\":16}");
    buf_free(&b);
}

TEST(long_bodies_are_cut)
{
    buf_t in = BUF_INIT, out = BUF_INIT;
    buf_putc(&in, '[');
    for (int i = 0; i < 5000; i++)
        buf_append_lit(&in, "\"xxxxxxxxxx\",");
    buf_append_lit(&in, "1]");
    log_mask_json(&out, in.data, in.len);
    CHECK(out.len < LOG_MASK_MAX + 300);
    buf_free(&in);
    buf_free(&out);
}

TEST_MAIN()
