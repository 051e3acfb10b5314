"""Alembic environment: evalcore always passes an open connection in `config.attributes`."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import evalcore.store.tables  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - evalcore never runs alembic without one
    raise RuntimeError("evalcore migrations run through evalcore.store.engine.migrate()")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
