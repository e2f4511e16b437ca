/*
 * Structured JSON log lines on stderr. On a reactor thread a line is appended to the thread's
 * buffer and written by an asynchronous ring write at the end of the loop turn, so logging
 * never blocks a reactor; if stderr cannot keep up, lines are dropped and counted. Elsewhere
 * the line is written at once.
 */
#ifndef CRMD_CORE_LOG_H
#define CRMD_CORE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern int g_log_level;

/* Parses "debug|info|warn|error|off"; -1 if unknown. */
int log_level_parse(const char *s);

/* A field list for log_fields: "key", value pairs terminated by NULL; values are strings
 * unless the key starts with '#', which marks an int64 value (the '#' is not printed). */
void log_fields(int level, const char *msg, ...);

/* printf-style message with no extra fields. */
__attribute__((format(printf, 2, 3))) void log_msg(int level, const char *fmt, ...);

#define log_debug(...) (g_log_level <= LOG_DEBUG ? log_msg(LOG_DEBUG, __VA_ARGS__) : (void)0)
#define log_info(...)  (g_log_level <= LOG_INFO ? log_msg(LOG_INFO, __VA_ARGS__) : (void)0)
#define log_warn(...)  (g_log_level <= LOG_WARN ? log_msg(LOG_WARN, __VA_ARGS__) : (void)0)
#define log_error(...) (g_log_level <= LOG_ERROR ? log_msg(LOG_ERROR, __VA_ARGS__) : (void)0)

/* Starts a raw line for callers that build their own fields (the access log): returns the
 * buffer to append to after "{\"ts\":...,\"level\":...,\"msg\":...", or NULL when the level is
 * off. Finish with log_line_end. */
buf_t *log_line_begin(int level, const char *msg);
void log_line_end(buf_t *b);

/* Per-thread asynchronous sink, set up by a reactor thread. */
typedef struct log_sink {
    buf_t pending;    /* lines waiting for the next write */
    buf_t writing;    /* bytes handed to the ring */
    size_t written;   /* of writing */
    uint64_t dropped; /* lines dropped because stderr was too slow */
    int in_flight;
} log_sink_t;

/* Makes this thread log into sink (NULL: write directly). */
void log_set_sink(log_sink_t *sink);

/* Frees the line buffer of a thread without a sink; call before such a thread exits. */
void log_thread_free(void);
log_sink_t *log_get_sink(void);

/* Makes stderr safe for concurrent line writes (O_APPEND on a regular file). Call once at
 * start, before any thread logs. */
void log_init(void);

/* 0 when stderr takes a thread's buffer in one write without tearing it (a regular file in
 * append mode); else the largest atomic write: send whole lines in chunks of at most this. */
size_t log_write_chunk(void);

/* Emits the "repeated N times" and sampling summaries whose window has ended; a reactor calls
 * it once per loop turn (it returns at once unless 100 ms have passed). */
void log_tick(void);

/* For request lines of failed requests: 0 when this line is to be dropped under a flood, else
 * the number of lines it stands for (1, or the sampling rate). */
unsigned log_flood_admit(void);

/* Warnings and errors folded into summaries, and request lines sampled away, since start. */
uint64_t log_suppressed_total(void);

/* Newlines in p[0..len): how many whole lines a failed write loses. */
size_t log_count_lines(const char *p, size_t len);

/* Lines dropped by all sinks since start. */
uint64_t log_dropped_total(void);
void log_count_dropped(uint64_t n);

#endif
