"""The fraud desk's own sign-in: its users and their passwords (Argon2id), apart from agents.

An agent's console password opens nothing on the desk and a desk password opens no console:
the desk sees every alert and report of the company, an agent only their own calls.

    >>> users = DeskUsers(dep)
    >>> users.add("f-01", "Lin Fraud Team", "correct horse battery staple")
    >>> users.check("f-01", "correct horse battery staple")
    DeskUser(user_id='f-01', name='Lin Fraud Team', enabled=True)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from callproof.admin import REGISTRY_LOCK, check_id, check_text
from callproof.agent_auth import dummy_hash, hash_password, password_matches
from callproof.deployment import Deployment
from callproof.errors import InputError, NotFound
from callproof.protocol import events
from callproof.protocol.clock import to_epoch
from callproof.sign_ins import end_sign_ins
from callproof.store import schema


@dataclass(frozen=True)
class DeskUser:
    user_id: str
    name: str
    enabled: bool


class DeskUsers:
    """The fraud team's accounts for one issuer; each change is one transaction with its event
    (ids only: never a password, a hash or a name)."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment
        dummy_hash()  # made now, so the first unknown desk user is no faster than the rest

    def add(self, user_id: str, name: str, password: str, *,
            now: datetime | None = None) -> DeskUser:
        """Add an enabled user. Raises InputError: ``bad_id``, ``bad_text``, ``weak``,
        ``exists``."""
        at = self.dep.now(now)
        user = DeskUser(check_id(user_id, "the user id"), check_text(name, "the name"), True)
        hashed = hash_password(password)
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            if not self.dep.store.insert_if_absent(conn, schema.desk_users, {
                    "issuer_id": self.dep.issuer_id, "user_id": user.user_id,
                    "name": user.name, "password_hash": hashed, "enabled": True,
                    "created_at": to_epoch(at), "updated_at": to_epoch(at)}):
                raise InputError(f"desk user {user_id!r} already exists", reason="exists")
            self.dep.record(conn, events.DESK_USER_ADDED, at, user_id=user.user_id)
        return user

    def set_password(self, user_id: str, password: str, *, now: datetime | None = None) -> None:
        """Replace a user's password. Raises NotFound, InputError(``weak``)."""
        at = self.dep.now(now)
        hashed = hash_password(password)
        self._update(user_id, events.DESK_PASSWORD_SET, at, password_hash=hashed)

    def set_enabled(self, user_id: str, enabled: bool, *, now: datetime | None = None) -> None:
        """Disable (no sign-in from now on) or enable a user again. Raises NotFound."""
        at = self.dep.now(now)
        self._update(user_id, events.DESK_USER_ENABLED if enabled else events.DESK_USER_DISABLED,
                     at, enabled=bool(enabled))

    def _update(self, user_id: str, event: str, at: datetime, **values: object) -> None:
        t = schema.desk_users
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            done = conn.execute(update(t).where(t.c.issuer_id == self.dep.issuer_id,
                                                t.c.user_id == user_id)
                                .values(updated_at=to_epoch(at), **values)).rowcount
            if not done:
                raise NotFound(f"no desk user {user_id!r}")
            if "password_hash" in values or values.get("enabled") is False:
                end_sign_ins(self.dep, conn, "desk", user_id)  # signed out everywhere, at once
            self.dep.record(conn, event, at, user_id=user_id)

    def check(self, user_id: str, password: str) -> DeskUser | None:
        """The user when ``password`` is theirs and they are enabled, else None. An unknown id
        costs one Argon2id verification like a known one."""
        t = schema.desk_users
        row = None
        if isinstance(user_id, str) and len(user_id) <= 64:
            with self.dep.store.read() as conn:
                row = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id,
                                                   t.c.user_id == user_id)).first()
        if not password_matches(row.password_hash if row is not None else None, password):
            return None
        if row is None or not row.enabled:
            return None
        return DeskUser(row.user_id, row.name, True)

    def get(self, user_id: str) -> DeskUser | None:
        t = schema.desk_users
        with self.dep.store.read() as conn:
            row = conn.execute(select(t.c.user_id, t.c.name, t.c.enabled).where(
                t.c.issuer_id == self.dep.issuer_id, t.c.user_id == user_id)).first()
        return DeskUser(row.user_id, row.name, bool(row.enabled)) if row is not None else None

    def list(self) -> list[DeskUser]:
        t = schema.desk_users
        with self.dep.store.read() as conn:
            rows = conn.execute(select(t.c.user_id, t.c.name, t.c.enabled).where(
                t.c.issuer_id == self.dep.issuer_id).order_by(t.c.user_id)).all()
        return [DeskUser(r.user_id, r.name, bool(r.enabled)) for r in rows]
