"""Hardening (issue 13): the limits have one owner each, counted where every worker and
instance sees them (items 2, 5); a dead limiter storage costs no 500 (item 4); the session
secret is a secret of its own (item 7)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient

from callproof import ConfigError, Deployment, init_data_dir
from callproof.protocol.codes import damm_digit
from callproof.protocol.privacy import _derive
from callproof.sign_ins import TooManySignIns
from callproof.store import schema
from tests._processes import free_port, wait_for
from verifier_app import create_app, services

from .conftest import Web

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password
WRONG = "not the right password"
DESK_PASSWORD = "fraud team password 1"  # noqa: S105


def csrf(client: FlaskClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(True))
    assert match, path
    return match.group(1)


def h1(html: str) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    return re.sub(r"<[^>]+>|\s+", " ", found.group(1)).strip() if found else ""


def set_limits(app: Flask, **values: int) -> None:
    """config.toml's [limits] for this app's deployment, as an operator would set them."""
    with app.app_context():
        dep = services().deployment
        dep.config = replace(dep.config, limits=replace(dep.config.limits, **values))


def console_sign_in(client: FlaskClient, agent_id: str, password: str, address: str,
                    lang: str = "en") -> Any:
    return client.post(f"/console/sign-in?lang={lang}", environ_base={"REMOTE_ADDR": address},
                       data={"csrf_token": csrf(client, "/console/sign-in"),
                             "agent_id": agent_id, "password": password})


def desk_sign_in(client: FlaskClient, user_id: str, password: str, address: str) -> Any:
    return client.post("/fraud/sign-in", environ_base={"REMOTE_ADDR": address},
                       data={"csrf_token": csrf(client, "/fraud/sign-in"),
                             "user_id": user_id, "password": password})


@pytest.fixture
def two(web: Web, make_app: Callable[..., Flask]) -> tuple[Flask, Flask]:
    """Two instances over one deployment (as two workers or two hosts would be), with
    a-001's console password and a desk user."""
    with web.app.app_context():
        services().passwords.set("a-001", PASSWORD)
        services().passwords.set("a-002", PASSWORD)
        services().desk_users.add("d-001", "Lin Fraud Team", DESK_PASSWORD)
    second = make_app(RATELIMIT_ENABLED=True)
    with second.app_context():
        services().deployment.clock = web.clock  # one time for both
    return web.app, second


# --- item 2: the library's lookup limit is the one that decides ----------------------------

def made_up_codes() -> Iterator[str]:
    n = 31_415_926
    while True:
        n = (n * 7 + 11) % 10**8
        yield f"{n:08d}" + damm_digit(f"{n:08d}")


def test_the_lookup_limit_is_config_tomls_not_a_second_one_in_the_web_app(web: Web) -> None:
    """An operator who sets client_failure_limit = 35 gets 35 — no edge limit of its own cuts
    the 31st (the web app used to count its own 30, per worker)."""
    set_limits(web.app, client_failure_limit=35)
    client = web.app.test_client()
    token = csrf(client, "/")

    def lookup(code: str) -> str:
        return h1(client.post("/verify", data={"csrf_token": token, "code": code},
                              environ_base={"REMOTE_ADDR": "203.0.113.77"},
                              follow_redirects=True).get_data(True))

    with web.app.app_context():
        issuer = services().issuer
        first, second = (issuer.issue(agent_id="a-001", reason="payment_failed").code
                         for _ in range(2))
    wrong = made_up_codes()
    for _ in range(30):
        assert lookup(next(wrong)) == "We cannot confirm this call."
    assert lookup(first).startswith("Ask the caller")  # the 31st lookup: still allowed
    for _ in range(5):
        lookup(next(wrong))
    assert lookup(second) == "We cannot confirm this call."  # 35 failures: now refused


# --- item 5: sign-in limits per address, per account, in the shared store -----------------

def test_an_accounts_failed_sign_ins_are_limited_whatever_the_address_and_instance(
        two: tuple[Flask, Flask]) -> None:
    first, second = two
    for n in range(10):  # ten guesses at a-001, from ten addresses, over two instances
        app = (first, second)[n % 2]
        assert console_sign_in(app.test_client(), "a-001", WRONG,
                               f"198.51.100.{n + 1}").status_code == 400
    for lang, words in (("en", "Too many failed sign-ins"), ("zh-Hant", "登入失敗次數過多"),
                        ("zh-Hans", "登录失败次数过多")):
        refused = console_sign_in(second.test_client(), "a-001", PASSWORD, "192.0.2.200", lang)
        assert refused.status_code == 429 and words in refused.get_data(True)
        assert int(refused.headers["Retry-After"]) > 0
    # Another agent is not locked out, from anywhere.
    assert console_sign_in(first.test_client(), "a-002", PASSWORD,
                           "198.51.100.1").status_code == 303


