"""The voice line (issue 15): agents' transfer targets and team queues, and webhook calls'
state between requests.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_routes",
        sa.Column("issuer_id", sa.String(255), primary_key=True),
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("transfer_target", sa.String(255)),
        sa.Column("queue", sa.String(255)),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "voice_calls",
        sa.Column("call_hash", sa.String(64), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_voice_calls_expires", "voice_calls", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_voice_calls_expires", "voice_calls")
    op.drop_table("voice_calls")
    op.drop_table("agent_routes")
