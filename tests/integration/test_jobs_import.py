"""import_companies end to end against the real PostgreSQL and Redis: every CSV shape RFC 4180
allows (quoted commas, quotes, newlines, CRLF, a BOM), JSON arrays and payload rows, the REST
rules on every row (a 50 MB file with 1 % bad rows: the exact error list and the exact rows in
the database), deduplication by domain, malformed files refused as a whole, uploads refused at
the door, and a worker killed mid-import (no row inserted twice)."""
import json
import random
import socket
import time

from lib import DB, REDIS, SANITIZED, Conn, Server, Skip, psql, redis_cli, seed_keys
from test_jobs import call, env, key, reset_jobs, wait_job

keys = None
SLOW = 3 if SANITIZED else 1


def setup_module():
    global keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    import test_jobs
    keys = seed_keys("jobs_import")
    test_jobs.keys = keys


def upload(s, k, body, ctype="text/csv"):
    if isinstance(body, str):
        body = body.encode()
    r = call(s, "POST", "/api/import/companies", k, body, {"Content-Type": ctype})
    assert r.status == 202, (r.status, r.body[:500])
    return r.json()["data"]["id"]


def import_and_wait(s, k, body, ctype="text/csv", states=("succeeded",), timeout=60):
    jid = upload(s, k, body, ctype)
    return jid, wait_job(s, k, jid, ["succeeded", "failed", "dead"], timeout=timeout)


def companies(org, where="true"):
    out = psql("SELECT name, coalesce(domain,''), coalesce(industry,''), coalesce(size,''), coalesce(website,'')"
               " FROM companies WHERE org_id = %d AND (%s) ORDER BY name" % (org, where))
    return [tuple(l.split("|")) for l in out.splitlines()] if out else []


def test_every_csv_shape_lands_exactly():
    reset_jobs()
    tag = "shape%d" % time.time_ns()
    csv = ("\ufeffname,domain,industry,website\r\n"
           "\"Comma, Inc\",c1-%(t)s.example,\"Software, B2B\",\r\n"
           "\"Quote \"\"Q\"\" Ltd\",c2-%(t)s.example,Retail,\"https://q.example/?a=\"\"b\"\"\"\r\n"
           "\"Multi\nLine\",c3-%(t)s.example,\"line1\r\nline2\",\r\n"
           "Plain,c4-%(t)s.example,,\n"
           "Last no newline,c5-%(t)s.example,Energy,") % {"t": tag}
    with Server(env=env(WORKERS=1)) as s:
        jid, j = import_and_wait(s, key(1), csv)
        assert j["status"] == "succeeded", j
        res = j["result"]
        # record 3 parses (a quoted newline), but a name and an industry are single-line text,
        # as for POST /api/companies
        assert res["rows"] == 5 and res["inserted"] == 4 and res["refused"] == 1, res
        assert sorted((e["row"], e["field"]) for e in res["errors"]) == [(3, "industry"), (3, "name")], res
        assert all("control characters" in e["message"] for e in res["errors"]), res
    got = companies(1, "domain LIKE '%%-%s.example'" % tag)
    assert ("Comma, Inc", "c1-%s.example" % tag, "Software, B2B", "", "") in got, got
    assert ("Quote \"Q\" Ltd", "c2-%s.example" % tag, "Retail", "", "https://q.example/?a=\"b\"") in got, got
    assert ("Plain", "c4-%s.example" % tag, "", "", "") in got, got
    assert ("Last no newline", "c5-%s.example" % tag, "Energy", "", "") in got, got
    assert len(got) == 4, got


def test_rows_follow_the_rest_rules_with_exact_errors():
    """Every refused row is listed with its number, field and message; the rest land."""
    reset_jobs()
    tag = "rules%d" % time.time_ns()
    rows = [
        ("ok1", "a1", "", ""),
        ("", "a2", "", ""),                   # name required
        ("ok3", "a3", "", "huge"),            # size not allowed
        ("x" * 201, "a4", "", ""),            # name too long
        ("ok5", "a5", "i" * 101, ""),         # industry too long
        ("ok6", "a6", "Retail", "11-50"),
        ("bad\x01ctl", "a7", "", ""),         # control character
    ]
    lines = ["name,domain,industry,size"]
    for n, d, i, sz in rows:
        lines.append("%s,%s-%s.example,%s,%s" % (json.dumps(n) if "," in n else n, d, tag, i, sz))
    with Server(env=env(WORKERS=1)) as s:
        jid, j = import_and_wait(s, key(1), "\n".join(lines) + "\n")
        res = j["result"]
        assert j["status"] == "succeeded" and res["rows"] == 7 and res["inserted"] == 2 and res["refused"] == 5, res
        errs = sorted((e["row"], e["field"]) for e in res["errors"])
        assert errs == [(2, "name"), (3, "size"), (4, "name"), (5, "industry"), (7, "name")], res["errors"]
        full = call(s, "GET", "/api/jobs/%s/result" % jid, key(1))
        assert full.status == 200 and full.json()["data"]["errors"] == res["errors"]
        # another organization sees nothing of it
        assert call(s, "GET", "/api/jobs/%s" % jid, key(2)).status == 404
        assert call(s, "GET", "/api/jobs/%s/result" % jid, key(2)).status == 404
    names = sorted(g[0] for g in companies(1, "domain LIKE '%%-%s.example'" % tag))
    assert names == ["ok1", "ok6"], names


