"""Bad input never a 5xx, by class (issue 15): Host values, encoded slashes in paths, every
invalid UTF-8 shape in every text parameter and body field, a generated table of timestamps,
validation before the cache, clear-cache scoped to the caller's organization."""
import datetime
import json
import re

import lib
from lib import Conn, Server, raw_exchange

srv = None
keys = None

# every invalid UTF-8 shape (percent-encoded for query strings)
BAD_UTF8 = [
    b"\xff", b"\xfe", b"\x80", b"\xbf", b"a\x80b",  # stray continuation bytes, never-valid bytes
    b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",  # overlong forms
    b"\xed\xa0\x80", b"\xed\xbf\xbf",  # UTF-16 surrogates
    b"\xf4\x90\x80\x80", b"\xf7\xbf\xbf\xbf", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",  # > U+10FFFF
    b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"abc\xe2\x82",  # truncated
    b"\xc3\xa9\xa9", b"\xe2\x82\xac\x80",  # too many continuations
]

LIST_PARAMS = {
    "/api/companies": ["q", "industry", "size", "ownerId", "sort", "cursor", "limit", "includeStats"],
    "/api/contacts": ["q", "companyId", "ownerId", "sort"],
    "/api/deals": ["q", "stageId", "status", "companyId", "minValue", "maxValue", "closingAfter", "closingBefore",
                   "ownerId", "includeRelationships"],
    "/api/activities": ["q", "type", "dealId", "companyId", "contactId", "since", "until", "ownerId"],
    "/api/tasks": ["status", "dueBefore", "dealId", "ownerId"],
    "/api/stages": ["sort"],
    "/api/users": ["sort"],
    "/api/dashboard": ["ownerId"],
    "/api/deals/pipeline-stats": ["ownerId"],
}

TEXT_FIELDS = {
    "companies": ["name", "domain", "industry", "size", "website"],
    "contacts": ["first_name", "last_name", "email", "phone", "title"],
    "deals": ["name", "status", "expected_close_date"],
    "activities": ["type", "subject", "body", "occurred_at"],
    "tasks": ["title", "priority", "status", "due_at"],
}


def setup_module():
    global srv, keys
    keys = lib.seed_keys("hardening")
    srv = Server(env={"DATABASE_URL": lib.DB, "REDIS_URL": lib.REDIS or ""})
    lib.wait_ready(srv)


def teardown_module():
    if srv:
        srv.stop()


def admin(org=1):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == "admin")


def req(method, path, body=None, key=None, raw=None, headers=None):
    h = {"Authorization": "Bearer " + (key or admin())}
    if body is not None or raw is not None:
        h["Content-Type"] = "application/json"
    if headers:
        h.update(headers)
    with Conn(srv) as c:
        return c.request(method, path, h, raw if raw is not None else (json.dumps(body) if body is not None else None))


def pct(b):
    return "".join("%%%02X" % x for x in b)


