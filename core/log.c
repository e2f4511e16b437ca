/* Structured JSON log lines; see log.h for the threading rules. */
#include "core/log.h"
#include "core/common.h"
#include "core/json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int g_log_level = LOG_INFO;

static __thread log_sink_t *tl_sink;
static __thread buf_t tl_direct; /* line assembly for threads without a sink */
static _Atomic uint64_t dropped_total;
static _Atomic uint64_t suppressed_total;
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

/*
 * Flood control. An outage makes every request fail the same way: one line each would bury
 * the log (and the disk) at 100k lines a second. Per thread, an identical warning or error
 * (same level and message) is written in full once per LOG_REPEAT_WINDOW_MS; later copies in
 * the window are counted and folded into one "repeated N times" line when the window ends.
 * Request lines of failed requests are sampled past LOG_FLOOD_BURST a second. Counters
 * elsewhere (metrics) stay exact: only lines are folded.
 */
#define LOG_REPEAT_WINDOW_MS 1000
#define LOG_REPEAT_SLOTS     64
#define LOG_REPEAT_MSG       160
#define LOG_FLOOD_BURST      100
#define LOG_FLOOD_SAMPLE     100

typedef struct {
    uint64_t hash;     /* 0: free */
    uint64_t since_ms; /* start of the window */
    uint64_t repeats;  /* copies suppressed in the window */
    int level;
    char msg[LOG_REPEAT_MSG];
} repeat_slot_t;

typedef struct {
    repeat_slot_t slots[LOG_REPEAT_SLOTS];
    uint64_t last_tick_ms;
    uint64_t flood_sec, flood_lines, flood_dropped;
    bool in_summary; /* writing a summary line: never fold it */
} flood_state_t;

static __thread flood_state_t tl_flood_state;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static flood_state_t *flood_state(void)
{
    return &tl_flood_state;
}

static uint64_t msg_hash(int level, const char *msg)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)level;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h ? h : 1;
}

static void write_repeat_summary(flood_state_t *f, repeat_slot_t *r)
{
    f->in_summary = true;
    log_fields(r->level, r->msg, "#repeated", (int64_t)r->repeats, "#window_ms",
               (int64_t)LOG_REPEAT_WINDOW_MS, NULL);
    f->in_summary = false;
}

/* Whether a warning or error with this message is written now (else it is counted). */
static bool repeat_admit(int level, const char *msg)
{
    if (level < LOG_WARN)
        return true;
    flood_state_t *f = flood_state();
    if (f->in_summary)
        return true;
    uint64_t h = msg_hash(level, msg), now = mono_ms();
    repeat_slot_t *r = &f->slots[h % LOG_REPEAT_SLOTS];
    if (r->hash == h && now - r->since_ms < LOG_REPEAT_WINDOW_MS) {
        r->repeats++;
        atomic_fetch_add_explicit(&suppressed_total, 1, memory_order_relaxed);
        return false;
    }
    if (r->hash && r->repeats)
        write_repeat_summary(f, r);
    r->hash = h;
    r->since_ms = now;
    r->repeats = 0;
    r->level = level;
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
    return true;
}

void log_tick(void)
{
    flood_state_t *f = &tl_flood_state;
    uint64_t now = mono_ms();
    if (now - f->last_tick_ms < 100)
        return;
    f->last_tick_ms = now;
    for (int i = 0; i < LOG_REPEAT_SLOTS; i++) {
        repeat_slot_t *r = &f->slots[i];
        if (r->hash && now - r->since_ms >= LOG_REPEAT_WINDOW_MS) {
            if (r->repeats)
                write_repeat_summary(f, r);
            r->hash = 0;
        }
    }
    if (f->flood_dropped && now / 1000 != f->flood_sec) {
        uint64_t d = f->flood_dropped;
        f->flood_dropped = 0;
        f->in_summary = true;
        log_fields(LOG_WARN, "request lines sampled under load", "#written", (int64_t)f->flood_lines,
                   "#suppressed", (int64_t)d, "#sample", (int64_t)LOG_FLOOD_SAMPLE, NULL);
        f->in_summary = false;
    }
}

unsigned log_flood_admit(void)
{
    flood_state_t *f = flood_state();
    uint64_t sec = mono_ms() / 1000;
    if (sec != f->flood_sec) {
        f->flood_sec = sec;
        f->flood_lines = 0;
    }
    uint64_t n = f->flood_lines++;
    if (n < LOG_FLOOD_BURST)
        return 1;
    if ((n - LOG_FLOOD_BURST) % LOG_FLOOD_SAMPLE == 0)
        return LOG_FLOOD_SAMPLE;
    f->flood_dropped++;
    atomic_fetch_add_explicit(&suppressed_total, 1, memory_order_relaxed);
    return 0;
}

uint64_t log_suppressed_total(void)
{
    return atomic_load_explicit(&suppressed_total, memory_order_relaxed);
}

static size_t write_chunk; /* 0: write a sink's buffer whole; else whole lines up to this */

size_t log_write_chunk(void)
{
    return write_chunk;
}

void log_init(void)
{
    /* Reactor threads write whole lines through their own rings at "the file position": on a
     * regular file opened without O_APPEND they would overwrite each other's lines. */
    struct stat st;
    if (fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
        int fl = fcntl(STDERR_FILENO, F_GETFL);
        if (fl >= 0 && !(fl & O_APPEND))
            fcntl(STDERR_FILENO, F_SETFL, fl | O_APPEND);
    } else {
        /* a pipe (or journald's socket): only writes of at most PIPE_BUF bytes are atomic, so
         * threads writing at once must hand over whole lines in chunks of that size */
        write_chunk = PIPE_BUF;
    }
}

size_t log_count_lines(const char *p, size_t len)
{
    size_t n = 0;
    for (const char *e = p + len; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        n++;
    return n;
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

void log_thread_free(void)
{
    buf_free(&tl_direct);
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
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_count_dropped(1);
            break;
        }
        off += (size_t)n;
    }
    pthread_mutex_unlock(&direct_lock);
    b->len = 0;
}

void log_fields(int level, const char *msg, ...)
{
    if (level < g_log_level || !repeat_admit(level, msg))
        return;
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
    if (!repeat_admit(level, msg))
        return;
    buf_t *b = log_line_begin(level, msg);
    if (b)
        log_line_end(b);
}
