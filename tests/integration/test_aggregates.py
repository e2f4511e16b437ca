"""Aggregates against database truth: every figure of the dashboard, pipeline-stats, company analytics
and deals-summary is recomputed here with its own SQL through psql (whole organization and with
ownerId), tenant isolation (404 across organizations), parameter validation, and the cache: a second
call is a HIT, and after a change in the database plus a tag invalidation the figures are fresh."""
import json
import os
import re
import subprocess
import time

from lib import CRMD, ROOT, Conn, Server, Skip, psql, redis_cli, seed_keys

DB = os.environ.get("DATABASE_URL")
REDIS = os.environ.get("REDIS_URL")
srv = None
keys = None

TODAY = "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
WEEK = "date_trunc('week', now() AT TIME ZONE 'UTC')"


def rows(sql):
    text = psql(sql)
    return [line.split("|") for line in text.splitlines()] if text else []


def env():
    return {"DATABASE_URL": DB, "REDIS_URL": REDIS, "PAGINATION_KEY": "agg-test",
            "RATE_LIMIT_WHITELIST": "127.0.0.1/32"}


def setup_module():
    global srv, keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    keys = seed_keys("agg")
    srv = Server(env=env())
    end = time.time() + 15
    while time.time() < end:
        with Conn(srv) as c:
            if c.request("GET", "/api/health/ready").status == 200:
                return
        time.sleep(0.1)
    raise AssertionError("not ready")


def teardown_module():
    if srv:
        srv.stop()


def key(org=1, role="admin"):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == role)


def get(path, org=1, k=None):
    with Conn(srv) as c:
        return c.request("GET", path, {"X-API-Key": k or key(org)})


def data(path, org=1):
    r = get(path, org)
    assert r.status == 200, (path, r)
    return r.json()["data"]


def money(s):
    return float(s)


def owner_with_deals(org=1):
    return int(psql("SELECT owner_id FROM deals WHERE org_id = %d AND owner_id IS NOT NULL "
                    "GROUP BY owner_id ORDER BY count(*) DESC, owner_id LIMIT 1" % org))


def owner_variants(org=1):
    """(query suffix, SQL condition on alias x) for the whole organization and one owner."""
    o = owner_with_deals(org)
    return [("", lambda x: ""), ("&ownerId=%d" % o, lambda x, o=o: " AND %s.owner_id = %d" % (x, o))]


# ---- dashboard ----

def check_dashboard(org, q, cond):
    d = data("/api/dashboard?refresh=true" + q, org)
    ov = d["overview"]
    t = rows("SELECT count(*), count(*) FILTER (WHERE status = 'open'),"
             " coalesce(sum(value) FILTER (WHERE status = 'open'), 0),"
             " round(coalesce(sum(value * probability / 100.0) FILTER (WHERE status = 'open'), 0), 2),"
             " coalesce(sum(value) FILTER (WHERE status = 'won' AND closed_at >= now() - interval '30 days'), 0)"
             " FROM deals d WHERE org_id = %d%s" % (org, cond("d")))[0]
    deals = ov["deals"]
    assert deals["total_deals"] == int(t[0]) and deals["open_deals"] == int(t[1]), (deals, t)
    assert deals["pipeline_value"] == money(t[2]), (deals, t)
    assert abs(deals["weighted_value"] - money(t[3])) < 0.006, (deals, t)
    assert deals["won_value_30d"] == money(t[4]), (deals, t)
    a = rows("SELECT count(*) FILTER (WHERE occurred_at >= %s AND occurred_at < %s + interval '1 day'),"
             " count(*) FILTER (WHERE occurred_at >= (%s) AT TIME ZONE 'UTC'"
             " AND occurred_at < (%s + interval '7 days') AT TIME ZONE 'UTC')"
             " FROM activities a WHERE org_id = %d%s" % (TODAY, TODAY, WEEK, WEEK, org, cond("a")))[0]
    assert ov["activities"] == {"today_activities": int(a[0]), "week_activities": int(a[1])}, (ov, a)
    c = rows("SELECT count(*), count(*) FILTER (WHERE id IN (SELECT company_id FROM deals WHERE org_id = %d))"
             " FROM companies c WHERE org_id = %d%s" % (org, org, cond("c")))[0]
    assert ov["companies"] == {"total_companies": int(c[0]), "companies_with_deals": int(c[1])}, (ov, c)
    p = rows("SELECT s.id, s.name, s.color, (SELECT count(*) FROM deals d WHERE d.stage_id = s.id%s),"
             " (SELECT coalesce(sum(value), 0) FROM deals d WHERE d.stage_id = s.id%s)"
             " FROM stages s WHERE org_id = %d ORDER BY position, id" % (cond("d"), cond("d"), org))
    assert [(x["stage_id"], x["name"], x["color"], x["deal_count"], x["value"]) for x in ov["pipeline"]] == \
        [(int(r[0]), r[1], r[2], int(r[3]), money(r[4])) for r in p]
    ra = [int(x) for x in psql("SELECT id FROM activities a WHERE org_id = %d%s AND occurred_at <= now()"
                               " ORDER BY occurred_at DESC, id DESC LIMIT 10" % (org, cond("a"))).split()]
    assert [x["id"] for x in d["recent"]["activities"]] == ra
    rt = [int(x) for x in psql("SELECT id FROM tasks t WHERE org_id = %d%s AND status = 'open'"
                               " ORDER BY due_at, id LIMIT 5" % (org, cond("t"))).split()]
    assert [x["id"] for x in d["recent"]["tasks"]] == rt
    assert all(x["status"] == "open" for x in d["recent"]["tasks"])
    return d


