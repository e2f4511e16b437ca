"""The read half of API.md's Resources through the real server against seeded PostgreSQL:
lists, filters, sorts, full-text search, keyset cursors in both directions (also while rows
are inserted and deleted between pages), sealed and bound cursors, tenant isolation,
includeStats / includeRelationships, GET one, and 400/401/404 answers. Every expectation is
read from the database independently with psql, never through the server."""
import json
import os
import subprocess
import time
import urllib.parse

from lib import CRMD, ROOT, Server, Skip, http_get, seed_keys

DB = os.environ.get("DATABASE_URL")
srv = None
keys = None
ORG = None    # the organization most tests read (unlimited tier: no rate limit)
OTHER = None  # another organization, for isolation

RESOURCES = ["companies", "contacts", "deals", "activities", "tasks", "stages", "users"]

# per resource: the SQL key of each allowed sort (a list of expressions)
SORTS = {
    "companies": {"name": ["name"], "created_at": ["created_at"], "updated_at": ["updated_at"]},
    "contacts": {"name": ["last_name", "first_name"], "created_at": ["created_at"], "updated_at": ["updated_at"]},
    "deals": {"name": ["name"], "created_at": ["created_at"], "updated_at": ["updated_at"], "value": ["value"],
              "expected_close_date": ["expected_close_date"]},
    "activities": {"created_at": ["created_at"], "occurred_at": ["occurred_at"]},
    "tasks": {"name": ["title"], "created_at": ["created_at"], "due_at": ["due_at"]},
    "stages": {"position": ["position"], "name": ["name"], "created_at": ["created_at"]},
    "users": {"name": ["name"], "created_at": ["created_at"]},
}
DEFAULT_SORT = {"stages": "position", "users": "name"}
SEARCHABLE = {"companies", "contacts", "deals", "activities"}


