/*
 * Sentinel discovery; see sentinel.h. The thread keeps one connection to the sentinel that
 * answered last and moves to the next one on any failure, so a dead sentinel costs one
 * timeout per poll at most. The answer is resolved to a socket address here, off the
 * reactors, and published under a mutex; the generation alone is read without it.
 */
#include "redis/sentinel.h"
#include "core/common.h"
#include "core/log.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SENTINELS   16
#define CALL_TIMEOUT_MS 300

typedef struct {
    char host[256 + 16];
    int port;
} endpoint_t;

static struct {
    endpoint_t sentinels[MAX_SENTINELS];
    int n, current;
    char name[128];
    redisContext *ctx; /* to sentinels[current] */
    pthread_t tid;
    bool running;
    pthread_mutex_t lock; /* master, master_text; the stop flag with wake */
    pthread_cond_t wake;
    bool stop;
    struct sockaddr_storage master;
    socklen_t master_len;
    char master_text[300];
    _Atomic uint32_t gen;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static bool parse_list(const char *list)
{
    S.n = 0;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            if (S.n == MAX_SENTINELS)
                return false;
            char item[256 + 16];
            if (len >= sizeof(item))
                return false;
            memcpy(item, p, len);
            item[len] = '\0';
            char *host = item, *colon;
            if (item[0] == '[') {
                char *close = strchr(item, ']');
                if (!close || close[1] != ':')
                    return false;
                *close = '\0';
                host = item + 1;
                colon = close + 1;
            } else {
                colon = strrchr(item, ':');
                if (!colon)
                    return false;
                *colon = '\0';
            }
            char *tail;
            long port = strtol(colon + 1, &tail, 10);
            if (!*host || !colon[1] || *tail || port < 1 || port > 65535 ||
                strlen(host) >= sizeof(S.sentinels[0].host))
                return false;
            snprintf(S.sentinels[S.n].host, sizeof(S.sentinels[0].host), "%s", host);
            S.sentinels[S.n].port = (int)port;
            S.n++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return S.n > 0;
}

static void drop_ctx(void)
{
    if (S.ctx)
        redisFree(S.ctx);
    S.ctx = NULL;
}

/* Asks the sentinels in turn, from the one that answered last; true with host and port. */
static bool ask(char *host, size_t hostcap, int *port)
{
    struct timeval tv = {0, CALL_TIMEOUT_MS * 1000};
    for (int tries = 0; tries < S.n; tries++) {
        const endpoint_t *e = &S.sentinels[S.current];
        if (!S.ctx) {
            S.ctx = redisConnectWithTimeout(e->host, e->port, tv);
            if (!S.ctx || S.ctx->err || redisSetTimeout(S.ctx, tv) != REDIS_OK) {
                drop_ctx();
                S.current = (S.current + 1) % S.n;
                continue;
            }
        }
        redisReply *r = redisCommand(S.ctx, "SENTINEL get-master-addr-by-name %s", S.name);
        bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING;
        if (ok) {
            snprintf(host, hostcap, "%s", r->element[0]->str);
            *port = atoi(r->element[1]->str);
            ok = *port > 0 && *port < 65536;
        }
        if (r)
            freeReplyObject(r);
        if (ok)
            return true;
        /* no answer, or this sentinel does not know the master (nil): the next one */
        drop_ctx();
        S.current = (S.current + 1) % S.n;
    }
    return false;
}

/* Publishes host:port as the master when it differs from the one published. */
static void publish(const char *host, int port)
{
    char text[300];
    snprintf(text, sizeof(text), "%s:%d", host, port);
    pthread_mutex_lock(&S.lock);
    bool same = strcmp(text, S.master_text) == 0;
    pthread_mutex_unlock(&S.lock);
    if (same)
        return;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int ret = getaddrinfo(host, portstr, &hints, &res);
    if (ret != 0 || !res) {
        log_fields(LOG_ERROR, "redis sentinel: cannot resolve the master", "master", text, "reason",
                   gai_strerror(ret), NULL);
        return;
    }
    pthread_mutex_lock(&S.lock);
    memcpy(&S.master, res->ai_addr, res->ai_addrlen);
    S.master_len = res->ai_addrlen;
    snprintf(S.master_text, sizeof(S.master_text), "%s", text);
    uint32_t gen = atomic_fetch_add(&S.gen, 1) + 1;
    pthread_mutex_unlock(&S.lock);
    freeaddrinfo(res);
    const endpoint_t *e = &S.sentinels[S.current];
    char from[300];
    snprintf(from, sizeof(from), "%s:%d", e->host, e->port);
    log_fields(gen == 1 ? LOG_INFO : LOG_WARN,
               gen == 1 ? "redis master found by sentinel" : "redis master changed", "master", text,
               "sentinel", from, "name", S.name, "#generation", (int64_t)gen, NULL);
}

static void poll_once(void)
{
    char host[256];
    int port;
    if (ask(host, sizeof(host), &port))
        publish(host, port);
}

static void *sentinel_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&S.lock);
    while (!S.stop) {
        pthread_mutex_unlock(&S.lock);
        poll_once();
        pthread_mutex_lock(&S.lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)SENTINEL_POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!S.stop && pthread_cond_timedwait(&S.wake, &S.lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&S.lock);
    drop_ctx();
    log_thread_free();
    return NULL;
}

int redis_sentinel_start(const char *list, const char *master_name)
{
    if (!list || !*list)
        return -1;
    if (!parse_list(list)) {
        log_fields(LOG_ERROR, "redis sentinel: bad REDIS_SENTINELS (want host:port,host:port)", "value", list,
                   NULL);
        return -1;
    }
    snprintf(S.name, sizeof(S.name), "%s", master_name && *master_name ? master_name : "mymaster");
    poll_once(); /* before the reactors start: their first connect then goes to the master */
    if (!atomic_load(&S.gen))
        log_fields(LOG_WARN,
                   "redis sentinel: no sentinel named the master yet; Redis is unavailable until one does",
                   "name", S.name, NULL);
    S.stop = false;
    if (pthread_create(&S.tid, NULL, sentinel_main, NULL) != 0)
        die("pthread_create: %s", strerror(errno));
    pthread_setname_np(S.tid, "crmd-sentinel");
    S.running = true;
    return 0;
}

void redis_sentinel_stop(void)
{
    if (!S.running)
        return;
    pthread_mutex_lock(&S.lock);
    S.stop = true;
    pthread_cond_signal(&S.wake);
    pthread_mutex_unlock(&S.lock);
    pthread_join(S.tid, NULL);
    S.running = false;
}

bool redis_sentinel_enabled(void)
{
    return S.running;
}

uint32_t redis_sentinel_master(struct sockaddr_storage *addr, socklen_t *len)
{
    pthread_mutex_lock(&S.lock);
    uint32_t gen = atomic_load(&S.gen);
    if (gen) {
        memcpy(addr, &S.master, sizeof(*addr));
        *len = S.master_len;
    }
    pthread_mutex_unlock(&S.lock);
    return gen;
}

uint32_t redis_sentinel_generation(void)
{
    return atomic_load_explicit(&S.gen, memory_order_relaxed);
}
