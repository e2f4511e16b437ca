"""POST /api/deals/bulk against database truth: each operation changes exactly the rows named (and
nothing else), all or nothing (a foreign id, stage or owner is 422 and the deals table is bit for bit
unchanged), validation (>1000 ids, duplicates, types, unknown fields, malformed JSON, content type),
and cached views (GET /api/deals/<id>, dashboard, company analytics) fresh after a bulk change on the
instance that made it and on a second instance sharing Redis."""
import json
import os
import re
import subprocess
import time

from lib import CRMD, ROOT, Conn, Server, Skip, psql, redis_cli, wait_ready, seed_keys

DB = os.environ.get("DATABASE_URL")
REDIS = os.environ.get("REDIS_URL")
a = b = None
keys = None


def ints(sql):
    return [int(x) for x in psql(sql).split()]


def env():
    return {"DATABASE_URL": DB, "REDIS_URL": REDIS, "PAGINATION_KEY": "bulk-test",
            "RATE_LIMIT_WHITELIST": "127.0.0.1/32"}


def setup_module():
    global a, b, keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    keys = seed_keys("bulk")
    a = Server(env=env())
    b = Server(env=env())
    wait_ready(a)
    wait_ready(b)


def teardown_module():
    for s in (a, b):
        if s:
            s.stop()


def key(org=1):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == "admin")


def get(s, path, org=1):
    with Conn(s) as c:
        return c.request("GET", path, {"X-API-Key": key(org)})


def bulk(body, s=None, org=1, ctype="application/json"):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    with Conn(s or a) as c:
        return c.request("POST", "/api/deals/bulk", {"X-API-Key": key(org), "Content-Type": ctype}, raw)


def checksum(where="TRUE"):
    return psql("SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY id), '')) FROM deals d WHERE %s" % where)


def deals(org=1, n=3, where="TRUE"):
    return ints("SELECT id FROM deals WHERE org_id = %d AND %s ORDER BY id LIMIT %d" % (org, where, n))


def stage(org, kind):
    return ints("SELECT id FROM stages WHERE org_id = %d AND kind = '%s' ORDER BY position LIMIT 1" % (org, kind))[0]


def id_list(ids):
    return ",".join(str(i) for i in ids)


def assert_others_unchanged(ids, before):
    assert checksum("id NOT IN (%s)" % id_list(ids)) == before


def errors(r):
    assert r.header("content-type").startswith("application/problem+json"), r
    return r.json().get("errors", [])


# ---- each operation changes exactly its rows ----

def test_update_stage_to_won_sets_status_and_probability():
    ids = deals(where="status = 'open'")
    won = stage(1, "won")
    before = checksum("id NOT IN (%s)" % id_list(ids))
    r = bulk({"operation": "update_stage", "dealIds": ids, "updates": {"stage_id": won}})
    assert r.status == 200, r
    assert r.json() == {"data": {"operation": "update_stage", "updated": len(ids)}}
    prob = psql("SELECT probability FROM stages WHERE id = %d" % won)
    got = psql("SELECT string_agg(stage_id || ':' || status || ':' || probability || ':' || (closed_at IS NOT NULL),"
               " ',' ORDER BY id) FROM deals WHERE id IN (%s)" % id_list(ids))
    assert got == ",".join("%d:won:%s:true" % (won, prob) for _ in ids), got
    assert_others_unchanged(ids, before)
    # back to an open stage: open again, closed_at cleared, the stage's probability
    lead = stage(1, "open")
    assert bulk({"operation": "update_stage", "dealIds": ids, "updates": {"stage_id": lead}}).status == 200
    prob = psql("SELECT probability FROM stages WHERE id = %d" % lead)
    got = psql("SELECT string_agg(DISTINCT status || ':' || probability || ':' || (closed_at IS NULL), ',')"
               " FROM deals WHERE id IN (%s)" % id_list(ids))
    assert got == "open:%s:true" % prob, got
    assert_others_unchanged(ids, before)


def test_update_stage_to_lost():
    ids = deals(n=2, where="status = 'open'")
    lost = stage(1, "lost")
    assert bulk({"operation": "update_stage", "dealIds": ids, "updates": {"stage_id": lost}}).status == 200
    assert psql("SELECT string_agg(DISTINCT status || ':' || stage_id, ',') FROM deals WHERE id IN (%s)"
                % id_list(ids)) == "lost:%d" % lost


