#!/usr/bin/env python3
"""Exhaustion and drain figures (issues 15, 16), printed, not asserted: server CPU while out of
file descriptors and the log lines it wrote; log lines written during a database outage under
load; requests answered and lost when SIGTERM meets 64 busy keep-alive connections.

    eval "$(dev/stack env)"; DATABASE_URL=${DATABASE_URL%/*}/crmd_test bench/exhaustion.py"""
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import lib  # noqa: E402
import test_exhaustion as tx  # noqa: E402
import test_http as thttp  # noqa: E402


def main():
    path = os.path.join(lib.BUILD, "bench-emfile.log")
    with open(path, "wb") as log:
        proc, port, admin = tx.spawn(log, nofile=48)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
    time.sleep(1)
    c0 = tx.cpu_seconds(proc.pid)
    time.sleep(3)
    used = tx.cpu_seconds(proc.pid) - c0
    lines = sum(1 for line in open(path) if "out of file descriptors" in line)
    print("out of descriptors (150 clients, 48 fds): %.3f s of server CPU in 3 s, %d log lines in ~4 s" % (used, lines))
    for s in clients:
        s.close()
    tx.stop(proc)

    key = lib.seed_keys("bench-exhaustion")[0]["key"]
    dead = "postgresql://crmd@127.0.0.1:%d/crmd?connect_timeout=1" % lib.free_port()
    path = os.path.join(lib.BUILD, "bench-flood.log")
    with open(path, "wb") as f:
        proc, port, admin = tx.spawn(f, threads=2, env={"DATABASE_URL": dead})
    statuses = tx.load(port, 6, 1000, "/api/companies", {"Authorization": "Bearer " + key})
    tx.stop(proc)
    print("database outage: %d requests (statuses %s), %d log lines" % (
        len(statuses), sorted(set(statuses)), len(open(path).read().splitlines())))

    answered, lost = 0, []
    for _ in range(3):
        a, l = thttp.drain_round()
        answered += a
        lost += l
    print("SIGTERM under 64 busy keep-alive connections, 3 rounds: %d answered, %d lost" % (answered, len(lost)))


if __name__ == "__main__":
    main()
