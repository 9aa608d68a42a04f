"""Staff sign-ins kept in the database, so that signing out, a new password or ``disable`` ends
them at once (hardening issue 13, items 6–8).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_ins",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("issuer_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text),
    )
    op.create_index("ix_sign_ins_user", "sign_ins", ["issuer_id", "kind", "user_id"])


def downgrade() -> None:
    op.drop_table("sign_ins")
