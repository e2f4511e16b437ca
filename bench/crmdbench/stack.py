"""Stack benchmarks: crmd on the whole dev stack (cache, limiter, dashboard, writes, the mixed workload)."""
import dataclasses
import datetime
import json
import os
import random
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time

from .procs import (BENCHMARKS_MD, BENCH_DIR, CLIENT_CPU, CLK_TCK, Fatal, SERVER_CPU, Skip, cpu_line, cpu_ticks, http_get)
from .catalog import (Bench, DB_MIN_PG_US_PER_REQ)
from .http import (Nginx, table, wrk)
from .table import fmt, markdown_table, medians as table_medians
from .db import (BENCH_DB, BENCH_ORG, DbCrmd, KEYS_FILE, children_cpu_s, cpu_all_busy, crmd_clean_env, log_statuses, pgbench_run, prepare_db, psql, redact, replace_section, run_step, ticks_delta)

# --------------------------------------------------------------------------- stack benchmarks
#
# kind="stack": cache, gzip, limiter, dashboard, activities, mixed. crmd over the benchmark
# database with its response cache on (CACHE_MB default) and Redis (REDIS_URL of the stack),
# compared in the same run with another "variant": nginx returning a body of the same size
# (cache), the same crmd with another request or key (gzip, limiter, dashboard), pgbench with
# a custom script (activities), or alone (mixed). Every variant gets a fresh server per round,
# variants alternate within rounds (A, B; B, A; ...), medians over rounds. A builder function
# per benchmark (STACK_BUILDERS) probes the endpoints with a throw-away crmd first: an endpoint
# answering 404/405 is reported as "endpoint missing" and the benchmark (or that request kind)
# is not run, instead of failing the whole run.

STACK_CACHE_IDS = 1000             # the warm set of the cached-GET benchmark
STACK_HIT_MIN = 0.99               # l1_hit share of the cache lookups a cached run must reach
LIMIT_HIGH = "100000000/60/100000000"   # a tier limit far above any benchmark rate (1.67M/s, burst 1e8)
BENCH_SUBJECT = "bench:"           # subject prefix of the activities the benchmarks insert (deleted after)


class EndpointMissing(Skip):
    pass


@dataclasses.dataclass
class Variant:
    name: str                      # the table column
    server: str                    # "crmd", "nginx" or "pgbench"
    bench: Bench = None            # path, headers (wrk -H) and crmd_env of this variant
    script: str = None             # wrk Lua script of the plain run (None: the fixed URL)
    script_args: tuple = ()
    pipeline_script: str = None    # wrk Lua script of the pipelined run; "{depth}" in pipeline_args
    pipeline_args: tuple = ()
    measures: tuple = ("plain",)   # "plain" (wrk --latency at --conns) and/or "pipeline"
    check: object = None           # crmd: fn(srv) -> info dict, after start (warm-up, HIT checks)
    expect: str = None             # "hits": cache lookups must be L1 hits; "pg": PostgreSQL must work
    limiter: str = None            # "on": every request must pass the limiter; "off": none may
    pgbench_cmd: list = None       # pgbench: the command (duration filled in per run)
    info: dict = None              # what the builder found (response size, body sample)


class KeepAlive:
    """A persistent HTTP/1.1 connection for the checks: one request at a time."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def request(self, method, path, headers=(), body=None):
        data = body.encode() if isinstance(body, str) else (body or b"")
        req = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n" + "".join(h + "\r\n" for h in headers)
        if body is not None:
            req += f"Content-Length: {len(data)}\r\n"
        self.s.sendall(req.encode() + b"\r\n" + data)
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise OSError("connection closed before headers")
            self.buf += d
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip()] = v.strip()
        n = int(hget(hdrs, "Content-Length") or 0)
        while len(rest) < n:
            d = self.s.recv(65536)
            if not d:
                raise OSError("connection closed in the body")
            rest += d
        self.buf = rest[n:]
        if (hget(hdrs, "Connection") or "").lower() == "close":
            self.s.close()     # the server ends the connection: the next request gets a new one
            self.s = socket.create_connection(("127.0.0.1", self.port), timeout=self.s.gettimeout() or 5.0)
            self.buf = b""
        return status, hdrs, rest[:n], len(head) + 4 + n

    def close(self):
        self.s.close()


def hget(hdrs, name):
    return next((v for k, v in hdrs.items() if k.lower() == name.lower()), None)


def crmd_metrics(srv):
    """The counters of crmd's /metrics (admin port) the stack benchmarks use: cache lookups by
    result, fills, rate limiter counts (a counter crmd lacks is simply absent)."""
    try:
        status, _, body, _ = http_get(srv.admin_port, "/metrics", timeout=5)
    except (OSError, ValueError, IndexError):
        return {}
    if status != 200:
        return {}
    out = {}
    for line in body.decode("utf-8", "replace").splitlines():
        m = re.match(r'crmd_cache_requests_total\{result="(\w+)"\} (\d+)$', line)
        if m:
            out[f"cache_{m.group(1)}"] = int(m.group(2))
            continue
        m = re.match(r'crmd_cache_fills_total (\d+)$', line)
        if m:
            out["cache_fills"] = int(m.group(1))
            continue
        m = re.match(r'crmd_ratelimit_(\w+?)(?:\{[^}]*\})? (\d+)$', line)
        if m:
            out[f"rl_{m.group(1)}"] = out.get(f"rl_{m.group(1)}", 0) + int(m.group(2))
    return out


CACHE_RESULTS = ("l1_hit", "l2_hit", "l2_miss", "l2_error", "coalesced", "bypass")


class StackCrmd(DbCrmd):
    """DbCrmd whose start-up check is the variant's (warm-up pass, X-Cache: HIT checks...)."""

    def __init__(self, variant, args, tmp, db, pool):
        super().__init__(variant.bench, args, tmp, db, pool)
        self.variant = variant

    def check(self):
        try:
            return self.variant.check(self) if self.variant.check else {}
        except (OSError, ValueError) as e:
            raise Skip(f"start-up check failed: {e}{self.log_tail()}")


def stack_pool(args):
    return 4 if 4 in args.db_pool_sizes else args.db_pool_sizes[0]