def test_dashboard_matches_sql_whole_org_and_owner():
    for org in (1, 2):
        for q, cond in owner_variants(org):
            check_dashboard(org, q, cond)


def test_dashboard_shape_and_metadata():
    r = get("/api/dashboard")
    assert r.status == 200 and r.header("content-type").startswith("application/json")
    body = r.json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["metadata"]["generated_at"])
    a = body["data"]["recent"]["activities"]
    assert a and set(a[0]) == {"id", "owner_id", "company_id", "contact_id", "deal_id", "type", "subject", "body",
                               "occurred_at", "created_at"}
    assert len(a) <= 10 and len(body["data"]["recent"]["tasks"]) <= 5


def test_dashboard_owner_of_another_org_matches_nothing():
    other = int(psql("SELECT id FROM users WHERE org_id = 2 ORDER BY id LIMIT 1"))
    d = data("/api/dashboard?ownerId=%d" % other, 1)
    assert d["overview"]["deals"]["total_deals"] == 0 and d["overview"]["companies"]["total_companies"] == 0
    assert d["recent"]["activities"] == [] and d["recent"]["tasks"] == []
    assert all(s["deal_count"] == 0 for s in d["overview"]["pipeline"])


def test_bad_parameters_are_400():
    for path in ("/api/dashboard?owner=1", "/api/dashboard?ownerId=0", "/api/dashboard?ownerId=abc",
                 "/api/dashboard?ownerId=1&ownerId=2", "/api/deals/pipeline-stats?x=1",
                 "/api/deals/pipeline-stats?ownerId=-3", "/api/companies/abc/analytics",
                 "/api/companies/1/analytics?ownerId=1", "/api/companies/1/deals-summary?q=x"):
        r = get(path)
        assert r.status == 400, (path, r)
        assert r.header("content-type").startswith("application/problem+json")


# ---- pipeline-stats ----