def test_host_values_table():
    for host, want in [("a", 200), ("localhost:8080", 200), ("[::1]:80", 200), ("", 400), ("a b", 400),
                       ("[::1", 400), ("a:99999", 400), ("user@a", 400), ("a,b", 400), (":80", 400), ("a/b", 400),
                       ("\xc3\xa9", 400)]:
        r = raw_exchange(srv, ("GET /api/health/live HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode("latin-1"))
        assert r is not None and r.status == want, (host, r)


def test_encoded_slash_is_not_a_separator():
    cid = lib.psql("SELECT min(id) FROM companies WHERE org_id = 1")
    assert req("GET", "/api/companies/%s" % cid).status == 200
    for path in ["/api%2Fcompanies", "/api/companies%2F" + cid, "/api%2fcompanies%2f" + cid,
                 "/api/companies/%s%%2Fanalytics" % cid, "/api/companies/1%2F2"]:
        r = req("GET", path)
        assert r.status in (400, 404), (path, r)


def test_every_invalid_utf8_shape_in_every_query_parameter_is_400():
    fails = []
    for route, params in LIST_PARAMS.items():
        for p in params:
            for bad in BAD_UTF8:
                r = req("GET", "%s?%s=%s" % (route, p, pct(bad)))
                # refused at the edge, naming the parameter (not by PostgreSQL afterwards)
                errs = r.json().get("errors", []) if r.body else []
                named = any(e["field"] == p for e in errs) or (p == "cursor" and "cursor" in r.json()["type"])
                if r.status != 400 or not named:
                    fails.append((route, p, bad, r.status, errs))
    assert not fails, fails[:10]


def test_every_invalid_utf8_shape_in_every_body_field_is_422_naming_it():
    fails = []
    for res, fields in TEXT_FIELDS.items():
        rid = lib.psql("SELECT min(id) FROM %s WHERE org_id = 1" % res)
        for f in fields:
            for bad in BAD_UTF8:
                raw = b'{"' + f.encode() + b'": "x' + bad + b'y"}'
                for method, path in (("POST", "/api/" + res), ("PATCH", "/api/%s/%s" % (res, rid))):
                    r = req(method, path, raw=raw)
                    errs = r.json().get("errors", []) if r.body else []
                    if r.status != 422 or not any(e["field"] == f for e in errs):
                        fails.append((method, path, f, bad, r.status, errs))
    assert not fails, fails[:5]
    # nested: inside a batch operation, and a key that is not UTF-8
    raw = b'[{"id": "1", "method": "POST", "path": "/api/companies", "body": {"name": "a\xffb"}}]'
    r = req("POST", "/api/batch", raw=raw)
    assert r.status == 422 and r.json()["errors"][0]["field"] == "[0].body.name", r
    r = req("POST", "/api/companies", raw=b'{"na\xffme": "x"}')
    assert r.status == 422, r


def test_nul_and_controls_in_text_are_422():
    for f in ("name", "domain", "industry"):
        for v in ("a\u0000b", "a\u0001", "\u007f"):
            r = req("POST", "/api/companies", {"name": "ok", f: v} if f != "name" else {"name": v})
            assert r.status == 422, (f, v, r)


def expected_utc(s):
    """Python's reading of an RFC 3339 value: the UTC text crmd must answer, or None if the
    instant lies outside years 0001-9999 (or the text is not RFC 3339)."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)", s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(x) for x in m.groups()[:6])
    try:
        base = datetime.datetime(y, mo, d, h, mi, se)
        off = m.group(8)
        if off in ("Z", "z"):
            delta = datetime.timedelta(0)
        else:
            oh, om = int(off[1:3]), int(off[4:6])
            if oh > 23 or om > 59:
                return None
            delta = datetime.timedelta(hours=oh, minutes=om) * (1 if off[0] == "+" else -1)
        utc = base - delta
    except (ValueError, OverflowError):
        return None
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0")


def timestamp_table():
    out = []
    for date in ["2026-01-17", "2024-02-29", "2023-02-29", "0001-01-01", "9999-12-31", "2026-04-31", "2026-13-01",
                 "0000-06-15", "1969-12-31"]:
        for time_ in ["00:00:00", "23:59:59", "12:30:45.123456", "10:00:00.9999999", "24:00:00", "23:59:60",
                      "12:60:00"]:
            for off in ["Z", "z", "+00:00", "-00:00", "+01:00", "-01:00", "+14:00", "-12:00", "+15:59", "+16:00",
                        "-23:59", "+24:00", "+05:60", "+0100", ""]:
                out.append("%sT%s%s" % (date, time_, off))
    out += ["2026-01-17 10:00:00Z", "2026-01-17t10:00:00z", "infinity", "-infinity", "epoch", "now", "today",
            "2026-01-17", "10000-01-01T00:00:00Z", "2026-01-17T10:00:00UTC", "2026-1-7T1:0:0Z"]
    return out


def test_generated_timestamps_are_stored_and_shown_in_rfc3339_or_refused():
    cid = lib.psql("SELECT min(id) FROM companies WHERE org_id = 1")
    fails = []
    for ts in timestamp_table():
        want = expected_utc(ts)
        r = req("POST", "/api/activities", {"type": "note", "subject": "ts", "occurred_at": ts, "company_id": int(cid)})
        if want is None:
            if r.status != 422:
                fails.append((ts, r.status, "accepted" if r.status < 300 else r.body[:100]))
            continue
        if r.status != 201:
            fails.append((ts, r.status, r.body[:120]))
            continue
        got = r.json()["data"]["occurred_at"]
        if got != want:
            fails.append((ts, got, want))
        # read back through GET: the same RFC 3339 Z text
        aid = r.json()["data"]["id"]
        g = req("GET", "/api/activities/%d" % aid)
        if g.json()["data"]["occurred_at"] != want:
            fails.append((ts, "GET", g.json()["data"]["occurred_at"]))
    assert not fails, fails[:10]


def test_generated_timestamps_as_query_parameters_never_5xx():
    fails = []
    for ts in timestamp_table()[::3]:
        want = expected_utc(ts)
        for route, p in (("/api/activities", "since"), ("/api/activities", "until"), ("/api/tasks", "dueBefore")):
            r = req("GET", "%s?%s=%s" % (route, p, ts.replace("+", "%2B").replace(" ", "%20")))
            ok = r.status == 200 if want is not None else r.status == 400
            if not ok:
                fails.append((route, p, ts, r.status))
    assert not fails, fails[:10]


def test_query_validated_before_the_cache():
    path = "/api/companies?limit=7"
    assert req("GET", path).status == 200
    assert req("GET", path).header("x-cache") == "HIT"
    for extra in ["&refresh=maybe", "&refresh=", "&refresh=true&refresh=true", "&refresh=TRUE", "&refresh=1",
                  "&limit=8", "&bogus=1", "&q=%FF"]:
        r = req("GET", path + extra)
        assert r.status == 400, (extra, r)
    r = req("GET", path + "&refresh=false")
    assert r.status == 200


def test_clear_cache_is_expensive_and_scoped():
    # an org admin may not clear another organization's rows or namespace
    other_cid = lib.psql("SELECT min(id) FROM companies WHERE org_id <> 1")
    own_cid = lib.psql("SELECT min(id) FROM companies WHERE org_id = 1")
    for tag in ["company:%s" % other_cid, "org:2", "org:2:companies", "org:10:all", "org:1x", "clear:all",
                "company:0", "nothing:1"]:
        r = req("POST", "/api/performance/clear-cache", {"scope": "tag", "tag": tag})
        assert r.status == 422, (tag, r)
    for tag in ["company:%s" % own_cid, "org:1", "org:1:companies"]:
        r = req("POST", "/api/performance/clear-cache", {"scope": "tag", "tag": tag})
        assert r.status == 200, (tag, r)
    # the expensive class: its budget is far below the tier's (whitelist off for this server)
    with Server(env={"DATABASE_URL": lib.DB}, limits=True) as s:
        lib.wait_ready(s)
        statuses = []
        with Conn(s) as c:
            for _ in range(25):
                r = c.request("POST", "/api/performance/clear-cache", {"Authorization": "Bearer " + admin(),
                                                                       "Content-Type": "application/json"},
                              '{"scope":"l1"}')
                statuses.append(r.status)
                if r.status == 429:
                    assert "expensive" in (r.header("ratelimit-policy") or "") or r.header("retry-after"), r
                    break
        assert 429 in statuses, statuses


def latencies(server, stop, out, errors):
    """Requests back to back on one keep-alive connection until stop; appends seconds each."""
    import time as _t
    try:
        with Conn(server) as c:
            while not stop.is_set():
                t0 = _t.perf_counter()
                r = c.request("GET", "/api/health/live")
                out.append(_t.perf_counter() - t0)
                assert r.status == 200
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append("%r after %d requests" % (e, len(out)))


def test_ten_thousand_idle_connections_expiring_together_do_not_stall_the_reactor():
    expiry_storm("idle")


def test_ten_thousand_request_heads_timing_out_together_do_not_stall_the_reactor():
    expiry_storm("head")


def expiry_storm(kind):
    import os
    import signal
    import socket
    import threading
    import time
    lib.raise_nofile()
    env = {"REDIS_URL": lib.REDIS} if lib.REDIS else {}
    flag = "--idle-timeout" if kind == "idle" else "--header-timeout"
    s = Server(flag, "2000", "--threads", "1", env=env)
    socks = []
    try:
        for _ in range(10000):
            socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
        # the server pauses while every connection sends its request, so it answers them all in
        # the same few loop turns: their idle timers then expire in the same tick
        os.kill(s.proc.pid, signal.SIGSTOP)
        # idle: a whole request each (then the idle timer); head: half a head (then 408s)
        req = b"GET /api/health/live HTTP/1.1\r\nHost: x\r\n" + (b"\r\n" if kind == "idle" else b"")
        for so in socks:
            so.send(req)
        os.kill(s.proc.pid, signal.SIGCONT)
        time.sleep(1.0)
        stop = threading.Event()
        base, storm, errors = [], [], []
        t = threading.Thread(target=latencies, args=(s, stop, base, errors))
        t.start()
        time.sleep(0.5)  # a quiet baseline, before the expiry at about 2 s
        stop.set()
        t.join()
        stop = threading.Event()
        t = threading.Thread(target=latencies, args=(s, stop, storm, errors))
        t.start()
        time.sleep(3.5)  # covers the idle expiry and the lingering closes 2 s after it
        stop.set()
        t.join()
        assert not errors, errors
        assert len(storm) > 500, len(storm)
        storm.sort()
        p99 = storm[int(len(storm) * 0.99)]
        worst = storm[-1]
        assert p99 < 0.010, "p99 %.1f ms during the expiry (max %.1f ms, %d requests)" % (p99 * 1e3, worst * 1e3,
                                                                                           len(storm))
        # no stall either: before the fix one request waited 2.7 s while 10,000 closes ran
        bound = 1.0 if lib.SANITIZED else 0.25
        assert worst < bound, "a request waited %.0f ms during the expiry" % (worst * 1e3)
        # the expiry did happen: every idle connection got its answer, then the server's close
        closed = 0
        for so in socks[::50]:
            so.settimeout(2)
            data = b""
            while True:
                chunk = so.recv(65536)
                if not chunk:
                    break
                data += chunk
            closed += data.startswith(b"HTTP/1.1 200" if kind == "idle" else b"HTTP/1.1 408")
        assert closed == len(socks[::50]), closed
        # and every client hangs up at once: 10,000 closes in the server, requests still flowing
        stop = threading.Event()
        hangup = []
        t = threading.Thread(target=latencies, args=(s, stop, hangup, errors))
        t.start()
        time.sleep(0.2)
        for so in socks:
            so.close()
        socks = []
        time.sleep(1.0)
        stop.set()
        t.join()
        assert not errors, errors
        hangup.sort()
        assert hangup[int(len(hangup) * 0.99)] < 0.010, "p99 %.1f ms while clients hang up" % (
            hangup[int(len(hangup) * 0.99)] * 1e3)
        logs = s.logs()
        assert "redis connection lost" not in logs and "database connection lost" not in logs
    finally:
        for so in socks:
            so.close()
        s.stop()
