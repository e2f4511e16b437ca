"""HTTP/1.1 server behaviour against the real binary: keep-alive, pipelining, split writes,
many connections, timeouts, every refusal of hostile input, drain on SIGTERM."""
import json
import signal
import socket
import subprocess
import time

from lib import CRMD, Conn, Server, http_get, raw_exchange, raise_nofile

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-resource-policy": "same-origin",
}

srv = None


def setup_module():
    global srv
    raise_nofile()
    # thousands of health requests from one address: past the per-IP health limit on purpose
    srv = Server("--max-conns", "5000", env={"RATE_LIMIT_WHITELIST": "127.0.0.0/8,::1"})


def teardown_module():
    srv.stop()


def assert_common_headers(r):
    for k, v in SECURITY.items():
        assert r.header(k) == v, (k, r.header(k))
    assert r.header("date", ) and r.header("date").endswith(" GMT"), r.header("date")
    assert r.header("x-request-id"), r
    rt = r.header("x-response-time")
    assert rt and rt.endswith("ms") and float(rt[:-2]) >= 0, rt
    assert "total;dur=" in r.header("server-timing"), r.header("server-timing")


def test_health_ok():
    r = http_get(srv, "/api/health")
    assert r.status == 200, r
    assert r.json() == {"status": "healthy"}
    assert r.header("content-type") == "application/json"
    assert int(r.header("content-length")) == len(r.body)
    assert_common_headers(r)


def test_live_and_ready():
    assert http_get(srv, "/api/health/live").json() == {"status": "alive"}
    r = http_get(srv, "/api/health/ready")
    assert r.status == 200 and r.json() == {"status": "ready"}, r


def test_request_id_echoed_when_valid_and_replaced_when_not():
    r = http_get(srv, "/api/health", {"X-Request-Id": "abc.DEF_123-x"})
    assert r.header("x-request-id") == "abc.DEF_123-x"
    for bad in ["has space", "x" * 65, "semi;colon", "ümlaut"]:
        r = http_get(srv, "/api/health", {"X-Request-Id": bad})
        rid = r.header("x-request-id")
        assert rid and rid != bad and len(rid) <= 64, (bad, rid)
    a = http_get(srv, "/api/health").header("x-request-id")
    b = http_get(srv, "/api/health").header("x-request-id")
    assert a != b


TRACE_RE = r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$"
VALID_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def traceparent(r):
    import re
    m = re.match(TRACE_RE, r.header("traceparent") or "")
    assert m, r.header("traceparent")
    return m.groups()


def log_line_of(request_id):
    for _ in range(50):
        for line in srv.log_lines():
            if line.get("msg") == "request" and line.get("request_id") == request_id:
                return line
        time.sleep(0.02)
    raise AssertionError("no log line for " + request_id)


def test_traceparent_kept_with_a_new_span_and_logged():
    for path in ("/api/health", "/api/nope", "/metrics"):
        r = http_get(srv, path, {"traceparent": VALID_TP})
        trace, span, flags = traceparent(r)
        assert trace == "4bf92f3577b34da6a3ce929d0e0e4736" and flags == "01", r.header("traceparent")
        assert span != "00f067aa0ba902b7" and span != "0" * 16
        line = log_line_of(r.header("x-request-id"))
        assert line["trace_id"] == trace and line["span_id"] == span, line
    # a later version is read as 00 (its extra fields ignored); the answer is version 00
    r = http_get(srv, "/api/health", {"traceparent": "7f-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x"})
    assert traceparent(r)[0] == "4bf92f3577b34da6a3ce929d0e0e4736" and traceparent(r)[2] == "00"


