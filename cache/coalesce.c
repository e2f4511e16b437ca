/* Fill coalescing (see coalesce.h): a per-thread hash table of fills in flight. */
#include "cache/coalesce.h"
#include "core/common.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS 256

static __thread coalesce_node_t **tl_buckets;

void coalesce_thread_init(void)
{
    if (!tl_buckets)
        tl_buckets = xcalloc(BUCKETS, sizeof(*tl_buckets));
}

void coalesce_thread_free(void)
{
    free(tl_buckets);
    tl_buckets = NULL;
}

coalesce_node_t *coalesce_find(const char *key, size_t n, uint64_t hash)
{
    for (coalesce_node_t *c = tl_buckets[hash % BUCKETS]; c; c = c->next)
        if (c->hash == hash && c->key_len == n && memcmp(c->key, key, n) == 0)
            return c;
    return NULL;
}

void coalesce_register(coalesce_node_t *n)
{
    coalesce_node_t **b = &tl_buckets[n->hash % BUCKETS];
    n->next = *b;
    *b = n;
    n->registered = true;
}

void coalesce_unregister(coalesce_node_t *n)
{
    if (!n->registered)
        return;
    for (coalesce_node_t **pp = &tl_buckets[n->hash % BUCKETS]; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    }
    n->registered = false;
}