def stack_measure(srv, v, mode, args, duration, db):
    """One measured wrk run (mode plain or pipeline) against a started server, with the CPU time
    of the server, of its PostgreSQL backends (crmd), of wrk and of everything else, and crmd's
    cache and limiter counters before and after."""
    if mode == "plain":
        conns, script, sargs, latency = args.conns, v.script, v.script_args, True
    else:
        conns, script, latency = args.pipeline_conns, v.pipeline_script or "pipeline.lua", False
        sargs = tuple(str(a).replace("{depth}", str(args.depth)) for a in (v.pipeline_args or ("{depth}",)))
    is_crmd = isinstance(srv, DbCrmd)
    pids = srv.measured_pids()
    bk0 = srv.backends() if is_crmd else {}
    m0 = crmd_metrics(srv) if is_crmd else {}
    load = os.getloadavg()[0]
    b1_0, _ = cpu_line(SERVER_CPU)
    busy0, c0, cl0, t0 = cpu_all_busy(), cpu_ticks(pids), children_cpu_s(), time.monotonic()
    r = wrk(srv.bench, srv.port, conns=conns, duration=duration, script=script, script_args=sargs, latency=latency)
    wall = time.monotonic() - t0
    busy1, c1, cl1 = cpu_all_busy(), cpu_ticks(pids), children_cpu_s()
    b1_1, _ = cpu_line(SERVER_CPU)
    bk1 = srv.backends() if is_crmd else {}
    m1 = crmd_metrics(srv) if is_crmd else {}
    if srv.proc.poll() is not None:
        raise Fatal(f"{srv.kind} died during the run{srv.log_tail()}")
    srv_s, pg_s, client_s = (c1 - c0) / CLK_TCK, ticks_delta(bk0, bk1) / CLK_TCK, cl1 - cl0
    n = r["requests"]
    r.update({
        "mode": mode, "conns": conns, "wall_s": round(wall, 3), "loadavg": load,
        "server_cpu_s": srv_s, "server_cpu_util": round(srv_s / wall, 3),
        "server_cpu_us_per_req": srv_s * 1e6 / n if n else None,
        # CPU 1 time not spent in the server: other processes, interrupts, and (crmd) PostgreSQL
        "cpu1_other_util": round(max(0.0, (b1_1 - b1_0) / CLK_TCK - srv_s) / wall, 3),
        "client_cpu_util": round(client_s / wall, 3),
        "other_util": round(max(0.0, (busy1 - busy0) / CLK_TCK - srv_s - pg_s - client_s) / wall, 3),
        "cmd": redact(r["cmd"], db),
    })
    if is_crmd:
        r.update({"pg_cpu_s": pg_s, "pg_cpu_util": round(pg_s / wall, 3),
                  "pg_cpu_us_per_req": pg_s * 1e6 / n if n else None,
                  "backends_lost": len([p for p in bk0 if p not in bk1])})
        d = {k: m1[k] - m0.get(k, 0) for k in m1}
        r["counters"] = d
        lookups = sum(d.get(f"cache_{k}", 0) for k in CACHE_RESULTS)
        r["cache_lookups"] = lookups
        r["l1_hit_ratio"] = d.get("cache_l1_hit", 0) / lookups if lookups else None
        r["cache_fills"] = d.get("cache_fills")
    why = []
    if n == 0:
        why.append("no responses")
    if r["non2xx"]:
        why.append(f"{r['non2xx']} non-2xx responses")
    if any(r["socket_errors"].values()):
        why.append(f"socket errors {r['socket_errors']}")
    if is_crmd:
        if r["backends_lost"]:
            why.append(f"{r['backends_lost']} PostgreSQL connections went away")
        if v.expect == "hits":
            if not m1:
                why.append("no /metrics on the admin port: cannot tell the L1 hit ratio")
            elif r["l1_hit_ratio"] is None or r["l1_hit_ratio"] < STACK_HIT_MIN or r["cache_lookups"] < 0.99 * n:
                why.append(f"not served from L1: {r['counters']} for {n} responses")
        if v.expect == "pg" and n and (r["pg_cpu_us_per_req"] or 0) < DB_MIN_PG_US_PER_REQ:
            why.append(f"PostgreSQL backends used {fmt(r['pg_cpu_us_per_req'])} µs per request: not served "
                       f"from PostgreSQL")
        d = r["counters"]
        if v.limiter == "on" and "rl_allowed" in d and d["rl_allowed"] < 0.99 * n:
            why.append(f"the limiter allowed {d['rl_allowed']} requests of {n}: not every request took its path")
        if v.limiter and d.get("rl_rejected"):
            why.append(f"the limiter rejected {d['rl_rejected']} requests")
        if v.limiter == "off" and d.get("rl_allowed"):
            why.append(f"the limiter counted {d['rl_allowed']} requests of the unlimited key")
    if why:
        r["invalid_reason"] = "; ".join(why)
        if is_crmd:
            r["crmd_log_statuses"] = log_statuses(srv.log)
    r["valid"] = not why
    return r


def run_stack_benchmark(bench, args, servers, tmp_root):
    res = {"bench": dataclasses.asdict(bench), "servers": {}, "skipped": {}, "settings": {}, "notes": []}
    try:
        db = prepare_db(bench, args, tmp_root)
        res["binary"] = db.binary_info
        try:
            variants = STACK_BUILDERS[bench.name](bench, args, db, tmp_root, res)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise Skip(f"probing the endpoints failed: {type(e).__name__}: {e}")
    except Skip as e:
        res["skipped"]["all"] = str(e)
        res["endpoint_missing"] = isinstance(e, EndpointMissing)
        print(f"  skip {bench.name}: {e}", file=sys.stderr, flush=True)
        return res, []
    if servers:
        variants = [v for v in variants if v.server in servers]
    pool = stack_pool(args)
    res["settings"].update(pool=pool, conns=args.conns, pipeline_conns=args.pipeline_conns, depth=args.depth)
    for v in variants:
        res["servers"][v.name] = {"rounds": [], "cmd": None, "server": v.server, "info": v.info}
    tmp_n = [0]
    try:
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for v in order:
                if v.name in res["skipped"]:
                    continue
                tmp_n[0] += 1
                tmp = tempfile.mkdtemp(prefix=f"{v.server}-{tmp_n[0]}-", dir=tmp_root)
                sample = {"round": rnd}
                if v.server == "pgbench":
                    pgbench_run(db, args.pgbench_clients, 1, measure=False, cmd=pgbench_with_t(v.pgbench_cmd, 1),
                                dbname=BENCH_DB)
                    r = pgbench_run(db, args.pgbench_clients, args.duration, dbname=BENCH_DB,
                                    cmd=pgbench_with_t(v.pgbench_cmd, args.duration))
                    res["servers"][v.name]["cmd"] = r["cmd"]
                    sample["plain"] = r
                else:
                    srv = StackCrmd(v, args, tmp, db, pool) if v.server == "crmd" else Nginx(v.bench, args, tmp)
                    try:
                        try:
                            info = srv.start()
                        except Skip as e:
                            res["skipped"][v.name] = str(e)
                            print(f"  skip {v.name}: {e}", file=sys.stderr, flush=True)
                            continue
                        if res["servers"][v.name]["cmd"] is None:
                            res["servers"][v.name]["cmd"] = redact(shlex.join(srv.cmd), db).replace(tmp, "$DIR")
                            if v.server == "nginx":
                                res["servers"][v.name]["nginx_conf"] = srv.config().replace(tmp, "$DIR")
                        sample["response_bytes"] = (v.info or {}).get("response_bytes") or info.get("response_bytes")
                        wrk(srv.bench, srv.port, conns=args.conns, duration=1, script=v.script,
                            script_args=v.script_args, latency=False)     # warm-up, not recorded
                        for mode in ("plain", "pipeline"):
                            if mode in v.measures and mode in args.measures:
                                sample[mode] = stack_measure(srv, v, mode, args, args.duration, db)
                    finally:
                        srv.stop()
                res["servers"][v.name]["rounds"].append(sample)
                print("  " + stack_progress_line(v.name, rnd, sample), file=sys.stderr, flush=True)
    finally:
        if bench.name in ("activities", "mixed"):
            cleanup_activities(db)
    return res, variants


