#include "api/api.h"
#include "api/health.h"

void api_register_routes(router_t *rt)
{
    api_health_routes(rt);
}