def test_an_addresss_failed_sign_ins_are_limited_over_every_instance(
        two: tuple[Flask, Flask]) -> None:
    first, second = two
    for app in two:
        set_limits(app, sign_in_failures_per_address=4)
    for n in range(4):  # four accounts guessed from one address, over two instances
        app = (first, second)[n % 2]
        assert console_sign_in(app.test_client(), f"a-00{n + 1}", WRONG,
                               "203.0.113.5").status_code == 400
    assert console_sign_in(first.test_client(), "a-002", PASSWORD,
                           "203.0.113.5").status_code == 429
    assert console_sign_in(first.test_client(), "a-002", PASSWORD,
                           "203.0.113.6").status_code == 303


def test_the_desk_sign_in_has_the_same_limits_shared_by_instances(
        two: tuple[Flask, Flask]) -> None:
    first, second = two
    for n in range(10):
        app = (first, second)[n % 2]
        assert desk_sign_in(app.test_client(), "d-001", WRONG,
                            f"198.51.100.{n + 1}").status_code == 400
    refused = desk_sign_in(first.test_client(), "d-001", DESK_PASSWORD, "192.0.2.9")
    assert refused.status_code == 429 and "Too many failed sign-ins." in refused.get_data(True)


def test_a_right_password_does_not_count_and_parallel_guesses_cannot_pass_the_limit(
        two: tuple[Flask, Flask]) -> None:
    first, _second = two
    set_limits(first, sign_in_failures_per_account=2, sign_in_failures_per_address_and_account=2)
    for _ in range(4):  # right passwords are not failures
        assert console_sign_in(first.test_client(), "a-001", PASSWORD,
                               "203.0.113.9").status_code == 303
    with first.app_context():
        sign_ins = services().sign_ins
        held = [sign_ins.attempt("agent", "a-001", "203.0.113.9") for _ in range(2)]
        # Two attempts in flight (their passwords still being checked) hold both places, for
        # every network a-001 has not signed in from (its own 203.0.113.0/24 is spared).
        with pytest.raises(TooManySignIns):
            sign_ins.attempt("agent", "a-001", "198.51.100.10")
        assert len(held) == 2


# --- item 5: the console's per-agent issuing limit ------------------------------------------

def test_an_agent_starts_at_most_the_documented_calls_a_minute_on_the_console(
        two: tuple[Flask, Flask]) -> None:
    first, second = two
    with first.app_context():
        limit = services().deployment.config.limits.console_tickets_per_agent_minute
    assert limit == 10  # the documented number (README, config.py Limits)
    clients = []
    for app in (first, second):  # the agent signed in on two instances
        client = app.test_client()
        assert console_sign_in(client, "a-001", PASSWORD, "198.51.100.20").status_code == 303
        clients.append(client)

    def start(client: FlaskClient, lang: str = "en") -> Any:
        return client.post(f"/console/tickets?lang={lang}", data={
            "csrf_token": csrf(client, "/console/"), "reason": "order_delivery"})

    for n in range(limit):
        assert start(clients[n % 2]).status_code == 303
    with first.app_context(), services().deployment.store.read() as conn:
        before = conn.execute(schema.tickets.select()).all()
    for lang, words in (("en", "Wait a minute, then start the next one."),
                        ("zh-Hant", "請等一分鐘"), ("zh-Hans", "请等一分钟")):
        refused = start(clients[1], lang)
        assert refused.status_code == 429
        assert words in refused.get_data(True), refused.get_data(True)
    with first.app_context(), services().deployment.store.read() as conn:
        assert conn.execute(schema.tickets.select()).all() == before  # nothing issued


# --- item 4: the limiter's storage goes away ------------------------------------------------

@pytest.fixture
def doomed_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own on a free 127.0.0.1 port (the test kills it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CALLPROOF_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is required here")
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - a fixed command
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis(port=port, socket_connect_timeout=0.5).ping())
            except redis.RedisError:
                return False

        wait_for("redis-server answers", up, 20)
        yield f"redis://127.0.0.1:{port}/0", server
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(10)


