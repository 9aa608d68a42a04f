"""Idempotent issuing: a dialer that retries a ticket request gets the ticket it already has.

A dialer that sends ``POST /api/v1/tickets`` and loses the answer (a timeout, a dropped
connection, a crash of either side) cannot tell whether the ticket was made. With an
``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header; a random UUID is the usual
choice) it sends the same request again and gets the same ticket, never a second live code for
one call:

    >>> issuing = IdempotentIssuing(issuer)
    >>> call, replayed = issuing.issue("8e03978e-40d5-43e8-bc93-6894a57f9324", api_key="k_1",
    ...                                request=body, agent_id="a-001", reason="refund")

- The key belongs to one API key (another key's identical key is another key) and lasts
  :data:`LIFETIME` (24 h). The same key with the same request (compared as RFC 8785 canonical
  JSON, so spacing and member order do not matter) returns the same ticket; with another request
  it is refused (``InputError``, reason ``idempotency_key_reused``).
- The key's row is written in the ticket's own transaction (:meth:`Issuer.issue`'s
  ``in_transaction``): a crash, a refusal or a failed commit leaves both the ticket and its key
  or neither — never a ticket without its key (a retry would make a second) nor a key without
  its ticket. The row's primary key decides between two concurrent requests with one key on
  every database: the second one's insert waits for the first transaction (PostgreSQL's unique
  index; SQLite's single writer), finds its row and rolls its own ticket back, then replays the
  first one's. No reservation outlives its request, so a retry after a crash runs at once.
- What is kept is minimal: a keyed hash of the key (nothing to learn from the table), the hash of
  the request, the ticket id, and the call code *sealed* (AES-256-GCM). The response is rebuilt
  from the ticket row; only the code cannot be, since the database keeps codes only as keyed
  hashes. Its sealing key is derived from the deployment's keyed-hash secret and the idempotency
  key itself, so the table alone opens nothing; whoever holds that secret and the database could
  already find any live code by trying the 10^8 codes against their keyed hashes, so the sealed
  copy adds no exposure. A code is useless once its ticket's code window has closed (10 minutes).
- Rows older than 24 h are ignored, and deleted by :func:`purge_expired` (the worker's
  housekeeping duty) and now and then by issuing.

Rows written by an older release, which reserved a key in a transaction of its own before
issuing, are still understood: such a reservation without a ticket is waited on until its lease
(:data:`LEASE`) runs out, then taken over.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, delete, select, update

from callproof.deployment import Deployment
from callproof.errors import ConfigError, InputError, StoreError
from callproof.issuer import IssuedTicket, Issuer
from callproof.protocol.canonical import canonical_json
from callproof.protocol.clock import from_epoch, to_epoch
from callproof.protocol.jws import b64url_decode, b64url_encode, peek_unverified_claims
from callproof.protocol.ticket import CallTicket
from callproof.store import schema

__all__ = ["LEASE", "LIFETIME", "IdempotentIssuing", "check_key", "purge_expired"]

#: How long a key holds its ticket (seconds).
LIFETIME = 24 * 3600
#: How long an older release's reservation (a row without its ticket) stays its request's before
#: a retry may take it over (seconds): longer than any request may run.
LEASE = 60
#: One issue in this many also purges up to :data:`PURGE_BATCH` expired rows.
PURGE_EVERY = 200
PURGE_BATCH = 1000

#: An sf-string's characters (RFC 8941 §3.3.3) without the quote and the backslash, and without
#: the comma (a server joins repeated headers with commas): visible ASCII and the space, 1–255.
_KEY = re.compile(r'[\x20\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]{1,255}')
_T = schema.idempotency_keys
_POLL = 0.05
_NONCE = 12
_WAIT: tuple[str, Any] = ("wait", None)


def check_key(value: str) -> str:
    """The idempotency key from its header value: an sf-string (``"…"``) or the bare text.

    Raises :class:`InputError` (reason ``bad_idempotency_key``) for anything else."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not _KEY.fullmatch(text) or not text.strip():
        raise InputError("the Idempotency-Key must be one key of 1–255 visible ASCII "
                         "characters (no quote, backslash or comma), e.g. a UUID",
                         reason="bad_idempotency_key")
    return text


