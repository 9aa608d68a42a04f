"""Idempotent issuing: one row per Idempotency-Key of an API key, kept 24 h (issue 12).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ISSUER = sa.String(255)
_ID = sa.String(64)
_HASH = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key_hash", _HASH, primary_key=True),
        sa.Column("issuer_id", _ISSUER, nullable=False),
        sa.Column("api_key", _ID, nullable=False),
        sa.Column("request_hash", _HASH, nullable=False),
        sa.Column("attempt", _HASH, nullable=False),
        sa.Column("ticket_id", _ID),
        sa.Column("sealed_code", sa.LargeBinary),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_expires", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
