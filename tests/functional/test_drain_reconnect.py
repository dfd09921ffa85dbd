"""After a SIGTERM drain and a new instance on the same port, the official Socket.IO clients at their default
reconnection (python-socketio's AsyncClient, socket.io-client from npm), over WebSocket and long-polling,
come back by themselves; a client the server disconnects on purpose does not.

The drain ends each Socket.IO connection as a lost transport (a WebSocket closed with 1012, a pending long
poll answered with a NOOP and the next one refused), never with Socket.IO's DISCONNECT, which every client
takes as final, or Engine.IO's close packet, which python-socketio's client takes as final."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, AsyncIterator, Protocol

import pytest
import socketio

from conftest import TIMEOUT, ServedApp, free_port, make_token, served_app
from interop import test_interop
from interop.test_interop import HERE as INTEROP, NodeEnv, require_node

TRANSPORTS = ["websocket", "polling"]
DRAIN_LIMIT = 10.0  # seconds from SIGTERM to exit
RECONNECT_LIMIT = 15.0  # from the new instance's start; the default backoff waits at most 5 s (+50 %) per try
TRANSPORT_LOST = {"transport close", "transport error"}  # what both clients call a loss they reconnect from
QUIET = 1.0  # how long a client that must not reconnect is watched: ten times its reconnection delay
SCRIPT = Path(__file__).with_name("drain_client.cjs")
node_env = test_interop.node_env  # the interop tests' fixture: node, with tests/interop's npm packages installed


class Client(Protocol):
    """A Socket.IO client on /omni as alice, seen through what happens to it: connect (each one answered
    with a SESSAO_PING), pong, disconnect (with its reason), connect_error."""

    history: list[dict[str, Any]]

    async def start(self, base: str) -> None: ...

    async def event(self) -> dict[str, Any]: ...

    async def stop(self) -> None: ...


async def within(client: Client, kinds: tuple[str, ...], seconds: float) -> list[dict[str, Any]]:
    """Every event of `kinds` the client reports in the next `seconds`: a window for what must not happen."""
    seen, deadline = [], time.monotonic() + seconds
    with contextlib.suppress(TimeoutError):
        while (left := deadline - time.monotonic()) > 0:
            event = await asyncio.wait_for(client.event(), left)
            if event["event"] in kinds:
                seen.append(event)
    return seen


async def expect(client: Client, kinds: str | tuple[str, ...], timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next event of one of `kinds`, skipping others; fails with the client's history on timeout."""
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    deadline = time.monotonic() + timeout
    while True:
        try:
            event = await asyncio.wait_for(client.event(), max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            pytest.fail(f"no {' or '.join(kinds)} within {timeout:g} s; the client saw {client.history}")
        if event["event"] in kinds:
            return event


class PythonClient:
    """python-socketio's AsyncClient, reconnection on (by default with its default backoff)."""

    def __init__(self, transport: str, token: str, **backoff: float) -> None:
        self.transport, self.token = transport, token
        self.client = socketio.AsyncClient(**backoff)
        self.history: list[dict[str, Any]] = []
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.client.on("connect", self._on_connect, namespace="/omni")
        self.client.on("SESSAO_PONG", lambda data: self._put(event="pong"), namespace="/omni")
        self.client.on("disconnect", lambda reason: self._put(event="disconnect", reason=reason), namespace="/omni")
        self.client.on("connect_error", lambda data: self._put(event="connect_error", message=data), namespace="/omni")

    def _put(self, **event: Any) -> None:
        self.history.append(event)
        self.events.put_nowait(event)

    async def _on_connect(self) -> None:
        self._put(event="connect")
        await self.client.emit("SESSAO_PING", {"request_id": "python"}, namespace="/omni")

    async def start(self, base: str) -> None:
        await self.client.connect(base, namespaces=["/omni"], auth={"token": self.token},
                                  transports=[self.transport], wait_timeout=TIMEOUT)

    async def event(self) -> dict[str, Any]:
        return await self.events.get()

    async def stop(self) -> None:
        await self.client.disconnect()


class NodeClient:
    """drain_client.cjs: socket.io-client, reconnection on (by default with its default backoff)."""

    def __init__(self, node: str, transport: str, token: str, delay_ms: int | None = None) -> None:
        self.node, self.transport, self.token = node, transport, token
        self.backoff = [str(delay_ms)] if delay_ms else []
        self.proc: asyncio.subprocess.Process | None = None
        self.history: list[dict[str, Any]] = []

    async def start(self, base: str) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.node, str(SCRIPT), base, self.token, self.transport, *self.backoff,
            env={**os.environ, "NODE_PATH": str(INTEROP / "node_modules")}, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def event(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None and self.proc.stderr is not None
        line = await self.proc.stdout.readline()
        if not line:
            stderr = (await self.proc.stderr.read()).decode(errors="replace")
            pytest.fail(f"drain_client.cjs ended ({await self.proc.wait()}) after {self.history}: {stderr}")
        self.history.append(json.loads(line))
        return self.history[-1]

    async def stop(self) -> None:
        if self.proc is None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def instance(cwd: Path, port: int) -> AsyncIterator[ServedApp]:
    """`python -m app` on `port`: conftest's served_app, on a port the test chose (to start a successor on)."""
    async with served_app(cwd, PORT=str(port)) as served:
        served.port, served.base = port, f"http://127.0.0.1:{port}"
        yield served


@contextlib.asynccontextmanager
async def running(client: Client, base: str) -> AsyncIterator[Client]:
    """`client` connected to `base` and answered once, stopped when the block ends."""
    try:
        await client.start(base)
        await expect(client, "connect")
        await expect(client, "pong")
        yield client
    finally:
        await client.stop()


async def assert_comes_back(tmp_path: Path, client: Client) -> None:
    """SIGTERM the instance `client` is connected to: the client sees a lost transport, the server's
    on_disconnect "server shutting down"; then, once a new instance listens on the same port, the
    client connects to it by itself and is answered."""
    port = free_port()
    async with instance(tmp_path, port) as first, running(client, first.base):
        first.proc.send_signal(signal.SIGTERM)
        lost = await expect(client, "disconnect", DRAIN_LIMIT)
        assert lost["reason"] in TRANSPORT_LOST, client.history
        assert await asyncio.wait_for(first.proc.wait(), DRAIN_LIMIT) == 0
        async with instance(tmp_path, port) as second:
            await expect(client, "connect", RECONNECT_LIMIT)
            await expect(client, "pong")
            await second.read_until("connection accepted: /omni socketio user=alice")
            await client.stop()
    assert "connection closed: /omni socketio user=alice (server shutting down)" in first.output, first.output


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_python_client_reconnects_after_drain(tmp_path: Path, transport: str) -> None:
    """python-socketio's AsyncClient, drained over `transport`, reconnects to the next instance by itself."""
    await assert_comes_back(tmp_path, PythonClient(transport, make_token("alice")))


@pytest.mark.interop
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_node_client_reconnects_after_drain(tmp_path: Path, transport: str, node_env: NodeEnv) -> None:
    """socket.io-client from npm, drained over `transport`, reconnects to the next instance by itself."""
    await assert_comes_back(tmp_path, NodeClient(require_node(node_env), transport, make_token("alice")))


async def assert_stays_away(server: Any, client: Client) -> None:
    """A client whose token expires is answered with AUTHENTICATION_ERROR and disconnected with Socket.IO's
    DISCONNECT, which it takes as final: it neither reconnects nor retries, though it would within 0.1 s."""
    async with running(client, str(server.make_url("/"))):
        kicked = await expect(client, "disconnect", 3 + TIMEOUT)  # the token lasts 2 s; the sweep runs each 1 s
        assert kicked["reason"] in ("server disconnect", "io server disconnect"), client.history
        assert await within(client, ("connect", "connect_error"), QUIET) == [], client.history


@pytest.mark.parametrize("settings_overrides", [{"jwt_leeway": 0, "idle_timeout": 4}])  # a sweep a second
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_python_client_kicked_on_purpose_stays_away(server: Any, transport: str) -> None:
    """python-socketio's AsyncClient disconnected by the server on purpose does not reconnect."""
    client = PythonClient(transport, make_token("alice", ttl=2), reconnection_delay=0.1,
                          reconnection_delay_max=0.1, randomization_factor=0)
    await assert_stays_away(server, client)


@pytest.mark.interop
@pytest.mark.parametrize("settings_overrides", [{"jwt_leeway": 0, "idle_timeout": 4}])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_node_client_kicked_on_purpose_stays_away(server: Any, transport: str, node_env: NodeEnv) -> None:
    """socket.io-client disconnected by the server on purpose does not reconnect."""
    client = NodeClient(require_node(node_env), transport, make_token("alice", ttl=2), delay_ms=100)
    await assert_stays_away(server, client)
