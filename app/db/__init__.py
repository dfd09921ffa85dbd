"""Results that last: executions, investigations, reports and chat history in a real database.

`engine.py` (the URL, the engine, whether it answers), `models.py` (the tables), `migrations/` and
`migrate.py` (Alembic, run at every start), `documents.py` (documents to rows and back), `store.py`
(`Records`: the record store the services use), `listing.py` (a user's past work, page by page) and
`purge.py` (retention). Nothing here knows aiohttp or Socket.IO.
"""
from __future__ import annotations

from .engine import MEMORY, Database
from .store import DatabaseStore, Records

__all__ = ["MEMORY", "Database", "DatabaseStore", "Records", "open_database"]


def open_database(url: str | None, pool_size: int = 5) -> Database:
    """The database of DATABASE_URL; a private in-memory SQLite one when there is none (settings built
    directly, as tests and benches do; `from_env` always sets one)."""
    return Database(url or MEMORY, pool_size)