def pgbench_with_t(cmd, duration):
    cmd = list(cmd)
    cmd[cmd.index("-T") + 1] = str(duration)
    return cmd


def cleanup_activities(db):
    """Delete the activities the benchmarks inserted (subject BENCH_SUBJECT...), so that
    crmd_bench keeps its seeded size from run to run."""
    try:
        n = psql(db.url, f"WITH d AS (DELETE FROM activities WHERE subject LIKE '{BENCH_SUBJECT}%' RETURNING 1) "
                         f"SELECT count(*) FROM d", timeout=300)
        print(f"  deleted {n} benchmark activities from {BENCH_DB}", file=sys.stderr, flush=True)
    except Skip as e:
        print(f"  WARNING: could not delete the benchmark activities: {e}", file=sys.stderr, flush=True)


def stack_progress_line(name, rnd, sample):
    parts = [f"round {rnd + 1} {name:10}"]
    for mode in ("plain", "pipeline"):
        r = sample.get(mode)
        if not r:
            continue
        s = f"{mode} {r.get('rps') or 0:,.0f}/s"
        if r.get("p99_ms") is not None:
            s += f" p50 {fmt(r.get('p50_ms'))} p99 {fmt(r.get('p99_ms'))} ms"
        if r.get("mean_ms") is not None and r.get("p99_ms") is None and mode == "plain":
            s += f" mean {fmt(r.get('mean_ms'))} ms"
        if r.get("server_cpu_us_per_req") is not None:
            s += f" {fmt(r['server_cpu_us_per_req'])} µs/req ({r['server_cpu_util']:.2f} cores)"
        if r.get("pg_cpu_us_per_req") is not None:
            s += f" pg {fmt(r['pg_cpu_us_per_req'])} µs/req"
        if r.get("l1_hit_ratio") is not None:
            s += f" L1 hits {r['l1_hit_ratio']:.1%}"
        if r.get("other_util") is not None:
            s += f" other {fmt(r['other_util'])}"
        if not r.get("valid"):
            s += f" INVALID ({r.get('invalid_reason') or 'failed transactions %s' % r.get('failed')}; excluded)"
        parts.append(s)
    return " | ".join(parts)


STACK_METRICS = [
    # key, mode, field, label, unit, better
    ("cpu", "plain", "server_cpu_us_per_req", "server CPU per request, plain c{conns}", "µs", "lower"),
    ("prps", "pipeline", "rps", "pipelined throughput, c{pconns} × {depth}", "req/s", "higher"),
    ("pcpu", "pipeline", "server_cpu_us_per_req", "server CPU per request, pipelined", "µs", "lower"),
    ("rps", "plain", "rps", "plain throughput, c{conns}{pgb}", "/s", "higher"),
    ("p50", "plain", "p50_ms", "plain p50 latency", "ms", "lower"),
    ("p99", "plain", "p99_ms", "plain p99 latency", "ms", "lower"),
    ("mean", "plain", "mean_ms", "plain mean latency", "ms", "lower"),
    ("pg", "plain", "pg_cpu_us_per_req", "PostgreSQL backend CPU per request, plain", "µs", "lower"),
    ("hit", "plain", "l1_hit_ratio", "L1 hit ratio (l1_hit ÷ cache lookups), plain", "", "-"),
    ("phit", "pipeline", "l1_hit_ratio", "L1 hit ratio, pipelined", "", "-"),
    ("util", "plain", "server_cpu_util", "server CPU use, plain (crmd/nginx on CPU 1)", "cores", "-"),
    ("putil", "pipeline", "server_cpu_util", "server CPU use, pipelined", "cores", "-"),
    ("pgutil", "plain", "pg_cpu_util", "PostgreSQL backend CPU use, plain (both CPUs)", "cores", "-"),
    ("client", "plain", "client_cpu_util", "client CPU use, plain (wrk / pgbench, CPU 0)", "cores", "-"),
    ("other1", "plain", "cpu1_other_util", "other load on CPU 1, plain (noise)", "cores", "-"),
    ("other1p", "pipeline", "cpu1_other_util", "other load on CPU 1, pipelined (noise)", "cores", "-"),
    ("other", "plain", "other_util", "everything else on both CPUs, plain (noise)", "cores", "-"),
    ("load", "plain", "loadavg", "1-min load average before the plain run", "", "-"),
    ("bytes", None, "response_bytes", "response size (headers + body)", "bytes", "-"),
]


def stack_medians(res):
    by_key = {m[0]: m for m in STACK_METRICS}

    def value(r, key):
        _, mode, field, *_ = by_key[key]
        if mode is None:
            return r.get(field)
        return r[mode][field] if mode in r and r[mode].get("valid") and r[mode].get(field) is not None else None

    out = table_medians(res, list(by_key), value)
    for name, d in res["servers"].items():
        out[name]["invalid_runs"] = sum(1 for r in d["rounds"] for m in ("plain", "pipeline")
                                        if m in r and not r[m].get("valid"))
    return out


def stack_table(res, meds, names, args):
    pgb = any(res["servers"][n].get("server") == "pgbench" for n in names)
    sub = {"conns": args.conns, "pconns": args.pipeline_conns, "depth": args.depth,
           "pgb": f" (pgbench: transactions/s, {args.pgbench_clients} clients)" if pgb else ""}
    rows = [(key, label.format(**sub), unit, better) for key, _, _, label, unit, better in STACK_METRICS]
    # against pgbench only where both measure the same thing: its latency is at 8 clients,
    # wrk's at --conns, so no ratio there
    return markdown_table(names, meds, rows, ratio=len(names) == 2, ratio_ok=lambda key: not pgb or key in ("rps", "pg"),
                          fmt_of=lambda key: (lambda x: f"{x:.1%}") if key in ("hit", "phit") else fmt)


