"""The integrator: queued events become leaves of their issuers' audit-log trees, in batches.

Requests only queue their events (:func:`callproof.store.events.append`). One integrator at a
time — a transaction holding the ``integrator`` lock, which nothing else takes, and which a
second integrator does not wait for — takes the oldest queued events in queue order, gives each
the next leaf index of its issuer, writes it to ``events`` and its leaf and completed subtrees to
the tree (:func:`~callproof.store.log_tree.new_nodes`: the tree's right edge read once per issuer
and batch, the new nodes computed in memory), and deletes it from the queue, all in one
transaction, with one statement for each of those writes whatever the batch's size (on
PostgreSQL the three in one round trip). Like tessera's ``Integrate``: sequencing apart from
the request, integration in batches. Signing the checkpoint over the result is
:class:`callproof.audit.log.AuditLog`'s.

    >>> integrate_queued(store)            # how many events became leaves (0: none, or busy)
    412
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from callproof.store import Store, schema
from callproof.store.log_tree import NODE_COLUMNS, insert_rows, new_nodes, raw_cursor

__all__ = ["INTEGRATOR_LOCK", "integrate_all", "integrate_queued", "queued"]

#: The named lock only the integrator takes (Store.write_if_free).
INTEGRATOR_LOCK = "integrator"
#: Events taken in one transaction: large enough to amortise it, small enough to stay short.
BATCH = 2000

_Q, _E = schema.event_queue, schema.events
_TAKE = select(_Q.c.seq, _Q.c.issuer_id, _Q.c.type, _Q.c.at, _Q.c.ticket_id, _Q.c.body) \
    .order_by(_Q.c.seq).limit(bindparam("limit"))
_EVENT_COLUMNS = (("issuer_id", "text"), ("idx", "bigint"), ("type", "text"), ("at", "bigint"),
                  ("ticket_id", "text"), ("body", "bytea"))


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
        # Each issuer's share of the batch, in queue order: its next leaf indices, contiguous.
        shares: dict[str, list[Any]] = {}
        for row in rows:
            shares.setdefault(row.issuer_id, []).append(row)
        integrated: list[tuple[Any, ...]] = []
        nodes: list[tuple[Any, ...]] = []
        for issuer, share in shares.items():
            size = _size(conn, issuer)
            if store.append_guard is not None:  # once per issuer and batch: leaves only grow
                store.append_guard.check(conn, issuer, size)
            bodies = [bytes(row.body) for row in share]
            nodes += new_nodes(store, conn, issuer, size, bodies)
            integrated += ((issuer, idx, row.type, row.at, row.ticket_id, body)
                           for idx, (row, body) in enumerate(zip(share, bodies, strict=True),
                                                              size))
        seqs = [row.seq for row in rows]
        with raw_cursor(store, conn, "the integrated events could not be stored") as cur:
            if store.dialect == "postgresql":
                # Three statements, one round trip (psycopg's pipeline mode); each statement's
                # text is constant (arrays as binary parameters), so it is parsed once.
                with cur.connection.pipeline():
                    insert_rows(cur, store.dialect, "log_nodes", NODE_COLUMNS, nodes)
                    insert_rows(cur, store.dialect, "events", _EVENT_COLUMNS, integrated)
                    cur.execute("DELETE FROM event_queue WHERE seq = ANY(%b::bigint[])", [seqs])
            else:
                insert_rows(cur, store.dialect, "log_nodes", NODE_COLUMNS, nodes)
                insert_rows(cur, store.dialect, "events", _EVENT_COLUMNS, integrated)
                cur.executemany("DELETE FROM event_queue WHERE seq = ?", [(s,) for s in seqs])
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