def test_pipeline_stats_match_sql():
    for org in (1, 3):
        for q, cond in owner_variants(org):
            d = data("/api/deals/pipeline-stats?refresh=true" + q, org)
            st = rows("SELECT s.id, s.name, s.position, count(d.id), coalesce(sum(d.value), 0),"
                      " round(coalesce(sum(d.value * d.probability / 100.0), 0), 2), round(coalesce(avg(d.value), 0), 2),"
                      " coalesce(extract(epoch FROM avg(now() - d.created_at)) / 86400, 0)"
                      " FROM stages s LEFT JOIN deals d ON d.org_id = s.org_id AND d.stage_id = s.id%s"
                      " WHERE s.org_id = %d GROUP BY s.id ORDER BY s.position, s.id" % (cond("d"), org))
            assert len(d["stages"]) == len(st)
            for got, r in zip(d["stages"], st):
                assert (got["stage_id"], got["name"], got["position"], got["deal_count"]) == \
                    (int(r[0]), r[1], int(r[2]), int(r[3])), (got, r)
                assert got["total_value"] == money(r[4]), (got, r)
                assert abs(got["weighted_value"] - money(r[5])) < 0.006, (got, r)
                assert abs(got["avg_value"] - money(r[6])) < 0.006, (got, r)
                assert abs(got["avg_age_days"] - float(r[7])) <= 0.06, (got, r)
                assert round(got["avg_age_days"], 1) == got["avg_age_days"]
            t = rows("SELECT count(*), coalesce(sum(value), 0), round(coalesce(sum(value * probability / 100.0), 0), 2),"
                     " count(*) FILTER (WHERE status = 'won'), count(*) FILTER (WHERE status = 'lost')"
                     " FROM deals d WHERE org_id = %d%s" % (org, cond("d")))[0]
            tot = d["totals"]
            assert tot["deal_count"] == int(t[0]) and tot["total_value"] == money(t[1]), (tot, t)
            assert abs(tot["weighted_value"] - money(t[2])) < 0.006, (tot, t)
            won, lost = int(t[3]), int(t[4])
            assert abs(tot["win_rate"] - (won / (won + lost) if won + lost else 0)) < 0.0001, (tot, t)
            assert 0 <= tot["win_rate"] <= 1


# ---- company analytics and deals summary ----