def med(meds, name, key):
    m = meds.get(name, {}).get(key)
    return m["median"] if m else None


def stack_summary(bench, res, meds, names):
    """The issue's targets, as ratios of medians, and the notes of the builder."""
    lines = []

    def ratio(a, b, key):
        x, y = med(meds, a, key), med(meds, b, key)
        return x / y if x is not None and y else None

    def verdict(v, ok):
        return "" if v is None else (" (met)" if ok(v) else " (**not met**)")

    if bench.name == "cache" and {"crmd", "nginx"} <= set(names):
        c, t, p = ratio("crmd", "nginx", "cpu"), ratio("crmd", "nginx", "prps"), ratio("crmd", "nginx", "p99")
        lines.append("Targets (crmd ÷ nginx, medians): CPU per request "
                     f"**{c:.2f}**× (≤ 1.0){verdict(c, lambda v: v <= 1.0)}" if c is not None else
                     "CPU per request: not measured")
        if t is not None:
            lines.append(f"pipelined throughput **{t:.2f}**× (≥ 3){verdict(t, lambda v: v >= 3.0)}")
        if p is not None:
            lines.append(f"p99 **{p:.2f}**× (≤ 1.0){verdict(p, lambda v: v <= 1.0)}")
    if bench.name == "limiter" and {"limited", "unlimited"} <= set(names):
        for key, what, sign in (("cpu", "server CPU per request, plain", 1), ("pcpu", "server CPU per request, pipelined", 1),
                                ("prps", "pipelined throughput", -1)):
            r = ratio("limited", "unlimited", key)
            if r is not None:
                cost = (r - 1) * sign
                lines.append(f"limiter cost in {what}: **{cost:+.1%}**{' (lost)' if sign < 0 else ''} "
                             f"(limited ÷ unlimited = {r:.3f}; target ≤ 5 %)"
                             f"{verdict(cost, lambda v: v <= 0.05)}")
    if bench.name == "gzip" and {"gzip", "identity"} <= set(names):
        for key, what in (("cpu", "plain"), ("pcpu", "pipelined")):
            a, b = med(meds, "gzip", key), med(meds, "identity", key)
            if a is not None and b is not None:
                lines.append(f"gzip cost, {what}: {a - b:+.2f} µs per request ({a / b:.2f}× identity)")
        a, b = med(meds, "gzip", "bytes"), med(meds, "identity", "bytes")
        if a and b:
            lines.append(f"response size: gzip {a:,.0f} bytes, identity {b:,.0f} bytes ({a / b:.1%})")
    if bench.name == "activities" and {"crmd", "pgbench"} <= set(names):
        r = ratio("crmd", "pgbench", "rps")
        if r is not None:
            lines.append(f"crmd POST/s ÷ pgbench INSERT transactions/s (medians): **{r:.2f}** (target ≥ 1.0)"
                         f"{verdict(r, lambda v: v >= 1.0)}")
    if bench.name == "dashboard" and {"cached", "refresh"} <= set(names):
        r = ratio("cached", "refresh", "cpu")
        if r is not None:
            lines.append(f"a dashboard from L1 costs crmd {r:.1%} of the CPU of a refreshed one")
    if bench.name == "mixed" and "crmd" in names:
        lines.append(f"throughput {fmt(med(meds, 'crmd', 'rps'))} req/s, p50 {fmt(med(meds, 'crmd', 'p50'))} ms, "
                     f"p99 {fmt(med(meds, 'crmd', 'p99'))} ms, L1 hit ratio "
                     + (f"{med(meds, 'crmd', 'hit'):.1%}" if med(meds, 'crmd', 'hit') is not None else "–"))
    lines += res.get("notes", [])
    for name, d in meds.items():
        if d.get("invalid_runs"):
            lines.append(f"{name}: {d['invalid_runs']} invalid run(s) left out of the medians: " + "; ".join(
                r[m].get("invalid_reason") or f"failed transactions {r[m].get('failed')}"
                for r in res["servers"][name]["rounds"] for m in ("plain", "pipeline")
                if m in r and not r[m].get("valid")) + ".")
    if res.get("binary"):
        lines.append(f"crmd binary: {res['binary']}; --db-pool-size {res['settings'].get('pool')}.")
    return lines


def stack_noise_warning(meds, names):
    noisy = [v["median"] for n in names for k, v in meds.get(n, {}).items() if k in ("other1", "other1p")]
    noisy2 = [meds[n]["other"]["median"] for n in names if "other" in meds.get(n, {})]
    if (noisy and max(noisy) > 0.1) or (noisy2 and max(noisy2) > 0.25):
        return (f"other work used up to {max(noisy or [0]):.2f} of CPU {SERVER_CPU} and "
                f"{max(noisy2 or [0]):.2f} cores of the machine during the runs (medians); throughput and "
                f"latency figures are unreliable, CPU per request less so. Rerun on a quieter machine.")
    return None


