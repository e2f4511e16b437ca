/* Operations endpoints for admins under /api/performance. */
#ifndef CRMD_API_OPS_PERFORMANCE_H
#define CRMD_API_OPS_PERFORMANCE_H

#include "http/router.h"

/* Adds POST /api/performance/clear-cache (an organization's admin: that organization only). */
void api_performance_routes(router_t *rt);

/* Adds the operator's POST /api/performance/clear-cache (every organization) to the admin
 * listener's routes. */
void api_performance_operator_routes(router_t *admin_rt);

#endif
