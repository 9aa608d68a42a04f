"""Slow clients against `callproof serve`, alone and behind the shipped nginx front, for each
worker model: the measurement behind spec/adr/0010.

    python benchmarks/bench_front.py            # about 5 minutes
    python benchmarks/bench_front.py --quick    # one worker model, short phases
    python benchmarks/bench_front.py --load-only 3   # throughput through nginx, 3 rounds

For each worker model (gunicorn sync × 2 processes; gthread 2 × 4 and 2 × 8 threads) and each
front (none: clients reach gunicorn; nginx: deploy/nginx/callproof.conf with a test CA), it runs
`callproof serve` on a fresh SQLite data dir and then:

- **slow clients**: N sockets open a request and send one header line every 5 s for 20 s (10 and
  20 sockets), while a genuine customer looks a live code up twice a second (the code page, then
  `POST /verify`, 5 s timeout each): how many lookups answered, their median and worst time;
- **throughput**: Debian's `wrk`, 16 connections for a few seconds on `POST /verify` from a browser
  that has claimed the ticket (the step every customer takes), through the same front.

Everything runs on 127.0.0.1 in a scratch directory and every process is stopped at the end.
Needs nginx, openssl and wrk (apt-get install nginx wrk).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import importlib.util
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _topology() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callproof_deploy_topology",
                                                  ROOT / "deploy" / "topology.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


topology = _topology()
MODELS = {"sync 2": 1, "gthread 2×4": 4, "gthread 2×8": 8}


class Customer:
    """A browser that looks a code up: the code page (CSRF token, cookies), then the code."""

    def __init__(self, origin: str, context: ssl.SSLContext | None) -> None:
        handlers: list[Any] = [urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)
        self.origin = origin

    def lookup(self, code: str, timeout: float = 5.0) -> bool:
        with self.opener.open(self.origin + "/", timeout=timeout) as r:
            page = r.read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if not token:
            return False
        body = urllib.parse.urlencode({"csrf_token": token.group(1), "code": code}).encode()
        with self.opener.open(self.origin + "/verify", data=body, timeout=timeout) as r:
            return r.status == 200 and 'value="yes"' in r.read().decode()

    def cookies_and_body(self, code: str) -> tuple[str, str]:
        page = self.opener.open(self.origin + "/", timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        body = urllib.parse.urlencode({"csrf_token": token.group(1), "code": code})
        answer = self.opener.open(self.origin + "/verify", data=body.encode(), timeout=10)
        assert 'value="yes"' in answer.read().decode(), "the lookup did not claim the ticket"
        jar = next(h for h in self.opener.handlers
                   if isinstance(h, urllib.request.HTTPCookieProcessor)).cookiejar
        return "; ".join(f"{c.name}={c.value}" for c in jar), body


def slow_clients(host: str, port: int, n: int, seconds: float, every: float,
                 context: ssl.SSLContext | None) -> threading.Event:
    """``n`` sockets that send a request header one line every ``every`` s; stop() ends them."""
    stop = threading.Event()

    def one() -> None:
        deadline = time.monotonic() + seconds
        try:
            raw = socket.create_connection((host, port), timeout=10)
            s = context.wrap_socket(raw, server_hostname="localhost") if context else raw
            with s:
                s.sendall(f"POST /verify HTTP/1.1\r\nHost: localhost:{port}\r\n".encode())
                n = 0
                while time.monotonic() < deadline and not stop.wait(every):
                    s.sendall(f"X-Slow-{n}: {'a' * 20}\r\n".encode())
                    n += 1
        except OSError:
            pass

    for _ in range(n):
        threading.Thread(target=one, daemon=True).start()
    return stop


def fresh_code(data: Path) -> str:
    """A live ticket's code (30 minutes), for one customer's browser only: a second browser
    with the same code would be a second device, and fail."""
    from callproof import Issuer

    issuer = Issuer.open(data)
    try:
        return issuer.issue(agent_id="a-001", reason="payment_failed", phone="+886912345678",
                            ttl=1800).code
    finally:
        issuer.dep.store.close()


def attack(origin: str, host: str, port: int, code: str, n: int, seconds: float,
           context: ssl.SSLContext | None) -> dict[str, float]:
    stop = slow_clients(host, port, n, seconds, 5.0, context)
    time.sleep(1.0)
    customer = Customer(origin, context)
    times: list[float] = []
    ok = 0
    deadline = time.monotonic() + seconds - 1.5
    while time.monotonic() < deadline:
        began = time.monotonic()
        try:
            ok += customer.lookup(code)
        except (OSError, urllib.error.URLError):
            pass
        times.append(time.monotonic() - began)
        time.sleep(max(0.0, 0.5 - (time.monotonic() - began)))
    stop.set()
    return {"ok": ok, "total": len(times), "p50": statistics.median(times) * 1000,
            "max": max(times) * 1000}


def wrk(url: str, seconds: int, cookies: str, body: str, tmp: Path) -> dict[str, float]:
    script = tmp / "verify.lua"
    script.write_text('wrk.method = "POST"\n'
                      f'wrk.body = "{body}"\n'
                      'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                      f'wrk.headers["Cookie"] = "{cookies}"\n')
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": ms(" 50"), "p99": ms(" 99"),
            "bad": float(bad.group(1)) if bad else 0.0,
            "socket_errors": errors.group(1) if errors else ""}  # type: ignore[dict-item]


def run(model: str, threads: int, front: str, slow: list[int], phase: float, load: int,
        tmp: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPROOF_")}
    data = tmp / "data"
    env.update({"CALLPROOF_DATA_DIR": str(data), "HOME": str(tmp)})
    if not data.exists():
        subprocess.run([*topology.callproof_command(), "init"], env=env, check=True,
                       capture_output=True)
    lines = []
    if front == "nginx":
        env.update({"CALLPROOF_HTTPS": "1", "CALLPROOF_TRUSTED_PROXIES": "1",
                    "CALLPROOF_TRUSTED_PROXY_ADDRESSES": "127.0.0.1"})
        with topology.topology(tmp / f"front-{threads}", env, "--no-worker", "--threads",
                               str(threads)) as top:
            context = top.nginx.ssl_context()
            origin = top.nginx.origin
            for n in slow:
                r = attack(origin, "127.0.0.1", top.nginx.https_port, fresh_code(data), n,
                           phase, context)
                lines.append(f"{model:12} {front:6} {n:3} slow  {r['ok']:3.0f}/{r['total']:<3.0f} "
                             f"answered  p50 {r['p50']:7.0f} ms  max {r['max']:7.0f} ms")
            if load:
                cookies, body = Customer(origin, context).cookies_and_body(fresh_code(data))
                w = wrk(origin + "/verify", load, cookies, body, tmp)
                lines.append(f"{model:12} {front:6} wrk 16 conn  {w['rps']:6.0f} req/s  "
                             f"p50 {w['p50']:6.1f} ms  p99 {w['p99']:6.1f} ms  "
                             f"non-2xx {w['bad']:.0f} {w['socket_errors']}")
        return lines
    log = tmp / f"serve-{threads}.log"
    instance = topology.start_serve(env, log, "--no-worker", "--threads", str(threads),
                                    behind_proxy=False)
    try:
        origin = f"http://127.0.0.1:{instance.port}"
        for n in slow:
            r = attack(origin, "127.0.0.1", instance.port, fresh_code(data), n, phase, None)
            lines.append(f"{model:12} {front:6} {n:3} slow  {r['ok']:3.0f}/{r['total']:<3.0f} "
                         f"answered  p50 {r['p50']:7.0f} ms  max {r['max']:7.0f} ms")
        if load:
            cookies, body = Customer(origin, None).cookies_and_body(fresh_code(data))
            w = wrk(origin + "/verify", load, cookies, body, tmp)
            lines.append(f"{model:12} {front:6} wrk 16 conn  {w['rps']:6.0f} req/s  "
                         f"p50 {w['p50']:6.1f} ms  p99 {w['p99']:6.1f} ms  "
                         f"non-2xx {w['bad']:.0f} {w['socket_errors']}")
    finally:
        topology.stop(instance.process)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--load-only", type=int, metavar="ROUNDS",
                        help="only the throughput through nginx, the models interleaved, "
                             "ROUNDS times (the machine's noise shows in the spread)")
    args = parser.parse_args()
    for tool in ("wrk", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install {tool}")
    if not Path(topology.NGINX).exists():
        raise SystemExit("nginx is missing: apt-get install nginx")
    models = {"gthread 2×4": 4} if args.quick else MODELS
    slow = [10] if args.quick else [10, 20]
    phase = 8.0 if args.quick else 20.0
    load = 2 if args.quick else 6
    print(f"slow clients: one header line every 5 s for {phase:.0f} s; a customer looks a code "
          f"up every 0.5 s (5 s timeout); {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        if args.load_only:
            for _ in range(args.load_only):
                for model, threads in MODELS.items():
                    for line in run(model, threads, "nginx", [], phase, 8, tmp):
                        print(line, flush=True)
            return
        for model, threads in models.items():
            for front in ("none", "nginx"):
                for line in run(model, threads, front, slow, phase, load, tmp):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
