"""Workers and shared keys: the duties' leases, the active ticket key's private half in the
database, at most one active key per issuer.

``leases`` gives each background duty to one `callproof worker` at a time (store/leases.py).
``signing_key_secrets`` holds the active ticket signing key's PKCS#8 PEM, encrypted under
CALLPROOF_KEY_PASSPHRASE, so every instance signs with the same key (ADR 0011); keys still in
``keys/<kid>.pem`` files are copied in when they are first used, or by `callproof init`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ISSUER = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "signing_key_secrets",
        sa.Column("issuer_id", _ISSUER, primary_key=True),
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("pem", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    active = sa.text("status = 'active'")
    op.create_index("uq_signing_keys_one_active", "signing_keys", ["issuer_id"], unique=True,
                    sqlite_where=active, postgresql_where=active)


def downgrade() -> None:
    op.drop_index("uq_signing_keys_one_active", table_name="signing_keys")
    op.drop_table("signing_key_secrets")
    op.drop_table("leases")
