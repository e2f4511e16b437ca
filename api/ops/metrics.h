/* GET /metrics: Prometheus text exposition, served on the admin listener. */
#ifndef CRMD_API_OPS_METRICS_H
#define CRMD_API_OPS_METRICS_H

#include "http/router.h"

/* Adds GET /metrics to admin_rt; per-route figures are reported for the routes of api_rt
 * (listener 0) and admin_rt (listener 1). */
void api_metrics_routes(router_t *admin_rt, const router_t *api_rt);

/* Appends the whole exposition to b. */
/* Seconds since api_metrics_routes ran (process start). */
long long api_metrics_uptime_s(void);

struct buf;
void api_metrics_write(struct buf *b);

#endif
