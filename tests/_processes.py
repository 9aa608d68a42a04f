"""Real `callproof` processes and an alert receiver, for the worker and several-instances tests.

Everything listens on 127.0.0.1 only; every process is waited for, every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CALLPROOF = [sys.executable, "-m", "callproof"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def alive(pid: int) -> bool:
    """The process runs (a zombie, dead but not reaped yet, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.05) -> float:
    """Poll ``check`` until it is truthy; the seconds that took. Fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)
    return time.monotonic() - start


@dataclass
class Proc:
    """A `callproof` subprocess whose output goes to a log file."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` (if it still runs) and wait for the exit; the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
            raise AssertionError(f"`callproof` did not stop within {timeout} s:\n"
                                 f"{self.output()[-2000:]}") from None


@contextmanager
def callproof(args: list[str], env: Mapping[str, str], log: Path) -> Iterator[Proc]:
    """Run `callproof ARGS` for the ``with`` block; killed (and waited for) after it."""
    with log.open("wb") as out:
        popen = subprocess.Popen([*CALLPROOF, *args], env={**os.environ, **env},  # noqa: S603
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    proc = Proc(popen, log)
    try:
        yield proc
    finally:
        if popen.poll() is None:
            popen.kill()
        popen.wait(30)


@dataclass
class Receiver:
    """An alert webhook's receiver on 127.0.0.1: every POST is kept (with when it came) and
    answered 200."""

    port: int = 0
    got: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/callproof"

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [body for _, _, body in self.got]


@contextmanager
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with found.lock:
                found.got.append((time.monotonic(),
                                  {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
