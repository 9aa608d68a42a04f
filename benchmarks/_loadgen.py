"""What bench_scale.py and bench_flood.py share: a light browser, the servers, the database and
the machine's CPU.

- :class:`Browser`: one customer's browser (or the dialer's HTTP client) over kept-alive
  ``http.client`` connections, with its cookies, following the pages' 303s (Post/Redirect/Get);
  each request may go to the next of several instances, as behind a load balancer. Lighter than
  ``requests`` by a large factor, so the load generator leaves the CPU to the servers.
- :func:`start_servers` / :func:`stop`: ``callproof serve`` and ``callproof worker`` processes,
  each in its own process group (stopped with SIGTERM, then SIGKILL).
- :func:`scratch_database`: a PostgreSQL database made for one run and dropped after it.
- :class:`LockWaiters`: samples ``pg_stat_activity`` for sessions waiting on a lock.
- :class:`CpuMeter`: the machine's busy share (``/proc/stat``) and the CPU seconds of chosen
  processes (``/proc/<pid>/stat``) over a phase.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TICKS = os.sysconf("SC_CLK_TCK")


# --- the browser --------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    text: str
    location: str | None = None

    def csrf(self) -> str:
        found = CSRF.search(self.text)
        if found is None:
            raise FlowError(f"no CSRF token on a {self.status} page")
        return found.group(1)


class FlowError(Exception):
    """A page or an answer other than a genuine customer gets: the flow is counted as failed."""


@dataclass
class Browser:
    """One client: a kept-alive connection per instance, cookies, and a round-robin over the
    instances' ``ports`` (each request to the next one, like a load balancer without sticky
    sessions — every instance must accept every other's cookies and tickets)."""

    ports: Sequence[int]
    first: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    cookies: dict[str, str] = field(default_factory=dict)
    _conns: dict[int, http.client.HTTPConnection] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._turn = self.first

    def _port(self) -> int:
        port = self.ports[self._turn % len(self.ports)]
        self._turn += 1
        return port

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        port = self._port()
        sent = {**self.headers, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more, new
            conn = self._conns.get(port)
            if conn is None:
                conn = self._conns[port] = http.client.HTTPConnection(HOST, port,
                                                                      timeout=self.timeout)
            try:
                conn.request(method, path, body, sent)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                conn.close()
                del self._conns[port]
                if attempt == 2:
                    raise
                continue
            for header in response.headers.get_all("Set-Cookie") or ():
                self._keep_cookie(header)
            if response.will_close:
                conn.close()
                del self._conns[port]
            return Reply(response.status, data.decode("utf-8", "replace"),
                         response.getheader("Location"))
        raise AssertionError("unreachable")

    def _keep_cookie(self, header: str) -> None:
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        lowered = attributes.lower()
        if "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered or not value:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def form(self, path: str, data: dict[str, str], *, follow: bool = True) -> Reply:
        """POST a form; follow its 303 to the page it shows (what the customer waits for)."""
        reply = self.request("POST", path, urllib.parse.urlencode(data).encode(),
                             {"Content-Type": "application/x-www-form-urlencoded"})
        if follow and reply.status in (302, 303) and reply.location:
            where = urllib.parse.urlsplit(reply.location)
            reply = self.get(where.path + (f"?{where.query}" if where.query else ""))
        return reply

    def api(self, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {key}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self.request(method, path, data, headers)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def callproof(*args: str, env: dict[str, str]) -> str:
    """Run one `callproof` command to its end; its stdout."""
    done = subprocess.run([sys.executable, "-m", "callproof", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"callproof {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout


def spawn(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`callproof ARGS` in a process group of its own, its output in ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "callproof", *args], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)


def start_servers(count: int, env: dict[str, str], logs: Path, *,
                  extra: Sequence[str] = ("--no-worker",),
                  started: list[subprocess.Popen[bytes]]) -> list[int]:
    """Start ``count`` `callproof serve` instances at once and wait until each answers
    /healthz (60 s); each process is appended to ``started`` at once, so the caller stops it
    whatever happens. Exits the benchmark when one does not start."""
    ports = [free_port() for _ in range(count)]
    for port in ports:
        started.append(spawn(["serve", "--host", HOST, "--port", str(port), *extra], env,
                             logs / f"serve-{port}.log"))
    deadline = time.monotonic() + 60
    for port, process in zip(ports, started[-count:], strict=True):
        while True:
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (logs / f"serve-{port}.log").read_text("utf-8", "replace")[-2000:]
                raise SystemExit(f"callproof serve on port {port} did not start:\n{tail}")
            time.sleep(0.1)
    return ports


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the process's group (gunicorn and its workers, an embedded worker), then
    SIGKILL to whatever is left of the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


# --- PostgreSQL and Redis -----------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """CREATE DATABASE ``name`` (dropped first if a crashed run left it), yield its
    SQLAlchemy URL, and DROP it (WITH FORCE) at the end."""
    import psycopg

    def admin(sql: str) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # a fixed statement, our own name

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a plain database name: {name}")
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_ready() -> str | None:
    """None when PostgreSQL answers at 127.0.0.1:5432, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except Exception as e:  # noqa: BLE001 - the reason goes on one line
        return f"{type(e).__name__}: {e}".splitlines()[0]


def redis_flushed(url: str) -> bool:
    """Empty the Redis database at ``url`` (the benchmark's own); False when Redis is absent."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
        client.close()
        return True
    except Exception:  # noqa: BLE001 - no Redis: the limits stay in memory
        return False


class LockWaiters:
    """Sessions of ``database`` waiting on a lock, sampled every ``every`` seconds in a thread
    (``pg_stat_activity.wait_event_type = 'Lock'``, whatever the lock: a row, a transaction id,
    an advisory lock)."""

    QUERY = ("SELECT wait_event, count(*) FROM pg_stat_activity "
             "WHERE wait_event_type = 'Lock' AND datname = %s GROUP BY wait_event")

    def __init__(self, database: str, every: float = 0.05) -> None:
        self.database = database
        self.every = every
        self.samples: list[tuple[float, int, dict[str, int]]] = []  # (time, waiting, by kind)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lock-waiters")

    def __enter__(self) -> LockWaiters:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            while not self._stop.is_set():
                at = time.monotonic()
                kinds = {str(kind): int(n) for kind, n in
                         conn.execute(self.QUERY, (self.database,)).fetchall()}
                self.samples.append((at, sum(kinds.values()), kinds))
                self._stop.wait(max(0.0, self.every - (time.monotonic() - at)))

    def between(self, start: float, end: float) -> dict[str, Any]:
        """Mean and most waiting sessions, and the share of samples with any, in [start, end)."""
        chosen = [s for s in self.samples if start <= s[0] < end]
        if not chosen:
            return {"samples": 0, "mean": 0.0, "max": 0, "busy_share": 0.0, "by_kind": {}}
        kinds: dict[str, int] = {}
        for _, _, by in chosen:
            for kind, n in by.items():
                kinds[kind] = kinds.get(kind, 0) + n
        return {"samples": len(chosen),
                "mean": sum(s[1] for s in chosen) / len(chosen),
                "max": max(s[1] for s in chosen),
                "busy_share": sum(1 for s in chosen if s[1]) / len(chosen),
                "by_kind": {k: n / len(chosen) for k, n in sorted(kinds.items())}}


def commits(database: str) -> int:
    """Committed transactions of ``database`` so far (pg_stat_database; flushed by each backend
    within about a second)."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                           (database,)).fetchone()
    return int(row[0]) if row else 0


# --- the machine --------------------------------------------------------------------------------


def _proc_stat() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _process_jiffies(pid: int) -> tuple[int, str] | None:
    """(utime + stime, the process group) of ``pid``; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(rest[11]) + int(rest[12]), rest[2]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


def our_processes(groups: Sequence[int], database: str | None) -> dict[int, str]:
    """pid → role for every process in the process ``groups`` ("server"), this process
    ("load generator"), and PostgreSQL's backends for ``database`` ("postgres")."""
    wanted = {str(g) for g in groups}
    found: dict[int, str] = {os.getpid(): "load generator"}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        info = _process_jiffies(pid)
        if info is None:
            continue
        if info[1] in wanted:
            found.setdefault(pid, "servers")
        elif database and f" {database} " in f" {_cmdline(pid)} " and \
                _cmdline(pid).startswith("postgres:"):
            found[pid] = "postgres"
    return found


class CpuMeter:
    """CPU over a phase: the machine's busy share of all its CPUs, and the CPU seconds of the
    processes :func:`our_processes` finds (looked for again at the end: new backends count
    from zero, processes gone before the end are missed)."""

    def __init__(self, groups: Callable[[], Sequence[int]], database: str | None,
                 roles: Callable[[int, str], str] | None = None) -> None:
        self.groups = groups
        self.database = database
        self.roles = roles or (lambda _pid, role: role)

    def __enter__(self) -> CpuMeter:
        self.start_machine = _proc_stat()
        self.start_at = time.monotonic()
        self.start = {pid: (_process_jiffies(pid) or (0, ""))[0]
                      for pid in our_processes(self.groups(), self.database)}
        return self

    def __exit__(self, *_exc: object) -> None:
        busy, total = _proc_stat()
        self.wall = time.monotonic() - self.start_at
        self.machine_busy = (busy - self.start_machine[0]) / max(1, total - self.start_machine[1])
        self.by_role: dict[str, float] = {}
        for pid, role in our_processes(self.groups(), self.database).items():
            now = _process_jiffies(pid)
            if now is None:
                continue
            seconds = (now[0] - self.start.get(pid, 0)) / TICKS
            name = self.roles(pid, role)
            self.by_role[name] = self.by_role.get(name, 0.0) + seconds

    def cores(self) -> dict[str, float]:
        """CPU cores used on average by each role during the phase."""
        return {role: s / self.wall for role, s in sorted(self.by_role.items())}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def machine_line() -> str:
    load = os.getloadavg()
    return (f"{cpu_model()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} "
            f"{load[1]:.1f} {load[2]:.1f} before the run | Python {platform.python_version()}")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0–1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
