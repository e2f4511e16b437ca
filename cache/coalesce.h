/*
 * Fill coalescing: the first miss of a key on a thread registers its fill here; later misses
 * of the same key find it and wait for its entry instead of asking the database again. Nodes
 * are intrusive (embedded in the caller's fill) and per thread, so nothing is locked.
 */
#ifndef CRMD_CACHE_COALESCE_H
#define CRMD_CACHE_COALESCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct coalesce_node {
    const char *key;
    size_t key_len;
    uint64_t hash;
    bool registered;
    struct coalesce_node *next; /* bucket chain */
} coalesce_node_t;

void coalesce_thread_init(void);
void coalesce_thread_free(void);

/* The registered fill of key on this thread, or NULL. */
coalesce_node_t *coalesce_find(const char *key, size_t n, uint64_t hash);
/* Registers n (its key, key_len and hash set) so that later misses find it. */
void coalesce_register(coalesce_node_t *n);
/* Unregisters n if it is registered. */
void coalesce_unregister(coalesce_node_t *n);

#endif
