#!/usr/bin/env python3
"""Company import throughput: POST /api/import/companies with a 1,000,000-row CSV, against psql
`\\copy` of the same file into a bare table with the same columns, side by side.

    bench/import.py [--rows 1000000] [--rounds 3] [--workers 2] [--write]

The CSV (deterministic) has the columns name, domain, industry, size; every domain is new, so
every row is validated and inserted. crmd's time runs from the first byte of the upload to the
job's "succeeded" (upload, staging COPY, validation, merge, cache invalidation); psql's is the
`\\copy` alone, into a table without indexes or constraints (the fastest way in), and `\\copy` into
a temporary table followed by one `INSERT INTO companies ... SELECT` (the fastest SQL way into the
real table, with its ten indexes, the search tsvector and the constraints, without validation).
Each run starts from a fresh database; the rounds' rows stay (each round's domains are its own). Medians; --write replaces the import section of bench/BENCHMARKS.md.
"""
import argparse
import datetime
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobs import free_port, sh, stack_env, write_section  # noqa: E402  (bench/jobs.py: the same helpers)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRMD = os.environ.get("CRMD_BIN", os.path.join(REPO, "build", "crmd"))
DBNAME = "crmd_importbench"
BEGIN, END = "<!-- import:begin -->", "<!-- import:end -->"


def make_csv(path, rows, tag):
    industries = ["Software", "Retail", "Finance", "Health", "Energy", "Media"]
    sizes = ["1-10", "11-50", "51-200", "201-1000", "1000+"]
    with open(path, "w", newline="") as f:
        f.write("name,domain,industry,size\r\n")
        for i in range(rows):
            f.write("Import %s %d,i%d-%s.example,%s,%s\r\n" % (tag, i, i, tag, industries[i % 6], sizes[i % 5]))


def request(port, method, path, key, body=b"", ctype="application/json"):
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    head = "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" \
           "Connection: close\r\n\r\n" % (method, path, key, ctype, len(body))
    s.sendall(head.encode() + body)
    data = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    s.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def crmd_import(port, key, path):
    body = open(path, "rb").read()
    t0 = time.time()
    status, resp = request(port, "POST", "/api/import/companies", key, body, "text/csv")
    if status != 202:
        sys.exit("bench/import.py: import refused: %d %s" % (status, resp[:500]))
    jid = json.loads(resp)["data"]["id"]
    while True:
        status, resp = request(port, "GET", "/api/jobs/%s" % jid, key)
        job = json.loads(resp)["data"]
        if job["status"] in ("succeeded", "failed", "dead"):
            break
        time.sleep(0.05)
    secs = time.time() - t0
    if job["status"] != "succeeded":
        sys.exit("bench/import.py: import job %s: %s" % (job["status"], job["error"]))
    return secs, job["result"]


def psql_copy(url, path):
    sh(["psql", url, "-qc", "DROP TABLE IF EXISTS import_bare; CREATE TABLE import_bare "
                            "(name text, domain text, industry text, size text)"])
    t0 = time.time()
    sh(["psql", url, "-qc", "\\copy import_bare FROM '%s' WITH (FORMAT csv, HEADER)" % path])
    secs = time.time() - t0
    n = int(sh(["psql", url, "-Atc", "SELECT count(*) FROM import_bare"]).strip())
    sh(["psql", url, "-qc", "DROP TABLE import_bare"])
    return secs, n


def psql_copy_insert(url, path, org):
    """The fastest SQL path into the real table: \\copy to a temporary table, then one INSERT."""
    script = os.path.join(os.path.dirname(path), "copy-insert.sql")
    with open(script, "w") as f:
        f.write("CREATE TEMP TABLE s (name text, domain text, industry text, size text);\n"
                "\\copy s FROM '%s' WITH (FORMAT csv, HEADER)\n"
                "INSERT INTO companies (org_id, name, domain, industry, size) SELECT %d, name, domain, industry, size"
                " FROM s;\n" % (path, org))
    t0 = time.time()
    sh(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-f", script])
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    sh([os.path.join(REPO, "dev", "stack"), "up"], timeout=600)
    e = stack_env()
    base = e["DATABASE_URL"].rsplit("/", 1)[0]
    url = base + "/" + DBNAME
    # a fresh database each run: rounds add their rows (deleting a million companies costs minutes)
    sh(["psql", base + "/postgres", "-qc", "DROP DATABASE IF EXISTS %s" % DBNAME])
    sh(["psql", base + "/postgres", "-qc", "CREATE DATABASE %s" % DBNAME])
    env = dict(e, DATABASE_URL=url, JOB_SCHEDULES="none", LOG_LEVEL="warn", RATE_LIMIT_WHITELIST="127.0.0.0/8",
               WORKERS=str(args.workers))
    sh([CRMD, "migrate"], env=env)
    tmp = tempfile.mkdtemp(prefix="crmd-import-")
    keys_path = os.path.join(tmp, "keys.json")
    sh([CRMD, "seed", "--scale", "0.01", "--keys-out", keys_path], env=env, timeout=600)
    keys = json.load(open(keys_path))
    k = next(x for x in keys if x["tier"] == "unlimited" and x["role"] == "admin")
    other = next(x for x in keys if x["org_id"] != k["org_id"])  # the SQL baseline's rows go there
    port = free_port()
    log = open(os.path.join(tmp, "crmd.log"), "wb")
    srv = subprocess.Popen([CRMD, "serve", "--threads", "1", "--listen", "127.0.0.1:%d" % port, "--admin-listen",
                            "127.0.0.1:%d" % free_port()], env=env, stdout=log, stderr=log)
    samples = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        for rnd in range(args.rounds):
            path = os.path.join(tmp, "companies-%d.csv" % rnd)
            make_csv(path, args.rows, "r%d" % rnd)
            mb = os.path.getsize(path) / 1e6
            c_secs, result = crmd_import(port, k["key"], path)
            p_secs, n = psql_copy(url, path)
            assert result["inserted"] == args.rows and n == args.rows, (result, n)
            i_secs = psql_copy_insert(url, path, other["org_id"])
            samples.append({"crmd_s": c_secs, "psql_s": p_secs, "insert_s": i_secs, "mb": mb})
            print("round %d: %.1f MB, crmd %.2f s (%.0f rows/s), psql \\copy %.2f s (%.0f rows/s),"
                  " \\copy + INSERT INTO companies %.2f s"
                  % (rnd + 1, mb, c_secs, args.rows / c_secs, p_secs, args.rows / p_secs, i_secs), flush=True)
            os.unlink(path)
    finally:
        srv.terminate()
        srv.wait(30)
    c = statistics.median(s["crmd_s"] for s in samples)
    p = statistics.median(s["psql_s"] for s in samples)
    i = statistics.median(s["insert_s"] for s in samples)
    text = ("| | crmd import (validated, merged) | psql `\\copy` into a bare table | psql `\\copy` + `INSERT INTO"
            " companies` |\n|---|---|---|---|\n"
            "| %d rows (%.0f MB CSV), seconds | %.2f | %.2f | %.2f |\n| rows/s | %.0f | %.0f | %.0f |\n"
            "| crmd / baseline | | %.3f× | %.2f× |"
            % (args.rows, samples[0]["mb"], c, p, i, args.rows / c, args.rows / p, args.rows / i, p / c, i / c))
    print(text)
    if args.write:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        write_section(BEGIN, END, "## Company import vs psql \\copy\n\n%s, %s, `bench/import.py %s`, %d rounds "
                      "(medians), `WORKERS=%d`.\n\n%s" % (date, os.uname().nodename, " ".join(sys.argv[1:]),
                                                         args.rounds, args.workers, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
