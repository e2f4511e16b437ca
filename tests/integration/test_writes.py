"""Writes (POST, PATCH, DELETE) of companies, contacts, deals, activities and tasks against
database truth: status, Location, ETag and body equal to GET's; 415/400/422/409/404/412
refusals; deal stage rules; task completion; If-Match; Idempotency-Key replays (also after a
restart and under concurrency); cascade delete; and every cached view fresh after each kind of
write on the writing instance and on a second instance sharing Redis."""
import json
import os
import subprocess
import threading
import time

from lib import CRMD, ROOT, Conn, Server, Skip, psql, wait_ready, seed_keys

DB = os.environ.get("DATABASE_URL")
REDIS = os.environ.get("REDIS_URL")
a = b = None
keys = None
RUN = str(int(time.time() * 1000))


def env():
    return {"DATABASE_URL": DB, "REDIS_URL": REDIS, "PAGINATION_KEY": "writes-test",
            "RATE_LIMIT_WHITELIST": "127.0.0.1/32"}


def setup_module():
    global a, b, keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    keys = seed_keys("writes")
    a = Server(env=env())
    b = Server(env=env())
    wait_ready(a)
    wait_ready(b)


def teardown_module():
    for s in (a, b):
        if s:
            s.stop()


def key(org=1):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == "admin")


def user_id(org=1):
    return int(psql("SELECT u.id FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = '%s'"
                    % key(org).split("_")[1]))


def req(s, method, path, body=None, org=1, ctype="application/json", raw=None, **headers):
    h = {"X-API-Key": key(org)}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if data is not None and ctype:
        h["Content-Type"] = ctype
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    with Conn(s) as c:
        return c.request(method, path, h, data)


def problem(r, status, code, fields=None):
    assert r.status == status, r
    assert r.header("content-type") == "application/problem+json", r
    p = r.json()
    assert p["type"] == "/problems/" + code, p
    if fields is not None:
        got = sorted({e["field"] for e in p.get("errors", [])})
        assert got == sorted(fields), (got, p)
    return p


def get_one(s, res, id_):
    return req(s, "GET", "/api/%s/%d" % (res, id_))


def created(r, res):
    assert r.status == 201, r
    d = r.json()["data"]
    assert r.header("location") == "/api/%s/%d" % (res, d["id"]), r.headers
    g = get_one(a, res, d["id"])
    assert g.status == 200 and g.body == r.body and g.header("etag") == r.header("etag"), (g, r)
    return d


def stages():
    rows = psql("SELECT id, kind, probability FROM stages WHERE org_id = 1 ORDER BY position").splitlines()
    return [(int(i), k, int(p)) for i, k, p in (x.split("|") for x in rows)]


def new_company(**kw):
    body = {"name": "W Co " + RUN, "domain": "w%s-%d.example" % (RUN, time.time_ns() % 10**9)}
    body.update(kw)
    return created(req(a, "POST", "/api/companies", body), "companies")


def new_deal(company_id, **kw):
    body = {"name": "W deal", "company_id": company_id, "stage_id": stages()[0][0], "value": 1000}
    body.update(kw)
    return created(req(a, "POST", "/api/deals", body), "deals")


def find(rows, id_):
    return next((x for x in rows if x["id"] == id_), None)


def list_row(s, res, id_, query=""):
    r = req(s, "GET", "/api/%s?limit=200%s" % (res, query))
    assert r.status == 200, r
    return find(r.json()["data"], id_)


def eventually(fn, timeout=1.0):
    """Other instances learn of an invalidation by Redis pub/sub, a moment after the answer."""
    end = time.time() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.time() > end:
                raise
            time.sleep(0.02)


def warm(res, id_, extra=""):
    for s in (a, b):
        for _ in range(2):
            get_one(s, res, id_)
            req(s, "GET", "/api/%s?limit=200%s" % (res, extra))


def check_fresh(res, id_, want, extra=""):
    """GET one and the list (and the extra list view) show want (None: gone) on both instances."""
    for s in (a, b):
        def check():
            g = get_one(s, res, id_)
            if want is None:
                assert g.status == 404, g
            else:
                assert g.status == 200 and g.json()["data"] == want, (g, want)
            row = list_row(s, res, id_)
            assert row == want, (row, want)
            if extra:
                row = list_row(s, res, id_, extra)
                if want is None:
                    assert row is None
                else:
                    assert {k: row[k] for k in want} == want, (row, want)
        if s is a:
            check()
        else:
            eventually(check)


