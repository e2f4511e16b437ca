#include "api/common.h"
#include "core/buf.h"
#include "core/common.h"
#include "test.h"

#include <string.h>

/* common.c releases failed batches; the unit test has no pool (the real one wins when linked). */
__attribute__((weak)) void db_batch_release(db_batch_t *b)
{
    (void)b;
}

static int ts_ok(const char *pg, const char *want)
{
    char out[API_TS_LEN];
    if (!api_ts_rfc3339(pg, strlen(pg), out))
        return want == NULL;
    return want && memcmp(out, want, API_TS_LEN) == 0 && strlen(want) == API_TS_LEN;
}

TEST(timestamps)
{
    CHECK(ts_ok("2026-01-17 10:30:00.123456+00", "2026-01-17T10:30:00Z"));
    CHECK(ts_ok("2026-01-17 10:30:00+00", "2026-01-17T10:30:00Z"));
    CHECK(ts_ok("1999-12-31 23:59:59.5+00", "1999-12-31T23:59:59Z"));
    CHECK(ts_ok("2026-01-17 10:30:00+02", NULL));
    CHECK(ts_ok("2026-01-17 10:30:00.+00", NULL));
    CHECK(ts_ok("infinity", NULL));
    CHECK(ts_ok("2026-01-17T10:30:00Z", NULL));
    CHECK(ts_ok("", NULL));
    CHECK(ts_ok("12026-01-17 10:30:00+00", NULL));
}

static void money(const char *pg, const char *want)
{
    buf_t b = BUF_INIT;
    api_json_money(&b, pg, strlen(pg));
    CHECK_STRN(b.data, b.len, want);
    buf_free(&b);
}

TEST(money_values)
{
    money("1234.50", "1234.5");
    money("1234.56", "1234.56");
    money("1200.00", "1200");
    money("0.00", "0");
    money("0.05", "0.05");
    money("7", "7");
    money("-12.30", "-12.3");
    money("-0.00", "0");
    money("99999999999999.99", "99999999999999.99");
    money("1.005", "1.01");
    money("1.004", "1");
    money("9.999", "10");
    money("-9.995", "-10");
    money("123.4567", "123.46");
    money("0.333333333333333333", "0.33");
    money("NaN", "null");
    money("", "null");
    money("1e5", "null");
    money(".5", "null");
    money("5.", "null");
}

static api_value_t v;
static arena_t arena;

static const char *check(uint8_t kind, const char *s)
{
    static const char *const colors[] = {"open", "won", "lost", NULL};
    api_param_t p = {"x", kind, 10, colors};
    return api_param_check(&arena, &p, s, strlen(s), &v);
}

TEST(param_ids)
{
    arena_init(&arena, NULL, 0);
    CHECK(check(PARAM_ID, "1") == NULL && v.i == 1 && strcmp(v.s, "1") == 0);
    CHECK(check(PARAM_ID, "9223372036854775807") == NULL && v.i == INT64_MAX);
    CHECK(check(PARAM_ID, "9223372036854775808") != NULL);
    CHECK(check(PARAM_ID, "0") != NULL);
    CHECK(check(PARAM_ID, "-1") != NULL);
    CHECK(check(PARAM_ID, "+1") != NULL);
    CHECK(check(PARAM_ID, "1a") != NULL);
    CHECK(check(PARAM_ID, "") != NULL);
    CHECK(check(PARAM_ID, " 1") != NULL);
    CHECK(check(PARAM_ID, "007") == NULL && strcmp(v.s, "7") == 0);
    arena_destroy(&arena);
}

TEST(param_limit)
{
    arena_init(&arena, NULL, 0);
    CHECK(check(PARAM_LIMIT, "1") == NULL && v.i == 1);
    CHECK(check(PARAM_LIMIT, "200") == NULL && v.i == 200);
    CHECK(check(PARAM_LIMIT, "50") == NULL && v.i == 50);
    const char *e = check(PARAM_LIMIT, "201");
    CHECK(e && strcmp(e, "must be 1..200") == 0);
    CHECK(check(PARAM_LIMIT, "0") != NULL);
    CHECK(check(PARAM_LIMIT, "-5") != NULL);
    CHECK(check(PARAM_LIMIT, "1000") != NULL);
    CHECK(check(PARAM_LIMIT, "abc") != NULL);
    CHECK(check(PARAM_LIMIT, "") != NULL);
    arena_destroy(&arena);
}

