"""The check page under load: `POST /verify` against a hello-world Flask route, served the same way.

    python benchmarks/bench_web.py              # 15 s per target
    python benchmarks/bench_web.py --quick      # 3 s per target (CI smoke run)

The callproof target is `callproof serve` itself (its gunicorn settings, its embedded background
worker); the hello-world app runs under gunicorn with exactly the settings `serve` uses
(`callproof._cli.serve.gunicorn_settings`: 2 processes × 4 threads, spec/adr/0010). Debian's `wrk`
drives 32 connections on loopback for a fixed time and reports throughput and latency
percentiles. The callproof target is a genuine lookup: a browser
that has claimed a live ticket posts its code again (CSRF token, session and claim cookies, the
database transaction, ticket verification and the page render) — the step every customer takes.
The benchmark reports and exits 0; it only fails when a server does not start or wrk is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONNECTIONS = 32
#: The hello-world app under gunicorn with `callproof serve`'s own settings.
HELLO = """
import sys
from gunicorn.app.base import BaseApplication
from callproof._cli.serve import gunicorn_settings
from _hello import app

class Hello(BaseApplication):
    def load_config(self):
        for name, value in gunicorn_settings("127.0.0.1", int(sys.argv[1])).items():
            self.cfg.set(name, value)
        self.cfg.set("loglevel", "warning")

    def load(self):
        return app

Hello().run()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(target: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """``target`` "hello" (the baseline) or "callproof" (`callproof serve` as it runs)."""
    port = free_port()
    if target == "hello":
        cmd = [sys.executable, "-c", HELLO, str(port)]
    else:
        cmd = [sys.executable, "-m", "callproof", "serve", "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, cwd=HERE, start_new_session=True)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server, port
        except OSError:
            time.sleep(0.05)
    stop(server)
    raise SystemExit(f"{target} did not start")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (gunicorn, its workers, serve's worker)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def wrk(url: str, seconds: int, script: Path | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms(" 50"), "p99": ms(" 99"),
            "errors": float(non2xx.group(1)) if non2xx else 0.0}


def claimed_browser(port: int, code: str) -> tuple[str, str]:
    """A browser that has claimed the ticket: its cookies and a valid form body."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://127.0.0.1:{port}/").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    body = urllib.parse.urlencode({"csrf_token": token, "code": code})
    answer = opener.open(f"http://127.0.0.1:{port}/verify", data=body.encode()).read().decode()
    assert "Does the phone in your hand end in" in answer, "the lookup did not claim the ticket"
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    return cookies, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    seconds = 3 if args.quick else args.seconds
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPROOF_")}
    with tempfile.TemporaryDirectory() as tmp:
        env["CALLPROOF_DATA_DIR"] = f"{tmp}/data"
        env["PYTHONPATH"] = str(HERE)
        subprocess.run([sys.executable, "-m", "callproof", "init"], env=env, check=True,
                       capture_output=True)
        issued = subprocess.run([sys.executable, "-m", "callproof", "issue", "--agent-id",
                                 "a-001", "--reason", "payment_failed", "--phone",
                                 "+886912345678", "--ttl", "1800", "--json"], env=env,
                                check=True, capture_output=True, text=True).stdout
        code = re.search(r'"code": "(\d{9})"', issued).group(1)  # type: ignore[union-attr]
        results = {}
        hello, port = start("hello", env)
        try:
            wrk(f"http://127.0.0.1:{port}/", 1)  # warm up
            results["hello-world GET /"] = wrk(f"http://127.0.0.1:{port}/", seconds)
        finally:
            stop(hello)
        app, port = start("callproof", env)
        try:
            cookies, body = claimed_browser(port, code)
            script = Path(tmp) / "verify.lua"
            script.write_text(
                'wrk.method = "POST"\n'
                f'wrk.body = "{body}"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                f'wrk.headers["Cookie"] = "{cookies}"\n')
            wrk(f"http://127.0.0.1:{port}/verify", 1, script)
            results["callproof POST /verify"] = wrk(f"http://127.0.0.1:{port}/verify", seconds,
                                                    script)
        finally:
            stop(app)
    from callproof._cli.serve import gunicorn_settings

    settings = gunicorn_settings("127.0.0.1", 0)
    print(f"check page benchmark: {CONNECTIONS} connections, {seconds} s each, `callproof "
          f"serve` ({settings['worker_class']}, {settings['workers']} × {settings['threads']}), "
          f"{os.cpu_count()} CPUs")
    print(f"{'target':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in results.items():
        print(f"{name:28} {r['rps']:9,.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:8.0f}")
    ratio = results["callproof POST /verify"]["rps"] / results["hello-world GET /"]["rps"]
    p99 = results["callproof POST /verify"]["p99"]
    print(f"POST /verify / hello-world: {ratio:.2f} (aim ≥ 0.3, issue 11); POST /verify p99 "
          f"{p99:.1f} ms (aim < 50 ms at {CONNECTIONS} connections)")


if __name__ == "__main__":
    main()
