/*
 * The jobs endpoints (API.md § Jobs): queue, read, cancel and retry jobs, per-type stats, job
 * results, and company imports by upload.
 */
#ifndef CRMD_API_REST_JOBS_H
#define CRMD_API_REST_JOBS_H

#include "http/router.h"

void api_jobs_routes(router_t *rt);

#endif
