"""An uploaded investigation's contracts in the database, a batch at a time.

A batch is one statement of at most BATCH rows in one short transaction, so that no single step holds
the event loop or, on SQLite, the write lock for long, and other requests' queries run between two
batches. Writing a batch first deletes the rows from its position on: written again after a failure (or
by a later attempt, from 0), it replaces what was there. Reads go by the table's key (investigation,
position), a page at a time.

On the event loop a batch costs what its rows cost to prepare, so they are prepared cheaply: the INSERT
is SQLAlchemy's, compiled once per dialect, and the driver gets the rows as plain tuples (SQLAlchemy's own
handling of a many-row statement costs about 5 µs a row on the loop, the tuples well under 1); on
PostgreSQL through asyncpg's COPY, which the server takes three times as fast as an executemany. Reads
fetch a page at once (row by row costs 4 µs a row). bench/DB.md has the figures.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from engines.contracts.model import Contract

from .models import ContractRow

BATCH = 500  # rows per statement (bench/DB.md: the loop's lag while 200,000 are written)
FIELDS = tuple(field.name for field in fields(Contract))
KEYS = ("investigation_id", "position", *FIELDS)  # the order of a row's values in the INSERT
TABLE: Any = ContractRow.__table__
COLUMNS = [TABLE.c[name] for name in FIELDS]
_INSERTS: dict[str, tuple[str, Callable[[Any], Any]]] = {}  # dialect name → (INSERT, how it takes a date)


def insert_for(dialect: Dialect) -> tuple[str, Callable[[Any], Any]]:
    """The INSERT of one row as the dialect's driver takes it, and how it takes a date (SQLite: as text)."""
    if dialect.name not in _INSERTS:
        compiled = insert(TABLE).compile(dialect=dialect, column_keys=list(KEYS))
        assert tuple(compiled.positiontup or ()) == KEYS, compiled.positiontup  # positional, in KEYS' order
        date = TABLE.c.date.type.dialect_impl(dialect).bind_processor(dialect)
        _INSERTS[dialect.name] = (str(compiled), date or (lambda value: value))
    return _INSERTS[dialect.name]


async def write_batch(session: AsyncSession, inv_id: str, first: int, batch: Sequence[Contract]) -> None:
    """The contracts from position `first` on become `batch` (and nothing after it)."""
    await session.execute(delete(TABLE).where(TABLE.c.investigation_id == inv_id, TABLE.c.position >= first))
    if not batch:
        return
    connection = await session.connection()
    statement, date = insert_for(connection.dialect)
    rows = [(inv_id, first + index, c.contract_id, c.agency, c.supplier, c.item, c.category, c.value, date(c.date),
             c.quantity) for index, c in enumerate(batch)]
    if connection.dialect.name == "postgresql":  # asyncpg's COPY: three times as fast as its executemany
        driver: Any = (await connection.get_raw_connection()).driver_connection
        await driver.copy_records_to_table(TABLE.name, records=rows, columns=KEYS)
    else:
        await connection.exec_driver_sql(statement, rows)  # type: ignore[arg-type]


async def read_batch(session: AsyncSession, inv_id: str, first: int, limit: int) -> list[Contract]:
    """At most `limit` contracts from position `first` on, in their order."""
    result = await session.execute(select(*COLUMNS).where(TABLE.c.investigation_id == inv_id,
                                                          TABLE.c.position >= first)
                                   .order_by(TABLE.c.position).limit(limit))
    return [Contract(*row) for row in result.all()]
