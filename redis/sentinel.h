/*
 * Redis Sentinel: which server is the master now. A background thread (never a reactor: it
 * uses hiredis's blocking calls, each with a short timeout) asks the sentinels of
 * REDIS_SENTINELS "SENTINEL get-master-addr-by-name NAME" every SENTINEL_POLL_MS and publishes
 * the answer with a generation number. The reactors' clients (redis.c) connect to the
 * published address and, when the generation moves, drop their connections to the old master
 * and reconnect: commands fail UNAVAILABLE for that moment (the cache falls back to L1, limits
 * to local ones) and the invalidation subscription reports its gap as after any loss.
 */
#ifndef CRMD_REDIS_SENTINEL_H
#define CRMD_REDIS_SENTINEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define SENTINEL_POLL_MS 250

/* Parses list ("host:port,host:port", [v6]:port allowed), asks the sentinels once (blocking,
 * about a second at most) and starts the polling thread. Returns 0, or -1 with a logged reason
 * when the list is malformed (an unreachable set of sentinels is not an error: the clients
 * stay unavailable until one answers). */
int redis_sentinel_start(const char *list, const char *master_name);

/* Stops the polling thread (at exit). */
void redis_sentinel_stop(void);

/* Whether sentinel mode is on (redis_sentinel_start succeeded). */
bool redis_sentinel_enabled(void);

/* The current master's address; returns its generation (0: none known yet, addr untouched).
 * Any thread may call it; it takes a short lock. */
uint32_t redis_sentinel_master(struct sockaddr_storage *addr, socklen_t *len);

/* The current generation, without the lock (reactors compare it every loop turn). */
uint32_t redis_sentinel_generation(void);

#endif