TEST(param_dates_and_times)
{
    arena_init(&arena, NULL, 0);
    CHECK(check(PARAM_DATE, "2026-01-17") == NULL);
    CHECK(check(PARAM_DATE, "2024-02-29") == NULL);
    CHECK(check(PARAM_DATE, "2023-02-29") != NULL);
    CHECK(check(PARAM_DATE, "1900-02-29") != NULL);
    CHECK(check(PARAM_DATE, "2000-02-29") == NULL);
    CHECK(check(PARAM_DATE, "2026-13-01") != NULL);
    CHECK(check(PARAM_DATE, "2026-04-31") != NULL);
    CHECK(check(PARAM_DATE, "2026-1-17") != NULL);
    CHECK(check(PARAM_DATE, "2026-01-17T00:00:00Z") != NULL);
    CHECK(check(PARAM_DATE, "0000-01-01") != NULL);
    CHECK(check(PARAM_TIME, "2026-01-17") == NULL && strcmp(v.s, "2026-01-17T00:00:00Z") == 0);
    CHECK(check(PARAM_TIME, "2026-01-17T10:30:00Z") == NULL && strcmp(v.s, "2026-01-17T10:30:00Z") == 0);
    CHECK(check(PARAM_TIME, "2026-01-17T10:30:00.123+02:00") == NULL);
    CHECK(check(PARAM_TIME, "2026-01-17T10:30:00-05:30") == NULL);
    CHECK(check(PARAM_TIME, "2026-01-17T24:00:00Z") != NULL);
    CHECK(check(PARAM_TIME, "2026-01-17T10:30:00") != NULL);
    CHECK(check(PARAM_TIME, "2026-01-17 10:30:00Z") != NULL);
    CHECK(check(PARAM_TIME, "2026-01-17T10:30:00+2") != NULL);
    CHECK(check(PARAM_TIME, "yesterday") != NULL);
    arena_destroy(&arena);
}

TEST(param_decimals)
{
    arena_init(&arena, NULL, 0);
    CHECK(check(PARAM_DECIMAL, "100") == NULL && strcmp(v.s, "100") == 0);
    CHECK(check(PARAM_DECIMAL, "100.50") == NULL && strcmp(v.s, "100.5") == 0);
    CHECK(check(PARAM_DECIMAL, "100.00") == NULL && strcmp(v.s, "100") == 0);
    CHECK(check(PARAM_DECIMAL, "0007.25") == NULL && strcmp(v.s, "7.25") == 0);
    CHECK(check(PARAM_DECIMAL, "-0.0") == NULL && strcmp(v.s, "0") == 0);
    CHECK(check(PARAM_DECIMAL, "-3.5") == NULL && strcmp(v.s, "-3.5") == 0);
    CHECK(check(PARAM_DECIMAL, "1.1234567") != NULL);
    CHECK(check(PARAM_DECIMAL, "1e5") != NULL);
    CHECK(check(PARAM_DECIMAL, ".5") != NULL);
    CHECK(check(PARAM_DECIMAL, "5.") != NULL);
    CHECK(check(PARAM_DECIMAL, "NaN") != NULL);
    CHECK(check(PARAM_DECIMAL, "1234567890123456") != NULL);
    CHECK(check(PARAM_DECIMAL, "") != NULL);
    arena_destroy(&arena);
}

TEST(param_enum_bool_text)
{
    arena_init(&arena, NULL, 0);
    CHECK(check(PARAM_ENUM, "won") == NULL && strcmp(v.s, "won") == 0);
    CHECK(check(PARAM_ENUM, "Won") != NULL);
    CHECK(check(PARAM_ENUM, "wo") != NULL);
    CHECK(check(PARAM_ENUM, "") != NULL);
    CHECK(check(PARAM_BOOL, "true") == NULL && v.b);
    CHECK(check(PARAM_BOOL, "false") == NULL && !v.b && v.present);
    CHECK(check(PARAM_BOOL, "1") != NULL);
    CHECK(check(PARAM_BOOL, "TRUE") != NULL);
    CHECK(check(PARAM_TEXT, "Software") == NULL);
    CHECK(check(PARAM_TEXT, "") != NULL);
    CHECK(check(PARAM_TEXT, "01234567890") != NULL); /* max_len 10 */
    CHECK(check(PARAM_TEXT, "a\tb") != NULL);
    arena_destroy(&arena);
}

static http_str_t str(const char *s)
{
    return (http_str_t){s, strlen(s)};
}

