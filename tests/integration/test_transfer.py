"""Compression and conditional requests on real API responses: gzip negotiation (bodies
decoded here and compared with the identity body), br, Vary, strong ETags, 304 on a matching
If-None-Match, HEAD carrying the GET's headers."""
import gzip
import json
import os
import subprocess

from lib import CRMD, ROOT, Conn, Server, Skip, seed_keys

DB = os.environ.get("DATABASE_URL")
srv = None
KEY = None


def setup_module():
    global srv, KEY
    if not DB:
        raise Skip("DATABASE_URL not set")
    KEY = seed_keys("transfer")[0]["key"]
    srv = Server(env={"DATABASE_URL": DB})


def teardown_module():
    if srv:
        srv.stop()


def get(path, **headers):
    h = {"X-API-Key": KEY}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    with Conn(srv) as c:
        return c.request("GET", path, h)


LIST = "/api/companies?limit=50"


def test_gzip_when_accepted_and_body_over_1kib():
    plain = get(LIST)
    assert plain.status == 200 and len(plain.body) > 1024
    assert plain.header("content-encoding") is None
    assert plain.header("vary") == "Accept-Encoding"
    z = get(LIST, Accept_Encoding="gzip, deflate")
    assert z.status == 200 and z.header("content-encoding") == "gzip", z.headers
    assert int(z.header("content-length")) == len(z.body) < len(plain.body)
    assert gzip.decompress(z.body) == plain.body
    assert z.header("vary") == "Accept-Encoding"


def test_q_values_respected():
    assert get(LIST, Accept_Encoding="gzip;q=0").header("content-encoding") is None
    assert get(LIST, Accept_Encoding="identity").header("content-encoding") is None
    assert get(LIST, Accept_Encoding="br;q=0, gzip;q=0.5").header("content-encoding") == "gzip"


def test_brotli_preferred_when_offered():
    r = get(LIST, Accept_Encoding="gzip, br")
    assert r.header("content-encoding") in ("br", "gzip")
    if r.header("content-encoding") == "br":
        assert len(r.body) < len(get(LIST).body)


def test_small_bodies_not_compressed():
    r = get("/api/me", Accept_Encoding="gzip")
    assert r.status == 200 and len(r.body) < 1024 and r.header("content-encoding") is None


def test_strong_etag_and_304():
    a = get(LIST)
    etag = a.header("etag")
    assert etag and etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/"), etag
    assert a.header("cache-control") == "private, max-age=0, must-revalidate"
    b = get(LIST)
    assert b.header("etag") == etag  # same representation, same tag
    nm = get(LIST, If_None_Match=etag)
    assert nm.status == 304 and nm.body == b"", nm
    assert nm.header("etag") == etag and nm.header("content-length") is None
    assert nm.header("x-content-type-options") == "nosniff"
    assert get(LIST, If_None_Match='W/' + etag).status == 304  # weak comparison for If-None-Match
    assert get(LIST, If_None_Match='"0000000000000000"').status == 200
    assert get(LIST, If_None_Match="*").status == 304
    # gzip variant carries the same ETag (the identity body's) and also revalidates
    z = get(LIST, Accept_Encoding="gzip", If_None_Match=etag)
    assert z.status == 304


def test_etag_changes_with_the_body():
    assert get("/api/companies?limit=5").header("etag") != get("/api/companies?limit=6").header("etag")


def test_head_has_get_headers():
    g = get(LIST, Accept_Encoding="gzip")
    with Conn(srv) as c:
        h = c.request("HEAD", LIST, {"X-API-Key": KEY, "Accept-Encoding": "gzip"})
    assert h.status == 200 and h.body == b""
    for name in ("etag", "content-length", "content-encoding", "content-type", "vary", "cache-control"):
        assert h.header(name) == g.header(name), name


def test_errors_not_cacheable():
    r = get("/api/companies/999999999")
    assert r.status == 404 and r.header("etag") is None
