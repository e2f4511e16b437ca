#!/usr/bin/env python3
"""Connection storms (issue 15): 10,000 connections whose idle timers (or head timeouts) expire
in the same tick, then 10,000 clients hanging up at once, while one client measures its request
latency. Prints p50/p99/max per phase and the Redis reconnects the server logged.

    eval "$(dev/stack env)"; bench/storm.py [--bin build/crmd] [--conns 10000]

CRMD_BIN selects the binary too (to compare two builds side by side)."""
import argparse
import os
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", help="crmd binary (default build/crmd)")
    ap.add_argument("--conns", type=int, default=10000)
    args = ap.parse_args()
    if args.bin:
        os.environ["CRMD_BIN"] = os.path.abspath(args.bin)
    import lib  # noqa: E402 (after CRMD_BIN)
    import test_hardening as th  # noqa: E402
    lib.raise_nofile()
    env = {"REDIS_URL": lib.REDIS} if lib.REDIS else {}
    for kind, flag in (("idle expiry", "--idle-timeout"), ("head timeout", "--header-timeout")):
        s = lib.Server(flag, "2000", "--threads", "1", env=env)
        socks = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(args.conns)]
        os.kill(s.proc.pid, signal.SIGSTOP)
        req = b"GET /api/health/live HTTP/1.1\r\nHost: x\r\n" + (b"\r\n" if kind == "idle expiry" else b"")
        for so in socks:
            so.send(req)
        os.kill(s.proc.pid, signal.SIGCONT)
        time.sleep(1.0)
        storm, hang, errs = [], [], []
        stop = threading.Event()
        t = threading.Thread(target=th.latencies, args=(s, stop, storm, errs))
        t.start()
        time.sleep(3.5)
        stop.set()
        t.join()
        stop = threading.Event()
        t = threading.Thread(target=th.latencies, args=(s, stop, hang, errs))
        t.start()
        time.sleep(0.2)
        for so in socks:
            so.close()
        time.sleep(1.0)
        stop.set()
        t.join()
        for name, xs in ((kind, storm), ("hang-up", hang)):
            xs.sort()
            if xs:
                print("%-12s %6d requests  p50 %.2f ms  p99 %.2f ms  max %.1f ms" % (
                    name, len(xs), xs[len(xs) // 2] * 1e3, xs[int(len(xs) * 0.99)] * 1e3, xs[-1] * 1e3))
        print("%-12s errors %s, redis reconnects %d" % ("", errs or "none", s.logs().count("redis connection lost")))
        s.stop()


if __name__ == "__main__":
    main()