# ---- creates ----

def test_create_company_defaults_owner_and_matches_get():
    d = new_company(industry="Software", size="11-50", website="https://w.example")
    assert d["owner_id"] == user_id()
    row = psql("SELECT org_id, name, industry, size, website, owner_id FROM companies WHERE id = %d" % d["id"])
    assert row == "1|W Co %s|Software|11-50|https://w.example|%d" % (RUN, user_id())


def test_create_every_resource():
    c = new_company()
    ct = created(req(a, "POST", "/api/contacts", {"first_name": "Ada", "last_name": "L", "company_id": c["id"],
                                                   "email": "ada%s@w.example" % RUN, "owner_id": None}), "contacts")
    assert ct["owner_id"] is None and ct["company_id"] == c["id"]
    d = new_deal(c["id"], contact_id=ct["id"], expected_close_date="2026-03-31", value=1234.5)
    assert d["value"] == 1234.5 and d["probability"] == stages()[0][2] and d["status"] == "open"
    assert psql("SELECT value, expected_close_date FROM deals WHERE id = %d" % d["id"]) == "1234.50|2026-03-31"
    act = created(req(a, "POST", "/api/activities", {"type": "meeting", "subject": "Kick-off", "body": "a\nb",
                                                     "occurred_at": "2026-01-10T09:30:00+01:00",
                                                     "contact_id": ct["id"]}), "activities")
    assert act["occurred_at"] == "2026-01-10T08:30:00Z" and act["body"] == "a\nb"
    t = created(req(a, "POST", "/api/tasks", {"title": "Call back", "due_at": "2026-02-01T12:00:00Z",
                                               "deal_id": d["id"], "priority": "high"}), "tasks")
    assert t["status"] == "open" and t["completed_at"] is None and t["priority"] == "high"
    assert psql("SELECT count(*) FROM tasks WHERE id = %d AND org_id = 1" % t["id"]) == "1"


def test_refusals_415_400_422():
    problem(req(a, "POST", "/api/companies", {"name": "x"}, ctype="text/plain"), 415, "unsupported-media-type")
    problem(req(a, "POST", "/api/companies", raw='{"name": "x",}'), 400, "malformed-json")
    problem(req(a, "POST", "/api/companies", raw='{"name": "a", "name": "b"}'), 400, "malformed-json")
    problem(req(a, "POST", "/api/companies", raw=''), 400, "malformed-json")
    problem(req(a, "POST", "/api/companies", [1]), 422, "validation-failed", ["$"])
    problem(req(a, "POST", "/api/companies", {"name": 5, "bogus": 1, "id": 3, "size": "huge"}), 422,
            "validation-failed", ["name", "bogus", "id", "size"])
    problem(req(a, "POST", "/api/companies", {"domain": "x.example"}), 422, "validation-failed", ["name"])
    problem(req(a, "POST", "/api/companies", {"name": "x" * 201}), 422, "validation-failed", ["name"])
    problem(req(a, "POST", "/api/companies", {"name": ""}), 422, "validation-failed", ["name"])
    problem(req(a, "POST", "/api/contacts", {"first_name": "a", "last_name": "b", "email": "nope"}), 422,
            "validation-failed", ["email"])
    c = new_company()
    s0 = stages()[0][0]
    base = {"name": "d", "company_id": c["id"], "stage_id": s0, "value": 1}
    for field, bad in (("value", -1), ("value", 1.234), ("value", "10"), ("value", 1e12), ("probability", 101),
                       ("probability", 5.5), ("expected_close_date", "2026-02-30"), ("status", "maybe"),
                       ("company_id", "1"), ("stage_id", None)):
        problem(req(a, "POST", "/api/deals", dict(base, **{field: bad})), 422, "validation-failed", [field])
    problem(req(a, "POST", "/api/deals", {"name": "d"}), 422, "validation-failed", ["company_id", "stage_id", "value"])
    problem(req(a, "POST", "/api/activities", {"type": "call", "subject": "s", "occurred_at": "2026-01-01"}), 422,
            "validation-failed", ["occurred_at", "company_id", "contact_id", "deal_id"])
    problem(req(a, "POST", "/api/tasks", {"title": "t", "due_at": "soon", "priority": "urgent"}), 422,
            "validation-failed", ["due_at", "priority"])
    problem(req(a, "POST", "/api/companies?x=1", {"name": "q"}), 400, "invalid-parameter")
    n = psql("SELECT count(*) FROM companies WHERE name IN ('x', 'q', '')")
    assert n == "0", n


