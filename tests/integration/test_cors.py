"""CORS for FRONTEND_URL origins: simple requests and preflights, allowed and not."""
from lib import Conn, Server

ORIGIN = "https://app.example.com"
srv = None


def setup_module():
    global srv
    srv = Server(env={"FRONTEND_URL": ORIGIN + ", http://localhost:3000"})


def teardown_module():
    if srv:
        srv.stop()


def req(method, path, headers):
    with Conn(srv) as c:
        return c.request(method, path, headers)


def test_simple_request_from_listed_origin():
    r = req("GET", "/api/health/live", {"Origin": ORIGIN})
    assert r.status == 200
    assert r.header("access-control-allow-origin") == ORIGIN
    assert r.header("access-control-allow-credentials") == "true"
    assert "Origin" in r.header_all("vary")
    exp = r.header("access-control-expose-headers")
    for h in ("X-Request-Id", "ETag", "RateLimit", "Retry-After", "Location"):
        assert h in exp, exp


def test_simple_request_from_other_origin_gets_nothing():
    for o in ("https://evil.example.com", "https://app.example.com.evil.org", "null", "http://app.example.com"):
        r = req("GET", "/api/health/live", {"Origin": o})
        assert r.status == 200
        assert not [k for k, _ in r.headers if k.startswith("access-control-")], (o, r.headers)


def test_preflight_from_listed_origin():
    r = req("OPTIONS", "/api/companies", {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status == 204, r
    assert r.header("access-control-allow-origin") == "http://localhost:3000"
    methods = r.header("access-control-allow-methods")
    assert "GET" in methods and "POST" in methods, methods
    allow = r.header("access-control-allow-headers")
    for h in ("Authorization", "X-API-Key", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key",
              "X-Request-Id"):
        assert h in allow, allow
    assert r.header("access-control-max-age") == "600"


def test_preflight_from_other_origin_is_204_without_cors():
    r = req("OPTIONS", "/api/companies", {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"})
    assert r.status == 204
    assert not [k for k, _ in r.headers if k.startswith("access-control-")], r.headers


def test_no_origin_no_cors():
    r = req("GET", "/api/health/live", {})
    assert r.header("access-control-allow-origin") is None