def run_stack(bench, args, servers, tmp_root, results, meta):
    res, variants = run_stack_benchmark(bench, args, servers, tmp_root)
    meds = stack_medians(res)
    res["medians"] = meds
    res["settings"].update(duration=args.duration, rounds=args.rounds)
    results["benchmarks"][bench.name] = res
    names = [v.name for v in variants if res["servers"][v.name]["rounds"]]
    print(f"\n### {bench.title}\n")
    if "all" in res["skipped"]:
        why = res["skipped"]["all"]
        print(("endpoint missing: " if res.get("endpoint_missing") else "not run: ") + why)
        print(flush=True)
        return
    print(f"(1-min load average at the start of the run {meta['machine']['loadavg_at_start'][0]:.2f})\n")
    print(stack_table(res, meds, names, args) if names else "(nothing measured)")
    if names:
        print()
        for line in stack_summary(bench, res, meds, names):
            print(f"- {line}")
    for s, why in res["skipped"].items():
        print(f"\n{s} skipped: {why.splitlines()[0]}")
    warning = stack_noise_warning(meds, names)
    if warning:
        print(f"\nWARNING: {warning}")
    print(flush=True)
    if args.write and names:
        m = meta["machine"]
        begin, end = f"<!-- BEGIN bench:{bench.name} -->", f"<!-- END bench:{bench.name} -->"
        cmds = "".join(f"\n- {n}: `{res['servers'][n]['cmd']}`" for n in names if res["servers"][n]["cmd"])
        wrk_cmds = "".join(f"\n- wrk ({n}, {mode}): `{re.sub(r'127.0.0.1:[0-9]+', '127.0.0.1:PORT', r[mode]['cmd'])}`"
                           for n in names for r in res["servers"][n]["rounds"][:1] for mode in ("plain", "pipeline")
                           if mode in r and res["servers"][n]["server"] != "pgbench")
        summary = "\n".join(f"- {l}" for l in stack_summary(bench, res, meds, names))
        body = f"""{begin}
## {bench.title}

Measured {meta['date']} on {m['cpu_model']}, {m['cpus']} CPUs, kernel {m['kernel']}
({m['wrk']}; {m['nginx']}; {m.get('postgres', 'PostgreSQL ?')}; commit {m['git_commit']}; load average at start {m['loadavg_at_start'][0]:.2f}).

Command: `{meta['command']}` ({args.rounds} round{"s" if args.rounds != 1 else ""} × {args.duration} s per run; medians, range in parentheses;
servers on CPU {SERVER_CPU}, wrk and pgbench on CPU {CLIENT_CPU}, PostgreSQL and Redis unpinned).
{bench.notes}

{stack_table(res, meds, names, args)}

{summary}
{chr(10) + "**Warning:** " + warning + chr(10) if warning else ""}
Commands:{cmds}{wrk_cmds}
{end}"""
        replace_section(begin, end, body)
        print(f"updated {os.path.relpath(BENCHMARKS_MD, os.getcwd())} section {bench.name!r}", file=sys.stderr)


# ---- data the builders need

def org_key(db, org, role="admin"):
    """A valid key of organization org: from KEYS_FILE (the seed's demo keys, or an earlier run's),
    else a new one from `crmd keys create --org N --role ROLE`, appended there."""
    def known(key):
        if not re.fullmatch(r"[A-Za-z0-9_]+", key or ""):
            return False
        return psql(db.url, f"SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to('{key}', 'UTF8')) "
                            f"AND org_id = {int(org)} AND revoked_at IS NULL") == "1"
    keys = []
    try:
        with open(KEYS_FILE) as f:
            keys = json.load(f)
        for k in keys:
            if k.get("org_id") == org and known(k.get("key")):
                return k["key"]
    except (OSError, ValueError, AttributeError, TypeError):
        keys = []
    env = crmd_clean_env(db.binary, {k: v for k, v in db.crmd_env.items()})
    out = run_step(f"key for org {org}", [db.binary, "keys", "create", "--org", str(org), "--role", role], env, timeout=60)
    key = out.strip().splitlines()[-1].strip() if out.strip() else ""
    if not known(key):
        raise Skip(f"`crmd keys create --org {org}` gave no usable key")
    keys = [k for k in keys if isinstance(k, dict)] + [{"org_id": org, "role": role, "key": key}]
    fd = os.open(KEYS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f)
    return key


def org_ids(db, table, org, limit):
    return [int(x) for x in psql(db.url, f"SELECT id FROM {table} WHERE org_id = {int(org)} ORDER BY id LIMIT {int(limit)}").split()]


def write_ids(tmp_root, name, ids):
    path = os.path.join(tmp_root, name)
    with open(path, "w") as f:
        f.write("".join(f"{i}\n" for i in ids))
    return path


def stack_bench(bench, key, path=None, extra_headers=(), env=None):
    """The Bench of one variant: the key (and other headers) wrk sends, its path and crmd env."""
    return dataclasses.replace(bench, path=path or bench.path, headers=[f"X-API-Key: {key}"] + list(extra_headers),
                               crmd_env=dict(bench.crmd_env, **(env or {})))


def probe(db, args, tmp_root, bench, requests):
    """A throw-away crmd (not measured) for the builders: [(method, path, headers, body)] in
    order on one connection -> [(status, headers, body, size)]."""
    v = Variant(name="probe", server="crmd", bench=bench)
    srv = StackCrmd(v, args, tempfile.mkdtemp(prefix="probe-", dir=tmp_root), db, stack_pool(args))
    try:
        srv.start()
        out = []
        c = KeepAlive(srv.port)
        try:
            for r in requests:
                try:
                    out.append(c.request(*r))
                except OSError:
                    # closed without "Connection: close" (e.g. after an error answer): once more, anew
                    c.close()
                    c = KeepAlive(srv.port)
                    out.append(c.request(*r))
            return out
        finally:
            c.close()
    finally:
        srv.stop()


def missing(status):
    return status in (404, 405, 501)


def warm_and_check_hits(srv, paths, headers, sample=50, accept=None):
    """The warm-up pass (every path once, 200 expected), then a sample of them again: each must say
    X-Cache: HIT. Returns a HIT response's size and headers."""
    c = KeepAlive(srv.port)
    try:
        for p in paths:
            status, _, body, _ = c.request("GET", p, headers)
            if status != 200:
                raise Skip(f"warm-up: GET {p} answered {status}: {body[:200]!r}")
        last = None
        for p in random.sample(paths, min(sample, len(paths))):
            status, hdrs, body, size = c.request("GET", p, headers)
            x = hget(hdrs, "X-Cache")
            if status != 200 or (x or "").upper() != "HIT":
                raise Skip(f"after the warm-up pass GET {p} answered {status} with X-Cache: {x} (expected HIT)")
            if accept and not accept(hdrs, body):
                raise Skip(f"GET {p}: unexpected response {hdrs} {body[:100]!r}")
            last = (size, hdrs, body)
        return {"response_bytes": last[0], "headers": last[1], "warmed": len(paths), "checked": min(sample, len(paths))}
    finally:
        c.close()


# ---- the builders: one per benchmark, returning its variants

NGINX_SKIP_HEADERS = {"date", "content-type", "content-length", "connection", "server", "keep-alive"}


def build_cache(bench, args, db, tmp_root, res, org=BENCH_ORG, key=None, env=None, name="crmd"):
    key = key or db.key
    ids = org_ids(db, "companies", org, STACK_CACHE_IDS)
    if len(ids) < STACK_CACHE_IDS:
        res["notes"].append(f"org {org} has only {len(ids)} companies: the warm set is {len(ids)} ids")
    ids_file = write_ids(tmp_root, f"cache-ids-org{org}.txt", ids)
    b = stack_bench(bench, key, env=env)
    paths = [f"{b.path}{i}" for i in ids]
    v = Variant(name=name, server="crmd", bench=b, script="companies.lua", script_args=(ids_file,),
                pipeline_script="companies.lua", pipeline_args=(ids_file, "{depth}"), measures=("plain", "pipeline"),
                expect="hits", check=lambda srv: warm_and_check_hits(srv, paths, b.headers))
    return v, ids, paths


