"""The agent registry's names per language, and the language the customer's check page was in
when they claimed a ticket, and an index for an agent's recent calls (experience issue 14
items 3, 10 and 11).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_AGENT_COLUMNS = ("name_zh_hant", "name_zh_hans", "department_zh_hant", "department_zh_hans")


def upgrade() -> None:
    # Nullable columns: a plain ADD COLUMN on SQLite and PostgreSQL alike (no table copy).
    for column in _AGENT_COLUMNS:
        op.add_column("agents", sa.Column(column, sa.String(128)))
    op.add_column("tickets", sa.Column("claim_lang", sa.String(16)))
    # "Your recent calls" on the console: one agent's tickets, newest first.
    op.create_index("ix_tickets_agent_issued", "tickets", ["issuer_id", "agent_id", "issued_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_agent_issued", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("claim_lang")
    with op.batch_alter_table("agents") as batch:
        for column in _AGENT_COLUMNS:
            batch.drop_column(column)
