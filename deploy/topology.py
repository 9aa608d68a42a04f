"""The shipped front on one machine: a test CA, Debian's nginx with deploy/nginx/callproof.conf,
and `callproof serve` instances behind it — everything on 127.0.0.1, under one scratch directory.

tests/deploy/ and benchmarks/bench_front.py build their topology with this module (standard
library only; load it by path). Run it to try the front by hand:

    python deploy/topology.py --data-dir ./callproof-data        # Ctrl-C stops everything

It prints the HTTPS address and the CA to trust (``curl --cacert``). Nothing here is for
production: there, nginx runs as the system service with a real certificate (README,
"Running behind a reverse proxy").
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SITE_TEMPLATE = HERE / "nginx" / "callproof.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVER_NAME = "localhost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the test CA's certificate (what clients trust)
    certificate: Path  # the server's certificate, for localhost and 127.0.0.1
    key: Path
    spki_sha256: str  # base64 SHA-256 of the server's public key, for Chromium's SPKI list


def make_certificates(directory: Path) -> Certificates:
    """A throw-away CA and a server certificate it signed (P-256, two days), with openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    d = directory

    def openssl(*args: str) -> bytes:
        return subprocess.run(["openssl", *args], cwd=d, check=True,  # noqa: S603, S607
                              capture_output=True, timeout=60).stdout

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=callproof test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *curve, "-keyout", "server.key", "-out", "server.csr",
            "-subj", f"/CN={SERVER_NAME}")
    (d / "server.ext").write_text(
        f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    public = openssl("x509", "-in", "server.pem", "-noout", "-pubkey")
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],  # noqa: S603, S607
                         input=public, check=True, capture_output=True, timeout=60).stdout
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")
    (d / "ca.key").chmod(0o600)
    (d / "server.key").chmod(0o600)
    return Certificates(d / "ca.pem", d / "server.pem", d / "server.key", spki)


# --- nginx -----------------------------------------------------------------------------------


def render_site(values: dict[str, str], template: Path = SITE_TEMPLATE) -> str:
    """deploy/nginx/callproof.conf with its {{PLACEHOLDERS}} filled; raises if one is left."""
    text = template.read_text("utf-8")
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{[A-Z0-9_]+\}\}", text)
    if left:
        raise ValueError(f"unfilled placeholders in {template}: {', '.join(sorted(set(left)))}")
    return text


