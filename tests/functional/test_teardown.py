"""What a connection leaves behind when its peer vanishes without a Close frame (a killed process, a lost
network): nothing for the cyclic collector. Its objects are freed by reference counting once nothing uses
them, not left in reference cycles that the collector must find later, walking every connection at once
inside the next mass disconnect (bench/README.md, "Mass disconnect")."""
from __future__ import annotations

import gc
import json
import socket
import weakref
from typing import Any, Iterator

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from app import create_app
from app.keys import SIO_KEY
from conftest import TIMEOUT, make_settings, make_token, until


def drop(ws: aiohttp.ClientWebSocketResponse) -> None:
    """End the TCP connection under a client WebSocket as a killed process does: a FIN, no Close frame."""
    sock = socket.fromfd(ws.get_extra_info("socket").fileno(), socket.AF_INET, socket.SOCK_STREAM)
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()  # the duplicate descriptor only


async def sio_client(session: aiohttp.ClientSession, base: URL, token: str) -> aiohttp.ClientWebSocketResponse:
    """A Socket.IO client spoken by hand over a WebSocket-only Engine.IO connection, connected to /omni."""
    ws = await session.ws_connect((base / "socket.io/").with_query(EIO=4, transport="websocket"))
    assert (await ws.receive(timeout=TIMEOUT)).data[0] == "0"
    await ws.send_str('40/omni,{"token":"%s"}' % token)
    assert (await ws.receive(timeout=TIMEOUT)).data.startswith('40/omni,{"sid"')
    return ws


class Deaths:
    """Watches objects die, and whether the cyclic collector was running when each did (then it was in a
    reference cycle: reference counting alone would never have freed it)."""

    def __init__(self) -> None:
        self.collecting = False
        self.freed: list[bool] = []  # per death: freed by the collector?
        self.refs: list[weakref.ref[Any]] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:  # a gc.callbacks entry
        self.collecting = phase == "start"

    def watch(self, obj: Any) -> None:
        self.refs.append(weakref.ref(obj, lambda _: self.freed.append(self.collecting)))


@pytest.fixture
def deaths() -> Iterator[Deaths]:
    """The cyclic collector stopped for the test: an object in a cycle stays until the test collects."""
    watcher = Deaths()
    gc.collect()
    gc.disable()
    gc.callbacks.append(watcher)
    yield watcher
    gc.callbacks.remove(watcher)
    gc.enable()


async def test_a_dropped_connection_is_freed_without_the_cyclic_collector(deaths: Deaths) -> None:
    """Raw clients on both envelopes' endpoints and Socket.IO clients vanish. The app is served as `python -m
    app` serves it (web.run_app's runner: a handler goes on when its peer is gone, where aiohttp's test server
    cancels it). Every server-side WebSocket is freed, and none of them by the collector."""
    app = create_app(make_settings())

    async def watch(request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse):
            deaths.watch(response)
    app.on_response_prepare.append(watch)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = URL(f"http://127.0.0.1:{runner.addresses[0][1]}")
    token = make_token()
    try:
        async with aiohttp.ClientSession() as session:
            clients = []
            for i in range(3):
                ws = await session.ws_connect((base / "ws").with_query(token=token))
                assert json.loads((await ws.receive(timeout=TIMEOUT)).data)["event"] == "SESSAO_CONECTADA"
                clients.append(ws)
                ws = await session.ws_connect((base / "api/v1/ws/chat" / f"s{i}").with_query(token=token))
                assert json.loads((await ws.receive(timeout=TIMEOUT)).data)["type"] == "connection"
                clients.append(ws)
                clients.append(await sio_client(session, base, token))
            assert len(deaths.refs) == 9
            for ws in clients:
                drop(ws)
            sio = app[SIO_KEY]
            await until(lambda: not (sio.raw_peers or sio.eio.sockets or sio.writers))  # the server forgets them
            assert not sio.detour
    finally:
        await runner.cleanup()  # python-engineio's sweep may still hold the last socket it passed over
    gc.collect()
    assert len(deaths.freed) == 9, "a WebSocket outlived its server"
    assert deaths.freed == [False] * 9, "WebSockets left in reference cycles, freed only by the collector"