def psql(sql):
    """Rows of sql, each a list of column texts (unit-separator split: values may hold "|")."""
    out = subprocess.run(["psql", DB, "-AtqX", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("\x1f") for line in out.stdout.splitlines() if line != ""]


def psql_ids(sql):
    return [int(r[0]) for r in psql(sql)]


def lit(v):
    return "'" + str(v).replace("'", "''") + "'"


def setup_module():
    global srv, keys, ORG, OTHER
    if not DB:
        raise Skip("DATABASE_URL not set (run through tests/run, which starts dev/stack)")
    keys = seed_keys("read")
    ORG = next(k["org_id"] for k in keys if k["tier"] == "unlimited")
    OTHER = next(k["org_id"] for k in keys if k["org_id"] != ORG and k["tier"] in ("professional", "enterprise"))
    srv = Server(env={"DATABASE_URL": DB, "PAGINATION_KEY": "test-key"})
    end = time.time() + 15
    while time.time() < end and http_get(srv, "/api/health/ready").status != 200:
        time.sleep(0.1)


def teardown_module():
    if srv:
        srv.stop()


def key(org, role="admin"):
    return next(k["key"] for k in keys if k["org_id"] == org and k["role"] == role)


def get(path, k=None, params=None):
    if params:
        path += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
    headers = {"Authorization": "Bearer " + (k or key(ORG))}
    for _ in range(50):
        r = http_get(srv, path, headers)
        if r.status != 429:
            return r
        time.sleep(float(r.header("retry-after") or 1))
    return r


def get_ok(path, k=None, params=None):
    r = get(path, k, params)
    assert r.status == 200, (path, params, r.status, r.body[:500])
    assert r.header("content-type").startswith("application/json")
    return r.json()


def walk(resource, params, k=None, limit=200):
    """Follows next_cursor to the end; returns (ids in order, pages)."""
    params = dict(params, limit=limit)
    pages = [get_ok("/api/" + resource, k, params)]
    assert pages[0]["pagination"]["has_prev"] is False and pages[0]["pagination"]["prev_cursor"] is None
    while pages[-1]["pagination"]["has_next"]:
        p = pages[-1]["pagination"]
        assert p["next_cursor"]
        pages.append(get_ok("/api/" + resource, k, dict(params, cursor=p["next_cursor"])))
        assert len(pages) < 1000
    assert pages[-1]["pagination"]["next_cursor"] is None
    ids = [row["id"] for page in pages for row in page["data"]]
    for page in pages:
        assert len(page["data"]) <= limit
        assert page["pagination"]["limit"] == limit
    return ids, pages


def walk_back(resource, params, start_cursor, k=None, limit=200):
    """Follows prev_cursor from start_cursor to the beginning; returns the ids in listing order."""
    params = dict(params, limit=limit)
    chunks = []
    cursor = start_cursor
    while cursor:
        page = get_ok("/api/" + resource, k, dict(params, cursor=cursor))
        assert page["pagination"]["has_next"] is True
        chunks.insert(0, [row["id"] for row in page["data"]])
        cursor = page["pagination"]["prev_cursor"] if page["pagination"]["has_prev"] else None
        assert len(chunks) < 1000
    return [i for c in chunks for i in c]


def order_sql(exprs, desc):
    d = " DESC" if desc else " ASC"
    return ", ".join(e + d for e in exprs) + ", id" + d


def expected(resource, org, where="true", sort=None):
    sort = sort or DEFAULT_SORT.get(resource, "-created_at")
    desc = sort.startswith("-")
    exprs = SORTS[resource][sort.lstrip("-")]
    return psql_ids("SELECT id FROM %s WHERE org_id = %d AND (%s) ORDER BY %s"
                    % (resource, org, where, order_sql(exprs, desc)))


def most_common(table, col, org, extra="true"):
    rows = psql("SELECT %s FROM %s WHERE org_id = %d AND %s IS NOT NULL AND %s GROUP BY 1 ORDER BY count(*) DESC, 1 "
                "LIMIT 1" % (col, table, org, col, extra))
    return rows[0][0]


def median(table, col, org):
    return psql("SELECT %s FROM %s WHERE org_id = %d AND %s IS NOT NULL ORDER BY %s OFFSET "
                "(SELECT count(*) / 2 FROM %s WHERE org_id = %d) LIMIT 1" % (col, table, org, col, col, table, org))[0][0]


# ---- lists, sorts, filters ----

def test_every_sort_of_every_resource_matches_sql():
    for res in RESOURCES:
        for name in SORTS[res]:
            for sort in (name, "-" + name):
                want = expected(res, ORG, sort=sort)
                assert want, (res, sort)
                got, _ = walk(res, {"sort": sort}, limit=200 if res == "activities" else 7)
                assert got == want, (res, sort, got[:20], want[:20])


def test_default_sort_and_limit():
    for res in RESOURCES:
        body = get_ok("/api/" + res)
        want = expected(res, ORG)
        assert [r["id"] for r in body["data"]] == want[:50], res
        assert body["pagination"]["limit"] == 50
        assert body["pagination"]["has_next"] == (len(want) > 50)
        assert body["pagination"]["has_prev"] is False
        assert set(body) == {"data", "pagination"}
        assert set(body["pagination"]) == {"limit", "has_next", "has_prev", "next_cursor", "prev_cursor"}


def filter_cases():
    """(resource, params, SQL condition) for every filter of API.md, with values from the data."""
    o = ORG
    owner = {t: most_common(t, "owner_id", o) for t in ["companies", "contacts", "deals", "activities", "tasks"]}
    mid_value = median("deals", "value", o)
    mid_close = median("deals", "expected_close_date", o)
    mid_occ = median("activities", "occurred_at::date", o)
    mid_due = median("tasks", "due_at::date", o)
    industry = most_common("companies", "industry", o)
    size = most_common("companies", "size", o)
    cases = [(t, {"ownerId": owner[t]}, "owner_id = %s" % owner[t]) for t in owner]
    cases += [
        ("companies", {"industry": industry}, "industry = %s" % lit(industry)),
        ("companies", {"size": size}, "size = %s" % lit(size)),
        ("companies", {"industry": industry, "size": size, "ownerId": owner["companies"]},
         "industry = %s AND size = %s AND owner_id = %s" % (lit(industry), lit(size), owner["companies"])),
        ("contacts", {"companyId": most_common("contacts", "company_id", o)},
         "company_id = %s" % most_common("contacts", "company_id", o)),
        ("deals", {"stageId": most_common("deals", "stage_id", o)}, "stage_id = %s" % most_common("deals", "stage_id", o)),
        ("deals", {"status": "open"}, "status = 'open'"),
        ("deals", {"status": "won"}, "status = 'won'"),
        ("deals", {"status": "lost"}, "status = 'lost'"),
        ("deals", {"companyId": most_common("deals", "company_id", o)},
         "company_id = %s" % most_common("deals", "company_id", o)),
        ("deals", {"minValue": mid_value}, "value >= %s" % mid_value),
        ("deals", {"maxValue": mid_value}, "value <= %s" % mid_value),
        ("deals", {"closingAfter": mid_close}, "expected_close_date >= %s" % lit(mid_close)),
        ("deals", {"closingBefore": mid_close}, "expected_close_date <= %s" % lit(mid_close)),
        ("deals", {"status": "open", "minValue": "1000.50", "closingAfter": mid_close},
         "status = 'open' AND value >= 1000.50 AND expected_close_date >= %s" % lit(mid_close)),
        ("activities", {"type": "call"}, "type = 'call'"),
        ("activities", {"type": "demo"}, "type = 'demo'"),
        ("activities", {"dealId": most_common("activities", "deal_id", o)},
         "deal_id = %s" % most_common("activities", "deal_id", o)),
        ("activities", {"companyId": most_common("activities", "company_id", o)},
         "company_id = %s" % most_common("activities", "company_id", o)),
        ("activities", {"contactId": most_common("activities", "contact_id", o)},
         "contact_id = %s" % most_common("activities", "contact_id", o)),
        ("activities", {"since": mid_occ}, "occurred_at >= %s::timestamptz" % lit(mid_occ + "T00:00:00Z")),
        ("activities", {"until": mid_occ}, "occurred_at < %s::timestamptz" % lit(mid_occ + "T00:00:00Z")),
        ("activities", {"since": mid_occ + "T12:00:00+02:00", "until": mid_occ + "T23:30:00Z", "type": "email"},
         "occurred_at >= %s AND occurred_at < %s AND type = 'email'"
         % (lit(mid_occ + "T12:00:00+02:00"), lit(mid_occ + "T23:30:00Z"))),
        ("tasks", {"status": "open"}, "status = 'open'"),
        ("tasks", {"status": "done"}, "status = 'done'"),
        ("tasks", {"dueBefore": mid_due}, "due_at < %s::timestamptz" % lit(mid_due + "T00:00:00Z")),
        ("tasks", {"dealId": most_common("tasks", "deal_id", o)}, "deal_id = %s" % most_common("tasks", "deal_id", o)),
    ]
    return cases


def test_every_filter_matches_sql():
    for res, params, where in filter_cases():
        want = expected(res, ORG, where)
        assert want, (res, params, "the seed gives no rows for this filter")
        got, _ = walk(res, params, limit=25)
        assert got == want, (res, params, got[:10], want[:10])
        # the same filter under another sort
        sort = list(SORTS[res])[0]
        got, _ = walk(res, dict(params, sort=sort), limit=200)
        assert got == expected(res, ORG, where, sort), (res, params, sort)


def test_filter_value_with_no_rows_is_empty():
    body = get_ok("/api/deals", params={"minValue": "99999999999"})
    assert body["data"] == [] and body["pagination"]["has_next"] is False
    assert body["pagination"]["next_cursor"] is None and body["pagination"]["prev_cursor"] is None


# ---- cursors ----

def test_cursor_walk_forward_then_backward():
    for res, params in [("companies", {}), ("contacts", {"sort": "name"}), ("deals", {"sort": "-value"}),
                        ("deals", {"sort": "expected_close_date", "status": "open"}),
                        ("tasks", {"sort": "due_at"}), ("activities", {"sort": "-occurred_at", "type": "call"}),
                        ("stages", {}), ("users", {"sort": "-created_at"})]:
        where = " AND ".join("%s = %s" % (k, lit(v)) for k, v in params.items() if k != "sort") or "true"
        want = expected(res, ORG, where, params.get("sort"))
        ids, pages = walk(res, params, limit=6)
        assert ids == want, (res, params)
        assert len(set(ids)) == len(ids)
        last = pages[-1]["pagination"]
        if len(pages) > 1:
            assert last["has_prev"] is True and last["prev_cursor"]
            back = walk_back(res, params, last["prev_cursor"], limit=6)
            assert back + [r["id"] for r in pages[-1]["data"]] == want, (res, params)


def test_backward_pages_mirror_forward_pages():
    ids, pages = walk("companies", {"sort": "name"}, limit=4)
    # prev_cursor of page i leads to exactly page i-1
    for i in range(1, len(pages)):
        p = get_ok("/api/companies", params={"sort": "name", "limit": 4, "cursor": pages[i]["pagination"]["prev_cursor"]})
        assert [r["id"] for r in p["data"]] == [r["id"] for r in pages[i - 1]["data"]]
        assert p["pagination"]["has_prev"] == (i - 1 > 0)
        assert p["pagination"]["has_next"] is True
    # next_cursor from a backward page continues forward
    p = get_ok("/api/companies", params={"sort": "name", "limit": 4, "cursor": pages[2]["pagination"]["prev_cursor"]})
    n = get_ok("/api/companies", params={"sort": "name", "limit": 4, "cursor": p["pagination"]["next_cursor"]})
    assert [r["id"] for r in n["data"]] == [r["id"] for r in pages[2]["data"]]


def test_null_sort_values_page_in_both_directions():
    company = psql("SELECT id FROM companies WHERE org_id = %d LIMIT 1" % ORG)[0][0]
    stage = psql("SELECT id FROM stages WHERE org_id = %d LIMIT 1" % ORG)[0][0]
    made = psql_ids("INSERT INTO deals (org_id, company_id, stage_id, name, value) SELECT %d, %s, %s, 'null date ' || g, g "
                    "FROM generate_series(1, 5) g RETURNING id" % (ORG, company, stage))
    try:
        for sort in ("expected_close_date", "-expected_close_date"):
            want = expected("deals", ORG, sort=sort)
            ids, pages = walk("deals", {"sort": sort}, limit=3)
            assert ids == want, sort
            back = walk_back("deals", {"sort": sort}, pages[-1]["pagination"]["prev_cursor"], limit=3)
            assert back + [r["id"] for r in pages[-1]["data"]] == want
    finally:
        psql("DELETE FROM deals WHERE id IN (%s)" % ",".join(map(str, made)))


def test_pages_stay_consistent_under_inserts_and_deletes():
    base = "SELECT id FROM contacts WHERE org_id = %d ORDER BY created_at DESC, id DESC" % ORG
    original = psql_ids(base)
    company = psql("SELECT id FROM companies WHERE org_id = %d LIMIT 1" % ORG)[0][0]
    inserted, deleted, seen = [], set(), []
    params = {"limit": 9}
    page = get_ok("/api/contacts", params=params)
    try:
        n = 0
        while True:
            seen += [r["id"] for r in page["data"]]
            # new rows at both ends of the order, and deletes of rows not seen yet
            inserted += psql_ids("INSERT INTO contacts (org_id, company_id, first_name, last_name, created_at) VALUES "
                                 "(%d, %s, 'New', 'Front%d', now()), (%d, %s, 'Old', 'Back%d', now() - interval '30 years')"
                                 " RETURNING id" % (ORG, company, n, ORG, company, n))
            ahead = [i for i in original if i not in seen and i not in deleted]
            if len(ahead) > 3:
                victim = ahead[len(ahead) // 2]
                psql("DELETE FROM contacts WHERE id = %d" % victim)
                deleted.add(victim)
            if not page["pagination"]["has_next"]:
                break
            page = get_ok("/api/contacts", params=dict(params, cursor=page["pagination"]["next_cursor"]))
            n += 1
        assert len(seen) == len(set(seen)), "a row was repeated"
        survivors = [i for i in original if i not in deleted]
        assert [i for i in seen if i in set(original)] == survivors, "a row was skipped"
        assert not (set(seen) & deleted)
        # backwards from the last page, still while rows change
        back, cursor = [], page["pagination"]["prev_cursor"]
        while cursor:
            p = get_ok("/api/contacts", params=dict(params, cursor=cursor))
            back = [r["id"] for r in p["data"]] + back
            inserted += psql_ids("INSERT INTO contacts (org_id, first_name, last_name, created_at) VALUES "
                                 "(%d, 'Back', 'Walk', now()) RETURNING id" % ORG)
            cursor = p["pagination"]["prev_cursor"] if p["pagination"]["has_prev"] else None
        assert len(back) == len(set(back))
        assert [i for i in back if i in set(original)] == survivors
    finally:
        if inserted:
            psql("DELETE FROM contacts WHERE id IN (%s)" % ",".join(map(str, inserted)))


def first_cursor(res, params, k=None):
    body = get_ok("/api/" + res, k, dict(params, limit=2))
    assert body["pagination"]["next_cursor"], (res, params)
    return body["pagination"]["next_cursor"]


def assert_invalid_cursor(res, params, k=None):
    r = get("/api/" + res, k, params)
    assert r.status == 400, (res, params, r.status, r.body[:300])
    assert r.header("content-type").startswith("application/problem+json")
    body = r.json()
    assert body["type"] == "/problems/invalid-cursor" and body["status"] == 400


def test_tampered_cursors_are_400():
    c = first_cursor("companies", {})
    for i in (0, len(c) // 2, len(c) - 1):
        ch = "A" if c[i] != "A" else "B"
        assert_invalid_cursor("companies", {"cursor": c[:i] + ch + c[i + 1:]})
    assert_invalid_cursor("companies", {"cursor": c[:-4]})
    assert_invalid_cursor("companies", {"cursor": c + "AA"})
    assert_invalid_cursor("companies", {"cursor": "garbage"})
    assert_invalid_cursor("companies", {"cursor": "!!!!"})
    assert "2026" not in c and "created" not in c


def test_foreign_and_mismatched_cursors_are_400():
    c = first_cursor("companies", {})
    assert_invalid_cursor("companies", {"cursor": c}, key(OTHER))             # another organization
    assert_invalid_cursor("contacts", {"cursor": c})                         # another resource
    assert_invalid_cursor("companies", {"cursor": c, "sort": "name"})        # another sort
    assert_invalid_cursor("companies", {"cursor": c, "sort": "created_at"})  # another direction
    assert_invalid_cursor("companies", {"cursor": c, "size": "11-50"})       # another filter
    assert_invalid_cursor("companies", {"cursor": c, "q": "blue"})           # a search
    owner = most_common("companies", "owner_id", ORG)
    c2 = first_cursor("companies", {"ownerId": owner})
    assert_invalid_cursor("companies", {"cursor": c2})                       # filter dropped
    other_owner = psql("SELECT id FROM users WHERE org_id = %d AND id <> %s LIMIT 1" % (ORG, owner))[0][0]
    assert_invalid_cursor("companies", {"cursor": c2, "ownerId": other_owner})
    assert get("/api/companies", params={"cursor": c2, "ownerId": owner}).status == 200
    assert get("/api/companies", params={"cursor": c, "sort": "-created_at", "limit": 3}).status == 200


# ---- search ----

def search_word(table, col, org):
    return psql("SELECT lower(split_part(%s, ' ', 1)) FROM %s WHERE org_id = %d GROUP BY 1 ORDER BY count(*) DESC, 1 "
                "LIMIT 1" % (col, table, org))[0][0]


def test_search_returns_matching_rows_by_relevance():
    cases = [("companies", search_word("companies", "name", ORG)), ("contacts", search_word("contacts", "last_name", ORG)),
             ("deals", search_word("deals", "name", ORG)), ("activities", search_word("activities", "subject", ORG))]
    for res, word in cases:
        want = psql_ids("SELECT id FROM %s WHERE org_id = %d AND search @@ websearch_to_tsquery('simple', %s) "
                        "ORDER BY ts_rank(search, websearch_to_tsquery('simple', %s)) DESC, id DESC"
                        % (res, ORG, lit(word), lit(word)))
        assert want, (res, word)
        ids, pages = walk(res, {"q": word}, limit=200)
        assert ids == want, (res, word, ids[:10], want[:10])
        small, spages = walk(res, {"q": word}, limit=3)
        assert small == want
        if len(spages) > 1:
            back = walk_back(res, {"q": word}, spages[-1]["pagination"]["prev_cursor"], limit=3)
            assert back + [r["id"] for r in spages[-1]["data"]] == want
        # q with an explicit sort filters by q and keeps the sort
        got, _ = walk(res, {"q": word, "sort": "-created_at"}, limit=200)
        assert got == expected(res, ORG, "search @@ websearch_to_tsquery('simple', %s)" % lit(word), "-created_at")
    body = get_ok("/api/companies", params={"q": "zzqqxxnotaword"})
    assert body["data"] == []


def test_search_text_appears_in_results():
    word = search_word("companies", "name", ORG)
    for row in get_ok("/api/companies", params={"q": word, "limit": 200})["data"]:
        assert word in (row["name"] + " " + (row["domain"] or "")).lower()


# ---- tenants ----

def test_other_organizations_rows_are_invisible():
    mine, theirs = key(ORG), key(OTHER)
    for res in RESOURCES:
        other_ids = psql_ids("SELECT id FROM %s WHERE org_id = %d ORDER BY id LIMIT 3" % (res, OTHER))
        for i in other_ids:
            r = get("/api/%s/%d" % (res, i), mine)
            assert r.status == 404, (res, i, r.status)
            assert r.json()["type"] == "/problems/not-found"
        ids, _ = walk(res, {}, mine)
        own = set(psql_ids("SELECT id FROM %s WHERE org_id = %d" % (res, ORG)))
        assert set(ids) == own, res
    # filters naming another organization's rows find nothing
    other_owner = psql("SELECT id FROM users WHERE org_id = %d LIMIT 1" % OTHER)[0][0]
    other_company = psql("SELECT id FROM companies WHERE org_id = %d LIMIT 1" % OTHER)[0][0]
    for res, params in [("companies", {"ownerId": other_owner}), ("deals", {"companyId": other_company}),
                        ("contacts", {"companyId": other_company}), ("activities", {"companyId": other_company})]:
        assert get_ok("/api/" + res, mine, params)["data"] == [], (res, params)
    # search for a word only the other organization has
    word = psql("SELECT w FROM (SELECT lower(split_part(name, ' ', 3)) w, org_id FROM companies) s WHERE w <> '' "
                "GROUP BY w HAVING bool_and(org_id = %d) LIMIT 1" % OTHER)
    if word:
        assert get_ok("/api/companies", mine, {"q": word[0][0]})["data"] == []
        assert get_ok("/api/companies", theirs, {"q": word[0][0]})["data"] != []
    # the other organization's key sees exactly its own rows
    ids, _ = walk("deals", {}, theirs)
    assert set(ids) == set(psql_ids("SELECT id FROM deals WHERE org_id = %d" % OTHER))


def test_no_key_is_401():
    for path in ["/api/companies", "/api/deals/1", "/api/users"]:
        r = http_get(srv, path)
        assert r.status == 401, (path, r.status)
        assert r.header("www-authenticate").startswith("Bearer")
        r = http_get(srv, path, {"Authorization": "Bearer crmd_AAAAAAAA_notarealkeynotarealkeynotarealkey"})
        assert r.status == 401


# ---- bad input ----

def assert_400(res, params, field):
    r = get("/api/" + res, params=params) if isinstance(params, dict) else get("/api/" + res + params)
    assert r.status == 400, (res, params, r.status, r.body[:300])
    assert r.header("content-type").startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 400 and body["request_id"] == r.header("x-request-id")
    fields = [e["field"] for e in body["errors"]]
    assert field in fields, (res, params, body)
    assert all(e["message"] for e in body["errors"])
    assert "SELECT" not in r.body.decode() and "sql" not in r.body.decode().lower()


def test_bad_parameters_are_400_with_errors():
    cases = [
        ("companies", {"limit": "0"}, "limit"), ("companies", {"limit": "201"}, "limit"),
        ("companies", {"limit": "ten"}, "limit"), ("companies", {"limit": ""}, "limit"),
        ("companies", {"ownerId": "-1"}, "ownerId"), ("companies", {"ownerId": "abc"}, "ownerId"),
        ("companies", {"ownerId": "99999999999999999999"}, "ownerId"),
        ("companies", {"size": "huge"}, "size"), ("companies", {"includeStats": "yes"}, "includeStats"),
        ("companies", {"sort": "value"}, "sort"), ("companies", {"sort": "bogus"}, "sort"),
        ("companies", {"sort": "--name"}, "sort"), ("companies", {"bogus": "1"}, "bogus"),
        ("companies", {"q": ""}, "q"), ("companies", {"q": "x" * 201}, "q"),
        ("deals", {"status": "closed"}, "status"), ("deals", {"minValue": "abc"}, "minValue"),
        ("deals", {"maxValue": "1e9"}, "maxValue"), ("deals", {"closingAfter": "2026-13-01"}, "closingAfter"),
        ("deals", {"closingBefore": "2026-02-30"}, "closingBefore"),
        ("deals", {"includeRelationships": "1"}, "includeRelationships"),
        ("activities", {"type": "fax"}, "type"), ("activities", {"since": "yesterday"}, "since"),
        ("activities", {"until": "2026-01-01T25:00:00Z"}, "until"), ("activities", {"dealId": "0"}, "dealId"),
        ("tasks", {"status": "open2"}, "status"), ("tasks", {"dueBefore": "soon"}, "dueBefore"),
        ("tasks", {"q": "call"}, "q"), ("tasks", {"sort": "updated_at"}, "sort"),
        ("stages", {"ownerId": "1"}, "ownerId"), ("users", {"includeStats": "true"}, "includeStats"),
        ("contacts", {"companyId": "1.5"}, "companyId"), ("contacts", {"industry": "x"}, "industry"),
    ]
    for res, params, field in cases:
        assert_400(res, params, field)
    assert_400("companies", "?limit=5&limit=6", "limit")
    assert_400("companies", "?name=%zz", "name")
    r = get("/api/companies/abc")
    assert r.status == 400
    r = get("/api/companies/1?bogus=1")
    assert r.status == 400
    for res in RESOURCES:
        r = get("/api/%s/%d" % (res, 2 ** 62))
        assert r.status == 404, res


# ---- extras and single rows ----

def test_include_stats_matches_sql():
    want = {int(r[0]): (int(r[1]), int(r[2]), float(r[3])) for r in psql(
        "SELECT c.id, (SELECT count(*) FROM contacts x WHERE x.org_id = c.org_id AND x.company_id = c.id), "
        "(SELECT count(*) FROM deals d WHERE d.org_id = c.org_id AND d.company_id = c.id), "
        "(SELECT coalesce(sum(value), 0) FROM deals d WHERE d.org_id = c.org_id AND d.company_id = c.id "
        "AND d.status = 'open') FROM companies c WHERE c.org_id = %d" % ORG)}
    ids, pages = walk("companies", {"includeStats": "true"}, limit=7)
    assert set(ids) == set(want)
    for page in pages:
        for row in page["data"]:
            assert (row["contact_count"], row["deal_count"], row["deals_value"]) == want[row["id"]], row
    plain = get_ok("/api/companies", params={"includeStats": "false", "limit": 1})["data"][0]
    assert "contact_count" not in plain
    one = get_ok("/api/companies/%d" % ids[0], params={"includeStats": "true"})["data"]
    assert (one["contact_count"], one["deal_count"], one["deals_value"]) == want[ids[0]]


def test_include_relationships_matches_sql():
    want = {int(r[0]): r[1:] for r in psql(
        "SELECT d.id, co.id, co.name, st.id, st.name, st.color, ct.id, ct.first_name, ct.last_name FROM deals d "
        "JOIN companies co ON co.id = d.company_id JOIN stages st ON st.id = d.stage_id "
        "LEFT JOIN contacts ct ON ct.id = d.contact_id WHERE d.org_id = %d" % ORG)}
    ids, pages = walk("deals", {"includeRelationships": "true", "sort": "value"}, limit=11)
    assert ids == expected("deals", ORG, sort="value")
    for page in pages:
        for row in page["data"]:
            w = want[row["id"]]
            assert row["company"] == {"id": int(w[0]), "name": w[1]}
            assert row["stage"] == {"id": int(w[2]), "name": w[3], "color": w[4]}
            if w[5] == "":
                assert row["contact"] is None
            else:
                assert row["contact"] == {"id": int(w[5]), "first_name": w[6], "last_name": w[7]}
            assert row["company_id"] == row["company"]["id"] and row["stage_id"] == row["stage"]["id"]
    one = get_ok("/api/deals/%d" % ids[0], params={"includeRelationships": "true"})["data"]
    assert one["company"]["id"] == int(want[ids[0]][0])


TS = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
FIELDS = {
    "users": [("id", "id"), ("name", "name"), ("email", "email"), ("role", "role"), ("created_at", TS % "created_at")],
    "stages": [("id", "id"), ("name", "name"), ("color", "color"), ("position", "position"),
               ("probability", "probability"), ("kind", "kind")],
    "companies": [("id", "id"), ("owner_id", "owner_id"), ("name", "name"), ("domain", "domain"),
                  ("industry", "industry"), ("size", "size"), ("website", "website"),
                  ("created_at", TS % "created_at"), ("updated_at", TS % "updated_at")],
    "contacts": [("id", "id"), ("company_id", "company_id"), ("owner_id", "owner_id"), ("first_name", "first_name"),
                 ("last_name", "last_name"), ("email", "email"), ("phone", "phone"), ("title", "title"),
                 ("created_at", TS % "created_at"), ("updated_at", TS % "updated_at")],
    "deals": [("id", "id"), ("owner_id", "owner_id"), ("company_id", "company_id"), ("contact_id", "contact_id"),
              ("name", "name"), ("value", "value"), ("stage_id", "stage_id"), ("probability", "probability"),
              ("expected_close_date", "expected_close_date"), ("status", "status"),
              ("created_at", TS % "created_at"), ("updated_at", TS % "updated_at"), ("closed_at", TS % "closed_at")],
    "activities": [("id", "id"), ("owner_id", "owner_id"), ("company_id", "company_id"), ("contact_id", "contact_id"),
                   ("deal_id", "deal_id"), ("type", "type"), ("subject", "subject"), ("body", "body"),
                   ("occurred_at", TS % "occurred_at"), ("created_at", TS % "created_at")],
    "tasks": [("id", "id"), ("owner_id", "owner_id"), ("company_id", "company_id"), ("deal_id", "deal_id"),
              ("title", "title"), ("priority", "priority"), ("status", "status"), ("due_at", TS % "due_at"),
              ("created_at", TS % "created_at"), ("completed_at", TS % "completed_at")],
}
NUMERIC = {"id", "owner_id", "company_id", "contact_id", "deal_id", "stage_id", "position", "probability"}


def sql_row(res, i):
    cols = FIELDS[res]
    sel = ", ".join("%s IS NULL, (%s)::text" % (e, e) for _, e in cols)
    r = psql("SELECT %s FROM %s WHERE org_id = %d AND id = %d" % (sel, res, ORG, i))[0]
    out = {}
    for n, (name, _) in enumerate(cols):
        isnull, v = r[2 * n] == "t", r[2 * n + 1]
        out[name] = None if isnull else int(v) if name in NUMERIC else float(v) if name == "value" else v
    return out


def test_get_one_matches_sql_exactly():
    for res in RESOURCES:
        ids = psql_ids("SELECT id FROM %s WHERE org_id = %d ORDER BY random() LIMIT 5" % (res, ORG))
        for i in ids:
            r = get("/api/%s/%d" % (res, i))
            assert r.status == 200
            body = r.json()
            assert set(body) == {"data"}
            assert body["data"] == sql_row(res, i), (res, i)
        # list rows carry the same fields, never org_id or the search vector
        row = get_ok("/api/" + res, params={"limit": 1})["data"][0]
        assert list(row) == [n for n, _ in FIELDS[res]], res
        assert row == sql_row(res, row["id"])


def test_money_has_at_most_two_decimals():
    rows = psql("SELECT id, value::text FROM deals WHERE org_id = %d" % ORG)
    want = {int(i): v for i, v in rows}
    ids, pages = walk("deals", {}, limit=200)
    for page in pages:
        raw = json.dumps(page)
        for row in page["data"]:
            assert abs(row["value"] - float(want[row["id"]])) < 1e-9
            s = repr(row["value"])
            assert "." not in s or len(s.split(".")[1]) <= 2
        assert "e+" not in raw


def test_head_returns_get_headers_only():
    from lib import Conn
    with Conn(srv) as c:
        r = c.request("HEAD", "/api/companies?limit=3", {"Authorization": "Bearer " + key(ORG)})
        assert r.status == 200 and r.body == b""
        assert int(r.header("content-length")) > 0


def test_many_filter_combinations_fall_back_to_one_generic_statement():
    """Every filter set x sort would be tens of thousands of statement texts: past a budget the
    server uses one text with optional filters, which must answer the same rows. (Runs last: it
    spends the budget of this server process.)"""
    values = {"ownerId": most_common("deals", "owner_id", ORG), "stageId": most_common("deals", "stage_id", ORG),
              "status": "open", "companyId": most_common("deals", "company_id", ORG), "minValue": "10",
              "maxValue": "90000000", "closingAfter": "2000-01-01", "closingBefore": "2100-01-01"}
    names = list(values)
    sorts = [s for n in SORTS["deals"] for s in (n, "-" + n)]
    for mask in range(1, 1 << len(names)):
        params = {n: values[n] for i, n in enumerate(names) if mask & (1 << i)}
        for sort in sorts:
            r = get("/api/deals", params=dict(params, sort=sort, limit=1))
            assert r.status == 200, (params, sort, r.status, r.body[:300])
    word = search_word("deals", "name", ORG)
    conds = {"ownerId": "owner_id = %s" % values["ownerId"], "stageId": "stage_id = %s" % values["stageId"],
             "status": "status = 'open'", "companyId": "company_id = %s" % values["companyId"],
             "minValue": "value >= 10", "maxValue": "value <= 90000000",
             "closingAfter": "expected_close_date >= '2000-01-01'", "closingBefore": "expected_close_date <= '2100-01-01'"}
    for subset in (["ownerId"], ["status", "minValue"], ["companyId", "closingAfter", "maxValue"], names):
        params = {n: values[n] for n in subset}
        where = " AND ".join(conds[n] for n in subset)
        for sort in ("-value", "expected_close_date"):
            got, _ = walk("deals", dict(params, sort=sort, q=word), limit=2)
            want = expected("deals", ORG, where + " AND search @@ websearch_to_tsquery('simple', %s)" % lit(word), sort)
            assert got == want, (params, sort)
        got, _ = walk("deals", dict(params, q=word), limit=2)
        want = psql_ids("SELECT id FROM deals WHERE org_id = %d AND %s AND search @@ websearch_to_tsquery('simple', %s) "
                        "ORDER BY ts_rank(search, websearch_to_tsquery('simple', %s)) DESC, id DESC"
                        % (ORG, where, lit(word), lit(word)))
        assert got == want, params
