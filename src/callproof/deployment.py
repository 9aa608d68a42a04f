"""What every service shares: the config, the store, the keyed hashes, the clock.

Opening a deployment hands its store the guard that checks each audit-log append against the
log's checkpoint file (:class:`callproof.store.log_tree.CheckpointGuard`).

    >>> dep = Deployment.open("callproof-data")
    >>> with dep.store.write() as conn:
    ...     dep.record(conn, events.AGENT_ADDED, dep.now(), agent_id="a1")
"""

from __future__ import annotations

import functools
import os
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from callproof.config import Config, DataDir
from callproof.protocol.clock import Clock, SystemClock, from_epoch, require_aware
from callproof.protocol.keys import KeySet, TicketKey
from callproof.protocol.privacy import HashKeys
from callproof.store import Store, schema
from callproof.store import events as event_record
from callproof.store.log_tree import CheckpointGuard


class Deployment:
    """One opened data dir. Services hold one; it holds no private key."""

    def __init__(self, data_dir: DataDir, config: Config, store: Store, hash_keys: HashKeys,
                 clock: Clock) -> None:
        self.data_dir = data_dir
        self.config = config
        self.store = store
        self.hash_keys = hash_keys
        self.clock = clock

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str] | DataDir | None = None, *,
             clock: Clock | None = None) -> Deployment:
        """Open a data dir made by ``callproof init``. Raises ConfigError / StoreError."""
        dd = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
        config = dd.load()
        hash_keys = HashKeys(dd.hash_key())
        # Every append through this store checks the log's checkpoint file (store.log_tree).
        store = Store.open(config.database_url, append_guard=CheckpointGuard(
            config.issuer_id, dd.log_checkpoint_file))
        return cls(dd, config, store, hash_keys, clock or SystemClock())

    def __repr__(self) -> str:
        return f"Deployment({self.data_dir!r}, issuer={self.issuer_id!r})"

    @property
    def issuer_id(self) -> str:
        return self.config.issuer_id

    def now(self, now: datetime | None = None) -> datetime:
        return require_aware(now) if now is not None else self.clock.now()

    def record(self, conn: Connection, type: str, at: datetime, *, ticket_id: str | None = None,
               **data: Any) -> None:
        """Queue an event for this issuer inside the caller's write transaction (it becomes a
        leaf of the audit log when the integrator takes it)."""
        event_record.append(self.store, conn, issuer=self.issuer_id, type=type, at=at,
                                   ticket_id=ticket_id, **data)

    def keyset(self, conn: Connection) -> KeySet:
        """The issuer's keys as the database holds them now (revocations act at once)."""
        return _keyset(conn, _KEYS, self.issuer_id)

    def key_history(self, conn: Connection) -> KeySet:
        """Every ticket key the issuer ever had, oldest first (by creation time, then kid): what
        the audit log exports as its history JWKS."""
        return _keyset(conn, _KEY_HISTORY, self.issuer_id)


_KEYS = select(schema.signing_keys).where(schema.signing_keys.c.issuer_id == bindparam("issuer"))
_KEY_HISTORY = _KEYS.order_by(schema.signing_keys.c.created_at, schema.signing_keys.c.kid)


def _keyset(conn: Connection, query: Select[Any], issuer: str) -> KeySet:
    rows = conn.execute(query, {"issuer": issuer}).all()
    return KeySet(_key(r.kid, r.x, r.status, r.created_at, r.retired_at, r.revoked_at,
                       r.compromised_at) for r in rows)


@functools.lru_cache(maxsize=256)
def _key(kid: str, x: str, status: str, created: int | None, retired: int | None,
         revoked: int | None, compromised: int | None) -> TicketKey:
    """A key row as a TicketKey; cached by the row's exact values, so a change is seen at once."""

    def at(v: int | None) -> datetime | None:
        return from_epoch(v) if v is not None else None

    return TicketKey(kid=kid, x=x, status=status, created_at=at(created), retired_at=at(retired),
                     revoked_at=at(revoked), compromised_at=at(compromised))
