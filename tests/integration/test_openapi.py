"""GET /api/openapi.json against the real server: served without a key, cacheable, lint-clean
(@redocly/cli from tools/, installed by ./configure --install-deps), and true: every row the
server returns for every resource (plain and with its extras) validates against the described
shape, every create body built from the described Create schema (required members only, then
every member) is accepted, every member broken by its described rule (too long, not in the
enum, below the minimum, wrong type) is refused with 422 naming it, and every problem type the
sources can send is listed."""
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.parse
import zlib

from lib import ROOT, Conn, Server, Skip, http_get, seed_keys

DB = os.environ.get("DATABASE_URL")
REDOCLY = os.path.join(ROOT, "tools", "node_modules", ".bin", "redocly")
srv = None
spec = None
key = None


def setup_module():
    global srv, spec, key
    if not DB:
        raise Skip("DATABASE_URL not set (run through tests/run, which starts dev/stack)")
    keys = seed_keys("openapi")
    key = next(k["key"] for k in keys if k["tier"] == "unlimited" and k["role"] == "admin")
    srv = Server(env={"DATABASE_URL": DB, "PAGINATION_KEY": "test-key"})
    end = time.time() + 15
    while time.time() < end and http_get(srv, "/api/health/ready").status != 200:
        time.sleep(0.1)
    r = http_get(srv, "/api/openapi.json")
    assert r.status == 200, r
    spec = r.json()


def teardown_module():
    if srv:
        srv.stop()


def call(method, path, body=None, params=None):
    if params:
        path += "?" + urllib.parse.urlencode(params)
    h = {"X-API-Key": key}
    data = None
    if body is not None:
        h["Content-Type"] = "application/json"
        data = json.dumps(body)
    with Conn(srv) as c:
        return c.request(method, path, h, data)


# ---- a validator for the JSON Schema subset the description uses ----

def resolve(s):
    while "$ref" in s:
        parts = s["$ref"].lstrip("#/").split("/")
        s = spec
        for p in parts:
            s = s[p]
    return s


TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def type_ok(v, t):
    return {"null": v is None, "boolean": isinstance(v, bool),
            "integer": isinstance(v, int) and not isinstance(v, bool),
            "number": isinstance(v, (int, float)) and not isinstance(v, bool),
            "string": isinstance(v, str), "object": isinstance(v, dict), "array": isinstance(v, list)}[t]


def validate(v, s, where="$"):
    """Raises AssertionError naming the first place v breaks schema s."""
    s = resolve(s)
    if "anyOf" in s:
        errs = []
        for alt in s["anyOf"]:
            try:
                validate(v, alt, where)
                break
            except AssertionError as e:
                errs.append(str(e))
        else:
            raise AssertionError("%s: matches no alternative: %s" % (where, errs))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        assert any(type_ok(v, t) for t in types), "%s: %r is not %s" % (where, v, types)
    if "enum" in s:
        assert v in s["enum"], "%s: %r not in %s" % (where, v, s["enum"])
    if isinstance(v, str):
        fmt = s.get("format")
        if fmt == "date-time":
            assert TS.match(v), "%s: %r is not an RFC 3339 UTC timestamp" % (where, v)
        if fmt == "date":
            assert DATE.match(v), "%s: %r is not a date" % (where, v)
        assert len(v) <= s.get("maxLength", len(v)), where
    if type_ok(v, "number"):
        assert v >= s.get("minimum", v) and v <= s.get("maximum", v), "%s: %r out of range" % (where, v)
    if isinstance(v, dict):
        props = s.get("properties", {})
        for r in s.get("required", []):
            assert r in v, "%s: %s is missing" % (where, r)
        for k, x in v.items():
            if k in props:
                validate(x, props[k], where + "." + k)
            else:
                assert s.get("additionalProperties", True) is not False, "%s: %s is not described" % (where, k)
                if isinstance(s.get("additionalProperties"), dict):
                    validate(x, s["additionalProperties"], where + "." + k)
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            validate(x, s["items"], "%s[%d]" % (where, i))


def response_schema(path, method, status):
    op = spec["paths"][path][method]
    resp = resolve(op["responses"][str(status)])
    return resp["content"]["application/json"]["schema"]


# ---- the document ----

def test_served_without_key_and_cacheable():
    r = http_get(srv, "/api/openapi.json")
    assert r.status == 200
    assert r.header("content-type").startswith("application/json")
    assert r.header("etag") and r.header("x-request-id")
    assert r.header("x-content-type-options") == "nosniff"
    r2 = http_get(srv, "/api/openapi.json", {"If-None-Match": r.header("etag")})
    assert r2.status == 304 and r2.body == b""
    r3 = http_get(srv, "/api/openapi.json", {"Accept-Encoding": "gzip"})
    assert r3.status == 200 and r3.header("content-encoding") == "gzip"
    assert json.loads(zlib.decompress(r3.body, 16 + zlib.MAX_WBITS)) == spec
    assert r3.header("vary") == "Accept-Encoding"
    assert spec["openapi"] == "3.1.0"


