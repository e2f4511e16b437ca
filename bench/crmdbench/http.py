"""HTTP benchmarks: crmd against nginx serving the same bytes (servers, wrk, idle connections, tables)."""
import dataclasses
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from .procs import (BENCHMARKS_MD, BENCH_DIR, CLIENT_CPU, CLK_TCK, Fatal, LIVE, NOFILE, REPO, SERVER_CPU, Skip, children, cpu_line, cpu_ticks, descendants, free_port, http_get, kill_tree, rss_bytes, set_nofile, spawn)
from .table import fmt, markdown_table, medians as table_medians
from .catalog import (CRMD_DEFAULT_ENV, NGINX_DYNAMIC_HEADERS, stack_env)

# --------------------------------------------------------------------------- servers

class Server:
    kind = None

    def __init__(self, bench, args, tmp):
        self.bench, self.args, self.tmp = bench, args, tmp
        self.proc = None
        self.port = None
        self.log = None

    def measured_pids(self):
        raise NotImplementedError

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Skip(f"{self.kind} exited with status {self.proc.returncode} during start-up"
                           f"{self.log_tail()}")
            try:
                status, hdrs, body, size = http_get(self.port, self.bench.path, self.bench.headers)
                if status == self.bench.status:
                    return {"status": status, "headers": hdrs, "body": body.decode("utf-8", "replace"),
                            "response_bytes": size}
                last = f"status {status}, body {body[:200]!r}"
            except (OSError, ValueError, IndexError) as e:
                last = str(e)
            time.sleep(0.05)
        raise Skip(f"{self.kind} did not answer {self.bench.method} {self.bench.path} with "
                   f"{self.bench.status} within {timeout:.0f}s (last: {last}){self.log_tail()}")

    def log_tail(self):
        try:
            with open(self.log, "rb") as f:
                tail = f.read()[-1500:].decode("utf-8", "replace").strip()
            return f"\n--- {self.log} (tail) ---\n{tail}" if tail else ""
        except OSError:
            return ""

    def stop(self):
        if self.proc:
            kill_tree(self.proc)
            self.proc = None


class Crmd(Server):
    kind = "crmd"

    def start(self):
        binary = self.args.crmd_bin
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise Skip(f"crmd binary {binary} is missing (build it first, or pass --crmd-bin)")
        # crmd reads its configuration from the environment too; a DATABASE_URL or THREADS
        # exported in the caller's shell must not leak into a benchmark that does not ask for it
        env = {k: v for k, v in os.environ.items() if k not in crmd_env_names(binary)}
        env.update(CRMD_DEFAULT_ENV)
        if self.bench.needs_stack:
            env.update(stack_env(self.bench))
        env.update(self.bench.crmd_env)
        self.port = free_port()
        admin = free_port(avoid={self.port})
        self.log = os.path.join(self.tmp, f"crmd-{self.port}.log")
        cmd = ["taskset", "-c", SERVER_CPU, binary, "serve",
               "--listen", f"127.0.0.1:{self.port}", "--threads", "1", "--cpus", SERVER_CPU,
               "--admin-listen", f"127.0.0.1:{admin}", "--max-conns", "20000"] + list(self.bench.crmd_args)
        self.cmd = cmd
        self.proc = spawn(cmd, self.log, env=env)
        return self.wait_ready()

    def measured_pids(self):
        # the process (all its threads) plus any helper processes it forked
        return [self.proc.pid] + descendants(self.proc.pid)


CRMD_ENV_FALLBACK = {"PORT", "ADMIN_LISTEN", "THREADS", "CPUS", "MAX_CONNS", "DATABASE_URL",
                     "DATABASE_REPLICA_URLS", "REDIS_URL", "PAGINATION_KEY", "FRONTEND_URL", "LOG_LEVEL",
                     "SLOW_QUERY_THRESHOLD", "RATE_LIMIT_WHITELIST"}


def crmd_env_names(binary):
    """The environment variables crmd reads, from the second column of `crmd --help`."""
    names = set(CRMD_ENV_FALLBACK)
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
        names |= set(re.findall(r"^\s+--[\w-]+\s+([A-Z][A-Z0-9_]+)\s", out.stdout + out.stderr, re.M))
    except (OSError, subprocess.TimeoutExpired):
        pass
    return names


def nginx_quote(s):
    # single-quoted nginx string; '$' would start a variable, so it goes through ${dollar}
    s = s.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + s.replace("$", "${dollar}") + "'"


