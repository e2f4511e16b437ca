/*
 * POST /api/deals/bulk (bulk route class):
 *   {"operation": "update_stage"|"update_owner"|"update_status"|"delete",
 *    "dealIds": [1..1000 distinct positive integers],
 *    "updates": {"stage_id"} | {"owner_id"} | {"status": open|won|lost} | absent or {} for delete}
 * → 200 {"data": {"operation", "updated": n}}.
 *
 * All or nothing, in one statement of one transaction: the deals are locked, and if any id is
 * not a deal of the caller's organization (or the stage/owner referenced is not the
 * organization's) nothing changes and the answer is 422 naming them. update_stage applies the
 * single-deal rule: status follows the stage's kind (open/won/lost) and probability takes the
 * stage's. update_status changes only the status (closed_at follows it). Before answering, the
 * response caches of every deal ("deal:<id>"), of the affected companies ("company:<id>") and of
 * the organization's deal views ("org:<org>:deals", which covers the dashboards) are invalidated,
 * here and in Redis; a delete also invalidates "org:<org>:tasks" and "org:<org>:activities",
 * whose rows lose their deal_id.
 *
 * Errors: non-JSON Content-Type 415, malformed JSON 400, unknown fields, wrong types, bad
 * values, too many or duplicate ids 422.
 */
#ifndef CRMD_API_REST_BULK_H
#define CRMD_API_REST_BULK_H

#include "http/router.h"

/* Most deal ids in one bulk request. */
#define BULK_MAX_IDS 1000

/* Registers POST /api/deals/bulk (behind api_route). */
void api_bulk_routes(router_t *rt);

#endif
