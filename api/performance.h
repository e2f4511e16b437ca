/* Operations endpoints for admins under /api/performance. */
#ifndef CRMD_API_PERFORMANCE_H
#define CRMD_API_PERFORMANCE_H

#include "http/router.h"

/* Adds POST /api/performance/clear-cache. */
void api_performance_routes(router_t *rt);

#endif