def test_redocly_lint_has_no_errors():
    if not os.access(REDOCLY, os.X_OK):
        if os.environ.get("CI"):
            raise AssertionError("redocly is not installed: ./configure --install-deps installs tools/")
        raise Skip("redocly not installed (./configure --install-deps)")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        out = subprocess.run([REDOCLY, "lint", f.name, "--format=json"], capture_output=True, text=True,
                             timeout=180, env=dict(os.environ, REDOCLY_TELEMETRY="off",
                                                   REDOCLY_SUPPRESS_UPDATE_NOTICE="true"))
    finally:
        os.unlink(f.name)
    text = out.stdout
    report = json.loads(text[text.index("{"):]) if "{" in text else {}
    errors = [p for p in report.get("problems", []) if p.get("severity") == "error"]
    assert out.returncode == 0 and not errors, (out.returncode, errors[:5], out.stderr[-2000:])
    assert report.get("totals", {}).get("errors", 0) == 0


def test_every_route_the_api_md_lists_is_described():
    want = {
        ("/api/health", "get"), ("/api/health/live", "get"), ("/api/health/ready", "get"),
        ("/api/openapi.json", "get"), ("/api/me", "get"), ("/api/dashboard", "get"),
        ("/api/deals/pipeline-stats", "get"), ("/api/companies/{id}/analytics", "get"),
        ("/api/companies/{id}/deals-summary", "get"), ("/api/deals/bulk", "post"), ("/api/batch", "post"),
        ("/api/performance/clear-cache", "post"), ("/api/performance/stats", "get"),
        ("/api/performance/analysis", "get"),
    }
    for r in ("companies", "contacts", "deals", "activities", "tasks", "stages", "users"):
        want |= {("/api/" + r, "get"), ("/api/%s/{id}" % r, "get")}
        if r not in ("stages", "users"):
            want |= {("/api/" + r, "post"), ("/api/%s/{id}" % r, "patch"), ("/api/%s/{id}" % r, "delete")}
    have = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert want <= have, sorted(want - have)


