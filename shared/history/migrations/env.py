"""Alembic environment of the history store: run on the connection ``store.migrate`` hands
over (``config.attributes["connection"]``), against ``schema.metadata``."""

from __future__ import annotations

from alembic import context

from shared.history.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
