/*
 * Organization tiers (API.md: free, standard, professional, enterprise, unlimited): a leaf
 * module, so that authentication, rate limiting and metrics can name tiers without depending
 * on one another.
 */
#ifndef CRMD_API_TIER_H
#define CRMD_API_TIER_H

#include <stddef.h>

enum api_tier {
    TIER_FREE = 0,
    TIER_STANDARD,
    TIER_PROFESSIONAL,
    TIER_ENTERPRISE,
    TIER_UNLIMITED,
    TIER_COUNT
};

/* Name of a tier ("professional"); "free" for an unknown value. */
const char *api_tier_name(int tier);
/* The tier named by s[0..n), or -1. */
int api_tier_parse(const char *s, size_t n);

#endif