def test_json_array_and_payload_rows_and_dedupe_by_domain():
    reset_jobs()
    tag = "dd%d" % time.time_ns()
    psql("INSERT INTO companies (org_id, name, domain, industry) VALUES (1, 'Existing', 'EX-%s.example', 'Old')" % tag)
    arr = [
        {"name": "Existing renamed", "domain": "ex-%s.example" % tag},              # updates, case-insensitive
        {"name": "Twice first", "domain": "tw-%s.example" % tag, "industry": "A"},
        {"name": "Twice last", "domain": "TW-%s.example" % tag, "industry": "B"},   # last wins
        {"name": "No domain %s" % tag},
        {"name": 5},
        {"name": "x", "nope": 1},
        [1, 2],
    ]
    with Server(env=env(WORKERS=1)) as s:
        jid, j = import_and_wait(s, key(1), json.dumps(arr), "application/json")
        res = j["result"]
        assert j["status"] == "succeeded", j
        assert res["rows"] == 7 and res["inserted"] == 2 and res["updated"] == 1 and res["refused"] == 3, res
        assert sorted((e["row"], e["field"]) for e in res["errors"]) == [(5, "name"), (6, "nope"), (7, "$")], res
        # payload rows through POST /api/jobs, by a member
        r = call(s, "POST", "/api/jobs", key(1, "member"), {"type": "import_companies",
                                                              "payload": {"rows": [{"name": "Row %s" % tag}]}})
        assert r.status == 202, r.body
        j2 = wait_job(s, key(1), r.json()["data"]["id"], ["succeeded", "failed"])
        assert j2["status"] == "succeeded" and j2["result"]["inserted"] == 1, j2
        for bad in ({"rows": "x"}, {}, {"rows": [], "user_id": 1}):
            r = call(s, "POST", "/api/jobs", key(1), {"type": "import_companies", "payload": bad})
            assert r.status == 422, (bad, r.status)
    assert psql("SELECT name, industry FROM companies WHERE org_id = 1 AND lower(domain) = 'ex-%s.example'" % tag) \
        == "Existing renamed|Old"
    assert psql("SELECT name, industry FROM companies WHERE org_id = 1 AND lower(domain) = 'tw-%s.example'" % tag) \
        == "Twice last|B"
    owner = psql("SELECT owner_id FROM companies WHERE org_id = 1 AND name = 'Row %s'" % tag)
    assert owner and owner != "", owner  # the member who queued it


def test_malformed_files_fail_as_a_whole():
    reset_jobs()
    cases = [
        ("name,colour\nx,red\n", "unknown column"),
        ("domain\nx.example\n", "required"),
        ("name,name\nx,y\n", "twice"),
        ("name\n\"unclosed\n", "not closed"),
        ("name\n\"a\"b\n", "closing quote"),
        ("", "empty"),
    ]
    with Server(env=env(WORKERS=1)) as s:
        for body, want in cases:
            if not body:
                r = call(s, "POST", "/api/import/companies", key(1), b"", {"Content-Type": "text/csv"})
                assert r.status == 400, r.status
                continue
            jid, j = import_and_wait(s, key(1), body)
            assert j["status"] == "failed" and j["attempts"] == 1 and want in j["error"], (body, j)
        for body in ["{\"name\": \"x\"}", "[{\"name\": \"x\"}", "[{\"name\": \"x\"}] junk"]:
            if body.lstrip()[0] != "[":
                r = call(s, "POST", "/api/import/companies", key(1), body, {"Content-Type": "application/json"})
                assert r.status == 400
                continue
            jid, j = import_and_wait(s, key(1), body, "application/json")
            assert j["status"] == "failed", (body, j)


def test_uploads_refused_at_the_door():
    with Server(env=env()) as s:
        assert call(s, "POST", "/api/import/companies", key(1), "name\nx\n", {"Content-Type": "text/plain"}).status \
            == 415
        assert call(s, "POST", "/api/import/companies", key(1), b"name\n\xff\xfe\n",
                    {"Content-Type": "text/csv"}).status == 400
        assert call(s, "POST", "/api/import/companies", key(1), b"name\nx\x00y\n",
                    {"Content-Type": "text/csv"}).status == 400
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        with Conn(sock) as c:
            c.send(("POST /api/import/companies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: text/csv\r\nContent-Length: %d\r\n\r\n" % (key(1), 50 * 1024 * 1024 + 1)).encode())
            r = c.read_response()
            assert r.status == 413, r.status


