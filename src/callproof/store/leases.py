"""Leases: which worker process runs each background duty of a deployment now.

A lease is one row ``(issuer, name) → (holder, expires_at, generation)``. A worker takes it, or
keeps it, with ONE conditional upsert — ``INSERT … ON CONFLICT DO UPDATE … WHERE`` the row is its
own or has expired, ``RETURNING generation`` — so no lock is held beyond that statement's row, and
two workers racing for a free lease cannot both win. ``expires_at`` is the database's clock in
milliseconds: hosts whose clocks disagree still agree on when a lease ends. The holder counts its
own deadline (:attr:`Lease.held`) on its monotonic clock from *before* it asked, so it stops
believing it holds the lease before the database lets anyone else take it. ``generation`` goes
up each time the lease changes hands: a fencing token a duty may check inside its transaction
(:func:`still_holds`).

    >>> lease = Lease(store, "shop.example", "log", holder=new_holder_id(), seconds=5)
    >>> if lease.acquire():          # taken, or renewed when it was ours already
    ...     while lease.held: ...     # stop at once when it is not
    >>> lease.release()               # another worker may take it now, not after it expires
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    and_,
    bindparam,
    case,
    literal_column,
    or_,
    select,
    update,
)

from callproof.errors import StoreError
from callproof.store import Store, schema

__all__ = ["Lease", "LeaseRow", "holders", "new_holder_id", "still_holds"]

_L = schema.leases


def new_holder_id() -> str:
    """A holder id for one worker process: the host and pid to read in logs, and a random part
    so that a restarted process (or a reused pid) is never mistaken for the old holder."""
    host = socket.gethostname().split(".")[0][:60] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(6)}"


def _now_ms(dialect: str) -> ColumnElement[Any]:
    """The database's clock, in integer milliseconds since the epoch."""
    if dialect == "postgresql":  # clock_timestamp(): now, not the transaction's start
        sql = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    else:
        sql = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
    return literal_column(sql, BigInteger)


@dataclass(frozen=True)
class LeaseRow:
    """A lease as the database holds it now: ``remaining`` seconds (negative once expired)."""

    name: str
    holder: str
    remaining: float
    generation: int

    @property
    def live(self) -> bool:
        return self.remaining > 0


class Lease:
    """One duty's lease as one worker process sees it. Thread-safe: the worker's keeper thread
    renews it (:meth:`renew`) while its duty thread reads :attr:`held`, takes or releases it."""

    def __init__(self, store: Store, issuer: str, name: str, *, holder: str,
                 seconds: float) -> None:
        if not 0.5 <= seconds <= 600:
            raise ValueError("a lease lasts 0.5–600 seconds")
        self.store = store
        self.issuer = issuer
        self.name = name
        self.holder = holder
        self.seconds = seconds
        self.generation: int | None = None
        self._deadline = 0.0  # time.monotonic() until which this process may act
        self._op = threading.Lock()  # one take, renewal or release at a time
        dialect = store.dialect
        self._upsert = _upsert(dialect)
        now = _now_ms(dialect)
        self._peek = select(_L.c.holder, (_L.c.expires_at - now).label("left")).where(
            _L.c.issuer_id == bindparam("l_issuer"), _L.c.name == bindparam("l_name"))
        self._release = update(_L).where(
            _L.c.issuer_id == bindparam("l_issuer"), _L.c.name == bindparam("l_name"),
            _L.c.holder == bindparam("l_holder")).values(expires_at=0)

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, held={self.held})"

    @property
    def held(self) -> bool:
        """True while this process may run the duty: the lease was taken or renewed less than
        ``seconds`` ago (by this process's clock, counted from before it asked)."""
        return time.monotonic() < self._deadline

    def remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if it is ours. True when held.

        A worker that does not hold it looks first (a read) and asks for it (a write) only when
        it has expired, so standby workers cost the database a read each poll. When the database
        cannot be reached, a held lease is kept until its deadline and no new one is taken.
        """
        with self._op:
            return self._acquire()

    def renew(self) -> bool:
        """Renew the lease only if it is held now (never takes it back after :meth:`release`)."""
        with self._op:
            return self._acquire() if self.held else False

    def _acquire(self) -> bool:
        started = time.monotonic()
        params = {"l_issuer": self.issuer, "l_name": self.name, "l_holder": self.holder}
        try:
            if not self.held:
                with self.store.read() as conn:
                    row = conn.execute(self._peek, params).first()
                if row is not None and row.holder != self.holder and row.left > 0:
                    return False
            with self.store.write() as conn:
                got = conn.execute(self._upsert, {
                    **params, "l_ms": int(self.seconds * 1000)}).scalar()
        except StoreError:
            return self.held
        if got is None:  # someone else holds it: stop at once
            self._deadline = 0.0
            return False
        self.generation = int(got)
        self._deadline = started + self.seconds
        return True

    def lose(self) -> None:
        """Stop acting under the lease now (without telling the database)."""
        self._deadline = 0.0

    def release(self) -> None:
        """Give the lease up now, so another worker need not wait for it to expire. Call it only
        once the duty has stopped."""
        with self._op:
            held = self.held
            self._deadline = 0.0
            if not held:
                return
            try:
                with self.store.write() as conn:
                    conn.execute(self._release, {"l_issuer": self.issuer, "l_name": self.name,
                                                 "l_holder": self.holder})
            except StoreError:
                pass  # it expires by itself


def _upsert(dialect: str) -> Any:
    """INSERT the lease, or take it over when it expired, or renew it when it is ours;
    RETURNING its generation (no row: another holder has it)."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = _now_ms(dialect)
    stmt: Any = insert(_L).values(issuer_id=bindparam("l_issuer"), name=bindparam("l_name"),
                             holder=bindparam("l_holder"), expires_at=now + bindparam("l_ms"),
                             generation=1)
    ours = _L.c.holder == stmt.excluded.holder
    return stmt.on_conflict_do_update(
        index_elements=[_L.c.issuer_id, _L.c.name],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at,
              "generation": case((ours, _L.c.generation), else_=_L.c.generation + 1)},
        where=or_(ours, _L.c.expires_at <= now),
    ).returning(_L.c.generation)


def still_holds(conn: Connection, dialect: str, issuer: str, name: str, holder: str,
                generation: int) -> bool:
    """Inside a transaction: does ``holder`` still hold the lease at ``generation``? A duty
    whose write must never land after its lease was taken over checks this before committing."""
    row = conn.execute(select(_L.c.name).where(and_(
        _L.c.issuer_id == issuer, _L.c.name == name, _L.c.holder == holder,
        _L.c.generation == generation, _L.c.expires_at > _now_ms(dialect)))).first()
    return row is not None


def holders(store: Store, issuer: str) -> list[LeaseRow]:
    """Every lease of ``issuer`` as the database holds it now, by name."""
    now = _now_ms(store.dialect)
    with store.read() as conn:
        rows = conn.execute(select(_L.c.name, _L.c.holder, (_L.c.expires_at - now).label("left"),
                                   _L.c.generation)
                            .where(_L.c.issuer_id == issuer).order_by(_L.c.name)).all()
    return [LeaseRow(r.name, r.holder, int(r.left) / 1000, int(r.generation)) for r in rows]
