#!/usr/bin/env python3
"""Open many idle keep-alive connections for bench/run's idle-connection benchmark.

    bench/idleconns.py --port P [--conns 10000] [--path /api/health] [-H 'Name: value']...

Opens --conns connections (non-blocking, at most --window handshakes/requests in flight,
spread over --sources loopback source addresses 127.0.0.1, 127.0.0.2, ...), sends one
request on each and reads the full response (Content-Length framing), then keeps them all
open. Prints one JSON line {"event": "ready", ...} on stdout and waits for a line (or EOF)
on stdin; then counts how many connections the server has closed meanwhile, closes all of
them with RST (SO_LINGER 0, so no TIME_WAIT piles up across rounds), prints
{"event": "closed", ...} and exits. Bounded by --timeout seconds for the opening phase.
"""
import argparse
import errno
import json
import os
import resource
import selectors
import socket
import struct
import sys
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
LINGER_RST = struct.pack("ii", 1, 0)


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    want_hard = hard if hard == resource.RLIM_INFINITY or hard >= need else need
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, want_hard))
    except (ValueError, OSError) as e:
        sys.exit(f"idleconns: cannot raise RLIMIT_NOFILE to {need} (soft {soft}, hard {hard}): {e}; "
                 f"run with a higher 'ulimit -n'")


class Conn:
    __slots__ = ("sock", "state", "out", "buf", "need", "status")

    def __init__(self, sock, req):
        self.sock = sock
        self.state = "connect"
        self.out = req
        self.buf = b""
        self.need = None   # total bytes of the response once headers are parsed
        self.status = None


def parse_head(buf):
    """Return (status, total_len) once the header block is complete, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
    length = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding":
            raise ValueError("chunked responses are not supported by idleconns")
    if length is None:
        length = 0 if status in (204, 304) or 100 <= status < 200 else None
    if length is None:
        raise ValueError("response without Content-Length")
    return status, end + 4 + length


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--path", default="/api/health")
    ap.add_argument("-H", "--header", action="append", default=[])
    ap.add_argument("--window", type=int, default=256, help="max connections opening at once")
    ap.add_argument("--sources", type=int, default=4, help="loopback source addresses to spread over")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    raise_nofile(args.conns + 256)
    host_hdr = f"{args.host}:{args.port}"
    extra = "".join(h + "\r\n" for h in args.header)
    req = f"GET {args.path} HTTP/1.1\r\nHost: {host_hdr}\r\n{extra}\r\n".encode()
    sources = [f"127.0.0.{i + 1}" for i in range(max(1, args.sources))] if args.host.startswith("127.") else [None]

    sel = selectors.DefaultSelector()
    done = []           # connections with a complete response, kept open
    statuses = {}
    failures = {}
    started = 0
    inflight = 0
    t0 = time.monotonic()
    deadline = t0 + args.timeout

    def fail(c, why):
        nonlocal inflight
        failures[why] = failures.get(why, 0) + 1
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        inflight -= 1

    while (started < args.conns or inflight) and time.monotonic() < deadline:
        while started < args.conns and inflight < args.window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            src = sources[started % len(sources)]
            if src:
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((src, 0))
            started += 1
            inflight += 1
            c = Conn(s, req)
            err = s.connect_ex((args.host, args.port))
            if err not in (0, errno.EINPROGRESS):
                fail(c, f"connect: {os.strerror(err)}")
                continue
            sel.register(s, selectors.EVENT_WRITE, c)
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            s = c.sock
            if c.state == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(c, f"connect: {os.strerror(err)}")
                    continue
                c.state = "send"
            if c.state == "send":
                try:
                    n = s.send(c.out)
                except BlockingIOError:
                    continue
                except OSError as e:
                    fail(c, f"send: {e.strerror}")
                    continue
                c.out = c.out[n:]
                if not c.out:
                    c.state = "recv"
                    sel.modify(s, selectors.EVENT_READ, c)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                fail(c, f"recv: {e.strerror}")
                continue
            if not data:
                fail(c, "closed before full response")
                continue
            c.buf += data
            if c.need is None:
                try:
                    head = parse_head(c.buf)
                except ValueError as e:
                    fail(c, str(e))
                    continue
                if head:
                    c.status, c.need = head
            if c.need is not None and len(c.buf) >= c.need:
                sel.unregister(s)
                inflight -= 1
                statuses[c.status] = statuses.get(c.status, 0) + 1
                c.buf = b""
                done.append(c)
    open_secs = time.monotonic() - t0
    timed_out = started < args.conns or inflight > 0
    for key in list(sel.get_map().values()):
        fail(key.data, "timeout")

    print(json.dumps({"event": "ready", "requested": args.conns, "open": len(done),
                      "statuses": {str(k): v for k, v in statuses.items()},
                      "failures": failures, "timed_out": timed_out,
                      "seconds": round(open_secs, 3)}), flush=True)

    sys.stdin.readline()

    # How many did the server close while we held them (idle timeout, limits)?
    closed_by_server = 0
    for c in done:
        try:
            if c.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                closed_by_server += 1
        except BlockingIOError:
            pass
        except OSError:
            closed_by_server += 1
    for c in done:
        try:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        except OSError:
            pass
        c.sock.close()
    print(json.dumps({"event": "closed", "closed_by_server": closed_by_server}), flush=True)


if __name__ == "__main__":
    main()
