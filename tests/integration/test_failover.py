"""Primary failover without a restart, against dev/stack's real streaming replica: crmd is given
both hosts (`DATABASE_URL=postgresql://h1,h2/db?target_session_attrs=read-write`); writes flow,
the primary stops, the replica is promoted, and crmd writes to the new primary. During the
switch a write is answered 503 with Retry-After, never anything else, and every write answered
201 is on the new primary afterwards."""
import json
import os
import threading
import time

from lib import DB, REDIS, Conn, Server, Skip, psql, seed_keys

PRIMARY, REPLICA = 15432, 15433
keys = None


def setup_module():
    global keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    if ":%d/" % PRIMARY not in DB:
        raise Skip("the stack's primary is expected on port %d" % PRIMARY)
    keys = seed_keys("failover")
    run_stack("replica-remove", "1")
    run_stack("replica-start", "1")


def teardown_module():
    # back to the stack as it was: the promoted replica goes, the old primary serves again
    run_stack("replica-remove", "1")
    run_stack("pg-start")


def run_stack(*args):
    import subprocess
    from lib import ROOT
    out = subprocess.run([os.path.join(ROOT, "dev", "stack")] + list(args), capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, (args, out.stdout, out.stderr)


def url(port):
    return DB.replace(":%d/" % PRIMARY, ":%d/" % port)


def key():
    return next(k["key"] for k in keys if k["org_id"] == 1 and k["role"] == "admin")


def caught_up():
    """The replica has replayed everything the primary wrote so far."""
    lsn = psql("SELECT pg_current_wal_lsn()")
    end = time.time() + 30
    while time.time() < end:
        if psql("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn, db=url(REPLICA)) == "t":
            return
        time.sleep(0.05)
    raise AssertionError("the replica did not catch up")


class Writer(threading.Thread):
    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.stop = False
        self.results = []  # (status, retry_after, id or None)

    def run(self):
        n = 0
        while not self.stop:
            n += 1
            body = {"name": "Failover %d" % n, "domain": "failover-%d-%d.example" % (n, time.time_ns() % 10**9)}
            try:
                with Conn(self.server) as c:
                    r = c.request("POST", "/api/companies", {"X-API-Key": key(), "Content-Type": "application/json"},
                                  json.dumps(body))
                rid = r.json()["data"]["id"] if r.status == 201 else None
                self.results.append((r.status, r.header("Retry-After"), rid, body["domain"]))
            except Exception as e:
                self.results.append((repr(e), None, None, body["domain"]))
            time.sleep(0.01)


def test_writes_move_to_the_promoted_replica_without_a_restart():
    both = url(PRIMARY).split("/")
    # postgresql://crmd@127.0.0.1:15432,127.0.0.1:15433/crmd_test?target_session_attrs=read-write
    multi = "%s//%s,127.0.0.1:%d/%s?target_session_attrs=read-write&connect_timeout=2" % (
        both[0], both[2], REPLICA, both[3].split("?")[0])
    with Server(env={"DATABASE_URL": multi, "PAGINATION_KEY": "failover"}, threads=2) as s:
        w = Writer(s)
        w.start()
        time.sleep(1.0)
        assert any(r[0] == 201 for r in w.results), w.results[:5]
        caught_up()
        run_stack("pg-stop")
        t_stop = time.time()
        time.sleep(0.5)
        run_stack("promote", "1")
        # writes resume on the new primary, crmd untouched
        end = time.time() + 30
        resumed = None
        while time.time() < end:
            after = [r for r in w.results[-5:] if r[0] == 201]
            if len(after) >= 3 and any(r[2] for r in after):
                resumed = time.time()
                break
            time.sleep(0.1)
        time.sleep(0.5)
        w.stop = True
        w.join(20)
        assert resumed, w.results[-10:]
        assert s.proc.poll() is None  # the same process throughout
        statuses = {}
        for r in w.results:
            statuses[r[0]] = statuses.get(r[0], 0) + 1
        # a write is either done (201) or refused as unavailable with a retry hint, nothing else
        assert set(statuses) <= {201, 503}, statuses
        assert all(r[1] and int(r[1]) >= 1 for r in w.results if r[0] == 503), "503 without Retry-After"
        assert statuses.get(503, 0) >= 1, statuses  # the switch was seen
        # every write answered 201 is on the new primary, once; no 503 write is there
        done = [r[3] for r in w.results if r[0] == 201]
        refused = [r[3] for r in w.results if r[0] == 503]
        got = psql("SELECT domain FROM companies WHERE domain LIKE 'failover-%%'", db=url(REPLICA)).split()
        assert sorted(done) == sorted(got), (len(done), len(got))
        assert not set(refused) & set(got)
        print("  %d writes: %s; writes resumed %.1f s after the primary stopped" % (
            len(w.results), statuses, resumed - t_stop))
