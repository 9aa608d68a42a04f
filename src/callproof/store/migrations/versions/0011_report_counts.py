"""Scam reports per client address and network per hour, for the report form's limits
(hardening issue 13 item 3).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_counts",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("report_counts")
