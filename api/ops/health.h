/* Health endpoints for load balancers: liveness, readiness and overall health. */
#ifndef CRMD_API_OPS_HEALTH_H
#define CRMD_API_OPS_HEALTH_H

#include "http/router.h"

/* Adds GET /api/health, /api/health/live and /api/health/ready. */
void api_health_routes(router_t *rt);

#endif