def test_references_outside_the_organization_are_422():
    other_company = int(psql("SELECT id FROM companies WHERE org_id = 2 LIMIT 1"))
    other_user = int(psql("SELECT id FROM users WHERE org_id = 2 LIMIT 1"))
    other_stage = int(psql("SELECT id FROM stages WHERE org_id = 2 LIMIT 1"))
    problem(req(a, "POST", "/api/contacts", {"first_name": "a", "last_name": "b", "company_id": other_company,
                                             "owner_id": other_user}), 422, "validation-failed",
            ["company_id", "owner_id"])
    c = new_company()
    problem(req(a, "POST", "/api/deals", {"name": "d", "company_id": c["id"], "stage_id": other_stage,
                                          "value": 1}), 422, "validation-failed", ["stage_id"])
    problem(req(a, "PATCH", "/api/companies/%d" % c["id"], {"owner_id": other_user}), 422, "validation-failed",
            ["owner_id"])
    assert psql("SELECT owner_id FROM companies WHERE id = %d" % c["id"]) == str(user_id())


def test_unique_conflicts_are_409_case_insensitive():
    c = new_company()
    p = problem(req(a, "POST", "/api/companies", {"name": "dup", "domain": c["domain"].upper()}), 409, "conflict")
    assert p["errors"][0]["field"] == "domain"
    email = "dup%s@w.example" % RUN
    created(req(a, "POST", "/api/contacts", {"first_name": "a", "last_name": "b", "email": email}), "contacts")
    problem(req(a, "POST", "/api/contacts", {"first_name": "c", "last_name": "d", "email": email.upper()}), 409,
            "conflict")
    c2 = new_company()
    problem(req(a, "PATCH", "/api/companies/%d" % c2["id"], {"domain": c["domain"]}), 409, "conflict")


def test_other_organization_rows_are_404():
    other = int(psql("SELECT id FROM companies WHERE org_id = 2 LIMIT 1"))
    problem(req(a, "PATCH", "/api/companies/%d" % other, {"name": "hijack"}), 404, "not-found")
    problem(req(a, "DELETE", "/api/companies/%d" % other), 404, "not-found")
    problem(req(a, "PATCH", "/api/companies/999999999", {"name": "x"}), 404, "not-found")
    assert psql("SELECT count(*) FROM companies WHERE id = %d AND name = 'hijack'" % other) == "0"


# ---- updates ----

def test_patch_is_partial_and_answers_new_representation():
    c = new_company(industry="A")
    r = req(a, "PATCH", "/api/companies/%d" % c["id"], {"industry": "B", "website": None})
    assert r.status == 200, r
    d = r.json()["data"]
    assert d["industry"] == "B" and d["name"] == c["name"] and d["domain"] == c["domain"]
    g = get_one(a, "companies", c["id"])
    assert g.body == r.body and g.header("etag") == r.header("etag")
    assert psql("SELECT industry, name FROM companies WHERE id = %d" % c["id"]) == "B|" + c["name"]
    problem(req(a, "PATCH", "/api/companies/%d" % c["id"], {"name": None}), 422, "validation-failed", ["name"])
    problem(req(a, "PATCH", "/api/companies/%d" % c["id"], {"name": "x"}, ctype="text/plain"), 415,
            "unsupported-media-type")


