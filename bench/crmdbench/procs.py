"""Paths, pinning, and the process helpers every benchmark uses (spawn, kill, CPU ticks, RSS, ports)."""
import os
import random
import resource
import signal
import socket
import subprocess



BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")
BENCHMARKS_MD = os.path.join(BENCH_DIR, "BENCHMARKS.md")
SERVER_CPU = "1"
CLIENT_CPU = "0"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOFILE = 65536
PORT_BASE = 18000


class Skip(Exception):
    """A server (or a whole benchmark) cannot run here; say why and go on."""


class Fatal(Exception):
    pass



# --------------------------------------------------------------------------- process helpers

LIVE = []   # Popen objects we started and must not leave behind


def set_nofile():
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(cmd, log_path, env=None):
    log = open(log_path, "ab")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True, preexec_fn=set_nofile, cwd=REPO)
    log.close()
    LIVE.append(p)
    return p


def kill_tree(p, grace=5.0):
    """SIGTERM the process, wait up to grace seconds, then SIGKILL its whole process group
    (it was started in its own session, so the group holds nginx workers, crmd helpers...)."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    if p in LIVE:
        LIVE.remove(p)


def kill_all():
    for p in list(LIVE):
        kill_tree(p, grace=2.0)


def read_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()   # index 0 = field 3 (state)


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(read_stat(d)[1]) == pid:
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def cpu_ticks(pids):
    """utime+stime (fields 14, 15 of /proc/PID/stat; all threads) summed over pids."""
    total = 0
    for pid in pids:
        f = read_stat(pid)
        total += int(f[11]) + int(f[12])
    return total


def rss_bytes(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def cpu_line(cpu):
    """(busy, total) jiffies of one CPU from /proc/stat, to see who else used the server CPU."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + v[4]
                return sum(v) - idle, sum(v)
    return 0, 0


def free_port(avoid=()):
    # above 18000 and below the usual ephemeral range (32768-60999) the clients connect from
    span = 32000 - PORT_BASE
    start = random.randrange(span)
    for i in range(span):
        port = PORT_BASE + (start + i) % span
        if port in avoid:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise Fatal("no free port above 18000")


def http_get(port, path, headers=(), timeout=2.0):
    """One GET over a fresh connection: (status, headers dict, body bytes, response bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
        s.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise OSError("connection closed before headers")
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip()] = v.strip()
        n = int(next((v for k, v in hdrs.items() if k.lower() == "content-length"), "0"))
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        return status, hdrs, body[:n], len(head) + 4 + n
    finally:
        s.close()
