"""Redis high availability through Sentinel, against dev/stack's real replica and three
sentinels: crmd finds the master through the sentinels (REDIS_URL's address is not used), and
when the master is killed under load (SIGKILL, as a crash) the sentinels promote the replica,
crmd follows them to it, no client sees an error, the invalidation bus resubscribes, caches are
coherent across two instances afterwards, and rate limits are again kept in Redis."""
import json
import os
import re
import subprocess
import threading
import time

from lib import DB, REDIS, ROOT, SANITIZED, Conn, Server, Skip, psql, redis_cli, seed_keys, stack

keys = None
sentinel_env = {}


def setup_module():
    global keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    keys = seed_keys("sentinel")
    stack("sentinel-up")
    out = subprocess.run([os.path.join(ROOT, "dev", "stack"), "env"], capture_output=True, text=True).stdout
    for k, v in re.findall(r"^export (REDIS_SENTINELS|REDIS_SENTINEL_MASTER)=(.*)$", out, re.M):
        sentinel_env[k] = v
    assert "REDIS_SENTINELS" in sentinel_env, out


def teardown_module():
    # the stack's Redis may be dead or a replica of the promoted one: make it the master again
    if cli(16379, "ping") != "PONG":
        stack("redis-start")
    stack("sentinel-down")
    end = time.time() + 10
    while time.time() < end and not cli(16379, "role").startswith("master"):
        time.sleep(0.1)
    redis_cli("FLUSHALL")


def cli(port, *args):
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args), capture_output=True,
                          text=True, timeout=10).stdout.strip()


def master_port():
    out = cli(sentinel_env["REDIS_SENTINELS"].split(",")[0].split(":")[1], "sentinel", "get-master-addr-by-name",
              sentinel_env["REDIS_SENTINEL_MASTER"])
    return int(out.split()[1])


def key(tier, role="member"):
    return next(k for k in keys if k["tier"] == tier and k["role"] == role)


def env(**extra):
    # REDIS_URL names a port nobody listens on: only the sentinels can lead crmd to Redis
    e = {"DATABASE_URL": DB, "REDIS_URL": "redis://127.0.0.1:1/0", "PAGINATION_KEY": "sentinel-test",
         "RATE_LIMIT_MAX_BLOCK": "0"}
    e.update(sentinel_env)
    e.update(extra)
    return e


def metric(server, name):
    with Conn(__import__("socket").create_connection(("127.0.0.1", server.admin_port), timeout=5)) as c:
        body = c.request("GET", "/metrics").body.decode()
    m = re.search(r"^%s (\d+)" % re.escape(name), body, re.M)
    return int(m.group(1)) if m else None