def test_deal_stage_rules():
    st = stages()
    open1, open2 = [s for s in st if s[1] == "open"][:2]
    won = next(s for s in st if s[1] == "won")
    lost = next(s for s in st if s[1] == "lost")
    c = new_company()
    d = new_deal(c["id"], stage_id=open1[0])
    assert d["probability"] == open1[2] and d["status"] == "open" and d["closed_at"] is None
    r = req(a, "PATCH", "/api/deals/%d" % d["id"], {"stage_id": won[0]})
    assert r.status == 200 and r.json()["data"]["status"] == "won" and r.json()["data"]["probability"] == won[2]
    assert r.json()["data"]["closed_at"] is not None
    assert psql("SELECT status, closed_at IS NOT NULL FROM deals WHERE id = %d" % d["id"]) == "won|t"
    r = req(a, "PATCH", "/api/deals/%d" % d["id"], {"stage_id": open2[0], "probability": 33})
    dd = r.json()["data"]
    assert dd["status"] == "open" and dd["closed_at"] is None and dd["probability"] == 33
    r = req(a, "PATCH", "/api/deals/%d" % d["id"], {"stage_id": lost[0]})
    assert r.json()["data"]["status"] == "lost"
    d2 = new_deal(c["id"], stage_id=open1[0], probability=90)
    assert d2["probability"] == 90
    assert psql("SELECT probability FROM deals WHERE id = %d" % d2["id"]) == "90"


def test_task_completion_and_activity_anchor():
    c = new_company()
    t = created(req(a, "POST", "/api/tasks", {"title": "t", "due_at": "2026-02-01T12:00:00Z",
                                              "company_id": c["id"]}), "tasks")
    r = req(a, "PATCH", "/api/tasks/%d" % t["id"], {"status": "done"})
    assert r.status == 200 and r.json()["data"]["completed_at"] is not None
    assert psql("SELECT status, completed_at IS NOT NULL FROM tasks WHERE id = %d" % t["id"]) == "done|t"
    r = req(a, "PATCH", "/api/tasks/%d" % t["id"], {"status": "open"})
    assert r.json()["data"]["completed_at"] is None
    act = created(req(a, "POST", "/api/activities", {"type": "note", "subject": "s", "company_id": c["id"],
                                                     "occurred_at": "2026-01-05T00:00:00Z"}), "activities")
    problem(req(a, "PATCH", "/api/activities/%d" % act["id"], {"company_id": None}), 422, "validation-failed",
            ["company_id", "contact_id", "deal_id"])
    assert psql("SELECT company_id FROM activities WHERE id = %d" % act["id"]) == str(c["id"])
    r = req(a, "PATCH", "/api/activities/%d" % act["id"], {"occurred_at": "2025-12-31T23:00:00Z"})
    assert r.status == 200 and r.json()["data"]["occurred_at"] == "2025-12-31T23:00:00Z"


def test_if_match():
    c = new_company()
    etag = get_one(a, "companies", c["id"]).header("etag")
    problem(req(a, "PATCH", "/api/companies/%d" % c["id"], {"name": "stale"}, If_Match='"0000000000000000"'), 412,
            "precondition-failed")
    assert psql("SELECT name FROM companies WHERE id = %d" % c["id"]) == c["name"]
    r = req(a, "PATCH", "/api/companies/%d" % c["id"], {"name": "fresh"}, If_Match=etag)
    assert r.status == 200 and r.json()["data"]["name"] == "fresh", r
    assert r.header("etag") != etag and r.header("etag") == get_one(a, "companies", c["id"]).header("etag")
    problem(req(a, "PATCH", "/api/companies/%d" % c["id"], {"name": "again"}, If_Match=etag), 412,
            "precondition-failed")
    problem(req(a, "DELETE", "/api/companies/%d" % c["id"], If_Match=etag), 412, "precondition-failed")
    assert req(a, "DELETE", "/api/companies/%d" % c["id"], If_Match=r.header("etag")).status == 204
    assert psql("SELECT count(*) FROM companies WHERE id = %d" % c["id"]) == "0"
    t = created(req(a, "POST", "/api/tasks", {"title": "t", "due_at": "2026-02-01T12:00:00Z", "company_id":
                                              new_company()["id"]}), "tasks")
    r = req(a, "PATCH", "/api/tasks/%d" % t["id"], {"title": "t2"}, If_Match="*")
    assert r.status == 200


# ---- idempotency ----

