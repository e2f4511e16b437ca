"""The PostgreSQL layer through the real server: API-key auth against the keys table, the
background health probe, fast 503s while PostgreSQL is down and recovery without a restart,
revocation within 5 s, and the start-up schema check."""
import json
import os
import subprocess
import time

from lib import CRMD, ROOT, Conn, Server, Skip, http_get, psql, stack, seed_keys

DB = os.environ.get("DATABASE_URL")
srv = None
keys = None


def setup_module():
    global srv, keys
    if not DB:
        raise Skip("DATABASE_URL not set (run through tests/run, which starts dev/stack)")
    keys = seed_keys("db")
    srv = Server(env={"DATABASE_URL": DB})
    wait_healthy(srv)


def teardown_module():
    if srv:
        srv.stop()


def wait_healthy(s, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if http_get(s, "/api/health/ready").status == 200:
            return
        time.sleep(0.1)
    raise AssertionError("server never became ready")


def key(org, role="admin"):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == role)


def get(path, k, header="bearer"):
    h = {"Authorization": "Bearer " + k} if header == "bearer" else {"X-API-Key": k}
    return http_get(srv, path, h)


def test_me_matches_database():
    for k in keys:
        r = get("/api/me", k["key"])
        assert r.status == 200, r
        d = r.json()["data"]
        prefix = k["key"][5:13]
        row = psql("SELECT u.id, u.name, u.role, o.id, o.name, o.tier FROM api_keys a JOIN users u ON "
                   "u.id = a.user_id JOIN organizations o ON o.id = a.org_id WHERE a.prefix = '%s'" % prefix)
        uid, uname, role, oid, oname, tier = row.split("|")
        assert d["user"]["id"] == int(uid) and d["user"]["name"] == uname and d["user"]["role"] == role
        assert d["organization"] == {"id": int(oid), "name": oname, "tier": tier}, d
        assert d["organization"]["tier"] == k["tier"] and d["user"]["role"] == k["role"]
        assert d["user"]["created_at"].endswith("Z") and "T" in d["user"]["created_at"]


def test_x_api_key_header_works():
    assert get("/api/me", keys[0]["key"], header="x-api-key").status == 200


def test_missing_malformed_and_unknown_keys_401():
    cases = [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer nonsense"},
        {"X-API-Key": "crmd_AAAAAAAA_" + "x" * 32},
        {"Authorization": "Bearer " + keys[0]["key"][:-1] + ("A" if keys[0]["key"][-1] != "A" else "B")},
    ]
    for h in cases:
        r = http_get(srv, "/api/me", h)
        assert r.status == 401, (h, r)
        assert r.header("www-authenticate", ).startswith("Bearer"), r
        assert r.json()["type"] == "/problems/unauthorized"


def test_health_endpoints_need_no_key():
    for p in ("/api/health", "/api/health/live", "/api/health/ready"):
        assert http_get(srv, p).status == 200, p


def test_revoked_key_stops_within_5s():
    out = subprocess.run([CRMD, "keys", "create", "--org", "1", "--role", "member"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    k = out.stdout.strip()
    assert get("/api/me", k).status == 200
    prefix = k[5:13]
    assert psql("SELECT count(*) FROM api_keys WHERE prefix = '%s' AND key_hash = sha256('%s'::bytea)" % (prefix, k)) == "1"
    t0 = time.time()
    out = subprocess.run([CRMD, "keys", "revoke", prefix], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    while get("/api/me?refresh=true", k).status == 200:
        assert time.time() - t0 < 6.5, "revoked key still accepted after 6.5 s"
        time.sleep(0.2)
    assert get("/api/me", k).status == 401


def test_postgres_down_fast_503_then_recovers():
    k = keys[0]["key"]
    assert get("/api/me", k).status == 200
    stack("pg-stop")
    try:
        time.sleep(0.5)
        statuses = []
        for _ in range(20):
            t0 = time.time()
            r = get("/api/me?refresh=true", k)  # past the response cache, to the database
            took = time.time() - t0
            statuses.append(r.status)
            if r.status == 503:
                assert took < 1.0, "503 took %.2fs" % took
                assert r.header("retry-after"), r
                assert r.header("content-type") == "application/problem+json"
                assert "SELECT" not in r.body.decode() and "postgres" not in r.body.decode().lower()
        assert statuses.count(503) >= 18, statuses  # the key map may serve one or two from memory
        end = time.time() + 5
        while http_get(srv, "/api/health").status != 503:
            assert time.time() < end, "health still green with PostgreSQL down"
            time.sleep(0.2)
        h = http_get(srv, "/api/health")
        assert h.json() == {"status": "unhealthy"}
        assert http_get(srv, "/api/health/ready").status == 503
        assert http_get(srv, "/api/health/live").status == 200
    finally:
        stack("pg-start")
    end = time.time() + 15
    while get("/api/me?refresh=true", k).status != 200:
        assert time.time() < end, "server did not recover after PostgreSQL came back"
        time.sleep(0.2)
    wait_healthy(srv)


def test_server_refuses_newer_schema():
    scratch = DB.rsplit("/", 1)[0] + "/crmd_schema_test"
    psql("DROP DATABASE IF EXISTS crmd_schema_test")
    psql("CREATE DATABASE crmd_schema_test")
    try:
        subprocess.run([CRMD, "migrate"], check=True, capture_output=True, timeout=120,
                       env=dict(os.environ, DATABASE_URL=scratch))
        psql("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')", db=scratch)
        out = subprocess.run([CRMD, "serve", "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=20,
                             env=dict(os.environ, DATABASE_URL=scratch))
        assert out.returncode == 1 and "newer" in out.stderr, out
        psql("DELETE FROM schema_migrations WHERE version >= 2", db=scratch)
        out = subprocess.run([CRMD, "serve", "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=20,
                             env=dict(os.environ, DATABASE_URL=scratch))
        assert out.returncode == 1 and "crmd migrate" in out.stderr, out
    finally:
        psql("DROP DATABASE IF EXISTS crmd_schema_test")


def test_concurrent_requests_share_pipelines():
    k = keys[0]["key"]
    conns = [Conn(srv) for _ in range(50)]
    try:
        for i, c in enumerate(conns):
            c.send("GET /api/me HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nX-Request-Id: m%d\r\n\r\n" % (k, i))
        for i, c in enumerate(conns):
            r = c.read_response()
            assert r.status == 200 and r.header("x-request-id") == "m%d" % i
            assert r.json()["data"]["organization"]["id"] == keys[0]["org_id"]
    finally:
        for c in conns:
            c.close()


def test_pipelined_authenticated_requests_in_order():
    k = keys[0]["key"]
    with Conn(srv) as c:
        c.send(b"".join(b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nX-Request-Id: q%d\r\n\r\n"
                        % (k.encode(), i) for i in range(16)) + b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        for i in range(16):
            r = c.read_response()
            assert r.status == 200 and r.header("x-request-id") == "q%d" % i, r
        assert c.read_response().json() == {"status": "healthy"}
