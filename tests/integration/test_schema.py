"""Schema, migrations and seed data against a real PostgreSQL (the dev stack).

Needs DATABASE_URL (a database of the server; the tests work only in scratch databases,
crmd_migrate_test and crmd_constraints_test, which they create and drop) and CRMD_BIN (the
crmd binary: `crmd migrate`, `crmd seed --scale S --keys-out PATH`). Uses psql. Every test_*
function takes no arguments and raises AssertionError on failure. Run through
tests/integration/run.py, or alone: python3 tests/integration/test_schema.py
"""

import atexit
import json
import os
import re
import subprocess
import tempfile
import urllib.parse

from lib import CRMD, Skip

SEED_SCALE = "0.01"
# A fixed seed date makes two seeds comparable even across midnight.
SEED_DATE = "2026-01-15"
# Rows `crmd seed --scale 0.01` loads (cmd/seed.h: seed_counts).
SEED_COUNTS = {
    "organizations": 3,
    "users": 6,
    "stages": 18,
    "companies": 100,
    "contacts": 400,
    "deals": 200,
    "activities": 5000,
    "tasks": 400,
    "api_keys": 6,
}

_created_dbs = set()
_state = {}


def _base_url():
    url = os.environ.get("DATABASE_URL")
    assert url, "DATABASE_URL is not set (eval \"$(dev/stack env)\")"
    return url


def _crmd_bin():
    assert os.access(CRMD, os.X_OK), "no crmd binary at %s (set CRMD_BIN)" % CRMD
    return CRMD


def setup_module():
    if not os.environ.get("DATABASE_URL"):
        raise Skip("DATABASE_URL not set (run through tests/run, which starts dev/stack)")


def teardown_module():
    for name in sorted(_created_dbs):
        _drop_db(name)
    _state.pop("schema_db", None)
    _state.pop("seeded", None)


def _db_url(name):
    """DATABASE_URL with its database replaced by name."""
    parts = urllib.parse.urlsplit(_base_url())
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def psql(url, sql):
    """Runs sql (stops at the first error); returns (returncode, stdout, stderr)."""
    p = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-d", url, "-f", "-"],
        input=sql,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p.returncode, p.stdout, p.stderr


def query(url, sql):
    rc, out, err = psql(url, sql)
    assert rc == 0, "psql failed: %s\n%s" % (sql, err)
    return out.strip()


def sqlstate(err):
    m = re.search(r"ERROR:\s+([0-9A-Z]{5}):", err)
    return m.group(1) if m else None


def _drop_db(name):
    psql(_db_url("postgres"), "DROP DATABASE IF EXISTS %s WITH (FORCE);" % name)


def fresh_db(name):
    """An empty database name (dropped first if it exists, and at exit); returns its URL."""
    _drop_db(name)
    query(_db_url("postgres"), "CREATE DATABASE %s;" % name)
    if name not in _created_dbs:
        _created_dbs.add(name)
        atexit.register(_drop_db, name)
    return _db_url(name)


def crmd(url, *args, env=None, timeout=300):
    e = dict(os.environ, DATABASE_URL=url)
    e.update(env or {})
    return subprocess.run([_crmd_bin(), *args], env=e, capture_output=True, text=True, timeout=timeout)


def migrated_db():
    """crmd_constraints_test, created and migrated once per run; its URL."""
    if "schema_db" not in _state:
        url = fresh_db("crmd_constraints_test")
        p = crmd(url, "migrate", timeout=120)
        assert p.returncode == 0, "crmd migrate failed: %s%s" % (p.stdout, p.stderr)
        _state["schema_db"] = url
    return _state["schema_db"]


def _keys_path():
    if "keys_path" not in _state:
        fd, path = tempfile.mkstemp(prefix="crmd-demo-keys-", suffix=".json")
        os.close(fd)
        atexit.register(lambda: os.path.exists(path) and os.unlink(path))
        _state["keys_path"] = path
    return _state["keys_path"]


