"""export_deals end to end: the CSV equals SQL over the same filters (several combinations and
the search), gzip as stored or decompressed by content negotiation, bad filters fail the job,
another organization gets 404 on the job and its result, and a re-run leaves one copy."""
import csv
import gzip
import io
import json
from decimal import Decimal

from lib import DB, REDIS, Server, Skip, psql, seed_keys
from test_jobs import call, env, key, reset_jobs, wait_job

keys = None


def setup_module():
    global keys
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    import test_jobs
    keys = seed_keys("jobs_export", scale="0.05")
    test_jobs.keys = keys


def export(s, k, filters):
    r = call(s, "POST", "/api/jobs", k, {"type": "export_deals", "payload": {"filters": filters}})
    assert r.status == 202, (r.status, r.body)
    jid = r.json()["data"]["id"]
    return jid, wait_job(s, k, jid, ["succeeded", "failed", "dead"], timeout=60)


def fetch_csv(s, k, jid, gz=False):
    r = call(s, "GET", "/api/jobs/%s/result" % jid, k, headers={"Accept-Encoding": "gzip"} if gz else {})
    assert r.status == 200, (r.status, r.body[:300])
    assert r.header("content-type").startswith("text/csv")
    body = r.body
    if gz:
        assert r.header("content-encoding") == "gzip"
        body = gzip.decompress(body)
    else:
        assert not r.header("content-encoding")
    return list(csv.DictReader(io.StringIO(body.decode())))


def expected(org, where):
    out = psql("SELECT id, name, trim_scale(value), status, stage_id, coalesce(company_id::text, ''),"
               " coalesce(expected_close_date::text, '') FROM deals t WHERE org_id = %d AND %s ORDER BY id"
               % (org, where))
    return [l.split("|") for l in out.splitlines()] if out else []


def test_export_equals_sql_for_every_filter_shape():
    reset_jobs()
    stage = psql("SELECT stage_id FROM deals WHERE org_id = 1 GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    company = psql("SELECT company_id FROM deals WHERE org_id = 1 AND company_id IS NOT NULL LIMIT 1")
    word = psql("SELECT split_part(name, ' ', 1) FROM deals WHERE org_id = 1 LIMIT 1")
    cases = [
        ({}, "true"),
        ({"status": "open"}, "status = 'open'"),
        ({"stageId": int(stage)}, "stage_id = %s" % stage),
        ({"companyId": company, "status": "won"}, "company_id = %s AND status = 'won'" % company),
        ({"minValue": "1000", "maxValue": 50000.5}, "value >= 1000 AND value <= 50000.5"),
        ({"closingAfter": "2025-01-01", "closingBefore": "2027-12-31"},
         "expected_close_date >= '2025-01-01' AND expected_close_date <= '2027-12-31'"),
        ({"q": word}, "t.search @@ websearch_to_tsquery('simple', %s)" % ("'" + word.replace("'", "''") + "'")),
        ({"status": "lost", "minValue": "999999999"}, "status = 'lost' AND value >= 999999999"),
    ]
    with Server(env=env(WORKERS=2)) as s:
        for filters, where in cases:
            jid, j = export(s, key(1, "member"), filters)
            assert j["status"] == "succeeded", (filters, j)
            want = expected(1, where)
            for gz in (False, True):
                rows = fetch_csv(s, key(1, "member"), jid, gz)
                got = [[r["id"], r["name"], r["value"], r["status"], r["stage_id"], r["company_id"],
                        r["expected_close_date"]] for r in rows]
                assert len(got) == len(want) == j["result"]["rows"], (filters, len(got), len(want), j["result"])
                for g, w in zip(got, want):
                    assert g[:2] == w[:2] and Decimal(g[2]) == Decimal(w[2]) and g[3:] == w[3:], (filters, g, w)
            if rows:
                assert rows[0]["created_at"].endswith("Z") and "T" in rows[0]["created_at"]
            assert j["result"]["content_type"] == "text/csv" and j["result"]["expires_at"].endswith("Z")


def test_bad_filters_fail_and_results_stay_in_their_organization():
    reset_jobs()
    with Server(env=env(WORKERS=1)) as s:
        for filters in ({"colour": "red"}, {"status": "nope"}, {"minValue": "abc"}, {"stageId": -1},
                        {"closingAfter": "2025-02-30"}, {"status": ["open"]}):
            jid, j = export(s, key(1), filters)
            assert j["status"] == "failed" and j["attempts"] == 1, (filters, j)
            assert call(s, "GET", "/api/jobs/%s/result" % jid, key(1)).status == 409
        r = call(s, "POST", "/api/jobs", key(1), {"type": "export_deals", "payload": {"filters": []}})
        jid = r.json()["data"]["id"]
        assert wait_job(s, key(1), jid, ["failed", "succeeded"])["status"] == "failed"
        jid, j = export(s, key(1), {"status": "open"})
        assert j["status"] == "succeeded"
        for other in (key(2), key(2, "member")):
            assert call(s, "GET", "/api/jobs/%s" % jid, other).status == 404
            assert call(s, "GET", "/api/jobs/%s/result" % jid, other).status == 404
        # one copy: the stored members are this job's only
        n = psql("SELECT count(*) FROM job_files WHERE file_id = '%s' AND kind = 'result'" % jid)
        assert int(n) >= 1
        assert psql("SELECT DISTINCT org_id FROM job_files WHERE file_id = '%s'" % jid) == "1"
