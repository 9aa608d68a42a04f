"""`callproof serve`: loopback unless the proxy is in front, the measured worker model, and one
gunicorn control socket per instance or none (issue 12 items 1 and 5). No nginx needed."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from callproof import init_data_dir
from callproof._cli import cli
from callproof._cli import serve as serve_module

from .conftest import topology


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Calls that would have started gunicorn (none is started)."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(serve_module, "_serve", lambda *a, **k: calls.append((a, k)))
    for name in ("CALLPROOF_TRUSTED_PROXIES", "CALLPROOF_TRUSTED_PROXY_ADDRESSES",
                 "CALLPROOF_HTTPS"):
        monkeypatch.delenv(name, raising=False)
    return calls


def _serve(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "serve", *args])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "2001:db8::1"])  # noqa: S104
def test_a_public_address_needs_the_proxy_or_an_explicit_override(
        tmp_path: Path, started: list[tuple[Any, ...]], host: str) -> None:
    refused = _serve(tmp_path, "--host", host)
    assert refused.exit_code == 2 and not started
    [line] = refused.stderr.strip().splitlines()
    assert f"refusing to serve on {host}: it is not a loopback address" in line
    assert "--behind-proxy" in line and "deploy/nginx/callproof.conf" in line
    assert _serve(tmp_path, "--host", host, "--behind-proxy").exit_code == 0
    assert _serve(tmp_path, "--host", host, "--exposed-without-proxy").exit_code == 0
    assert len(started) == 2
    assert started[0][1]["behind_proxy"] and not started[1][1]["behind_proxy"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_nothing(tmp_path: Path, started: list[tuple[Any, ...]],
                                host: str) -> None:
    assert _serve(tmp_path, "--host", host).exit_code == 0 and len(started) == 1


def test_both_flags_contradict(tmp_path: Path, started: list[tuple[Any, ...]]) -> None:
    result = _serve(tmp_path, "--behind-proxy", "--exposed-without-proxy")
    assert result.exit_code == 2 and "contradict" in result.stderr and not started


def test_behind_the_proxy_it_says_what_the_settings_leave_open(
        tmp_path: Path, started: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    loose = _serve(tmp_path, "--host", "10.0.0.5", "--behind-proxy")
    assert "CALLPROOF_TRUSTED_PROXIES is 0" in loose.stderr
    assert "CALLPROOF_HTTPS is not 1" in loose.stderr
    monkeypatch.setenv("CALLPROOF_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("CALLPROOF_HTTPS", "1")
    open_port = _serve(tmp_path, "--host", "10.0.0.5", "--behind-proxy")
    assert "CALLPROOF_TRUSTED_PROXY_ADDRESSES is not set" in open_port.stderr
    monkeypatch.setenv("CALLPROOF_TRUSTED_PROXY_ADDRESSES", "10.0.0.1")
    assert _serve(tmp_path, "--host", "10.0.0.5", "--behind-proxy").stderr == ""


def test_the_gunicorn_settings_are_the_measured_ones() -> None:
    behind = serve_module.gunicorn_settings("127.0.0.1", 8001, behind_proxy=True)
    assert behind["worker_class"] == "gthread" and behind["threads"] == serve_module.THREADS
    assert behind["workers"] == serve_module.WORKERS
    assert behind["keepalive"] > 60  # longer than nginx's upstream keepalive_timeout
    assert behind["forwarded_allow_ips"] == ""  # the app alone decides what to trust
    assert behind["control_socket_disable"] and "control_socket" not in behind
    assert behind["accesslog"] is None
    direct = serve_module.gunicorn_settings("127.0.0.1", 8001, threads=1,
                                            control_socket="/run/cp/a.ctl")
    assert direct["worker_class"] == "sync" and direct["keepalive"] <= 5
    assert not direct["control_socket_disable"] and direct["control_socket"] == "/run/cp/a.ctl"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def _wait(condition: Any, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_instances_on_one_host_stop_independently(tmp_path: Path) -> None:
    """Two instances with a control socket each, a third with none: stopping one removes its
    own socket only; gunicorn's shared default path ($XDG_RUNTIME_DIR/gunicorn.ctl or
    ~/.gunicorn/gunicorn.ctl) is never made."""
    init_data_dir(tmp_path / "data")
    runtime, home = tmp_path / "run", tmp_path / "home"
    runtime.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPROOF_")}
    env.update({"CALLPROOF_DATA_DIR": str(tmp_path / "data"), "XDG_RUNTIME_DIR": str(runtime),
                "HOME": str(home)})
    sockets = [tmp_path / "a.ctl", tmp_path / "b.ctl"]
    instances = []
    try:
        for n, path in enumerate([*sockets, None]):
            extra = ["--control-socket", str(path)] if path else []
            instances.append(topology.start_serve(env, tmp_path / f"serve{n}.log",
                                                  "--no-worker", "--workers", "1", *extra,
                                                  behind_proxy=False))
        assert _wait(lambda: all(s.exists() for s in sockets)), "each instance has its socket"
        a, b, c = instances
        os.killpg(a.process.pid, signal.SIGTERM)
        a.process.wait(timeout=30)
        assert not sockets[0].exists() and sockets[1].exists()
        assert _healthy(b.port) and _healthy(c.port)
        assert not (runtime / "gunicorn.ctl").exists() and not (home / ".gunicorn").exists()
    finally:
        for instance in instances:
            topology.stop(instance.process)
