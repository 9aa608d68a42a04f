"""Agents' console passwords, hashed with Argon2id (argon2-cffi's defaults: memory-hard).

The password rules and the hashing (:func:`hash_password`, :func:`password_matches`) serve the
fraud desk's users too (:mod:`callproof.desk_users`).

    >>> AgentPasswords(dep).set("a-001", "correct horse battery staple")
    >>> AgentPasswords(dep).check("a-001", "correct horse battery staple")
    True
"""

from __future__ import annotations

import functools
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from callproof.admin import REGISTRY_LOCK
from callproof.deployment import Deployment
from callproof.errors import InputError, NotFound
from callproof.protocol import events
from callproof.protocol.clock import to_epoch
from callproof.sign_ins import end_sign_ins
from callproof.store import schema

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Checked against when there is no stored hash, so a wrong id costs as long as a wrong
    password. Made on first use, not at import (an Argon2id hash costs a noticeable fraction of
    a second); the services that check passwords make it when they are built."""
    return _HASHER.hash("callproof: no such account")


def hash_password(password: str) -> str:
    """The Argon2id hash of a new password. Raises InputError(``weak``) unless it has
    MIN_PASSWORD to MAX_PASSWORD characters."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError(f"a password has {MIN_PASSWORD}–{MAX_PASSWORD} characters",
                         reason="weak")
    return _HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``. With no stored hash (an unknown account)
    a dummy hash is verified, so the time taken tells nothing apart; so is an oversized
    password's."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        password = ""
    try:
        _HASHER.verify(stored_hash if stored_hash is not None else dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored_hash is not None


class AgentPasswords:
    """Agents' console passwords (Argon2id), set by the operator and checked at sign-in."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment
        dummy_hash()  # made now, so the first unknown account is no faster than the rest

    def set(self, agent_id: str, password: str, *, now: datetime | None = None) -> None:
        """Set or replace an agent's password. Raises NotFound / InputError."""
        at = self.dep.now(now)
        hashed = hash_password(password)
        a, c = schema.agents, schema.agent_credentials
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            if conn.execute(select(a.c.agent_id).where(a.c.issuer_id == self.dep.issuer_id,
                                                       a.c.agent_id == agent_id)).first() is None:
                raise NotFound(f"no agent {agent_id!r}")
            values = {"issuer_id": self.dep.issuer_id, "agent_id": agent_id,
                      "password_hash": hashed, "updated_at": to_epoch(at)}
            if not self.dep.store.insert_if_absent(conn, c, values):
                conn.execute(c.update().where(c.c.issuer_id == self.dep.issuer_id,
                                              c.c.agent_id == agent_id).values(**values))
            end_sign_ins(self.dep, conn, "agent", agent_id)  # a new password ends every sign-in
            self.dep.record(conn, events.AGENT_PASSWORD_SET, at, agent_id=agent_id)

    def check(self, agent_id: str, password: str) -> bool:
        """True when the password is the agent's and the agent is enabled."""
        a, c = schema.agents, schema.agent_credentials
        with self.dep.store.read() as conn:
            row = conn.execute(
                select(c.c.password_hash, a.c.enabled).join(
                    a, (a.c.issuer_id == c.c.issuer_id) & (a.c.agent_id == c.c.agent_id))
                .where(c.c.issuer_id == self.dep.issuer_id, c.c.agent_id == agent_id)).first()
        return password_matches(row.password_hash if row else None, password) and \
            bool(row is not None and row.enabled)