def test_idempotent_replay_also_after_restart():
    global a
    k = "idem-" + RUN
    body = {"name": "Idem " + RUN}
    r1 = req(a, "POST", "/api/companies", body, Idempotency_Key=k)
    d = created(r1, "companies")
    r2 = req(a, "POST", "/api/companies", body, Idempotency_Key=k)
    assert (r2.status, r2.body, r2.header("location")) == (201, r1.body, r1.header("location")), r2
    r3 = req(b, "POST", "/api/companies", body, Idempotency_Key=k)
    assert (r3.status, r3.body, r3.header("location")) == (201, r1.body, r1.header("location")), r3
    assert psql("SELECT count(*) FROM companies WHERE name = 'Idem %s'" % RUN) == "1"
    assert psql("SELECT status FROM idempotency_keys WHERE org_id = 1 AND key LIKE '%%:' || '%s'" % k) == "201"
    problem(req(a, "POST", "/api/companies", {"name": "other"}, Idempotency_Key=k), 422, "idempotency-key-reused")
    problem(req(a, "POST", "/api/contacts", {"first_name": "a", "last_name": "b"}, Idempotency_Key=k), 422,
            "idempotency-key-reused")
    # the row changed since: the replay is still the first response
    req(a, "PATCH", "/api/companies/%d" % d["id"], {"industry": "Changed"})
    a.stop()
    a = Server(env=env())
    wait_ready(a)
    r4 = req(a, "POST", "/api/companies", body, Idempotency_Key=k)
    assert (r4.status, r4.body, r4.header("location")) == (201, r1.body, r1.header("location")), r4
    assert psql("SELECT count(*) FROM companies WHERE name = 'Idem %s'" % RUN) == "1"
    for bad in ("x" * 256, "has space"):
        problem(req(a, "POST", "/api/companies", {"name": "k"}, Idempotency_Key=bad), 400, "invalid-idempotency-key")
    # a refused write keeps no claim: the key works once the body is fixed
    k2 = "idem2-" + RUN
    problem(req(a, "POST", "/api/companies", {"name": 1}, Idempotency_Key=k2), 422, "validation-failed")
    other_user = int(psql("SELECT id FROM users WHERE org_id = 2 LIMIT 1"))
    problem(req(a, "POST", "/api/companies", {"name": "k2", "owner_id": other_user}, Idempotency_Key=k2), 422,
            "validation-failed", ["owner_id"])
    assert psql("SELECT count(*) FROM idempotency_keys WHERE key = '%s'" % k2) == "0"


