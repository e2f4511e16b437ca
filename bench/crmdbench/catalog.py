"""The benchmarks: what each one requests, from which servers, with which settings."""
import dataclasses
import os
import re
import subprocess
import sys

from .procs import (REPO, Skip)

# --------------------------------------------------------------------------- benchmarks

# Headers every crmd response carries besides Date/Content-Type/Content-Length (API.md).
# nginx adds the same set (with per-request values where crmd has them) so that response
# sizes, and the work of producing them, are comparable.
#
# The per-request values (id, timings) are fixed placeholders of typical length by default:
# the baseline is nginx producing the same bytes as cheaply as it can. With
# --nginx-dynamic-headers nginx computes them ($request_id, $request_time) instead; note that
# $request_id costs nginx an OpenSSL RAND_bytes call per request, roughly a third of its
# throughput on /api/health here.
NGINX_DYNAMIC_HEADERS = {
    "X-Request-Id": "$request_id",
    "X-Response-Time": "${request_time}ms",
    "Server-Timing": "total;dur=$request_time",
}
NGINX_COMMON_HEADERS = [
    ("X-Request-Id", "0123abcd-000000000001"),   # the shape crmd sends
    ("X-Response-Time", "0.012ms"),
    ("Server-Timing", "total;dur=0.012"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
]


@dataclasses.dataclass
class Bench:
    name: str                       # --only NAME, key in results and BENCHMARKS.md
    title: str                      # section title in BENCHMARKS.md
    path: str                       # request path (the URL wrk and the checks use)
    nginx_body: str                 # body nginx returns: the same bytes crmd is expected to send
    method: str = "GET"
    headers: list = dataclasses.field(default_factory=list)   # ["X-API-Key: ..."], sent by every client
    content_type: str = "application/json"
    status: int = 200               # expected status from both servers
    servers: tuple = ("crmd", "nginx")
    measures: tuple = ("plain", "pipeline", "idle")
    plain_script: str = None        # wrk Lua script for plain runs (e.g. random ids); None = fixed URL
    pipeline_script: str = "pipeline.lua"
    pipeline_args: tuple = ()       # extra args after depth, e.g. a path
    nginx_location: str = None      # nginx location match; default "= <path without query>"
    nginx_headers: list = dataclasses.field(default_factory=lambda: list(NGINX_COMMON_HEADERS))
    nginx_extra: str = ""           # extra directives inside the nginx location
    crmd_args: list = dataclasses.field(default_factory=list)  # appended to `crmd serve ...`
    crmd_env: dict = dataclasses.field(default_factory=dict)   # on top of the defaults below
    needs_stack: bool = False       # needs dev/stack (PostgreSQL, Redis) up; see stack_env()
    check_body: bool = True         # warn when crmd's body differs from nginx_body
    notes: str = ""
    kind: str = "http"              # "http": crmd vs nginx (run_benchmark); "db": crmd over
                                    # PostgreSQL, optionally vs pgbench (run_db_benchmark)
    duration: int = 5               # seconds per measured run (--duration overrides)
    quick_duration: int = 3         # the same under --quick
    script_args: tuple = ()         # db: arguments after `--` for plain_script ("{ids}": the id file)


# The database benchmarks measure reads served from PostgreSQL on every request: crmd's
# in-process response cache is turned off (CACHE_MB=0; an environment variable, so that a
# binary without the option still starts). Every run also checks that crmd's PostgreSQL
# backends did work for it (DB_MIN_PG_US_PER_REQ).
DB_CRMD_ENV = {"CACHE_MB": "0"}
DB_MIN_PG_US_PER_REQ = 1.0

BENCHMARKS = [
    Bench(
        name="health",
        title="Foundation: /api/health vs nginx",
        path="/api/health",
        nginx_body='{"status":"healthy"}',
        nginx_headers=NGINX_COMMON_HEADERS + [("Cache-Control", "no-store")],
        notes="crmd answers from its last background probe; nginx `return 200` of the same bytes "
              "with the same header set.",
    ),
    # Database benchmarks (kind="db", run_db_benchmark): crmd in front of the dev stack's
    # PostgreSQL, database crmd_bench seeded at scale 1, the key of org 3 ("Benchmark Org",
    # tier unlimited). No nginx counterpart; "company" is compared with pgbench on the same
    # PostgreSQL in the same run.
    Bench(
        name="company",
        title="GET /api/companies/{id} from PostgreSQL vs pgbench -S",
        path="/api/companies/",
        nginx_body="",
        kind="db",
        servers=("crmd", "pgbench"),
        measures=(),
        plain_script="companies.lua",
        script_args=("{ids}",),
        needs_stack=True,
        crmd_env=dict(DB_CRMD_ENV),
        duration=10,
        quick_duration=5,
        notes="crmd (1 reactor thread on CPU 1) answers every request with a primary-key read of a "
              "random company of org 3 from PostgreSQL; pgbench runs `-S -M prepared` (one "
              "primary-key SELECT per transaction, scale 10) against the same PostgreSQL, with its "
              "client on CPU 0 like wrk. PostgreSQL's backends are not pinned: they use both CPUs, "
              "in both cases.",
    ),
    Bench(
        name="deals",
        title="GET /api/deals?limit=50&includeRelationships=true",
        path="/api/deals?limit=50&includeRelationships=true",
        nginx_body="",
        kind="db",
        servers=("crmd",),
        measures=(),
        needs_stack=True,
        crmd_env=dict(DB_CRMD_ENV),
        duration=10,
        quick_duration=5,
        notes="The first page of org 3's deals (50 rows, newest first) with company, stage and "
              "contact embedded, read from PostgreSQL on every request (response cache off). "
              "No pgbench counterpart.",
    ),
    # Stack benchmarks (kind="stack", run_stack_benchmark): crmd over crmd_bench with its response
    # cache on (CACHE_MB default 256) and the stack's Redis, against another variant in the same
    # run (nginx, the same crmd with another request or key, pgbench). Builders: STACK_BUILDERS.
    Bench(
        name="cache",
        title="GET /api/companies/{id} from the L1 cache vs nginx",
        path="/api/companies/",
        nginx_body="",
        kind="stack",
        servers=("crmd", "nginx"),
        needs_stack=True,
        notes="crmd answers a random id of a warm set of 1,000 companies of org 3 (every id fetched once "
              "before measuring, then checked to answer `X-Cache: HIT`; each run is checked on /metrics to "
              "be ≥ 99 % L1 hits): routing, key authentication, cache lookup. nginx `return 200` of a "
              "company body of crmd's median size with crmd's HIT response headers (fixed values), for "
              "the same request URLs. Targets: CPU per request ≤ 1.0× nginx, pipelined throughput ≥ 3×, "
              "p99 ≤ nginx.",
    ),
    Bench(
        name="gzip",
        title="gzip cost: GET /api/deals?limit=50&includeRelationships=true from L1, gzip vs identity",
        path="/api/deals?limit=50&includeRelationships=true",
        nginx_body="",
        kind="stack",
        servers=("crmd",),
        needs_stack=True,
        notes="The same cached page (org 3's first 50 deals with company, stage and contact embedded, an "
              "L1 hit on every request) requested with `Accept-Encoding: gzip` and with "
              "`Accept-Encoding: identity`; a fresh crmd per variant and round.",
    ),
    Bench(
        name="limiter",
        title="Rate limiter cost: the cached GET with a limited key vs an unlimited one",
        path="/api/companies/",
        nginx_body="",
        kind="stack",
        servers=("crmd",),
        needs_stack=True,
        notes="The cache benchmark's request (a warm set of 1,000 companies, L1 hits) with the rate limiter "
              "on for both variants (RATE_LIMIT_WHITELIST empty): `limited` sends a key of an organization "
              "whose tier limit is raised far above the benchmark's rate (every request takes the limiter's "
              "full path, none is rejected; checked on /metrics), `unlimited` the org 3 key (tier "
              "unlimited: no limiter). Target: the limiter costs ≤ 5 % of server CPU per request and of "
              "pipelined throughput.",
    ),
    Bench(
        name="dashboard",
        title="GET /api/dashboard from the cache vs ?refresh=true",
        path="/api/dashboard",
        nginx_body="",
        kind="stack",
        servers=("crmd",),
        needs_stack=True,
        duration=10,
        quick_duration=5,
        notes="Org 3's dashboard (one call replacing six) answered from L1, and with `?refresh=true` on "
              "every request: cache bypass, the dashboard's queries on PostgreSQL, refill.",
    ),
    Bench(
        name="graphql",
        title="GraphQL vs its REST twin: uncached (PostgreSQL every request) and cached",
        path="/graphql",
        nginx_body="",
        kind="stack",
        servers=("crmd",),
        needs_stack=True,
        duration=10,
        quick_duration=5,
        notes="`deals(first: 50)` with company, contact and stage against `GET /api/deals?limit=50&"
              "includeRelationships=true`, both with the response cache off (CACHE_MB=0: PostgreSQL on every "
              "request); the nested dashboard query (20 companies, 5 deals each with their stage) uncached; and "
              "the GraphQL and REST requests answered from L1. SQL statements per request from Server-Timing.",
    ),
    Bench(
        name="activities",
        title="POST /api/activities vs a pgbench INSERT script",
        path="/api/activities",
        nginx_body="",
        kind="stack",
        servers=("crmd", "pgbench"),
        needs_stack=True,
        duration=10,
        quick_duration=5,
        notes="crmd creates one activity per request (validation, the INSERT, cache invalidation, 201 with "
              "the row); pgbench runs bench/activities.pgbench, one `INSERT ... RETURNING` of the same row "
              "shape per transaction, against the same table. Target: crmd's rate ≥ 1.0× pgbench's.",
    ),
    Bench(
        name="mixed",
        title="Mixed dashboard-user workload",
        path="/",
        nginx_body="",
        kind="stack",
        servers=("crmd",),
        needs_stack=True,
        duration=10,
        quick_duration=5,
        notes="bench/mixed.lua: 70 % list and detail reads, 15 % dashboards, 10 % searches, 5 % writes "
              "(POST /api/activities), keys of several organizations; the cache starts cold each round "
              "(fresh crmd; L2 in Redis may hold entries of earlier rounds).",
    ),
]

CRMD_DEFAULT_ENV = {
    "LOG_LEVEL": "error",
    # health is limited to 200/min per IP for unauthenticated clients (API.md); the benchmark
    # clients are all on loopback.
    "RATE_LIMIT_WHITELIST": "127.0.0.0/8",
}


_STACK_ENV = None


def stack_env(bench):
    """Bring up the dev stack (PostgreSQL, Redis) for benchmarks that need it and return the
    environment `eval "$(dev/stack env)"` would export (DATABASE_URL, REDIS_URL). Done once per
    run; the stack is left running afterwards (tests and other work share it)."""
    global _STACK_ENV
    if _STACK_ENV is not None:
        return dict(_STACK_ENV)
    stack = os.path.join(REPO, "dev", "stack")
    if not os.access(stack, os.X_OK):
        raise Skip(f"benchmark {bench.name!r} needs the dev stack, and {stack} is missing")
    print("  dev/stack up", file=sys.stderr, flush=True)
    try:
        p = subprocess.run([stack, "up"], capture_output=True, text=True, timeout=180, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise Skip("dev/stack up did not finish within 180 s")
    if p.returncode != 0:
        raise Skip(f"dev/stack up failed ({p.returncode}):\n{(p.stdout + p.stderr)[-1500:]}")
    try:
        exports = subprocess.run([stack, "env"], capture_output=True, text=True, timeout=30, cwd=REPO)
        names = re.findall(r"^export ([A-Za-z_][A-Za-z0-9_]*)=", exports.stdout, re.M)
        p = subprocess.run(["bash", "-c", 'eval "$(dev/stack env)" && env -0'], capture_output=True,
                           text=True, timeout=30, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise Skip("dev/stack env did not answer within 30 s")
    env = dict(kv.split("=", 1) for kv in p.stdout.split("\0") if "=" in kv)
    if p.returncode != 0 or "DATABASE_URL" not in names or not env.get("DATABASE_URL"):
        raise Skip(f"dev/stack env gave no DATABASE_URL:\n{exports.stdout}{exports.stderr}{p.stderr}")
    _STACK_ENV = {k: env[k] for k in names if k in env}
    return dict(_STACK_ENV)
