"""crmd behind a real PgBouncer 1.18 in transaction pooling mode (`dev/stack pgbouncer-up`),
with --db-prepared off: the read and write modules run again with every server's database
connection going through PgBouncer, and PgBouncer's own statistics show the traffic went
through it. With prepared statements on, the same setup fails: the check can fail."""
import os
import re
import subprocess
import sys

from lib import BUILD, CRMD, DB, REDIS, ROOT, SANITIZED, Conn, Server, Skip, seed_keys, stack

HERE = os.path.dirname(os.path.abspath(__file__))
via = None


def setup_module():
    global via
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    if not subprocess.run(["sh", "-c", "command -v pgbouncer"], capture_output=True).returncode == 0:
        raise Skip("pgbouncer not installed (Debian package pgbouncer; ./configure --install-deps)")
    stack("pgbouncer-up")
    out = subprocess.run([os.path.join(ROOT, "dev", "stack"), "env"], capture_output=True, text=True).stdout
    m = re.search(r"^export PGBOUNCER_URL=(\S+)$", out, re.M)
    assert m, out
    # the same database as the tests' (crmd_test), through PgBouncer
    via = m.group(1).rsplit("/", 1)[0] + "/" + DB.rsplit("/", 1)[1]


def teardown_module():
    stack("pgbouncer-down")


def pgbouncer_queries():
    admin = via.rsplit("/", 1)[0] + "/pgbouncer"
    out = subprocess.run(["psql", admin, "-Atq", "-F", "|", "-c", "SHOW STATS"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    total = 0
    for line in out.stdout.splitlines():
        cols = line.split("|")
        if cols[0] == DB.rsplit("/", 1)[1]:
            total += int(cols[3])  # total_query_count
    return total


def test_read_and_write_modules_pass_through_pgbouncer():
    before = pgbouncer_queries()
    env = dict(os.environ, CRMD_SERVER_DATABASE_URL=via)
    out = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "test_read_api", "test_writes"],
                         capture_output=True, text=True, env=env, timeout=900)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    m = re.match(r"(\d+) passed, (\d+) failed, (\d+) skipped", last)
    assert m, out.stdout[-3000:] + out.stderr[-2000:]
    passed, failed, skipped = int(m.group(1)), int(m.group(2)), int(m.group(3))
    fails = [line for line in out.stdout.splitlines() if line.startswith("FAIL")]
    # every test of both modules ran (36 when this was written) and passed
    assert failed == 0 and skipped == 0 and passed >= 30, (last, fails[:10], out.stdout[-3000:])
    # the servers' statements went through PgBouncer
    assert pgbouncer_queries() - before > 500, (before, pgbouncer_queries())


def test_prepared_statements_behind_pgbouncer_fail_and_off_works():
    keys = seed_keys("pgbouncer")
    k = next(x["key"] for x in keys if x["role"] == "admin")
    results = {}
    for prepared in ("on", "off"):
        with Server(env={"DATABASE_URL": via, "DB_PREPARED": prepared, "PAGINATION_KEY": "pgb"}, threads=2,
                    wait=True) as s:
            statuses = []
            for _ in range(40):
                try:
                    with Conn(s) as c:
                        statuses.append(c.request("GET", "/api/companies?limit=5&refresh=true",
                                                  headers={"X-API-Key": k}).status)
                except Exception as e:
                    statuses.append(repr(e))
            results[prepared] = statuses
    assert all(st == 200 for st in results["off"]), results["off"]
    # named statements (and startup options) do not survive transaction pooling
    assert any(st != 200 for st in results["on"]), results["on"]
