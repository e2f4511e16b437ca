/* POST /api/batch: up to 25 operations in one request, each run as its own request. */
#ifndef CRMD_API_REST_BATCH_H
#define CRMD_API_REST_BATCH_H

#include "http/router.h"

void api_batch_routes(router_t *rt);

#endif
