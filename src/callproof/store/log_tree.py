"""The audit log's Merkle tree in the store: appending leaves in batches, and root and proof reads.

Every event the integrator (:mod:`callproof.store.integrator`) takes from the queue becomes leaf
``idx`` of its issuer's RFC 6962 tree (:func:`new_nodes`, :func:`append_leaves`; like tessera's
storage-level ``Integrate``, ADR 0012). The leaf is the event body; every complete node
(``log_nodes``: level, index → hash) is stored as soon as it exists, so a batch of appends reads
only the tree's right edge (at most log2 n rows), and roots and proofs read O(log n) rows too.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
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
    "append_leaves",
    "consistency_proof",
    "inclusion_proof",
    "insert_rows",
    "new_nodes",
    "raw_cursor",
    "read_checkpoint_file",
    "root_at",
    "tree_size",
]

_N = schema.log_nodes

# --- appending: the hot path --------------------------------------------------------------------

# The integrator's writes run on the DBAPI cursor of its transaction with SQL written once per
# dialect: through SQLAlchemy's execution layer they cost several times as much.
_SQL: dict[tuple[str, int], str] = {}


def _select_nodes_sql(dialect: str, count: int) -> str:
    """``count`` indexed point lookups of (level, hash) by issuer, level and idx, in one
    statement (an OR of them makes SQLite scan the issuer)."""
    key = (dialect, count)
    sql = _SQL.get(key)
    if sql is None:
        p = "?" if dialect == "sqlite" else "%s"  # only placeholders go into the SQL text
        one = f"SELECT level, hash FROM log_nodes WHERE issuer_id = {p} AND level = {p} AND idx = {p}"  # noqa: S608, E501
        sql = _SQL[key] = " UNION ALL ".join([one] * count)
    return sql


def append_leaf(store: Store, conn: Connection, issuer: str, idx: int, body: bytes) -> None:
    """Make ``body`` leaf ``idx`` of ``issuer``'s tree, inside the caller's write transaction:
    :func:`append_leaves` with one leaf."""
    append_leaves(store, conn, issuer, idx, [body])


def append_leaves(store: Store, conn: Connection, issuer: str, start: int,
                  bodies: Sequence[bytes]) -> None:
    """Make ``bodies`` leaves ``start``, ``start + 1``, … of ``issuer``'s tree, inside the
    caller's write transaction (``start`` is the tree's size): :func:`new_nodes`, then one
    :func:`insert_rows` of them. Raises :class:`LogError` when the tree lacks a node of its
    right edge, :class:`StoreError` when the database refuses."""
    rows = new_nodes(store, conn, issuer, start, bodies)
    with raw_cursor(store, conn, f"the audit log's tree could not be written at leaf {start}") \
            as cur:
        insert_rows(cur, store.dialect, "log_nodes", NODE_COLUMNS, rows)


def new_nodes(store: Store, conn: Connection, issuer: str, start: int,
              bodies: Sequence[bytes]) -> list[tuple[str, int, int, bytes]]:
    """The ``log_nodes`` rows (in :data:`NODE_COLUMNS` order) that make ``bodies`` leaves
    ``start``, ``start + 1``, … of ``issuer``'s tree of ``start`` leaves: each leaf hash and
    every subtree the leaves complete.

    The integrator (:func:`callproof.store.integrator.integrate_queued`, which asks the store's
    append guard first) calls it for each issuer's share of a batch and inserts the rows with
    the batch's events. It reads the tree's right edge once — the at most log2(start) complete
    subtrees the new leaves' parents need — and folds the leaves into it in memory: one read per
    batch instead of one or two statements per leaf. Raises :class:`LogError` when the tree
    lacks a node of its right edge, :class:`StoreError` when the database refuses.
    """
    if not bodies:
        return []
    with raw_cursor(store, conn, f"the audit log's tree could not be read at size {start}") \
            as cur:
        edge = _right_edge(cur, store.dialect, issuer, start)
    return _fold(edge, issuer, start, bodies)


#: The columns of ``log_nodes`` (name, PostgreSQL type), for :func:`insert_rows`.
NODE_COLUMNS = (("issuer_id", "text"), ("level", "int"), ("idx", "bigint"), ("hash", "bytea"))


@contextmanager
def raw_cursor(store: Store, conn: Connection, what: str) -> Iterator[Any]:
    """A DBAPI cursor of ``conn``'s transaction; the driver's errors as :class:`StoreError`
    saying ``what`` failed (the raw cursor's errors are the driver's own — sqlite3, psycopg —
    not SQLAlchemy's)."""
    raw = conn.connection.dbapi_connection
    if raw is None:  # pragma: no cover - a connection inside a transaction always has one
        raise LogError("the database connection is closed")
    cur = raw.cursor()
    try:
        yield cur
    except store.engine.dialect.loaded_dbapi.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise StoreError(f"{what}: {first} ({e.__class__.__name__})") from e
    finally:
        cur.close()


def insert_rows(cur: Any, dialect: str, table: str, columns: Sequence[tuple[str, str]],
                rows: Sequence[Sequence[Any]]) -> None:
    """INSERT ``rows`` (tuples in the order of ``columns``: name and PostgreSQL type) into
    ``table`` on a raw cursor: in one statement of constant text on PostgreSQL (``unnest`` of
    one binary array per column: the text is parsed once, whatever the number of rows), by the
    driver's C
    ``executemany`` on SQLite."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    if dialect == "postgresql":
        # %b: binary parameters (psycopg's text-format arrays escape every element in Python).
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in columns)
        cur.execute(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})",  # noqa: S608
                    [list(column) for column in zip(*rows, strict=True)])
    else:
        marks = ", ".join("?" * len(columns))
        cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608


def _right_edge(cur: Any, dialect: str, issuer: str, size: int) -> dict[tuple[int, int], bytes]:
    """The complete subtrees on the right edge of the tree of ``size`` leaves — ``(k, (size >>
    k) − 1)`` for each 1 bit ``k`` of ``size`` — read in one statement; the left siblings of
    every node the next leaves complete are among them or among those leaves' own."""
    wanted = [(k, (size >> k) - 1) for k in range(size.bit_length()) if size >> k & 1]
    if not wanted:
        return {}
    params: list[Any] = []
    for level, idx in wanted:
        params += (issuer, level, idx)
    cur.execute(_select_nodes_sql(dialect, len(wanted)), params)
    found = {int(level): bytes(value) for level, value in cur.fetchall()}
    edge = {}
    for level, idx in wanted:
        value = found.get(level)
        if value is None:
            raise LogError(f"the audit log of {issuer!r} lacks node ({level}, {idx}):"
                           " its tree is damaged")
        edge[(level, idx)] = value
    return edge


def _fold(nodes: dict[tuple[int, int], bytes], issuer: str, start: int,
          bodies: Sequence[bytes]) -> list[tuple[str, int, int, bytes]]:
    """The ``log_nodes`` rows of leaves ``start``… and of every subtree they complete, given
    the right edge in ``nodes`` (which this extends with them)."""
    sha256 = hashlib.sha256
    rows: list[tuple[str, int, int, bytes]] = []
    for idx, body in enumerate(bodies, start):
        # merkle.leaf_hash and merkle.node_hash, inlined: this runs for every event.
        h = sha256(b"\x00" + body).digest()
        nodes[(0, idx)] = h
        rows.append((issuer, 0, idx, h))
        level, i = 0, idx
        while i & 1:  # a right child: it completes its parent
            h = sha256(b"\x01" + nodes[(level, i - 1)] + h).digest()
            level, i = level + 1, i >> 1
            nodes[(level, i)] = h
            rows.append((issuer, level, i, h))
    return rows


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
