"""Shared fixtures: a real Ponte server on port 0, tokens, and real raw and Socket.IO clients."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import jwt
import pytest
import socketio

from app import Settings, create_app
from app.auth import USER_SCOPES

SECRET = "test-secret-0123456789abcdef-0123456789"
TIMEOUT = 5.0


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test server: a known secret, everything else as documented."""
    return Settings(**{"jwt_secret": SECRET, "port": 0, **overrides})


def make_token(sub: str = "alice", scopes: tuple[str, ...] = USER_SCOPES, ttl: float = 3600,
               key: str = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    """A token like `python -m app token` makes, with any claim overridable."""
    now = int(time.time())
    body = {"sub": sub, "scope": " ".join(scopes), "iat": now, "exp": now + ttl, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


class RawClient:
    """A raw-WebSocket client speaking JSON text frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, message: Any) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next text message, parsed."""
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type is aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data!r} {msg.extra!r}"
        return json.loads(msg.data)

    async def recv_kind(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next message whose `event` or `type` is `kind`, skipping others (heartbeats)."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            if message.get("event", message.get("type")) == kind:
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
async def raw(server: Any) -> AsyncIterator[Callable[..., Awaitable[RawClient]]]:
    """Open raw-WebSocket connections to `server`: `await raw(path, token=..., headers=...)`."""
    session = aiohttp.ClientSession()
    sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def connect(path: str, token: str | None = None, **kwargs: Any) -> RawClient:
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
async def sio(server: Any) -> AsyncIterator[Callable[..., Awaitable[SioClient]]]:
    """Open Socket.IO connections to `server`: `await sio(namespace, auth={...})`.

    A refused connection returns the client with `connect_error` set instead of raising."""
    clients: list[SioClient] = []

    async def connect(namespace: str, auth: dict[str, Any] | None = None, **kwargs: Any) -> SioClient:
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