def test_every_problem_type_the_sources_send_is_listed():
    listed = set(resolve({"$ref": "#/components/schemas/Problem"})["properties"]["type"]["enum"])
    codes = set()
    pat = re.compile(r'(?:respond_problem|problem)\([^;]*?"([a-z]+(?:-[a-z]+)*)"')
    for d in ("api", "http", "core"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for fn in files:
                if fn.endswith(".c"):
                    src = open(os.path.join(dirpath, fn)).read()
                    codes |= set(pat.findall(src))
                    codes |= set(re.findall(r'"/problems/([a-z-]+)"', src))
    assert len(codes) >= 15, codes
    missing = {"/problems/" + c for c in codes} - listed
    assert not missing, sorted(missing)


# ---- responses conform ----

RESOURCES = ["companies", "contacts", "deals", "activities", "tasks", "stages", "users"]


def extras_of(path):
    return [p["name"] for p in spec["paths"][path]["get"].get("parameters", [])
            if p.get("name") in ("includeStats", "includeRelationships")]


def test_every_row_of_every_resource_validates():
    checked = 0
    for res in RESOURCES:
        path = "/api/" + res
        for extra in [None] + extras_of(path):
            params = {"limit": 100}
            if extra:
                params[extra] = "true"
            r = call("GET", path, params=params)
            assert r.status == 200, (path, r)
            body = r.json()
            validate(body, response_schema(path, "get", 200), path)
            assert body["data"], path
            checked += len(body["data"])
            one = body["data"][0]["id"]
            r = call("GET", "%s/%d" % (path, one), params={extra: "true"} if extra else None)
            assert r.status == 200
            validate(r.json(), response_schema(path + "/{id}", "get", 200), path + "/{id}")
    assert checked > 300


def test_aggregates_validate():
    company = call("GET", "/api/companies", params={"limit": 1}).json()["data"][0]["id"]
    for path, real in [("/api/me", "/api/me"), ("/api/dashboard", "/api/dashboard"),
                       ("/api/deals/pipeline-stats", "/api/deals/pipeline-stats"),
                       ("/api/companies/{id}/analytics", "/api/companies/%d/analytics" % company),
                       ("/api/companies/{id}/deals-summary", "/api/companies/%d/deals-summary" % company),
                       ("/api/performance/stats", "/api/performance/stats"),
                       ("/api/performance/analysis", "/api/performance/analysis"),
                       ("/api/health", "/api/health?detailed=true")]:
        r = call("GET", real)
        assert r.status == 200, (real, r)
        validate(r.json(), response_schema(path, "get", 200), real)


def test_problem_bodies_validate():
    for method, path, body in [("GET", "/api/companies?limit=0", None), ("GET", "/api/companies/999999999", None),
                               ("POST", "/api/companies", {"nope": 1}), ("GET", "/api/nowhere", None)]:
        r = call(method, path, body)
        assert r.status >= 400
        assert r.header("content-type").startswith("application/problem+json")
        validate(r.json(), {"$ref": "#/components/schemas/Problem"}, path)


# ---- bodies built from the description ----

def ids_of(table):
    return [row["id"] for row in call("GET", "/api/" + table, params={"limit": 5}).json()["data"]]


def valid_value(name, s, refs):
    """A value meeting the described rule of member name."""
    s = resolve(s)
    types = s["type"] if isinstance(s["type"], list) else [s["type"]]
    t = next(t for t in types if t != "null")
    if "enum" in s:
        return next(e for e in s["enum"] if e is not None)
    if t == "integer" and "description" in s and s["description"].startswith("id of a "):
        singular = s["description"].split()[3]
        return refs[singular]
    if t == "integer":
        return s.get("minimum", 0) + 1 if s.get("maximum", 100) > 1 else 0
    if t == "number":
        return 1234.5
    if s.get("format") == "date-time":
        return "2026-03-01T10:00:00Z"
    if s.get("format") == "date":
        return "2026-03-01"
    if s.get("format") == "email":
        return "oa-%d-%s@example.com" % (time.time_ns(), name)
    return "oa %s %d" % (name, time.time_ns() % 100000)


def writable():
    return [(p[len("/api/"):], resolve(op["post"]["requestBody"]["content"]["application/json"]["schema"]))
            for p, op in spec["paths"].items()
            if "post" in op and re.fullmatch(r"/api/[a-z]+", p) and p not in ("/api/batch", "/api/jobs")]


def references():
    singular = {"companies": "company", "contacts": "contact", "deals": "deal", "stages": "stage",
                "users": "user"}
    return {singular[t]: ids_of(t)[0] for t in singular}


def test_create_bodies_built_from_the_description_are_accepted():
    refs = references()
    res = writable()
    assert len(res) == 5, [r for r, _ in res]
    for name, schema in res:
        props = schema["properties"]
        required = list(schema.get("required", []))
        if "anyOf" in schema:
            required.append(schema["anyOf"][0]["required"][0])
        # (1) required members only, (2) every member
        for members in (required, list(props)):
            body = {m: valid_value(m, props[m], refs) for m in members}
            r = call("POST", "/api/" + name, body)
            assert r.status == 201, (name, body, r.status, r.body[:400])
            row = r.json()
            validate(row, response_schema("/api/" + name, "post", 201), name)
            for m in members:
                if props[m].get("type") in ("number", ["number", "null"]):
                    assert float(row["data"][m]) == float(body[m]), (name, m)
                elif m in row["data"] and props[m].get("format") not in ("date-time",):
                    assert row["data"][m] == body[m], (name, m, row["data"][m], body[m])
            # and PATCH with one member of the Update schema
            upd = resolve(spec["paths"]["/api/%s/{id}" % name]["patch"]["requestBody"]["content"]
                          ["application/json"]["schema"])
            assert set(upd["properties"]) == set(props) and not upd.get("required")


def broken_values(s):
    """(value, why) pairs that break the described rule s."""
    s = resolve(s)
    types = s["type"] if isinstance(s["type"], list) else [s["type"]]
    out = []
    if "maxLength" in s:
        out.append(("x" * (s["maxLength"] + 1), "longer than maxLength"))
    if s.get("minLength", 0) >= 1 and "string" in types:
        out.append(("", "shorter than minLength"))
    if "enum" in s:
        out.append(("not-a-member", "not in the enum"))
    if "minimum" in s:
        out.append((s["minimum"] - 1, "below the minimum"))
    if "maximum" in s:
        out.append((s["maximum"] + 1, "above the maximum"))
    if s.get("format") in ("date", "date-time"):
        out.append(("2026-02-30" if s["format"] == "date" else "2026-02-30T00:00:00Z", "not a real date"))
    out.append(({"an": "object"}, "wrong type"))
    if "null" not in types:
        out.append((None, "null where not nullable"))
    return out


def test_every_member_broken_by_its_described_rule_is_refused_naming_it():
    refs = references()
    cases = 0
    for name, schema in writable():
        props = schema["properties"]
        required = list(schema.get("required", []))
        if "anyOf" in schema:
            required.append(schema["anyOf"][0]["required"][0])
        base = {m: valid_value(m, props[m], refs) for m in required}
        for m, s in props.items():
            for bad, why in broken_values(s):
                body = dict(base)
                body[m] = bad
                r = call("POST", "/api/" + name, body)
                assert r.status == 422, (name, m, why, bad if not isinstance(bad, str) else bad[:40], r.status,
                                         r.body[:300])
                fields = [e["field"] for e in r.json().get("errors", [])]
                assert m in fields, (name, m, why, fields)
                cases += 1
        body = dict(base, not_described=1)
        r = call("POST", "/api/" + name, body)
        assert r.status == 422 and "not_described" in [e["field"] for e in r.json()["errors"]]
    assert cases > 100, cases
