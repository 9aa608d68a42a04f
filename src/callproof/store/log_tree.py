"""The audit log's Merkle tree in the store: the per-event append, and root and proof reads.

Every event the integrator (:mod:`callproof.store.integrator`) takes from the queue becomes leaf
``idx`` of its issuer's RFC 6962 tree (:func:`append_leaf`; like tessera's storage-level
``Integrate``, ADR 0012). The leaf is the event body; every complete node (``log_nodes``: level,
index → hash) is stored as soon as it exists, so an append reads at most O(log n) rows (none for an
even index), and roots and proofs read O(log n) rows too.

A :class:`CheckpointGuard`, handed to the store when the deployment opens it, refuses appends
while the database is behind the checkpoint file ``<data dir>/log/checkpoint`` or not
consistent with it (a restored backup would fork the tree). Signing checkpoints, witnesses and
export are :class:`callproof.audit.log.AuditLog`'s.

    >>> store = Store.open(url, append_guard=CheckpointGuard("shop.example", checkpoint_path))
    >>> with store.read() as conn:
    ...     root = root_at(conn, "shop.example", tree_size(conn, "shop.example"))
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, union_all

from callproof.errors import LogBehindCheckpoint, LogError, LogForked, NoteError, StoreError
from callproof.store import Store, schema
from callproof.tlog import merkle, note
from callproof.tlog.merkle import split_point
from callproof.tlog.proof import log_origin

__all__ = [
    "CheckpointGuard",
    "append_leaf",
    "consistency_proof",
    "inclusion_proof",
    "read_checkpoint_file",
    "root_at",
    "tree_size",
]

_N = schema.log_nodes

# --- appending: the hot path --------------------------------------------------------------------

# The append runs on the DBAPI cursor of the caller's transaction with SQL written once per
# dialect: through SQLAlchemy's execution layer it cost about four times as much (issuing a
# ticket is benchmarked; the log's share of it must stay small).
_SQL: dict[tuple[str, str, int], str] = {}


def _sql(dialect: str, kind: str, count: int) -> str:
    key = (dialect, kind, count)
    sql = _SQL.get(key)
    if sql is None:
        p = "?" if dialect == "sqlite" else "%s"  # only placeholders go into the SQL text
        if kind == "insert":
            row = f"({p}, {p}, {p}, {p})"
            sql = ("INSERT INTO log_nodes (issuer_id, level, idx, hash) VALUES "  # noqa: S608
                   + ", ".join([row] * count))
        else:
            # One indexed point lookup per node (an OR of them makes SQLite scan the issuer).
            one = f"SELECT level, hash FROM log_nodes WHERE issuer_id = {p} AND level = {p} AND idx = {p}"  # noqa: S608, E501
            sql = " UNION ALL ".join([one] * count)
        _SQL[key] = sql
    return sql


def append_leaf(store: Store, conn: Connection, issuer: str, idx: int, body: bytes) -> None:
    """Make ``body`` leaf ``idx`` of ``issuer``'s tree, inside the caller's write transaction.

    Called by the integrator (:func:`callproof.store.integrator.integrate_queued`, which asks the
    store's append guard first) for every event it gives ``idx``. Stores the leaf hash and every
    subtree it completes; reads only their left siblings (none when ``idx`` is even). Raises
    :class:`LogError` when the tree lacks a node, :class:`StoreError` when the database refuses.
    """
    # merkle.leaf_hash and merkle.node_hash, inlined: this runs for every event, and the calls
    # are a measurable share of it.
    h = hashlib.sha256(b"\x00" + body).digest()
    raw = conn.connection.dbapi_connection
    if raw is None:  # pragma: no cover - a connection inside a transaction always has one
        raise LogError("the database connection is closed")
    dialect = store.dialect
    cur = raw.cursor()
    try:
        _append(cur, dialect, issuer, idx, h)
    except store.engine.dialect.loaded_dbapi.Error as e:
        # The raw cursor's errors are the driver's own (sqlite3, psycopg), not SQLAlchemy's:
        # say them as the store says every database error.
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise StoreError(f"the audit log's tree could not be written at leaf {idx}: {first} "
                         f"({e.__class__.__name__})") from e
    finally:
        cur.close()


def _append(cur: Any, dialect: str, issuer: str, idx: int, h: bytes) -> None:
    """Store leaf hash ``h`` at ``idx`` and every subtree it completes, on the raw cursor."""
    if not idx & 1:  # a left child: no complete subtree ends here
        cur.execute(_sql(dialect, "insert", 1), (issuer, 0, idx, h))
        return
    ones = (~idx & (idx + 1)).bit_length() - 1  # trailing 1 bits: subtrees this completes
    params: list[Any] = []
    for k in range(ones):
        params += (issuer, k, (idx >> k) - 1)
    cur.execute(_sql(dialect, "select", ones), params)
    siblings = {int(level): bytes(value) for level, value in cur.fetchall()}
    row: list[Any] = [issuer, 0, idx, h]
    for k in range(ones):
        left = siblings.get(k)
        if left is None:
            raise LogError(f"the audit log of {issuer!r} lacks node ({k}, {(idx >> k) - 1}):"
                           " its tree is damaged")
        h = hashlib.sha256(b"\x01" + left + h).digest()  # merkle.node_hash(left, h)
        row += (issuer, k + 1, idx >> (k + 1), h)
    cur.execute(_sql(dialect, "insert", ones + 1), row)


class CheckpointGuard:
    """Refuses appends to ``issuer``'s log while the database's tree is behind the checkpoint
    file at ``path``, or forked from it; appends to other issuers' logs pass.

    The deployment hands one to its store (``Store.open(..., append_guard=…)``). Each queued
    event and each integrator batch stat()s the file; the file is read again when it changed,
    and the tree's root at the file's size is checked once per file version.
    """

    def __init__(self, issuer: str, path: Path) -> None:
        self.issuer = issuer
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._checkpoint: note.Checkpoint | None = None
        self._verified = False

    def __repr__(self) -> str:
        return f"CheckpointGuard({self.issuer!r}, {str(self.path)!r})"

    def check(self, conn: Connection, issuer: str, idx: int | None = None) -> None:
        """Raise :class:`LogBehindCheckpoint` or :class:`LogForked` to refuse appending leaf
        ``idx`` to ``issuer``'s tree. With ``idx`` None (a request queueing an event) the tree's
        size is read only when this version of the file has not been checked yet."""
        if issuer != self.issuer:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return  # no checkpoint signed yet
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._checkpoint = read_checkpoint_file(self.path, log_origin(self.issuer))
            self._stamp, self._verified = stamp, False
        cp = self._checkpoint
        assert cp is not None  # noqa: S101 - set above with its stamp
        if idx is None:
            if self._verified:
                return  # this file's size and root were found in the tree: it only grows
            idx = tree_size(conn, issuer)
        if idx < cp.size:
            raise LogBehindCheckpoint(
                f"the database's audit log has {idx} entries but the checkpoint in {self.path} "
                f"covers {cp.size}: the database is behind (a restored backup?). Appending "
                "would fork the log; restore the newest database instead")
        if not self._verified:
            if root_at(conn, self.issuer, cp.size) != cp.root:
                raise LogForked(
                    f"the database's audit log does not match the checkpoint in {self.path} at "
                    f"size {cp.size} (its root differs): refusing to append to a forked log")
            self._verified = True


def read_checkpoint_file(path: Path, origin: str) -> note.Checkpoint:
    """The checkpoint in a signed-note file (its signature is not checked here)."""
    try:
        text, _ = note.split_note(path.read_bytes())
        cp = note.Checkpoint.from_text(text)
    except (OSError, NoteError) as e:
        raise LogError(f"cannot read the log's checkpoint file {path}: {e}") from e
    if cp.origin != origin:
        raise LogError(f"{path} is a checkpoint of {cp.origin!r}, not of {origin!r}")
    return cp


# --- reading the tree ---------------------------------------------------------------------------


def tree_size(conn: Connection, issuer: str) -> int:
    """The number of leaves in ``issuer``'s tree."""
    last = conn.execute(select(func.max(_N.c.idx)).where(_N.c.issuer_id == issuer,
                                                          _N.c.level == 0)).scalar_one()
    return 0 if last is None else int(last) + 1


def root_at(conn: Connection, issuer: str, size: int) -> bytes:
    """MTH of the first ``size`` leaves of ``issuer``'s tree, from O(log n) stored nodes."""
    if size == 0:
        return merkle.EMPTY_ROOT
    root: bytes = _from_store(conn, issuer, lambda sub: sub(0, size))
    return root


def inclusion_proof(conn: Connection, issuer: str, index: int, size: int) -> list[bytes]:
    """:func:`callproof.tlog.merkle.inclusion_proof` of leaf ``index`` in the tree of ``size``,
    from stored nodes. Raises :class:`~callproof.errors.ProofError` for a bad index or size."""
    proof: list[bytes] = _from_store(
        conn, issuer, lambda sub: merkle.inclusion_proof(index, size, sub))
    return proof


def consistency_proof(conn: Connection, issuer: str, old_size: int, new_size: int) -> list[bytes]:
    """:func:`callproof.tlog.merkle.consistency_proof` from ``old_size`` to ``new_size``, from
    stored nodes."""
    proof: list[bytes] = _from_store(
        conn, issuer, lambda sub: merkle.consistency_proof(old_size, new_size, sub))
    return proof


def _is_node(start: int, end: int) -> int | None:
    """The level of the stored node that is exactly ``[start, end)``, or None."""
    width = end - start
    if width & (width - 1) == 0 and start % width == 0:
        return width.bit_length() - 1
    return None


def _needed(start: int, end: int, into: set[tuple[int, int]]) -> None:
    level = _is_node(start, end)
    if level is not None:
        into.add((level, start >> level))
        return
    mid = start + split_point(end - start)
    _needed(start, mid, into)
    _needed(mid, end, into)


def _mth(start: int, end: int, nodes: dict[tuple[int, int], bytes], issuer: str) -> bytes:
    level = _is_node(start, end)
    if level is not None:
        found = nodes.get((level, start >> level))
        if found is None:
            raise LogError(f"the audit log of {issuer!r} lacks node ({level}, {start >> level})")
        return found
    mid = start + split_point(end - start)
    return merkle.node_hash(_mth(start, mid, nodes, issuer), _mth(mid, end, nodes, issuer))


def _fetch(conn: Connection, issuer: str,
           keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    found: dict[tuple[int, int], bytes] = {}
    wanted = sorted(set(keys))
    for i in range(0, len(wanted), 100):  # one indexed point lookup per node, 100 a query
        query = union_all(*(select(_N.c.level, _N.c.idx, _N.c.hash).where(
            _N.c.issuer_id == issuer, _N.c.level == level, _N.c.idx == idx)
            for level, idx in wanted[i:i + 100]))
        for level, idx, value in conn.execute(query):
            found[(int(level), int(idx))] = bytes(value)
    return found


def _from_store(conn: Connection, issuer: str,
                build: Callable[[merkle.SubtreeHash], Any]) -> Any:
    """Run ``build`` twice: once to learn which ranges it needs, then with their stored hashes."""
    ranges: list[tuple[int, int]] = []

    def plan(start: int, end: int) -> bytes:
        ranges.append((start, end))
        return bytes(merkle.HASH_SIZE)

    build(plan)
    keys: set[tuple[int, int]] = set()
    for start, end in ranges:
        _needed(start, end, keys)
    nodes = _fetch(conn, issuer, keys)
    return build(lambda start, end: _mth(start, end, nodes, issuer))
