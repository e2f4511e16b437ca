"""The job runtime against the real Redis and PostgreSQL (API.md § Jobs): the endpoints' input
classes, retries with backoff then dead, a retry by hand, cancel, Idempotency-Key, priorities,
delayed jobs, a worker killed with SIGKILL mid-job (re-delivered after its lease, finished
once), SIGTERM handing running jobs back, Redis restarted with jobs queued (none lost), a
schedule firing once per period across 3 workers in 2 processes, bounded retention, /metrics.

The jobs here are `noop` (the diagnostic type: sleep, fail N attempts, fail for good); the
handlers' own tests are test_jobs_import, test_jobs_export and test_jobs_partitions."""
import json
import signal
import subprocess
import time

from lib import DB, REDIS, SANITIZED, Conn, Server, Skip, redis_cli, seed_keys, stack

keys = None
SLOW = 3 if SANITIZED else 1


def setup_module():
    global keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    keys = seed_keys("jobs")


def key(org, role="admin"):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == role)


def env(**extra):
    e = {"DATABASE_URL": DB, "REDIS_URL": REDIS, "PAGINATION_KEY": "jobs-test", "JOB_SCHEDULES": "none",
         "JOB_BACKOFF_MS": "50", "JOB_LEASE_MS": "1000"}
    e.update({k: str(v) for k, v in extra.items()})
    return e


