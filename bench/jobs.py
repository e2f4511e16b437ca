#!/usr/bin/env python3
"""crmd's job queue side by side with BullMQ on the same Redis (dev/stack's), same concurrency.

    bench/jobs.py [--rounds 3] [--n 20000] [--conc 8] [--duration 5] [--rate 1000]
                  [--latency-n 5000] [--write]

Per round, for each system in turn (their keys are deleted between runs):
  enqueue  crmd: wrk (CPU 0) POSTs {"type":"noop"} to /api/jobs on `crmd serve` (CPU 1) with
           --conc connections for --duration s; BullMQ: --conc producers calling queue.add()
           in one Node process (CPU 1), as many jobs as crmd took in that run.
  bulk     crmd: the same with 16 requests pipelined per write (HTTP has no addBulk: a bulk
           producer pipelines); BullMQ: addBulk() in batches of 1000.
  work     the jobs queued by the bulk run are drained by `crmd worker --workers C` or a BullMQ
           Worker of concurrency C with a no-op processor (CPU 1); jobs/s from the worker's start
           to the last completion, its CPU time per job, Redis's CPU time per job (INFO cpu), and
           Redis memory per retained finished job (both keep the last N + 1).
  latency  a worker of concurrency C runs while one producer adds --latency-n jobs at --rate per
           second; p50/p99 of finish time minus enqueue time, both stamped in Redis records.
Medians over rounds; raw samples in bench/results/jobs.json; --write replaces the jobs section
of bench/BENCHMARKS.md.
"""
import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRMD = os.environ.get("CRMD_BIN", os.path.join(REPO, "build", "crmd"))
NODE_SCRIPT = os.path.join(REPO, "bench", "bullmq.mjs")
DBNAME = "crmd_jobbench"
BEGIN, END = "<!-- jobs:begin -->", "<!-- jobs:end -->"


def sh(cmd, env=None, timeout=600, check=True):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        sys.exit("bench/jobs.py: %s failed: %s%s" % (cmd[0], out.stdout[-2000:], out.stderr[-2000:]))
    return out.stdout


def stack_env():
    out = sh([os.path.join(REPO, "dev", "stack"), "env"])
    env = dict(os.environ)
    for k, v in re.findall(r"^export (\w+)=(.*)$", out, re.M):
        env[k] = v.strip("'\"")
    return env


def redis(env, *args):
    return sh(["redis-cli", "-u", env["REDIS_URL"]] + [str(a) for a in args]).strip()


def redis_info(env, section, field):
    m = re.search(r"^%s:([\d.]+)" % field, redis(env, "INFO", section), re.M)
    return float(m.group(1))


def redis_cpu(env):
    return redis_info(env, "cpu", "used_cpu_user") + redis_info(env, "cpu", "used_cpu_sys")


def clear(env):
    for pattern in ("crmd:jobs:*", "bull:*"):
        subprocess.run("redis-cli -u %s --scan --pattern '%s' | xargs -r -n 500 redis-cli -u %s DEL >/dev/null"
                       % (env["REDIS_URL"], pattern, env["REDIS_URL"]), shell=True, check=True)


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(cmd, env, log):
    return subprocess.Popen(["taskset", "-c", "1"] + cmd, env=env, stdout=log, stderr=log)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_port(port, timeout=10):
    import socket
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("bench/jobs.py: nothing listens on %d" % port)