def main_conf(prefix: Path, site: Path, *, access_log: str | None = None) -> str:
    """The nginx.conf around the site file: one worker, every path inside ``prefix``.

    ``access_log`` (a log_format body) replaces the site's ``access_log off`` with a log in
    ``prefix/access.log`` — the tests use it to see which instance answered."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers may read the test's files
    temp = "\n".join(f"    {kind}_temp_path {prefix / 'temp' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    log = ""
    if access_log:
        log = (f"    log_format topology '{access_log}';\n"
               f"    access_log {prefix / 'access.log'} topology;\n")
    return (f"{user}worker_processes 1;\n"
            f"pid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"{temp}\n{log}"
            f"    include {site};\n"
            "}\n")


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    prefix: Path
    https_port: int
    http_port: int
    certificates: Certificates

    @property
    def origin(self) -> str:
        return f"https://{SERVER_NAME}:{self.https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificates.ca))

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""


def start_nginx(prefix: Path, apps: Sequence[str], certificates: Certificates, *,
                access_log: str | None = None, timeout: float = 20) -> Nginx:
    """Debian's nginx in the foreground (its own process group) with the shipped site file in
    front of ``apps`` (host:port, two of them)."""
    if len(apps) != 2:
        raise ValueError("the shipped configuration has two instances")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "temp" / kind).mkdir(parents=True, exist_ok=True)
    https_port, http_port = free_port(), free_port()
    site_text = render_site({
        "SERVER_NAME": SERVER_NAME, "HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "HTTPS_ORIGIN": f"https://{SERVER_NAME}:{https_port}",
        "CERTIFICATE": str(certificates.certificate),
        "CERTIFICATE_KEY": str(certificates.key), "APP_1": apps[0], "APP_2": apps[1]})
    if access_log:
        site_text = site_text.replace("    access_log off;\n", "", 1)  # the HTTP server's
        site_text = site_text.replace("    access_log off;\n", "", 1)  # the HTTPS server's
    site = prefix / "callproof.conf"
    site.write_text(site_text)
    conf = prefix / "nginx.conf"
    conf.write_text(main_conf(prefix, site, access_log=access_log))
    check = subprocess.run([NGINX, "-t", "-q", "-c", str(conf), "-p", str(prefix)],  # noqa: S603
                           capture_output=True, text=True, timeout=30)
    if check.returncode:
        raise RuntimeError(f"nginx -t refused the configuration: {check.stderr.strip()}")
    process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(prefix),  # noqa: S603
                                "-g", "daemon off;"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nginx = Nginx(process, prefix, https_port, http_port, certificates)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {nginx.error_log()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", https_port), timeout=1):
                return nginx
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError("nginx did not start listening")


# --- callproof serve -------------------------------------------------------------------------


def callproof_command() -> list[str]:
    exe = Path(sys.executable).with_name("callproof")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "callproof"]


@dataclass
class Instance:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_serve(env: dict[str, str], log: Path, *extra: str, port: int | None = None,
                behind_proxy: bool = True, timeout: float = 60) -> Instance:
    """``callproof serve [--behind-proxy]`` on 127.0.0.1 (its own process group), once its
    /healthz answers."""
    port = port or free_port()
    out = log.open("ab")
    process = subprocess.Popen([*callproof_command(), "serve",  # noqa: S603
                                "--host", "127.0.0.1", "--port", str(port),
                                *(["--behind-proxy"] if behind_proxy else []), *extra],
                               env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    out.close()
    instance = Instance(process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"callproof serve exited: {log.read_text('utf-8', 'replace')}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return instance
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"callproof serve did not answer: {log.read_text('utf-8', 'replace')}")


def start_worker(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``callproof worker`` (its own process group), its output in ``log``. It needs no port:
    it is running once the process is; `callproof worker --status` shows its leases."""
    out = log.open("ab")
    process = subprocess.Popen([*callproof_command(), "worker", *extra],  # noqa: S603
                               env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    out.close()
    return process


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
         timeout: float = 20) -> None:
    """Stop a process started in its own session, and its whole group; -9 if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group, if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)


@dataclass
class Topology:
    nginx: Nginx
    instances: list[Instance]
    env: dict[str, str]
    directory: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


@contextlib.contextmanager
def topology(directory: Path, env: dict[str, str], *serve_args: str,
             access_log: str | None = None) -> Iterator[Topology]:
    """Certificates, two instances over the data dir in ``env`` and nginx in front; every
    process stopped (its whole group) on the way out, whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        certificates = make_certificates(directory / "tls")
        instances = []
        for n in (1, 2):
            instance = start_serve(env, directory / f"serve{n}.log", *serve_args)
            started.append(instance.process)
            instances.append(instance)
        nginx = start_nginx(directory / "nginx", [i.address for i in instances], certificates,
                            access_log=access_log)
        started.append(nginx.process)
        yield Topology(nginx, instances, env, directory, started)
    finally:
        for process in reversed(started):
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="an initialised data dir")
    args = parser.parse_args()

    def interrupted(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # so the topology's finally stops every process it started

    signal.signal(signal.SIGTERM, interrupted)
    env = {**os.environ, "CALLPROOF_DATA_DIR": str(Path(args.data_dir).resolve()),
           "CALLPROOF_HTTPS": "1", "CALLPROOF_TRUSTED_PROXIES": "1",
           "CALLPROOF_TRUSTED_PROXY_ADDRESSES": "127.0.0.1"}
    with tempfile.TemporaryDirectory() as tmp, topology(Path(tmp), env) as top:
        print(f"{top.nginx.origin}/  (trust {top.nginx.certificates.ca}; instances "
              f"{', '.join(i.address for i in top.instances)}) — Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while all(p.poll() is None for p in top.processes):
                time.sleep(1)


if __name__ == "__main__":
    main()
