"""Shared fixtures: a real Ponte server on port 0, tokens, and real raw and Socket.IO clients."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import jwt
import pytest
import socketio

from app import Settings, create_app
from app.audit import AUDIT
from app.factory import new_event_loop
from app.keys import SIO_KEY
from app.logs import LogBudget
from app.auth import USER_SCOPES
from tests.cluster_fixture import redis_cluster  # noqa: F401 - a real three-master Redis Cluster
from tests.fixtures.blog import blog_site  # noqa: F401 - the fixture blog, for crawl tests
from tests.fixtures.console import browser, console, console_server  # noqa: F401 - the console in Chromium

SECRET = "test-secret-0123456789abcdef-0123456789"
TIMEOUT = 5.0
CONTRACTS_CSV = """contract_id,agency,supplier,item,category,value,date,quantity
C-1,Prefeitura X,Fornecedora A,Notebook,informática,4500,2025-03-01,1
C-2,Prefeitura X,Fornecedora B,Notebook,informática,4700,2025-03-09,1
C-3,Prefeitura X,Fornecedora C,Notebook,informática,4400,2025-04-02,1
C-4,Prefeitura X,Fornecedora D,Notebook,informática,4600,2025-05-11,1
C-5,Prefeitura X,Fornecedora E,Notebook,informática,4550,2025-06-20,1
C-6,Prefeitura X,Fornecedora F,Notebook,informática,19000,2025-07-04,1
"""


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Every async test runs on the loop `python -m app` runs on: EVENT_LOOP, by default uvloop where it is
    installed (it always is under CI, where a missing uvloop fails here rather than testing asyncio)."""
    choice = os.environ.get("EVENT_LOOP", "uvloop" if os.environ.get("CI") == "true" else "auto")
    return {"loop": lambda: new_event_loop(choice)}


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test server: a known secret, the test's own database, everything else as documented."""
    return Settings(**{"jwt_secret": SECRET, "port": 0, "database_url": DATABASE["url"], **overrides})


# The database of the running test: a copy of a migrated SQLite file, in a directory of its own. Every
# app a test starts (and every `python -m app` or worker it runs, through DATABASE_URL) shares it, as
# instances share one database in production; the next test starts with an empty one. A file, not
# `sqlite+aiosqlite://` in memory: workers in other processes must see the same records.
DATABASE: dict[str, str | None] = {"url": None}


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at the latest schema, migrated once per test session, to be copied."""
    from app.db import open_database
    from app.db.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "ponte.sqlite3"

    async def migrate() -> None:
        database = open_database(f"sqlite+aiosqlite:///{path}")
        await upgrade(database)
        await database.close()
    asyncio.run(migrate())
    return path


@pytest.fixture(scope="session", autouse=True)
def ponte_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A PONTE_HOME of the test session's own for every process it starts: no test writes to the user's
    home (the development secret, the default SQLite database)."""
    home = tmp_path_factory.mktemp("ponte-home")
    saved = os.environ.get("PONTE_HOME")
    os.environ["PONTE_HOME"] = str(home)
    yield home
    if saved is None:
        os.environ.pop("PONTE_HOME", None)
    else:
        os.environ["PONTE_HOME"] = saved


