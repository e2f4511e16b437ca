"""The response cache against the real stack: L1 miss then hit, refresh=true, gzip on hits,
304 on hits, coalesced misses (one query for 64 concurrent requests), L2 shared through Redis
by two instances, tag invalidation reaching the other instance within 100 ms, no stale read
after a change plus invalidation, and Redis killed mid-run."""
import gzip
import json
import os
import re
import socket
import subprocess
import threading
import time

from lib import CRMD, ROOT, Conn, Server, Skip, psql, stack, redis_cli, wait_ready, seed_keys

DB = os.environ.get("DATABASE_URL")
REDIS = os.environ.get("REDIS_URL")
a = b = None
keys = None


def env():
    return {"DATABASE_URL": DB, "REDIS_URL": REDIS, "PAGINATION_KEY": "cache-test"}


def setup_module():
    global a, b, keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    keys = seed_keys("cache")
    a = Server(env=env())
    b = Server(env=env())
    wait_ready(a)
    wait_ready(b)


def teardown_module():
    for s in (a, b):
        if s:
            s.stop()


def admin_key(org=1):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == "admin")


def get(s, path, key=None, **headers):
    h = {"X-API-Key": key or admin_key()}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    with Conn(s) as c:
        return c.request("GET", path, h)


def metric(s, name):
    with Conn(socket.create_connection(("127.0.0.1", s.admin_port), timeout=5)) as c:
        text = c.request("GET", "/metrics").body.decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else 0.0


def company_ids(org=1, n=5):
    return [int(x) for x in psql("SELECT id FROM companies WHERE org_id = %d ORDER BY id LIMIT %d" % (org, n)).split()]


def test_miss_then_hit_identical():
    path = "/api/companies/%d" % company_ids()[0]
    r1 = get(a, path)
    r2 = get(a, path)
    assert r1.status == r2.status == 200
    assert r1.header("x-cache") in ("MISS", "HIT") and r2.header("x-cache") == "HIT", (r1.headers, r2.headers)
    assert r1.body == r2.body and r1.header("etag") == r2.header("etag")
    assert 'cache;desc="l1-hit"' in r2.header("server-timing")


def test_refresh_bypasses_and_refills():
    path = "/api/companies?limit=7"
    get(a, path)
    r = get(a, path + "&refresh=true")
    assert r.status == 200 and r.header("x-cache") == "BYPASS"
    assert get(a, path).header("x-cache") == "HIT"


def test_gzip_and_304_on_hits():
    path = "/api/companies?limit=50"
    plain = get(a, path)
    hit = get(a, path, Accept_Encoding="gzip")
    assert hit.header("x-cache") == "HIT" and hit.header("content-encoding") == "gzip"
    assert gzip.decompress(hit.body) == plain.body
    nm = get(a, path, If_None_Match=plain.header("etag"))
    assert nm.status == 304 and nm.body == b"" and nm.header("x-cache") == "HIT"


def test_keys_include_org_and_params():
    path = "/api/companies?limit=3"
    r1 = get(a, path, key=admin_key(1))
    r2 = get(a, path, key=admin_key(2))
    assert r1.status == r2.status == 200 and r1.body != r2.body
    assert get(a, "/api/companies?limit=4").body != r1.body


def test_concurrent_misses_coalesce_into_one_query():
    get(a, "/api/me")  # the key is known: no auth query below
    before = metric(a, "crmd_db_queries_total")
    path = "/api/companies?limit=22&sort=-name"  # used by no other test: a miss in L1 and L2
    conns = [Conn(a) for _ in range(64)]
    req = ("GET %s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n\r\n" % (path, admin_key())).encode()
    for c in conns:
        c.send(req)
    bodies = set()
    statuses = []
    for c in conns:
        r = c.read_response()
        statuses.append(r.status)
        bodies.add(r.body)
        c.close()
    assert statuses == [200] * 64 and len(bodies) == 1
    assert metric(a, "crmd_db_queries_total") - before == 1, "expected one query for 64 concurrent misses"


def test_l2_shared_between_instances():
    path = "/api/companies/%d" % company_ids()[1]
    r1 = get(a, path)
    assert r1.status == 200
    time.sleep(0.2)  # the L2 store is asynchronous
    r2 = get(b, path)
    assert r2.header("x-cache") == "HIT" and 'desc="l2-hit"' in r2.header("server-timing"), r2.headers
    assert r2.body == r1.body and r2.header("etag") == r1.header("etag")


def clear_tag(s, tag):
    with Conn(s) as c:
        return c.request("POST", "/api/performance/clear-cache", {"X-API-Key": admin_key(), "Content-Type":
                         "application/json"}, json.dumps({"scope": "tag", "tag": tag}))


def test_invalidation_reaches_other_instance_quickly():
    cid = company_ids()[2]
    path = "/api/companies/%d" % cid
    get(b, path)
    assert get(b, path).header("x-cache") == "HIT"
    r = clear_tag(a, "company:%d" % cid)
    assert r.status == 200 and r.json()["data"]["cleared"] >= 1, r
    time.sleep(0.1)
    assert get(b, path).header("x-cache") == "MISS"


def test_changed_row_never_served_stale_after_invalidation():
    cid = company_ids()[3]
    path = "/api/companies/%d" % cid
    for s in (a, b):
        get(s, path)
        assert get(s, path).header("x-cache") == "HIT"
    name = "Renamed %d" % time.time_ns()
    psql("UPDATE companies SET name = '%s' WHERE id = %d" % (name, cid))
    assert clear_tag(a, "company:%d" % cid).status == 200
    time.sleep(0.1)
    for _ in range(5):
        for s in (a, b):
            assert get(s, path).json()["data"]["name"] == name


