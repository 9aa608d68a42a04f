"""No deployment-wide lock: the event queue, sharded failed-lookup counts, the breaker's row.

Requests write events into ``event_queue``; the integrator moves them into ``events`` with their
leaf index and their leaf in the audit log's tree (ADR 0012). ``failed_lookups`` is per minute and
shard (the existing minutes are carried over as shard 0).
The breaker's one row is made here, so tripping it is one conditional UPDATE.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ISSUER = sa.String(255)
_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "event_queue",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("issuer_id", _ISSUER, nullable=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("ticket_id", _ID),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_event_queue_ticket", "event_queue", ["ticket_id"])
    conn = op.get_bind()
    old = sa.table("failed_lookups", sa.column("minute", sa.BigInteger),
                   sa.column("count", sa.Integer), sa.column("logged", sa.Boolean))
    kept = [dict(r._mapping) for r in conn.execute(sa.select(old))]
    op.drop_table("failed_lookups")
    new = op.create_table(
        "failed_lookups",
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("logged", sa.Boolean, nullable=False),
    )
    if kept:
        conn.execute(sa.insert(new), [{**row, "shard": 0} for row in kept])
    breaker = sa.table("breaker", sa.column("id", sa.Integer),
                       sa.column("open_until", sa.BigInteger),
                       sa.column("tripped_at", sa.BigInteger))
    if conn.execute(sa.select(breaker.c.id).where(breaker.c.id == 1)).first() is None:
        conn.execute(sa.insert(breaker).values(id=1, open_until=0, tripped_at=0))


def downgrade() -> None:
    op.drop_table("event_queue")
    op.drop_table("failed_lookups")
    op.create_table(
        "failed_lookups",
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("logged", sa.Boolean, nullable=False),
    )
