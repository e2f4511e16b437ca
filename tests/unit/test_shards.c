/* core/shards: threads registering at once each get their own index; readers see every
 * published shard exactly once, and SHARDS_EACH sums them. */
#include "test.h"

#include "core/shards.h"

#include <pthread.h>

#define THREADS 64

static shards_t reg;
static int values[THREADS];

static void *add_one(void *arg)
{
    int *v = arg;
    shards_add(&reg, v);
    return NULL;
}

TEST(concurrent_adds_each_get_a_slot_and_sum)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        values[i] = i + 1;
        pthread_create(&t[i], NULL, add_one, &values[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(shards_count(&reg), THREADS);
    long sum = 0;
    int seen = 0;
    SHARDS_EACH(&reg, int, v)
    {
        sum += *v;
        seen++;
    }
    CHECK_EQ_INT(seen, THREADS);
    CHECK_EQ_INT(sum, THREADS * (THREADS + 1) / 2);
    for (int i = 0; i < THREADS; i++) { /* every pointer once */
        int found = 0;
        for (int k = 0; k < THREADS; k++)
            found += shards_at(&reg, k) == &values[i];
        CHECK_EQ_INT(found, 1);
    }
    CHECK(shards_at(&reg, -1) == NULL);
    CHECK(shards_at(&reg, SHARDS_MAX) == NULL);
    shards_reset(&reg);
    CHECK_EQ_INT(shards_count(&reg), 0);
    CHECK(shards_at(&reg, 0) == NULL);
}

TEST_MAIN()