def test_clear_cache_needs_admin_and_valid_scope():
    member = next(k["key"] for k in keys if k["org_id"] == 1 and k["role"] == "member")
    with Conn(a) as c:
        r = c.request("POST", "/api/performance/clear-cache", {"X-API-Key": member, "Content-Type": "application/json"},
                      '{"scope":"all"}')
        assert r.status == 403
    for body in ['{"scope":"nope"}', '{"scope":"tag"}', '{"scope":"all","extra":1}', "not json", '{"scope":"all"}x']:
        with Conn(a) as c:
            r = c.request("POST", "/api/performance/clear-cache", {"X-API-Key": admin_key(),
                                                                   "Content-Type": "application/json"}, body)
            assert r.status in (400, 422), (body, r)


def test_clear_all_empties_both_tiers():
    """An organization's admin clears that organization's entries on every instance and in
    Redis (issue 15: never another organization's); the operator on the admin listener clears
    every organization's entries."""
    path = "/api/companies?limit=9"
    other = next(k["key"] for k in keys if k["org_id"] != 1)
    get(a, path)
    get(a, path)
    get(b, path)
    with Conn(a) as c:
        hdr = {"X-API-Key": other}
        c.request("GET", path, hdr)
        assert c.request("GET", path, hdr).header("x-cache") == "HIT"
    with Conn(a) as c:
        r = c.request("POST", "/api/performance/clear-cache", {"X-API-Key": admin_key(),
                                                               "Content-Type": "application/json"}, '{"scope":"all"}')
    assert r.status == 200 and r.json()["data"]["cleared"] >= 1
    time.sleep(0.1)
    assert get(b, path).header("x-cache") == "MISS"
    assert get(a, path).header("x-cache") == "HIT"  # refilled by b, through L2
    with Conn(a) as c:
        assert c.request("GET", path, {"X-API-Key": other}).header("x-cache") == "HIT"  # another org: untouched
    # the operator's clear, on the admin listener: every organization, both tiers
    with socket.create_connection(("127.0.0.1", a.admin_port), timeout=5) as s:
        r = Conn(s).request("POST", "/api/performance/clear-cache", {"Content-Type": "application/json"},
                            '{"scope":"all"}')
    assert r.status == 200 and r.json()["data"]["cleared"] >= 1, r
    assert redis_cli("EVAL", "return #redis.call('KEYS', 'crmd:c:*')", "0") == "0"
    time.sleep(0.1)
    with Conn(b) as c:
        assert c.request("GET", path, {"X-API-Key": other}).header("x-cache") == "MISS"


def test_redis_killed_mid_run_still_correct_then_l2_returns():
    cid = company_ids()[4]
    path = "/api/companies/%d" % cid
    truth = get(a, path + "?refresh=true").body
    stack("redis-stop")
    try:
        time.sleep(0.5)
        for s in (a, b):
            for p in (path, "/api/companies?limit=11", "/api/companies?limit=12&refresh=true"):
                r = get(s, p)
                assert r.status == 200, (p, r)
        assert get(b, path).body == truth
        with Conn(a) as c:
            h = c.request("GET", "/api/health")
        assert h.status == 200
    finally:
        stack("redis-start")
    end = time.time() + 15
    while True:  # L2 works again once the clients have reconnected
        r1 = get(a, "/api/companies/%d" % company_ids()[0] + "?refresh=true")
        time.sleep(0.3)
        c = Server(env=env())
        try:
            wait_ready(c)
            r2 = get(c, "/api/companies/%d" % company_ids()[0])
        finally:
            c.stop()
        if r2.header("x-cache") == "HIT" and "l2-hit" in r2.header("server-timing"):
            assert r2.body == r1.body
            break
        assert time.time() < end, "L2 never came back after Redis restarted"
        time.sleep(0.5)


def test_metrics_report_cache_and_redis():
    path = "/api/companies?limit=14"
    get(a, path)
    get(a, path)
    assert metric(a, 'crmd_cache_requests_total{result="l1_hit"}') >= 1
    assert metric(a, "crmd_cache_fills_total") >= 1
    assert metric(a, 'crmd_cache_hits_total{tier="l1",class="frequent"}') >= 1
    # the previous test restarted Redis: this server reconnects on its own backoff schedule
    end = time.time() + 10
    while metric(a, "crmd_redis_connected") != 1 and time.time() < end:
        time.sleep(0.2)
    assert metric(a, "crmd_redis_connected") == 1
    assert metric(a, "crmd_redis_commands_total") >= 1


def test_coalesced_waiters_with_large_requests_all_answered():
    """Waiters are kept in their requests' arenas, which answering them frees: with keys long
    enough that the arenas spill to the heap (a long search), 64 concurrent misses of each of
    several keys are all answered, and the sanitizer build sees no use after free."""
    for n in range(4):
        q = ("zz%d" % n) + "q" * 90  # no row matches: an empty page, but a long key and tags
        path = "/api/companies?limit=23&q=%s&sort=name&industry=%s&size=11-50" % (q, "i" * 90)
        conns = [Conn(a) for _ in range(64)]
        req = ("GET %s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n\r\n" % (path, admin_key())).encode()
        for c in conns:
            c.send(req)
        statuses = []
        for c in conns:
            statuses.append(c.read_response().status)
            c.close()
        assert statuses == [200] * 64, statuses