def test_concurrent_first_uses_write_once():
    k = "conc-" + RUN
    body = {"name": "Conc " + RUN}
    out = []

    def post(s):
        out.append(req(s, "POST", "/api/companies", body, Idempotency_Key=k))
    ts = [threading.Thread(target=post, args=(a if i % 2 else b,)) for i in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(out) == 12
    assert {r.status for r in out} == {201}, [r.status for r in out]
    assert len({r.body for r in out}) == 1 and len({r.header("location") for r in out}) == 1
    assert psql("SELECT count(*) FROM companies WHERE name = 'Conc %s'" % RUN) == "1"


# ---- deletes ----

def test_delete_company_with_deals_needs_cascade():
    c = new_company()
    d = new_deal(c["id"])
    ct = created(req(a, "POST", "/api/contacts", {"first_name": "a", "last_name": "b", "company_id": c["id"]}),
                 "contacts")
    t = created(req(a, "POST", "/api/tasks", {"title": "t", "due_at": "2026-02-01T12:00:00Z", "deal_id": d["id"]}),
                "tasks")
    warm("contacts", ct["id"])
    warm("tasks", t["id"])
    warm("deals", d["id"])
    problem(req(a, "DELETE", "/api/companies/%d" % c["id"]), 409, "company-has-deals")
    assert psql("SELECT count(*) FROM deals WHERE id = %d" % d["id"]) == "1"
    r = req(a, "DELETE", "/api/companies/%d?cascade=true" % c["id"])
    assert r.status == 204 and r.body == b"", r
    assert psql("SELECT count(*) FROM companies WHERE id = %d" % c["id"]) == "0"
    assert psql("SELECT count(*) FROM deals WHERE company_id = %d" % c["id"]) == "0"
    assert psql("SELECT company_id IS NULL FROM contacts WHERE id = %d" % ct["id"]) == "t"
    assert psql("SELECT deal_id IS NULL FROM tasks WHERE id = %d" % t["id"]) == "t"
    check_fresh("companies", c["id"], None)
    check_fresh("deals", d["id"], None)
    check_fresh("contacts", ct["id"], get_one(a, "contacts", ct["id"]).json()["data"])
    check_fresh("tasks", t["id"], get_one(a, "tasks", t["id"]).json()["data"])
    problem(req(a, "DELETE", "/api/companies/%d" % c["id"]), 404, "not-found")


def test_delete_every_resource():
    c = new_company()
    d = new_deal(c["id"])
    ct = created(req(a, "POST", "/api/contacts", {"first_name": "a", "last_name": "b"}), "contacts")
    act = created(req(a, "POST", "/api/activities", {"type": "call", "subject": "s", "deal_id": d["id"],
                                                     "contact_id": ct["id"],
                                                     "occurred_at": "2026-01-05T00:00:00Z"}), "activities")
    t = created(req(a, "POST", "/api/tasks", {"title": "t", "due_at": "2026-02-01T12:00:00Z"}), "tasks")
    for res, id_ in (("activities", act["id"]), ("tasks", t["id"]), ("contacts", ct["id"]), ("deals", d["id"]),
                     ("companies", c["id"])):
        warm(res, id_)
        r = req(a, "DELETE", "/api/%s/%d" % (res, id_))
        assert r.status == 204, (res, r)
        assert psql("SELECT count(*) FROM %s WHERE id = %d" % (res, id_)) == "0"
        check_fresh(res, id_, None)


# ---- caches stay fresh after every kind of write ----

def test_caches_fresh_after_creates_and_updates():
    c = new_company()
    warm("companies", c["id"], "&includeStats=true")
    stats = "&includeStats=true"
    # a new contact of the company: its stats change everywhere
    ct = created(req(a, "POST", "/api/contacts", {"first_name": "F", "last_name": "G", "company_id": c["id"]}),
                 "contacts")
    for s in (a, b):
        eventually(lambda: _assert_eq(list_row(s, "companies", c["id"], stats)["contact_count"], 1))
    check_fresh("contacts", ct["id"], ct)
    # a new deal: deal_count and deals_value
    d = new_deal(c["id"], value=250)
    for s in (a, b):
        eventually(lambda: _assert_eq(list_row(s, "companies", c["id"], stats)["deals_value"], 250))
    warm("deals", d["id"], "&includeRelationships=true")
    for res, id_, patch in (("companies", c["id"], {"name": "Renamed " + RUN}),
                            ("contacts", ct["id"], {"title": "CTO"}),
                            ("deals", d["id"], {"value": 300, "name": "Bigger"})):
        warm(res, id_)
        r = req(a, "PATCH", "/api/%s/%d" % (res, id_), patch)
        assert r.status == 200, r
        check_fresh(res, id_, r.json()["data"], stats if res == "companies" else "")
    for s in (a, b):
        eventually(lambda: _assert_eq(list_row(s, "companies", c["id"], stats)["deals_value"], 300))
        eventually(lambda: _assert_eq(
            list_row(s, "deals", d["id"], "&includeRelationships=true")["company"]["name"], "Renamed " + RUN))
    act = created(req(a, "POST", "/api/activities", {"type": "call", "subject": "s", "deal_id": d["id"],
                                                     "occurred_at": "2026-01-05T00:00:00Z"}), "activities")
    t = created(req(a, "POST", "/api/tasks", {"title": "t", "due_at": "2026-02-01T12:00:00Z", "deal_id": d["id"]}),
                "tasks")
    for res, id_, patch in (("activities", act["id"], {"subject": "changed"}), ("tasks", t["id"], {"status": "done"})):
        warm(res, id_)
        r = req(a, "PATCH", "/api/%s/%d" % (res, id_), patch)
        assert r.status == 200, r
        check_fresh(res, id_, r.json()["data"])


def _assert_eq(x, y):
    assert x == y, (x, y)