def big_csv(rows, tag, bad_every=100):
    """rows data records, every bad_every-th one refused (size not allowed); returns the text and
    the expected refused row numbers."""
    sizes = ["1-10", "11-50", "51-200", "201-1000", "1000+"]
    out = ["name,domain,industry,size,website"]
    bad = []
    for i in range(1, rows + 1):
        size = sizes[i % 5]
        if i % bad_every == 0:
            size = "lots"
            bad.append(i)
        out.append("Big %s %d,b%d-%s.example,Industry %d,%s,https://b%d.example/some/path/to/pad" %
                   (tag, i, i, tag, i % 37, size, i))
    return "\r\n".join(out) + "\r\n", bad


def test_a_50mb_csv_with_1_percent_bad_rows():
    reset_jobs()
    tag = "big%d" % time.time_ns()
    rows = 100000 if SANITIZED else 380000  # about 13 MB and 48 MiB
    text, bad = big_csv(rows, tag)
    assert SANITIZED or 45 * 1024 * 1024 < len(text) <= 50 * 1024 * 1024, len(text)
    with Server(env=env(WORKERS=2)) as s:
        jid, j = import_and_wait(s, key(3), text, timeout=300)
        res = j["result"]
        assert j["status"] == "succeeded", j
        assert res["rows"] == rows and res["refused"] == len(bad) and res["inserted"] == rows - len(bad), res
        full = call(s, "GET", "/api/jobs/%s/result" % jid, key(3)).json()["data"]["errors"]
        assert [e["row"] for e in full] == bad and all(e["field"] == "size" for e in full), full[:3]
        assert res["errors_truncated"] and len(res["errors"]) == 100
    n = psql("SELECT count(*) FROM companies WHERE org_id = 3 AND domain LIKE '%%-%s.example'" % tag)
    assert int(n) == rows - len(bad), n
    psql("DELETE FROM companies WHERE org_id = 3 AND domain LIKE '%%-%s.example'" % tag)


def test_kill_9_mid_import_inserts_nothing_twice():
    reset_jobs()
    tag = "kill%d" % time.time_ns()
    rows = 60000 if SANITIZED else 200000
    text, bad = big_csv(rows, tag, bad_every=10 ** 9)
    # the domain-less rows would be duplicated by a second run if batches were not recorded
    text = text.replace("b1-%s.example" % tag, "")
    with Server(env=env()) as api:
        w1 = Server(command="worker", env=env(WORKERS=1))
        try:
            jid = upload(api, key(3), text)
            end = time.time() + 120 * SLOW
            while True:  # some batches merged, not all
                merged = int(psql("SELECT count(*) FROM job_batches WHERE job_id = '%s'" % jid))
                if merged >= 2:
                    break
                assert time.time() < end, "no batch merged"
                time.sleep(0.02)
            w1.proc.kill()
            w1.proc.wait()
        finally:
            w1.stop()
        with Server(command="worker", env=env(WORKERS=1)):
            j = wait_job(api, key(3), jid, ["succeeded", "failed", "dead"], timeout=180)
        assert j["status"] == "succeeded" and j["attempts"] == 2, j
        assert j["result"]["inserted"] == rows, j["result"]
    n = psql("SELECT count(*) FROM companies WHERE org_id = 3 AND (domain LIKE '%%-%s.example' OR name LIKE 'Big %s %%')"
             % (tag, tag))
    assert int(n) == rows, n
    psql("DELETE FROM companies WHERE org_id = 3 AND (domain LIKE '%%-%s.example' OR name LIKE 'Big %s %%')" % (tag, tag))


def test_blank_lines_keep_numbers_and_lose_no_row():
    """Blank records are skipped but keep their numbers: a row after 5,001 of them (past the
    first merge batch) lands and an error names its real row."""
    reset_jobs()
    tag = "blank%d" % time.time_ns()
    body = "name,domain\n" + "\n" * 5001 + "Late,l-%s.example\n,bad-%s.example\n" % (tag, tag)
    with Server(env=env(WORKERS=1)) as s:
        jid, j = import_and_wait(s, key(1), body)
        res = j["result"]
        assert j["status"] == "succeeded" and res["rows"] == 2 and res["inserted"] == 1, res
        assert [(e["row"], e["field"]) for e in res["errors"]] == [(5003, "name")], res
    assert psql("SELECT count(*) FROM companies WHERE org_id = 1 AND domain = 'l-%s.example'" % tag) == "1"
