/* redis/sentinel.c: REDIS_SENTINELS lists, every malformed shape refused before any thread
 * starts; a well-formed list whose sentinels do not answer starts (Redis is then unavailable,
 * not fatal) with no master known. */
#include "core/log.h"
#include "redis/sentinel.h"
#include "test.h"

TEST(malformed_lists_are_refused)
{
    g_log_level = LOG_OFF;
    static const char *const bad[] = {
        "",        "   ",       "host",
        "host:",   ":6379",     "h:0",
        "h:65536", "h:-1",      "h:12x",
        "[::1",    "[::1]6379", "[::1]:",
        "h:1,x",   "h:1, :2",   ",,,",
        "h :1:",   "a:1,b:2,c", "a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9,a:10,a:11,a:12,a:13,a:14,a:15,a:16,a:17",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int ret = redis_sentinel_start(bad[i], "m");
        CHECK_EQ_INT(ret, -1);
        if (ret == 0) {
            printf("  accepted \"%s\"\n", bad[i]);
            redis_sentinel_stop();
        }
        CHECK(!redis_sentinel_enabled());
    }
}

TEST(unreachable_sentinels_start_without_a_master)
{
    g_log_level = LOG_OFF;
    /* port 1 on loopback refuses at once */
    static const char *const good[] = {"127.0.0.1:1", " 127.0.0.1:1 , [::1]:1 ", "127.0.0.1:1,,127.0.0.1:1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_EQ_INT(redis_sentinel_start(good[i], "mymaster"), 0);
        CHECK(redis_sentinel_enabled());
        struct sockaddr_storage a;
        socklen_t len = 0;
        CHECK_EQ_INT(redis_sentinel_master(&a, &len), 0);
        CHECK_EQ_INT(redis_sentinel_generation(), 0);
        redis_sentinel_stop();
        CHECK(!redis_sentinel_enabled());
    }
}

TEST_MAIN()
