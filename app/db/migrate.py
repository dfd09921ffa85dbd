"""Bring the database's schema to the latest revision (Alembic, app/db/migrations), once per start.

`python -m app`, `python -m app worker` and `python -m app migrate` (Heroku's release phase) all call
`upgrade`; it is idempotent. Two processes starting at once: on PostgreSQL the first takes a
transaction-level advisory lock and migrates inside that transaction (PostgreSQL's DDL is
transactional), the other waits for the lock and then finds the schema current; on SQLite the
migration's transaction is BEGIN IMMEDIATE, which does the same. A failed migration leaves the schema
as it was and raises (the process does not start).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from .engine import UNREACHABLE, Database, safe_url

log = logging.getLogger("ponte.db")

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_ID = 0x706F6E7465  # "ponte": the advisory lock migrations hold on PostgreSQL
RETRY_EVERY = 10.0  # seconds between two attempts to migrate a database that did not answer at start
logging.getLogger("alembic").setLevel(logging.WARNING)  # not two lines of Alembic's at every start


def alembic_config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The latest revision these migrations know."""
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


async def upgrade(database: Database, revision: str = "head") -> str:
    """Migrate to `revision`; the revision the database is at afterwards."""
    async with database.connection() as connection:
        if not database.sqlite:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        before = await connection.run_sync(_current)
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
        after = await connection.run_sync(_current)
    if before != after:
        log.info("database %s migrated from %s to %s", safe_url(database.url), before or "empty", after)
    return after or "empty"


def _current(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_at_start(database: Database) -> asyncio.Task[None] | None:
    """Migrate before serving. A database that does not answer does not stop the process (realtime traffic
    needs none): it is logged, requests that need it fail until it answers, and the migration is tried again
    every RETRY_EVERY seconds in the task returned. A migration that fails otherwise raises."""
    try:
        await upgrade(database)
        return None
    except UNREACHABLE as exc:
        log.error("database %s does not answer (%s): results cannot be stored or read until it does; "
                  "migrating it then", safe_url(database.url), type(exc).__name__)
        return asyncio.get_running_loop().create_task(_keep_trying(database))


async def _keep_trying(database: Database) -> None:
    while True:
        await asyncio.sleep(RETRY_EVERY)
        try:
            await upgrade(database)
            log.info("database %s answers again", safe_url(database.url))
            return
        except UNREACHABLE:
            continue