def test_update_owner():
    owner = ints("SELECT id FROM users WHERE org_id = 1 ORDER BY id DESC LIMIT 1")[0]
    ids = deals(n=5, where="owner_id IS DISTINCT FROM %d" % owner)
    before = checksum("id NOT IN (%s)" % id_list(ids))
    r = bulk({"operation": "update_owner", "dealIds": ids, "updates": {"owner_id": owner}})
    assert r.status == 200 and r.json()["data"] == {"operation": "update_owner", "updated": 5}, r
    assert ints("SELECT DISTINCT owner_id FROM deals WHERE id IN (%s)" % id_list(ids)) == [owner]
    assert_others_unchanged(ids, before)


def test_update_status_keeps_stage():
    ids = deals(n=4, where="status = 'open'")
    stages_before = psql("SELECT string_agg(stage_id::text, ',' ORDER BY id) FROM deals WHERE id IN (%s)" % id_list(ids))
    before = checksum("id NOT IN (%s)" % id_list(ids))
    r = bulk({"operation": "update_status", "dealIds": ids, "updates": {"status": "lost"}})
    assert r.status == 200 and r.json()["data"]["updated"] == 4, r
    assert psql("SELECT string_agg(DISTINCT status || ':' || (closed_at IS NOT NULL), ',') FROM deals"
                " WHERE id IN (%s)" % id_list(ids)) == "lost:true"
    assert psql("SELECT string_agg(stage_id::text, ',' ORDER BY id) FROM deals WHERE id IN (%s)"
                % id_list(ids)) == stages_before
    assert_others_unchanged(ids, before)


def test_delete():
    ids = deals(n=3, where="id IN (SELECT deal_id FROM tasks WHERE deal_id IS NOT NULL)") or deals(n=3)
    before = checksum("id NOT IN (%s)" % id_list(ids))
    count = int(psql("SELECT count(*) FROM deals"))
    r = bulk({"operation": "delete", "dealIds": ids})
    assert r.status == 200 and r.json()["data"] == {"operation": "delete", "updated": len(ids)}, r
    assert psql("SELECT count(*) FROM deals WHERE id IN (%s)" % id_list(ids)) == "0"
    assert int(psql("SELECT count(*) FROM deals")) == count - len(ids)
    assert psql("SELECT count(*) FROM tasks WHERE deal_id IN (%s)" % id_list(ids)) == "0"
    assert_others_unchanged(ids, before)
    # deleting them again: they are gone, 422
    r = bulk({"operation": "delete", "dealIds": ids, "updates": {}})
    assert r.status == 422 and errors(r)[0]["field"] == "dealIds", r


# ---- all or nothing ----

def test_foreign_or_missing_id_changes_nothing():
    mine = deals(n=3, where="status = 'open'")
    foreign = deals(org=2, n=1)[0]
    won = stage(1, "won")
    for extra in ([foreign], [99999999], [foreign, 99999998]):
        ids = mine[:2] + extra + mine[2:]
        before = checksum()
        for body in ({"operation": "update_stage", "dealIds": ids, "updates": {"stage_id": won}},
                     {"operation": "update_status", "dealIds": ids, "updates": {"status": "won"}},
                     {"operation": "delete", "dealIds": ids}):
            r = bulk(body)
            assert r.status == 422, (body, r)
            assert errors(r) == [{"field": "dealIds", "message": "not found: " + ", ".join(map(str, extra))}], r
            assert checksum() == before, body


def test_foreign_stage_or_owner_changes_nothing():
    ids = deals(n=3)
    before = checksum()
    foreign_stage = stage(2, "won")
    foreign_user = ints("SELECT id FROM users WHERE org_id = 2 ORDER BY id LIMIT 1")[0]
    for body, field in (({"operation": "update_stage", "dealIds": ids, "updates": {"stage_id": foreign_stage}},
                         "updates.stage_id"),
                        ({"operation": "update_stage", "dealIds": ids, "updates": {"stage_id": 99999999}},
                         "updates.stage_id"),
                        ({"operation": "update_owner", "dealIds": ids, "updates": {"owner_id": foreign_user}},
                         "updates.owner_id")):
        r = bulk(body)
        assert r.status == 422 and [e["field"] for e in errors(r)] == [field], (body, r)
    assert checksum() == before
    # another organization's key cannot touch org 1's deals either
    r = bulk({"operation": "update_status", "dealIds": ids, "updates": {"status": "won"}}, org=2)
    assert r.status == 422 and errors(r)[0]["message"] == "not found: " + ", ".join(map(str, ids))
    assert checksum() == before


