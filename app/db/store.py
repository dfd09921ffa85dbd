"""`Records`: the record store the services use, with what must last in the database and what is
short-lived where it was (Redis, or memory without it).

Durable kinds (an execution, an investigation, a chat session's owner and history) are read and written
in the database, as the same documents (app/db/documents.py); an uploaded investigation's contracts too,
a batch at a time (app/db/contracts.py). Everything else — claims (slots, job leases, chat locks), the
final-event markers (`put_new` on "execution-final"…), uploaded files until their contracts are in the database —
stays in the short-lived store, with its time to live.

A database that does not answer (down, unreachable, timed out, locked too long) is a RecordStoreError,
as a Redis that does not answer always was: callers already know what to do with it.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from ..records import RecordStore, RecordStoreError
from engines.contracts.model import Contract

from . import contracts, documents
from .engine import Database
from .models import ChatSession

log = logging.getLogger("ponte.db")

Reader = Callable[[AsyncSession, str], Awaitable[dict[str, Any] | None]]
Writer = Callable[[AsyncSession, str, dict[str, Any]], Awaitable[None]]
# record kind → how its documents are read and written
KINDS: dict[str, tuple[Reader, Writer]] = {
    "execution": (documents.read_execution, documents.write_execution),
    "investigation": (documents.read_investigation, documents.write_investigation),
    "chat_owner": (documents.read_chat_owner, documents.write_chat_owner),
    "chat_history": (documents.read_chat_history, documents.write_chat_history),
}
UNAVAILABLE = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)


class DatabaseStore:
    """The durable kinds' documents in the database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        reader = KINDS[kind][0]
        return await self._run(lambda session: reader(session, key))

    async def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        writer = KINDS[kind][1]
        await self._run(lambda session: writer(session, key, doc))

    async def put_new(self, kind: str, key: str, doc: dict[str, Any]) -> bool:
        """First writer wins, on every instance: only a chat session's owner is written this way."""
        if kind != "chat_owner":
            raise ValueError(f"put_new is not kept in the database for {kind!r}")
        owner, on_sqlite = doc.get("owner"), self.database.sqlite
        return bool(await self._run(lambda session: _claim_session(session, key, owner, on_sqlite)))

    async def put_contracts(self, inv_id: str, first: int, batch: Sequence[Contract]) -> None:
        """Store one batch of an investigation's contracts from position `first` on (app/db/contracts.py)."""
        await self._run(lambda session: contracts.write_batch(session, inv_id, first, batch))

    async def get_contracts(self, inv_id: str, first: int, limit: int) -> list[Contract]:
        """At most `limit` of an investigation's contracts, from position `first` on."""
        found = await self._run(lambda session: contracts.read_batch(session, inv_id, first, limit))
        return list(found)

    async def _run(self, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        """Run `work` in one transaction; a database that fails or does not answer in time is a
        RecordStoreError (the transaction is rolled back)."""
        try:
            return await self.database.run(work)
        except UNAVAILABLE as exc:
            # never the exception's text: it may quote the statement's parameters (documents) or the URL
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise RecordStoreError(f"database unavailable ({reason})") from exc


async def _claim_session(session: AsyncSession, key: str, owner: str | None, on_sqlite: bool) -> bool:
    dialect: Any = sqlite if on_sqlite else postgresql
    now = time.time()
    statement = dialect.insert(ChatSession).values(id=key, owner=owner, created_at=now, updated_at=now)
    result: Any = await session.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
    return bool(result.rowcount == 1)


class Records(RecordStore):
    """The durable kinds in the database, the rest in `short` (see the module's docstring)."""

    def __init__(self, durable: DatabaseStore, short: RecordStore) -> None:
        super().__init__(short.ttl)
        self.durable, self.short = durable, short

    def _for(self, kind: str) -> Any:
        return self.durable if kind in KINDS else self.short

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return await self._for(kind).get(kind, key)  # type: ignore[no-any-return]

    async def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        await self._for(kind).put(kind, key, doc)

    async def put_new(self, kind: str, key: str, doc: dict[str, Any]) -> bool:
        return bool(await self._for(kind).put_new(kind, key, doc))

    async def put_contracts(self, inv_id: str, first: int, batch: Sequence[Contract]) -> None:
        await self.durable.put_contracts(inv_id, first, batch)

    async def get_contracts(self, inv_id: str, first: int, limit: int) -> list[Contract]:
        return await self.durable.get_contracts(inv_id, first, limit)

    async def put_blob(self, kind: str, key: str, data: bytes) -> None:
        await self.short.put_blob(kind, key, data)

    async def get_blob(self, kind: str, key: str) -> bytes | None:
        return await self.short.get_blob(kind, key)

    async def delete_blob(self, kind: str, key: str) -> None:
        await self.short.delete_blob(kind, key)

    async def claim(self, key: str, seconds: float) -> bool:
        return await self.short.claim(key, seconds)

    async def renew(self, key: str, seconds: float) -> None:
        await self.short.renew(key, seconds)

    async def release(self, key: str) -> None:
        await self.short.release(key)
