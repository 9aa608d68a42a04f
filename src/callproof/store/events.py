"""Appending events and reading them back: the event record's storage.

A request appends its events inside its own write transaction, together with the change they
record, into the event queue: durable at commit, with no lock beyond the row it inserts. The
integrator (:mod:`callproof.store.integrator`) later moves them, in queue order, into ``events``
with their leaf index, and into the audit log's Merkle tree (ADR 0012).

    >>> append(store, conn, issuer="shop.example", type=TICKET_CLAIMED, at=now, ticket_id=tid)
    >>> read_events(conn, "shop.example", ticket_id=tid)   # integrated first, then queued
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, literal, select, union_all

from callproof.protocol.clock import to_epoch
from callproof.protocol.events import EVENT_TYPES, Event
from callproof.store import Store, schema

_Q, _E = schema.event_queue, schema.events
_APPEND = insert(_Q)


def append(store: Store, conn: Connection, *, issuer: str, type: str, at: datetime,
           ticket_id: str | None = None, **data: Any) -> None:
    """Append one event to the queue inside the caller's write transaction.

    Raises ``ValueError`` for an unknown event type, and what the store's append guard raises
    while the database is behind or forked from the log's checkpoint file (nothing confirms what
    the log would refuse to hold). The event gets its leaf index when the integrator takes it
    (:func:`callproof.store.integrator.integrate_queued`).
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    if store.append_guard is not None:
        store.append_guard.check(conn, issuer)
    if ticket_id is not None:
        data["ticket_id"] = ticket_id
    event = Event(type=type, issuer=issuer, at=to_epoch(at), data=data)
    conn.execute(_APPEND, {"issuer_id": issuer, "type": type, "at": event.at,
                           "ticket_id": ticket_id, "body": event.to_bytes()})
    conn.info[_QUEUED_IN] = conn.get_transaction()


# The transaction that last queued an event on a connection (``Connection.info`` outlives
# transactions, so the transaction object itself is kept, not a flag).
_QUEUED_IN = "callproof_events_queued_in"


def queued_in_this_transaction(conn: Connection) -> bool:
    """Whether the current transaction of ``conn`` queued an event (:func:`append`): then its
    commit must be durable before it is acknowledged."""
    return conn.info.get(_QUEUED_IN) is not None and \
        conn.info.get(_QUEUED_IN) is conn.get_transaction()


def read_events(conn: Connection, issuer: str, *, ticket_id: str | None = None,
                start: int = 0) -> list[Event]:
    """The issuer's events in order (optionally one ticket's), parsed from their bodies: those
    integrated into the log from leaf ``start`` on, by leaf index, then those still queued, in
    queue order. A ticket's own events are in causal order either way."""
    done = select(literal(0).label("part"), _E.c.idx.label("pos"), _E.c.body) \
        .where(_E.c.issuer_id == issuer, _E.c.idx >= start)
    queued = select(literal(1).label("part"), _Q.c.seq.label("pos"), _Q.c.body) \
        .where(_Q.c.issuer_id == issuer)
    if ticket_id is not None:
        done = done.where(_E.c.ticket_id == ticket_id)
        queued = queued.where(_Q.c.ticket_id == ticket_id)
    # One statement, so one snapshot: an event the integrator moves meanwhile is seen once.
    both = union_all(done, queued).subquery()
    rows = conn.execute(select(both.c.body).order_by(both.c.part, both.c.pos))
    return [Event.from_bytes(bytes(b)) for (b,) in rows]