def test_a_dead_limiter_storage_costs_no_500_and_healthz_says_so(
        web: Web, make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture,
        doomed_redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    pytest.importorskip("redis")
    url, server = doomed_redis
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=url,
                   API_KEY_LIMIT="8 per minute")
    with app.app_context():
        key, _record = services().api_keys.create("dialer", scopes={"issue", "status"})
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {key}"}

    def ask() -> int:
        return api.post("/api/v1/tickets", headers=bearer,
                        json={"agent_id": "a-001", "reason": "payment_failed"}).status_code

    assert ask() == 201
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}
    server.send_signal(signal.SIGKILL)  # the limiter's Redis is gone
    server.wait(10)
    page = app.test_client()
    token = csrf(page, "/")
    statuses = []
    with caplog.at_level(logging.INFO):
        for _ in range(12):
            statuses.append(ask())
            statuses.append(page.post("/verify", data={"csrf_token": token,
                                                       "code": "123456780"}).status_code)
            statuses.append(api.get("/api/v1/tickets/t_nothing", headers=bearer).status_code)
        health = app.test_client().get("/healthz")
    assert statuses and not [s for s in statuses if s >= 500], statuses
    # The per-key limit still holds, counted in this process: 8 a minute, not unlimited.
    assert 429 in statuses and statuses.count(201) <= 8
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok", "limiter": "degraded (local limits)"}
    said = [r for r in caplog.records if "rate-limit storage" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR
    assert not [r for r in caplog.records if r.exc_info]  # no traceback per request


# --- item 7: a session secret of its own --------------------------------------------------

def _cookie(app: Flask, secret: str | bytes | None, data: dict[str, Any]) -> str:
    signer = SecureCookieSessionInterface().get_signing_serializer(
        type("A", (), {"secret_key": secret, "config": app.config})())
    assert signer is not None
    return signer.dumps(data)


def test_the_hash_key_alone_mints_no_session(web: Web) -> None:
    """A session cookie signed with what the hash key gives (the old derivation) is not this
    app's: its CSRF token does not pass, so no form can be sent with it."""
    hash_key = (web.path / "secrets" / "hash.key").read_bytes()
    forged = _cookie(web.app, _derive(hash_key, "session"), {"csrf_token": "f" * 40})
    client = web.app.test_client()
    client.set_cookie("cp_session", forged)
    from flask_wtf.csrf import generate_csrf

    with web.app.test_request_context():
        from flask import session

        session["csrf_token"] = "f" * 40
        token = generate_csrf()
    refused = client.post("/report", data={"csrf_token": token, "scripts": "refund"})
    assert refused.status_code == 400
    # The same cookie signed with the app's own session secret does pass (the control).
    client.set_cookie("cp_session", _cookie(web.app, web.app.secret_key, {"csrf_token": "f" * 40}))
    assert client.post("/report", data={"csrf_token": token,
                                        "scripts": "refund"}).status_code == 303


def test_the_session_secret_is_sealed_in_the_database_and_older_data_dirs_get_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPROOF_KEY_PASSPHRASE", "a passphrase for the keys")
    monkeypatch.delenv("CALLPROOF_SESSION_SECRET", raising=False)
    path = tmp_path / "data"
    report = init_data_dir(path)
    assert "session secret (in the database)" in report.created
    dep = Deployment.open(path)
    try:
        with dep.store.write() as conn:
            (pem,) = conn.execute(schema.app_secrets.select().with_only_columns(
                schema.app_secrets.c.pem)).one()
            assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            conn.execute(schema.app_secrets.delete())  # a data dir from before the split
    finally:
        dep.store.close()
    first = create_app({"DATA_DIR": str(path), "TESTING": True})
    second = create_app({"DATA_DIR": str(path), "TESTING": True})
    assert first.secret_key == second.secret_key  # made once, on start, shared
    hash_key = (path / "secrets" / "hash.key").read_bytes()
    assert first.secret_key != _derive(hash_key, "session")
    monkeypatch.setenv("CALLPROOF_KEY_PASSPHRASE", "another passphrase")
    with pytest.raises(ConfigError, match="session secret"):
        create_app({"DATA_DIR": str(path), "TESTING": True})
    monkeypatch.setenv("CALLPROOF_SESSION_SECRET", "A" * 43)
    third = create_app({"DATA_DIR": str(path), "TESTING": True})
    assert third.secret_key not in (first.secret_key, None)
    for app in (first, second, third):
        with app.app_context():
            services().deployment.store.close()


def test_housekeeping_forgets_the_counts_past_every_window(web: Web) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    with web.app.app_context():
        dep, sign_ins = services().deployment, services().sign_ins
        start = dep.now()
        for n in range(3):
            sign_ins.attempt("desk", f"nobody-{n}", "198.51.100.77", now=start)

        def rows() -> int:
            with dep.store.read() as conn:
                return int(conn.execute(select(func.count()).select_from(
                    schema.client_failures)).scalar_one())

        assert rows() == 7  # three accounts, one address, three address-and-account pairs
        sign_ins.purge(now=start + timedelta(minutes=10))
        assert rows() == 7  # still inside the 15-minute window
        sign_ins.purge(now=start + timedelta(minutes=20))
        assert rows() == 0


def test_a_desk_export_is_a_security_event_on_stderr(
        two: tuple[Flask, Flask], capsys: pytest.CaptureFixture[str]) -> None:
    import json

    first, _second = two
    client = first.test_client()
    capsys.readouterr()
    assert desk_sign_in(client, "d-001", DESK_PASSWORD, "203.0.113.44").status_code == 303
    got = client.get("/fraud/police.csv?days=7", environ_base={"REMOTE_ADDR": "203.0.113.44"})
    assert got.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()
             if line.startswith("{")]
    events = {e["event"]: e for e in lines if e["logger"] == "callproof.security"}
    assert events["sign_in.ok"]["user_id"] == "d-001"
    assert events["desk.export"] == {**events["desk.export"], "user_id": "d-001", "days": 7,
                                     "what": "police_csv"}
    assert not [e for e in lines if "203.0.113.44" in json.dumps(e)]