class Nginx(Server):
    kind = "nginx"

    def config(self):
        b = self.bench
        loc = b.nginx_location or "= " + b.path.split("?", 1)[0]
        hdrs = [(k, NGINX_DYNAMIC_HEADERS.get(k, v) if self.args.nginx_dynamic_headers else v)
                for k, v in b.nginx_headers]
        adds = "\n".join(f"            add_header {k} {nginx_header_value(v)} always;" for k, v in hdrs)
        user = "user root root;" if os.geteuid() == 0 else ""
        t = self.tmp
        return f"""# generated by bench/run for benchmark {b.name}
{user}
worker_processes 1;
worker_rlimit_nofile {NOFILE};
pid {t}/nginx.pid;
error_log {t}/nginx-error.log error;
events {{
    worker_connections 20000;
}}
http {{
    access_log off;
    client_body_temp_path {t}/body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    server_tokens off;
    geo $dollar {{ default "$"; }}
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        location {loc} {{
            default_type {b.content_type};
{adds}
{b.nginx_extra}
            return {b.status} {nginx_quote(b.nginx_body)};
        }}
    }}
}}
"""

    def start(self):
        exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
        if not exe:
            raise Fatal("nginx not found (apt-get install nginx-light)")
        self.port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.config())
        self.log = os.path.join(self.tmp, f"nginx-{self.port}.log")
        cmd = ["taskset", "-c", SERVER_CPU, exe, "-p", self.tmp, "-e", os.path.join(self.tmp, "nginx-error.log"),
               "-c", conf, "-g", "daemon off; master_process on;"]
        self.cmd = cmd
        self.proc = spawn(cmd, self.log)
        info = self.wait_ready()
        if self.bench.check_body and info["body"] != self.bench.nginx_body:
            raise Fatal(f"nginx answered {info['body']!r}, expected {self.bench.nginx_body!r}")
        deadline = time.monotonic() + 5
        while not children(self.proc.pid):
            if time.monotonic() > deadline:
                raise Fatal("nginx has no worker process")
            time.sleep(0.05)
        return info

    def measured_pids(self):
        return children(self.proc.pid)   # the workers only, not the master


def nginx_header_value(v):
    if re.search(r"[\s;'\"{}]", v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return v


SERVER_CLASSES = {"crmd": Crmd, "nginx": Nginx}


# --------------------------------------------------------------------------- wrk

def unit_ms(value):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[m.group(2)]


def parse_wrk(out):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not m:
        raise Fatal(f"cannot parse wrk output:\n{out}")
    r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"^\s+Latency\s+(\S+)", out, re.M)
    if m:
        r["mean_ms"] = unit_ms(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            r[f"p{pct}_ms"] = unit_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    return r


def wrk(bench, port, conns, duration, script=None, script_args=(), latency=True):
    url = f"http://127.0.0.1:{port}{bench.path}"
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "5s"]
    if latency:
        cmd.append("--latency")
    for h in bench.headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script if os.path.isabs(script) else os.path.join(BENCH_DIR, script)]
    cmd.append(url)
    if script_args:
        cmd += ["--"] + [str(a) for a in script_args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, cwd=REPO)
    if p.returncode != 0:
        raise Fatal(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    r = parse_wrk(p.stdout)
    r["cmd"] = shlex.join(cmd)
    return r


def measured_wrk(server, **kw):
    """A wrk run with the server's CPU time (and CPU 1's total busy time) read around it."""
    pids = server.measured_pids()
    busy0, tot0 = cpu_line(SERVER_CPU)
    c0 = cpu_ticks(pids)
    t0 = time.monotonic()
    r = wrk(server.bench, server.port, **kw)
    wall = time.monotonic() - t0
    c1 = cpu_ticks(pids)
    busy1, tot1 = cpu_line(SERVER_CPU)
    if server.proc.poll() is not None:
        raise Fatal(f"{server.kind} died during the run{server.log_tail()}")
    cpu_s = (c1 - c0) / CLK_TCK
    r["server_cpu_s"] = cpu_s
    r["wall_s"] = round(wall, 3)
    r["server_cpu_util"] = round(cpu_s / wall, 3) if wall else None
    # CPU 1 time not spent in the server: other processes, interrupts (noise indicator)
    r["cpu1_other_s"] = round(max(0.0, (busy1 - busy0) / CLK_TCK - cpu_s), 3)
    r["cpu1_other_util"] = round(r["cpu1_other_s"] / wall, 3) if wall else None
    r["cpu_us_per_req"] = cpu_s * 1e6 / r["requests"] if r["requests"] else None
    r["valid"] = r["requests"] > 0 and r["non2xx"] == 0 and not any(
        r["socket_errors"].get(k) for k in ("connect", "read", "write"))
    return r


# --------------------------------------------------------------------------- idle connections

def idle_test(server, conns, settle):
    pids = server.measured_pids()
    before = rss_bytes(pids)
    cmd = ["taskset", "-c", CLIENT_CPU, sys.executable, os.path.join(BENCH_DIR, "idleconns.py"),
           "--port", str(server.port), "--conns", str(conns), "--path", server.bench.path]
    for h in server.bench.headers:
        cmd += ["-H", h]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         preexec_fn=set_nofile, cwd=REPO)
    LIVE.append(p)
    try:
        line = read_line(p, timeout=90)
        ready = json.loads(line)
        time.sleep(settle)
        after = rss_bytes(pids)
        p.stdin.write("close\n")
        p.stdin.flush()
        closed = json.loads(read_line(p, timeout=30))
        p.wait(timeout=10)
    finally:
        kill_tree(p, grace=1.0)
    n = ready["open"]
    r = {"conns_requested": conns, "conns_open": n, "statuses": ready["statuses"],
         "failures": ready["failures"], "open_seconds": ready["seconds"],
         "closed_by_server": closed["closed_by_server"],
         "rss_before": before, "rss_after": after,
         "bytes_per_conn": (after - before) / n if n else None}
    r["valid"] = (n == conns and closed["closed_by_server"] == 0
                  and set(ready["statuses"]) == {str(server.bench.status)})
    return r