def test_traceparent_invalid_or_absent_starts_a_new_trace():
    sent = "4bf92f3577b34da6a3ce929d0e0e4736"
    bad = ["", "garbage", VALID_TP.upper(), VALID_TP[:-1], VALID_TP + "0", VALID_TP.replace("-", "_"),
           "ff" + VALID_TP[2:], "00-" + "0" * 32 + VALID_TP[35:], VALID_TP[:36] + "0" * 16 + VALID_TP[52:],
           VALID_TP + "-extra", "00-%s-00f067aa0ba902b7-0x" % sent, "00-%s-00f067aa0ba902b7" % sent]
    seen = set()
    for v in bad:
        r = http_get(srv, "/api/health", {"traceparent": v} if v else None)
        assert r.status == 200, (v, r.status)  # a bad trace header is not a bad request
        trace, span, flags = traceparent(r)
        assert trace != sent and flags == "00", (v, r.header("traceparent"))
        seen.add(trace)
    # sent twice: not one trace to follow
    r = raw_exchange(srv, ("GET /api/health HTTP/1.1\r\nHost: x\r\ntraceparent: %s\r\ntraceparent: %s\r\n"
                           "Connection: close\r\n\r\n" % (VALID_TP, VALID_TP)).encode())
    assert r.status == 200 and traceparent(r)[0] != sent, r
    for _ in range(30):
        seen.add(traceparent(http_get(srv, "/api/health"))[0])
    assert len(seen) == len(bad) + 30, "trace ids repeat"


def test_keep_alive_many_requests_one_connection():
    with Conn(srv) as c:
        for i in range(50):
            r = c.request("GET", "/api/health", {"X-Request-Id": "ka-%d" % i})
            assert r.status == 200 and r.header("x-request-id") == "ka-%d" % i
            assert r.header("connection") is None


def test_pipelining_16_deep_in_order():
    with Conn(srv) as c:
        reqs = b"".join(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: p%d\r\n\r\n" % i for i in range(16))
        c.send(reqs)
        for i in range(16):
            r = c.read_response()
            assert r.status == 200 and r.header("x-request-id") == "p%d" % i, (i, r)


def test_pipelined_mixed_statuses_in_order():
    with Conn(srv) as c:
        c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: b\r\n\r\n"
               b"POST /api/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: c\r\nContent-Length: 0\r\n\r\n"
               b"HEAD /api/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: d\r\n\r\n"
               b"GET /api/health/live HTTP/1.1\r\nHost: x\r\nX-Request-Id: e\r\n\r\n")
        got = [c.read_response(head_only=(i == 3)) for i in range(5)]
        assert [r.status for r in got] == [200, 404, 405, 200, 200], got
        assert [r.header("x-request-id") for r in got] == list("abcde")


def test_byte_at_a_time():
    with Conn(srv) as c:
        req = b"GET /api/health?x=1 HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: slow1\r\n\r\n"
        for i in range(len(req)):
            c.send(req[i:i + 1])
            time.sleep(0.001)
        r = c.read_response()
        assert r.status == 200 and r.header("x-request-id") == "slow1"
        # the connection is still usable afterwards
        assert c.request().status == 200


