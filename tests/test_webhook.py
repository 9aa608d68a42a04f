"""The alert webhook against a real HTTP receiver on 127.0.0.1 (spec/fraud-desk.md §4).

Signatures are checked with the `standardwebhooks` package, an independent implementation of
the Standard Webhooks spec. Its check of the timestamp uses the real time, so these tests run
their fixed clock from the real time of the run.
"""

from __future__ import annotations

import json
import logging
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from callproof import (
    AlertWebhook,
    CheckFailed,
    CheckFlow,
    ConfigError,
    FixedClock,
    Issuer,
    init_data_dir,
    new_client_token,
)
from callproof.deployment import Deployment
from callproof.store import schema
from callproof.store.events import read_events
from callproof.webhook import GIVE_UP_SECONDS, backoff_seconds

PHONE = "+886955519087"
URL_TOKEN = "tok-9f2c7e"  # a receiver's token in the URL's query: never logged


@dataclass
class Receiver:
    """An HTTP server that answers each POST with the next planned status (then 200)."""

    port: int
    plan: list[int] = field(default_factory=list)
    delay: float = 0.0
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/callproof?token={URL_TOKEN}"

    def ids(self) -> list[str]:
        return [h["webhook-id"] for h, _ in self.got]


def _serve(receiver: Receiver, port: int = 0) -> tuple[ThreadingHTTPServer, Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(receiver.delay)
            with receiver.lock:
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.plan.pop(0) if receiver.plan else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server, r = _serve(Receiver(0))
    yield r
    server.shutdown()
    server.server_close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@dataclass
class Site:
    path: Path
    clock: FixedClock
    dep: Deployment
    hook: AlertWebhook
    secret: str

    def no(self, agent: str = "a-002") -> str:
        """A customer answers "No" to a call: one number_denied alert; its ticket id."""
        issuer, flow = Issuer(self.dep), CheckFlow(self.dep)
        made = issuer.issue(agent_id=agent, reason="payment_failed", phone=PHONE)
        client = new_client_token()
        flow.lookup(made.code, client)
        with pytest.raises(CheckFailed):
            flow.answer_number(made.ticket_id, client, yes=False)
        return made.ticket_id

    def row(self, idx: int) -> Any:
        d = schema.webhook_deliveries
        with self.dep.store.read() as conn:
            return conn.execute(select(d).where(d.c.idx == idx)).one()


def _site(tmp_path: Path, clock: FixedClock, url: str | None) -> Site:
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    if url is not None:
        with (path / "config.toml").open("a", encoding="utf-8") as f:
            f.write(f'\n[alerts]\nwebhook_url = "{url}"\n')
    dep = Deployment.open(path, clock=clock)
    hook = AlertWebhook(dep)
    secret = hook.create_secret()
    assert secret is not None
    return Site(path, clock, dep, hook, secret)


@pytest.fixture
def site(tmp_path: Path, backend: str, clock: FixedClock, receiver: Receiver) -> Iterator[Site]:
    made = _site(tmp_path, clock, receiver.url)
    yield made
    made.dep.store.close()


def _verified(secret: str, headers: dict[str, str], body: bytes) -> Any:
    return Webhook(secret).verify(body, headers)


def test_a_500_is_retried_and_then_delivered_once_signed(site: Site, receiver: Receiver,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = site.no("a-002"), site.no("a-003")
    receiver.plan = [500]
    result = site.hook.push_due()
    assert (result.delivered, result.failed, result.pending) == (0, 1, 2)
    assert len(receiver.got) == 1  # a run stops at its first failure
    site.clock.advance(seconds=5)
    result = site.hook.push_due()  # the next run: the second alert; the first waits its backoff
    assert (result.delivered, result.failed, result.pending) == (1, 0, 1)
    site.clock.advance(seconds=4)
    assert site.hook.push_due().delivered == 0 and len(receiver.got) == 2  # not due yet
    site.clock.advance(seconds=1)  # the first retry comes 10 s after the failure
    result = site.hook.push_due()
    assert (result.delivered, result.failed, result.pending) == (1, 0, 0)
    assert len(receiver.got) == 3
    ids = receiver.ids()
    assert ids[0] == ids[2] != ids[1]  # the retry keeps its webhook-id: receivers deduplicate
    payloads = [_verified(site.secret, h, b) for h, b in receiver.got]
    assert [p["alert"]["ticket_id"] for p in payloads] == [first, second, first]
    assert [p["alert"]["agent_id"] for p in payloads] == ["a-002", "a-003", "a-002"]
    assert {p["type"] for p in payloads} == {"callproof.alert"}
    assert {p["issuer"] for p in payloads} == {site.dep.issuer_id}
    assert ids[2] == f"{site.dep.issuer_id}:{payloads[2]['alert']['idx']}"
    assert receiver.got[2][0]["webhook-timestamp"] == str(int(site.clock.now().timestamp()))
    # Delivered is delivered: later runs send nothing again.
    site.clock.advance(seconds=3600)
    assert site.hook.push_due() == type(result)(0, 0, 0)
    assert len(receiver.got) == 3
    status = site.hook.status()
    assert (status.configured, status.url_host, status.pending, status.gave_up) == \
        (True, "127.0.0.1", 0, 0)
    assert status.last_delivered_at == site.clock.now() - timedelta(seconds=3600)
    assert site.row(payloads[0]["alert"]["idx"]).last_status == 200
    assert site.row(payloads[0]["alert"]["idx"]).attempts == 2
    # Nothing secret reaches the log: not the secret, a signature, the URL's token or a body.
    logged = caplog.text
    assert "HTTP 500" in logged
    for h, body in receiver.got:
        assert h["webhook-signature"].split(",", 1)[1] not in logged
        assert body.decode() not in logged
    assert site.secret not in logged and site.secret[6:] not in logged and URL_TOKEN not in logged


def test_the_signature_is_standard_webhooks_and_binds_the_body(site: Site,
                                                               receiver: Receiver) -> None:
    site.no()
    site.hook.push_due()
    (headers, body), = receiver.got
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")
    payload = _verified(site.secret, headers, body)
    assert set(payload) == {"type", "issuer", "alert"}
    assert set(payload["alert"]) == {"idx", "kind", "at", "ticket_id", "agent_id", "reason",
                                     "details"}
    assert payload["alert"]["kind"] == "number_denied"
    assert PHONE not in body.decode() and PHONE[-4:] not in body.decode()
    forged = body.replace(b"number_denied", b"word_wrong")
    with pytest.raises(WebhookVerificationError):
        _verified(site.secret, headers, forged)
    with pytest.raises(WebhookVerificationError):
        _verified(AlertWebhook(site.dep).secret() or "", {**headers, "webhook-id": "x:1"}, body)
    other = "whsec_" + "A" * 43 + "="
    with pytest.raises(WebhookVerificationError):
        _verified(other, headers, body)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_receiver_that_is_down_keeps_the_alert_pending_with_backoff(
        tmp_path: Path, backend: str, clock: FixedClock) -> None:
    port = _closed_port()
    site = _site(tmp_path, clock, f"http://127.0.0.1:{port}/hook")
    try:
        site.no()
        (idx,) = [r.idx for r in _rows(site)]
        result = site.hook.push_due()
        assert (result.delivered, result.failed, result.pending) == (0, 1, 1)
        row = site.row(idx)
        start = int(clock.now().timestamp())
        assert (row.attempts, row.last_status, row.next_attempt_at) == (1, 0, start + 10)
        clock.advance(seconds=10)
        assert site.hook.push_due().failed == 1
        assert site.row(idx).next_attempt_at == start + 10 + 20  # doubled
        # The receiver comes back: the alert was not lost.
        server, receiver = _serve(Receiver(port), port)
        try:
            clock.advance(seconds=19)
            assert site.hook.push_due().delivered == 0  # its retry is not due yet
            clock.advance(seconds=1)
            result = site.hook.push_due()
            assert (result.delivered, result.failed, result.pending) == (1, 0, 0)
            assert len(receiver.got) == 1
            _verified(site.secret, *receiver.got[0])
            assert site.row(idx).attempts == 3
        finally:
            server.shutdown()
            server.server_close()
    finally:
        site.dep.store.close()


def _rows(site: Site) -> list[Any]:
    """Queue what is due (push_due queues first) without a receiver: read the outbox."""
    site.hook._queue(site.clock.now())  # noqa: SLF001 - the outbox before any attempt
    d = schema.webhook_deliveries
    with site.dep.store.read() as conn:
        return list(conn.execute(select(d).order_by(d.c.idx)))


def test_it_gives_up_after_a_day_and_says_so(site: Site, receiver: Receiver) -> None:
    site.no()
    receiver.plan = [503] * 1000
    failed = 0
    for _ in range(200):
        result = site.hook.push_due()
        failed += result.failed
        if result.pending == 0:
            break
        site.clock.advance(seconds=backoff_seconds(99))
    status = site.hook.status()
    assert (status.pending, status.gave_up, status.last_delivered_at) == (0, 1, None)
    assert failed == len(receiver.got)
    # 10, 20, 40 … 1280 s, then every 30 minutes, until a day has passed.
    assert 40 <= len(receiver.got) <= 2 + GIVE_UP_SECONDS // 1800
    sent = len(receiver.got)
    site.clock.advance(seconds=86400)
    assert site.hook.push_due().failed == 0 and len(receiver.got) == sent
    assert [backoff_seconds(n) for n in (1, 2, 3, 8, 9, 50)] == [10, 20, 40, 1280, 1800, 1800]


def test_a_redirect_is_not_a_delivery(site: Site, receiver: Receiver) -> None:
    site.no()
    receiver.plan = [302]
    assert site.hook.push_due().failed == 1
    assert len(receiver.got) == 1  # the redirect was not followed (it would drop the body)
    site.clock.advance(seconds=10)
    assert site.hook.push_due().delivered == 1


def test_two_pushers_at_once_deliver_each_alert_once(site: Site, receiver: Receiver) -> None:
    for _ in range(5):
        site.no()
    receiver.delay = 0.1
    other = Deployment.open(site.path, clock=site.clock)  # a second server process's view
    results = []
    try:
        hooks = [site.hook, AlertWebhook(other)]
        threads = [threading.Thread(target=lambda h=h: results.append(h.push_due()))
                   for h in hooks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        other.store.close()
    assert sorted(receiver.ids()) == sorted(set(receiver.ids()))
    assert len(receiver.ids()) == 5
    assert sum(r.delivered for r in results) == 5


def test_only_alerts_of_the_last_day_are_queued_the_first_time(site: Site,
                                                               receiver: Receiver) -> None:
    old = site.no()
    site.clock.advance(seconds=GIVE_UP_SECONDS + 60)
    new = site.no()
    site.hook.push_due()
    assert [json.loads(b)["alert"]["ticket_id"] for _, b in receiver.got] == [new]
    assert old != new


def test_unconfigured_does_nothing(tmp_path: Path, backend: str, clock: FixedClock) -> None:
    site = _site(tmp_path, clock, None)
    try:
        site.no()
        assert not site.hook.configured and site.hook.status().url_host is None
        assert site.hook.push_due() == type(site.hook.push_due())(0, 0, 0)
        d = schema.webhook_deliveries
        with site.dep.store.read() as conn:
            assert conn.execute(select(d)).all() == []
    finally:
        site.dep.store.close()


def test_a_url_without_a_secret_is_not_configured(tmp_path: Path, backend: str,
                                                  clock: FixedClock, receiver: Receiver) -> None:
    site = _site(tmp_path, clock, receiver.url)
    try:
        site.dep.data_dir.webhook_secret_file.unlink()
        assert not site.hook.configured
        assert site.hook.status().url_host == "127.0.0.1"
        site.no()
        assert site.hook.push_due().delivered == 0 and receiver.got == []
    finally:
        site.dep.store.close()


def test_the_secret_is_kept_0600_shown_once_and_rotated(site: Site) -> None:
    path = site.dep.data_dir.webhook_secret_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == site.secret == site.hook.secret()
    assert site.secret.startswith("whsec_") and len(site.secret) == 6 + 44
    assert site.hook.create_secret() is None  # exists: never shown again
    rotated = site.hook.create_secret(rotate=True)
    assert rotated is not None and rotated != site.secret and site.hook.secret() == rotated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert site.secret not in repr(site.hook) and rotated not in repr(site.hook)
    with site.dep.store.read() as conn:
        bodies = b"".join(e.to_bytes() for e in read_events(conn, site.dep.issuer_id))
    assert b"desk.webhook_secret_set" in bodies
    assert rotated.encode() not in bodies and site.secret.encode() not in bodies


def test_a_bad_secret_file_is_a_clear_error(site: Site) -> None:
    site.dep.data_dir.webhook_secret_file.write_text("not a secret\n")
    with pytest.raises(ConfigError) as refused:
        site.hook.push_due()
    assert "whsec_" in str(refused.value) and "not a secret" not in str(refused.value)


@pytest.mark.parametrize("url,ok", [
    ("https://fraud.example/hooks/callproof?t=1", True),
    ("http://127.0.0.1:8080/hook", True),
    ("http://localhost/hook", True),
    ("http://fraud.example/hook", False),
    ("ftp://fraud.example/hook", False),
    ("file:///etc/passwd", False),
    ("https://user:pw@fraud.example/hook", False),
    ("https:///nohost", False),
    ("https://fraud.example:99999/", False),
])
def test_the_webhook_url_is_https_or_this_machine(tmp_path: Path, url: str, ok: bool) -> None:
    path = tmp_path / "data"
    init_data_dir(path)
    with (path / "config.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[alerts]\nwebhook_url = "{url}"\n')
    from callproof import DataDir

    if ok:
        assert DataDir(path).load().alerts.webhook_url == url
    else:
        with pytest.raises(ConfigError, match=r"\[alerts\]"):
            DataDir(path).load()


def test_unknown_alert_settings_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "data"
    init_data_dir(path)
    with (path / "config.toml").open("a", encoding="utf-8") as f:
        f.write('\n[alerts]\nwebhook_uri = "https://fraud.example/"\n')
    from callproof import DataDir

    with pytest.raises(ConfigError, match="unknown setting"):
        DataDir(path).load()
