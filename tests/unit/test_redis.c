/*
 * cache/redis: URL parsing and script names (pure); the client against sockets of our own
 * (no URL, refused connection, a server that never answers); and, when REDIS_URL is set (the
 * test runner exports it from dev/stack), the client against the real Redis: round trips,
 * pipelining, binary values, error replies, EVALSHA/EVAL, pub/sub, and Redis stopped and
 * started again mid-run. Without REDIS_URL the live tests print a SKIP line and pass.
 */
#include "redis/redis.h"
#include "core/reactor.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---------------------------------------------------------------- URL and scripts */

TEST(url_full)
{
    redis_url_t u;
    const char *why = NULL;
    CHECK(redis_url_parse("redis://127.0.0.1:16379/0", &u, &why));
    CHECK(strcmp(u.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(u.port, 16379);
    CHECK_EQ_INT(u.db, 0);
    CHECK(u.password[0] == '\0' && u.user[0] == '\0');
}

TEST(url_defaults)
{
    redis_url_t u;
    CHECK(redis_url_parse("redis://cache.internal", &u, NULL));
    CHECK(strcmp(u.host, "cache.internal") == 0);
    CHECK_EQ_INT(u.port, 6379);
    CHECK_EQ_INT(u.db, 0);
    CHECK(redis_url_parse("redis://h/", &u, NULL));
    CHECK_EQ_INT(u.db, 0);
    CHECK(redis_url_parse("redis://h:7000/15", &u, NULL));
    CHECK_EQ_INT(u.port, 7000);
    CHECK_EQ_INT(u.db, 15);
}

TEST(url_password)
{
    redis_url_t u;
    CHECK(redis_url_parse("redis://:s%40cr3t:x@10.0.0.5:6380/3", &u, NULL));
    CHECK(strcmp(u.password, "s@cr3t:x") == 0);
    CHECK(u.user[0] == '\0');
    CHECK(strcmp(u.host, "10.0.0.5") == 0);
    CHECK_EQ_INT(u.port, 6380);
    CHECK_EQ_INT(u.db, 3);
    CHECK(redis_url_parse("redis://alice:pw@h", &u, NULL));
    CHECK(strcmp(u.user, "alice") == 0);
    CHECK(strcmp(u.password, "pw") == 0);
}

TEST(url_ipv6)
{
    redis_url_t u;
    CHECK(redis_url_parse("redis://[::1]:6390/2", &u, NULL));
    CHECK(strcmp(u.host, "::1") == 0);
    CHECK_EQ_INT(u.port, 6390);
    CHECK_EQ_INT(u.db, 2);
}

TEST(url_rejected)
{
    static const char *bad[] = {
        "",
        "http://h:6379",
        "rediss://h:6379",
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:12ab",
        "redis://h:",
        "redis://h/x",
        "redis://h/-1",
        "redis://h/1/2",
        "redis://h/1?timeout=1",
        "redis://h#frag",
        "redis://user@h",
        "redis://:@h",
        "redis://:%zz@h",
        "redis://:%4@h",
        "redis://:a%00b@h",
        "redis://[::1",
        "redis://[::1]x",
        "redis://a:b:c",
        "redis://h st",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        redis_url_t u;
        const char *why = NULL;
        bool ok = redis_url_parse(bad[i], &u, &why);
        if (ok || !why)
            printf("  accepted or no reason: \"%s\"\n", bad[i]);
        CHECK(!ok && why);
    }
    redis_url_t u;
    CHECK(!redis_url_parse(NULL, &u, NULL));
}

TEST(script_sha1)
{
    static const struct {
        size_t n; /* 0: the literal; else n times 'a' */
        const char *src, *sha;
    } cases[] = {
        {0, "return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"},
        {0, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {55, NULL, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
        {56, NULL, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
        {64, NULL, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
        {1000, NULL, "291e9a6c66994949b57ba5e650361e98fc36b1ba"},
    };
    static char as[1001];
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *src = cases[i].src;
        if (!src) {
            memset(as, 'a', cases[i].n);
            as[cases[i].n] = '\0';
            src = as;
        }
        redis_script_t s;
        redis_script_init(&s, src);
        CHECK(strcmp(s.sha, cases[i].sha) == 0);
    }
}

/* ---------------------------------------------------------------- driving a reactor */

static reactor_t R;
static timer_entry_t pump_timer;
static bool (*pump_pred)(void);
static uint64_t pump_deadline;
static bool pump_timed_out;

static void on_pump(timer_entry_t *e)
{
    /* when stopping, stay armed and due, so the loop does not wait before it leaves */
    if (pump_pred && pump_pred()) {
        R.stop = true;
        timer_add(&R.timers, e, 0);
        return;
    }
    if (clock_now_ms() >= pump_deadline) {
        pump_timed_out = true;
        R.stop = true;
        timer_add(&R.timers, e, 0);
        return;
    }
    timer_add(&R.timers, e, clock_now_ms() + 2);
}

/* Runs the loop until pred() holds (checked every few ms) or max_ms pass; true when it held. */
static bool pump(bool (*pred)(void), uint64_t max_ms)
{
    pump_pred = pred;
    pump_timed_out = false;
    pump_deadline = clock_now_ms() + max_ms;
    timer_init(&pump_timer, on_pump);
    timer_add(&R.timers, &pump_timer, 0);
    R.stop = false;
    reactor_run(&R);
    R.stop = false;
    timer_del(&pump_timer);
    return !pump_timed_out && (!pred || pred());
}

static bool setup(const char *url, uint32_t timeout_ms, int expect)
{
    if (reactor_init(&R, 0, 16, 4096) != 0) {
        printf("  reactor_init failed\n");
        return false;
    }
    int ret = redis_client_start(&R, url, timeout_ms);
    CHECK_EQ_INT(ret, expect);
    return true;
}

static void teardown(void)
{
    redis_client_stop();
    pump(NULL, 30); /* let cancelled operations complete */
    reactor_destroy(&R);
}

/* Results recorded by the callbacks. */
static int n_done, n_ok, n_error, n_unavail, n_timeout, n_bad;
static bool in_submit, cb_in_submit;
static uint64_t first_fail_ms, issued_ms;

static void counts_reset(void)
{
    n_done = n_ok = n_error = n_unavail = n_timeout = n_bad = 0;
    cb_in_submit = false;
    first_fail_ms = 0;
}

static void on_count(void *arg, redisReply *reply, int status)
{
    (void)arg;
    if (in_submit)
        cb_in_submit = true;
    n_done++;
    switch (status) {
    case REDIS_STATUS_OK:
        n_ok++;
        break;
    case REDIS_STATUS_ERROR:
        n_error++;
        break;
    case REDIS_STATUS_UNAVAILABLE:
        n_unavail++;
        break;
    case REDIS_STATUS_TIMEOUT:
        n_timeout++;
        break;
    }
    if ((status == REDIS_STATUS_UNAVAILABLE || status == REDIS_STATUS_TIMEOUT) && reply)
        n_bad++;
    if (status != REDIS_STATUS_OK && status != REDIS_STATUS_ERROR && !first_fail_ms)
        first_fail_ms = clock_now_ms();
}

static int want_done;
static bool all_done(void)
{
    return n_done >= want_done;
}

static bool is_connected(void)
{
    return redis_connected();
}

/* ---------------------------------------------------------------- without a server */

TEST(no_url_fails_unavailable)
{
    if (!setup("", 0, -1))
        return;
    counts_reset();
    CHECK(!redis_connected());
    in_submit = true;
    redis_get(LIT("k"), on_count, NULL);
    redis_set_px(LIT("k"), LIT("v"), 1000, on_count, NULL);
    in_submit = false;
    CHECK_EQ_INT(n_done, 0); /* never from inside the call */
    want_done = 2;
    CHECK(pump(all_done, 1000));
    CHECK_EQ_INT(n_unavail, 2);
    CHECK(!cb_in_submit);
    CHECK_EQ_INT(redis_subscribe("c", NULL, NULL, NULL), -1);
    teardown();
}

TEST(bad_url_fails_unavailable)
{
    if (!setup("redis://h:99999", 0, -1))
        return;
    counts_reset();
    redis_del(LIT("k"), on_count, NULL);
    want_done = 1;
    CHECK(pump(all_done, 1000));
    CHECK_EQ_INT(n_unavail, 1);
    teardown();
}

/* A port with nothing listening: commands fail at once and the loop keeps turning. */
TEST(refused_fails_fast)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    close(fd); /* the port is now (very likely) closed */
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", ntohs(a.sin_port));
    if (!setup(url, 0, 0))
        return;
    pump(NULL, 300); /* a few refused attempts */
    CHECK(!redis_connected());
    counts_reset();
    uint64_t t0 = clock_now_ms();
    for (int i = 0; i < 100; i++)
        redis_get(LIT("k"), on_count, NULL);
    want_done = 100;
    CHECK(pump(all_done, 1000));
    CHECK_EQ_INT(n_unavail, 100);
    CHECK(clock_now_ms() - t0 < 100);
    teardown();
}

/* A listener that never accepts: the kernel completes the handshake, nobody answers. */
TEST(silent_server_times_out)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(lfd, 64) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", ntohs(a.sin_port));
    if (!setup(url, 100, 0))
        return;
    CHECK(pump(is_connected, 2000));
    redis_stats_t before, after;
    redis_stats(&before);
    counts_reset();
    issued_ms = clock_now_ms();
    for (int i = 0; i < 5; i++)
        redis_set_px(LIT("k"), LIT("v"), 1000, on_count, NULL);
    want_done = 5;
    CHECK(pump(all_done, 2000));
    CHECK_EQ_INT(n_timeout, 5);
    CHECK_EQ_INT(n_bad, 0);
    uint64_t took = first_fail_ms - issued_ms;
    if (took < 100 || took > 200)
        printf("  timed out after %llu ms (timeout 100)\n", (unsigned long long)took);
    CHECK(took >= 100 && took <= 200);
    CHECK(!redis_connected());
    /* down now: the next command fails at once */
    counts_reset();
    redis_get(LIT("k"), on_count, NULL);
    want_done = 1;
    CHECK(pump(all_done, 100));
    CHECK_EQ_INT(n_unavail, 1);
    /* and the client reconnects by itself */
    CHECK(pump(is_connected, 3000));
    redis_stats(&after);
    CHECK_EQ_INT(after.timeouts - before.timeouts, 5);
    CHECK(after.reconnects > before.reconnects);
    teardown();
    close(lfd);
}

/* AUTH and SELECT from the URL go first on a new connection, ahead of the first command. */
TEST(handshake_auth_select_first)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(lfd, 8) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    char url[96];
    snprintf(url, sizeof(url), "redis://:s%%40cret@127.0.0.1:%u/3", ntohs(a.sin_port));
    if (!setup(url, 0, 0))
        return;
    CHECK(pump(is_connected, 2000));
    int fd = accept(lfd, NULL, NULL); /* already in the backlog: does not block */
    CHECK(fd >= 0);
    counts_reset();
    redis_get(LIT("k"), on_count, NULL);
    pump(NULL, 30);
    char got[256];
    ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
    static const char want[] = "*2\r\n$4\r\nAUTH\r\n$6\r\ns@cret\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
                               "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    CHECK_STRN(got, n > 0 ? (size_t)n : 0, want);
    /* the server answers the handshake and the GET in one segment */
    static const char answer[] = "+OK\r\n+OK\r\n$2\r\nhi\r\n";
    CHECK(send(fd, answer, sizeof(answer) - 1, 0) == (ssize_t)sizeof(answer) - 1);
    want_done = 1;
    CHECK(pump(all_done, 1000));
    CHECK_EQ_INT(n_ok, 1);
    teardown();
    close(fd);
    close(lfd);
}

/* ---------------------------------------------------------------- against the real Redis */

static const char *live_url(const char *test)
{
    const char *url = getenv("REDIS_URL");
    if (!url || !*url) {
        printf("SKIP %s: REDIS_URL is not set (eval \"$(dev/stack env)\")\n", test);
        return NULL;
    }
    return url;
}

static char key_prefix[64];

static size_t key(char *out, size_t cap, const char *name)
{
    if (!key_prefix[0])
        snprintf(key_prefix, sizeof(key_prefix), "test:redis:%d:", (int)getpid());
    return (size_t)snprintf(out, cap, "%s%s", key_prefix, name);
}

/* The last reply, copied. */
static int last_type, last_status;
static long long last_int;
static char last_str[256];
static size_t last_len;

static void on_keep(void *arg, redisReply *reply, int status)
{
    on_count(arg, reply, status);
    last_status = status;
    last_type = reply ? reply->type : -1;
    last_len = 0;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        last_int = reply->integer;
    if (reply && reply->str) {
        last_len = MIN(reply->len, sizeof(last_str));
        memcpy(last_str, reply->str, last_len);
    }
}

static void wait_one(void)
{
    want_done = n_done + 1;
    CHECK(pump(all_done, 2000));
}

static bool live_setup(const char *test)
{
    const char *url = live_url(test);
    if (!url)
        return false;
    if (!setup(url, 0, 0))
        return false;
    if (!pump(is_connected, 3000)) {
        CHECK(!"no connection to REDIS_URL");
        teardown();
        return false;
    }
    counts_reset();
    return true;
}

TEST(live_roundtrip_binary_and_errors)
{
    if (!live_setup("live_roundtrip_binary_and_errors"))
        return;
    char k[96];
    size_t kl = key(k, sizeof(k), "rt");
    static const char val[] = "a\0b\r\n$3\r\n\0\xff end";
    in_submit = true;
    redis_set_px(k, kl, val, sizeof(val), 60000, on_keep, NULL);
    in_submit = false;
    CHECK_EQ_INT(n_done, 0);
    wait_one();
    CHECK(!cb_in_submit);
    CHECK_EQ_INT(last_status, REDIS_STATUS_OK);
    CHECK_EQ_INT(last_type, REDIS_REPLY_STATUS);
    redis_get(k, kl, on_keep, NULL);
    wait_one();
    CHECK_EQ_INT(last_type, REDIS_REPLY_STRING);
    CHECK_EQ_INT(last_len, sizeof(val));
    CHECK(memcmp(last_str, val, sizeof(val)) == 0);
    /* a string is not a number: an error reply, and the connection stays up */
    const char *incr[] = {"INCR", k};
    redis_command_argv(2, incr, (const size_t[]){4, kl}, on_keep, NULL);
    wait_one();
    CHECK_EQ_INT(last_status, REDIS_STATUS_ERROR);
    CHECK_EQ_INT(last_type, REDIS_REPLY_ERROR);
    CHECK(last_len > 4 && memcmp(last_str, "ERR ", 4) == 0);
    CHECK(redis_connected());
    redis_del(k, kl, on_keep, NULL);
    wait_one();
    CHECK_EQ_INT(last_type, REDIS_REPLY_INTEGER);
    CHECK_EQ_INT(last_int, 1);
    redis_get(k, kl, on_keep, NULL);
    wait_one();
    CHECK_EQ_INT(last_status, REDIS_STATUS_OK);
    CHECK_EQ_INT(last_type, REDIS_REPLY_NIL);
    /* argvlen NULL: C strings */
    const char *echo[] = {"ECHO", "hello"};
    redis_command_argv(2, echo, NULL, on_keep, NULL);
    wait_one();
    CHECK_STRN(last_str, last_len, "hello");
    teardown();
}

#define PIPE_N 10000

static int pipe_bad;

static void on_pipe_get(void *arg, redisReply *reply, int status)
{
    on_count(arg, reply, status);
    intptr_t i = (intptr_t)arg;
    char want[32];
    int n = snprintf(want, sizeof(want), "value-%ld", (long)i);
    if (status != REDIS_STATUS_OK || !reply || reply->type != REDIS_REPLY_STRING || reply->len != (size_t)n ||
        memcmp(reply->str, want, (size_t)n) != 0)
        pipe_bad++;
}

TEST(live_pipeline_10000)
{
    if (!live_setup("live_pipeline_10000"))
        return;
    redis_stats_t s0, s1, s2;
    redis_stats(&s0);
    char k[96], v[32];
    for (int i = 0; i < PIPE_N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p:%d", i);
        size_t kl = key(k, sizeof(k), name);
        int vl = snprintf(v, sizeof(v), "value-%d", i);
        redis_set_px(k, kl, v, (size_t)vl, 60000, on_count, NULL);
    }
    want_done = PIPE_N;
    CHECK(pump(all_done, 5000));
    CHECK_EQ_INT(n_ok, PIPE_N);
    redis_stats(&s1);
    printf("  %d SETs in %llu sends\n", PIPE_N, (unsigned long long)(s1.sends - s0.sends));
    CHECK(s1.sends - s0.sends <= 10);
    counts_reset();
    pipe_bad = 0;
    for (intptr_t i = 0; i < PIPE_N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p:%ld", (long)i);
        size_t kl = key(k, sizeof(k), name);
        redis_get(k, kl, on_pipe_get, (void *)i);
    }
    want_done = PIPE_N;
    CHECK(pump(all_done, 5000));
    CHECK_EQ_INT(pipe_bad, 0);
    redis_stats(&s2);
    printf("  %d GETs in %llu sends\n", PIPE_N, (unsigned long long)(s2.sends - s1.sends));
    CHECK(s2.sends - s1.sends <= 10);
    CHECK(s2.commands - s0.commands >= 2 * PIPE_N);
    counts_reset();
    for (int i = 0; i < PIPE_N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p:%d", i);
        size_t kl = key(k, sizeof(k), name);
        redis_del(k, kl, on_count, NULL);
    }
    want_done = PIPE_N;
    CHECK(pump(all_done, 5000));
    CHECK_EQ_INT(n_ok, PIPE_N);
    teardown();
}

TEST(live_eval_noscript_fallback)
{
    if (!live_setup("live_eval_noscript_fallback"))
        return;
    /* a script no one has loaded (the pid is in it), so the first EVALSHA meets NOSCRIPT */
    static char src[160];
    snprintf(src, sizeof(src), "-- crmd test %d %llu\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])",
             (int)getpid(), (unsigned long long)clock_now_ns());
    redis_script_t script;
    redis_script_init(&script, src);
    char k[96];
    size_t kl = key(k, sizeof(k), "eval");
    const char *argv[] = {k, "5"};
    const size_t lens[] = {kl, 1};
    redis_eval(&script, 1, 2, argv, lens, on_keep, NULL);
    wait_one();
    CHECK_EQ_INT(last_status, REDIS_STATUS_OK);
    CHECK_EQ_INT(last_int, 5);
    redis_eval(&script, 1, 2, argv, lens, on_keep, NULL); /* loaded by the EVAL: EVALSHA works */
    wait_one();
    CHECK_EQ_INT(last_int, 10);
    /* the server's name for the script is ours */
    const char *exists[] = {"SCRIPT", "EXISTS", script.sha};
    redis_command_argv(3, exists, NULL, on_keep, NULL);
    wait_one();
    CHECK_EQ_INT(last_status, REDIS_STATUS_OK);
    CHECK_EQ_INT(last_type, REDIS_REPLY_ARRAY);
    /* a script error is an error reply */
    redis_script_t bad;
    redis_script_init(&bad, "return redis.call('NOSUCHCOMMAND')");
    redis_eval(&bad, 0, 0, NULL, NULL, on_keep, NULL);
    wait_one();
    CHECK_EQ_INT(last_status, REDIS_STATUS_ERROR);
    redis_del(k, kl, on_keep, NULL);
    wait_one();
    teardown();
}

/* ---- pub/sub and outage */

static char channel[96];
static int n_msgs, n_resub;
static char msg_buf[64];
static size_t msg_len;

static void on_message(const char *ch, const char *msg, size_t len, void *arg)
{
    (void)arg;
    if (strcmp(ch, channel) != 0)
        return;
    n_msgs++;
    msg_len = MIN(len, sizeof(msg_buf));
    memcpy(msg_buf, msg, msg_len);
}

static void on_resubscribe(const char *ch, void *arg)
{
    (void)arg;
    if (strcmp(ch, channel) == 0)
        n_resub++;
}

static int msgs_target;
static bool got_msgs(void)
{
    return n_msgs >= msgs_target;
}

/* Publishes until a message arrives: the subscription is confirmed asynchronously. */
static bool publish_until_received(const char *msg, size_t len, uint64_t max_ms)
{
    uint64_t end = clock_now_ms() + max_ms;
    msgs_target = n_msgs + 1;
    while (clock_now_ms() < end) {
        redis_publish(channel, msg, len, on_keep, NULL);
        if (pump(got_msgs, 100))
            return true;
    }
    return false;
}

static bool redis_stopped;

static void stack(const char *what)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "dev/stack %s >/dev/null 2>&1 || ../../dev/stack %s >/dev/null 2>&1", what,
             what);
    int ret = system(cmd);
    if (ret != 0)
        printf("  dev/stack %s exited %d\n", what, ret);
    redis_stopped = strcmp(what, "redis-stop") == 0 && ret == 0;
}

