"""Fraud-desk alerts pushed to a configured webhook, signed as Standard Webhooks specifies.

Each alert event is queued once in an outbox table (a cursor remembers how far), then POSTed
until the receiver answers 2xx, with exponential backoff, for at most a day. The body is
``{"type":"callproof.alert","issuer":…,"alert":{…}}`` — the alert as the desk shows it, nothing
of a customer — signed with HMAC-SHA256 under the ``whsec_`` secret in the data dir:

    webhook-id: <issuer>:<event index>      (the same on every retry: receivers deduplicate)
    webhook-timestamp: <epoch seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(secret, id "." timestamp "." body)>

    >>> AlertWebhook(dep).push_due()            # a server runs this every few seconds
    PushResult(delivered=2, failed=0, pending=0)

The HTTP call never runs inside a database transaction: a due delivery is claimed under the
writer lock (its next attempt moved a lease ahead), sent, and its outcome written afterwards.
The secret and the signature are never logged; nor is the URL, which may hold a token: only its
host. See spec/fraud-desk.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, func, select, update

from callproof._files import write_atomic
from callproof.deployment import Deployment
from callproof.errors import ConfigError, StoreError
from callproof.fraud import ALERT_EVENTS, Alert, alerts_between
from callproof.protocol import events
from callproof.protocol.canonical import canonical_json
from callproof.protocol.clock import from_epoch, to_epoch
from callproof.store import schema
from callproof.store.integrator import integrate_all

#: The named lock the outbox's writes take: one pusher queues and claims at a time.
WEBHOOK_LOCK = "webhook"

log = logging.getLogger("callproof.webhook")

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_ENV = "CALLPROOF_WEBHOOK_SECRET"  # noqa: S105 - the variable's name
EVENT_TYPE = "callproof.alert"
TIMEOUT_SECONDS = 5.0
FIRST_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 30 * 60
GIVE_UP_SECONDS = 24 * 3600
#: How long a claimed delivery is hidden from other pushers: far longer than one attempt.
LEASE_SECONDS = 60
#: At most this many deliveries are attempted in one run.
MAX_PER_RUN = 100
_QUEUE_BATCH = 1000


@dataclass(frozen=True)
class PushResult:
    """What one :meth:`AlertWebhook.push_due` did: deliveries that got a 2xx, attempts that
    failed (each retried later or, past the limit, given up) and what is still pending."""

    delivered: int
    failed: int
    pending: int


@dataclass(frozen=True)
class WebhookStatus:
    configured: bool
    url_host: str | None
    pending: int
    gave_up: int
    last_delivered_at: datetime | None


def backoff_seconds(attempts: int) -> int:
    """The wait after the ``attempts``-th failed attempt: 10 s, 20 s, 40 s … at most 30 min."""
    return int(min(FIRST_RETRY_SECONDS * 2 ** min(max(attempts - 1, 0), 20), MAX_RETRY_SECONDS))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for one attempt (``v1,<base64>``)."""
    mac = hmac.new(_secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body,
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _secret_bytes(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigError(f"the webhook secret must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError("the webhook secret is not whsec_ and base64") from e
    if not 24 <= len(key) <= 64:
        raise ConfigError("the webhook secret must be 24–64 bytes (32 are made)")
    return key


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not a delivery: urllib would turn the POST into a GET and drop the body."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class AlertWebhook:
    """The alert webhook of one issuer: its secret, its outbox and its pushes."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    def __repr__(self) -> str:
        return f"AlertWebhook(host={self.dep.config.alerts.webhook_host!r})"

    # --- configuration and the secret ------------------------------------------------------

    @property
    def url_host(self) -> str | None:
        return self.dep.config.alerts.webhook_host

    @property
    def configured(self) -> bool:
        """A URL is set in [alerts] and a secret exists: alerts are pushed."""
        return bool(self.dep.config.alerts.webhook_url) and self.secret() is not None

    def secret(self) -> str | None:
        """The signing secret: CALLPROOF_WEBHOOK_SECRET, else the data dir's file, else None.
        Raises ConfigError when the one found is malformed."""
        value = os.environ.get(SECRET_ENV, "").strip()
        if not value:
            try:
                value = self._secret_file.read_text("ascii").strip()
            except FileNotFoundError:
                return None
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(f"cannot read {self._secret_file}: {e.__class__.__name__}") \
                    from e
        _secret_bytes(value)
        return value

    def create_secret(self, *, rotate: bool = False, now: datetime | None = None
                      ) -> str | None:
        """Write a new secret (mode 0600) and return it — to be shown once, for the receiver —
        or None when one exists and ``rotate`` is false. After a rotation the receiver must
        use the new secret: every attempt from then on is signed with it alone."""
        if os.environ.get(SECRET_ENV):
            raise ConfigError(f"the webhook secret comes from {SECRET_ENV}: change it there")
        if not rotate and self.secret() is not None:
            return None
        value = new_secret()
        write_atomic(self._secret_file, (value + "\n").encode("ascii"), mode=0o600)
        at = self.dep.now(now)
        with self.dep.store.write(lock=WEBHOOK_LOCK) as conn:
            self.dep.record(conn, events.WEBHOOK_SECRET_SET, at, rotated=rotate)
        return value

    @property
    def _secret_file(self) -> Path:
        return self.dep.data_dir.webhook_secret_file

    # --- pushing ---------------------------------------------------------------------------

    def push_due(self, *, now: datetime | None = None) -> PushResult:
        """Queue the alerts not queued yet, then POST every due delivery once (oldest first).

        A run stops at its first failed attempt — the receiver is down or refusing; the rest
        wait for the next run — and after :data:`MAX_PER_RUN` attempts. Does nothing (but
        count) when the webhook is not configured.
        """
        at = self.dep.now(now)
        secret = self.secret() if self.dep.config.alerts.webhook_url else None
        if secret is None:
            return PushResult(0, 0, self.status().pending)
        self._queue(at)
        delivered = failed = 0
        for _ in range(MAX_PER_RUN):
            claimed = self._claim(at)
            if claimed is None:
                break
            alert, queued_at, attempts = claimed
            ok, status = self._send(secret, alert, at)
            self._settle(alert.idx, at, queued_at, attempts, ok, status)
            if not ok:
                failed += 1
                break
            delivered += 1
        return PushResult(delivered, failed, self.status().pending)

    def status(self) -> WebhookStatus:
        d = schema.webhook_deliveries
        mine = d.c.issuer_id == self.dep.issuer_id
        with self.dep.store.read() as conn:
            pending = conn.execute(select(func.count()).where(
                mine, d.c.delivered_at.is_(None), d.c.gave_up.is_(False))).scalar_one()
            gave_up = conn.execute(select(func.count()).where(
                mine, d.c.gave_up.is_(True))).scalar_one()
            last = conn.execute(select(func.max(d.c.delivered_at)).where(mine)).scalar()
        return WebhookStatus(configured=self.configured, url_host=self.url_host,
                             pending=int(pending), gave_up=int(gave_up),
                             last_delivered_at=from_epoch(last) if last is not None else None)

    def _queue(self, at: datetime) -> None:
        """Put every alert after the cursor (and not older than the give-up limit: the first run
        does not flood a new receiver with history) into the outbox, once. Alerts are queued
        by their leaf index, so what waits in the event queue is integrated first; the outbox's
        lock is taken only when there is something to queue."""
        integrate_all(self.dep.store)
        with self.dep.store.read() as conn:
            if not self._unqueued(conn, at):
                return
        store, issuer, c = self.dep.store, self.dep.issuer_id, schema.webhook_cursor
        with store.write(lock=WEBHOOK_LOCK) as conn:
            idxs = self._unqueued(conn, at)  # again under the lock: another pusher may be first
            if not idxs:
                return
            for idx in idxs:
                store.insert_if_absent(conn, schema.webhook_deliveries, {
                    "issuer_id": issuer, "idx": idx, "queued_at": to_epoch(at), "attempts": 0,
                    "next_attempt_at": to_epoch(at), "delivered_at": None, "gave_up": False,
                    "last_status": None})
            if not store.insert_if_absent(conn, c, {"issuer_id": issuer, "last_idx": idxs[-1]}):
                conn.execute(update(c).where(c.c.issuer_id == issuer)
                             .values(last_idx=idxs[-1]))

    def _unqueued(self, conn: Connection, at: datetime) -> list[int]:
        c, e = schema.webhook_cursor, schema.events
        issuer = self.dep.issuer_id
        cursor = conn.execute(select(c.c.last_idx).where(c.c.issuer_id == issuer)).scalar()
        query = select(e.c.idx).where(e.c.issuer_id == issuer, e.c.type.in_(tuple(ALERT_EVENTS)),
                                      e.c.at >= to_epoch(at) - GIVE_UP_SECONDS)
        if cursor is not None:
            query = query.where(e.c.idx > cursor)
        return [int(i) for (i,) in conn.execute(query.order_by(e.c.idx).limit(_QUEUE_BATCH))]

    def _claim(self, at: datetime) -> tuple[Alert, int, int] | None:
        """The oldest due delivery, hidden from other pushers for a lease; None when none is."""
        with self.dep.store.read() as conn:
            if self._due(conn, at) is None:
                return None  # the usual case: no writer lock taken
        d, issuer = schema.webhook_deliveries, self.dep.issuer_id
        with self.dep.store.write(lock=WEBHOOK_LOCK) as conn:
            row = self._due(conn, at)  # again under the lock: another pusher may be first
            if row is None:
                return None
            conn.execute(update(d).where(d.c.issuer_id == issuer, d.c.idx == row.idx)
                         .values(next_attempt_at=to_epoch(at) + LEASE_SECONDS))
            alert = self._alert(conn, int(row.idx))
        return alert, int(row.queued_at), int(row.attempts)

    def _due(self, conn: Connection, at: datetime) -> Any:
        d = schema.webhook_deliveries
        return conn.execute(select(d.c.idx, d.c.queued_at, d.c.attempts).where(
            d.c.issuer_id == self.dep.issuer_id, d.c.delivered_at.is_(None),
            d.c.gave_up.is_(False), d.c.next_attempt_at <= to_epoch(at))
            .order_by(d.c.idx).limit(1)).first()

    def _alert(self, conn: Connection, idx: int) -> Alert:
        found = alerts_between(conn, self.dep.issuer_id, after=idx - 1, until=None, limit=1,
                               oldest_first=True)
        if not found or found[0].idx != idx:
            raise StoreError(f"the outbox names event {idx}, which is not an alert")
        return found[0]

    def body(self, alert: Alert) -> bytes:
        """The JSON body POSTed for ``alert`` (RFC 8785 canonical: the same bytes every time)."""
        return canonical_json({"type": EVENT_TYPE, "issuer": self.dep.issuer_id,
                               "alert": alert.to_json()})

    def _send(self, secret: str, alert: Alert, at: datetime) -> tuple[bool, int]:
        """POST one alert; (delivered?, HTTP status or 0 when no answer came)."""
        msg_id = f"{self.dep.issuer_id}:{alert.idx}"
        timestamp = to_epoch(at)
        body = self.body(alert)
        # The URL is https:// (or http:// to this machine): config.Alerts.check refuses others.
        request = urllib.request.Request(  # noqa: S310
            self.dep.config.alerts.webhook_url, data=body, method="POST",
            headers={"Content-Type": "application/json",
                     "User-Agent": "callproof-webhook",
                     "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                     "webhook-signature": sign(secret, msg_id, timestamp, body)})
        try:
            with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
                response.read(65536)
                status = int(response.status)
        except urllib.error.HTTPError as e:
            status = int(e.code)
            e.close()
        except (OSError, ValueError) as e:  # refused, unreachable, timed out, TLS, bad answer
            log.warning("webhook %s to %s: no answer (%s)", msg_id, self.url_host,
                        e.__class__.__name__)
            return False, 0
        if 200 <= status < 300:
            return True, status
        log.warning("webhook %s to %s: HTTP %d, will retry", msg_id, self.url_host, status)
        return False, status

    def _settle(self, idx: int, at: datetime, queued_at: int, attempts: int, ok: bool,
                status: int) -> None:
        """Write an attempt's outcome: delivered, retried after a backoff, or given up."""
        now = to_epoch(at)
        d = schema.webhook_deliveries
        tries = attempts + 1
        values: dict[str, Any] = {"attempts": tries, "last_status": status}
        if ok:
            values["delivered_at"] = now
        elif now + backoff_seconds(tries) - queued_at > GIVE_UP_SECONDS:
            values["gave_up"] = True
            log.warning("webhook %s:%d gave up after %d attempts", self.dep.issuer_id, idx, tries)
        else:
            values["next_attempt_at"] = now + backoff_seconds(tries)
        with self.dep.store.write(lock=WEBHOOK_LOCK) as conn:
            conn.execute(update(d).where(d.c.issuer_id == self.dep.issuer_id, d.c.idx == idx,
                                         d.c.delivered_at.is_(None)).values(**values))
