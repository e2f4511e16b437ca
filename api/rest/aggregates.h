/*
 * The aggregates of API.md, each scoped to the caller's organization, in the expensive route
 * class and cached (frequent tier) under the org-level tags of every table it reads:
 *
 * GET /api/dashboard?ownerId=            six figures in one batch (one pipeline, one round trip)
 * GET /api/deals/pipeline-stats?ownerId= per stage and totals
 * GET /api/companies/{id}/analytics      engagement of one company (404 for another org's)
 * GET /api/companies/{id}/deals-summary  one company's deals per status and per stage
 *
 * Decisions where API.md is open:
 * - ownerId is a positive integer (else 400); an owner outside the organization simply matches
 *   nothing. It filters deals, activities, tasks and companies by their owner_id; stages are
 *   always the organization's.
 * - "today" is the current UTC day and "week" the current ISO week (Monday 00:00 UTC onwards),
 *   both up to their end, so activities scheduled later today count.
 * - Per stage (dashboard pipeline and pipeline-stats) every deal in the stage counts, whatever
 *   its status; weighted values use each deal's own probability; win_rate counts deals by status.
 * - avg_value and avg_age_days are 0 for a stage without deals; avg_age_days is the mean of
 *   now - created_at in days, 1 decimal.
 * - companies_with_deals: of the companies counted in total_companies, those with any deal.
 * - recent.activities: the 10 latest with occurred_at <= now (future ones are not "recent");
 *   recent.tasks: the 5 open tasks due first, overdue ones included.
 * - analytics: activity_count_30d and last_activity_at ignore activities in the future.
 */
#ifndef CRMD_API_REST_AGGREGATES_H
#define CRMD_API_REST_AGGREGATES_H

#include "http/router.h"

/* Registers the four aggregate routes (behind api_route_cached). */
void api_aggregates_routes(router_t *rt);

#endif
