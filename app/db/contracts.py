"""An uploaded investigation's contracts in the database, a batch at a time.

A batch is one statement of at most BATCH rows in one short transaction, so that no single step holds
the event loop (the rows are converted and the statement's parameters prepared on it) or, on SQLite,
the write lock for long, and other requests' queries run between two batches. Writing a batch first
deletes the rows from its position on: written again after a failure (or by a later attempt, from 0),
it replaces what was there. Reads go by the table's key (investigation, position), a page at a time.
"""
from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from engines.contracts.model import Contract

from .models import ContractRow

BATCH = 2000  # rows per statement (bench/DB.md: the loop's lag while 200,000 are written)
FIELDS = tuple(field.name for field in fields(Contract))
TABLE: Any = ContractRow.__table__
COLUMNS = [TABLE.c[name] for name in FIELDS]
VALUES = attrgetter(*FIELDS)


async def write_batch(session: AsyncSession, inv_id: str, first: int, batch: Sequence[Contract]) -> None:
    """The contracts from position `first` on become `batch` (and nothing after it)."""
    await session.execute(delete(TABLE).where(TABLE.c.investigation_id == inv_id, TABLE.c.position >= first))
    if batch:
        rows = [dict(zip(FIELDS, VALUES(contract)), investigation_id=inv_id, position=first + index)
                for index, contract in enumerate(batch)]
        await session.execute(insert(TABLE), rows)


async def read_batch(session: AsyncSession, inv_id: str, first: int, limit: int) -> list[Contract]:
    """At most `limit` contracts from position `first` on, in their order."""
    result = await session.execute(select(*COLUMNS).where(TABLE.c.investigation_id == inv_id,
                                                          TABLE.c.position >= first)
                                   .order_by(TABLE.c.position).limit(limit))
    return [Contract(*row) for row in result]
