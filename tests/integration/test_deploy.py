"""The deployment kit against the real binary: the systemd notify protocol received on a socket
of the test's own (READY, RELOADING, STOPPING, WATCHDOG, and the watchdog withheld while a
reactor thread is stopped), the unit file through `systemd-analyze verify`, the config file
(every line shape, every kind of bad file), SIGHUP applying reloadable settings on a running
server (a tier's limit, CORS origins, log level) and refusing a bad file, and the Debian
package: built, installed with apt, started as the crmd user against the stack, purged."""
import ctypes
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from lib import BUILD, CRMD, DB, REDIS, ROOT, SANITIZED, Conn, Server, Skip, free_port, redis_cli, seed_keys

UNIT = os.path.join(ROOT, "packaging", "crmd.service")
WORKER_UNIT = os.path.join(ROOT, "packaging", "crmd-worker.service")
keys = None
tmp = None


def setup_module():
    global keys, tmp
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    keys = seed_keys("deploy")
    tmp = tempfile.mkdtemp(prefix="crmd-deploy-")
    os.chmod(tmp, 0o755)


def teardown_module():
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


def key(tier, role="member"):
    return next(k["key"] for k in keys if k["tier"] == tier and k["role"] == role)


class Notify:
    """A datagram socket standing in for the service manager's $NOTIFY_SOCKET."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "crmd-test-notify-%d-%d" % (os.getpid(), free_port())
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.env = os.path.join(tmp, "notify-%d.sock" % free_port())
            self.sock.bind(self.env)
        self.msgs = []  # (monotonic time, text)

    def wait(self, pred, timeout):
        """Receives until a message satisfies pred; returns it (or None at the timeout)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.msgs.append((time.monotonic(), m))
            if pred(m):
                return m
        return None

    def drain(self, seconds):
        self.wait(lambda m: False, seconds)
        return [m for _, m in self.msgs]

    def close(self):
        self.sock.close()


def env_for(extra=None):
    e = {"DATABASE_URL": DB, "REDIS_URL": REDIS, "PAGINATION_KEY": "deploy-test"}
    e.update(extra or {})
    return e


