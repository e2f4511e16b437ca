/* The one 64-bit hash of the process: XXH3 when built with libxxhash, else FNV-1a with the
 * splitmix64 finaliser (so nearby inputs still spread over all 64 bits). Not for secrets. */
#ifndef CRMD_CORE_HASH_H
#define CRMD_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "build_config.h"
#if HAVE_XXHASH
#include <xxhash.h>
#endif

static inline uint64_t hash64(const void *data, size_t n)
{
#if HAVE_XXHASH
    return XXH3_64bits(data, n);
#else
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
#endif
}

#endif
