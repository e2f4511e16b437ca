"""Three crmd instances behind HAProxy 2.6 (`dev/cluster`), as production runs them: requests
spread over every instance, TLS at the balancer with HSTS from crmd, rolling restarts under
60 s of mixed load (reads, dashboards, writes) without one failed request, and writes visible
through every instance afterwards."""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

from lib import BUILD, CRMD, DB, REDIS, ROOT, SANITIZED, Conn, Skip, psql, seed_keys

CLUSTER = os.path.join(ROOT, "dev", "cluster")
STATE = os.path.join(ROOT, "var", "cluster-test")
# ports of its own, so that a developer's `dev/cluster up` can keep running
ENV = {"CRMD_CLUSTER_DIR": STATE, "CRMD_CLUSTER_HTTP_PORT": "18280", "CRMD_CLUSTER_TLS_PORT": "18643",
       "CRMD_CLUSTER_PORT": "18300",
       # the instances' logs where tests/run looks for sanitizer reports
       "CRMD_CLUSTER_LOGDIR": os.path.join(BUILD, "test-logs")}
HTTP_PORT, TLS_PORT, BASE = 18280, 18643, 18300
N = 3
keys = None


def cluster(*args, timeout=300):
    e = dict(os.environ, CRMD_BIN=CRMD, RATE_LIMIT_WHITELIST="127.0.0.0/8", THREADS="1",
             PAGINATION_KEY="cluster-test", **ENV)
    e.pop("REDIS_SENTINELS", None)
    e.pop("REDIS_SENTINEL_MASTER", None)
    out = subprocess.run([CLUSTER] + list(args), capture_output=True, text=True, timeout=timeout, env=e)
    assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-2000:])
    return out.stdout


def setup_module():
    global keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    for tool in ("haproxy", "openssl", "curl"):
        if not shutil.which(tool):
            raise Skip("%s not installed (./configure --install-deps)" % tool)
    keys = seed_keys("cluster")
    cluster("down")
    cluster("up", str(N))


def teardown_module():
    if keys is not None:
        cluster("down")


def key():
    return next(k["key"] for k in keys if k["org_id"] == 1 and k["role"] == "admin")


def balancer():
    s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Conn(s, timeout=10)


def instance_requests(i):
    """Requests instance i answered on its public routes (from its admin /metrics)."""
    with Conn(socket.create_connection(("127.0.0.1", BASE + 100 + i), timeout=5)) as c:
        body = c.request("GET", "/metrics").body.decode()
    return sum(float(v) for v in re.findall(r'^crmd_http_requests_total\{route="GET /api/companies",[^}]*\} (\S+)$',
                                            body, re.M))


def pids():
    return [int(open(os.path.join(STATE, "crmd-%d.pid" % i)).read()) for i in range(1, N + 1)]


def test_requests_reach_every_instance():
    before = [instance_requests(i) for i in range(1, N + 1)]
    with balancer() as c:
        for _ in range(30):
            r = c.request("GET", "/api/companies?limit=2", headers={"X-API-Key": key()})
            assert r.status == 200, r
    after = [instance_requests(i) for i in range(1, N + 1)]
    assert all(a - b >= 5 for a, b in zip(after, before)), (before, after)


def test_tls_at_the_balancer_with_hsts_from_crmd():
    ctx = ssl.create_default_context(cafile=os.path.join(STATE, "tls.crt"))
    with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            c = Conn(s, timeout=10)
            r = c.request("GET", "/api/companies?limit=1", headers={"X-API-Key": key(), "Host": "localhost"})
            assert r.status == 200, r
            assert r.header("Strict-Transport-Security") == "max-age=31536000; includeSubDomains", r.headers
            assert s.version() in ("TLSv1.2", "TLSv1.3")
    # the certificate is checked: a client that trusts nothing else refuses another name
    ctx2 = ssl.create_default_context(cafile=os.path.join(STATE, "tls.crt"))
    with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=10) as raw:
        try:
            ctx2.wrap_socket(raw, server_hostname="not-localhost.example")
            raise AssertionError("a certificate for another name was accepted")
        except ssl.SSLCertVerificationError:
            pass


