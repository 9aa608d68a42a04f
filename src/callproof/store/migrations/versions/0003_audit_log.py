"""The audit log's tree nodes and signed checkpoints; the tree is built for existing events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ISSUER = sa.String(255)
_BATCH = 5000


def upgrade() -> None:
    nodes = op.create_table(
        "log_nodes",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("signed_at", sa.BigInteger, nullable=False),
    )
    _build_existing_trees(op.get_bind(), nodes)


def _build_existing_trees(conn: sa.Connection, nodes: sa.Table) -> None:
    """Every complete node of each issuer's tree over the events already recorded."""
    events = sa.table("events", sa.column("issuer_id", _ISSUER), sa.column("idx", sa.BigInteger),
                      sa.column("body", sa.LargeBinary))
    issuers = [i for (i,) in conn.execute(sa.select(events.c.issuer_id).distinct())]
    for issuer in issuers:
        stack: list[bytes] = []  # the hashes of the complete subtrees on the right edge
        expected = 0
        while True:
            batch = conn.execute(
                sa.select(events.c.idx, events.c.body)
                .where(events.c.issuer_id == issuer, events.c.idx >= expected,
                       events.c.idx < expected + _BATCH)
                .order_by(events.c.idx)).all()
            if not batch:
                break
            rows: list[dict[str, object]] = []
            for idx, body in batch:
                if idx != expected:
                    raise RuntimeError(f"events of {issuer!r} are not contiguous at {expected}")
                expected += 1
                h = hashlib.sha256(b"\x00" + bytes(body)).digest()
                rows.append({"issuer_id": issuer, "level": 0, "idx": idx, "hash": h})
                level = 0
                while (idx >> level) & 1:
                    h = hashlib.sha256(b"\x01" + stack.pop() + h).digest()
                    level += 1
                    rows.append({"issuer_id": issuer, "level": level, "idx": idx >> level,
                                 "hash": h})
                stack.append(h)
            conn.execute(sa.insert(nodes), rows)


def downgrade() -> None:
    for table in ("log_checkpoints", "log_nodes"):
        op.drop_table(table)
