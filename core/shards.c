/* Per-thread shard registries (see shards.h). */
#include "core/shards.h"
#include "core/common.h"

#include <stdatomic.h>

int shards_add(shards_t *s, void *p)
{
    int i = atomic_fetch_add(&s->n, 1);
    if (i >= SHARDS_MAX)
        die("more than %d per-thread shards of one kind", SHARDS_MAX);
    atomic_store_explicit(&s->slot[i], p, memory_order_release);
    return i;
}

int shards_count(shards_t *s)
{
    int n = atomic_load_explicit(&s->n, memory_order_acquire);
    return n < SHARDS_MAX ? n : SHARDS_MAX;
}

void *shards_at(shards_t *s, int i)
{
    return i >= 0 && i < SHARDS_MAX ? atomic_load_explicit(&s->slot[i], memory_order_acquire) : NULL;
}

void shards_reset(shards_t *s)
{
    int n = shards_count(s);
    for (int i = 0; i < n; i++)
        atomic_store(&s->slot[i], NULL);
    atomic_store(&s->n, 0);
}
