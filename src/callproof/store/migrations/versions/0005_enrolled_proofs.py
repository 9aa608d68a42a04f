"""Enrolled proofs: sealed authenticator-app secrets and phrases, enrolment tokens, reveals.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ISSUER = sa.String(255)
_ID = sa.String(64)
_HASH = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "enrolled_proofs",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("handle", _ID, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("confirmed", sa.Boolean, nullable=False),
        sa.Column("last_step", sa.BigInteger),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "enrollment_tokens",
        sa.Column("token_hash", _HASH, primary_key=True),
        sa.Column("issuer_id", _ISSUER, nullable=False),
        sa.Column("handle", _ID, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger),
    )
    op.create_index("ix_enrollment_tokens_handle", "enrollment_tokens", ["handle"])
    op.create_table(
        "reveals",
        sa.Column("reveal_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("issuer_id", _ISSUER, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("handle", _ID),
        sa.Column("ticket_id", _ID, nullable=False),
    )
    op.create_index("ix_reveals_agent", "reveals", ["issuer_id", "agent_id", "at"])
    op.create_index("ix_reveals_handle", "reveals", ["issuer_id", "handle", "at"])


def downgrade() -> None:
    for table in ("reveals", "enrollment_tokens", "enrolled_proofs"):
        op.drop_table(table)
