"""Staff sign-ins — agents on the console, users of the fraud desk — kept in the database.

The browser holds only a random 256-bit token (inside the app's signed session cookie); the
database keeps its SHA-256 with who signed in, until when, and what the page keeps for the
sign-in. Signing out deletes the row; a new password or ``disable`` deletes every row of that
person, so a copied cookie stops working at its next request, on every instance. A forged
session cookie is worth nothing without a live token. Sign-ins, failed sign-ins and sign-outs
are events (ids only).

    >>> token = SignIns(dep).start("agent", "a-001")
    >>> SignIns(dep).check("agent", token).user_id
    'a-001'
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from callproof.deployment import Deployment
from callproof.errors import InputError
from callproof.protocol import events
from callproof.protocol.clock import to_epoch
from callproof.protocol.jws import b64url_encode
from callproof.store import schema

__all__ = ["KINDS", "LIFETIME_SECONDS", "SignIn", "SignIns", "end_sign_ins"]

#: Who signs in: an agent (the console) or a fraud-desk user.
KINDS = ("agent", "desk")
#: How long a sign-in lasts at most (a working day and a half), whatever happens.
LIFETIME_SECONDS = 12 * 3600

_T = schema.sign_ins


@dataclass(frozen=True)
class SignIn:
    """A live sign-in: who, since when, and the page's data for it."""

    kind: str
    user_id: str
    created_at: int
    data: Any

    def __repr__(self) -> str:  # the data may hold call codes
        return f"SignIn({self.kind!r}, {self.user_id!r})"


def _hash(token: str) -> str:
    return b64url_encode(hashlib.sha256(token.encode("utf-8")).digest())


def end_sign_ins(dep: Deployment, conn: Connection, kind: str, user_id: str) -> int:
    """End every sign-in of one person, inside the caller's transaction (a new password, a
    disabled account); returns how many ended."""
    return int(conn.execute(delete(_T).where(_T.c.issuer_id == dep.issuer_id,
                                             _T.c.kind == kind,
                                             _T.c.user_id == user_id)).rowcount)


class SignIns:
    """The sign-ins of one issuer's staff."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    def start(self, kind: str, user_id: str, *, now: datetime | None = None) -> str:
        """A new sign-in after a right password: its token for the browser (shown once)."""
        _check_kind(kind)
        at = to_epoch(self.dep.now(now))
        token = secrets.token_urlsafe(32)
        with self.dep.store.write() as conn:
            conn.execute(insert(_T).values(token_hash=_hash(token), issuer_id=self.dep.issuer_id,
                                           kind=kind, user_id=user_id, created_at=at,
                                           expires_at=at + LIFETIME_SECONDS, data=None))
            self.dep.record(conn, events.SIGNED_IN, self.dep.now(now), kind=kind,
                            user_id=user_id)
        return token

    def failed(self, kind: str, user_id: str, *, now: datetime | None = None) -> None:
        """Record a failed sign-in: the account's id when it is one, else only that the id was
        unknown — what was typed there may be a password typed in the wrong box, and the event
        record is kept for good. Never the password."""
        _check_kind(kind)
        table = schema.agents if kind == "agent" else schema.desk_users
        id_column = table.c.agent_id if kind == "agent" else table.c.user_id
        with self.dep.store.write() as conn:
            known = conn.execute(select(id_column).where(
                table.c.issuer_id == self.dep.issuer_id, id_column == user_id[:64])).first()
            self.dep.record(conn, events.SIGN_IN_FAILED, self.dep.now(now), kind=kind,
                            **({"user_id": user_id[:64]} if known else {"unknown_id": True}))

    def check(self, kind: str, token: Any, *, now: datetime | None = None) -> SignIn | None:
        """The live sign-in of ``token`` (None when unknown, ended, expired or of another
        kind)."""
        if not isinstance(token, str) or not 16 <= len(token) <= 128:
            return None
        at = to_epoch(self.dep.now(now))
        with self.dep.store.read() as conn:
            row = conn.execute(select(_T).where(_T.c.token_hash == _hash(token))).first()
        if row is None or row.kind != kind or row.issuer_id != self.dep.issuer_id or \
                not row.created_at <= at < row.expires_at:
            return None
        return SignIn(row.kind, row.user_id, int(row.created_at),
                      json.loads(row.data) if row.data else None)

    def keep(self, token: str, data: Any) -> None:
        """Keep ``data`` (JSON) for the sign-in, server-side."""
        with self.dep.store.write() as conn:
            conn.execute(update(_T).where(_T.c.token_hash == _hash(token))
                         .values(data=json.dumps(data, separators=(",", ":"))))

    def end(self, token: Any, *, now: datetime | None = None) -> None:
        """Sign out: the token is worth nothing from now on."""
        if not isinstance(token, str):
            return
        with self.dep.store.write() as conn:
            row = conn.execute(delete(_T).where(_T.c.token_hash == _hash(token))
                               .returning(_T.c.kind, _T.c.user_id)).first()
            if row is not None:
                self.dep.record(conn, events.SIGNED_OUT, self.dep.now(now), kind=row.kind,
                                user_id=row.user_id)

    def purge(self, *, now: datetime | None = None) -> int:
        """Delete expired sign-ins (housekeeping)."""
        at = to_epoch(self.dep.now(now))
        with self.dep.store.write() as conn:
            return int(conn.execute(delete(_T).where(_T.c.expires_at <= at)).rowcount)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"a sign-in is an agent's or a desk user's, not {kind!r}",
                         reason="bad_kind")
