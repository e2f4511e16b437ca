/* core/config.c: the config file's line shapes, precedence (default < environment < file <
 * flag), reload errors that leave the old settings, and what a reload applies or names as
 * needing a restart; core/notify.c: the datagram and the watchdog period. */
#include "core/config.h"
#include "core/log.h"
#include "core/notify.h"
#include "test.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char path[64];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void setup(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/crmd-test-config-%d.env", (int)getpid());
    write_file(text);
    g_log_level = LOG_ERROR; /* the unknown-name warnings stay quiet */
}

TEST(file_line_shapes)
{
    setup("# comment\r\n\r\n   ; another\n"
          "export FRONTEND_URL='https://a.example'\r\n"
          "HSTS_MAX_AGE=\"600\"\n"
          "  DB_POOL_SIZE=9   \n"
          "UNRELATED_VARIABLE=1\n"
          "RATE_LIMIT_FREE=7/60/7\n"
          "REDIS_URL=\n"
          "TRUSTED_PROXIES=\"10.0.0.0/8,::1\"\n"
          "LOG_LEVEL=error");
    config_t c;
    char *argv[] = {"--config", path};
    setenv("DB_POOL_SIZE", "3", 1); /* the file wins over the environment */
    unsetenv("REDIS_URL");          /* tests/run exports the stack's */
    config_parse(&c, 2, argv, "serve");
    unsetenv("DB_POOL_SIZE");
    CHECK(strcmp(c.frontend_url, "https://a.example") == 0);
    CHECK_EQ_INT(c.hsts_max_age, 600);
    CHECK_EQ_INT(c.db_pool_size, 9);
    CHECK(strcmp(c.rl_free, "7/60/7") == 0);
    CHECK(strcmp(c.redis_url, "") == 0); /* empty sets nothing, as an empty variable does */
    CHECK(strcmp(c.trusted_proxies, "10.0.0.0/8,::1") == 0);
    CHECK_EQ_INT(c.log_level, LOG_ERROR);
}

TEST(flags_win_over_the_file)
{
    setup("HSTS_MAX_AGE=600\nTHREADS=3\n");
    config_t c;
    char *argv[] = {"--hsts-max-age", "900", "--config=", "--threads", "2"};
    argv[2] = malloc(strlen(path) + 10);
    sprintf(argv[2], "--config=%s", path);
    config_parse(&c, 5, argv, "serve");
    CHECK_EQ_INT(c.hsts_max_age, 900);
    CHECK_EQ_INT(c.threads, 2);
    /* a reload reads the file again, and the flags again win */
    write_file("HSTS_MAX_AGE=100\nTHREADS=4\nLOG_SAMPLE=5\n");
    config_t next;
    char err[640];
    CHECK(config_reload(&next, err, sizeof(err)));
    CHECK_EQ_INT(next.hsts_max_age, 900);
    CHECK_EQ_INT(next.threads, 2);
    CHECK_EQ_INT(next.log_sample, 5);
    free(argv[2]);
}

TEST(reload_applies_reloadable_and_names_the_rest)
{
    setup("RATE_LIMIT_STANDARD=100/60/20\nDB_POOL_SIZE=4\nFRONTEND_URL=https://a.example\n");
    config_t c, next;
    char *argv[] = {"--config", path};
    config_parse(&c, 2, argv, "serve");
    write_file("RATE_LIMIT_STANDARD=5/60/5\nDB_POOL_SIZE=8\nFRONTEND_URL=https://b.example\n"
               "PORT=9999\nSLOW_QUERY_THRESHOLD=50\n");
    char err[640], applied[512], ignored[512];
    CHECK(config_reload(&next, err, sizeof(err)));
    config_apply(&c, &next, applied, sizeof(applied), ignored, sizeof(ignored));
    CHECK(strcmp(applied, "SLOW_QUERY_THRESHOLD,FRONTEND_URL,RATE_LIMIT_STANDARD") == 0);
    CHECK(strcmp(ignored, "PORT,DB_POOL_SIZE") == 0);
    CHECK(strcmp(c.rl_standard, "5/60/5") == 0);
    CHECK(strcmp(c.frontend_url, "https://b.example") == 0);
    CHECK_EQ_INT(c.slow_query_ms, 50);
    CHECK_EQ_INT(c.db_pool_size, 4); /* takes a restart */
    CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&c.listen.addr)->sin_port), 8080);
    /* nothing changed: nothing named */
    CHECK(config_reload(&next, err, sizeof(err)));
    config_apply(&c, &next, applied, sizeof(applied), ignored, sizeof(ignored));
    CHECK(strcmp(applied, "") == 0);
    CHECK(strcmp(ignored, "PORT,DB_POOL_SIZE") == 0); /* still differs from the running value */
}

