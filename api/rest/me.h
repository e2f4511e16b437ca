/* GET /api/me: the caller's user and organization. */
#ifndef CRMD_API_REST_ME_H
#define CRMD_API_REST_ME_H

#include "http/router.h"

void api_me_routes(router_t *rt);

#endif
