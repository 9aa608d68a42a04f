"""The first schema: keys, agents, reasons, customers, tickets, live codes, events, counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ISSUER = sa.String(255)
_ID = sa.String(64)
_HASH = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("kid", _HASH, primary_key=True),
        sa.Column("x", _HASH, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("retired_at", sa.BigInteger),
        sa.Column("revoked_at", sa.BigInteger),
        sa.Column("compromised_at", sa.BigInteger),
    )
    op.create_table(
        "agents",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("agent_id", _ID, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("department", sa.String(128)),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "reasons",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("code", _ID, primary_key=True),
        sa.Column("text_en", sa.Text, nullable=False),
        sa.Column("text_zh_hant", sa.Text, nullable=False),
        sa.Column("text_zh_hans", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "customers",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("ref_hash", _HASH, primary_key=True),
        sa.Column("handle", _ID, nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tickets",
        sa.Column("ticket_id", _ID, primary_key=True),
        sa.Column("issuer_id", _ISSUER, nullable=False),
        sa.Column("kid", _HASH, nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("reason", _ID, nullable=False),
        sa.Column("handle", _ID),
        sa.Column("dst", sa.String(4)),
        sa.Column("phone_hash", _HASH),
        sa.Column("code_hash", _HASH, nullable=False),
        sa.Column("word_id", _ID, nullable=False),
        sa.Column("word_choices", sa.Text, nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("cause", sa.String(32)),
        sa.Column("claimed_by", _HASH),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("code_until", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("connected_at", sa.BigInteger),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_tickets_issuer_issued", "tickets", ["issuer_id", "issued_at"])
    op.create_index("ix_tickets_handle", "tickets", ["handle"])
    op.create_table(
        "live_codes",
        sa.Column("code_hash", _HASH, primary_key=True),
        sa.Column("ticket_id", _ID, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("ticket_id", _ID),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_events_ticket", "events", ["ticket_id"])
    op.create_table(
        "failed_lookups",
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("logged", sa.Boolean, nullable=False),
    )
    op.create_table(
        "client_failures",
        sa.Column("client_hash", _HASH, primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "breaker",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("open_until", sa.BigInteger, nullable=False),
        sa.Column("tripped_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("breaker", "client_failures", "failed_lookups", "events", "live_codes",
                  "tickets", "customers", "reasons", "agents", "signing_keys"):
        op.drop_table(table)