TEST(query_parse)
{
    static const char *const st[] = {"open", "won", "lost", NULL};
    static const api_param_t spec[] = {
        {"limit", PARAM_LIMIT, 0, NULL},
        {"ownerId", PARAM_ID, 0, NULL},
        {"status", PARAM_ENUM, 0, st},
        {"q", PARAM_TEXT, 200, NULL},
    };
    api_value_t vals[4];
    api_errors_t errs = {0};
    bool refresh;
    arena_init(&arena, NULL, 0);
    CHECK(api_query_parse(&arena, str("limit=10&ownerId=3&q=acme+corp%21&refresh=true"), spec, 4, vals,
                          &refresh, &errs));
    CHECK(vals[0].present && vals[0].i == 10);
    CHECK(vals[1].present && vals[1].i == 3);
    CHECK(!vals[2].present);
    CHECK(vals[3].present && strcmp(vals[3].s, "acme corp!") == 0);
    CHECK(refresh);
    CHECK_EQ_INT(errs.n, 0);

    CHECK(api_query_parse(&arena, str(""), spec, 4, vals, &refresh, &errs));
    CHECK(!vals[0].present && !refresh);

    CHECK(!api_query_parse(&arena, str("limit=500&bogus=1&status=closed&limit=2&q=%zz"), spec, 4, vals, NULL,
                           &errs));
    CHECK_EQ_INT(errs.n, 5);
    CHECK_STRN(errs.e[0].field, errs.e[0].field_len, "limit");
    CHECK(strcmp(errs.e[0].message, "must be 1..200") == 0);
    CHECK_STRN(errs.e[1].field, errs.e[1].field_len, "bogus");
    CHECK(strcmp(errs.e[1].message, "unknown parameter") == 0);
    CHECK_STRN(errs.e[2].field, errs.e[2].field_len, "status");
    CHECK_STRN(errs.e[3].field, errs.e[3].field_len, "limit");
    CHECK_STRN(errs.e[4].field, errs.e[4].field_len, "q");

    errs.n = 0;
    CHECK(!api_query_parse(&arena, str("ownerId"), spec, 4, vals, NULL, &errs)); /* empty value */
    CHECK(!api_query_parse(&arena, str("refresh=yes"), spec, 4, vals, NULL, &errs));
    arena_destroy(&arena);
}

TEST(db_error_statuses)
{
    const char *code;
    CHECK_EQ_INT(api_db_error_status(DB_UNAVAILABLE, "", &code), 503);
    CHECK(strcmp(code, "service-unavailable") == 0);
    CHECK_EQ_INT(api_db_error_status(DB_TIMEOUT, "57014", &code), 504);
    CHECK(strcmp(code, "timeout") == 0);
    CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, "23505", &code), 409);
    CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, "23503", &code), 422);
    CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, "23514", &code), 422);
    CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, "22P02", &code), 400);
    CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, "22003", &code), 400);
    CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, "42P01", &code), 500);
    CHECK(strcmp(code, "internal") == 0);
}

/* Every SQLSTATE of classes 22 (data exception) and 23 (integrity constraint violation) that
 * PostgreSQL 15 defines is the client's fault: 4xx. Our own classes stay 500. */
TEST(db_error_classes_22_and_23_are_client_errors)
{
    static const char *const data[] = {
        "22000", "2202E", "22021", "22008", "22012", "22005", "2200B", "22022", "22015", "2201E",
        "22014", "22016", "2201F", "2201G", "22018", "22007", "22019", "2200D", "22025", "22P06",
        "22010", "22023", "2201B", "2201W", "2201X", "2202H", "2202G", "22009", "2200C", "2200G",
        "22004", "22002", "22003", "2200H", "22026", "22001", "22011", "22027", "22024", "2200F",
        "22P01", "22P02", "22P03", "22P04", "22P05", "2200L", "2200M", "2200N", "2200S", "2200T",
        "22030", "22031", "22032", "22033", "22034", "22035", "22036", "22037", "22038", "22039",
        "2203A", "2203B", "2203C", "2203D", "2203E", "2203F", "2203G",
    };
    static const char *const constraint[] = {"23000", "23001", "23502", "23503", "23514", "23P01"};
    static const char *const ours[] = {"42P01", "42601", "42703", "XX000",
                                       "53200", "0A000", "25P02", "08006"};
    const char *code;
    for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++)
        CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, data[i], &code), 400);
    for (size_t i = 0; i < sizeof(constraint) / sizeof(constraint[0]); i++)
        CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, constraint[i], &code), 422);
    CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, "23505", &code), 409);
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        CHECK_EQ_INT(api_db_error_status(DB_SQL_ERROR, ours[i], &code), 500);
}

TEST_MAIN()
