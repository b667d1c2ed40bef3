"""Alembic environment: always run with a connection handed in by :mod:`node.store.migrate`."""

from __future__ import annotations

from alembic import context

from node.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when alembic's CLI is used directly
    raise RuntimeError("run migrations through `enlace db upgrade`, which supplies a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
