"""POST /api/batch: operations run as their own requests with the caller's key, results in
input order with per-operation statuses, validation of the batch itself, nested batches
refused, writes ordered after the operations before them."""
import json
import os
import subprocess

from lib import CRMD, ROOT, Conn, Server, Skip, psql, seed_keys

DB = os.environ.get("DATABASE_URL")
srv = None
keys = None


def setup_module():
    global srv, keys
    if not DB:
        raise Skip("DATABASE_URL not set")
    keys = seed_keys("batch")
    srv = Server(env={"DATABASE_URL": DB, "REDIS_URL": os.environ.get("REDIS_URL", "")})


def teardown_module():
    if srv:
        srv.stop()


def key(org=1, role="admin"):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == role)


def batch(ops, k=None, raw=None):
    with Conn(srv) as c:
        return c.request("POST", "/api/batch", {"X-API-Key": k or key(), "Content-Type": "application/json"},
                         raw if raw is not None else json.dumps(ops))


def get(path, k=None):
    with Conn(srv) as c:
        return c.request("GET", path, {"X-API-Key": k or key()})


def test_results_in_input_order_match_single_requests():
    ids = [int(x) for x in psql("SELECT id FROM companies WHERE org_id = 1 ORDER BY id LIMIT 3").split()]
    ops = [{"id": "c%d" % i, "method": "GET", "path": "/api/companies/%d" % cid} for i, cid in enumerate(ids)]
    ops.append({"id": 7, "method": "GET", "path": "/api/companies", "query": {"limit": 2, "sort": "name"}})
    ops.append({"id": "q", "method": "GET", "path": "/api/companies", "query": "limit=2&sort=-name"})
    r = batch(ops)
    assert r.status == 200, r
    out = r.json()
    assert [o["id"] for o in out] == ["c0", "c1", "c2", 7, "q"]
    for i, cid in enumerate(ids):
        assert out[i]["status"] == 200
        assert out[i]["body"] == json.loads(get("/api/companies/%d" % cid).body)
    assert out[3]["body"] == json.loads(get("/api/companies?limit=2&sort=name").body)
    assert out[4]["body"] == json.loads(get("/api/companies?limit=2&sort=-name").body)


def test_per_operation_statuses():
    foreign = psql("SELECT id FROM companies WHERE org_id = 2 LIMIT 1")
    r = batch([
        {"id": "ok", "method": "GET", "path": "/api/me"},
        {"id": "missing", "method": "GET", "path": "/api/companies/999999999"},
        {"id": "foreign", "method": "GET", "path": "/api/companies/%s" % foreign},
        {"id": "nopath", "method": "GET", "path": "/api/nothing"},
        {"id": "badparam", "method": "GET", "path": "/api/companies", "query": {"limit": 9999}},
        {"id": "method", "method": "DELETE", "path": "/api/me"},
    ])
    assert r.status == 200, r
    st = {o["id"]: o["status"] for o in r.json()}
    assert st == {"ok": 200, "missing": 404, "foreign": 404, "nopath": 404, "badparam": 400, "method": 405}, st
    bad = next(o for o in r.json() if o["id"] == "badparam")
    assert bad["body"]["status"] == 400 and bad["body"]["errors"]


def test_operations_use_the_callers_key():
    r = batch([{"id": 1, "method": "GET", "path": "/api/me"}], k=key(2, "member"))
    me = r.json()[0]["body"]["data"]
    assert me["organization"]["id"] == 2 and me["user"]["role"] == "member"
    admin_only = batch([{"id": 1, "method": "POST", "path": "/api/performance/clear-cache",
                         "body": {"scope": "l1"}}], k=key(2, "member"))
    assert admin_only.json()[0]["status"] == 403


def test_nested_batch_refused():
    r = batch([{"id": "a", "method": "GET", "path": "/api/me"},
               {"id": "b", "method": "POST", "path": "/api/batch", "body": []}])
    assert r.status == 200
    assert [o["status"] for o in r.json()] == [200, 400]


def test_writes_run_after_earlier_operations():
    r = batch([
        {"id": "g1", "method": "GET", "path": "/api/me"},
        {"id": "w", "method": "POST", "path": "/api/performance/clear-cache", "body": {"scope": "l1"}},
        {"id": "g2", "method": "GET", "path": "/api/me"},
    ])
    assert r.status == 200 and [o["status"] for o in r.json()] == [200, 200, 200], r.json()


def test_batch_validation():
    assert batch(None, raw="not json").status == 400
    assert batch(None, raw="[]").status == 422
    assert batch([{"id": i, "method": "GET", "path": "/api/me"} for i in range(26)]).status == 422
    for bad in ([{"method": "GET", "path": "/api/me"}],
                [{"id": 1, "method": "FETCH", "path": "/api/me"}],
                [{"id": 1, "method": "GET", "path": "/elsewhere"}],
                [{"id": 1, "method": "GET", "path": "/api/me", "extra": True}],
                [{"id": 1, "method": "GET", "path": "/api/me", "body": {}}],
                [{"id": 1, "method": "GET", "path": "/api/me"}, {"id": 1, "method": "GET", "path": "/api/me"}],
                [1, 2]):
        r = batch(bad)
        assert r.status == 422, (bad, r)
        assert r.json()["errors"], r.json()
    with Conn(srv) as c:
        r = c.request("POST", "/api/batch", {"X-API-Key": key(), "Content-Type": "text/plain"}, "[]")
    assert r.status == 415
    with Conn(srv) as c:
        r = c.request("POST", "/api/batch", {"Content-Type": "application/json"}, "[]")
    assert r.status == 401


def test_idempotency_key_replays_every_write_of_the_batch():
    name = "Batch Idem %d" % os.getpid()
    ops = [{"id": "create", "method": "POST", "path": "/api/companies", "body": {"name": name}},
           {"id": "list", "method": "GET", "path": "/api/companies", "query": {"limit": 1}}]
    with Conn(srv) as c:
        h = {"X-API-Key": key(), "Content-Type": "application/json", "Idempotency-Key": "batch-%d" % os.getpid()}
        first = c.request("POST", "/api/batch", h, json.dumps(ops))
        again = c.request("POST", "/api/batch", h, json.dumps(ops))
    assert first.status == again.status == 200
    a, b = first.json()[0], again.json()[0]
    assert a["status"] == b["status"] == 201, (a, b)
    assert a["body"] == b["body"]
    assert psql("SELECT count(*) FROM companies WHERE name = '%s'" % name) == "1"


def test_operations_are_spans_of_the_callers_trace():
    import time
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with Conn(srv) as c:
        r = c.request("POST", "/api/batch", {"X-API-Key": key(), "Content-Type": "application/json",
                                             "traceparent": tp, "X-Request-Id": "trace-batch-1"},
                      json.dumps([{"id": 1, "method": "GET", "path": "/api/companies", "query": "limit=1"},
                                  {"id": 2, "method": "GET", "path": "/api/me"}]))
    assert r.status == 200 and r.header("traceparent").startswith("00-0af7651916cd43dd8448eb211c80319c-"), r
    lines = []
    for _ in range(50):
        lines = [line for line in srv.log_lines() if line.get("msg") == "request"
                 and str(line.get("request_id", "")).startswith("trace-batch-1")]
        if len(lines) == 3:
            break
        time.sleep(0.02)
    assert len(lines) == 3, lines
    assert {line["trace_id"] for line in lines} == {"0af7651916cd43dd8448eb211c80319c"}, lines
    assert len({line["span_id"] for line in lines}) == 3, lines  # each operation its own span
