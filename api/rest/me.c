/* GET /api/me → {"data": {"user": {...}, "organization": {"id", "name", "tier"}}}. */
#include "api/rest/me.h"
#include "api/auth.h"
#include "api/route.h"
#include "core/json.h"
#include "db/db.h"

#include <string.h>

static db_stmt_t me_stmt;

/* created_at as RFC 3339 UTC straight from PostgreSQL */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static void me_done(db_batch_t *b, void *arg)
{
    http_ctx_t *ctx = arg;
    if (b->status != DB_OK || PQntuples(b->results[0]) != 1) {
        int st = b->status == DB_OK ? 404 : 503;
        db_batch_release(b);
        if (st == 503)
            http_add_header(ctx, LIT("Retry-After"), LIT("2"));
        http_respond_problem(ctx, st, st == 404 ? "not-found" : "service-unavailable",
                             st == 404 ? "the key's user no longer exists" : "the database is unavailable");
        return;
    }
    PGresult *r = b->results[0];
    buf_t *o = http_body(ctx);
    buf_append_lit(o, "{\"data\":{\"user\":{\"id\":");
    buf_append(o, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    buf_append_lit(o, ",\"name\":");
    json_str(o, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
    buf_append_lit(o, ",\"email\":");
    if (PQgetisnull(r, 0, 2))
        buf_append_lit(o, "null");
    else
        json_str(o, PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2));
    buf_append_lit(o, ",\"role\":");
    json_str(o, PQgetvalue(r, 0, 3), (size_t)PQgetlength(r, 0, 3));
    buf_append_lit(o, ",\"created_at\":");
    json_str(o, PQgetvalue(r, 0, 4), (size_t)PQgetlength(r, 0, 4));
    buf_append_lit(o, "},\"organization\":{\"id\":");
    buf_append(o, PQgetvalue(r, 0, 5), (size_t)PQgetlength(r, 0, 5));
    buf_append_lit(o, ",\"name\":");
    json_str(o, PQgetvalue(r, 0, 6), (size_t)PQgetlength(r, 0, 6));
    buf_append_lit(o, ",\"tier\":");
    json_str(o, PQgetvalue(r, 0, 7), (size_t)PQgetlength(r, 0, 7));
    buf_append_lit(o, "}}}");
    db_batch_release(b);
    http_respond(ctx, 200, "application/json");
}

static void me(http_ctx_t *ctx, const api_auth_t *auth)
{
    const char *params[2] = {auth->org_id_s, auth->user_id_s};
    db_batch_t *b = db_batch_new(&ctx->arena, DB_READ);
    db_batch_add(b, me_stmt, 2, params);
    db_batch_submit(b, me_done, ctx);
}

void api_me_routes(router_t *rt)
{
    me_stmt = db_stmt("SELECT u.id, u.name, u.email, u.role, " TS(
        "u.created_at") ", o.id, o.name, o.tier "
                        "FROM users u JOIN organizations o ON o.id = u.org_id "
                        "WHERE u.org_id = $1 AND u.id = $2");
    api_route(rt, HTTP_GET, "/api/me", me, 0, ROUTE_CLASS_NORMAL, "GET /api/me");
}