def read_line(p, timeout):
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise Fatal(f"idle-connection client silent for {timeout}s")
    finally:
        sel.close()
    line = p.stdout.readline()
    if not line:
        raise Fatal(f"idle-connection client exited ({p.poll()}) without a report")
    return line


# --------------------------------------------------------------------------- running

METRICS = [
    # key, label, unit, source, field, better
    ("cpu_us_per_req", "server CPU per request, plain c{conns}", "µs", "plain", "cpu_us_per_req", "lower"),
    ("pipeline_rps", "pipelined throughput, c{pconns} × {depth}", "req/s", "pipeline", "rps", "higher"),
    ("pipeline_cpu_us_per_req", "server CPU per request, pipelined", "µs", "pipeline", "cpu_us_per_req", "lower"),
    ("plain_rps", "plain throughput, c{conns}", "req/s", "plain", "rps", "higher"),
    ("plain_p99_ms", "plain p99 latency, c{conns}", "ms", "plain", "p99_ms", "lower"),
    ("plain_cpu_util", "server CPU use during plain run", "cores", "plain", "server_cpu_util", "-"),
    ("pipeline_cpu_util", "server CPU use during pipelined run", "cores", "pipeline", "server_cpu_util", "-"),
    ("plain_other_util", "other load on CPU 1 during plain run (noise)", "cores", "plain", "cpu1_other_util", "-"),
    ("pipeline_other_util", "other load on CPU 1 during pipelined run (noise)", "cores", "pipeline", "cpu1_other_util", "-"),
    ("idle_bytes_per_conn", "RSS per idle keep-alive connection ({idle} conns)", "bytes", "idle", "bytes_per_conn", "lower"),
    ("response_bytes", "response size (headers + body)", "bytes", "response", "response_bytes", "-"),
]


def run_benchmark(bench, args, servers, tmp_root):
    measures = [m for m in args.measures if m in bench.measures]
    res = {"bench": dataclasses.asdict(bench), "servers": {}, "skipped": {}}
    for s in servers:
        res["servers"][s] = {"rounds": [], "cmd": None}
    skipped = res["skipped"]
    for rnd in range(args.rounds):
        order = servers if rnd % 2 == 0 else list(reversed(servers))
        for s in order:
            if s in skipped:
                continue
            tmp = tempfile.mkdtemp(prefix=f"{s}-r{rnd}-", dir=tmp_root)
            srv = SERVER_CLASSES[s](bench, args, tmp)
            try:
                try:
                    info = srv.start()
                except Skip as e:
                    skipped[s] = str(e)
                    print(f"  skip {s}: {e}", file=sys.stderr, flush=True)
                    continue
                if rnd == 0:
                    res["servers"][s]["cmd"] = shlex.join(srv.cmd).replace(tmp, "$DIR")
                    if s == "nginx":
                        res["servers"][s]["nginx_conf"] = srv.config().replace(tmp, "$DIR")
                    hdr_note = ", ".join(sorted(info["headers"]))
                    print(f"  {s}: {info['status']} {info['response_bytes']} bytes; body {info['body']!r}; "
                          f"headers: {hdr_note}", file=sys.stderr, flush=True)
                    if s == "crmd" and bench.check_body and info["body"] != bench.nginx_body:
                        print(f"  WARNING: crmd body {info['body']!r} differs from the nginx body "
                              f"{bench.nginx_body!r}", file=sys.stderr, flush=True)
                sample = {"round": rnd, "response": {"response_bytes": info["response_bytes"],
                                                     "headers": info["headers"]}}
                # warm-up: not recorded
                wrk(bench, srv.port, conns=args.conns, duration=1, script=bench.plain_script, latency=False)
                if "plain" in measures:
                    sample["plain"] = measured_wrk(srv, conns=args.conns, duration=args.duration,
                                                   script=bench.plain_script)
                if "pipeline" in measures:
                    sample["pipeline"] = measured_wrk(srv, conns=args.pipeline_conns, duration=args.duration,
                                                      script=bench.pipeline_script,
                                                      script_args=(args.depth,) + tuple(bench.pipeline_args),
                                                      latency=False)
                if "idle" in measures:
                    sample["idle"] = idle_test(srv, args.idle_conns, args.settle)
                res["servers"][s]["rounds"].append(sample)
                print("  " + progress_line(s, rnd, sample), file=sys.stderr, flush=True)
            finally:
                srv.stop()
    return res


