"""Helpers for integration tests: start the real crmd binary, talk raw HTTP/1.1 over TCP.

Each test module holds functions named test_*; tests/integration/run.py imports the modules
and runs them. A test fails by raising (assert). A test that needs something the machine
lacks raises Skip.
"""
import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CRMD_BUILD", os.path.join(ROOT, "build"))
CRMD = os.environ.get("CRMD_BIN", os.path.join(BUILD, "crmd"))
# a sanitizer build (tests/run's build-asan/) runs several times slower: bounds on the worst
# single latency allow for it, bounds that catch multi-second stalls stay meaningful
SANITIZED = bool(os.environ.get("ASAN_OPTIONS")) or "asan" in os.path.basename(os.path.normpath(BUILD))


DB = os.environ.get("DATABASE_URL")
REDIS = os.environ.get("REDIS_URL")


class Skip(Exception):
    pass


def psql(sql, db=None):
    """Runs SQL with psql on the test database (or db); returns unaligned output, "|"-separated."""
    out = subprocess.run(["psql", db or DB, "-Atq", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def stack(cmd):
    """dev/stack CMD (pg-stop, pg-start, redis-stop, redis-start, ...)."""
    out = subprocess.run([os.path.join(ROOT, "dev", "stack"), cmd], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (cmd, out.stdout, out.stderr)


def redis_cli(*args):
    host, port = re.match(r"redis://([^:/]+):(\d+)", REDIS).groups()
    return subprocess.run(["redis-cli", "-h", host, "-p", port] + list(args), capture_output=True, text=True,
                          timeout=30).stdout.strip()


def seed_keys(name, scale="0.01"):
    """Migrates, loads the demo data and returns its keys ([{"org_id", "tier", "role", "key"}]).
    Reseeding reuses row ids, so the shared Redis cache is emptied too: entries cached by an
    earlier module must not describe rows that now belong to someone else."""
    if not DB:
        raise Skip("DATABASE_URL not set (tests/run starts dev/stack)")
    subprocess.run([CRMD, "migrate"], check=True, capture_output=True, timeout=120)
    if REDIS:
        redis_cli("EVAL", "for _, k in ipairs(redis.call('KEYS', 'crmd:*')) do redis.call('DEL', k) end", "0")
    path = os.path.join(BUILD, "test-%s-keys.json" % name)
    subprocess.run([CRMD, "seed", "--scale", scale, "--keys-out", path], check=True, capture_output=True,
                   timeout=300)
    return json.load(open(path))


def wait_ready(server, timeout=15):
    """Waits until /api/health/ready answers 200 (the database is reachable)."""
    end = time.time() + timeout
    while time.time() < end:
        with Conn(server) as c:
            if c.request("GET", "/api/health/ready").status == 200:
                return
        time.sleep(0.1)
    raise AssertionError("server never became ready")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(n=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Server:
    """A crmd process on a free loopback port; stderr (the JSON log) is captured."""

    def __init__(self, *args, env=None, threads=1, log_level="info", wait=True, limits=False, command="serve"):
        """command "worker" starts `crmd worker`: job executors and the admin listener only
        (then self.port is the admin port)."""
        self.port = free_port()
        self.admin_port = free_port()
        self.log_path = os.path.join(BUILD, "test-logs", "crmd-%d.log" % self.port)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        e = dict(os.environ)
        # a server talks to the stack only when the test asks for it explicitly
        for k in ("DATABASE_URL", "REDIS_URL", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER"):
            e.pop(k, None)
        e["LOG_LEVEL"] = log_level
        if not limits:
            # tests of other features send far more than a tier allows from loopback;
            # test_ratelimit asks for the limits (limits=True)
            e["RATE_LIMIT_WHITELIST"] = "127.0.0.0/8,::1"
        if env:
            e.update(env)
        # test_pgbouncer reruns modules with their servers behind PgBouncer: the test database
        # is reached through it (psql, migrate and seed still go direct)
        via = os.environ.get("CRMD_SERVER_DATABASE_URL")
        if via and DB and e.get("DATABASE_URL") == DB:
            e["DATABASE_URL"] = via
            e["DB_PREPARED"] = "off"
        if command == "worker":
            self.admin_port = self.port
            cmd = [CRMD, "worker", "--admin-listen", "127.0.0.1:%d" % self.port] + list(args)
        else:
            cmd = [CRMD, command, "--listen", "127.0.0.1:%d" % self.port,
                   "--admin-listen", "127.0.0.1:%d" % self.admin_port, "--threads", str(threads)] + list(args)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=e,
                                     preexec_fn=lambda: raise_nofile())
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("crmd exited with %s: %s" % (self.proc.returncode, self.logs()[-2000:]))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("crmd did not start listening")

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        out = []
        for line in self.logs().splitlines():
            line = line.strip()
            if line:
                out.append(json.loads(line))
        return out

    def connect(self, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=15):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lowercase name, value)
        self.body = body
        self.version = version

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


class Conn:
    """A raw HTTP/1.1 client connection that reads responses incrementally."""

    def __init__(self, server_or_sock, timeout=5):
        self.sock = server_or_sock.connect(timeout) if isinstance(server_or_sock, Server) else server_or_sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by server")
        self.buf += chunk

    def read_response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        status = int(status)
        r = Response(status, reason, headers, b"", version)
        if head_only or status in (100, 204, 304) or 100 <= status < 200:
            return r
        cl = r.header("content-length")
        if cl is not None:
            n = int(cl)
            while len(self.buf) < n:
                self._fill()
            r.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            r.body, self.buf = self.buf, b""
        return r

    def request(self, method="GET", path="/api/health", headers=None, body=None, version="HTTP/1.1"):
        h = {"Host": "localhost"}
        if headers:
            h.update(headers)
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            h.setdefault("Content-Length", str(len(body)))
        req = "%s %s %s\r\n" % (method, path, version) + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        self.send(req.encode() + (body or b""))
        return self.read_response(head_only=(method == "HEAD"))

    def closed_by_peer(self, timeout=5):
        """True when the server closes the connection (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def raw_exchange(server, data, timeout=5):
    """Sends raw bytes on a new connection and returns the first response (or None if closed)."""
    with Conn(server, timeout) as c:
        c.send(data)
        try:
            return c.read_response()
        except EOFError:
            return None


def http_get(server, path, headers=None):
    with Conn(server) as c:
        return c.request("GET", path, headers)
