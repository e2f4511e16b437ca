"""Resource exhaustion and the log: out of descriptors, log sinks, log floods, durability.

- Out of file descriptors the server pauses accepting instead of spinning, logs a bounded
  number of lines, counts the failures, keeps the admin listener answering, and resumes.
- Over --max-conns the admin listener still answers.
- Every log sink (pipe, plain file without O_APPEND, append file) gets every line whole
  while several reactor threads write at once.
- A database outage under load logs a bounded number of lines while counters stay exact.
- A write answered 201 survives a PostgreSQL crash (dev/stack runs it durably).
"""
import json
import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time

import lib
from lib import CRMD, Conn, Server, free_port

_keys = None


def keys():
    global _keys
    if _keys is None:
        _keys = lib.seed_keys("exhaustion")
    return _keys


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(text, name):
    m = re.search(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def admin_get(port, path="/metrics"):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        c = Conn(s)
        return c.request("GET", path)


def spawn(stderr, args=(), env=None, threads=1, nofile=None):
    """A crmd process whose stderr goes where the test says; returns (proc, port, admin_port)."""
    port, admin = free_port(), free_port()
    os.makedirs(os.path.join(lib.BUILD, "test-logs"), exist_ok=True)
    e = dict(os.environ)
    for k in ("DATABASE_URL", "REDIS_URL"):
        e.pop(k, None)
    e["RATE_LIMIT_WHITELIST"] = "127.0.0.0/8,::1"
    if env:
        e.update(env)

    def limits():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen([CRMD, "serve", "--listen", "127.0.0.1:%d" % port, "--admin-listen",
                             "127.0.0.1:%d" % admin, "--threads", str(threads)] + list(args),
                            stdout=subprocess.DEVNULL, stderr=stderr, env=e, preexec_fn=limits)
    end = time.time() + 10
    while time.time() < end:
        assert proc.poll() is None, "crmd exited with %s" % proc.returncode
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port, admin
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("crmd did not start listening")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def read_log(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def test_out_of_descriptors_pauses_accept_without_spinning():
    os.makedirs(os.path.join(lib.BUILD, "test-logs"), exist_ok=True)
    path = os.path.join(lib.BUILD, "test-logs", "crmd-emfile.log")
    with open(path, "wb") as log:
        proc, port, admin = spawn(log, nofile=48)
    clients = []
    try:
        # far more clients than descriptors: the backlog holds the rest
        for _ in range(150):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1.0)
        c0 = cpu_seconds(proc.pid)
        time.sleep(3.0)
        used = cpu_seconds(proc.pid) - c0
        assert used < 0.5, "the process spun on EMFILE: %.2f s of CPU in 3 s" % used
        # the operator still gets in through the admin listener's reserve
        r = admin_get(admin)
        assert r.status == 200, r
        text = r.body.decode()
        assert metric(text, "crmd_http_accept_fd_exhausted_total") > 0
        r = admin_get(admin, "/api/health/live")
        assert r.status == 200, r
        lines = [l for l in read_log(path).splitlines() if "out of file descriptors" in l]
        assert 1 <= len(lines) <= 8, "%d EMFILE lines in about 4 s" % len(lines)
        assert "failures" in lines[0]
        # descriptors free up: accepting resumes and the server answers
        for s in clients:
            s.close()
        clients = []
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    r = Conn(s, timeout=2).request("GET", "/api/health/live")
                    if r.status == 200:
                        break
            except (OSError, EOFError):
                pass
            assert time.time() < deadline, "accepting never resumed"
            time.sleep(0.2)
        assert proc.poll() is None
    finally:
        for s in clients:
            s.close()
        assert stop(proc) == 0


def test_admin_listener_answers_over_max_conns():
    path = os.path.join(lib.BUILD, "test-logs", "crmd-maxconns.log")
    with open(path, "wb") as log:
        proc, port, admin = spawn(log, args=["--max-conns", "8"])
    held = []
    try:
        for _ in range(12):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            held.append(s)
        time.sleep(0.5)
        for i in range(5):
            r = admin_get(admin)
            assert r.status == 200, (i, r)
        r = admin_get(admin)
        assert metric(r.body.decode(), "crmd_http_connections_refused_total") >= 4
    finally:
        for s in held:
            s.close()
        assert stop(proc) == 0


def load(port, n_conns, per_conn, path="/api/health/live", headers=None):
    """Sends per_conn keep-alive requests on each of n_conns connections; returns the statuses."""
    statuses = []
    lock = threading.Lock()

    def worker():
        got = []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            c = Conn(s, timeout=10)
            req = ("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" %
                   (path, "".join("%s: %s\r\n" % kv for kv in (headers or {}).items()))).encode()
            # pipelined in batches of 50: a lot of lines quickly, from every thread
            left = per_conn
            while left:
                k = min(50, left)
                c.send(req * k)
                for _ in range(k):
                    got.append(c.read_response().status)
                left -= k
        with lock:
            statuses.extend(got)

    ts = [threading.Thread(target=worker) for _ in range(n_conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


def check_sink(kind):
    n_conns, per_conn = 8, 1000
    path = os.path.join(lib.BUILD, "test-logs", "crmd-sink-%s.log" % kind)
    reader = None
    if kind == "pipe":
        rfd, wfd = os.pipe()
        chunks = []

        def drain():
            while True:
                b = os.read(rfd, 1 << 16)
                if not b:
                    break
                chunks.append(b)
        reader = threading.Thread(target=drain)
        reader.start()
        proc, port, admin = spawn(wfd, threads=2)
        os.close(wfd)
    else:
        if os.path.exists(path):
            os.unlink(path)
        with open(path, "wb" if kind == "plain" else "ab") as f:
            if kind == "append":
                f.write(b'{"msg":"an earlier line"}\n')
                f.flush()
            proc, port, admin = spawn(f, threads=2)
    try:
        statuses = load(port, n_conns, per_conn)
        assert statuses.count(200) == n_conns * per_conn
        dropped = metric(admin_get(admin).body.decode(), "crmd_log_lines_dropped_total")
    finally:
        assert stop(proc) == 0
    if kind == "pipe":
        reader.join(timeout=30)
        os.close(rfd)
        text = b"".join(chunks).decode()
    else:
        text = read_log(path)
    lines = text.splitlines()
    parsed = [json.loads(l) for l in lines]  # every line whole: a torn or overwritten one fails here
    requests = [p for p in parsed if p.get("msg") == "request" and p.get("path") == "/api/health/live"]
    assert dropped == 0
    assert len(requests) == n_conns * per_conn, "%s sink: %d request lines of %d" % (
        kind, len(requests), n_conns * per_conn)
    if kind == "append":
        assert parsed[0] == {"msg": "an earlier line"}


def test_log_sink_pipe_loses_no_line():
    check_sink("pipe")


def test_log_sink_plain_file_without_append_loses_no_line():
    check_sink("plain")


def test_log_sink_append_file_loses_no_line():
    check_sink("append")


def test_database_outage_logs_are_summarised_counters_exact():
    key = keys()[0]["key"]
    dead = "postgresql://crmd@127.0.0.1:%d/crmd?connect_timeout=1" % free_port()
    path = os.path.join(lib.BUILD, "test-logs", "crmd-flood.log")
    with open(path, "wb") as f:
        proc, port, admin = spawn(f, threads=2, env={"DATABASE_URL": dead})
    try:
        n_conns, per_conn = 6, 1000
        statuses = load(port, n_conns, per_conn, "/api/companies", {"Authorization": "Bearer " + key})
        assert len(statuses) == n_conns * per_conn
        assert all(s == 503 for s in statuses), sorted(set(statuses))
        text = admin_get(admin).body.decode()
        answered = sum(float(v) for v in re.findall(r'^crmd_http_requests_total\{[^}]*status="503"\} (\S+)$', text, re.M))
        assert answered == n_conns * per_conn, answered
        suppressed = metric(text, "crmd_log_lines_suppressed_total")
        assert suppressed > 0
    finally:
        assert stop(proc) == 0
    lines = [json.loads(l) for l in read_log(path).splitlines()]
    assert len(lines) < n_conns * per_conn / 5, "%d lines for %d failed requests" % (len(lines), n_conns * per_conn)
    reqs = [l for l in lines if l.get("msg") == "request"]
    assert reqs, "the first failures are logged in full"
    # the sampled lines and the summaries account for every failed request
    weight = sum(l.get("sampled", 1) for l in reqs)
    summary = sum(l.get("suppressed", 0) for l in lines if l.get("msg") == "request lines sampled under load")
    sampled_away = n_conns * per_conn - len(reqs)
    assert weight >= len(reqs) and summary + len(reqs) <= n_conns * per_conn
    assert sampled_away > 0
    repeated = [l for l in lines if "repeated" in l]
    for l in repeated:
        assert l["repeated"] >= 1 and l["level"] in ("warn", "error")


def test_answered_write_survives_postgres_crash():
    key = keys()[0]["key"]
    srv = Server(env={"DATABASE_URL": lib.DB})
    try:
        srv.wait_ready()
        lib.wait_ready(srv)
        for rnd in range(3):
            names = []
            with Conn(srv) as c:
                for i in range(20):
                    name = "durable-%d-%d-%d" % (os.getpid(), rnd, i)
                    r = c.request("POST", "/api/companies", {"Authorization": "Bearer " + key,
                                                              "Content-Type": "application/json"},
                                  json.dumps({"name": name}))
                    for _ in range(50):  # the first writes after a restart may meet the breaker
                        if r.status != 503:
                            break
                        time.sleep(0.2)
                        r = c.request("POST", "/api/companies", {"Authorization": "Bearer " + key,
                                                                  "Content-Type": "application/json"},
                                      json.dumps({"name": name}))
                    assert r.status == 201, r
                    names.append(name)
            # the crash comes right after the last 201: a commit not yet on disk would be lost
            lib.stack("pg-crash")
            lib.stack("pg-start")
            # the pool reconnects with backoff (503 + Retry-After meanwhile)
            deadline = time.time() + 20
            while lib.http_get(srv, "/api/health/ready").status != 200:
                assert time.time() < deadline, "crmd never reconnected to PostgreSQL"
                time.sleep(0.2)
            got = lib.psql("SELECT count(*) FROM companies WHERE name = ANY(ARRAY[%s])" %
                           ",".join("'%s'" % n for n in names))
            assert got == "20", "round %d: %s of 20 answered writes survived the crash" % (rnd, got)
    finally:
        srv.stop()
