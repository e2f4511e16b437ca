/* Structured JSON log lines; see log.h for the threading rules. */
#include "core/log.h"
#include "core/common.h"
#include "core/json.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int g_log_level = LOG_INFO;

static __thread log_sink_t *tl_sink;
static __thread buf_t tl_direct; /* line assembly for threads without a sink */
static _Atomic uint64_t dropped_total;
static pthread_mutex_t direct_lock = PTHREAD_MUTEX_INITIALIZER;

/* A sink holding more than this is not being drained: new lines are dropped. */
#define LOG_SINK_CAP (4u << 20)

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < (int)ARRAY_LEN(level_names); i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

void log_set_sink(log_sink_t *sink)
{
    tl_sink = sink;
}

log_sink_t *log_get_sink(void)
{
    return tl_sink;
}

uint64_t log_dropped_total(void)
{
    return atomic_load_explicit(&dropped_total, memory_order_relaxed);
}

void log_count_dropped(uint64_t n)
{
    atomic_fetch_add_explicit(&dropped_total, n, memory_order_relaxed);
}

/* Appends "2026-01-17T10:30:00.123Z". */
static void put_timestamp(buf_t *b)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char *p = buf_reserve(b, 32);
    int n = snprintf(p, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    b->len += (size_t)n;
}

buf_t *log_line_begin(int level, const char *msg)
{
    if (level < g_log_level)
        return NULL;
    buf_t *b;
    if (tl_sink) {
        b = &tl_sink->pending;
        if (b->len > LOG_SINK_CAP) {
            tl_sink->dropped++;
            log_count_dropped(1);
            return NULL;
        }
    } else {
        b = &tl_direct;
        b->len = 0;
    }
    buf_append(b, LIT("{\"ts\":\""));
    put_timestamp(b);
    buf_append(b, LIT("\",\"level\":\""));
    buf_append(b, level_names[level], strlen(level_names[level]));
    buf_append(b, LIT("\",\"msg\":"));
    json_str(b, msg, strlen(msg));
    return b;
}

void log_line_end(buf_t *b)
{
    buf_append(b, LIT("}\n"));
    if (b != &tl_direct)
        return;
    /* Not a reactor thread: write now, whole lines under a lock so threads do not interleave. */
    pthread_mutex_lock(&direct_lock);
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(STDERR_FILENO, b->data + off, b->len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    pthread_mutex_unlock(&direct_lock);
    b->len = 0;
}

void log_fields(int level, const char *msg, ...)
{
    buf_t *b = log_line_begin(level, msg);
    if (!b)
        return;
    va_list ap;
    va_start(ap, msg);
    for (const char *key; (key = va_arg(ap, const char *));) {
        buf_putc(b, ',');
        if (key[0] == '#') {
            json_str(b, key + 1, strlen(key + 1));
            buf_putc(b, ':');
            buf_append_i64(b, va_arg(ap, int64_t));
        } else {
            const char *v = va_arg(ap, const char *);
            json_str(b, key, strlen(key));
            buf_putc(b, ':');
            if (v)
                json_str(b, v, strlen(v));
            else
                buf_append(b, LIT("null"));
        }
    }
    va_end(ap);
    log_line_end(b);
}

void log_msg(int level, const char *fmt, ...)
{
    if (level < g_log_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    buf_t *b = log_line_begin(level, msg);
    if (b)
        log_line_end(b);
}