def progress_line(s, rnd, sample):
    parts = [f"round {rnd + 1} {s:5}"]
    if "plain" in sample:
        p = sample["plain"]
        parts.append(f"plain {p['rps']:.0f} req/s p99 {p.get('p99_ms', float('nan')):.2f} ms "
                     f"{fmt(p['cpu_us_per_req'])} µs/req cpu {p['server_cpu_util']:.2f}")
    if "pipeline" in sample:
        p = sample["pipeline"]
        parts.append(f"pipelined {p['rps']:.0f} req/s {fmt(p['cpu_us_per_req'])} µs/req cpu {p['server_cpu_util']:.2f}")
    if "idle" in sample:
        i = sample["idle"]
        parts.append(f"idle {i['conns_open']} conns {fmt(i['bytes_per_conn'])} B/conn")
    for k in ("plain", "pipeline", "idle"):
        if k in sample and not sample[k]["valid"]:
            parts.append(f"INVALID {k} (errors; excluded from medians)")
    return " | ".join(parts)


def medians(res):
    by_key = {m[0]: m for m in METRICS}

    def value(r, key):
        _, _, _, src, field, _ = by_key[key]
        return r[src][field] if src in r and r[src].get(field) is not None and r[src].get("valid", True) else None

    return table_medians(res, list(by_key), value)


def table(res, meds, args, servers):
    sub = {"conns": args.conns, "pconns": args.pipeline_conns, "depth": args.depth, "idle": args.idle_conns}
    rows = [(key, label.format(**sub), unit, better) for key, label, unit, _, _, better in METRICS]
    return markdown_table(servers, meds, rows, ratio=len(servers) == 2 and servers[0] != servers[1])


def machine_info():
    model = "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        model = m.group(1).strip() if m else "?"
    except (OSError, subprocess.TimeoutExpired):
        pass
    def ver(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return "?"
    commit = ver(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    return {"cpu_model": model, "cpus": os.cpu_count(), "kernel": platform.release(),
            "loadavg_at_start": os.getloadavg(), "wrk": ver(["wrk", "-v"]).split(" [")[0], "nginx": ver(["nginx", "-v"]),
            "postgres": ver(["pgbench", "--version"]).replace("pgbench (PostgreSQL)", "PostgreSQL").split(" (")[0],
            "python": platform.python_version(), "git_commit": commit}


def noise_warning(meds, servers):
    noisy = [v["median"] for s in servers for k, v in meds.get(s, {}).items() if k.endswith("_other_util")]
    if noisy and max(noisy) > 0.1:
        return (f"other work used up to {max(noisy):.2f} of CPU {SERVER_CPU} during the runs (median); "
                f"throughput and latency figures are unreliable, CPU per request less so. "
                f"Rerun on a quieter machine for numbers worth recording.")
    return None


def write_markdown(bench, res, meds, args, servers, meta):
    begin, end = f"<!-- BEGIN bench:{bench.name} -->", f"<!-- END bench:{bench.name} -->"
    m = meta["machine"]
    skipped = "".join(f"\n- {s} not measured: {why.splitlines()[0]}" for s, why in res["skipped"].items())
    cmds = "".join(f"\n- {s}: `{d['cmd']}`" for s, d in res["servers"].items() if d["cmd"])
    body = f"""{begin}
## {bench.title}

Measured {meta['date']} on {m['cpu_model']}, {m['cpus']} CPUs, kernel {m['kernel']}
({m['wrk']}; {m['nginx']}; commit {m['git_commit']}; load average at start {m['loadavg_at_start'][0]:.2f}).

Command: `{meta['command']}` ({args.rounds} round{"s" if args.rounds != 1 else ""} × {args.duration} s per run; medians, range in parentheses;
servers on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}).
{bench.notes}

{table(res, meds, args, servers)}
{chr(10) + "**Warning:** " + noise_warning(meds, servers) + chr(10) if noise_warning(meds, servers) else ""}
Servers:{cmds}{skipped}
{end}"""
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
    print(f"updated {os.path.relpath(BENCHMARKS_MD, os.getcwd())} section {bench.name!r}", file=sys.stderr)