def reset_jobs():
    out = subprocess.run("redis-cli -u %s --scan --pattern 'crmd:jobs:*' | xargs -r redis-cli -u %s DEL"
                         % (REDIS, REDIS), shell=True, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def call(server, method, path, k, body=None, headers=None):
    h = {"Authorization": "Bearer " + k}
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    with Conn(server, timeout=30) as c:
        return c.request(method, path, h, body)


def enqueue(server, k, typ="noop", payload=None, **extra):
    body = {"type": typ}
    if payload is not None:
        body["payload"] = payload
    body.update(extra)
    r = call(server, "POST", "/api/jobs", k, body)
    assert r.status == 202, (r.status, r.body)
    jid = r.json()["data"]["id"]
    assert r.header("Location") == "/api/jobs/%s" % jid
    assert r.json()["data"]["status"] == "queued"
    return jid


def job(server, k, jid):
    r = call(server, "GET", "/api/jobs/%s" % jid, k)
    assert r.status == 200, (r.status, r.body)
    return r.json()["data"]


def wait_job(server, k, jid, states, timeout=20):
    end = time.time() + timeout * SLOW
    while True:
        j = job(server, k, jid)
        if j["status"] in states:
            return j
        assert time.time() < end, "job %s stayed %s (wanted %s)" % (jid, j, states)
        time.sleep(0.05)


def job_count():
    return len(redis_cli("--scan", "--pattern", "crmd:jobs:job:*").split())


def redis_job(jid, field):
    return redis_cli("HGET", "crmd:jobs:job:%s" % jid, field)


# ---- the endpoints ----


def test_post_refuses_every_malformed_job():
    reset_jobs()
    k = key(1)
    with Server(env=env()) as s:
        bad = [
            ({}, "type"),
            ({"type": 1}, "type"),
            ({"type": ""}, "type"),
            ({"type": "nope"}, "type"),
            ({"type": "noop\u0000"}, "type"),
            ({"type": "noop", "payload": []}, "payload"),
            ({"type": "noop", "payload": "x"}, "payload"),
            ({"type": "noop", "payload": None}, "payload"),
            ({"type": "noop", "priority": "urgent"}, "priority"),
            ({"type": "noop", "priority": 0}, "priority"),
            ({"type": "noop", "run_at": "tomorrow"}, "run_at"),
            ({"type": "noop", "run_at": "2026-02-30T00:00:00Z"}, "run_at"),
            ({"type": "noop", "run_at": "1969-12-31T23:59:59Z"}, "run_at"),
            ({"type": "noop", "run_at": 1700000000}, "run_at"),
            ({"type": "noop", "colour": "red"}, "colour"),
        ]
        for body, field in bad:
            r = call(s, "POST", "/api/jobs", k, body)
            assert r.status == 422, (body, r.status, r.body)
            fields = [e["field"] for e in r.json().get("errors", [])]
            assert field in fields, (body, r.body)
        for body in ["[]", "1", '"noop"', "null"]:
            r = call(s, "POST", "/api/jobs", k, body, {"Content-Type": "application/json"})
            assert r.status == 422, (body, r.status)
        for body in ["{", '{"type":"noop",}', "\xff", ""]:
            r = call(s, "POST", "/api/jobs", k, body.encode("latin-1"), {"Content-Type": "application/json"})
            assert r.status == 400, (body, r.status, r.body)
        r = call(s, "POST", "/api/jobs", k, '{"type":"noop"}', {"Content-Type": "text/plain"})
        assert r.status == 415
        r = call(s, "POST", "/api/jobs", k, {"type": "noop", "payload": {"x": "y" * 70000}})
        assert r.status in (413, 422), r.status
        r = call(s, "POST", "/api/jobs", "crmd_nope_nope", {"type": "noop"})
        assert r.status == 401
        # nothing of the above was queued
        assert job_count() == 0


def test_members_queue_only_their_kinds_of_jobs():
    reset_jobs()
    member = key(1, "member")
    with Server(env=env()) as s:
        for typ in ("noop", "maintain_partitions", "refresh_analytics"):
            r = call(s, "POST", "/api/jobs", member, {"type": typ})
            assert r.status == 403, (typ, r.status)
        jid = enqueue(s, member, "export_deals", {"filters": {}})
        assert job(s, member, jid)["type"] == "export_deals"
        r = call(s, "POST", "/api/jobs/%s/retry" % jid, member)
        assert r.status == 403


def test_a_job_belongs_to_its_organization():
    reset_jobs()
    with Server(env=env(WORKERS=1)) as s:
        jid = enqueue(s, key(1), payload={"sleep_ms": 0})
        j = wait_job(s, key(1), jid, ["succeeded"])
        assert j["attempts"] == 1 and j["error"] is None and j["progress"] == 1
        assert j["result"] == {"attempt": 1}
        for f in ("created_at", "started_at", "finished_at"):
            assert j[f] and j[f].endswith("Z"), j
        for other in (key(2), key(2, "member"), key(3)):
            for method, path in (("GET", "/api/jobs/%s" % jid), ("GET", "/api/jobs/%s/result" % jid),
                                 ("DELETE", "/api/jobs/%s" % jid)):
                r = call(s, method, path, other)
                assert r.status == 404, (method, path, r.status)
            if other == key(2) or other == key(3):
                assert call(s, "POST", "/api/jobs/%s/retry" % jid, other).status == 404
        for bad in ("0", "-1", "abc", "1.5", "9" * 30, "%00", "1;DROP"):
            r = call(s, "GET", "/api/jobs/%s" % bad, key(1))
            assert r.status in (400, 404), (bad, r.status)
        assert call(s, "GET", "/api/jobs/999999", key(1)).status == 404


# ---- retries, dead jobs, failures ----


def test_a_job_failing_4_times_then_succeeding():
    reset_jobs()
    with Server(env=env(WORKERS=2)) as s:
        jid = enqueue(s, key(1), payload={"fail_attempts": 4})
        j = wait_job(s, key(1), jid, ["succeeded", "dead"], timeout=30)
        assert j["status"] == "succeeded" and j["attempts"] == 5, j
        assert j["error"] is None
        import socket
        with Conn(socket.create_connection(("127.0.0.1", s.admin_port), timeout=5)) as c:
            text = c.request("GET", "/metrics").body.decode()
        assert 'crmd_jobs_processed_total{type="noop",outcome="retry"} 4' in text
        assert 'crmd_jobs_processed_total{type="noop",outcome="succeeded"} 1' in text


def test_dead_after_5_attempts_then_retried_by_hand():
    reset_jobs()
    with Server(env=env(WORKERS=2)) as s:
        jid = enqueue(s, key(1), payload={"fail_attempts": 5})
        j = wait_job(s, key(1), jid, ["dead"], timeout=30)
        assert j["attempts"] == 5 and "attempt 5 failed" in j["error"], j
        stats = call(s, "GET", "/api/jobs/stats", key(1)).json()["data"]["noop"]
        assert stats["dead"] == 1 and stats["queued"] == 0 and stats["running"] == 0, stats
        # the backoff grew: full jitter over 50 ms * 2^(n-1) keeps the four waits under 1.5 s
        assert redis_cli("ZSCORE", "crmd:jobs:dead", jid) != ""
        assert call(s, "POST", "/api/jobs/%s/retry" % jid, key(1, "member")).status == 403
        r = call(s, "POST", "/api/jobs/%s/retry" % jid, key(1))
        assert r.status == 200 and r.json()["data"]["status"] == "queued", r.body
        j = wait_job(s, key(1), jid, ["dead"], timeout=30)
        assert j["attempts"] == 5
        stats = call(s, "GET", "/api/jobs/stats", key(1)).json()["data"]["noop"]
        assert stats["dead"] == 1, stats
        # a job that is not dead or failed cannot be retried
        ok = enqueue(s, key(1))
        wait_job(s, key(1), ok, ["succeeded"])
        assert call(s, "POST", "/api/jobs/%s/retry" % ok, key(1)).status == 409


def test_a_permanent_failure_is_not_retried():
    reset_jobs()
    with Server(env=env(WORKERS=1)) as s:
        jid = enqueue(s, key(1), payload={"fail": True})
        j = wait_job(s, key(1), jid, ["failed", "dead"])
        assert j["status"] == "failed" and j["attempts"] == 1, j
        for payload in ({"sleep_ms": -1}, {"sleep_ms": "x"}, {"fail_attempts": 1.5}, {"sleep_ms": 10 ** 9}):
            jid = enqueue(s, key(1), payload=payload)
            j = wait_job(s, key(1), jid, ["failed", "dead"])
            assert j["status"] == "failed" and j["attempts"] == 1, (payload, j)


# ---- cancel, delay, priority, idempotency ----


def test_delayed_jobs_wait_and_can_be_cancelled():
    reset_jobs()
    with Server(env=env(WORKERS=1)) as s:
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
        a = enqueue(s, key(1), run_at=soon)
        b = enqueue(s, key(1), run_at=later)
        assert job(s, key(1), a)["status"] == "queued"
        j = wait_job(s, key(1), a, ["succeeded"], timeout=10)
        assert j["started_at"] >= soon, j
        r = call(s, "DELETE", "/api/jobs/%s" % b, key(1, "member"))
        assert r.status == 200 and r.json()["data"]["status"] == "cancelled", r.body
        assert job(s, key(1), b)["status"] == "cancelled"
        assert call(s, "DELETE", "/api/jobs/%s" % b, key(1)).status == 409
        assert call(s, "DELETE", "/api/jobs/%s" % a, key(1)).status == 409
        assert redis_cli("ZSCORE", "crmd:jobs:delayed", b) == ""
        stats = call(s, "GET", "/api/jobs/stats", key(1)).json()["data"]["noop"]
        assert stats["cancelled"] == 1 and stats["succeeded"] == 1 and stats["queued"] == 0, stats


def test_cancel_of_a_queued_job_before_any_worker_runs():
    reset_jobs()
    with Server(env=env()) as s:  # no workers
        jid = enqueue(s, key(1))
        assert call(s, "DELETE", "/api/jobs/%s" % jid, key(1)).status == 200
    with Server(env=env(WORKERS=1)) as s:
        other = enqueue(s, key(1))
        wait_job(s, key(1), other, ["succeeded"])
        assert job(s, key(1), jid)["status"] == "cancelled"
        assert redis_job(jid, "attempts") == "0"


def test_high_priority_jobs_go_first():
    reset_jobs()
    with Server(env=env()) as s:  # queue first, then start one worker
        normal = [enqueue(s, key(1), payload={"sleep_ms": 100}) for _ in range(5)]
        high = enqueue(s, key(1), payload={"sleep_ms": 100}, priority="high")
        assert job(s, key(1), high)["priority"] == "high"
    with Server(env=env(WORKERS=1)) as s:
        for jid in normal + [high]:
            wait_job(s, key(1), jid, ["succeeded"])
        started = {jid: int(redis_job(jid, "started_at")) for jid in normal + [high]}
        assert started[high] < min(started[n] for n in normal), started


def test_idempotency_key_gives_the_same_job():
    reset_jobs()
    with Server(env=env()) as s:
        h = {"Idempotency-Key": "nightly-1"}
        a = call(s, "POST", "/api/jobs", key(1), {"type": "noop"}, h)
        b = call(s, "POST", "/api/jobs", key(1), {"type": "noop"}, h)
        assert a.status == b.status == 202
        assert a.json()["data"]["id"] == b.json()["data"]["id"]
        assert b.header("Idempotent-Replayed") == "true"
        c = call(s, "POST", "/api/jobs", key(1), {"type": "noop", "payload": {"sleep_ms": 1}}, h)
        assert c.status == 422 and c.json()["type"].endswith("/idempotency-key-reused"), c.body
        d = call(s, "POST", "/api/jobs", key(2), {"type": "noop"}, h)  # another org: its own job
        assert d.status == 202 and d.json()["data"]["id"] != a.json()["data"]["id"]
        e = call(s, "POST", "/api/jobs", key(1, "member"), {"type": "export_deals"}, h)  # another user
        assert e.status == 202 and e.json()["data"]["id"] not in (a.json()["data"]["id"], d.json()["data"]["id"])
        for bad in ("x" * 256, "a b", "\u00e9", "tab\there"):
            r = call(s, "POST", "/api/jobs", key(1), {"type": "noop"}, {"Idempotency-Key": bad.encode().decode("latin-1")})
            assert r.status == 400, (bad, r.status)
        assert job_count() == 3


# ---- workers that die, drain, restart ----


def test_kill_9_of_a_worker_mid_job_redelivers_it_once():
    reset_jobs()
    with Server(env=env()) as api:
        w1 = Server(command="worker", env=env(WORKERS=1))
        try:
            jid = enqueue(api, key(1), payload={"sleep_ms": 2500})
            wait_job(api, key(1), jid, ["running"])
            w1.proc.kill()
            w1.proc.wait()
        finally:
            w1.stop()
        with Server(command="worker", env=env(WORKERS=1)) as w2:
            j = wait_job(api, key(1), jid, ["succeeded", "dead"], timeout=30)
            assert j["status"] == "succeeded" and j["attempts"] == 2, j
            assert any(l.get("msg", "").startswith("reclaimed") for l in w2.log_lines())
            finished = [l for l in w2.log_lines() if l.get("msg") == "job finished"]
            assert len(finished) == 1, finished
        stats = call(api, "GET", "/api/jobs/stats", key(1)).json()["data"]["noop"]
        assert stats["succeeded"] == 1 and stats["running"] == 0, stats


def test_sigterm_hands_running_jobs_back():
    reset_jobs()
    with Server(env=env()) as api:
        w1 = Server(command="worker", env=env(WORKERS=2, DRAIN_TIMEOUT_MS=10000))
        try:
            jobs = [enqueue(api, key(1), payload={"sleep_ms": 20000}) for _ in range(2)]
            for jid in jobs:
                wait_job(api, key(1), jid, ["running"])
            t0 = time.time()
            w1.signal(signal.SIGTERM)
            assert w1.wait_exit(15) == 0
            assert time.time() - t0 < 5 * SLOW
        finally:
            w1.stop()
        for jid in jobs:
            j = job(api, key(1), jid)
            assert j["status"] == "queued" and j["attempts"] == 0, j
        # another worker takes them at once, without waiting for a lease
        with Server(command="worker", env=env(WORKERS=2)) as w2:
            for jid in jobs:
                wait_job(api, key(1), jid, ["running"], timeout=5)
            w2.signal(signal.SIGTERM)
            assert w2.wait_exit(15) == 0


def test_redis_restart_loses_no_queued_job():
    reset_jobs()
    with Server(env=env()) as api:
        now = [enqueue(api, key(1)) for _ in range(30)]
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        later = [enqueue(api, key(1), run_at=soon) for _ in range(5)]
        stack("redis-stop")
        try:
            r = call(api, "GET", "/api/jobs/%s" % now[0], key(1))
            assert r.status == 503 and r.header("Retry-After"), r.status
        finally:
            stack("redis-start")
        with Server(command="worker", env=env(WORKERS=4)):
            end = time.time() + 20 * SLOW
            while True:
                r = call(api, "GET", "/api/jobs/%s" % now[0], key(1))
                if r.status == 200:
                    break
                assert time.time() < end
                time.sleep(0.1)
            for jid in now + later:
                wait_job(api, key(1), jid, ["succeeded"], timeout=30)
        stats = call(api, "GET", "/api/jobs/stats", key(1)).json()["data"]["noop"]
        assert stats["succeeded"] == 35, stats


# ---- schedules ----


def test_a_schedule_fires_once_per_period_across_processes():
    reset_jobs()
    e = env(JOB_SCHEDULES="noop=@every 2s")
    with Server(env=dict(e, WORKERS="2")) as api, Server(command="worker", env=dict(e, WORKERS="1")):
        time.sleep(7.5)
    ids = [k.split(":")[-1] for k in redis_cli("--scan", "--pattern", "crmd:jobs:job:*").split()]
    periods = []
    for jid in ids:
        if redis_job(jid, "type") == "noop" and redis_job(jid, "org") == "0":
            periods.append(int(redis_job(jid, "created_at")) // 2000)
    assert len(periods) >= 3, periods
    assert len(periods) == len(set(periods)), sorted(periods)
    assert sorted(periods) == list(range(min(periods), max(periods) + 1)), sorted(periods)


def test_bad_schedules_refuse_to_start():
    for spec in ("noop", "noop=@every", "noop=@every 0s", "noop=@every 5x", "noop=61 * * * *", "noop=* * *",
                 "nosuchtype=@daily", "noop=@daily;noop=@hourly", "noop=*/0 * * * *"):
        s = Server(command="worker", env=env(WORKERS=1, JOB_SCHEDULES=spec), wait=False)
        try:
            assert s.proc.wait(timeout=10) != 0, spec
        finally:
            s.stop()


# ---- retention, metrics ----


def test_finished_jobs_are_bounded():
    reset_jobs()
    with Server(env=env(WORKERS=2, JOB_KEEP_COUNT=5)) as s:
        ids = [enqueue(s, key(1)) for _ in range(20)]
        end = time.time() + 20 * SLOW
        while int(redis_cli("ZCARD", "crmd:jobs:done") or 0) < 5 \
                or any(redis_job(j, "status") not in ("succeeded", "") for j in ids):
            assert time.time() < end
            time.sleep(0.05)
        assert int(redis_cli("ZCARD", "crmd:jobs:done")) == 5
        left = [j for j in ids if redis_job(j, "status")]
        assert left == ids[-5:], left
        assert call(s, "GET", "/api/jobs/%s" % ids[0], key(1)).status == 404
        stats = call(s, "GET", "/api/jobs/stats", key(1)).json()["data"]["noop"]
        assert stats["succeeded"] == 5, stats


def test_metrics_count_jobs():
    reset_jobs()
    with Server(env=env(WORKERS=1)) as s:
        jid = enqueue(s, key(1), payload={"fail_attempts": 1})
        wait_job(s, key(1), jid, ["succeeded"])
        time.sleep(2.5)  # the queue gauges are read every 2 s
        import socket
        sock = socket.create_connection(("127.0.0.1", s.admin_port), timeout=5)
        with Conn(sock) as c:
            r = c.request("GET", "/metrics")
        text = r.body.decode()
        assert 'crmd_jobs_processed_total{type="noop",outcome="succeeded"} 1' in text, text[-3000:]
        assert 'crmd_jobs_processed_total{type="noop",outcome="retry"} 1' in text
        assert 'crmd_jobs{type="noop",state="succeeded"} 1' in text
        assert 'crmd_jobs_queue_depth{type="noop"} 0' in text
        assert "crmd_jobs_oldest_waiting_seconds" in text
        assert 'crmd_job_duration_seconds_count{type="noop"} 2' in text


def test_warm_cache_fills_every_instance_l1_from_l2():
    reset_jobs()
    redis_cli("DEL", "crmd:hot")
    k = key(1, "member")
    paths = ["/api/companies?limit=5", "/api/deals?limit=7", "/api/dashboard"]
    with Server(env=env(WORKERS=1)) as a, Server(env=env()) as b:
        for p in paths:  # misses on a: filled into L2 and counted as used
            r = call(a, "GET", p, k)
            assert r.status == 200, (p, r.status)
        assert int(redis_cli("ZCARD", "crmd:hot")) >= len(paths)
        assert call(a, "POST", "/api/jobs", k, {"type": "warm_cache"}).status == 403
        jid = enqueue(a, key(1), "warm_cache")
        j = wait_job(a, key(1), jid, ["succeeded"])
        assert j["result"]["instances"] >= 2 and j["result"]["hot_keys"] >= len(paths), j
        end = time.time() + 5 * SLOW
        while not any(l.get("msg") == "cache warmed from L2" for l in b.log_lines()):
            assert time.time() < end, "b never warmed"
            time.sleep(0.05)
        for p in paths:  # b never asked for them: its L1 has them now
            r = call(b, "GET", p, k)
            assert r.status == 200 and 'cache;desc="l1-hit"' in (r.header("server-timing") or ""), \
                (p, r.header("server-timing"))
        # a write still makes them fresh on b (the warm-up read tag versions like a request)
        r = call(a, "POST", "/api/companies", key(1), {"name": "Warm Co %d" % time.time_ns()})
        assert r.status == 201, r.body
        r = call(b, "GET", paths[0], k)
        assert 'cache;desc="l1-hit"' not in (r.header("server-timing") or "")