@pytest.fixture(autouse=True)
def database(migrated_database: Path, tmp_path_factory: pytest.TempPathFactory,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This test's database (see DATABASE), also as DATABASE_URL for the processes it starts."""
    path = tmp_path_factory.mktemp("db") / "ponte.sqlite3"
    shutil.copyfile(migrated_database, path)
    url = f"sqlite+aiosqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    DATABASE["url"] = url
    yield url
    DATABASE["url"] = None


def make_token(sub: str = "alice", scopes: tuple[str, ...] = USER_SCOPES, ttl: float = 3600,
               key: str = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    """A token like `python -m app token` makes, with any claim overridable."""
    now = int(time.time())
    body = {"sub": sub, "scope": " ".join(scopes), "iat": now, "exp": now + ttl, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


def documented(message: dict[str, Any]) -> set[str]:
    """A raw message's envelope keys but those connection-state recovery adds: `offset` (an event sent to
    a room) and `recovery` (a connection's first message), each checked for its type."""
    assert isinstance(message.get("offset", ""), str) and isinstance(message.get("recovery", {}), dict), message
    return set(message) - {"offset", "recovery"}


def error_parts(message: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Code, message and details of an error envelope in either protocol's shape."""
    kind, data = message.get("event", message.get("type")), message["data"]
    if "codigo" in data:  # Omni's ERRO, in whichever envelope form the client used
        assert kind == "ERRO" and data["recomendacao"], message
        return data["codigo"], data["mensagem"], data["detalhes"]
    assert kind == "error" and documented(message) == {"type", "data", "timestamp", "id"}, message
    return data["code"], data["message"], data.get("details") or {}


async def create_investigation(server: Any, token: str | None = None, session_id: str | None = None) -> str:
    """POST six contracts as `token`'s user or the anonymous chat `session_id`: the new investigation's
    id, once its analysis has completed (so nothing more is emitted to its room unless a test does it)."""
    headers = {"Content-Type": "text/csv", **({"Authorization": f"Bearer {token}"} if token else {})}
    params = {"session_id": session_id} if session_id else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(server.make_url("/api/v1/investigations"), data=CONTRACTS_CSV.encode(),
                             headers=headers, params=params) as response:
            assert response.status == 201, await response.text()
            created = await response.json()
        async with asyncio.timeout(4 * TIMEOUT):
            while True:  # the state behind the keyed url: a real condition, polled briefly
                async with http.get(created["url"]) as response:
                    status = (await response.json())["status"]
                if status in ("completed", "failed"):
                    break
                await asyncio.sleep(0.02)
    assert status == "completed", created
    return str(created["investigation_id"])


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll a real condition until it holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class RawClient:
    """A raw-WebSocket client speaking JSON text frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.hello: dict[str, Any] | None = None  # /ws's first message, SESSAO_CONECTADA (recovery)

    async def send(self, message: Any) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next text message, parsed; /ws's first message (SESSAO_CONECTADA, checked: pid, recovery
        and offset) is kept in `hello` rather than returned."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            assert msg.type is aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data!r} {msg.extra!r}"
            message = json.loads(msg.data)
            if self.hello is None and message.get("event", message.get("type")) == "SESSAO_CONECTADA":
                assert message["recovery"]["pid"] and message["offset"], message
                self.hello = message
                continue
            return message  # type: ignore[no-any-return]

    async def recv_kind(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next message whose `event` or `type` is `kind`, skipping others (heartbeats)."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            if message.get("event", message.get("type")) == kind:
                return message

    async def snapshot(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next `investigation_progress` snapshot: a late follower gets the room's earlier events first."""
        while (message := await self.recv_kind("investigation_progress", timeout))["data"]["update_type"] != "snapshot":
            pass
        return message

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, str]:
        """Wait for the server to close; the close code and reason."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return self.ws.close_code, msg.extra or ""


class SioClient:
    """A python-socketio AsyncClient on one namespace that queues what it receives."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.connect_error: Any = None
        self.disconnected = asyncio.Event()
        self.client.on("*", self._on_any, namespace=namespace)
        self.client.on("connect_error", self._on_connect_error, namespace=namespace)
        self.client.on("disconnect", self._on_disconnect, namespace=namespace)

    async def _on_any(self, event: str, *args: Any) -> None:
        await self.events.put((event, args[0] if len(args) == 1 else list(args)))

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def emit(self, event: str, data: Any = None) -> None:
        await self.client.emit(event, data, namespace=self.namespace)

    async def recv(self, timeout: float = TIMEOUT) -> tuple[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def recv_kind(self, kind: str, timeout: float = TIMEOUT) -> Any:
        """The data of the next event named `kind`, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            event, data = await self.recv(max(0.01, deadline - time.monotonic()))
            if event == kind:
                return data


@pytest.fixture(autouse=True)
def audit_budget() -> Iterator[None]:
    """A full budget of refusal audit lines for each test: the audit log is process-wide, and an earlier
    test's flood may have spent it."""
    saved, AUDIT.refusals = AUDIT.refusals, LogBudget()
    yield
    AUDIT.refusals = saved


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to start the server with other settings."""
    return {}


@pytest.fixture
async def server(aiohttp_server: Any, settings_overrides: dict[str, Any]) -> Any:
    """A real Ponte server listening on a free port."""
    return await aiohttp_server(create_app(make_settings(**settings_overrides)))


@pytest.fixture
async def start_server(aiohttp_server: Any) -> Callable[..., Awaitable[Any]]:
    """Start a Ponte server with the given setting overrides."""
    async def start(**overrides: Any) -> Any:
        return await aiohttp_server(create_app(make_settings(**overrides)))
    return start


@pytest.fixture
async def raw_to() -> AsyncIterator[Callable[..., Awaitable[RawClient]]]:
    """Open raw-WebSocket connections to any server: `await raw_to(server, path, token=...)`."""
    session = aiohttp.ClientSession()
    sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def connect(server: Any, path: str, token: str | None = None, **kwargs: Any) -> RawClient:
        url = server.make_url(path)
        if token is not None:
            url = url.update_query(token=token)
        ws = await session.ws_connect(url, **kwargs)
        sockets.append(ws)
        return RawClient(ws)

    yield connect
    for ws in sockets:
        await ws.close()
    await session.close()


@pytest.fixture
async def raw(server: Any, raw_to: Any) -> Callable[..., Awaitable[RawClient]]:
    """Open raw-WebSocket connections to `server`: `await raw(path, token=..., headers=...)`."""
    async def connect(path: str, token: str | None = None, **kwargs: Any) -> RawClient:
        return await raw_to(server, path, token, **kwargs)
    return connect


@pytest.fixture
async def sio_to() -> AsyncIterator[Callable[..., Awaitable[SioClient]]]:
    """Open Socket.IO connections to any server: `await sio_to(server, namespace, auth={...})`.

    A refused connection returns the client with `connect_error` set instead of raising."""
    clients: list[SioClient] = []

    async def connect(server: Any, namespace: str, auth: dict[str, Any] | None = None,
                      **kwargs: Any) -> SioClient:
        client = SioClient(namespace)
        clients.append(client)
        try:
            await client.client.connect(str(server.make_url("/")), namespaces=[namespace], auth=auth,
                                        transports=["websocket"], wait_timeout=TIMEOUT, **kwargs)
        except socketio.exceptions.ConnectionError:
            assert client.connect_error is not None
        return client

    yield connect
    for client in clients:
        await client.client.disconnect()


@pytest.fixture
async def sio(server: Any, sio_to: Any) -> Callable[..., Awaitable[SioClient]]:
    """Open Socket.IO connections to `server`: `await sio(namespace, auth={...})`."""
    async def connect(namespace: str, auth: dict[str, Any] | None = None, **kwargs: Any) -> SioClient:
        return await sio_to(server, namespace, auth, **kwargs)
    return connect


class RedisProcess:
    """A private redis-server on a free port that a test can stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # ends if the process dies
            if b"Ready to accept connections" in line:
                return
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A real redis-server started for this test; under CI a missing redis-server is a failure."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI (.ci/run installs it)")
        pytest.skip("redis-server is not installed: install it (apt-get install redis-server) to run Redis tests")
    server = RedisProcess(free_port())
    server.start()
    yield server
    server.stop()


async def subscribed(*servers: Any) -> None:
    """Wait until every instance listens on Redis (a real condition, polled briefly)."""
    async with asyncio.timeout(TIMEOUT):
        while not all(s.app[SIO_KEY].manager.subscribed for s in servers):
            await asyncio.sleep(0.02)


@pytest.fixture
async def pair(start_server: Any, redis_server: RedisProcess) -> tuple[Any, Any]:
    """Two Ponte instances sharing one redis-server."""
    first = await start_server(redis_url=redis_server.url)
    second = await start_server(redis_url=redis_server.url)
    await subscribed(first, second)
    return first, second


ROOT = Path(__file__).resolve().parents[1]


class ServedApp:
    """`python -m app` in a subprocess on a free port, as an operator runs it; its output is collected."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc, self.port = proc, port
        self.base = f"http://127.0.0.1:{port}"
        self.seen: list[str] = []

    async def read_until(self, needle: str, timeout: float = TIMEOUT) -> None:
        """Read its output line by line until one contains `needle`."""
        async def read() -> None:
            assert self.proc.stdout is not None
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError(f"server output ended before {needle!r}: {self.output}")
                self.seen.append(line)
                if needle in line:
                    return
        await asyncio.wait_for(read(), timeout)

    @property
    def output(self) -> str:
        return "".join(self.seen)


@contextlib.asynccontextmanager
async def served_app(cwd: Path, **env: str) -> AsyncIterator[ServedApp]:
    """Run `python -m app` (JWT_SECRET set, INFO logs) until the block ends, then collect all it wrote."""
    port = free_port()
    environ = {**os.environ, "JWT_SECRET": SECRET, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "INFO",
               "PYTHONPATH": str(ROOT), **env}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app", cwd=cwd, env=environ,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    app = ServedApp(proc, port)
    try:
        await app.read_until("Running on", 3 * TIMEOUT)
        yield app
    finally:
        if proc.returncode is None:
            proc.terminate()
        rest, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        app.seen.append(rest.decode())


# -- PostgreSQL ------------------------------------------------------------------------------------

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"  # trust auth on this machine type (.ci/run)
NO_POSTGRES = ("PostgreSQL does not answer on 127.0.0.1:5432 as user postgres (trust): install and start it "
               "(.ci/run does) to run the PostgreSQL tests")


async def postgres_admin(statement: str, url: str = POSTGRES_ADMIN) -> None:
    """Run one statement as the server's administrator (CREATE DATABASE cannot run in a transaction)."""
    import asyncpg

    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def throwaway_database(admin: str = POSTGRES_ADMIN) -> Iterator[str]:
    """A new, empty database on the server of `admin`, dropped afterwards: its postgresql:// URL (for code
    outside an event loop; `empty_database` in one)."""
    name = f"ponte_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"', admin))
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin))


@contextlib.asynccontextmanager
async def empty_database(admin: str = POSTGRES_ADMIN) -> AsyncIterator[str]:
    """`throwaway_database`, in a running event loop."""
    name = f"ponte_test_{uuid.uuid4().hex[:12]}"
    await postgres_admin(f'CREATE DATABASE "{name}"', admin)
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway database on the PostgreSQL server at 127.0.0.1:5432 for the test module, migrated by the
    first app that starts on it; under CI a server that does not answer is a failure, not a skip."""
    try:
        asyncio.run(postgres_admin("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - refused, unknown role, no driver: all mean "no server to test on"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{NO_POSTGRES} ({type(exc).__name__}: {exc})")
        pytest.skip(NO_POSTGRES)
    with throwaway_database() as url:
        yield url


class PostgresProcess:
    """A private PostgreSQL server (initdb into a temporary directory) on a free port, that a test can stop
    and start again. PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user."""

    def __init__(self) -> None:
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        self.bin = binaries[-1].parent if binaries else None
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.root = Path(tempfile.mkdtemp(prefix="ponte-pg-"))
        self.data = self.root / "data"

    def missing(self) -> str | None:
        """Why this machine cannot run one, or None."""
        if self.bin is None:
            return "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser: PostgreSQL cannot be started as root"
        return None

    def _run(self, *command: str) -> None:
        assert self.bin is not None
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # no pipes: the server pg_ctl starts would hold them open, and waiting for their end would never end
        subprocess.run([*as_postgres, str(self.bin / command[0]), *command[1:]], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c fsync=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postgres_server() -> Iterator[PostgresProcess]:
    """A private PostgreSQL server for this test (see PostgresProcess); under CI one that cannot run fails."""
    server = PostgresProcess()
    reason = server.missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"a private PostgreSQL server is required under CI: {reason}")
        pytest.skip(reason)
    server.init()
    server.start()
    yield server
    server.remove()
