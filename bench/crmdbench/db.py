"""Database benchmarks: crmd reading from PostgreSQL (cache off) against pgbench on the same server."""
import dataclasses
import datetime
import json
import os
import random
import re
import shlex
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from .procs import (BENCHMARKS_MD, BENCH_DIR, CLIENT_CPU, CLK_TCK, Fatal, LIVE, REPO, RESULTS_DIR, SERVER_CPU, Skip, cpu_ticks, free_port, http_get, kill_tree, read_stat, spawn)
from .catalog import (CRMD_DEFAULT_ENV, DB_CRMD_ENV, DB_MIN_PG_US_PER_REQ, stack_env)
from .http import (Crmd, crmd_env_names, wrk)
from .table import fmt, markdown_table, medians as table_medians

# --------------------------------------------------------------------------- database benchmarks
#
# crmd in front of PostgreSQL: the dev stack's cluster, a dedicated database (BENCH_DB, never
# the `crmd` database tests use) seeded once at scale 1, and pgbench's own database for the
# baseline. Each round starts a fresh crmd (or runs pgbench); crmd and pgbench alternate.

BENCH_DB = "crmd_bench"
PGBENCH_DB = "pgbench"
PGBENCH_SCALE = 10
BENCH_ORG = 3                      # "Benchmark Org", tier unlimited: no rate limit applies
SEED_MIN_COMPANIES = 10000         # fewer companies than this: the database lacks scale-1 data
KEYS_FILE = os.path.join(RESULTS_DIR, f"{BENCH_DB}-keys.json")   # results/ is gitignored
KEY_PLACEHOLDER = "$BENCH_KEY"     # the key is written as this in results and BENCHMARKS.md


@dataclasses.dataclass
class DbSetup:
    url: str                       # crmd's DATABASE_URL (BENCH_DB)
    crmd_env: dict                 # stack env with DATABASE_URL pointing at BENCH_DB
    host: str
    port: str
    user: str
    key: str
    companies: list                # [{"id", "name"}] of BENCH_ORG
    foreign_company: int           # a company id of another org (must answer 404)
    deals: dict                    # {id: {"company_id", "stage_id", "contact_id"}} of BENCH_ORG
    ids_file: str                  # one company id per line, for companies.lua
    binary: str                    # the copy of the crmd binary every server of this run runs
    binary_info: str
    pgbench_scale: int = 0


def psql(url, sql, timeout=120):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    try:
        p = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-d", url, "-c", sql],
                           capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise Skip(f"psql did not finish within {timeout} s: {sql[:100]}")
    except FileNotFoundError:
        raise Skip("psql not found (apt-get install postgresql-client-15)")
    if p.returncode != 0:
        raise Skip(f"psql failed on {sql[:100]!r}: {p.stderr.strip()[:500]}")
    return p.stdout.strip()


def url_with_db(url, db):
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(u._replace(path="/" + db))


def crmd_clean_env(binary, extra):
    env = {k: v for k, v in os.environ.items() if k not in crmd_env_names(binary)}
    env.update(CRMD_DEFAULT_ENV)
    env.update(extra)
    return env


