"""Runs last (module order is by name): no secret reached any server log of this test run.
Every API key the tests created, every Authorization value and every password-like field
value is searched for in every crmd log under build/test-logs/ (and build-asan/test-logs/
in the sanitizer run)."""
import glob
import json
import os
import re
import subprocess

from lib import BUILD, CRMD, ROOT, Conn, Server, Skip

DB = os.environ.get("DATABASE_URL")
SECRET = "hunter2-do-not-log"


def setup_module():
    if not DB:
        raise Skip("DATABASE_URL not set")


def test_refused_bodies_are_logged_masked():
    path = os.path.join(BUILD, "test-secrets-keys.json")
    subprocess.run([CRMD, "seed", "--scale", "0.01", "--keys-out", path], check=True, capture_output=True,
                   timeout=300)
    key = json.load(open(path))[0]["key"]
    with Server(env={"DATABASE_URL": DB, "RATE_LIMIT_WHITELIST": "127.0.0.0/8"}) as s:
        with Conn(s) as c:
            r = c.request("POST", "/api/companies", {"Authorization": "Bearer " + key,
                                                     "Content-Type": "application/json"},
                          json.dumps({"name": "Acme", "password": SECRET, "api_key": SECRET}))
            assert r.status == 422, r
            r = c.request("GET", "/api/me", {"Authorization": "Bearer " + key[:-3] + "zzz"})
            assert r.status == 401
        s.stop()
        lines = [l for l in s.log_lines() if l.get("msg") == "request"]
    refused = [l for l in lines if l.get("status") == 422]
    assert refused and refused[0]["body"]["password"] == {"type": "string", "len": len(SECRET)}, refused
    assert refused[0]["body"]["name"] == "Acme", refused
    assert refused[0]["key_prefix"] == key[5:13]


# names people give secrets; only fields the resources declare keep their values in a log
SECRET_NAMES = ["password", "pw", "pass", "passphrase", "token", "access_token", "refreshToken", "apiKey", "key",
                "secret", "client_secret", "auth", "authorization", "bearer", "credentials", "otp", "pin", "mfa",
                "sesame", "open_sesame", "x", "k", "data", "value", "hash", "signature", "privateKey", "cookie",
                "session", "ssn", "card", "cvv", "note2", "login", "magic"]


def test_secrets_under_any_name_never_logged():
    path = os.path.join(BUILD, "test-secrets-keys.json")
    key = json.load(open(path))[0]["key"]
    hdr = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    with Server(env={"DATABASE_URL": DB, "RATE_LIMIT_WHITELIST": "127.0.0.0/8"}) as s:
        with Conn(s) as c:
            for i, name in enumerate(SECRET_NAMES):
                val = "%s-%d" % (SECRET, i)
                # top level, nested in an object, inside a list, inside batch operations, in bulk
                for body in ({"name": "Acme", name: val},
                             {"name": "Acme", "meta": {name: val, "deeper": {name: [val]}}},
                             {"name": "Acme", "tags": [val, {name: val}]}):
                    r = c.request("POST", "/api/companies", hdr, json.dumps(body))
                    assert r.status == 422, r
                batch = [{"id": "1", "method": "POST", "path": "/api/companies", "body": {"name": "A", name: val}},
                         {"id": "2", "method": "POST", "path": "/api/nope", name: val}]
                r = c.request("POST", "/api/batch", hdr, json.dumps(batch))
                assert r.status in (200, 422), r
                r = c.request("POST", "/api/deals/bulk", hdr, json.dumps({"operation": "delete", "dealIds": [],
                                                                           name: val, "updates": {name: val}}))
                assert r.status == 422, r
        s.stop()
        text = open(s.log_path, "rb").read().decode("utf-8", "replace")
    assert SECRET not in text, text[text.index(SECRET) - 300:text.index(SECRET) + 50]
    # the refused bodies were logged (with shapes), so the test looked where secrets would be
    assert '"type":"string","len":' in text


def test_no_secret_in_any_log_of_the_run():
    keys = set()
    for f in glob.glob(os.path.join(ROOT, "build*", "test-*keys*.json")) + \
            glob.glob(os.path.join(ROOT, "bench", "results", "*keys*.json")):
        try:
            keys |= {k["key"] for k in json.load(open(f))}
        except (ValueError, KeyError, TypeError):
            pass
    assert keys, "no key files found"
    logs = glob.glob(os.path.join(ROOT, "build*", "test-logs", "crmd-*.log"))
    assert logs
    secrets = [re.escape(k) for k in keys] + [re.escape(SECRET), r"Bearer crmd_", r"Basic [A-Za-z0-9+/=]{8,}"]
    pattern = re.compile("|".join(secrets))
    for path in logs:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        m = pattern.search(text)
        assert not m, "%s leaks %r" % (path, m.group(0)[:20] + "...")