def seed(url):
    p = crmd(url, "seed", "--scale", SEED_SCALE, "--keys-out", _keys_path(), env={"CRMD_SEED_NOW": SEED_DATE})
    assert p.returncode == 0, "crmd seed failed: %s%s" % (p.stdout, p.stderr)
    return p


def seeded_db():
    """The migrated scratch database seeded at SEED_SCALE (once per run); its URL."""
    if "seeded" not in _state:
        url = migrated_db()
        seed(url)
        _state["seeded"] = url
    return _state["seeded"]


def checksum(url):
    """md5 of every generated row of the deterministic tables, in id order."""
    tables = ["organizations", "users", "stages", "companies", "contacts", "deals", "activities", "tasks"]
    sql = "".join("SELECT '%s', md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM %s t;\n" % (x, x)
                  for x in tables)
    return query(url, sql)


def expect_error(url, setup, statement, code):
    """Runs setup (must succeed), then statement, in one rolled-back transaction; the statement
    must fail with SQLSTATE code."""
    sql = "BEGIN;\n%s\nSELECT 'setup-ok';\n%s\nROLLBACK;\n" % (setup, statement)
    rc, out, err = psql(url, sql)
    assert "setup-ok" in out, "setup failed: %s" % err
    assert rc != 0, "statement succeeded, expected %s: %s" % (code, statement)
    assert sqlstate(err) == code, "expected SQLSTATE %s, got %s: %s" % (code, sqlstate(err), err)


def expect_ok(url, sql):
    rc, _, err = psql(url, "BEGIN;\n%s\nROLLBACK;\n" % sql)
    assert rc == 0, "expected success: %s" % err


TWO_ORGS = """
INSERT INTO organizations (id, name, tier) VALUES (901, 'Org A', 'standard'), (902, 'Org B', 'free');
INSERT INTO users (id, org_id, name, email, role) VALUES (9011, 901, 'Ann', 'ann@a.example', 'admin'),
    (9021, 902, 'Bob', 'bob@b.example', 'member');
INSERT INTO stages (id, org_id, name, color, position, probability, kind) VALUES
    (9011, 901, 'Lead', '#94a3b8', 0, 10, 'open'), (9021, 902, 'Lead', '#94a3b8', 0, 10, 'open');
INSERT INTO companies (id, org_id, owner_id, name, domain) VALUES (9011, 901, 9011, 'A Co', 'a-co.example'),
    (9021, 902, 9021, 'B Co', 'b-co.example');
"""


# ---- migrations ----


