/*
 * The write half of API.md's Resources: POST /api/<r>, PATCH /api/<r>/{id} and
 * DELETE /api/<r>/{id} for companies, contacts, deals, activities and tasks, with strict body
 * validation (422 naming each field), If-Match (412) and Idempotency-Key replays stored in
 * PostgreSQL in the same transaction as the write. Every write invalidates the cache tags of the
 * rows it changed before it answers.
 *
 * How the pieces hold together without a transaction spanning round trips (a batch is one
 * implicit transaction, and two batches may run on two connections):
 * - A write is one statement per batch step: reference checks (owner_id, company_id, ... in the
 *   caller's organization) and the INSERT/UPDATE/DELETE are CTEs of one statement, so the answer
 *   says which reference failed without a second query.
 * - If-Match: a first batch reads the row and its md5(ROW(...)) guard; the ETag is computed from
 *   the exact GET representation written by the same writer; on a match the second batch writes
 *   only WHERE the row's md5 still equals the guard, so a write slipping in between makes it a
 *   412 instead of a lost update.
 * - Idempotency-Key: the batch claims the key (INSERT ... ON CONFLICT), writes only when it holds
 *   the claim, stores status, Location and the created row's column values in the same
 *   transaction, and reads the stored response back for a replay. A concurrent first use waits
 *   on the key's unique index until the winner commits, then replays its stored response.
 */
#ifndef CRMD_API_REST_WRITES_H
#define CRMD_API_REST_WRITES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/reactor.h"
#include "http/router.h"

/* Registers POST, PATCH and DELETE of every writable resource (behind api_route). Call after
 * api_resources_routes (the writes answer with its row writers). */
void api_writes_routes(router_t *rt);

/* Whether a request body field's value may be logged: a writable field of a resource or a
 * member of a request envelope (batch, bulk, clear-cache); for log_mask_set_loggable. */
bool api_field_loggable(const char *name, size_t n);

/* Starts the periodic purge of idempotency keys older than 24 h on reactor r (one thread of
 * the process); stop it on that thread before the pool stops. */
void api_writes_housekeeping_start(reactor_t *r);
void api_writes_housekeeping_stop(void);

#endif
