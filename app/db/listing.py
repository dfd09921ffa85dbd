"""A user's past executions and investigations, newest first, a page at a time.

Pages are cut by keyset, not offset: a cursor is the (created_at, id) of the last item given, so a page
costs the same however deep it is (the indexes `ix_*_owner_created` and `ix_*_created` serve it), and
work started meanwhile never shifts what follows. A cursor is opaque to clients (base64 of JSON).
"""
from __future__ import annotations

import base64
import binascii
import datetime
import json
from typing import Any, Callable

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .engine import Database
from .models import Execution, Investigation


class BadCursor(ValueError):
    """A cursor this module did not make."""


def encode_cursor(created_at: float, key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, key]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The position a cursor stands for; BadCursor if it is not one."""
    try:
        created_at, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(created_at, (int, float)) and isinstance(key, str):
            return float(created_at), key
    except (ValueError, TypeError, binascii.Error):
        pass
    raise BadCursor("cursor: not a cursor this API gave")


async def page(database: Database, model: Any, owner: str | None, limit: int,
               cursor: str | None) -> tuple[list[Any], str | None]:
    """Up to `limit` rows of `model` (Execution or Investigation) owned by `owner` (None: everyone's), after
    `cursor`; and the cursor of the next page, None on the last. Raises what the database raises."""
    query = select(model).order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    if owner is not None:
        query = query.where(model.owner == owner)
    if cursor is not None:
        created_at, key = decode_cursor(cursor)
        query = query.where(or_(model.created_at < created_at, and_(model.created_at == created_at, model.id < key)))
    rows = await database.run(lambda session: _all(session, query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None


async def _all(session: AsyncSession, query: Any) -> list[Any]:
    return list(await session.scalars(query))


def iso(seconds: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with milliseconds (as message timestamps are written)."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def execution_item(row: Execution) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
            "owner": row.owner, "blog_url": row.config.get("blog_url"), "keywords": row.keyword_count,
            "clusters": row.cluster_count}


def investigation_item(row: Investigation) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
            "owner": row.owner, "title": row.title, "records": row.records, "anomalies": row.anomalies_total,
            "report_url": row.report_url if row.status == "completed" else None}


# what each listing reads, and how it shows one row
LISTS: dict[str, tuple[Any, Callable[[Any], dict[str, Any]]]] = {
    "executions": (Execution, execution_item), "investigations": (Investigation, investigation_item)}
