/*
 * Per-thread shards: each thread registers the structure it alone writes (its HTTP server, its
 * database pool, its Redis client, its counters) and readers on other threads (metrics, stats)
 * walk them all. One registry type and one maximum for all of them, with slots published
 * atomically: a reader sees a shard whole or not at all.
 */
#ifndef CRMD_CORE_SHARDS_H
#define CRMD_CORE_SHARDS_H

/* The most shards of one kind: reactor threads (at most 256, see core/config.c) plus the
 * admin and one-shot threads of a process. */
#define SHARDS_MAX 512

typedef struct shards {
    void *_Atomic slot[SHARDS_MAX];
    _Atomic int n;
} shards_t;

/* Registers p (never NULL); returns its index. Dies past SHARDS_MAX. */
int shards_add(shards_t *s, void *p);
/* Shards registered so far; shards_at(s, i) is NULL for one still being published. */
int shards_count(shards_t *s);
void *shards_at(shards_t *s, int i);
/* Forgets every shard (at exit, after the caller freed them). */
void shards_reset(shards_t *s);

/* for each published shard v (of type type *) of s */
#define SHARDS_EACH(s, type, v)                                                                              \
    for (int v##_i_ = 0, v##_n_ = shards_count(s); v##_i_ < v##_n_; v##_i_++)                                \
        for (type *v = shards_at(s, v##_i_); v; v = NULL)

#endif
