"""The networks each staff account signed in from, so that the per-account limit on failed
sign-ins does not lock an agent out of their own office.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_networks",
        sa.Column("name_hash", sa.String(64), primary_key=True),
        sa.Column("last_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sign_in_networks_last_at", "sign_in_networks", ["last_at"])


def downgrade() -> None:
    op.drop_table("sign_in_networks")