def test_body_split_across_writes():
    with Conn(srv) as c:
        c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        time.sleep(0.05)
        c.send(b"56789GET /api/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        r = c.read_response()
        assert r.status == 200 and r.json() == {"status": "alive"}


def test_thousand_concurrent_connections():
    conns = []
    try:
        for i in range(1000):
            conns.append(Conn(srv, timeout=10))
        for i, c in enumerate(conns):
            c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: c%d\r\n\r\n" % i)
        for i, c in enumerate(conns):
            r = c.read_response()
            assert r.status == 200 and r.header("x-request-id") == "c%d" % i
        # every connection stays open and usable
        for c in conns[::50]:
            assert c.request().status == 200
    finally:
        for c in conns:
            c.close()


def test_head_has_headers_without_body():
    with Conn(srv) as c:
        r = c.request("HEAD", "/api/health")
        assert r.status == 200 and r.header("content-length") == str(len(b'{"status":"healthy"}'))
        # the next response starts right away: no body bytes were sent for HEAD
        r2 = c.request("GET", "/api/health/live")
        assert r2.status == 200 and r2.json() == {"status": "alive"}


def test_not_found_is_problem_json():
    r = http_get(srv, "/api/nothing-here")
    assert r.status == 404
    assert r.header("content-type") == "application/problem+json"
    p = r.json()
    assert p["type"] == "/problems/not-found" and p["status"] == 404 and p["title"] == "Not Found"
    assert p["request_id"] == r.header("x-request-id")
    assert_common_headers(r)


def test_method_not_allowed_lists_allow():
    with Conn(srv) as c:
        r = c.request("DELETE", "/api/health")
        assert r.status == 405, r
        assert set(r.header("allow").split(", ")) == {"GET", "HEAD", "OPTIONS"}, r.header("allow")
        assert r.json()["type"] == "/problems/method-not-allowed"


def test_options_answers_allow():
    with Conn(srv) as c:
        r = c.request("OPTIONS", "/api/health")
        assert r.status == 204 and "GET" in r.header("allow")


def test_unknown_method_501():
    with Conn(srv) as c:
        r = c.request("BREW", "/api/health")
        assert r.status == 501


def test_percent_decoded_path():
    assert http_get(srv, "/api/%68ealth").status == 200
    r = http_get(srv, "/api/%zzhealth")
    assert r.status == 400


def test_trailing_slash_is_not_the_route():
    assert http_get(srv, "/api/health/").status == 404


def test_http10_closes_by_default_and_keeps_alive_on_request():
    with Conn(srv) as c:
        c.send(b"GET /api/health HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("connection") == "close"
        assert c.closed_by_peer(3)
    with Conn(srv) as c:
        c.send(b"GET /api/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("connection").lower() == "keep-alive"
        c.send(b"GET /api/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert c.read_response().status == 200


def test_connection_close_honoured():
    with Conn(srv) as c:
        r = c.request("GET", "/api/health", {"Connection": "close"})
        assert r.status == 200 and r.header("connection") == "close"
        assert c.closed_by_peer(3)


def test_expect_100_continue():
    with Conn(srv) as c:
        c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response()
        assert r.status == 100, r
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200


def test_chunked_body_accepted_and_connection_reusable():
    with Conn(srv) as c:
        c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
        assert c.read_response().status == 200
        assert c.request().status == 200


def expect_refusal(raw, status, closes=True):
    with Conn(srv) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == status, (raw[:80], r)
        assert r.header("content-type") == "application/problem+json", r
        assert_common_headers(r)
        if closes:
            assert r.header("connection") == "close", r
            assert c.closed_by_peer(5), "connection left open after %d" % status
        return r


def test_uri_too_long_414():
    expect_refusal(b"GET /api/health?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)


def test_head_too_large_431():
    expect_refusal(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n", 431)


def test_too_many_fields_431():
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(101))
    expect_refusal(b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", 431)


def test_body_over_limit_413():
    expect_refusal(b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n", 413)
    expect_refusal(b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\nabc", 413)


def test_smuggling_and_malformed_heads_400():
    cases = [
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        b"GET /api/health HTTP/1.1\r\n\r\n",  # no Host
        b"GET /api/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET  /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/he alth HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/health HTTP/1.1\nHost: x\n\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS hello
    ]
    for raw in cases:
        expect_refusal(raw, 400)


def test_invalid_chunk_size_400():
    expect_refusal(b"GET /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400)
    expect_refusal(b"GET /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"fffffffffffffffffff\r\n", 400)


def test_unknown_transfer_coding_501():
    expect_refusal(b"GET /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501)


def test_http2_version_505():
    expect_refusal(b"GET /api/health HTTP/2.0\r\nHost: x\r\n\r\n", 505)


def test_garbage_never_crashes_server():
    for raw in [b"\r\n\r\n", b"\x00" * 100 + b"\r\n\r\n", b"GET\r\n\r\n", b"G" * 20000, b"GET / HTTP/1.1\r\n" * 300]:
        with Conn(srv) as c:
            c.send(raw)
            try:
                c.read_response()
            except (EOFError, ConnectionResetError):
                pass
    assert http_get(srv, "/api/health").status == 200


def test_refusals_are_logged_as_json():
    expect_refusal(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400)
    time.sleep(0.3)
    lines = srv.log_lines()  # every line must parse as JSON
    assert any(l.get("msg") == "bad request" and l.get("level") == "warn" for l in lines)
    reqs = [l for l in lines if l.get("msg") == "request"]
    assert reqs and all({"ts", "request_id", "method", "route", "status", "dur_ms", "bytes", "client"} <= set(l)
                        for l in reqs), reqs[:2]


def test_slowloris_header_timeout_408():
    with Server("--header-timeout", "700") as s:
        with Conn(s) as c:
            c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            t0 = time.time()
            for _ in range(4):  # keeps trickling bytes: must not extend the deadline
                time.sleep(0.2)
                try:
                    c.send(b"X-S: 1\r\n")
                except OSError:
                    break
            r = c.read_response()
            assert r.status == 408 and r.header("connection") == "close", r
            assert c.closed_by_peer(5)
            assert time.time() - t0 < 5
        # a connection that sends nothing at all is closed too
        with Conn(s) as c:
            assert c.closed_by_peer(5)


def test_idle_keepalive_timeout_closes():
    with Server("--idle-timeout", "500") as s:
        with Conn(s) as c:
            assert c.request().status == 200
            assert c.closed_by_peer(5)


def test_connection_cap():
    with Server("--max-conns", "4") as s:
        time.sleep(0.3)  # the start-up probe connection must be gone before we count
        held = [Conn(s) for _ in range(4)]
        for c in held:
            assert c.request().status == 200
        extra = Conn(s)
        assert extra.closed_by_peer(3), "connection over the cap was served"
        extra.close()
        held[0].close()
        time.sleep(0.2)
        with Conn(s) as c:
            assert c.request().status == 200
        for c in held[1:]:
            c.close()
        time.sleep(0.2)
        assert any(l.get("msg", "").startswith("connection limit reached") for l in s.log_lines())


def test_sigterm_drains_in_flight_request():
    s = Server()
    idle = Conn(s)
    assert idle.request().status == 200
    busy = Conn(s)
    busy.send(b"GET /api/health/ready HTTP/1.1\r\nHost: x\r\n")  # in flight: head not complete yet
    time.sleep(0.1)
    s.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert s.proc.poll() is None, "exited with a request in flight"
    assert idle.closed_by_peer(3), "idle keep-alive connection not closed on drain"
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused, "listener still accepting while draining"
    busy.send(b"\r\n")
    r = busy.read_response()
    assert r.status == 503 and r.json() == {"status": "draining"}, r
    assert r.header("connection") == "close"
    assert s.wait_exit(10) == 0
    s.stop()
    assert any(l.get("msg") == "draining" for l in s.log_lines())


def test_second_signal_exits_at_once():
    s = Server("--drain-timeout", "60000")
    busy = Conn(s)
    busy.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.1)
    s.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert s.proc.poll() is None
    t0 = time.time()
    s.signal(signal.SIGINT)
    code = s.wait_exit(5)
    assert code != 0 and time.time() - t0 < 3
    busy.close()
    s.stop()


def test_help_lists_every_env_var():
    out = subprocess.run([CRMD, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for env in ["PORT", "DATABASE_URL", "PAGINATION_KEY", "LOG_LEVEL", "SLOW_QUERY_THRESHOLD", "ADMIN_LISTEN",
                "DB_POOL_SIZE", "STATEMENT_TIMEOUT_MS", "HEADER_TIMEOUT_MS", "IDLE_TIMEOUT_MS", "DRAIN_TIMEOUT_MS",
                "MAX_CONNS", "--threads", "--cpus", "--max-body", "--log-sample"]:
        assert env in out.stdout, env


def test_bad_flags_exit_2_with_one_line():
    for args in (["serve", "--threads", "abc"], ["serve", "--no-such-flag"], ["serve", "--listen", "1.2.3.4:99999"],
                 ["serve", "--cpus", "0-999"], ["serve", "--log-level", "loud"], ["bogus"]):
        out = subprocess.run([CRMD] + args, capture_output=True, text=True, timeout=10)
        assert out.returncode == 2, (args, out)
        assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("crmd: "), (args, out.stderr)


def test_bad_env_value_exits_2():
    out = subprocess.run([CRMD, "serve"], capture_output=True, text=True, timeout=10,
                         env={"PORT": "notaport", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "PORT" in out.stderr


def test_two_threads_share_the_port():
    with Server(threads=2) as s:
        conns = [Conn(s) for _ in range(20)]
        for c in conns:
            assert c.request().status == 200
        for c in conns:
            c.close()


def test_metrics_on_admin_listener_only():
    with Server() as s:
        for _ in range(7):
            assert http_get(s, "/api/health").status == 200
        http_get(s, "/nope")
        assert http_get(s, "/metrics").status == 404  # not on the public listener
        with Conn(socket.create_connection(("127.0.0.1", s.admin_port), timeout=5)) as c:
            r = c.request("GET", "/metrics")
        assert r.status == 200 and r.header("content-type").startswith("text/plain"), r
        text = r.body.decode()
        assert 'crmd_http_requests_total{route="GET /api/health",status="200"} 7' in text, text[:2000]
        assert 'crmd_http_requests_total{route="unmatched",status="404"} 2' in text
        assert 'crmd_http_request_duration_seconds_count{route="GET /api/health"} 7' in text
        assert 'crmd_http_request_duration_seconds_bucket{route="GET /api/health",le="+Inf"} 7' in text
        assert "process_resident_memory_bytes" in text and "crmd_http_connections_open" in text
        for line in text.splitlines():  # every sample line is "name{labels} value" or "name value"
            if line and not line.startswith("#"):
                float(line.rsplit(" ", 1)[1])


def drain_round(n_conns=64):
    """SIGTERM while n_conns keep-alive clients send back to back. Returns (answered, lost):
    a request is lost when it was written and met neither a response nor a clean close that
    came before it (a reset, or EOF after the server had read it)."""
    import select
    import threading
    s = Server()
    answered, lost = [0], []
    lock = threading.Lock()
    start = threading.Barrier(n_conns + 1)
    stop = threading.Event()

    def client():
        c = Conn(s)
        start.wait()
        n = 0
        try:
            while not stop.is_set():
                # a server that already closed this connection: the next request is never written
                r_ready, _, _ = select.select([c.sock], [], [], 0)
                if r_ready and not c.buf:
                    try:
                        if c.sock.recv(1, socket.MSG_PEEK) == b"":
                            return
                    except ConnectionResetError:
                        with lock:
                            lost.append("reset while idle")
                        return
                try:
                    c.send(b"GET /api/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return  # not written
                try:
                    r = c.read_response()
                except EOFError:
                    with lock:
                        lost.append("EOF after a written request")
                    return
                except (ConnectionResetError, socket.timeout) as e:
                    with lock:
                        lost.append(repr(e))
                    return
                assert r.status == 200, r
                n += 1
                if r.header("connection") == "close":
                    return
        finally:
            with lock:
                answered[0] += n
            c.close()

    threads = [threading.Thread(target=client) for _ in range(n_conns)]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(0.5)
    s.signal(signal.SIGTERM)
    code = s.wait_exit(15)
    stop.set()
    for t in threads:
        t.join(10)
    s.stop()
    assert code == 0
    return answered[0], lost


def test_sigterm_under_busy_keepalive_load_loses_no_request():
    total = 0
    for _ in range(3):
        answered, lost = drain_round()
        assert not lost, lost[:5]
        total += answered
    assert total > 1000, total