def run_step(what, cmd, env, timeout):
    t0 = time.monotonic()
    print(f"  {what}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise Skip(f"{what} did not finish within {timeout} s")
    if p.returncode != 0:
        raise Skip(f"{what} failed ({p.returncode}):\n{(p.stdout + p.stderr)[-1500:]}")
    print(f"  {what}: done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    return p.stdout


_DB_SETUP = None


def prepare_db(bench, args, tmp_root):
    """The stack up, BENCH_DB created, migrated and (only when it lacks scale-1 data) seeded,
    a valid key of BENCH_ORG, and org 3's company ids and deals. Once per run."""
    global _DB_SETUP
    if _DB_SETUP is not None:
        return _DB_SETUP
    binary = args.crmd_bin
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise Skip(f"crmd binary {binary} is missing (build it first, or pass --crmd-bin)")
    stack = stack_env(bench)
    import urllib.parse
    base = stack["DATABASE_URL"]
    u = urllib.parse.urlsplit(base)
    url = url_with_db(base, BENCH_DB)
    admin = url_with_db(base, "postgres")
    if psql(admin, f"SELECT 1 FROM pg_database WHERE datname = '{BENCH_DB}'") != "1":
        print(f"  creating database {BENCH_DB}", file=sys.stderr, flush=True)
        psql(admin, f"CREATE DATABASE {BENCH_DB}")
    crmd_env = dict(stack, DATABASE_URL=url)
    env = {k: v for k, v in crmd_clean_env(binary, crmd_env).items() if k != "CRMD_MIGRATIONS_DIR"}
    run_step("migrate", [binary, "migrate"], env, timeout=300)
    n = int(psql(url, "SELECT count(*) FROM companies") or 0)
    if n < SEED_MIN_COMPANIES:
        os.makedirs(RESULTS_DIR, exist_ok=True)
        print(f"  {BENCH_DB} has {n} companies (< {SEED_MIN_COMPANIES}): seeding scale 1 (about a minute)",
              file=sys.stderr, flush=True)
        # seed prints the keys; they go to KEYS_FILE only
        run_step("seed", [binary, "seed", "--scale", "1", "--keys-out", KEYS_FILE], env, timeout=900)
    tier = psql(url, f"SELECT tier FROM organizations WHERE id = {BENCH_ORG}")
    if tier != "unlimited":
        raise Skip(f"organization {BENCH_ORG} of {BENCH_DB} has tier {tier!r}, expected 'unlimited'")
    key = bench_key(url, binary, env)
    companies = json.loads(psql(url, "SELECT coalesce(json_agg(json_build_object('id', id, 'name', name) "
                                     f"ORDER BY id), '[]') FROM companies WHERE org_id = {BENCH_ORG}"))
    if not companies:
        raise Skip(f"organization {BENCH_ORG} has no companies in {BENCH_DB}")
    foreign = int(psql(url, f"SELECT min(id) FROM companies WHERE org_id <> {BENCH_ORG}") or 0)
    deals = {d["id"]: d for d in json.loads(psql(url, (
        "SELECT coalesce(json_agg(json_build_object('id', id, 'company_id', company_id, 'stage_id', stage_id, "
        f"'contact_id', contact_id)), '[]') FROM deals WHERE org_id = {BENCH_ORG}")))}
    ids_file = os.path.join(tmp_root, "company-ids.txt")
    with open(ids_file, "w") as f:
        f.write("".join(f"{c['id']}\n" for c in companies))
    # Other work rebuilds build/crmd while benchmarks run (the tree is shared): every server of
    # this run starts from one private copy, so all rounds measure the same binary. serve checks
    # the schema against sql/migrations, which it finds next to its binary (../sql/migrations):
    # the migrations are copied with it, the ones migrate applied above.
    copy = os.path.join(tmp_root, "bin", "crmd")
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    shutil.copy2(binary, copy)
    shutil.copytree(os.path.join(REPO, "sql", "migrations"), os.path.join(tmp_root, "sql", "migrations"))
    st = os.stat(copy)
    info = (f"copy of {os.path.relpath(binary, REPO) if binary.startswith(REPO) else binary} built "
            f"{datetime.datetime.fromtimestamp(st.st_mtime).strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"  {BENCH_DB}: {n if n >= SEED_MIN_COMPANIES else psql(url, 'SELECT count(*) FROM companies')} companies, "
          f"org {BENCH_ORG}: {len(companies)} companies, {len(deals)} deals", file=sys.stderr, flush=True)
    _DB_SETUP = DbSetup(url=url, host=u.hostname or "127.0.0.1", port=str(u.port or 5432),
                        user=urllib.parse.unquote(u.username or "crmd"), key=key, companies=companies,
                        foreign_company=foreign, deals=deals, ids_file=ids_file, binary=copy, binary_info=info,
                        crmd_env=dict(crmd_env, CRMD_MIGRATIONS_DIR=os.path.join(tmp_root, "sql", "migrations")))
    return _DB_SETUP


def bench_key(url, binary, env):
    """A key of BENCH_ORG: the one the seed (or an earlier run) wrote to KEYS_FILE if the database
    still knows it, else a new one from `crmd keys create` (saved there for later runs)."""
    def known(key):
        if not re.fullmatch(r"[A-Za-z0-9_]+", key or ""):
            return False
        return psql(url, f"SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to('{key}', 'UTF8')) "
                         f"AND org_id = {BENCH_ORG} AND revoked_at IS NULL") == "1"
    try:
        with open(KEYS_FILE) as f:
            for k in json.load(f):
                if k.get("org_id") == BENCH_ORG and known(k.get("key")):
                    return k["key"]
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    out = run_step(f"key for org {BENCH_ORG}", [binary, "keys", "create", "--org", str(BENCH_ORG), "--role", "member"],
                   env, timeout=60)
    key = out.strip().splitlines()[-1].strip() if out.strip() else ""
    if not known(key):
        raise Skip(f"`crmd keys create --org {BENCH_ORG}` gave no usable key")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    fd = os.open(KEYS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([{"org_id": BENCH_ORG, "tier": "unlimited", "role": "member", "key": key}], f)
    return key


def prepare_pgbench(db):
    """pgbench's database, initialized once with `pgbench -i -s PGBENCH_SCALE`."""
    if not shutil.which("pgbench"):
        raise Skip("pgbench not found (apt-get install postgresql-client-15)")
    base = db.url
    admin = url_with_db(base, "postgres")
    pgurl = url_with_db(base, PGBENCH_DB)
    if psql(admin, f"SELECT 1 FROM pg_database WHERE datname = '{PGBENCH_DB}'") != "1":
        print(f"  creating database {PGBENCH_DB}", file=sys.stderr, flush=True)
        psql(admin, f"CREATE DATABASE {PGBENCH_DB}")
    ok = psql(pgurl, "SELECT to_regclass('public.pgbench_accounts') IS NOT NULL "
                     "AND to_regclass('public.pgbench_branches') IS NOT NULL")
    if ok == "t":
        ok = psql(pgurl, "SELECT (SELECT count(*) FROM pgbench_branches) > 0 AND (SELECT count(*) FROM "
                         "pgbench_accounts) = 100000 * (SELECT count(*) FROM pgbench_branches)")
    if ok != "t":
        run_step("pgbench -i", ["pgbench", "-i", "-s", str(PGBENCH_SCALE), "-q", "-h", db.host, "-p", db.port,
                                "-U", db.user, PGBENCH_DB], dict(os.environ, PGCONNECT_TIMEOUT="10"), timeout=900)
    db.pgbench_scale = int(psql(pgurl, "SELECT count(*) FROM pgbench_branches"))


# ---- the checks before measuring: a sample request must answer 200 with the right body

def not_cached(port, path, headers):
    """The same request twice: the second must not come from crmd's response cache."""
    for _ in range(2):
        status, hdrs, body, _ = http_get(port, path, headers, timeout=5)
    x = next((v for k, v in hdrs.items() if k.lower() == "x-cache"), None)
    if x and x.upper() == "HIT":
        raise Skip(f"GET {path} was answered from crmd's response cache (X-Cache: {x}) although "
                   f"{DB_CRMD_ENV} is set; the benchmark must read PostgreSQL on every request")


def check_company(bench, port, db):
    c = random.choice(db.companies)
    not_cached(port, f"{bench.path}{c['id']}", bench.headers)
    status, _, body, size = http_get(port, f"{bench.path}{c['id']}", bench.headers, timeout=5)
    if status != 200:
        raise Skip(f"GET {bench.path}{c['id']} answered {status}: {body[:300]!r}")
    try:
        d = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        raise Skip(f"GET {bench.path}{c['id']}: body is not {{\"data\": {{...}}}}: {body[:300]!r}")
    if d.get("id") != c["id"] or d.get("name") != c["name"]:
        raise Skip(f"GET {bench.path}{c['id']}: expected id {c['id']} name {c['name']!r}, got {body[:300]!r}")
    if db.foreign_company:
        status2, _, body2, _ = http_get(port, f"{bench.path}{db.foreign_company}", bench.headers, timeout=5)
        if status2 != 404:
            raise Skip(f"GET {bench.path}{db.foreign_company} (another organization's company) answered "
                       f"{status2}, expected 404: {body2[:200]!r}")
    return {"status": status, "response_bytes": size, "sample": f"{bench.path}{c['id']}",
            "body": body.decode("utf-8", "replace")}


def check_deals(bench, port, db):
    not_cached(port, bench.path, bench.headers)
    status, _, body, size = http_get(port, bench.path, bench.headers, timeout=5)
    if status != 200:
        raise Skip(f"GET {bench.path} answered {status}: {body[:300]!r}")
    try:
        doc = json.loads(body)
        rows = doc["data"]
        assert isinstance(rows, list) and "pagination" in doc
    except (ValueError, KeyError, TypeError, AssertionError):
        raise Skip(f"GET {bench.path}: body is not a list page: {body[:300]!r}")
    want = min(50, len(db.deals))
    if len(rows) != want:
        raise Skip(f"GET {bench.path}: {len(rows)} rows, expected {want}")
    for r in rows:
        d = db.deals.get(r.get("id"))
        if d is None:
            raise Skip(f"GET {bench.path}: deal {r.get('id')} is not one of org {BENCH_ORG}'s")
        for rel in ("company", "stage", "contact"):
            ref = d[f"{rel}_id"]
            emb = r.get(rel)
            if ref is None:
                if emb not in (None, {}):
                    raise Skip(f"deal {d['id']}: {rel} embedded though {rel}_id is null: {emb!r}")
            elif not isinstance(emb, dict) or emb.get("id") != ref:
                raise Skip(f"deal {d['id']}: {rel} {ref} not embedded (got {emb!r})")
    return {"status": status, "response_bytes": size, "sample": bench.path, "rows": len(rows),
            "body": body[:200].decode("utf-8", "replace") + "..."}


DB_CHECKS = {"company": check_company, "deals": check_deals}


class DbCrmd(Crmd):
    """crmd on BENCH_DB with a given --db-pool-size; ready when /api/health/ready answers 200."""

    def __init__(self, bench, args, tmp, db, pool):
        super().__init__(bench, args, tmp)
        self.db, self.pool = db, pool

    def start(self):
        binary = self.db.binary
        env = crmd_clean_env(binary, dict(self.db.crmd_env, **self.bench.crmd_env))
        self.port = free_port()
        admin = free_port(avoid={self.port})
        self.admin_port = admin
        self.log = os.path.join(self.tmp, f"crmd-{self.port}.log")
        self.cmd = ["taskset", "-c", SERVER_CPU, binary, "serve",
                    "--listen", f"127.0.0.1:{self.port}", "--threads", "1", "--cpus", SERVER_CPU,
                    "--admin-listen", f"127.0.0.1:{admin}", "--db-pool-size", str(self.pool),
                    "--max-conns", "20000"] + list(self.bench.crmd_args)
        self.proc = spawn(self.cmd, self.log, env=env)
        self.start_ticks = int(read_stat(self.proc.pid)[19])
        deadline = time.monotonic() + 15
        last = None
        while True:
            if self.proc.poll() is not None:
                raise Skip(f"crmd exited with status {self.proc.returncode} during start-up{self.log_tail()}")
            try:
                status, _, body, _ = http_get(self.port, "/api/health/ready")
                if status == 200:
                    break
                last = f"status {status}, body {body[:200]!r}"
            except (OSError, ValueError, IndexError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise Skip(f"crmd: /api/health/ready did not answer 200 within 15 s (last: {last}){self.log_tail()}")
            time.sleep(0.05)
        return self.check()

    def check(self):
        return DB_CHECKS[self.bench.name](self.bench, self.port, self.db)

    def backends(self):
        """{pid: cpu ticks} of the PostgreSQL backends serving this crmd."""
        return pg_backends(self.db.user, BENCH_DB, self.start_ticks)


def pg_backends(user, dbname, since_ticks=0):
    """{pid: utime+stime ticks} of the PostgreSQL backends of user on dbname started at or after
    since_ticks (field 22 of /proc/PID/stat), found by their process title
    ("postgres: USER DB 127.0.0.1(PORT) ...")."""
    prefix = f"postgres: {user} {dbname} ".encode()
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if not f.read(len(prefix)) == prefix:
                    continue
            st = read_stat(d)
            if int(st[19]) >= since_ticks:
                out[int(d)] = int(st[11]) + int(st[12])
        except (OSError, ValueError, IndexError):
            pass
    return out


def ticks_delta(before, after):
    """CPU ticks used between two pg_backends() readings by the processes present in both."""
    return sum(after[p] - before[p] for p in after if p in before)


def cpu_all_busy():
    """Busy jiffies of all CPUs (user nice system irq softirq steal; guest is inside user)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def redact(text, db):
    """The key as $BENCH_KEY, the run's temporary directory as $RUNDIR."""
    if db and db.key:
        text = text.replace(db.key, KEY_PLACEHOLDER)
    if db and db.ids_file:
        text = text.replace(os.path.dirname(db.ids_file), "$RUNDIR")
    return text


def db_wrk(srv, bench, db, conns, duration, latency=True):
    script_args = tuple(a.replace("{ids}", db.ids_file) for a in bench.script_args)
    return wrk(bench, srv.port, conns=conns, duration=duration, script=bench.plain_script,
               script_args=script_args, latency=latency)


def db_crmd_run(srv, bench, db, conns, duration):
    """One measured wrk run against a started DbCrmd: rate, latency, and the CPU time of crmd,
    of its PostgreSQL backends, of wrk, and of everything else on the machine."""
    pids = srv.measured_pids()
    bk0 = srv.backends()
    load = os.getloadavg()[0]
    busy0, c0, cl0, t0 = cpu_all_busy(), cpu_ticks(pids), children_cpu_s(), time.monotonic()
    r = db_wrk(srv, bench, db, conns, duration)
    wall = time.monotonic() - t0
    busy1, c1, cl1 = cpu_all_busy(), cpu_ticks(pids), children_cpu_s()
    bk1 = srv.backends()
    if srv.proc.poll() is not None:
        raise Fatal(f"crmd died during the run{srv.log_tail()}")
    crmd_s, pg_s, client_s = (c1 - c0) / CLK_TCK, ticks_delta(bk0, bk1) / CLK_TCK, cl1 - cl0
    n = r["requests"]
    r.update({
        "conns": conns, "pool": srv.pool, "wall_s": round(wall, 3), "loadavg": load,
        "backends": len(bk1), "backends_lost": len([p for p in bk0 if p not in bk1]),
        "server_cpu_s": crmd_s, "server_cpu_util": round(crmd_s / wall, 3),
        "server_cpu_us_per_req": crmd_s * 1e6 / n if n else None,
        "pg_cpu_s": pg_s, "pg_cpu_util": round(pg_s / wall, 3),
        "pg_cpu_us_per_req": pg_s * 1e6 / n if n else None,
        "client_cpu_util": round(client_s / wall, 3),
        "other_util": round(max(0.0, (busy1 - busy0) / CLK_TCK - crmd_s - pg_s - client_s) / wall, 3),
        "cmd": redact(r["cmd"], db),
    })
    why = []
    if n == 0:
        why.append("no responses")
    if r["non2xx"]:
        why.append(f"{r['non2xx']} non-2xx responses")
    if any(r["socket_errors"].values()):
        why.append(f"socket errors {r['socket_errors']}")
    if r["backends_lost"]:
        why.append(f"{r['backends_lost']} PostgreSQL connections went away")
    if not bk1:
        why.append("no PostgreSQL backend of crmd found (cannot tell whether PostgreSQL served the requests)")
    elif n and r["pg_cpu_us_per_req"] < DB_MIN_PG_US_PER_REQ:
        why.append(f"PostgreSQL backends used {r['pg_cpu_us_per_req']:.2f} µs per request: not served from "
                   f"PostgreSQL (a response cache?)")
    if why:
        r["invalid_reason"] = "; ".join(why)
        r["crmd_log_statuses"] = log_statuses(srv.log)
    r["valid"] = not why
    return r


def log_statuses(path):
    """{status: count} of the request lines in a crmd log (LOG_LEVEL=error logs failed requests)."""
    out = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = re.search(r'"status":\s*(\d+)', line)
                key = m.group(1) if m else (json_msg(line) or "other")
                out[key] = out.get(key, 0) + 1
    except OSError:
        pass
    return out


def json_msg(line):
    m = re.search(r'"msg":\s*"([^"]{0,80})', line)
    return m.group(1) if m else None


def pgbench_cmd(db, clients, duration):
    return ["taskset", "-c", CLIENT_CPU, "pgbench", "-S", "-M", "prepared", "-c", str(clients), "-j", "1",
            "-T", str(duration), "-h", db.host, "-p", db.port, "-U", db.user, PGBENCH_DB]


def pgbench_run(db, clients, duration, measure=True, cmd=None, dbname=PGBENCH_DB):
    """One pgbench -S run: tps (without initial connection time), mean latency, and the CPU of its
    backends (sampled every 0.5 s while they live: backends exit with pgbench, so their CPU is
    taken over the sampled window and divided by tps × window), of pgbench, and of the rest."""
    cmd = cmd or pgbench_cmd(db, clients, duration)
    load = os.getloadavg()[0]
    busy0, cl0, t0 = cpu_all_busy(), children_cpu_s(), time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
    LIVE.append(p)
    try:
        since = int(read_stat(p.pid)[19])    # its backends start after pgbench (taskset execs it)
    except (OSError, ValueError, IndexError):
        since = 0
    first, last, tfirst, tlast = None, {}, None, None
    try:
        deadline = t0 + duration + 30
        while p.poll() is None:
            if time.monotonic() > deadline:
                raise Fatal(f"pgbench did not finish within {duration + 30} s: {shlex.join(cmd)}")
            time.sleep(0.5 if measure else 0.1)
            if not measure:
                continue
            now, bk = time.monotonic(), pg_backends(db.user, dbname, since)
            if len(bk) < clients:
                continue
            if first is None:
                first, tfirst = bk, now
            last = {pid: t for pid, t in bk.items() if pid in first}
            tlast = now
        out, err = p.communicate(timeout=10)
    finally:
        kill_tree(p, grace=1.0)
    wall = time.monotonic() - t0
    busy1, cl1 = cpu_all_busy(), children_cpu_s()
    if p.returncode != 0:
        raise Fatal(f"pgbench failed ({p.returncode}): {shlex.join(cmd)}\n{out}{err}")
    r = {"cmd": shlex.join(cmd), "clients": clients, "loadavg": load, "wall_s": round(wall, 3)}
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"number of failed transactions: (\d+)", out)
    r["failed"] = int(m.group(1)) if m else 0
    m = re.search(r"latency average = ([\d.]+) ms", out)
    r["mean_ms"] = float(m.group(1)) if m else None
    m = re.search(r"scaling factor: (\d+)", out)
    r["scale"] = int(m.group(1)) if m else None
    client_s = cl1 - cl0
    r["client_cpu_util"] = round(client_s / wall, 3)
    if measure and first and tlast and tlast > tfirst and r["rps"]:
        window = tlast - tfirst
        pg_s = ticks_delta(first, last) / CLK_TCK
        r["pg_cpu_util"] = round(pg_s / window, 3)
        r["pg_cpu_us_per_req"] = pg_s / window / r["rps"] * 1e6
        r["pg_window_s"] = round(window, 2)
        r["other_util"] = round(max(0.0, (busy1 - busy0) / CLK_TCK / wall - r["pg_cpu_util"] - client_s / wall), 3)
    r["valid"] = bool(r["rps"]) and r["requests"] > 0 and r["failed"] == 0
    return r


DB_METRICS = [
    # key, label, unit, better (higher/lower/-), ratio column meaningful
    ("rps", "throughput (crmd: requests/s{conns}, pgbench: transactions/s)", "/s", "higher"),
    ("mean_ms", "mean latency", "ms", "lower"),
    ("p50_ms", "p50 latency", "ms", "lower"),
    ("p99_ms", "p99 latency", "ms", "lower"),
    ("server_cpu_us_per_req", "crmd CPU per request", "µs", "lower"),
    ("pg_cpu_us_per_req", "PostgreSQL backend CPU per request", "µs", "lower"),
    ("server_cpu_util", "crmd CPU use (CPU 1)", "cores", "-"),
    ("pg_cpu_util", "PostgreSQL backend CPU use (both CPUs)", "cores", "-"),
    ("client_cpu_util", "client CPU use (wrk / pgbench, CPU 0)", "cores", "-"),
    ("other_util", "everything else on both CPUs (noise)", "cores", "-"),
    ("loadavg", "1-min load average before the run", "", "-"),
]


def db_medians(res):
    out = table_medians(res, [m[0] for m in DB_METRICS],
                        lambda r, key: r[key] if r.get("valid") and r.get(key) is not None else None)
    for s, d in res["servers"].items():
        out[s]["invalid_runs"] = sum(1 for r in d["rounds"] if not r.get("valid"))
    return out


def db_table(res, meds, servers):
    conns = f" at wrk -c{res['settings']['conns']}" if res["settings"].get("conns") else ""
    rows = [(key, label.format(conns=conns), unit, better) for key, label, unit, better in DB_METRICS]
    # a ratio only where the two measure the same thing: latency is at different concurrency
    # (wrk's -c vs pgbench's 8 clients)
    return markdown_table(servers, meds, rows, ratio=servers == ["crmd", "pgbench"],
                          ratio_ok=lambda key: key in ("rps", "pg_cpu_us_per_req"))


def db_summary(res, meds):
    """The lines under the table: the target ratio, the chosen settings and the sweep."""
    lines = []
    a, b = meds.get("crmd", {}).get("rps"), meds.get("pgbench", {}).get("rps")
    if a and b:
        lines.append(f"crmd requests/s ÷ pgbench transactions/s (medians): **{a['median'] / b['median']:.2f}** "
                     f"(target ≥ 1.0)")
    st, sw = res["settings"], res.get("sweep", {})
    if st.get("conns"):
        def runs(d):
            return ", ".join(f"{k} → {fmt(v['rps']) if v.get('rps') else '–'}{'' if v.get('valid') else ' (invalid)'}"
                             for k, v in d.items())
        c = f"wrk -c{st['conns']}" + (f" (one {st['sweep_duration']} s run each, req/s: {runs(sw['conns'])})"
                                       if sw.get("conns") and len(sw["conns"]) > 1 else "")
        p = f"--db-pool-size {st['pool']}" + (f" (req/s at c{st['conns']}: {runs(sw['pool'])})"
                                              if sw.get("pool") and len(sw["pool"]) > 1 else "")
        lines.append(f"crmd settings, the best crmd rate of the sweep: {c}; {p}.")
    if st.get("pgbench_clients"):
        lines.append(f"pgbench: {st['pgbench_clients']} clients, 1 thread, scale {st.get('pgbench_scale', '?')}.")
    for s, d in meds.items():
        if d.get("invalid_runs"):
            lines.append(f"{s}: {d['invalid_runs']} invalid run(s) left out of the medians: " + "; ".join(
                r.get("invalid_reason") or f"failed transactions {r.get('failed')}"
                for r in res["servers"][s]["rounds"] if not r.get("valid")) + ".")
    if res.get("binary"):
        lines.append(f"crmd binary: {res['binary']}.")
    return lines


def db_noise_warning(meds, servers):
    noisy = [meds[s]["other_util"]["median"] for s in servers if "other_util" in meds.get(s, {})]
    if noisy and max(noisy) > 0.25:
        return (f"other work used up to {max(noisy):.2f} cores of the machine during the runs (median); "
                f"throughput and latency figures are unreliable, CPU per request less so. "
                f"Rerun on a quieter machine for numbers worth recording.")
    return None


def run_db_benchmark(bench, args, servers, tmp_root):
    res = {"bench": dataclasses.asdict(bench), "servers": {s: {"rounds": [], "cmd": None} for s in servers},
           "skipped": {}, "sweep": {}, "settings": {}}
    skipped = res["skipped"]

    def skip(s, why):
        skipped[s] = why
        print(f"  skip {s}: {why}", file=sys.stderr, flush=True)

    try:
        db = prepare_db(bench, args, tmp_root)
    except Skip as e:
        for s in servers:
            skip(s, str(e))
        return res
    bench = dataclasses.replace(bench, headers=[f"X-API-Key: {db.key}"])
    if "crmd" in servers:
        res["binary"] = db.binary_info
    if "pgbench" in servers:
        try:
            prepare_pgbench(db)
            res["settings"].update(pgbench_clients=args.pgbench_clients, pgbench_scale=db.pgbench_scale)
            res["servers"]["pgbench"]["cmd"] = shlex.join(pgbench_cmd(db, args.pgbench_clients, args.duration))
        except Skip as e:
            skip("pgbench", str(e))
    tmp_n = [0]

    def new_crmd(pool):
        tmp_n[0] += 1
        return DbCrmd(bench, args, tempfile.mkdtemp(prefix=f"crmd-{tmp_n[0]}-", dir=tmp_root), db, pool)

    def trial(pool, conns_list, duration):
        """A fresh crmd with this pool size, 1 s warm-up, one run per connection count."""
        srv = new_crmd(pool)
        try:
            info = srv.start()
            db_wrk(srv, bench, db, conns_list[0], 1, latency=False)
            out = {}
            for c in conns_list:
                r = db_crmd_run(srv, bench, db, c, duration)
                out[c] = r
                print(f"  sweep crmd pool {pool} c{c}: {r['rps']:.0f} req/s p99 {fmt(r.get('p99_ms'))} ms "
                      f"crmd {fmt(r['server_cpu_us_per_req'])} µs/req pg {fmt(r['pg_cpu_us_per_req'])} µs/req"
                      + ("" if r["valid"] else f" INVALID ({r['invalid_reason']})"),
                      file=sys.stderr, flush=True)
            return info, out
        finally:
            srv.stop()

    def best(d):
        ok = {k: v for k, v in d.items() if v["valid"]}
        if not ok:
            raise Skip("every sweep run was invalid: " + "; ".join(
                f"{k}: {v.get('invalid_reason')}" for k, v in d.items()))
        return max(ok, key=lambda k: ok[k]["rps"])

    brief = lambda r: {k: r.get(k) for k in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_req",
                                              "pg_cpu_us_per_req", "valid", "invalid_reason")}
    if "crmd" in servers:
        conns_list, pools = args.db_conns, args.db_pool_sizes
        sweep_d = args.duration
        res["settings"]["sweep_duration"] = sweep_d
        try:
            pool0 = 4 if 4 in pools else pools[0]
            if len(conns_list) > 1 or len(pools) > 1:
                print(f"  sweep: connections {conns_list} at pool {pool0}, then pool sizes {pools}",
                      file=sys.stderr, flush=True)
                info, runs = trial(pool0, conns_list, sweep_d)
                best_c = best(runs)
                res["sweep"]["conns"] = {c: brief(r) for c, r in runs.items()}
                by_pool = {pool0: runs[best_c]}
                for p in pools:
                    if p not in by_pool:
                        by_pool[p] = trial(p, [best_c], sweep_d)[1][best_c]
                best_p = best(by_pool)
                res["sweep"]["pool"] = {p: brief(by_pool[p]) for p in sorted(by_pool)}
            else:
                best_c, best_p = conns_list[0], pools[0]
            res["settings"].update(conns=best_c, pool=best_p)
            print(f"  chosen: wrk -c{best_c}, --db-pool-size {best_p}", file=sys.stderr, flush=True)
        except Skip as e:
            skip("crmd", str(e))

    for rnd in range(args.rounds):
        order = servers if rnd % 2 == 0 else list(reversed(servers))
        for s in order:
            if s in skipped:
                continue
            if s == "crmd":
                srv = new_crmd(res["settings"]["pool"])
                try:
                    try:
                        info = srv.start()
                    except Skip as e:
                        skip("crmd", str(e))
                        continue
                    if res["servers"]["crmd"]["cmd"] is None:
                        res["servers"]["crmd"]["cmd"] = redact(shlex.join(srv.cmd), db)
                        res["servers"]["crmd"]["check"] = info
                        print(f"  crmd: {info['status']} {info['response_bytes']} bytes for {info['sample']}",
                              file=sys.stderr, flush=True)
                    db_wrk(srv, bench, db, res["settings"]["conns"], 1, latency=False)   # warm-up
                    r = db_crmd_run(srv, bench, db, res["settings"]["conns"], args.duration)
                finally:
                    srv.stop()
            else:
                pgbench_run(db, args.pgbench_clients, 1, measure=False)   # warm-up
                r = pgbench_run(db, args.pgbench_clients, args.duration)
            r["round"] = rnd
            res["servers"][s]["rounds"].append(r)
            print("  " + db_progress_line(s, rnd, r), file=sys.stderr, flush=True)

    if args.profile and "crmd" not in skipped and res["settings"].get("conns"):
        res["profile"] = db_profile(bench, db, new_crmd(res["settings"]["pool"]), res["settings"]["conns"], args)
    return res


def db_progress_line(s, rnd, r):
    parts = [f"round {rnd + 1} {s:7} {r['rps'] or 0:,.0f}/s", f"mean {fmt(r.get('mean_ms'))} ms"]
    if s == "crmd":
        parts.append(f"p50 {fmt(r.get('p50_ms'))} p99 {fmt(r.get('p99_ms'))} ms")
        parts.append(f"crmd {fmt(r.get('server_cpu_us_per_req'))} µs/req ({r['server_cpu_util']:.2f} cores)")
    parts.append(f"pg {fmt(r.get('pg_cpu_us_per_req'))} µs/req ({fmt(r.get('pg_cpu_util'))} cores)")
    parts.append(f"client {r['client_cpu_util']:.2f} cores, other {fmt(r.get('other_util'))}, load {r['loadavg']:.2f}")
    if not r["valid"]:
        why = r.get("invalid_reason") or f"failed transactions {r.get('failed')}"
        logs = f"; crmd log: {r['crmd_log_statuses']}" if r.get("crmd_log_statuses") else ""
        parts.append(f"INVALID ({why}{logs}; excluded from medians)")
    return " | ".join(parts)


def db_profile(bench, db, srv, conns, args, seconds=5):
    """perf record of crmd for `seconds` during a wrk run (not a measured round); the top symbols."""
    if not shutil.which("perf"):
        return {"error": "perf not found (apt-get install linux-perf)"}
    out_data = os.path.join(srv.tmp, "perf.data")
    try:
        srv.start()
        db_wrk(srv, bench, db, conns, 1, latency=False)
        cmd = ["taskset", "-c", CLIENT_CPU, "perf", "record", "-F", "999", "-g", "-o", out_data,
               "-p", str(srv.proc.pid), "--", "sleep", str(seconds)]
        w = subprocess.Popen(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds + 2}s",
                              "-H", bench.headers[0]] + (["-s", os.path.join(BENCH_DIR, bench.plain_script)]
                                                          if bench.plain_script else [])
                             + [f"http://127.0.0.1:{srv.port}{bench.path}"]
                             + (["--"] + [a.replace("{ids}", db.ids_file) for a in bench.script_args]
                                if bench.script_args else []),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        LIVE.append(w)
        try:
            time.sleep(1)
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
            w.communicate(timeout=seconds + 30)
        finally:
            kill_tree(w, grace=1.0)
        if p.returncode != 0:
            return {"error": f"perf record failed: {p.stderr[-500:]}"}
    except Skip as e:
        return {"error": str(e)}
    finally:
        srv.stop()
    rep = subprocess.run(["perf", "report", "-i", out_data, "--stdio", "--no-children", "--sort", "dso,symbol",
                          "-g", "none", "--percent-limit", "0.7"], capture_output=True, text=True, timeout=120)
    # (perf 6.x appends empty IPC columns, "-  -", when the samples carry no branch data)
    lines = [re.sub(r"(\s+-)+\s*$", "", l) for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
    m = re.search(r"^# Samples: (\S+)", rep.stdout, re.M)
    if m:
        lines.insert(0, f"({m.group(1)} samples)")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"perf-{bench.name}.txt")
    with open(path, "w") as f:
        f.write(rep.stdout)
    return {"top": lines[:40], "report": os.path.relpath(path, REPO), "seconds": seconds, "conns": conns}


def write_db_markdown(bench, res, meds, args, servers, meta):
    begin, end = f"<!-- BEGIN bench:{bench.name} -->", f"<!-- END bench:{bench.name} -->"
    m = meta["machine"]
    skipped = "".join(f"\n- {s} not measured: {why.splitlines()[0]}" for s, why in res["skipped"].items())
    cmds = "".join(f"\n- {s}: `{d['cmd']}`" for s, d in res["servers"].items() if d["cmd"])
    wrk_cmd = next((r["cmd"] for r in res["servers"].get("crmd", {}).get("rounds", []) if r.get("cmd")), None)
    if wrk_cmd:
        cmds += f"\n- wrk: `{re.sub(r'127.0.0.1:[0-9]+', '127.0.0.1:PORT', wrk_cmd)}`"
    warn = db_noise_warning(meds, servers)
    summary = "\n".join(f"- {l}" for l in db_summary(res, meds))
    body = f"""{begin}
## {bench.title}

Measured {meta['date']} on {m['cpu_model']}, {m['cpus']} CPUs, kernel {m['kernel']}
({m['wrk']}; {m.get('postgres', 'PostgreSQL ?')}; commit {m['git_commit']}; load average at start {m['loadavg_at_start'][0]:.2f}).

Command: `{meta['command']}` ({args.rounds} round{"s" if args.rounds != 1 else ""} × {args.duration} s per run; medians, range in parentheses;
crmd on CPU {SERVER_CPU}, wrk and pgbench on CPU {CLIENT_CPU}, PostgreSQL unpinned).
{bench.notes}

{db_table(res, meds, servers)}

{summary}
{chr(10) + "**Warning:** " + warn + chr(10) if warn else ""}
Commands:{cmds}{skipped}
{end}"""
    replace_section(begin, end, body)
    print(f"updated {os.path.relpath(BENCHMARKS_MD, os.getcwd())} section {bench.name!r}", file=sys.stderr)


def replace_section(begin, end, body):
    try:
        with open(BENCHMARKS_MD) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# crmd benchmarks\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + body + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    with open(BENCHMARKS_MD, "w") as f:
        f.write(text)


def run_db(bench, args, servers, tmp_root, results, meta):
    """A database benchmark: run, print its table and summary, optionally --write it."""
    res = run_db_benchmark(bench, args, servers, tmp_root)
    meds = db_medians(res)
    res["medians"] = meds
    res["settings"]["duration"] = args.duration
    res["settings"]["rounds"] = args.rounds
    results["benchmarks"][bench.name] = res
    measured = [s for s in servers if res["servers"][s]["rounds"]]
    print(f"\n### {bench.title}\n")
    print(f"(1-min load average at the start of the run {meta['machine']['loadavg_at_start'][0]:.2f}; "
          f"per run in the last row)\n")
    print(db_table(res, meds, measured) if measured else "(nothing measured)")
    if measured:
        print()
        for line in db_summary(res, meds):
            print(f"- {line}")
    for s, why in res["skipped"].items():
        print(f"\n{s} skipped: {why.splitlines()[0]}")
    warning = db_noise_warning(meds, measured)
    if warning:
        print(f"\nWARNING: {warning}")
    prof = res.get("profile")
    if prof:
        if prof.get("error"):
            print(f"\nprofile: {prof['error']}")
        else:
            print(f"\ncrmd profile (perf record -g, {prof['seconds']} s at c{prof['conns']}; self time; "
                  f"full report {prof['report']}):\n")
            print("\n".join("    " + l for l in prof["top"][:25]))
    print(flush=True)
    if args.write and measured:
        write_db_markdown(bench, res, meds, args, measured, meta)
