"""The integrator: queued events become leaves of their issuers' audit-log trees, in batches.

Requests only queue their events (:func:`callproof.store.events.append`). One integrator at a
time — a transaction holding the ``integrator`` lock, which nothing else takes, and which a
second integrator does not wait for — takes the oldest queued events in queue order, gives each
the next leaf index of its issuer, writes it to ``events`` and its leaf and completed subtrees to
the tree (:func:`~callproof.store.log_tree.append_leaf`), and deletes it from the queue, all in one
transaction. Like tessera's ``Integrate``: sequencing apart from the request, integration in
batches. Signing the checkpoint over the result is :class:`callproof.audit.log.AuditLog`'s.

    >>> integrate_queued(store)            # how many events became leaves (0: none, or busy)
    412
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select

from callproof.store import Store, schema
from callproof.store.log_tree import append_leaf

__all__ = ["INTEGRATOR_LOCK", "integrate_all", "integrate_queued", "queued"]

#: The named lock only the integrator takes (Store.write_if_free).
INTEGRATOR_LOCK = "integrator"
#: Events taken in one transaction: large enough to amortise it, small enough to stay short.
BATCH = 2000

_Q, _E = schema.event_queue, schema.events
_TAKE = select(_Q.c.seq, _Q.c.issuer_id, _Q.c.type, _Q.c.at, _Q.c.ticket_id, _Q.c.body) \
    .order_by(_Q.c.seq).limit(bindparam("limit"))
_INSERT = insert(_E)
_DELETE = delete(_Q).where(_Q.c.seq.in_(bindparam("seqs", expanding=True)))


def integrate_queued(store: Store, *, limit: int = BATCH) -> int:
    """Integrate up to ``limit`` queued events, oldest first; return how many.

    Returns 0 at once when another integrator holds the lock. Raises what the store's append
    guard raises when the database is behind or forked from the log's checkpoint file (nothing
    is integrated then), and :class:`~callproof.errors.StoreError` when the database fails.
    """
    with store.write_if_free(INTEGRATOR_LOCK) as conn:
        if conn is None:
            return 0
        rows = conn.execute(_TAKE, {"limit": limit}).all()
        if not rows:
            return 0
        sizes: dict[str, int] = {}
        integrated: list[dict[str, Any]] = []
        for row in rows:
            issuer = row.issuer_id
            if issuer not in sizes:
                sizes[issuer] = _size(conn, issuer)
                if store.append_guard is not None:  # once per issuer and batch: leaves only grow
                    store.append_guard.check(conn, issuer, sizes[issuer])
            idx = sizes[issuer]
            sizes[issuer] = idx + 1
            body = bytes(row.body)
            append_leaf(store, conn, issuer, idx, body)
            integrated.append({"issuer_id": issuer, "idx": idx, "type": row.type, "at": row.at,
                               "ticket_id": row.ticket_id, "body": body})
        conn.execute(_INSERT, integrated)
        conn.execute(_DELETE, {"seqs": [row.seq for row in rows]})
        return len(rows)


def queued(conn: Connection) -> dict[str, int]:
    """How many events wait in the queue, per issuer."""
    return {issuer: int(n) for issuer, n in conn.execute(
        select(_Q.c.issuer_id, func.count()).group_by(_Q.c.issuer_id))}


def _size(conn: Connection, issuer: str) -> int:
    last = conn.execute(select(func.max(_E.c.idx)).where(_E.c.issuer_id == issuer)).scalar()
    return 0 if last is None else int(last) + 1




def integrate_all(store: Store, *, limit: int = BATCH, rounds: int = 100) -> int:
    """Integrate batch after batch until the queue is empty, another integrator holds the lock,
    or ``rounds`` batches were taken (so a flood cannot keep one caller forever); return how
    many events were integrated."""
    total = 0
    for _ in range(rounds):
        n = integrate_queued(store, limit=limit)
        total += n
        if n < limit:
            break
    return total