def test_migrate_twice_is_noop():
    url = fresh_db("crmd_migrate_test")
    first = crmd(url, "migrate", timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "applied 001_" in first.stdout, first.stdout
    before = query(url, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version;")
    second = crmd(url, "migrate", timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "applied" not in second.stdout, "second migrate applied something: " + second.stdout
    assert re.search(r"schema up to date \(version \d+\)", second.stdout), second.stdout
    after = query(url, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version;")
    assert before == after, "schema_migrations changed:\n%s\n---\n%s" % (before, after)
    _drop_db("crmd_migrate_test")


def test_concurrent_migrate_applies_each_once():
    url = fresh_db("crmd_migrate_test")
    env = dict(os.environ, DATABASE_URL=url)
    procs = [subprocess.Popen([_crmd_bin(), "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, "concurrent migrate failed: %s%s" % (out, err)
    files = sorted(f for f in os.listdir(_migrations_dir()) if re.match(r"^\d+_.*\.sql$", f))
    applied_lines = sum(len(re.findall(r"^applied ", out, re.M)) for out, _ in outs)
    assert applied_lines == len(files), "expected %d applied lines in total, got %d" % (len(files), applied_lines)
    rows = query(url, "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version;")
    versions = [line.split("|") for line in rows.splitlines()]
    assert [int(v) for v, _ in versions] == [int(f.split("_")[0]) for f in files], rows
    assert all(n == "1" for _, n in versions), rows
    _drop_db("crmd_migrate_test")


def _migrations_dir():
    d = os.environ.get("CRMD_MIGRATIONS_DIR")
    if d:
        return d
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sql", "migrations")


def test_activity_partitions():
    url = migrated_db()
    n = int(query(url, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'activities'::regclass;"))
    assert n >= 28 + 1, "expected 24 months back, 3 ahead and a default partition, got %d" % n
    created = query(url, "SELECT crmd_ensure_activity_partitions(current_date - 60, current_date);")
    assert created == "0", "partitions of the current range already exist, created " + created
    # A row in the default partition moves into the month's partition when it is created.
    sql = """BEGIN;
INSERT INTO organizations (id, name) VALUES (990, 'P');
INSERT INTO companies (id, org_id, name) VALUES (990, 990, 'P Co');
INSERT INTO activities (org_id, company_id, type, subject, occurred_at)
    VALUES (990, 990, 'note', 'old', '2001-02-03 04:05:06+00');
SELECT tableoid::regclass FROM activities WHERE org_id = 990;
SELECT crmd_ensure_activity_partitions('2001-02-01', '2001-02-28');
SELECT tableoid::regclass FROM activities WHERE org_id = 990;
SELECT crmd_ensure_activity_partitions('2001-02-01', '2001-02-28');
ROLLBACK;"""
    out = query(url, sql).splitlines()
    assert out == ["activities_default", "1", "activities_2001_02", "0"], out


# ---- constraints ----


def test_cross_org_reference_fails():
    url = migrated_db()
    # A deal of org 901 naming org 902's company.
    expect_error(url, TWO_ORGS,
                 "INSERT INTO deals (org_id, company_id, stage_id, name, value) VALUES (901, 9021, 9011, 'x', 1);",
                 "23503")
    # ... or org 902's stage, or a contact whose company is another org's.
    expect_error(url, TWO_ORGS,
                 "INSERT INTO deals (org_id, company_id, stage_id, name, value) VALUES (901, 9011, 9021, 'x', 1);",
                 "23503")
    expect_error(url, TWO_ORGS,
                 "INSERT INTO contacts (org_id, company_id, first_name, last_name) VALUES (901, 9021, 'a', 'b');",
                 "23503")
    expect_error(url, TWO_ORGS,
                 "INSERT INTO activities (org_id, company_id, type, subject, occurred_at)"
                 " VALUES (902, 9011, 'call', 's', now());", "23503")
    expect_error(url, TWO_ORGS,
                 "INSERT INTO companies (org_id, owner_id, name) VALUES (901, 9021, 'owned by another org');",
                 "23503")
    expect_ok(url, TWO_ORGS +
              "INSERT INTO deals (org_id, company_id, stage_id, name, value) VALUES (901, 9011, 9011, 'ok', 1);")


def test_unique_domain_and_email_per_org():
    url = migrated_db()
    expect_error(url, TWO_ORGS, "INSERT INTO companies (org_id, name, domain) VALUES (901, 'Dup', 'a-co.example');",
                 "23505")
    expect_error(url, TWO_ORGS, "INSERT INTO companies (org_id, name, domain) VALUES (901, 'Dup', 'A-CO.example');",
                 "23505")
    # The same domain in another organization, and any number of NULL domains, are fine.
    expect_ok(url, TWO_ORGS + "INSERT INTO companies (org_id, name, domain) VALUES (902, 'Same', 'a-co.example');"
              " INSERT INTO companies (org_id, name) VALUES (901, 'n1'), (901, 'n2');")
    contact = "INSERT INTO contacts (org_id, first_name, last_name, email) VALUES (901, 'a', 'b', 'X@y.example');"
    expect_error(url, TWO_ORGS + contact,
                 "INSERT INTO contacts (org_id, first_name, last_name, email) VALUES (901, 'c', 'd', 'x@Y.example');",
                 "23505")
    expect_ok(url, TWO_ORGS + contact +
              "INSERT INTO contacts (org_id, first_name, last_name, email) VALUES (902, 'c', 'd', 'x@y.example');"
              " INSERT INTO contacts (org_id, first_name, last_name) VALUES (901, 'e', 'f'), (901, 'g', 'h');")


def test_check_constraints():
    url = migrated_db()
    bad = [
        "INSERT INTO organizations (name, tier) VALUES ('x', 'gold');",
        "INSERT INTO users (org_id, name, role) VALUES (901, 'x', 'owner');",
        "INSERT INTO stages (org_id, name, color, position, probability) VALUES (901, 's', '#FFFFFF', 1, 5);",
        "INSERT INTO stages (org_id, name, color, position, probability) VALUES (901, 's', 'red', 1, 5);",
        "INSERT INTO stages (org_id, name, color, position, probability) VALUES (901, 's', '#ffffff', 1, 101);",
        "INSERT INTO stages (org_id, name, color, position, probability, kind) VALUES (901, 's', '#ffffff', 1, 5, 'x');",
        "INSERT INTO companies (org_id, name, size) VALUES (901, 'x', '2-3');",
        "INSERT INTO deals (org_id, company_id, stage_id, name, value) VALUES (901, 9011, 9011, 'x', -1);",
        "INSERT INTO deals (org_id, company_id, stage_id, name, value, probability)"
        " VALUES (901, 9011, 9011, 'x', 1, 120);",
        "INSERT INTO deals (org_id, company_id, stage_id, name, value, status)"
        " VALUES (901, 9011, 9011, 'x', 1, 'stalled');",
        "INSERT INTO activities (org_id, company_id, type, subject, occurred_at) VALUES (901, 9011, 'fax', 's', now());",
        "INSERT INTO tasks (org_id, title, priority, due_at) VALUES (901, 't', 'urgent', now());",
        "INSERT INTO api_keys (org_id, user_id, prefix, key_hash) VALUES (901, 9011, 'short', sha256('x'));",
    ]
    for statement in bad:
        expect_error(url, TWO_ORGS, statement, "23514")
    expect_ok(url, TWO_ORGS + "INSERT INTO organizations (name, tier) VALUES ('u', 'unlimited');"
              " INSERT INTO stages (org_id, name, color, position, probability, kind)"
              " VALUES (901, 'Won', '#22c55e', 1, 100, 'won');")


def test_triggers_keep_timestamps():
    url = migrated_db()
    sql = TWO_ORGS + """
UPDATE companies SET updated_at = '2000-01-01' WHERE id = 9011;
UPDATE companies SET name = name WHERE id = 9011;
SELECT updated_at = '2000-01-01' FROM companies WHERE id = 9011;
UPDATE companies SET name = 'A Co 2' WHERE id = 9011;
SELECT updated_at > '2000-01-01' FROM companies WHERE id = 9011;
INSERT INTO deals (id, org_id, company_id, stage_id, name, value) VALUES (9011, 901, 9011, 9011, 'd', 5);
SELECT closed_at IS NULL FROM deals WHERE id = 9011;
UPDATE deals SET status = 'won' WHERE id = 9011;
SELECT closed_at IS NOT NULL FROM deals WHERE id = 9011;
UPDATE deals SET status = 'open' WHERE id = 9011;
SELECT closed_at IS NULL FROM deals WHERE id = 9011;
"""
    out = query(url, "BEGIN;\n" + sql + "ROLLBACK;\n").splitlines()
    assert out == ["t"] * 5, out


# ---- seed ----


def test_seed_counts():
    url = seeded_db()
    sql = "".join("SELECT '%s', count(*) FROM %s;\n" % (t, t) for t in SEED_COUNTS)
    got = dict(line.split("|") for line in query(url, sql).splitlines())
    assert {k: int(v) for k, v in got.items()} == SEED_COUNTS, got
    # Per organization: 40%, 20%, 40% of the scaled rows; tiers as documented.
    tiers = query(url, "SELECT id, tier FROM organizations ORDER BY id;").splitlines()
    assert tiers == ["1|professional", "2|standard", "3|unlimited"], tiers
    assert query(url, "SELECT name FROM organizations WHERE tier = 'unlimited';") == "Benchmark Org"
    per_org = query(url, "SELECT org_id, count(*) FROM companies GROUP BY 1 ORDER BY 1;").splitlines()
    assert per_org == ["1|40", "2|20", "3|40"], per_org


def test_seed_data_is_consistent():
    url = seeded_db()
    checks = {
        # won/lost deals sit in won/lost stages and open ones in open stages
        "status vs stage": "SELECT count(*) FROM deals d JOIN stages s ON s.org_id = d.org_id AND s.id = d.stage_id"
                           " WHERE s.kind <> d.status",
        "closed_at": "SELECT count(*) FROM deals WHERE (status = 'open') <> (closed_at IS NULL)",
        "stages": "SELECT count(*) FROM (SELECT org_id FROM stages GROUP BY 1"
                  " HAVING string_agg(name || ':' || probability || ':' || kind, ',' ORDER BY position) <>"
                  " 'Lead:10:open,Qualified:25:open,Proposal:50:open,Negotiation:75:open,Won:100:won,Lost:0:lost') x",
        "activities span 24 months": "SELECT count(*) FROM (SELECT max(occurred_at) - min(occurred_at) AS span"
                                     " FROM activities) x WHERE span < interval '700 days'",
        "activities in default partition": "SELECT count(*) FROM activities_default",
        "roles": "SELECT 2 - count(DISTINCT role) FROM users",
    }
    for name, sql in checks.items():
        assert query(url, sql + ";") == "0", "seed check failed: " + name


def test_seed_is_deterministic():
    url = seeded_db()
    first = checksum(url)
    seed(url)
    second = checksum(url)
    assert first == second, "seeding twice gave different rows:\n%s\n---\n%s" % (first, second)
    # and it replaced the data instead of adding to it
    assert query(url, "SELECT count(*) FROM companies;") == str(SEED_COUNTS["companies"])


def test_api_keys_store_hashes_only():
    url = seeded_db()
    with open(_keys_path()) as f:
        keys = json.load(f)
    assert len(keys) == SEED_COUNTS["api_keys"], keys
    assert sorted((k["org_id"], k["role"]) for k in keys) == [(o, r) for o in (1, 2, 3) for r in ("admin", "member")]
    for k in keys:
        key = k["key"]
        m = re.fullmatch(r"crmd_([A-Za-z0-9]{8})_([A-Za-z0-9]{32})", key)
        assert m, "bad key format: " + key
        prefix, secret = m.groups()
        for table in ("api_keys", "users", "organizations"):
            n = query(url, "SELECT count(*) FROM %s t WHERE strpos(t::text, '%s') > 0;" % (table, secret))
            assert n == "0", "%s holds the plaintext of key %s" % (table, prefix)
        row = query(url, "SELECT count(*) FROM api_keys k JOIN users u ON u.id = k.user_id AND u.org_id = k.org_id"
                         " WHERE k.prefix = '%s' AND k.key_hash = sha256('%s'::bytea) AND k.org_id = %d"
                         " AND u.role = '%s' AND k.revoked_at IS NULL;" % (prefix, key, k["org_id"], k["role"]))
        assert row == "1", "key %s: no api_keys row with its SHA-256, org and role" % prefix


if __name__ == "__main__":
    import sys
    import traceback

    passed = failed = 0
    for name, fn in sorted((n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)):
        try:
            fn()
            passed += 1
            print("PASS", name)
        except Exception:
            failed += 1
            print("FAIL", name)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