def test_validation():
    ids = deals(n=2)
    before = checksum()
    too_many = list(range(1, 1002))
    cases = [
        {"operation": "update_status", "dealIds": too_many, "updates": {"status": "won"}},
        {"operation": "update_status", "dealIds": [], "updates": {"status": "won"}},
        {"operation": "update_status", "dealIds": ids + ids[:1], "updates": {"status": "won"}},
        {"operation": "update_status", "dealIds": ids + ["7"], "updates": {"status": "won"}},
        {"operation": "update_status", "dealIds": ids + [1.5], "updates": {"status": "won"}},
        {"operation": "update_status", "dealIds": ids + [0], "updates": {"status": "won"}},
        {"operation": "update_status", "dealIds": ids + [-4], "updates": {"status": "won"}},
        {"operation": "update_status", "dealIds": 5, "updates": {"status": "won"}},
        {"operation": "update_status", "dealIds": ids, "updates": {"status": "closed"}},
        {"operation": "update_status", "dealIds": ids, "updates": {"status": "won", "stage_id": 1}},
        {"operation": "update_status", "dealIds": ids},
        {"operation": "update_stage", "dealIds": ids, "updates": {"stage_id": "1"}},
        {"operation": "update_stage", "dealIds": ids, "updates": {}},
        {"operation": "update_owner", "dealIds": ids, "updates": [1]},
        {"operation": "delete", "dealIds": ids, "updates": {"status": "won"}},
        {"operation": "archive", "dealIds": ids},
        {"dealIds": ids},
        {"operation": "delete"},
        {"operation": "delete", "dealIds": ids, "extra": True},
        [1, 2],
    ]
    for body in cases:
        r = bulk(body)
        assert r.status == 422, (body, r)
        assert errors(r), r
    r = bulk({"operation": "update_status", "dealIds": ids + ids, "updates": {"status": "won"}})
    assert errors(r) == [{"field": "dealIds", "message": "duplicate ids: " + ", ".join(map(str, sorted(ids)))}], r
    assert bulk('{"operation": "delete", "dealIds": [1,]}').status == 400
    assert bulk('{"operation": "delete", "operation": "delete", "dealIds": [1]}').status == 400
    assert bulk("", ctype="application/json").status == 400
    assert bulk({"operation": "delete", "dealIds": ids}, ctype="text/plain").status == 415
    assert bulk({"operation": "delete", "dealIds": ids}, ctype="application/jsonx").status == 415
    assert checksum() == before


def test_thousand_ids_in_one_transaction():
    ids = deals(n=1000)
    r = bulk({"operation": "update_status", "dealIds": ids, "updates": {"status": "open"}})
    assert r.status == 200 and r.json()["data"]["updated"] == len(ids), r
    assert psql("SELECT count(*) FROM deals WHERE id IN (%s) AND status = 'open'" % id_list(ids)) == str(len(ids))


# ---- caches ----

def fresh_within(s, path, check, timeout=1.0):
    """The view answers check(data) on s within timeout (pub/sub reaches other instances shortly)."""
    end = time.time() + timeout
    while True:
        r = get(s, path)
        assert r.status == 200, r
        if check(r.json()["data"]):
            return r
        if time.time() > end:
            raise AssertionError("stale view of %s: %r" % (path, r.body[:300]))
        time.sleep(0.02)


def test_cached_views_fresh_after_bulk_on_both_instances():
    deal = deals(n=1, where="status = 'open'")[0]
    company = int(psql("SELECT company_id FROM deals WHERE id = %d" % deal))
    won = stage(1, "won")
    paths = ["/api/deals/%d" % deal, "/api/dashboard", "/api/companies/%d/analytics" % company,
             "/api/companies/%d/deals-summary" % company, "/api/deals/pipeline-stats"]
    for s in (a, b):
        for p in paths:
            first = get(s, p)
            second = get(s, p)
            assert second.header("x-cache") == "HIT", (p, s.port, first.headers, second.headers)
    won_before = get(a, paths[2]).json()["data"]["won_deals"]
    r = bulk({"operation": "update_stage", "dealIds": [deal], "updates": {"stage_id": won}}, s=a)
    assert r.status == 200, r
    open_value = float(psql("SELECT coalesce(sum(value), 0) FROM deals WHERE org_id = 1 AND status = 'open'"))
    open_count = int(psql("SELECT count(*) FROM deals WHERE org_id = 1 AND status = 'open'"))
    checks = [
        (paths[0], lambda d: d["stage_id"] == won and d["status"] == "won"),
        (paths[1], lambda d: d["overview"]["deals"]["pipeline_value"] == open_value
         and d["overview"]["deals"]["open_deals"] == open_count),
        (paths[2], lambda d: d["won_deals"] == won_before + 1),
        (paths[3], lambda d: d["by_status"]["won"]["count"] == won_before + 1),
    ]
    for s, timeout in ((a, 0.0), (b, 1.0)):
        for p, check in checks:
            fresh_within(s, p, check, timeout)
