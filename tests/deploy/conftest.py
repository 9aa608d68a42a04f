"""The deployment as it runs: Debian's nginx with the shipped deploy/nginx/callproof.conf and a
certificate from a CA made here → two `callproof serve --behind-proxy` processes → one
PostgreSQL database (and Redis for the shared limits).

Everything listens on 127.0.0.1 and lives under the test's tmp dir; every process runs in its own
process group and the fixture stops each group, whatever the test did. Without nginx or openssl
these tests are skipped with the reason — unless CALLPROOF_REQUIRE_DEPLOY=1 (as .ci/run sets),
where they fail instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ..conftest import _PG_UNAVAILABLE, REQUIRE_PG, fresh_pg_schema

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long demo password"


def _load_topology() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callproof_deploy_topology",
                                                  ROOT / "deploy" / "topology.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


topology = _load_topology()


def _deploy_unavailable() -> str | None:
    if not Path(topology.NGINX).exists():
        return "nginx is not installed (apt-get install nginx)"
    if shutil.which("openssl") is None:
        return "openssl is not installed (apt-get install openssl)"
    return None


@pytest.fixture(scope="session")
def deploy_available() -> None:
    reason = _deploy_unavailable()
    if reason:
        if os.environ.get("CALLPROOF_REQUIRE_DEPLOY") == "1":
            pytest.fail(f"the deployment tests are required here: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def pg_database(deploy_available: None) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped afterwards)."""
    if _PG_UNAVAILABLE:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here: {_PG_UNAVAILABLE}")
        pytest.skip(_PG_UNAVAILABLE)
    with fresh_pg_schema("cp_deploy") as url:
        yield url


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run the installed `callproof` with ``env``; its stdout."""
    done = subprocess.run([*topology.callproof_command(), *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def deployment_env(tmp_path_factory: pytest.TempPathFactory, pg_database: str,
                   redis_url: str) -> dict[str, str]:
    """A data dir on PostgreSQL, initialised, with an agent's and a desk user's password, and
    the settings the README gives for running behind the proxy (one per test module)."""
    tmp_path = tmp_path_factory.mktemp("deploy")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPROOF_")}
    env.update({
        "CALLPROOF_DATA_DIR": str(tmp_path / "data"),
        "CALLPROOF_DATABASE_URL": pg_database,
        "CALLPROOF_RATELIMIT_STORAGE": redis_url,
        "CALLPROOF_HTTPS": "1",
        "CALLPROOF_TRUSTED_PROXIES": "1",
        "CALLPROOF_TRUSTED_PROXY_ADDRESSES": "127.0.0.1,::1",
        "HOME": str(tmp_path / "home"),  # nothing may land in the real home (control sockets)
    })
    (tmp_path / "home").mkdir()
    cli(env, "init")
    cli(env, "agents", "set-password", "a-001", "--password-stdin", stdin=PASSWORD + "\n")
    cli(env, "desk", "add", "d-001", "--name", "Lin Fraud Team", "--password-stdin",
        stdin=PASSWORD + "\n")
    return env


@pytest.fixture(scope="module")
def front(deployment_env: dict[str, str]) -> Iterator[Any]:
    """nginx in front of two instances, shared by a module's tests (a test that kills an
    instance has a module of its own); the access log names the instance of each request."""
    directory = Path(deployment_env["CALLPROOF_DATA_DIR"]).parent / "front"
    with topology.topology(directory, deployment_env, "--no-worker",
                           access_log="$upstream_addr $status") as top:
        yield top


def issue(env: dict[str, str], ttl: int = 1800) -> dict[str, Any]:
    """A live ticket from the command line (its code, ticket id, …)."""
    found: dict[str, Any] = json.loads(cli(env, "issue", "--agent-id", "a-001", "--reason",
                                           "payment_failed", "--phone", "+886912345678",
                                           "--ttl", str(ttl), "--json"))
    return found
