"""Fixtures shared by the whole suite.

``backend`` runs a test once on SQLite and once on PostgreSQL. The PostgreSQL run uses the server
named by CALLPROOF_TEST_DATABASE_URL (default: the local one, database ``test``) in a schema of its
own that is dropped afterwards. Without a server the PostgreSQL runs are skipped with the reason —
unless CALLPROOF_REQUIRE_POSTGRES=1 (as .ci/run sets), where they fail instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callproof import Admin, CheckFlow, FixedClock, Issuer, init_data_dir
from callproof.deployment import Deployment

PG_URL = os.environ.get("CALLPROOF_TEST_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("CALLPROOF_REQUIRE_POSTGRES") == "1"
T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def _pg_reason() -> str | None:
    """None when PostgreSQL is reachable, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(_libpq(PG_URL), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return f"PostgreSQL at {PG_URL} is unreachable: {e.__class__.__name__}"
    return None


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


_PG_UNAVAILABLE = _pg_reason()


@pytest.fixture(scope="session")
def pg_available() -> None:
    if _PG_UNAVAILABLE:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here: {_PG_UNAVAILABLE}")
        pytest.skip(_PG_UNAVAILABLE)


@contextmanager
def fresh_pg_schema(prefix: str) -> Iterator[str]:
    """A database URL whose search_path is a fresh schema, dropped when the block ends."""
    import psycopg

    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url(pg_available: None) -> Iterator[str]:
    """A database URL whose search_path is a fresh schema, dropped after the test."""
    with fresh_pg_schema("cp_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database URL for this run, set as CALLPROOF_DATABASE_URL ('' for SQLite)."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        monkeypatch.setenv("CALLPROOF_DATABASE_URL", url)
        return url
    monkeypatch.delenv("CALLPROOF_DATABASE_URL", raising=False)
    return ""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CALLPROOF_DATA_DIR", "CALLPROOF_KEY_PASSPHRASE", "CALLPROOF_HASH_KEY",
                 "CALLPROOF_SIGNING_KEY", "CALLPROOF_SEAL_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@dataclass
class World:
    """An initialised data dir with the services over it, all on one fixed clock."""

    path: Path
    clock: FixedClock
    deployment: Deployment
    issuer: Issuer
    flow: CheckFlow
    admin: Admin


@pytest.fixture
def world(tmp_path: Path, backend: str, clock: FixedClock) -> Iterator[World]:
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    dep = Deployment.open(path, clock=clock)
    yield World(path, clock, dep, Issuer(dep), CheckFlow(dep), Admin(dep))
    dep.store.close()


REDIS_URL = os.environ.get("CALLPROOF_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server for the shared rate-limit tests (skipped, or failed in CI, without it)."""
    try:
        import redis
    except ImportError:
        reason = "the redis package is not installed"
    else:
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
            return REDIS_URL
        except redis.RedisError as e:
            reason = f"Redis at {REDIS_URL} is unreachable: {e.__class__.__name__}"
    if os.environ.get("CALLPROOF_REQUIRE_REDIS") == "1":
        pytest.fail(f"Redis is required here: {reason}")
    pytest.skip(reason)


CHROMIUM = "/usr/bin/chromium"


def _browser_unavailable() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """One Playwright per test process (a second one inside it would refuse to start): browser
    fixtures launch Debian's Chromium from it. Skipped without Chromium, failed instead when
    CALLPROOF_REQUIRE_BROWSER=1 (as in CI)."""
    reason = _browser_unavailable()
    if reason:
        if os.environ.get("CALLPROOF_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required here: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"])
    yield chromium
    chromium.close()