def wrk(port, key, conc, duration, depth):
    out = sh(["taskset", "-c", "0", "wrk", "-t1", "-c%d" % conc, "-d%ds" % duration, "-s",
              os.path.join(REPO, "bench", "jobs.lua"), "http://127.0.0.1:%d" % port, "--", key, str(depth)],
             timeout=duration + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        sys.exit("bench/jobs.py: wrk saw %s non-2xx responses:\n%s" % (bad.group(1), out))
    return float(m.group(1))


def node(env, *args, timeout=600):
    out = sh(["taskset", "-c", "1", "node", NODE_SCRIPT] + [str(a) for a in args] + ["--redis", env["REDIS_URL"]],
             env=env, timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def prepare_db(env):
    url = env["DATABASE_URL"]
    base = url.rsplit("/", 1)[0]
    have = sh(["psql", base + "/postgres", "-Atc", "SELECT 1 FROM pg_database WHERE datname = '%s'" % DBNAME])
    if not have.strip():
        sh(["psql", base + "/postgres", "-c", "CREATE DATABASE %s" % DBNAME])
    e = dict(env, DATABASE_URL=base + "/" + DBNAME)
    sh([CRMD, "migrate"], env=e)
    keys_path = os.path.join(REPO, "bench", "results", "jobs-keys.json")
    os.makedirs(os.path.dirname(keys_path), exist_ok=True)
    if not sh(["psql", e["DATABASE_URL"], "-Atc", "SELECT count(*) FROM organizations"]).strip() in ("", "0") \
            and os.path.exists(keys_path):
        keys = json.load(open(keys_path))
    else:
        sh([CRMD, "seed", "--scale", "0.01", "--keys-out", keys_path], env=e, timeout=600)
        keys = json.load(open(keys_path))
    key = next(k["key"] for k in keys if k["tier"] == "unlimited" and k["role"] == "admin")
    return e, key


def crmd_env(e, n):
    x = dict(e)
    for k in ("REDIS_SENTINELS", "WORKERS"):
        x.pop(k, None)
    x.update({"JOB_SCHEDULES": "none", "JOB_KEEP_COUNT": str(n + 1), "LOG_LEVEL": "warn",
              "RATE_LIMIT_WHITELIST": "127.0.0.0/8"})
    return x


def crmd_round(e, key, args, log):
    r = {}
    port, admin = free_port(), free_port()
    env = crmd_env(e, 10 ** 6)
    api = start([CRMD, "serve", "--threads", "1", "--listen", "127.0.0.1:%d" % port, "--admin-listen",
                 "127.0.0.1:%d" % admin], env, log)
    try:
        wait_port(port)
        clear(e)
        r["enqueue"] = wrk(port, key, args.conc, args.duration, 1)
        n1 = int(redis(e, "GET", "crmd:jobs:seq") or 0)
        clear(e)
        r["bulk"] = wrk(port, key, args.conc, args.duration, 16)
        n = int(redis(e, "GET", "crmd:jobs:seq") or 0)
        r["n_enqueue"], r["n"] = n1, n
        mem0 = redis_info(e, "memory", "used_memory")
        cpu0 = redis_cpu(e)
        wenv = crmd_env(e, n)
        wport = free_port()
        t0 = time.time()
        w = start([CRMD, "worker", "--workers", str(args.conc), "--admin-listen", "127.0.0.1:%d" % wport], wenv, log)
        try:
            while int(redis(e, "HGET", "crmd:jobs:stats:all", "noop|succeeded") or 0) < n:
                if time.time() - t0 > 600:
                    sys.exit("bench/jobs.py: crmd worker did not drain the queue")
                time.sleep(0.01)
            secs = time.time() - t0
            r["work"] = n / secs
            r["worker_cpu_us"] = proc_cpu_s(w.pid) / n * 1e6
            r["redis_cpu_us"] = (redis_cpu(e) - cpu0) / n * 1e6
            r["mem_per_job"] = (redis_info(e, "memory", "used_memory") - mem0) / n
        finally:
            stop(w)
        # latency: a worker runs while one producer adds jobs at a steady rate
        clear(e)
        w = start([CRMD, "worker", "--workers", str(args.conc), "--admin-listen", "127.0.0.1:%d" % wport],
                  crmd_env(e, args.latency_n), log)
        try:
            time.sleep(0.5)
            import socket
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            req = ("POST /api/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json"
                   "\r\nContent-Length: 15\r\n\r\n{\"type\":\"noop\"}" % key).encode()
            begin = time.time()
            buf = b""
            for i in range(args.latency_n):
                due = begin + i / args.rate
                if due > time.time():
                    time.sleep(due - time.time())
                s.sendall(req)
                while True:
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if sep:
                        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                        if len(rest) >= length:
                            buf = rest[length:]
                            break
                    buf += s.recv(65536)
            s.close()
            end = time.time() + 60
            while int(redis(e, "HGET", "crmd:jobs:stats:all", "noop|succeeded") or 0) < args.latency_n:
                assert time.time() < end, "latency jobs did not finish"
                time.sleep(0.05)
            lat = []
            ids = redis(e, "ZRANGE", "crmd:jobs:done", 0, -1).split()
            for jid in ids:
                c, f = redis(e, "HMGET", "crmd:jobs:job:" + jid, "created_at", "finished_at").split()
                lat.append(int(f) - int(c))
            r["p50_ms"], r["p99_ms"] = pct(lat, 0.5), pct(lat, 0.99)
        finally:
            stop(w)
    finally:
        stop(api)
    clear(e)
    return r


def bullmq_round(e, args, n_enqueue, n):
    r = {}
    clear(e)
    a = node(e, "enqueue", "--n", n_enqueue, "--conc", args.conc)
    r["enqueue"] = a["n"] / a["secs"]
    clear(e)
    b = node(e, "bulk", "--n", n, "--batch", 1000)
    r["bulk"] = b["n"] / b["secs"]
    mem0 = redis_info(e, "memory", "used_memory")
    cpu0 = redis_cpu(e)
    w = node(e, "work", "--n", n, "--conc", args.conc)
    r["work"] = n / w["secs"]
    r["worker_cpu_us"] = w["cpu_s"] / n * 1e6
    r["redis_cpu_us"] = (redis_cpu(e) - cpu0) / n * 1e6
    r["mem_per_job"] = (redis_info(e, "memory", "used_memory") - mem0) / n
    clear(e)
    lt = node(e, "latency", "--n", args.latency_n, "--conc", args.conc, "--rate", args.rate)
    r["p50_ms"], r["p99_ms"] = lt["p50_ms"], lt["p99_ms"]
    clear(e)
    return r


ROWS = [
    ("enqueue", "enqueue one by one, jobs/s (%d producers)", "%.0f", True),
    ("bulk", "enqueue in bulk, jobs/s (pipelined 16 / addBulk 1000)", "%.0f", True),
    ("work", "no-op jobs run, jobs/s (concurrency %d)", "%.0f", True),
    ("worker_cpu_us", "worker CPU per job, µs", "%.1f", False),
    ("redis_cpu_us", "Redis CPU per job (worker side), µs", "%.1f", False),
    ("mem_per_job", "Redis memory per retained finished job, bytes", "%.0f", False),
    ("p50_ms", "enqueue to completion p50, ms (at %d jobs/s)", "%.0f", False),
    ("p99_ms", "enqueue to completion p99, ms", "%.0f", False),
]


def table(med, args):
    lines = ["| | crmd | BullMQ | crmd / BullMQ |", "|---|---|---|---|"]
    for k, label, fmt, _ in ROWS:
        if "%d" in label:
            label = label % (args.rate if k == "p50_ms" else args.conc)
        a, b = med["crmd"][k], med["bullmq"][k]
        ratio = "%.2f×" % (a / b) if b else "-"
        lines.append("| %s | %s | %s | %s |" % (label, fmt % a, fmt % b, ratio))
    return "\n".join(lines)


def write_section(begin, end, text):
    """Replaces the section between the markers begin and end of bench/BENCHMARKS.md (appends it
    when absent)."""
    path = os.path.join(REPO, "bench", "BENCHMARKS.md")
    doc = open(path).read()
    body = "%s\n%s\n%s" % (begin, text, end)
    if begin in doc:
        doc = doc[:doc.index(begin)] + body + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n" + body + "\n"
    open(path, "w").write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--latency-n", type=int, default=5000)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    for tool in ("wrk", "node", "taskset", "redis-cli", "psql"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit("bench/jobs.py: %s not found (./configure --install-deps)" % tool)
    if not os.path.exists(os.path.join(REPO, "tools", "node_modules", "bullmq")):
        sys.exit("bench/jobs.py: BullMQ not installed (./configure --install-deps runs npm ci in tools/)")
    sh([os.path.join(REPO, "dev", "stack"), "up"], timeout=600)
    e = stack_env()
    e, key = prepare_db(e)
    os.makedirs(os.path.join(REPO, "bench", "results"), exist_ok=True)
    log = open(os.path.join(REPO, "bench", "results", "jobs-servers.log"), "ab")
    samples = {"crmd": [], "bullmq": []}
    for rnd in range(args.rounds):
        c = crmd_round(e, key, args, log)
        b = bullmq_round(e, args, c["n_enqueue"], c["n"])
        samples["crmd"].append(c)
        samples["bullmq"].append(b)
        print("round %d: crmd %s" % (rnd + 1, json.dumps({k: round(v, 1) for k, v in c.items()})), flush=True)
        print("round %d: bullmq %s" % (rnd + 1, json.dumps({k: round(v, 1) for k, v in b.items()})), flush=True)
    med = {s: {k: statistics.median(r[k] for r in samples[s]) for k, *_ in ROWS} for s in samples}
    text = table(med, args)
    print(text)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "bench/jobs.py " + " ".join(sys.argv[1:]), "machine": os.uname().nodename,
            "cpus": os.cpu_count(), "bullmq": json.load(open(os.path.join(REPO, "tools", "package.json")))[
                "dependencies"]["bullmq"]}
    with open(os.path.join(REPO, "bench", "results", "jobs.json"), "w") as f:
        json.dump({"meta": meta, "samples": samples, "medians": med}, f, indent=1)
    if args.write:
        write_section(BEGIN, END, "## Job queue: crmd vs BullMQ %s\n\n%s, %s, `%s`, %d rounds (medians), same Redis "
                      "(dev/stack, AOF every second), worker and producer processes on CPU 1, wrk on CPU 0.\n\n%s"
                      % (meta["bullmq"], meta["date"], meta["machine"], meta["command"], args.rounds, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
