"""Alembic environment: migrations run on the engine that Racetrack hands over in code."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from racetrack_core.storage import models  # noqa: F401  (registers the tables)

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
