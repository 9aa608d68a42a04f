"""Fixtures for the verifier app: an app over a fresh data dir, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callproof import FixedClock, init_data_dir
from verifier_app import create_app, services


@dataclass
class Web:
    app: Flask
    client: FlaskClient
    clock: FixedClock
    path: Path

    def csrf(self, path: str = "/") -> str:
        """A CSRF token from a page's form, as a browser would have it."""
        page = self.client.get(path).get_data(as_text=True)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match, "the page has a CSRF token"
        return match.group(1)


@pytest.fixture
def web(tmp_path: Path, backend: str, clock: FixedClock) -> Iterator[Web]:
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    app = create_app({"DATA_DIR": str(path), "TESTING": True, "RATELIMIT_ENABLED": True})
    with app.app_context():
        services().deployment.clock = clock
    yield Web(app, app.test_client(), clock, path)
    with app.app_context():
        services().deployment.store.close()


@pytest.fixture
def make_app(web: Web) -> Iterator[Callable[..., Flask]]:
    """Another app over the same data dir with other settings; its store is closed afterwards."""
    made: list[Flask] = []

    def make(**config: object) -> Flask:
        app = create_app({"DATA_DIR": str(web.path), "TESTING": True, **config})
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            services().deployment.store.close()


NewApp = Callable[..., tuple[Flask, Path]]


@pytest.fixture
def new_app(tmp_path: Path, backend: str, clock: FixedClock) -> Iterator[NewApp]:
    """Apps with extra settings (tiny limits), each over a fresh data dir of its own, on the
    test's clock with rate limits on: ``app, path = new_app(API_KEY_LIMIT="3 per minute")``.
    Their stores are closed afterwards."""
    made: list[Flask] = []

    def make(**config: object) -> tuple[Flask, Path]:
        path = tmp_path / f"data{len(made)}"
        init_data_dir(path, now=clock.now())
        app = create_app({"DATA_DIR": str(path), "TESTING": True, "RATELIMIT_ENABLED": True,
                          **config})
        with app.app_context():
            services().deployment.clock = clock
        made.append(app)
        return app, path

    yield make
    for app in made:
        with app.app_context():
            services().deployment.store.close()
