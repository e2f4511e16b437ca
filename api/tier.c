/* Organization tiers (see tier.h). */
#include "api/tier.h"
#include "core/common.h"

#include <string.h>

static const char *const tier_names[TIER_COUNT] = {"free", "standard", "professional", "enterprise",
                                                   "unlimited"};

const char *api_tier_name(int tier)
{
    return tier >= 0 && tier < TIER_COUNT ? tier_names[tier] : "free";
}

int api_tier_parse(const char *s, size_t n)
{
    for (int i = 0; i < TIER_COUNT; i++)
        if (strlen(tier_names[i]) == n && memcmp(tier_names[i], s, n) == 0)
            return i;
    return -1;
}
