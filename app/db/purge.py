"""Retention: `python -m app purge` deletes what is older than its kind's RETENTION_*_DAYS (0: kept
forever), counted from its last change; child rows (keywords, clusters, anomalies, findings, reports,
messages) go with their parent (ON DELETE CASCADE). One transaction per kind: a purge that fails deletes
nothing of that kind.
"""
from __future__ import annotations

import time

from sqlalchemy import delete

from ..settings import Settings
from .engine import Database
from .models import ChatSession, Execution, Investigation

DAY = 86400.0


async def purge(database: Database, settings: Settings, now: float | None = None) -> dict[str, int]:
    """Delete what retention no longer keeps; how many executions, investigations and chat sessions went."""
    now = time.time() if now is None else now
    kinds = (("executions", Execution, settings.retention_executions_days),
             ("investigations", Investigation, settings.retention_investigations_days),
             ("chat_sessions", ChatSession, settings.retention_chat_days))
    deleted = {}
    for name, model, days in kinds:
        if not days:
            continue
        async with database.connection() as connection:
            result = await connection.execute(delete(model).where(model.updated_at < now - days * DAY))
        deleted[name] = int(result.rowcount or 0)
    return deleted