TEST(bad_files_refuse_the_reload_naming_the_line)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"THREADS=x\n", ":1 THREADS: 'x' is not a whole number"},
        {"# a\nLOG_LEVEL=chatty\n", ":2 LOG_LEVEL: log level 'chatty'"},
        {"RATE_LIMIT_IP=1/0\n", ":1 RATE_LIMIT_IP: '1/0' is not LIMIT/WINDOW_S[/BURST]"},
        {"RATE_LIMIT_IP=0/60\n", ":1 RATE_LIMIT_IP"},
        {"RATE_LIMIT_IP=1/60/1/1\n", ":1 RATE_LIMIT_IP"},
        {"PORT=[::1\n", ":1 PORT: bad address"},
        {"PORT=70000\n", ":1 PORT: bad port"},
        {"ADMIN_LISTEN=host.example:80\n", ":1 ADMIN_LISTEN: bad host"},
        {"CPUS=0-\n", ":1 CPUS: bad CPU list"},
        {"MAX_BODY_BYTES=-1\n", ":1 MAX_BODY_BYTES"},
        {"GRAPHQL_MAX_DEPTH=101\n", ":1 GRAPHQL_MAX_DEPTH: '101' is not a whole number from 1 to 100"},
        {"no equals sign\n", ":1: not NAME=value"},
        {"=1\n", ":1: not NAME=value"},
    };
    setup("");
    config_t c, next;
    char *argv[] = {"--config", path};
    config_parse(&c, 2, argv, "serve");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(cases[i].text);
        char err[640];
        bool ok = config_reload(&next, err, sizeof(err));
        CHECK(!ok);
        if (ok || !strstr(err, cases[i].want) || strncmp(err, path, strlen(path)) != 0)
            printf("  case %zu: %s\n", i, ok ? "accepted" : err);
    }
    unlink(path);
    char err[640];
    CHECK(!config_reload(&next, err, sizeof(err)));
    CHECK(strstr(err, "No such file") != NULL);
}

static int bound_socket(struct sockaddr_un *a, const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof(a->sun_path), "%s", name);
    unlink(name);
    bind(fd, (struct sockaddr *)a, sizeof(*a));
    return fd;
}

TEST(notify_datagram_and_watchdog_period)
{
    char name[64];
    g_log_level = LOG_ERROR;
    snprintf(name, sizeof(name), "/tmp/crmd-test-notify-%d.sock", (int)getpid());
    struct sockaddr_un a;
    int fd = bound_socket(&a, name);
    setenv("NOTIFY_SOCKET", name, 1);
    setenv("WATCHDOG_USEC", "2500000", 1);
    unsetenv("WATCHDOG_PID");
    CHECK(notify_init());
    CHECK_EQ_INT(notify_watchdog_ms(), 2500);
    CHECK(notify_send("READY=1\nSTATUS=serving"));
    char buf[128] = {0};
    CHECK_EQ_INT(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT), 22);
    CHECK(strcmp(buf, "READY=1\nSTATUS=serving") == 0);
    notify_close();

    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1); /* asked of another process */
    CHECK(notify_init());
    CHECK_EQ_INT(notify_watchdog_ms(), 0);
    notify_close();
    static const char *const bad_usec[] = {"", "x", "-5", "10s", "99999999999999999999999"};
    unsetenv("WATCHDOG_PID");
    for (size_t i = 0; i < sizeof(bad_usec) / sizeof(bad_usec[0]); i++) {
        setenv("WATCHDOG_USEC", bad_usec[i], 1);
        CHECK(notify_init());
        CHECK_EQ_INT(notify_watchdog_ms(), 0);
        notify_close();
    }
    /* not a socket path: nothing is sent, nothing fails */
    static const char *const bad_path[] = {"", "relative.sock", "@", "x"};
    for (size_t i = 0; i < sizeof(bad_path) / sizeof(bad_path[0]); i++) {
        setenv("NOTIFY_SOCKET", bad_path[i], 1);
        CHECK(!notify_init());
        CHECK(!notify_send("READY=1"));
        CHECK_EQ_INT(notify_watchdog_ms(), 0);
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    close(fd);
    unlink(name);
}
TEST_MAIN()
