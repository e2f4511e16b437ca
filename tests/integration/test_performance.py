"""GET /api/performance/stats against the real server and stack: admin only, never cached, and
true: every counter moves by what the test itself sent (requests by status class, L1 hits of a
cached GET, database queries of an uncached one), percentiles are ordered, and the body has the
shape OpenAPI describes."""
import os
import time

from lib import Conn, Server, Skip, http_get, seed_keys

DB = os.environ.get("DATABASE_URL")
REDIS = os.environ.get("REDIS_URL")
srv = None
admin = member = None


def setup_module():
    global srv, admin, member
    if not DB:
        raise Skip("DATABASE_URL not set (run through tests/run, which starts dev/stack)")
    keys = seed_keys("performance")
    org = next(k["org_id"] for k in keys if k["tier"] == "unlimited")
    admin = next(k["key"] for k in keys if k["org_id"] == org and k["role"] == "admin")
    member = next((k["key"] for k in keys if k["org_id"] == org and k["role"] == "member"), None)
    env = {"DATABASE_URL": DB, "PAGINATION_KEY": "test-key"}
    if REDIS:
        env["REDIS_URL"] = REDIS
    srv = Server(env=env)
    end = time.time() + 15
    while time.time() < end and http_get(srv, "/api/health/ready").status != 200:
        time.sleep(0.1)


def teardown_module():
    if srv:
        srv.stop()


def get(path, key):
    with Conn(srv) as c:
        return c.request("GET", path, {"X-API-Key": key} if key else None)


def stats():
    r = get("/api/performance/stats", admin)
    assert r.status == 200, r
    assert r.header("content-type").startswith("application/json")
    return r.json()["data"]


def test_admin_only_and_never_cached():
    assert get("/api/performance/stats", None).status == 401
    if member:
        r = get("/api/performance/stats", member)
        assert r.status == 403 and r.json()["type"] == "/problems/forbidden"
    r1 = get("/api/performance/stats", admin)
    r2 = get("/api/performance/stats", admin)
    assert r1.status == r2.status == 200
    assert r1.header("x-cache") is None and r2.header("x-cache") is None
    assert r1.json()["data"]["requests"]["total"] < r2.json()["data"]["requests"]["total"]
    # it takes no parameter: any is refused, as everywhere in the API
    for q in ("x=1", "limit=5", "%ff=1", "ownerId=1"):
        r = get("/api/performance/stats?" + q, admin)
        assert r.status == 400 and r.json()["type"] in ("/problems/invalid-parameter", "/problems/bad-request"), (q, r)


def test_request_counters_move_by_what_was_sent():
    before = stats()
    n_ok, n_404 = 25, 7
    for _ in range(n_ok):
        assert get("/api/health/live", None).status == 200
    for i in range(n_404):
        assert get("/api/companies/%d" % (900000000 + i), admin).status == 404
    after = stats()
    rb, ra = before["requests"], after["requests"]
    # the stats call itself (200) is counted too: one between the two reads
    assert ra["total"] - rb["total"] == n_ok + n_404 + 1, (rb, ra)
    assert ra["by_status"]["4xx"] - rb["by_status"]["4xx"] == n_404
    assert ra["by_status"]["2xx"] - rb["by_status"]["2xx"] == n_ok + 1
    lat = ra["latency_ms"]
    assert 0 <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"], lat
    assert after["uptime_s"] >= before["uptime_s"] >= 0
    assert after["open_connections"] >= 1
    assert after["memory"]["rss_bytes"] > 1 << 20
    assert after["memory"]["max_rss_bytes"] >= after["memory"]["rss_bytes"] // 2


def test_cache_and_database_counters_move_by_what_was_sent():
    r = get("/api/companies?limit=3", admin)
    ids = [c["id"] for c in r.json()["data"]]
    path = "/api/companies/%d" % ids[0]
    get(path + "?refresh=true", admin)  # filled now
    before = stats()
    for _ in range(5):
        r = get(path, admin)
        assert r.header("x-cache") == "HIT"
    mid = stats()
    hits = mid["caches"]["l1"]["frequent"]["hits"] - before["caches"]["l1"]["frequent"]["hits"]
    assert hits == 5, hits
    assert mid["caches"]["l1"]["frequent"]["entries"] >= 1
    assert 0 <= mid["caches"]["l1"]["frequent"]["hit_ratio"] <= 1
    # refresh bypasses the cache: each asks PostgreSQL once
    for _ in range(4):
        assert get(path + "?refresh=true", admin).status == 200
    after = stats()
    assert after["database"]["queries"] - mid["database"]["queries"] >= 4
    pool = after["database"]["pool"]
    assert pool["size"] >= 1 and pool["connected"] >= 1
    assert pool["idle"] + pool["busy"] == pool["connected"]
    lat = after["database"]["latency_ms"]
    assert 0 < lat["max"] and lat["p50"] <= lat["p99"] <= lat["max"], lat
    assert after["caches"]["bypasses"] - mid["caches"]["bypasses"] == 4


# ---- analysis ----

