#include "api/api.h"
#include "api/graphql/graphql.h"
#include "api/rest/aggregates.h"
#include "api/rest/batch.h"
#include "api/rest/bulk.h"
#include "api/rest/jobs.h"
#include "api/ops/health.h"
#include "api/rest/me.h"
#include "api/ops/openapi.h"
#include "api/ops/performance.h"
#include "api/rest/resources.h"
#include "api/rest/writes.h"

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
    api_jobs_routes(rt);
    gql_routes(rt);
    api_openapi_routes(rt); /* last: it describes the routes above */
}
