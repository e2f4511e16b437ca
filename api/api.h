/* The CRM API: every route of API.md, registered on one router at start-up. */
#ifndef CRMD_API_API_H
#define CRMD_API_API_H

#include "http/router.h"

/* Adds every API route to rt. */
void api_register_routes(router_t *rt);

#endif