/* Whatever happens, the shared Redis is running again when the binary exits. */
static void restart_redis_at_exit(void)
{
    if (redis_stopped)
        stack("redis-start");
}

static bool is_disconnected(void)
{
    return !redis_connected();
}

TEST(live_pubsub_and_outage)
{
    if (!live_setup("live_pubsub_and_outage"))
        return;
    atexit(restart_redis_at_exit);
    key(channel, sizeof(channel), "chan");
    n_msgs = n_resub = 0;
    CHECK_EQ_INT(redis_subscribe(channel, on_message, on_resubscribe, NULL), 0);
    static const char m1[] = "tags\0company:42";
    CHECK(publish_until_received(m1, sizeof(m1), 3000));
    CHECK_EQ_INT(msg_len, sizeof(m1));
    CHECK(memcmp(msg_buf, m1, sizeof(m1)) == 0);
    CHECK_EQ_INT(n_resub, 0);

    /* Redis goes away under a live connection */
    char k[96];
    size_t kl = key(k, sizeof(k), "outage");
    stack("redis-stop");
    CHECK(redis_stopped);
    counts_reset();
    issued_ms = clock_now_ms();
    for (int i = 0; i < 50; i++)
        redis_set_px(k, kl, LIT("v"), 60000, on_count, NULL);
    want_done = 50;
    CHECK(pump(all_done, 1000));
    CHECK_EQ_INT(n_unavail + n_timeout, 50);
    CHECK_EQ_INT(n_bad, 0);
    uint64_t took = clock_now_ms() - issued_ms;
    printf("  50 commands failed within %llu ms of the stop\n", (unsigned long long)took);
    CHECK(took < 300);
    CHECK(pump(is_disconnected, 1000));
    /* still down: every command fails at once, the loop keeps turning */
    for (int round = 0; round < 5; round++) {
        counts_reset();
        uint64_t t0 = clock_now_ms();
        redis_get(k, kl, on_count, NULL);
        want_done = 1;
        CHECK(pump(all_done, 300));
        CHECK_EQ_INT(n_unavail, 1);
        CHECK(clock_now_ms() - t0 < 50);
        pump(NULL, 100);
    }

    /* Redis is back: the client reconnects by itself, the subscription too */
    stack("redis-start");
    CHECK(!redis_stopped);
    CHECK(pump(is_connected, 8000));
    counts_reset();
    redis_set_px(k, kl, LIT("again"), 60000, on_keep, NULL);
    redis_get(k, kl, on_keep, NULL);
    want_done = 2;
    CHECK(pump(all_done, 2000));
    CHECK_EQ_INT(n_ok, 2);
    CHECK_STRN(last_str, last_len, "again");
    static const char m2[] = "after the gap";
    CHECK(publish_until_received(m2, sizeof(m2) - 1, 8000));
    CHECK_STRN(msg_buf, msg_len, "after the gap");
    CHECK_EQ_INT(n_resub, 1);
    redis_stats_t st;
    redis_stats(&st);
    CHECK(st.reconnects >= 2); /* the command connection and the pub/sub one */
    CHECK(st.messages >= 2);
    CHECK(st.unavailable >= 55);
    CHECK_EQ_INT(st.connected, 1);
    redis_del(k, kl, on_keep, NULL);
    wait_one();
    teardown();
    redis_stats(&st);
    CHECK_EQ_INT(st.connected, 0);
    CHECK_EQ_INT(st.clients, 0);
}

TEST_MAIN()