def wait_metric(server, name, want, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if metric(server, name) == want:
            return
        time.sleep(0.1)
    raise AssertionError("%s never became %s (is %s)" % (name, want, metric(server, name)))


def test_master_found_through_the_sentinels():
    k = key("professional")
    with Server(env=env(), threads=2) as s:
        wait_metric(s, "crmd_redis_connected", 2)
        master = master_port()
        before = int(cli(master, "dbsize"))
        with Conn(s) as c:
            r = c.request("GET", "/api/companies/%d" % first_company(c, k["key"]), headers={"X-API-Key": k["key"]})
            assert r.status == 200
        end = time.time() + 5
        while time.time() < end and int(cli(master, "dbsize")) <= before:
            time.sleep(0.05)
        assert int(cli(master, "dbsize")) > before, "nothing was stored in the master the sentinels named"
        found = [line for line in s.log_lines() if line.get("msg") == "redis master found by sentinel"]
        assert found and found[0]["master"] == "127.0.0.1:%d" % master, found


def first_company(c, k):
    r = c.request("GET", "/api/companies?limit=5", headers={"X-API-Key": k})
    assert r.status == 200, r.body[:200]
    return r.json()["data"][0]["id"]


class Load(threading.Thread):
    """Keep-alive GETs of cached companies and PATCHes of one company on a server; every
    response is recorded (status, or the exception a broken connection raised)."""

    def __init__(self, server, api_key, ids, write_id=None):
        super().__init__(daemon=True)
        self.server, self.key, self.ids, self.write_id = server, api_key, ids, write_id
        self.stop = False
        self.results = []

    def run(self):
        c = None
        n = 0
        while not self.stop:
            n += 1
            try:
                if c is None:
                    c = Conn(self.server)
                if self.write_id and n % 10 == 0:
                    r = c.request("PATCH", "/api/companies/%d" % self.write_id,
                                  headers={"X-API-Key": self.key, "Content-Type": "application/json"},
                                  body=json.dumps({"industry": "load %d" % n}))
                else:
                    r = c.request("GET", "/api/companies/%d" % self.ids[n % len(self.ids)],
                                  headers={"X-API-Key": self.key})
                self.results.append(r.status)
                if (r.header("Connection") or "").lower() == "close":
                    c.close()
                    c = None
            except Exception as e:  # a client-visible failure: recorded, then a new connection
                self.results.append(repr(e))
                c = None
            time.sleep(0.002)
        if c:
            c.close()


def test_master_killed_under_load_no_client_error_and_caches_coherent():
    pro = key("professional")
    std = key("standard")
    e = env(RATE_LIMIT_PROFESSIONAL="10000000/60/1000000", RATE_LIMIT_STANDARD="5/60/5")
    with Server(env=e, threads=2, limits=True) as a, Server(env=e, threads=2, limits=True) as b:
        for s in (a, b):
            wait_metric(s, "crmd_redis_connected", 2)
        with Conn(a) as c:
            r = c.request("GET", "/api/companies?limit=20", headers={"X-API-Key": pro["key"]})
            ids = [row["id"] for row in r.json()["data"]]
        old = master_port()
        loads = [Load(a, pro["key"], ids, write_id=ids[0]), Load(b, pro["key"], ids), Load(a, pro["key"], ids[5:]),
                 Load(b, pro["key"], ids[::-1], write_id=ids[1])]
        for t in loads:
            t.start()
        time.sleep(2)
        stack_kill(old)
        # the sentinels notice (down after 1 s), elect and promote the replica
        end = time.time() + 30
        while time.time() < end and master_port() == old:
            time.sleep(0.2)
        new = master_port()
        assert new != old, "no failover"
        for s in (a, b):
            wait_metric(s, "crmd_redis_connected", 2, timeout=20)
        time.sleep(3 if not SANITIZED else 5)  # load on the new master for a while
        for t in loads:
            t.stop = True
        for t in loads:
            t.join(20)
        results = [r for t in loads for r in t.results]
        bad = [r for r in results if r != 200]
        assert len(results) > 200 and not bad, (len(results), bad[:10])

        for s in (a, b):
            msgs = [line.get("msg") for line in s.log_lines()]
            assert "redis master changed" in msgs, msgs[-20:]
        # the invalidation bus of each instance resubscribed on the new master
        assert [line for line in b.log_lines() if line.get("msg", "").startswith("cache invalidation channel restored")]

        # writes made while Redis was away are not hidden by a stale entry on either instance
        # (missed invalidations are replayed to the new master, and each L1 was dropped)
        for s in (a, b):
            with Conn(s) as c:
                for cid in (ids[0], ids[1]):
                    got = c.request("GET", "/api/companies/%d" % cid, headers={"X-API-Key": pro["key"]})
                    row = got.json().get("data", got.json())
                    truth = psql("SELECT industry FROM companies WHERE id = %d" % cid)
                    assert row["industry"] == truth, (cid, row["industry"], truth)

        # coherent afterwards: a write on A reaches B's L1 through the bus on the new master
        with Conn(a) as ca, Conn(b) as cb:
            h = {"X-API-Key": pro["key"]}
            for i in range(15):
                cid = ids[i % len(ids)]
                assert cb.request("GET", "/api/companies/%d" % cid, headers=h).status == 200  # cached on B
                name = "after failover %d" % i
                r = ca.request("PATCH", "/api/companies/%d" % cid, headers=dict(h, **{"Content-Type": "application/json"}),
                               body=json.dumps({"name": name}))
                assert r.status == 200, r.body[:200]
                time.sleep(0.3 if SANITIZED else 0.1)  # the bus's bound, as in test_cache
                got = cb.request("GET", "/api/companies/%d" % cid, headers=h)
                row = got.json().get("data", got.json())
                assert got.status == 200 and row["name"] == name, (i, row.get("name"))
        # the cache's L2 lives on the new master
        assert cli(new, "--scan", "--pattern", "crmd:c:*"), "no cache entry on the new master"

        # rate limits kept in Redis again: one budget for both instances, buckets on the new master
        fallback_before = metric(a, "crmd_ratelimit_local_fallback_total")
        statuses = []
        for s in (a, b, a, b, a, b, a, b):
            with Conn(s) as c:
                statuses.append(c.request("GET", "/api/companies?limit=1", headers={"X-API-Key": std["key"]}).status)
        assert statuses.count(200) == 5 and statuses.count(429) == 3, statuses
        assert metric(a, "crmd_ratelimit_local_fallback_total") == fallback_before
        assert cli(new, "--scan", "--pattern", "crmd:rl:*"), "no rate-limit bucket on the new master"


def stack_kill(port):
    out = subprocess.run([os.path.join(ROOT, "dev", "stack"), "redis-kill", str(port)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
