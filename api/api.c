#include "api/api.h"
#include "api/aggregates.h"
#include "api/batch.h"
#include "api/bulk.h"
#include "api/health.h"
#include "api/me.h"
#include "api/ops/openapi.h"
#include "api/performance.h"
#include "api/resources.h"
#include "api/writes.h"

void api_register_routes(router_t *rt)
{
    api_health_routes(rt);
    api_me_routes(rt);
    api_resources_routes(rt);
    api_writes_routes(rt);
    api_aggregates_routes(rt);
    api_bulk_routes(rt);
    api_performance_routes(rt);
    api_batch_routes(rt);
    api_openapi_routes(rt); /* last: it describes the routes above */
}