def test_notify_ready_reload_stopping_and_watchdog():
    for abstract in (False, True):
        n = Notify(abstract)
        try:
            with Server(env=env_for({"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "1000000"}), threads=2,
                        wait=False) as s:
                ready = n.wait(lambda m: "READY=1" in m, 20)
                assert ready and "STATUS=serving" in ready, n.msgs
                # READY comes after the listener is open: a connection succeeds at once
                with Conn(s) as c:
                    assert c.request("GET", "/api/health/ready").status == 200
                t0 = time.monotonic()
                n.drain(2.2)
                pings = [t for t, m in n.msgs if m == "WATCHDOG=1" and t >= t0]
                # every half period (0.5 s) while both reactors turn
                assert len(pings) >= 3, n.msgs
                s.signal(signal.SIGHUP)
                assert n.wait(lambda m: m.startswith("RELOADING=1"), 5), n.msgs
                assert n.wait(lambda m: "READY=1" in m and "reloaded" in m, 5), n.msgs
                s.signal(signal.SIGTERM)
                assert n.wait(lambda m: m.startswith("STOPPING=1"), 10), n.msgs
                assert s.wait_exit() == 0
        finally:
            n.close()


def test_worker_notifies_ready_watchdog_and_stopping():
    """crmd worker (crmd-worker.service) speaks the same protocol, from its admin reactor."""
    n = Notify()
    try:
        e = env_for({"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "1000000", "WORKERS": "2", "JOB_SCHEDULES": "none"})
        if REDIS:
            e["REDIS_URL"] = REDIS
        with Server(command="worker", env=e, wait=False) as s:
            ready = n.wait(lambda m: "READY=1" in m, 20)
            assert ready, n.msgs
            with Conn(s) as c:  # the admin listener: health and /metrics
                assert c.request("GET", "/api/health/live").status == 200
                text = c.request("GET", "/metrics").body.decode()
            assert "crmd_job_workers 2" in text or not REDIS, text[-2000:]
            t0 = time.monotonic()
            n.drain(1.6)
            assert len([t for t, m in n.msgs if m == "WATCHDOG=1" and t >= t0]) >= 2, n.msgs
            s.signal(signal.SIGTERM)
            assert n.wait(lambda m: m.startswith("STOPPING=1"), 10), n.msgs
            assert s.wait_exit() == 0
    finally:
        n.close()


def test_no_watchdog_pings_when_asked_of_another_process_or_none():
    for extra in ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}, {}):
        n = Notify()
        try:
            e = env_for({"NOTIFY_SOCKET": n.env})
            e.update(extra)
            with Server(env=e, wait=False):
                assert n.wait(lambda m: "READY=1" in m, 20), n.msgs
                msgs = n.drain(1.5)
                assert "WATCHDOG=1" not in msgs, (extra, msgs)
        finally:
            n.close()


def test_ready_after_the_first_probe_answers_even_without_a_database():
    """A database that refuses connections is an answer: READY=1 says so in STATUS, and the
    readiness endpoint says 503 (the balancer keeps traffic away, systemd does not time out)."""
    n = Notify()
    try:
        dead = "postgresql://crmd@127.0.0.1:%d/crmd?connect_timeout=1" % free_port()
        with Server(env={"DATABASE_URL": dead, "NOTIFY_SOCKET": n.env}, wait=False) as s:
            m = n.wait(lambda m: "READY=1" in m, 20)
            assert m and "database unreachable" in m, n.msgs
            with Conn(s) as c:
                assert c.request("GET", "/api/health/ready").status == 503
    finally:
        n.close()


PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
WALL = 0x40000000


def reactor_tid(pid):
    for task in glob.glob("/proc/%d/task/*" % pid):
        with open(task + "/comm") as f:
            if f.read().strip() == "crmd-r1":
                return int(os.path.basename(task))
    raise AssertionError("no thread named crmd-r1")


def test_watchdog_withheld_while_a_reactor_is_stuck():
    """One reactor thread stopped (ptrace stops that thread alone, as an endless loop in a
    handler would): the pings stop and the log names the thread; resumed, they come back."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    n = Notify()
    try:
        with Server(env=env_for({"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "1000000"}), threads=2, wait=False) as s:
            assert n.wait(lambda m: "READY=1" in m, 20), n.msgs
            tid = reactor_tid(s.proc.pid)
            if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
                raise Skip("ptrace not permitted here (errno %d)" % ctypes.get_errno())
            try:
                assert libc.ptrace(PTRACE_INTERRUPT, tid, None, None) == 0
                os.waitpid(tid, WALL)
                t_stop = time.monotonic()
                n.drain(5.5)
                # pings may continue until the thread's last turn is 3 s old, then none
                late = [t for t, m in n.msgs if m == "WATCHDOG=1" and t > t_stop + 4.0]
                assert not late, n.msgs
            finally:
                libc.ptrace(PTRACE_DETACH, tid, None, None)
            t_resume = time.monotonic()
            n.drain(2.0)
            assert [t for t, m in n.msgs if m == "WATCHDOG=1" and t > t_resume], n.msgs
            stuck = [line for line in s.log_lines() if line.get("msg", "").startswith("reactor stopped turning")]
            assert stuck and stuck[0]["thread"] == 1, stuck
    finally:
        n.close()


def unit_for(binary, unit=UNIT):
    """The unit with ExecStart pointing at binary (verify checks that it is executable)."""
    text = open(unit).read().replace("/usr/bin/crmd", binary)
    path = os.path.join(tmp, os.path.basename(unit))
    with open(path, "w") as f:
        f.write(text)
    return path


def verify(path):
    if not shutil.which("systemd-analyze"):
        raise Skip("systemd-analyze not installed (Debian package systemd)")
    out = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=60)
    # verify exits 0 on an unknown or unparsable directive, printing it: both must be empty
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), (out.stdout, out.stderr)


def test_unit_files_verify_and_are_hardened():
    for unit in (UNIT, WORKER_UNIT):
        check_unit(unit)


def check_unit(unit):
    verify(unit_for(CRMD, unit))
    directives = {}
    for line in open(unit):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            directives[k] = v
    want = {"Type": "notify", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
            "PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
            "SystemCallFilter": "@system-service", "User": "crmd", "ExecReload": "/bin/kill -HUP $MAINPID"}
    for k, v in want.items():
        assert directives.get(k) == v, (k, directives.get(k))
    assert "WatchdogSec" in directives and "LimitNOFILE" in directives
    # a broken unit is caught: the check can fail
    bad = unit_for(CRMD, unit)
    with open(bad, "a") as f:
        f.write("\n[Service]\nType=bogus\n")
    try:
        verify(bad)
    except AssertionError:
        pass
    else:
        raise AssertionError("systemd-analyze verify accepted Type=bogus")
    # io_uring is allowed by the filter the unit names
    out = subprocess.run(["systemd-analyze", "syscall-filter", "@system-service"], capture_output=True,
                         text=True, timeout=60).stdout
    for sc in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert re.search(r"^\s+%s$" % sc, out, re.M) or "@aio" in out, sc


def write_config(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w", newline="") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def run_briefly(args, env=None):
    e = dict(os.environ)
    for k in ("DATABASE_URL", "REDIS_URL"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([CRMD, "serve"] + args, capture_output=True, text=True, env=e, timeout=30)


def test_bad_config_files_are_refused_at_start_naming_the_line():
    cases = [
        ("THREADS=many\n", r":1 THREADS: 'many' is not a whole number"),
        ("# c\n\nRATE_LIMIT_STANDARD=10/60/0\n", r":3 RATE_LIMIT_STANDARD: '10/60/0' is not LIMIT/WINDOW_S\[/BURST\]"),
        ("LOG_LEVEL=loud\n", r":1 LOG_LEVEL: log level 'loud'"),
        ("PORT=1.2.3.4.5:80\n", r":1 PORT: bad host"),
        ("PORT=8080:x\n", r":1 PORT: bad"),
        ("just a line\n", r":1: not NAME=value"),
        ("=value\n", r":1: not NAME=value"),
        ("CPUS=3-1\n", r":1 CPUS: bad CPU list"),
        ("MAX_CONNS=0\n", r":1 MAX_CONNS: '0' is not a whole number from 1"),
        ("HEADER_TIMEOUT_MS=99999999999999999999\n", r":1 HEADER_TIMEOUT_MS"),
    ]
    for i, (text, want) in enumerate(cases):
        path = write_config("bad-%d.env" % i, text)
        out = run_briefly(["--config", path, "--listen", "127.0.0.1:%d" % free_port()])
        assert out.returncode == 2, (text, out.returncode, out.stderr)
        assert re.search(re.escape(path) + want, out.stderr), (text, out.stderr)
    out = run_briefly(["--config", os.path.join(tmp, "missing.env")])
    assert out.returncode == 2 and "No such file" in out.stderr, out.stderr
    big = write_config("big.env", "# x\n" * 300000)
    out = run_briefly(["--config", big])
    assert out.returncode == 2 and "larger than 1 MiB" in out.stderr, out.stderr


def test_config_file_line_shapes_apply():
    """Comments, blank lines, "export ", quotes, CRLF and unknown names (logged, skipped);
    the file wins over the environment and a flag over the file."""
    path = write_config("shapes.env", "# comment\r\n\r\n  ; also a comment\r\n"
                                      "export FRONTEND_URL='https://a.example'\r\n"
                                      "LOG_LEVEL=\"info\"\r\n"
                                      "SOME_OTHER_PROGRAM=1\r\n"
                                      "HSTS_MAX_AGE=600\r\n"
                                      "RATE_LIMIT_WHITELIST=127.0.0.0/8\r\n")
    with Server("--config", path, "--hsts-max-age", "900",
                env={"FRONTEND_URL": "https://b.example", "HSTS_MAX_AGE": "300"}) as s:
        with Conn(s) as c:
            r = c.request("GET", "/api/health", headers={"Origin": "https://a.example"})
            assert r.header("Access-Control-Allow-Origin") == "https://a.example", r.headers
            assert r.header("Strict-Transport-Security") == "max-age=900; includeSubDomains", r.headers
            r = c.request("GET", "/api/health", headers={"Origin": "https://b.example"})
            assert r.header("Access-Control-Allow-Origin") is None
        ignored = [line for line in s.log_lines() if line.get("msg", "").startswith("config file: not a crmd")]
        assert len(ignored) == 1 and ignored[0]["name"] == "SOME_OTHER_PROGRAM" and ignored[0]["line"] == 6, ignored


def clear_buckets():
    redis_cli("EVAL", "for _, k in ipairs(redis.call('KEYS', 'crmd:rl:*')) do redis.call('DEL', k) end", "0")


def wait_log(server, prefix, count, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        lines = [line for line in server.log_lines() if line.get("msg", "").startswith(prefix)]
        if len(lines) >= count:
            return lines[count - 1]
        time.sleep(0.05)
    raise AssertionError("no log line %r #%d: %s" % (prefix, count, server.logs()[-1500:]))


def test_sighup_applies_reloadable_settings_on_a_running_server():
    clear_buckets()
    std = key("standard")
    path = write_config("reload.env", "RATE_LIMIT_STANDARD=3/60/3\nRATE_LIMIT_MAX_BLOCK=0\nLOG_LEVEL=info\n")
    with Server("--config", path, env=env_for(), limits=True) as s:
        with Conn(s) as c:
            statuses = []
            for _ in range(6):
                r = c.request("GET", "/api/companies?limit=1", headers={"X-API-Key": std})
                statuses.append(r.status)
                if r.status == 200:
                    assert r.header("X-RateLimit-Limit") == "3", r.headers
            assert 429 in statuses and statuses[0] == 200, statuses
            r = c.request("GET", "/api/health", headers={"Origin": "https://new.example"})
            assert r.header("Access-Control-Allow-Origin") is None

            # a tier's limit, CORS origins, the log level, and one setting that takes a restart
            write_config("reload.env", "RATE_LIMIT_STANDARD=1000/60/1000\nRATE_LIMIT_MAX_BLOCK=0\nLOG_LEVEL=warn\n"
                                       "FRONTEND_URL=https://new.example\nDB_POOL_SIZE=7\n")
            s.signal(signal.SIGHUP)
            done = wait_log(s, "configuration reloaded", 1)
            assert set(done["applied"].split(",")) == {"RATE_LIMIT_STANDARD", "LOG_LEVEL", "FRONTEND_URL"}, done
            restart = wait_log(s, "changed settings that take a restart", 1)
            assert restart["settings"] == "DB_POOL_SIZE", restart
            # the tier's new limit applies to its keys (the key blocked before keeps the
            # Retry-After it was given; another key of the tier starts afresh)
            std = key("standard", "admin")
            r = c.request("GET", "/api/companies?limit=1", headers={"X-API-Key": std})
            assert r.status == 200 and r.header("X-RateLimit-Limit") == "1000", (r.status, r.headers)
            for _ in range(10):
                assert c.request("GET", "/api/companies?limit=1", headers={"X-API-Key": std}).status == 200
            r = c.request("GET", "/api/health", headers={"Origin": "https://new.example"})
            assert r.header("Access-Control-Allow-Origin") == "https://new.example", r.headers
            # the same connection stayed open throughout: a reload closes nothing
            before = len(s.log_lines())
            for _ in range(3):
                assert c.request("GET", "/api/health").status == 200
            time.sleep(0.3)
            assert not [line for line in s.log_lines()[before:] if line.get("level") == "info"], "info logged at warn"

            # a bad file is refused whole: the limit stays at 1000
            write_config("reload.env", "RATE_LIMIT_STANDARD=5/60/5\nTHREADS=lots\n")
            s.signal(signal.SIGHUP)
            refused = wait_log(s, "reload refused", 1)
            assert "THREADS" in refused["reason"], refused
            r = c.request("GET", "/api/companies?limit=1", headers={"X-API-Key": std})
            assert r.status == 200 and r.header("X-RateLimit-Limit") == "1000", (r.status, r.headers)


def root_and_apt():
    if os.geteuid() != 0:
        raise Skip("installing a package needs root")
    for tool in ("dpkg-deb", "apt-get", "setpriv", "objdump"):
        if not shutil.which(tool):
            raise Skip("%s not installed" % tool)
    if SANITIZED:
        raise Skip("the package is built and installed from the normal build")


def test_deb_builds_installs_starts_as_crmd_user_and_purges():
    root_and_apt()
    out = subprocess.run([os.path.join(ROOT, "packaging", "build-deb"), os.path.relpath(BUILD, ROOT)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    debs = glob.glob(os.path.join(BUILD, "crmd_*_*.deb"))
    assert len(debs) == 1, debs
    deb = debs[0]
    info = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends"], capture_output=True, text=True).stdout
    for lib in ("liburing2", "libpq5", "libhiredis", "libdeflate0", "libsodium23", "libc6"):
        assert lib in info, info
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
    for p in ("./usr/bin/crmd", "./lib/systemd/system/crmd.service", "./lib/systemd/system/crmd-worker.service",
              "./etc/crmd/crmd.env",
              "./usr/share/crmd/migrations/001_schema.sql", "./usr/share/doc/crmd/deploy.md"):
        assert p in listing, p
    conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"], capture_output=True, text=True).stdout
    assert conffiles.strip() == "/etc/crmd/crmd.env", conffiles

    out = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", deb], capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    try:
        v = subprocess.run(["/usr/bin/crmd", "--version"], capture_output=True, text=True, timeout=10)
        assert v.returncode == 0 and re.match(r"crmd \d+\.\d+\.\d+", v.stdout), v
        st = os.stat("/var/lib/crmd")
        import pwd
        import grp
        assert pwd.getpwuid(st.st_uid).pw_name == "crmd" and grp.getgrgid(st.st_gid).gr_name == "crmd"
        st = os.stat("/etc/crmd/crmd.env")
        assert st.st_mode & 0o777 == 0o640 and grp.getgrgid(st.st_gid).gr_name == "crmd", oct(st.st_mode)
        verify("/lib/systemd/system/crmd.service")
        verify("/lib/systemd/system/crmd-worker.service")

        # the installed binary as the crmd user against the stack, its migrations from /usr/share
        port, admin = free_port(), free_port()
        conf = write_config("installed.env", "DATABASE_URL=%s\nREDIS_URL=%s\nPAGINATION_KEY=deb\n"
                                             "PORT=127.0.0.1:%d\nADMIN_LISTEN=127.0.0.1:%d\nTHREADS=1\n"
                                             "RATE_LIMIT_WHITELIST=127.0.0.0/8\n" % (DB, REDIS, port, admin))
        e = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        log = open(os.path.join(tmp, "installed.log"), "wb")
        proc = subprocess.Popen(["setpriv", "--reuid=crmd", "--regid=crmd", "--init-groups", "--", "/usr/bin/crmd", "serve",
                                 "--config", conf],
                                stdout=log, stderr=log, env=e, cwd="/")
        try:
            end = time.time() + 20
            status = None
            while time.time() < end and proc.poll() is None:
                try:
                    with Conn(socket.create_connection(("127.0.0.1", port), timeout=2)) as c:
                        status = c.request("GET", "/api/health/ready").status
                        if status == 200:
                            break
                except OSError:
                    pass
                time.sleep(0.1)
            assert status == 200, (status, open(log.name).read()[-2000:])
            with Conn(socket.create_connection(("127.0.0.1", port), timeout=2)) as c:
                r = c.request("GET", "/api/companies?limit=2", headers={"X-API-Key": key("unlimited")})
                assert r.status == 200 and len(r.json()["data"]) == 2, (r.status, r.body[:300])
            user = open("/proc/%d/status" % proc.pid).read()
            crmd_uid = pwd.getpwnam("crmd").pw_uid
            # setpriv execs crmd in its own process: the real and effective uid are crmd's
            assert re.search(r"^Uid:\s+%d\s+%d" % (crmd_uid, crmd_uid), user, re.M), user
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            log.close()
    finally:
        out = subprocess.run(["dpkg", "--purge", "crmd"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    assert not os.path.exists("/usr/bin/crmd") and not os.path.exists("/var/lib/crmd")
    assert not os.path.exists("/etc/crmd/crmd.env")
