"""The verifier app's tables: issuer API keys, agents' console passwords, scam reports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ISSUER = sa.String(255)
_ID = sa.String(64)
_HASH = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", _ID, primary_key=True),
        sa.Column("issuer_id", _ISSUER, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("secret_hash", _HASH, nullable=False),
        sa.Column("scopes", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
    )
    op.create_table(
        "agent_credentials",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("agent_id", _ID, primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "scam_reports",
        sa.Column("report_id", _ID, primary_key=True),
        sa.Column("issuer_id", _ISSUER, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("caller_number", sa.String(32)),
        sa.Column("scripts", sa.String(255), nullable=False),
        sa.Column("text", sa.Text),
    )
    op.create_index("ix_scam_reports_issuer_at", "scam_reports", ["issuer_id", "at"])


def downgrade() -> None:
    for table in ("scam_reports", "agent_credentials", "api_keys"):
        op.drop_table(table)
