"""The database Ponte keeps results in: its URL made usable, the engine, and whether it answers.

PostgreSQL (`postgres://`, `postgresql://`, Heroku's DATABASE_URL) is driven by asyncpg; SQLite by
aiosqlite, whose queries run in a thread of their own: neither blocks the event loop. A URL's
`sslmode` (libpq's: require, verify-ca, verify-full…) becomes asyncpg's `ssl`. The URL carries a
password: only `safe_url` may ever be logged.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

log = logging.getLogger("ponte.db")
T = TypeVar("T")

CONNECT_TIMEOUT = 5.0  # seconds to open a connection (a database that is down fails fast)
QUERY_TIMEOUT = 15.0  # seconds for one statement
SQLITE_BUSY = 30.0  # seconds SQLite waits for another process's write to end
PROBE_EVERY = 5.0  # seconds /readyz reuses its last answer for
# what a database that is down, unreachable or starting up raises (not a mistake in a query or migration)
UNREACHABLE = (OSError, TimeoutError, OperationalError, InterfaceError)
MEMORY = "sqlite+aiosqlite://"  # a private in-memory database (Settings built without one: tests, benches)


def normalise(url: str) -> URL:
    """`postgres://` and `postgresql://` → asyncpg; `sqlite://` → aiosqlite; anything else as given."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    return normalise(url).render_as_string(hide_password=True)


def is_sqlite(url: str) -> bool:
    return normalise(url).get_backend_name() == "sqlite"


def engine_for(url: str, pool_size: int = 5) -> AsyncEngine:
    """An engine for `url` (see the module's docstring); nothing is connected yet."""
    parsed = normalise(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    parsed, connect_args = asyncpg_args(parsed)
    return create_async_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_timeout=CONNECT_TIMEOUT,
                               pool_pre_ping=True, pool_recycle=1800, connect_args=connect_args)


def asyncpg_args(url: URL) -> tuple[URL, dict[str, Any]]:
    """The URL asyncpg is given, and its connect arguments: libpq's `sslmode` (or `ssl`) taken out of the
    query, which asyncpg would refuse, and handed over as `ssl` (asyncpg takes libpq's modes by name)."""
    query = dict(url.query)
    sslmode = query.pop("sslmode", None) or query.pop("ssl", None)
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT, "command_timeout": QUERY_TIMEOUT}
    if sslmode:
        connect_args["ssl"] = sslmode
    return url.set(query=query), connect_args


def _sqlite_engine(url: URL) -> AsyncEngine:
    """SQLite: a file (its directory created), WAL, foreign keys on, and every transaction BEGIN IMMEDIATE,
    so that two processes writing wait for each other (up to SQLITE_BUSY) instead of failing."""
    memory = url.database in (None, "", ":memory:")
    if not memory:  # a directory that cannot be made: connecting fails, and the database is down
        with contextlib.suppress(OSError):
            Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY},
                                 **({"poolclass": StaticPool} if memory else {}))

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # aiosqlite must not BEGIN by itself: `on_begin` does
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _settled(task: asyncio.Task[Any]) -> None:
    """Retrieve the outcome of work nobody waits for any more (its caller gave up), so it is not logged as lost."""
    if not task.cancelled():
        task.exception()


class Database:
    """An engine, its sessions, and a cached answer to "does it answer?" for /readyz."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.engine = engine_for(url, pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.sqlite = is_sqlite(url)
        # SQLite writes one transaction at a time anyway: this process queues its own, rather than
        # letting its connections wait on each other's locks (and a memory database has one connection).
        self._serial: Any = asyncio.Lock() if self.sqlite else contextlib.nullcontext()
        self._probed = (0.0, "down")
        self._running: set[asyncio.Task[Any]] = set()

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], timeout: float = QUERY_TIMEOUT) -> T:
        """What `work` returns, run in one transaction (committed, or rolled back if it raises) in a task of its
        own. A caller cancelled, or giving up after `timeout` seconds (TimeoutError), does not interrupt it: a
        connection interrupted mid-statement cannot be closed cleanly (SQLAlchemy's aiosqlite adapter then
        waits forever for its thread), so the work ends by itself, bounded by the drivers' own timeouts
        (CONNECT_TIMEOUT, QUERY_TIMEOUT, SQLITE_BUSY), and `close` waits for it."""
        task = asyncio.get_running_loop().create_task(self._transact(work))
        self._running.add(task)
        task.add_done_callback(_settled)
        task.add_done_callback(self._running.discard)
        return await asyncio.wait_for(asyncio.shield(task), timeout)

    async def _transact(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self.transaction() as session:
            return await work(session)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed when the block ends, rolled back if it raises (`run` is the
        way for anything a request or a job waits on)."""
        async with self._serial, self.sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction (for migrations and bulk statements)."""
        async with self._serial, self.engine.begin() as connection:
            yield connection

    async def state(self) -> str:
        """`up` or `down`, from a `SELECT 1` at most every PROBE_EVERY seconds."""
        checked, answer = self._probed
        if time.monotonic() - checked < PROBE_EVERY:
            return answer
        try:
            await self.run(lambda session: session.execute(text("SELECT 1")), CONNECT_TIMEOUT)
            answer = "up"
        except Exception as exc:  # noqa: BLE001 - any failure means down; the type says which
            log.warning("database does not answer: %s", type(exc).__name__)
            answer = "down"
        self._probed = (time.monotonic(), answer)
        return answer

    async def close(self) -> None:
        """Close its connections, once the work under way has ended (QUERY_TIMEOUT at most); a database that
        does not answer is not waited for past CONNECT_TIMEOUT."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=QUERY_TIMEOUT)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self.engine.dispose()
        except Exception as exc:  # noqa: BLE001 - closing what is already gone
            log.warning("database connections not closed cleanly: %s", type(exc).__name__)