class Client(threading.Thread):
    """One user of the dashboard on a keep-alive connection through the balancer: lists,
    details, the dashboard, searches, and a write in about 1 request of 20. Every answer is
    recorded; a broken connection is recorded as a failure, then replaced."""

    def __init__(self, n, ids, stop):
        super().__init__(daemon=True)
        self.n, self.ids, self.stop = n, ids, stop
        self.ok = 0
        self.failures = []
        self.created = []

    def one(self, c, k):
        h = {"X-API-Key": key()}
        cid = self.ids[(k * 7 + self.n) % len(self.ids)]
        kind = k % 20
        if kind == 0:
            body = json.dumps({"type": "note", "subject": "roll %d-%d" % (self.n, k), "company_id": cid,
                               "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            r = c.request("POST", "/api/activities", dict(h, **{"Content-Type": "application/json"}), body)
            if r.status == 201:
                self.created.append(r.json()["data"]["id"])
            return r, (201,)
        if kind == 10:
            body = json.dumps({"industry": "roll %d" % k})
            r = c.request("PATCH", "/api/companies/%d" % cid, dict(h, **{"Content-Type": "application/json"}), body)
            return r, (200,)
        path = ["/api/companies?limit=20", "/api/deals?limit=20&includeRelationships=true",
                "/api/companies/%d" % cid, "/api/dashboard", "/api/contacts?q=a&limit=10",
                "/api/deals/pipeline-stats"][k % 6]
        return c.request("GET", path, h), (200,)

    def run(self):
        c, k = None, 0
        while not self.stop.is_set():
            k += 1
            try:
                if c is None:
                    c = balancer()
                r, want = self.one(c, k)
                if r.status in want:
                    self.ok += 1
                else:
                    self.failures.append((r.status, r.body[:200]))
                if (r.header("connection") or "").lower() == "close":
                    c.close()
                    c = None
            except Exception as e:
                self.failures.append(repr(e))
                c = None
        if c:
            c.close()


def test_rolling_restarts_under_60s_of_mixed_load_lose_nothing():
    ids = [int(x) for x in psql("SELECT id FROM companies WHERE org_id = 1 ORDER BY id LIMIT 50").split()]
    stop = threading.Event()
    clients = [Client(n, ids, stop) for n in range(6)]
    first = pids()
    for t in clients:
        t.start()
    t0 = time.time()
    rolls = 0
    while time.time() - t0 < 60 or rolls == 0:
        cluster("roll")
        rolls += 1
    stop.set()
    for t in clients:
        t.join(30)
    failures = [f for t in clients for f in t.failures]
    ok = sum(t.ok for t in clients)
    assert not failures, (len(failures), sorted(set(map(str, failures)))[:10])
    assert ok > (300 if SANITIZED else 1000), ok
    now = pids()
    assert all(a != b for a, b in zip(first, now)), (first, now)
    # every write answered 201 is in the database, once
    created = [i for t in clients for i in t.created]
    assert created and int(psql("SELECT count(*) FROM activities WHERE id IN (%s)" % ",".join(map(str, created)))) \
        == len(set(created)) == len(created)
    print("  %d requests, %d rolls of %d instances, 0 failed" % (ok, rolls, N))


def test_writes_are_visible_through_every_instance():
    h = {"X-API-Key": key(), "Content-Type": "application/json"}
    with balancer() as c:
        for n in range(5):
            body = {"name": "Cluster Co %d" % n, "domain": "cluster%d-%d.example" % (n, time.time_ns() % 10**9)}
            r = c.request("POST", "/api/companies", h, json.dumps(body))
            assert r.status == 201, r
            cid = r.json()["data"]["id"]
            # round robin: consecutive reads land on every instance
            for _ in range(N * 2):
                g = c.request("GET", "/api/companies/%d" % cid, {"X-API-Key": key()})
                assert g.status == 200 and g.json()["data"]["name"] == body["name"], g