def stack_sample(db, args, tmp_root, b, paths):
    """The warm-up pass and HIT responses of a throw-away crmd: the median-size body and its headers."""
    reqs = [("GET", p, b.headers) for p in paths] * 2
    out = probe(db, args, tmp_root, b, reqs)
    first = out[0]
    if missing(first[0]):
        raise EndpointMissing(f"GET {paths[0]} answered {first[0]}")
    hits = out[len(paths):]
    bad = [(p, r[0]) for p, r in zip(paths, hits) if r[0] != 200 or (hget(r[1], "X-Cache") or "").upper() != "HIT"]
    if bad:
        raise Skip(f"{len(bad)} of {len(paths)} second requests were not 200 X-Cache: HIT, e.g. {bad[0]}")
    hits = sorted(hits, key=lambda r: len(r[2]))
    return hits[len(hits) // 2], [len(r[2]) for r in hits]


def builder_cache(bench, args, db, tmp_root, res):
    v, ids, paths = build_cache(bench, args, db, tmp_root, res)
    (status, hdrs, body, size), sizes = stack_sample(db, args, tmp_root, v.bench, paths)
    v.info = {"response_bytes": size, "body_bytes_median": len(body), "body_bytes_min": min(sizes),
              "body_bytes_max": max(sizes)}
    res["notes"].append(f"warm set: {len(ids)} companies of org {BENCH_ORG} (ids {ids[0]}–{ids[-1]}), body "
                        f"{min(sizes)}–{max(sizes)} bytes (median {len(body)}); nginx returns a median-size body "
                        f"and crmd's HIT response headers ({', '.join(k for k in hdrs if k.lower() not in NGINX_SKIP_HEADERS)})")
    nb = dataclasses.replace(v.bench, nginx_body=body.decode("utf-8"), nginx_location=f"^~ {v.bench.path}",
                             nginx_headers=[(k, val) for k, val in hdrs.items() if k.lower() not in NGINX_SKIP_HEADERS])
    n = Variant(name="nginx", server="nginx", bench=nb, script=v.script, script_args=v.script_args,
                pipeline_script=v.pipeline_script, pipeline_args=v.pipeline_args, measures=v.measures,
                info={"response_bytes": None})
    return [v, n]


def builder_gzip(bench, args, db, tmp_root, res):
    path = bench.path
    out = {}
    for enc in ("gzip", "identity"):
        b = stack_bench(bench, db.key, extra_headers=[f"Accept-Encoding: {enc}"])
        r = probe(db, args, tmp_root, b, [("GET", path, b.headers)] * 2)
        if missing(r[0][0]):
            raise EndpointMissing(f"GET {path} answered {r[0][0]}")
        status, hdrs, body, size = r[1]
        if status != 200 or (hget(hdrs, "X-Cache") or "").upper() != "HIT":
            raise Skip(f"GET {path} ({enc}) twice: the second answered {status}, X-Cache {hget(hdrs, 'X-Cache')}")
        ce = (hget(hdrs, "Content-Encoding") or "identity").lower()
        if ce != enc:
            raise Skip(f"GET {path} with Accept-Encoding: {enc} answered Content-Encoding {ce}")
        if enc == "identity":
            rows = len(json.loads(body)["data"])
            res["notes"].append(f"the page holds {rows} rows; identity body {len(body):,} bytes")
        want = enc
        out[enc] = Variant(name=enc, server="crmd", bench=b, measures=("plain", "pipeline"), expect="hits",
                           info={"response_bytes": size},
                           check=lambda srv, b=b, want=want: warm_and_check_hits(
                               srv, [path], b.headers, sample=1,
                               accept=lambda h, body: (hget(h, "Content-Encoding") or "identity").lower() == want))
    return [out["gzip"], out["identity"]]


def builder_limiter(bench, args, db, tmp_root, res):
    org = args.limiter_org
    tier = psql(db.url, f"SELECT tier FROM organizations WHERE id = {int(org)}")
    if not tier:
        raise Skip(f"organization {org} does not exist in {BENCH_DB}")
    if args.limiter_tier and tier != args.limiter_tier:
        psql(db.url, f"UPDATE organizations SET tier = '{args.limiter_tier}' WHERE id = {int(org)}")
        print(f"  {BENCH_DB}: organization {org} tier {tier} -> {args.limiter_tier}", file=sys.stderr, flush=True)
        tier = args.limiter_tier
    if tier == "unlimited":
        raise Skip(f"organization {org} has tier unlimited: the limiter would not run (--limiter-org)")
    env = {"RATE_LIMIT_WHITELIST": "", f"RATE_LIMIT_{tier.upper()}": args.limiter_limit,
           # the readiness polls come from 127.0.0.1 too, and the whitelist is off here
           "RATE_LIMIT_HEALTH": LIMIT_HIGH}
    key = org_key(db, org)
    lim, ids_l, paths_l = build_cache(bench, args, db, tmp_root, res, org=org, key=key, env=env, name="limited")
    unl, ids_u, paths_u = build_cache(bench, args, db, tmp_root, res, org=BENCH_ORG, env=env, name="unlimited")
    lim.limiter, unl.limiter = "on", "off"
    r = probe(db, args, tmp_root, lim.bench, [("GET", paths_l[0], lim.bench.headers)])[0]
    if r[0] != 200:
        raise Skip(f"GET {paths_l[0]} with the org {org} key answered {r[0]}: {r[2][:200]!r}")
    rl = {k: v for k, v in r[1].items() if k.lower().startswith(("ratelimit", "x-ratelimit"))}
    if not rl:
        raise Skip(f"the org {org} ({tier}) key's response has no RateLimit headers: the limiter did not run "
                   f"(headers {sorted(r[1])})")
    res["notes"].append(f"limited: a key of org {org} (tier {tier}, RATE_LIMIT_{tier.upper()}={args.limiter_limit}, "
                        f"the whitelist off; response headers {rl}); unlimited: the org {BENCH_ORG} key, same "
                        f"configuration. Each over its organization's first {len(ids_l)} / {len(ids_u)} companies, "
                        f"L1 hits. Redis: {'on' if db.crmd_env.get('REDIS_URL') else 'off'}.")
    return [lim, unl]


def builder_dashboard(bench, args, db, tmp_root, res):
    b = stack_bench(bench, db.key)
    r = probe(db, args, tmp_root, b, [("GET", bench.path, b.headers), ("GET", bench.path, b.headers),
                                      ("GET", bench.path + "?refresh=true", b.headers)])
    if missing(r[0][0]):
        raise EndpointMissing(f"GET {bench.path} answered {r[0][0]}")
    for (status, hdrs, body, _), what in zip(r, ("first", "second", "refresh=true")):
        if status != 200:
            raise Skip(f"GET {bench.path} ({what}) answered {status}: {body[:200]!r}")
    if (hget(r[1][1], "X-Cache") or "").upper() != "HIT":
        raise Skip(f"GET {bench.path} twice: X-Cache {hget(r[1][1], 'X-Cache')} (expected HIT)")
    if (hget(r[2][1], "X-Cache") or "").upper() == "HIT":
        raise Skip(f"GET {bench.path}?refresh=true answered X-Cache: HIT")
    res["notes"].append(f"org {BENCH_ORG}'s whole-organization dashboard ({len(r[0][2]):,} bytes); refresh: "
                        f"`?refresh=true` on every request (bypass, the dashboard queries, refill)")
    cached = Variant(name="cached", server="crmd", bench=b, measures=("plain", "pipeline"), expect="hits",
                     info={"response_bytes": r[1][3]},
                     check=lambda srv: warm_and_check_hits(srv, [bench.path], b.headers, sample=1))
    rb = dataclasses.replace(b, path=bench.path + "?refresh=true")
    refresh = Variant(name="refresh", server="crmd", bench=rb, measures=("plain",), expect="pg",
                      info={"response_bytes": r[2][3]})
    return [cached, refresh]


GQL_DEALS = ("{ deals(first: 50) { edges { node { id name value probability status expectedCloseDate createdAt "
             "company { id name } contact { id firstName lastName } stage { id name color } } } "
             "pageInfo { hasNextPage endCursor } } }")
GQL_NESTED = ("{ companies(first: 20, includeStats: true) { edges { node { id name contactCount dealCount dealsValue "
              "deals(limit: 5) { id name value status stage { name color } } } } } }")
REST_DEALS = "/api/deals?limit=50&includeRelationships=true"


def builder_graphql(bench, args, db, tmp_root, res):
    """REST and GraphQL twins, uncached (CACHE_MB=0) and cached; statements per request checked."""
    bodies = {}
    for name, q in (("deals", GQL_DEALS), ("nested", GQL_NESTED)):
        path = os.path.join(tmp_root, f"graphql-{name}.json")
        with open(path, "w") as f:
            json.dump({"query": q}, f)
        bodies[name] = path
    g = stack_bench(bench, db.key)
    rest = stack_bench(bench, db.key, path=REST_DEALS)
    reqs = [("POST", "/graphql", g.headers + ["Content-Type: application/json"], json.dumps({"query": q}))
            for q in (GQL_DEALS, GQL_NESTED, GQL_DEALS)] + [("GET", REST_DEALS, rest.headers)] * 2
    out = probe(db, args, tmp_root, g, reqs)
    if missing(out[0][0]):
        raise EndpointMissing(f"POST /graphql answered {out[0][0]}")
    stmts = []
    for (status, hdrs, body, _), what in zip(out[:2], ("deals", "nested")):
        doc = json.loads(body) if status == 200 else {}
        if status != 200 or doc.get("errors") or not doc.get("data"):
            raise Skip(f"POST /graphql ({what}) answered {status}: {body[:300]!r}")
        m = re.search(r'db;desc="(\d+) statements"', hget(hdrs, "Server-Timing") or "")
        stmts.append(int(m.group(1)) if m else None)
    if (hget(out[2][1], "X-Cache") or "").upper() != "HIT":
        raise Skip(f"POST /graphql twice: X-Cache {hget(out[2][1], 'X-Cache')} (expected HIT)")
    res["notes"].append(f"SQL statements per request: deals query {stmts[0]}, nested dashboard query {stmts[1]} "
                        f"(Server-Timing); response bytes: GraphQL deals {out[0][3]:,}, REST deals {out[3][3]:,}, "
                        f"nested {out[1][3]:,}")
    uncached = {"CACHE_MB": "0"}
    gu = dataclasses.replace(g, crmd_env=dict(g.crmd_env, **uncached))
    ru = dataclasses.replace(rest, crmd_env=dict(rest.crmd_env, **uncached))
    variants = [
        Variant(name="rest", server="crmd", bench=ru, measures=("plain", "pipeline"), expect="pg",
                info={"response_bytes": out[3][3]}),
        Variant(name="graphql", server="crmd", bench=gu, script="graphql.lua", script_args=(bodies["deals"],),
                pipeline_script="graphql.lua", pipeline_args=(bodies["deals"], "{depth}"), measures=("plain", "pipeline"),
                expect="pg", info={"response_bytes": out[0][3]}),
        Variant(name="graphql-nested", server="crmd", bench=gu, script="graphql.lua",
                script_args=(bodies["nested"],), measures=("plain",), expect="pg",
                info={"response_bytes": out[1][3]}),
        Variant(name="rest-cached", server="crmd", bench=rest, measures=("plain", "pipeline"), expect="hits",
                info={"response_bytes": out[4][3]},
                check=lambda srv: warm_and_check_hits(srv, [REST_DEALS], rest.headers, sample=1)),
        Variant(name="graphql-cached", server="crmd", bench=g, script="graphql.lua", script_args=(bodies["deals"],),
                pipeline_script="graphql.lua", pipeline_args=(bodies["deals"], "{depth}"), measures=("plain", "pipeline"),
                expect="hits", info={"response_bytes": out[2][3]}),
    ]
    return variants


ACTIVITY_TYPES = ("call", "email", "meeting", "note", "demo")


def builder_activities(bench, args, db, tmp_root, res):
    b = stack_bench(bench, db.key, extra_headers=["Content-Type: application/json"])
    ids = [c["id"] for c in db.companies]
    lo, hi = min(ids), max(ids)
    if hi - lo + 1 != len(ids):
        raise Skip(f"org {BENCH_ORG}'s company ids are not contiguous ({lo}–{hi}, {len(ids)} rows): the pgbench "
                   f"script picks them with random(lo, hi)")
    ids_file = write_ids(tmp_root, "activity-companies.txt", ids)
    body = json.dumps({"type": "call", "subject": BENCH_SUBJECT + " probe", "body": "probe", "company_id": ids[0],
                       "occurred_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
    r = probe(db, args, tmp_root, b, [("POST", bench.path, b.headers, body)])[0]
    if missing(r[0]):
        raise EndpointMissing(f"POST {bench.path} answered {r[0]}")
    if r[0] != 201:
        raise Skip(f"POST {bench.path} answered {r[0]} (expected 201): {r[2][:300]!r}")
    row = json.loads(r[2])["data"]
    owner = row.get("owner_id")
    if not owner:
        raise Skip(f"POST {bench.path}: no owner_id in {r[2][:300]!r}")
    crmd = Variant(name="crmd", server="crmd", bench=b, script="activities.lua", script_args=(ids_file,),
                   measures=("plain",), expect="pg", info={"response_bytes": r[3]})
    script = os.path.join(BENCH_DIR, "activities.pgbench")
    cmd = ["taskset", "-c", CLIENT_CPU, "pgbench", "-n", "-M", "prepared", "-c", str(args.pgbench_clients), "-j", "1",
           "-T", "1", "-f", script, "-D", f"org={BENCH_ORG}", "-D", f"owner={owner}", "-D", f"company_lo={lo}",
           "-D", f"company_hi={hi}", "-h", db.host, "-p", db.port, "-U", db.user, BENCH_DB]
    if not shutil.which("pgbench"):
        raise Skip("pgbench not found (apt-get install postgresql-client-15)")
    res["notes"].append(f"both insert one activity of org {BENCH_ORG} per request / transaction: owner {owner} (the "
                        f"key's user), a random company of the org, a random type, subject and body, occurred_at now; "
                        f"crmd answers 201 with the row, pgbench `INSERT ... RETURNING` the same columns "
                        f"(bench/activities.pgbench, -M prepared, {args.pgbench_clients} clients). The inserted rows "
                        f"(subject '{BENCH_SUBJECT}...') are deleted after the benchmark.")
    pg = Variant(name="pgbench", server="pgbench", pgbench_cmd=cmd)
    return [crmd, pg]


MIXED_KINDS = [
    # kind, weight %, method, path (ORG-relative; {company} {deal} {contact} {owner} {word} filled per request)
    ("company_list", 10, "GET", "/api/companies?limit=50"),
    ("deal_list", 15, "GET", "/api/deals?limit=50&includeRelationships=true"),
    ("contact_list", 5, "GET", "/api/contacts?limit=50"),
    ("company", 20, "GET", "/api/companies/{company}"),
    ("deal", 10, "GET", "/api/deals/{deal}"),
    ("contact", 10, "GET", "/api/contacts/{contact}"),
    ("dashboard", 10, "GET", "/api/dashboard"),
    ("dashboard_owner", 5, "GET", "/api/dashboard?ownerId={owner}"),
    ("search_companies", 5, "GET", "/api/companies?q={word}&limit=20"),
    ("search_deals", 3, "GET", "/api/deals?q={word}&limit=20"),
    ("search_contacts", 2, "GET", "/api/contacts?q={word}&limit=20"),
    ("write", 5, "POST", "/api/activities"),
]


def builder_mixed(bench, args, db, tmp_root, res):
    orgs = [int(o) for o in args.mixed_orgs.split(",") if o.strip()]
    n = args.mixed_working_set
    lines, first = [], {}
    for org in orgs:
        key = db.key if org == BENCH_ORG else org_key(db, org)
        sets = {t: org_ids(db, t, org, n) for t in ("companies", "deals", "contacts")}
        users = [int(x) for x in psql(db.url, f"SELECT id FROM users WHERE org_id = {org} ORDER BY id").split()]
        names = psql(db.url, f"SELECT name FROM companies WHERE org_id = {org} ORDER BY id LIMIT 200").splitlines()
        words = sorted({w.lower() for nm in names for w in re.findall(r"[A-Za-z]{4,}", nm)})[:50]
        if not all(sets.values()) or not users or not words:
            raise Skip(f"org {org} lacks data: {[(t, len(v)) for t, v in sets.items()]}, {len(users)} users, {len(words)} words")
        lines.append(f"org {org} {key}")
        for t, v in sets.items():
            lines.append(f"{t} {org} " + " ".join(map(str, v)))
        lines.append(f"users {org} " + " ".join(map(str, users)))
        lines.append(f"words {org} " + " ".join(words))
        first[org] = (key, sets, users, words)
    # probe every kind with every organization's key: 404/405 = endpoint missing (the kind is left out)
    reqs, tags = [], []
    for org, (key, sets, users, words) in first.items():
        for kind, _, method, path in MIXED_KINDS:
            p = path.format(company=sets["companies"][0], deal=sets["deals"][0], contact=sets["contacts"][0],
                            owner=users[0], word=words[0])
            body = None
            hdrs = [f"X-API-Key: {key}"]
            if method == "POST":
                body = json.dumps({"type": "note", "subject": BENCH_SUBJECT + " mixed probe", "company_id": sets["companies"][0],
                                   "occurred_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
                hdrs.append("Content-Type: application/json")
            reqs.append((method, p, hdrs, body))
            tags.append((org, kind, method, p))
    b = stack_bench(bench, db.key)
    out = probe(db, args, tmp_root, b, reqs)
    skip_kinds, bad = set(), []
    for (org, kind, method, p), (status, _, body, _) in zip(tags, out):
        if missing(status):
            if kind not in skip_kinds:
                res["notes"].append(f"endpoint missing: {method} {path_of(kind)} answered {status}: the {kind!r} "
                                    f"share is left out")
            skip_kinds.add(kind)
        elif not 200 <= status < 300:
            bad.append(f"org {org} {method} {p}: {status} {body[:150]!r}")
    if bad:
        raise Skip("mixed workload requests failed: " + "; ".join(bad[:4]))
    data = os.path.join(tmp_root, "mixed.txt")
    fd = os.open(data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)    # it holds the keys
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    kinds = [k for k in MIXED_KINDS if k[0] not in skip_kinds]
    total = sum(k[1] for k in kinds)
    res["notes"].append("request mix (% of requests): " + ", ".join(f"{k[0]} {k[1] * 100 / total:.0f}" for k in kinds)
                        + f"; keys of orgs {', '.join(map(str, orgs))}, an organization picked at random per request, "
                          f"detail ids from each organization's first {n} rows of each table (bench/mixed.lua). "
                          "The L1 hit ratio is crmd's crmd_cache_requests_total{result=\"l1_hit\"} ÷ all lookups "
                          "(/metrics before and after the run); writes invalidate, searches and dashboards per owner "
                          "spread the key space. Rate limits off (loopback whitelisted).")
    v = Variant(name="crmd", server="crmd", bench=b, script="mixed.lua",
                script_args=(data, ",".join(sorted(skip_kinds)) or "-"), measures=("plain",),
                info={"response_bytes": None})
    return [v]


def path_of(kind):
    return next(k[3] for k in MIXED_KINDS if k[0] == kind)


STACK_BUILDERS = {"cache": builder_cache, "gzip": builder_gzip, "limiter": builder_limiter,
                  "dashboard": builder_dashboard, "graphql": builder_graphql, "activities": builder_activities, "mixed": builder_mixed}
