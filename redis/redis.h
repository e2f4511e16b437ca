/*
 * Per-thread asynchronous Redis client driven by the reactor's ring. hiredis is used only for
 * its protocol parts (redisFormatCommandArgv, redisReader); the socket is ours: connect, send
 * and recv are io_uring operations. Commands are appended to an output buffer flushed once per
 * loop turn, so the commands of many requests share one send; replies are matched FIFO.
 *
 * Failure rule: Redis is a cache, never a dependency to wait for. While the connection is not
 * up, every command fails at once with REDIS_STATUS_UNAVAILABLE; a command unanswered after the
 * timeout declares the connection dead (its commands fail with REDIS_STATUS_TIMEOUT) and the
 * client reconnects by itself with exponential backoff (100 ms to 2 s, with jitter).
 *
 * Callbacks run on the thread that issued the command, from the reactor's end-of-turn hook,
 * never from inside the call that issued it. The reply belongs to the client and is freed when
 * the callback returns.
 */
#ifndef CRMD_REDIS_REDIS_H
#define CRMD_REDIS_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/reactor.h"

/* Outcome of a command. (hiredis owns the REDIS_OK/REDIS_ERR names.) */
enum redis_status {
    REDIS_STATUS_OK = 0,      /* a reply that is not an error (nil included) */
    REDIS_STATUS_ERROR,       /* an error reply: reply->str says which */
    REDIS_STATUS_UNAVAILABLE, /* not connected, connection lost, or no REDIS_URL; reply is NULL */
    REDIS_STATUS_TIMEOUT,     /* no answer within the timeout; reply is NULL */
};

/* Completion of a command: reply is NULL unless status is OK or ERROR, and is freed after the
 * callback returns (copy what you keep). */
typedef void (*redis_cb_t)(void *arg, redisReply *reply, int status);

/* A message on a subscribed channel; channel is NUL-terminated, msg is binary (len bytes). */
typedef void (*redis_message_cb_t)(const char *channel, const char *msg, size_t len, void *arg);

/* The subscription to channel is active again after a gap: messages may have been missed. */
typedef void (*redis_resubscribe_cb_t)(const char *channel, void *arg);

#define REDIS_DEFAULT_TIMEOUT_MS 250

/* Parts of redis://[[user]:password@]host[:port][/db] (host may be [ipv6]). */
typedef struct redis_url {
    char host[256];
    uint16_t port;      /* 6379 when absent */
    uint32_t db;        /* 0 when absent */
    char user[128];     /* empty: AUTH with the password alone */
    char password[256]; /* empty: no AUTH; %XX escapes are decoded */
} redis_url_t;

/* Parses url into out; false with a static reason in *why (may be NULL) when it is malformed. */
bool redis_url_parse(const char *url, redis_url_t *out, const char **why);

/* Counters of every thread's client, merged on read. */
typedef struct redis_stats {
    uint64_t commands;    /* commands issued by callers */
    uint64_t errors;      /* error replies */
    uint64_t timeouts;    /* commands failed with TIMEOUT */
    uint64_t unavailable; /* commands failed with UNAVAILABLE */
    uint64_t reconnects;  /* connections restored after a loss */
    uint64_t sends;       /* send operations (a measure of pipelining) */
    uint64_t messages;    /* pub/sub messages delivered */
    uint32_t connected;   /* threads whose command connection is up (gauge) */
    uint32_t clients;     /* threads with a started client */
} redis_stats_t;

/*
 * Starts this thread's client on reactor r (once per reactor thread, before its loop runs):
 * connects to url in the background; commands fail UNAVAILABLE until it is up. timeout_ms 0
 * takes REDIS_DEFAULT_TIMEOUT_MS. Returns 0, or -1 when url is empty or malformed (logged): the
 * client then exists but every command fails UNAVAILABLE. A host name is resolved here, once.
 */
int redis_client_start(reactor_t *r, const char *url, uint32_t timeout_ms);

/* Closes this thread's connections and fails their pending commands (callbacks run before it
 * returns). Call on the reactor thread, before reactor_destroy. */
void redis_client_stop(void);

/* Whether this thread's command connection is up. */
bool redis_connected(void);

/* Issues a command (argv[0] is its name); argvlen NULL means every argument is a C string.
 * Binary-safe; the arguments are copied before it returns. cb may be NULL. */
void redis_command_argv(int argc, const char **argv, const size_t *argvlen, redis_cb_t cb, void *arg);

/* GET key: a string reply, or REDIS_REPLY_NIL when absent. */
void redis_get(const char *key, size_t keylen, redis_cb_t cb, void *arg);

/* SET key value PX ttl_ms. */
void redis_set_px(const char *key, size_t keylen, const char *val, size_t vallen, uint64_t ttl_ms,
                  redis_cb_t cb, void *arg);

/* DEL key: an integer reply, the number of keys removed. */
void redis_del(const char *key, size_t keylen, redis_cb_t cb, void *arg);

/* A Lua script known by its SHA1; define it once (e.g. a static) before threads use it. */
typedef struct redis_script {
    const char *src;
    size_t len;
    char sha[41]; /* lowercase hex SHA1 of src, NUL-terminated */
} redis_script_t;

/* Sets up s for the Lua source src (kept by pointer: it must outlive s). */
void redis_script_init(redis_script_t *s, const char *src);

/* Runs script with EVALSHA, and once more with EVAL when the server answers NOSCRIPT. argv holds
 * the nkeys keys, then the other arguments (argc in all); argvlen NULL means C strings. */
void redis_eval(const redis_script_t *script, int nkeys, int argc, const char **argv, const size_t *argvlen,
                redis_cb_t cb, void *arg);

/* PUBLISH channel msg through the command connection: an integer reply, the receiver count. */
void redis_publish(const char *channel, const char *msg, size_t len, redis_cb_t cb, void *arg);

/*
 * Subscribes this thread (the process's designated thread: call it on one thread only) to
 * channel on a second connection, opened on first use. Subscriptions are restored after every
 * reconnect, and on_resubscribe (may be NULL) is then called once the server confirms, since
 * messages published during the gap were lost. Callbacks run on this thread while replies are
 * read. Returns 0, or -1 when this thread has no usable client or too many channels.
 */
int redis_subscribe(const char *channel, redis_message_cb_t on_message, redis_resubscribe_cb_t on_resubscribe,
                    void *arg);

/* Fills out with the counters of every thread's client (any thread may call it). */
void redis_stats(redis_stats_t *out);

#endif