class IdempotentIssuing:
    """Issues through ``issuer``, one ticket per (API key, idempotency key) for 24 h."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.dep = issuer.dep

    def issue(self, key: str, *, api_key: str, request: Mapping[str, Any],
              wait_seconds: float = 0.0, **issue_args: Any) -> tuple[IssuedTicket, bool]:
        """The ticket for ``request`` under ``key``, and whether it is a replay.

        ``request`` is what the caller sent (compared canonically); ``issue_args`` go to
        :meth:`Issuer.issue` the first time. Raises :class:`InputError` for a bad key, a key
        reused with another request, or one still being served after ``wait_seconds``, and
        whatever :meth:`Issuer.issue` raises (the reservation is released then).
        """
        key = check_key(key)
        key_hash = self._key_hash(api_key, key)
        request_hash = b64url_encode(hashlib.sha256(canonical_json(dict(request))).digest())
        deadline = time.monotonic() + wait_seconds
        while True:
            with self.dep.store.read() as conn:  # a replay needs no write transaction
                row = conn.execute(select(_T).where(_T.c.key_hash == key_hash)).first()
            now = to_epoch(self.dep.now())
            found = None if row is None else self._holds(row, request_hash, now)
            if found is None:
                try:
                    call = self.issuer.issue(**issue_args, api_key=api_key, in_transaction=(
                        lambda conn, call: self._record(conn, key_hash, api_key, key,
                                                        request_hash, call)))
                except _Held as held:
                    found = held.row
                else:
                    self._purge_now_and_then()
                    return call, False
            if found is not _WAIT:
                return self._replay(found, api_key, key), True
            if time.monotonic() >= deadline:
                raise InputError("a request with this Idempotency-Key is still being served; "
                                 "send it again shortly", reason="idempotency_key_in_progress")
            time.sleep(_POLL)

    def _purge_now_and_then(self) -> None:
        if random.randrange(PURGE_EVERY) == 0:  # noqa: S311 - spreading work, not a secret
            try:
                purge_expired(self.dep)
            except StoreError:
                pass  # the next one will

    def purge_expired(self, limit: int = PURGE_BATCH) -> int:
        """Delete up to ``limit`` rows older than their 24 h; returns how many went."""
        return purge_expired(self.dep, limit)

    # --- the row's life ----------------------------------------------------------------------

    @staticmethod
    def _holds(row: Any, request_hash: str, now: int) -> Any:
        """What an existing row means for a request: ``None`` when it holds nothing any more
        (a day old, or an older release's reservation whose lease ran out: issue anew),
        ``_WAIT`` while an older release's reservation is live, else the row to replay.
        Raises :class:`InputError` when it is the key of another request."""
        if row.expires_at <= now:
            return None
        if row.request_hash != request_hash:
            raise InputError("this Idempotency-Key was used with another request; use a "
                             "new key for a new call", reason="idempotency_key_reused")
        if row.ticket_id is None:
            return None if row.lease_until <= now else _WAIT
        return row

    def _record(self, conn: Connection, key_hash: str, api_key: str, key: str,
                request_hash: str, call: IssuedTicket) -> None:
        """Keep the key with its ticket, in the ticket's transaction. Raises :class:`_Held`
        (undoing the ticket) when another request's row holds the key."""
        now = to_epoch(self.dep.now())
        nonce = os.urandom(_NONCE)
        sealed = self._aead(api_key, key).encrypt(nonce, call.code.encode("ascii"),
                                                  _associated_data(key_hash, call.ticket_id))
        values = {"issuer_id": self.dep.issuer_id, "api_key": api_key,
                  "request_hash": request_hash, "attempt": secrets.token_urlsafe(16),
                  "ticket_id": call.ticket_id, "sealed_code": nonce + sealed,
                  "created_at": now, "lease_until": now, "expires_at": now + LIFETIME}
        # On PostgreSQL this waits while a concurrent request's transaction holds the key.
        if self.dep.store.insert_if_absent(conn, _T, {"key_hash": key_hash, **values}):
            return
        row = conn.execute(select(_T).where(_T.c.key_hash == key_hash)).first()
        if row is None:  # purged a moment ago: this request may have it after all
            raise _Held(_WAIT)
        found = self._holds(row, request_hash, now)
        if found is None:  # a day old (or a dead reservation): a new use of the key
            if conn.execute(update(_T).where(_T.c.key_hash == key_hash,
                                             _T.c.attempt == row.attempt)
                            .values(**values)).rowcount:
                return
            found = _WAIT  # changed under us: look again
        raise _Held(found)

    def _replay(self, row: Any, api_key: str, key: str) -> IssuedTicket:
        t = schema.tickets
        with self.dep.store.read() as conn:
            ticket = conn.execute(select(t.c.token, t.c.expires_at, t.c.kid).where(
                t.c.ticket_id == row.ticket_id, t.c.issuer_id == self.dep.issuer_id)).first()
        if ticket is None or not row.sealed_code:
            raise StoreError("the ticket of an idempotency key is missing")
        try:
            code = self._aead(api_key, key).decrypt(
                row.sealed_code[:_NONCE], row.sealed_code[_NONCE:],
                _associated_data(row.key_hash, row.ticket_id)).decode("ascii")
        except (InvalidTag, ValueError) as e:
            raise ConfigError("the stored call code of an idempotency key does not open "
                              "(was the hash key changed?)") from e
        claims = CallTicket.from_claims(peek_unverified_claims(ticket.token) or {},
                                        kid=ticket.kid)
        return IssuedTicket(ticket_id=row.ticket_id, ticket=ticket.token, code=code,
                            expires_at=from_epoch(ticket.expires_at), claims=claims)

    # --- keys ----------------------------------------------------------------------------------

    def _key_hash(self, api_key: str, key: str) -> str:
        """The row's key: keyed, so the table gives nothing to test guesses of keys against."""
        return self.dep.hash_keys.client_hash(
            "\x00".join(("callproof-v1 idempotency key", self.dep.issuer_id, api_key, key)))

    def _aead(self, api_key: str, key: str) -> AESGCM:
        """The code's sealing key: keyed (the deployment's secret) and bound to the key."""
        return AESGCM(b64url_decode(self.dep.hash_keys.client_hash(
            "\x00".join(("callproof-v1 idempotency seal", self.dep.issuer_id, api_key, key)))))


class _Held(Exception):  # noqa: N818 - a signal between two methods, never seen outside
    """Another request's row holds the key: the ticket's transaction is undone."""

    def __init__(self, row: Any) -> None:
        super().__init__("the idempotency key is held")
        self.row = row


def purge_expired(dep: Deployment, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` idempotency rows older than their 24 h (every issuer's: a
    housekeeping job); returns how many went."""
    now = to_epoch(dep.now())
    with dep.store.write() as conn:
        keys = conn.execute(select(_T.c.key_hash).where(_T.c.expires_at <= now)
                            .order_by(_T.c.expires_at).limit(limit)).scalars().all()
        if not keys:
            return 0
        return int(conn.execute(delete(_T).where(_T.c.key_hash.in_(keys),
                                                 _T.c.expires_at <= now)).rowcount)


def _associated_data(key_hash: str, ticket_id: str) -> bytes:
    return b"\x00".join((b"callproof-v1 idempotency", key_hash.encode(), ticket_id.encode()))
