"""Alembic's environment: migrations run on the connection `app.db.migrate` hands over."""
from __future__ import annotations

from alembic import context

from app.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand: use app.db.migrate (python -m app migrate) instead
    raise RuntimeError("run migrations with `python -m app migrate`, which knows DATABASE_URL")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
context.run_migrations()
