"""Issuer API keys: scoped, shown once, stored hashed, revocable at once.

A key reads ``cpk_<key id>_<secret>``; the store keeps the key id, the scopes and SHA-256 of the
256-bit secret (a fast hash is right for a random secret), compared in constant time. Whoever
holds a key with the ``issue`` scope can mint genuine tickets: guard keys like the signing key.

    >>> key, record = ApiKeys(dep).create("dialer", scopes={"issue", "status"})
    >>> ApiKeys(dep).authenticate(key, scope="issue").name
    'dialer'
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from callproof.admin import REGISTRY_LOCK, check_text
from callproof.deployment import Deployment
from callproof.errors import AuthError, InputError, NotFound
from callproof.protocol import events
from callproof.protocol.clock import from_epoch, to_epoch
from callproof.store import schema

SCOPES = ("issue", "status", "enrol", "reveal", "agents")  # agents: the agent registry
DEFAULT_SCOPES = frozenset({"issue", "status"})
_PREFIX = "cpk_"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"key_id": self.key_id, "name": self.name, "scopes": sorted(self.scopes),
                "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiKeys:
    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    def create(self, name: str, *, scopes: Iterable[str] | None = None,
               now: datetime | None = None) -> tuple[str, ApiKey]:
        """Make a key; returns the key text (shown once, never stored) and its record."""
        at = self.dep.now(now)
        chosen = frozenset(scopes) if scopes is not None else DEFAULT_SCOPES
        unknown = sorted(chosen - set(SCOPES))
        if unknown or not chosen:
            raise InputError(f"scopes are some of {', '.join(SCOPES)}", reason="bad_scope")
        record = ApiKey(key_id=secrets.token_hex(8), name=check_text(name, "the key's name"),
                        scopes=chosen, created_at=at, revoked_at=None)
        secret = secrets.token_urlsafe(32)
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            conn.execute(insert(schema.api_keys).values(
                key_id=record.key_id, issuer_id=self.dep.issuer_id, name=record.name,
                secret_hash=_hash(secret), scopes=",".join(sorted(chosen)),
                created_at=to_epoch(at)))
            self.dep.record(conn, events.APIKEY_CREATED, at, key_id=record.key_id,
                            name=record.name, scopes=sorted(chosen))
        return f"{_PREFIX}{record.key_id}_{secret}", record

    def list(self) -> list[ApiKey]:
        t = schema.api_keys
        with self.dep.store.read() as conn:
            rows = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id)
                                .order_by(t.c.created_at, t.c.key_id)).all()
        return [_record(r) for r in rows]

    def revoke(self, key_id: str, *, now: datetime | None = None) -> None:
        """Revoke a key: every server refuses it from its next request on."""
        at = self.dep.now(now)
        t = schema.api_keys
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            done = conn.execute(update(t).where(
                t.c.issuer_id == self.dep.issuer_id, t.c.key_id == key_id,
                t.c.revoked_at.is_(None)).values(revoked_at=to_epoch(at))).rowcount
            if not done:
                raise NotFound(f"no live API key {key_id!r}")
            self.dep.record(conn, events.APIKEY_REVOKED, at, key_id=key_id)

    def authenticate(self, key: str | None, *, scope: str) -> ApiKey:
        """The live key record for ``key`` if it has ``scope``; else :class:`AuthError`."""
        if not key or not key.startswith(_PREFIX) or key.count("_") < 2:
            raise AuthError("an API key is required: Authorization: Bearer cpk_…", status=401)
        key_id, _, secret = key[len(_PREFIX):].partition("_")
        t = schema.api_keys
        with self.dep.store.read() as conn:
            row = conn.execute(select(t).where(t.c.key_id == key_id,
                                               t.c.issuer_id == self.dep.issuer_id)).first()
        # Compare even when there is no row, so timing does not tell which key ids exist.
        expected = row.secret_hash if row is not None else _hash("")
        if not hmac.compare_digest(expected, _hash(secret)) or row is None or \
                row.revoked_at is not None:
            raise AuthError("the API key is unknown or revoked", status=401)
        record = _record(row)
        if scope not in record.scopes:
            raise AuthError(f"this API key lacks the {scope!r} scope", status=403)
        return record


def _record(row: Any) -> ApiKey:
    return ApiKey(key_id=row.key_id, name=row.name, scopes=frozenset(row.scopes.split(",")),
                  created_at=from_epoch(row.created_at),
                  revoked_at=from_epoch(row.revoked_at) if row.revoked_at is not None else None)
