"""The fraud desk: its users' sign-in and the alert webhook's outbox.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ISSUER = sa.String(255)
_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "desk_users",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("user_id", _ID, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("queued_at", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger),
        sa.Column("gave_up", sa.Boolean, nullable=False),
        sa.Column("last_status", sa.Integer),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries",
                    ["issuer_id", "delivered_at", "gave_up", "next_attempt_at"])
    op.create_table(
        "webhook_cursor",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("last_idx", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("webhook_cursor", "webhook_deliveries", "desk_users"):
        op.drop_table(table)
