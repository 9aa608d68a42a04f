"""Appending events and reading them back: the event record's storage.

Each event is written inside the caller's write transaction, together with the change it records
and its leaf in the audit log's Merkle tree (:func:`callproof.store.log_tree.append_leaf`); its
index is contiguous per issuer.

    >>> append(store, conn, issuer="shop.example", type=TICKET_CLAIMED, at=now, ticket_id=tid)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, LargeBinary, String, bindparam, func, insert, select

from callproof.protocol.clock import to_epoch
from callproof.protocol.events import EVENT_TYPES, Event
from callproof.store import Store, schema
from callproof.store.log_tree import append_leaf


def append(store: Store, conn: Connection, *, issuer: str, type: str, at: datetime,
           ticket_id: str | None = None, **data: Any) -> int:
    """Append one event inside the caller's write transaction; returns its index."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    if ticket_id is not None:
        data["ticket_id"] = ticket_id
    event = Event(type=type, issuer=issuer, at=to_epoch(at), data=data)
    body = event.to_bytes()
    idx: int = conn.execute(_APPEND, {"issuer": issuer, "type": type, "at": event.at,
                                      "ticket_id": ticket_id, "body": body}).scalar_one()
    append_leaf(store, conn, issuer, idx, body)  # the leaf of the audit log, same transaction
    return idx


# One statement, built once: the next index is taken and used in the same INSERT, under the
# writer lock that the caller's transaction holds (ADR 0005), so indices stay contiguous.
_E = schema.events
_APPEND = insert(_E).from_select(
    ["issuer_id", "idx", "type", "at", "ticket_id", "body"],
    select(bindparam("issuer", type_=String), func.coalesce(func.max(_E.c.idx) + 1, 0),
           bindparam("type", type_=String), bindparam("at", type_=BigInteger),
           bindparam("ticket_id", type_=String), bindparam("body", type_=LargeBinary))
    .where(_E.c.issuer_id == bindparam("issuer", type_=String)),
).returning(_E.c.idx)


def read_events(conn: Connection, issuer: str, *, ticket_id: str | None = None,
                start: int = 0) -> list[Event]:
    """The issuer's events in order (optionally one ticket's), parsed from their bodies."""
    query = select(schema.events.c.body).where(schema.events.c.issuer_id == issuer,
                                               schema.events.c.idx >= start)
    if ticket_id is not None:
        query = query.where(schema.events.c.ticket_id == ticket_id)
    return [Event.from_bytes(bytes(b)) for (b,) in conn.execute(query.order_by(
        schema.events.c.idx))]
