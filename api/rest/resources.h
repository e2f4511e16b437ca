/*
 * The read half of API.md's Resources: GET /api/<r> (keyset-paginated, filtered, sorted, full-text
 * searched lists) and GET /api/<r>/{id} for companies, contacts, deals, activities, tasks, stages
 * and users. Every query is scoped to the caller's organization.
 *
 * Filter semantics where API.md leaves them open: minValue/maxValue and closingAfter/
 * closingBefore are inclusive bounds; since is inclusive and until and dueBefore exclusive, each
 * a date (its 00:00 UTC) or an RFC 3339 timestamp. q alone orders by relevance (ts_rank desc, then
 * id desc); q with sort filters by q and keeps the sort. A NULL sort value (deals'
 * expected_close_date) sorts after every value, as PostgreSQL's default does. A page reached
 * with a forward cursor reports has_prev true (and one reached backwards has_next true): the
 * client came from there; the first and last pages are known by the limit + 1 probe.
 */
#ifndef CRMD_API_REST_RESOURCES_H
#define CRMD_API_REST_RESOURCES_H

#include <libpq-fe.h>

#include "core/json.h"
#include "http/router.h"

/* Registers the GET list and GET one routes of every resource (behind api_route). */
void api_resources_routes(router_t *rt);

/* The columns GET /api/<name>/{id} selects, over table alias t ("t.id, t.owner_id, ..."); NULL for
 * an unknown name. Writes select them in the same order to answer with the same representation. */
const char *api_resource_select(const char *name);

/* Writes one row object exactly as GET /api/<name>/{id} does (no extras), reading the columns of
 * api_resource_select from result column first_col on. */
void api_resource_write_row(json_writer_t *w, const char *name, const PGresult *r, int row, int first_col);

#endif