def psql(sql):
    import subprocess
    out = subprocess.run(["psql", DB, "-AtqX", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def analysis():
    r = get("/api/performance/analysis", admin)
    assert r.status == 200, r
    return r.json()["data"]


def test_analysis_admin_only_and_takes_no_parameter():
    assert get("/api/performance/analysis", None).status == 401
    if member:
        assert get("/api/performance/analysis", member).status == 403
    for q in ("x=1", "limit=5", "%ff=1"):
        assert get("/api/performance/analysis?" + q, admin).status == 400, q


def test_analysis_counts_every_statement_and_grades_health():
    for _ in range(3):
        assert get("/api/companies?limit=5&refresh=true", admin).status == 200
        assert get("/api/deals?limit=5&includeRelationships=true&refresh=true", admin).status == 200
    d = analysis()
    sts = d["statements"]
    assert sts, d
    assert len(sts) <= 50
    totals = [s["mean_ms"] * s["calls"] for s in sts]
    assert all(a >= b * 0.999 for a, b in zip(totals, totals[1:])), "not ordered by total time"
    for s in sts:
        assert s["calls"] >= 1 and 0 <= s["mean_ms"] <= s["max_ms"] + 0.001, s
        assert s["slow"] <= s["calls"] and s["rows"] >= 0 and s["p95_ms"] >= 0
        assert s["sql"] and len(s["sql"]) <= 300
    assert any(s["sql"].startswith("SELECT t.id, t.owner_id, t.name") and s["calls"] >= 3 for s in sts), \
        [s["sql"][:60] for s in sts]
    h = d["query_health"]
    assert h["calls"] >= sum(s["calls"] for s in sts)
    share = h["slow_calls"] / h["calls"] if h["calls"] else 0
    assert abs(h["slow_share"] - share) < 1e-3
    want = "healthy" if share < 0.05 else "degraded" if share <= 0.10 else "unhealthy"
    assert h["status"] == want, h
    # the slowest statements were explained (their generic plans, never run)
    assert d["explained"] and all(isinstance(i, int) for i in d["explained"])
    assert set(d["explained"]) <= {s["id"] for s in sts} | set(d["explained"])


def test_analysis_recommends_on_a_sequential_scan_of_a_large_table():
    org = psql("SELECT org_id FROM api_keys k WHERE k.prefix = '%s'" % admin[5:13])
    psql("INSERT INTO deals (org_id, company_id, stage_id, name, value) "
         "SELECT %s, (SELECT min(id) FROM companies WHERE org_id = %s), "
         "(SELECT min(id) FROM stages WHERE org_id = %s), 'analysis bulk ' || g, 100 "
         "FROM generate_series(1, 15000) g" % (org, org, org))
    try:
        psql("ANALYZE deals")
        # the dashboard counts every deal of the organization: its plan reads the whole table
        for _ in range(3):
            assert get("/api/dashboard?refresh=true", admin).status == 200
        d = analysis()
        recs = d["recommendations"]
        assert any(r["table"] == "deals" and r["table_rows"] >= 10000 for r in recs), (recs, d["explained"])
        for r in recs:
            assert r["statement"] in d["explained"]
            assert r["advice"].startswith("sequential scan of " + r["table"])
    finally:
        psql("DELETE FROM deals WHERE name LIKE 'analysis bulk %'")
        psql("ANALYZE deals")


# ---- detailed health ----

def test_detailed_health_needs_an_admin_key_and_reports_the_dependencies():
    plain = get("/api/health", None)
    assert plain.status == 200 and plain.json() == {"status": "healthy"}
    assert get("/api/health?detailed=false", None).json() == {"status": "healthy"}
    assert get("/api/health?x=1&detailed=false", None).status == 200  # other parameters are ignored
    r = get("/api/health?detailed=true", None)
    assert r.status == 401 and r.header("www-authenticate") and r.json()["type"] == "/problems/unauthorized"
    assert get("/api/health?detailed=true", "crmd_AAAAAAAA_" + "x" * 32).status == 401  # unknown key
    if member:
        r = get("/api/health?detailed=true", member)
        assert r.status == 403 and r.json()["type"] == "/problems/forbidden"
    for bad in ("yes", "1", "", "TRUE", "true&detailed=true"):
        r = get("/api/health?detailed=" + bad, admin)
        assert r.status == 400 and r.json()["type"] == "/problems/invalid-parameter", bad
    r = get("/api/health?detailed=true", admin)
    assert r.status == 200 and r.header("cache-control") == "no-store"
    d = r.json()
    assert d["status"] == "healthy" and d["uptime_s"] >= 0
    db = d["database"]
    assert db["configured"] and db["primary"]["up"] and db["replicas"] == []
    assert 0 <= db["primary"]["probe_age_ms"] < 5000 and db["primary"]["latency_ms"] > 0
    if REDIS:
        assert d["redis"]["configured"] and d["redis"]["up"] and d["redis"]["connected_threads"] >= 1
    assert d["pools"]["size"] >= 1 and d["pools"]["connected"] >= 1
    assert d["cache"]["enabled"] and d["cache"]["entries"] >= 0
    assert d["memory"]["rss_bytes"] > 1 << 20
