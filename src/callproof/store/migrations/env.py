"""Alembic environment: callproof runs migrations itself, on a connection it passes in."""

from __future__ import annotations

from alembic import context

from callproof.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` command line
    raise RuntimeError("callproof runs its migrations through `callproof init` / Store.open")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