def company_ids(org=1, n=6):
    # companies with the most activities and some without deals: every branch of the score
    busy = psql("SELECT company_id FROM activities WHERE org_id = %d AND company_id IS NOT NULL GROUP BY 1"
                " ORDER BY count(*) DESC, 1 LIMIT %d" % (org, n // 2)).split()
    idle = psql("SELECT id FROM companies c WHERE org_id = %d AND NOT EXISTS (SELECT 1 FROM deals d"
                " WHERE d.company_id = c.id) ORDER BY id LIMIT %d" % (org, n - n // 2)).split()
    return [int(x) for x in busy + idle]


def expected_analytics(org, cid):
    r = rows("SELECT (SELECT count(*) FROM contacts WHERE org_id = %(o)d AND company_id = %(c)d),"
             " count(*) FILTER (WHERE status = 'open'), count(*) FILTER (WHERE status = 'won'),"
             " count(*) FILTER (WHERE status = 'lost'), coalesce(sum(value) FILTER (WHERE status = 'open'), 0),"
             " coalesce(sum(value) FILTER (WHERE status = 'won'), 0),"
             " (SELECT count(*) FROM activities WHERE org_id = %(o)d AND company_id = %(c)d"
             "  AND occurred_at >= now() - interval '30 days' AND occurred_at <= now()),"
             " (SELECT to_char(max(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM activities"
             "  WHERE org_id = %(o)d AND company_id = %(c)d AND occurred_at <= now()),"
             " (SELECT max(occurred_at) >= now() - interval '7 days' FROM activities"
             "  WHERE org_id = %(o)d AND company_id = %(c)d AND occurred_at <= now())"
             " FROM deals WHERE org_id = %(o)d AND company_id = %(c)d" % {"o": org, "c": cid})[0]
    active, act30, recent = int(r[1]), int(r[6]), r[8] == "t"
    score = min(100, 4 * act30 + 15 * min(active, 3) + (20 if recent else 0))
    return {"company_id": cid, "contact_count": int(r[0]), "active_deals": active, "won_deals": int(r[2]),
            "lost_deals": int(r[3]), "pipeline_value": money(r[4]), "won_value": money(r[5]),
            "activity_count_30d": act30, "last_activity_at": r[7] or None, "engagement_score": score,
            "health": "hot" if score >= 70 else "warm" if score >= 30 else "cold"}


def test_company_analytics_match_sql():
    healths = set()
    for org in (1, 2):
        for cid in company_ids(org):
            got = data("/api/companies/%d/analytics?refresh=true" % cid, org)
            want = expected_analytics(org, cid)
            assert got == want, (cid, got, want)
            healths.add(got["health"])
    assert len(healths) >= 2, healths


def test_company_deals_summary_matches_sql():
    for org in (1, 2):
        for cid in company_ids(org, 4):
            d = data("/api/companies/%d/deals-summary?refresh=true" % cid, org)
            assert d["company_id"] == cid
            st = {r[0]: (int(r[1]), money(r[2])) for r in rows(
                "SELECT status, count(*), sum(value) FROM deals WHERE org_id = %d AND company_id = %d GROUP BY 1"
                % (org, cid))}
            assert list(d["by_status"]) == ["open", "won", "lost"]
            for s in ("open", "won", "lost"):
                assert (d["by_status"][s]["count"], d["by_status"][s]["value"]) == st.get(s, (0, 0.0)), (cid, d, st)
            sg = rows("SELECT s.id, s.name, count(d.id), coalesce(sum(d.value), 0) FROM stages s LEFT JOIN deals d"
                      " ON d.stage_id = s.id AND d.company_id = %d WHERE s.org_id = %d GROUP BY s.id"
                      " ORDER BY s.position, s.id" % (cid, org))
            assert [(x["stage_id"], x["name"], x["count"], x["value"]) for x in d["by_stage"]] == \
                [(int(r[0]), r[1], int(r[2]), money(r[3])) for r in sg]


def test_companies_of_another_org_are_404():
    foreign = int(psql("SELECT id FROM companies WHERE org_id = 2 ORDER BY id LIMIT 1"))
    for sub in ("analytics", "deals-summary"):
        r = get("/api/companies/%d/%s" % (foreign, sub), 1)
        assert r.status == 404 and r.header("content-type").startswith("application/problem+json"), r
        assert get("/api/companies/%d/%s" % (foreign, sub), 2).status == 200
        assert get("/api/companies/999999999/%s" % sub, 1).status == 404


def test_missing_key_is_401():
    with Conn(srv) as c:
        assert c.request("GET", "/api/dashboard").status == 401


# ---- cache ----

def clear_tag(tag):
    body = json.dumps({"scope": "tag", "tag": tag})
    with Conn(srv) as c:
        r = c.request("POST", "/api/performance/clear-cache",
                      {"X-API-Key": key(1), "Content-Type": "application/json"}, body)
    assert r.status == 200, r


def test_cached_then_fresh_after_change_and_invalidation():
    cid = company_ids(1, 2)[0]
    paths = ["/api/dashboard", "/api/deals/pipeline-stats", "/api/companies/%d/analytics" % cid,
             "/api/companies/%d/deals-summary" % cid]
    first = {}
    for p in paths:
        get(p)
        r = get(p)
        assert r.status == 200 and r.header("x-cache") == "HIT", (p, r.headers)
        first[p] = r.json()["data"]
    deal = int(psql("SELECT id FROM deals WHERE org_id = 1 AND company_id = %d AND status = 'open'"
                    " ORDER BY id LIMIT 1" % cid) or
               psql("SELECT id FROM deals WHERE org_id = 1 AND status = 'open' ORDER BY id LIMIT 1"))
    psql("UPDATE deals SET value = value + 1000 WHERE id = %d" % deal)
    # the database changed behind the server's back: the cache still answers the old figures
    r = get("/api/dashboard")
    assert r.header("x-cache") == "HIT" and r.json()["data"] == first["/api/dashboard"]
    clear_tag("org:1:deals")
    d = get("/api/dashboard")
    assert d.header("x-cache") == "MISS", d.headers
    v = money(psql("SELECT coalesce(sum(value), 0) FROM deals WHERE org_id = 1 AND status = 'open'"))
    assert d.json()["data"]["overview"]["deals"]["pipeline_value"] == v
    assert v == first["/api/dashboard"]["overview"]["deals"]["pipeline_value"] + 1000
    check_dashboard(1, "", lambda x: "")
    for p in paths[1:]:
        r = get(p)
        assert r.header("x-cache") == "MISS", (p, r.headers)
    s = get("/api/deals/pipeline-stats").json()["data"]
    assert s["totals"]["total_value"] == first["/api/deals/pipeline-stats"]["totals"]["total_value"] + 1000
    # keys hold ownerId: the owner's view is its own entry
    o = owner_with_deals(1)
    r1 = get("/api/dashboard?ownerId=%d" % o)
    r2 = get("/api/dashboard?ownerId=%d" % o)
    assert r2.header("x-cache") == "HIT" and r1.body != get("/api/dashboard").body
