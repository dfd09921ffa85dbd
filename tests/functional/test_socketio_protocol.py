"""Socket.IO's own protocol, as its reference test suite (socket.io-protocol) checks a server, pinned here
with a raw WebSocket speaking Engine.IO v4 and Socket.IO v5 by hand; and python-socketio's own client
over long-polling and upgrading from it. Malformed packets are in test_attacks.py."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
import socketio

from conftest import TIMEOUT, make_token

EIO_PATH = "/socket.io/?EIO=4&transport=websocket"


async def open_socket(session: aiohttp.ClientSession, server: Any) -> tuple[Any, dict[str, Any]]:
    """A bare Engine.IO WebSocket and its open packet's fields."""
    ws = await session.ws_connect(server.make_url(EIO_PATH))
    opened = await ws.receive(timeout=TIMEOUT)
    assert opened.data[0] == "0", opened
    return ws, json.loads(opened.data[1:])


async def next_text(ws: aiohttp.ClientWebSocketResponse) -> str:
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    return str(msg.data)


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def test_open_packet_and_namespace_connect(server: Any, session: Any) -> None:
    """The open packet carries sid, upgrades, pingInterval, pingTimeout and maxPayload; CONNECT to a served
    namespace with auth is answered `40/omni,{"sid":…}` with a sid of its own."""
    ws, opened = await open_socket(session, server)
    assert set(opened) >= {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert opened["maxPayload"] == 65536 and opened["upgrades"] == []
    await ws.send_str('40/omni,{"token":"%s"}' % make_token())
    connected = await next_text(ws)
    assert connected.startswith("40/omni,")
    sid = json.loads(connected[len("40/omni,"):])["sid"]
    assert sid and sid != opened["sid"]


@pytest.mark.parametrize("namespace", ["/nowhere", "/", "/admin"])
async def test_unknown_namespace_is_invalid(server: Any, session: Any, namespace: str) -> None:
    """CONNECT to a namespace the server does not serve gets CONNECT_ERROR `{"message":"Invalid namespace"}`,
    as socket.io's own server answers, and the socket may still connect a served one."""
    ws, _ = await open_socket(session, server)
    await ws.send_str(f"40{namespace},")
    prefix = "44" if namespace == "/" else f"44{namespace},"
    refused = await next_text(ws)
    assert refused.startswith(prefix) and json.loads(refused[len(prefix):]) == {"message": "Invalid namespace"}
    await ws.send_str('40/omni,{"token":"%s"}' % make_token())
    assert (await next_text(ws)).startswith('40/omni,{"sid"')


async def test_ack_round_trip(server: Any, session: Any) -> None:
    """An event sent with an ack id gets its answer event and an ACK with the same id."""
    ws, _ = await open_socket(session, server)
    await ws.send_str('40/omni,{"token":"%s"}' % make_token())
    await next_text(ws)
    await ws.send_str('42/omni,17["SESSAO_PING",{"request_id":"acked"}]')
    received = [await next_text(ws), await next_text(ws)]
    assert any(text.startswith('42/omni,["SESSAO_PONG"') for text in received), received
    assert "43/omni,17[]" in received, received


@pytest.mark.parametrize("settings_overrides", [{"heartbeat": 1}])  # python-engineio rounds to whole seconds
async def test_ping_pong_and_timeout(server: Any, session: Any) -> None:
    """The server pings every HEARTBEAT; a client that answers pong stays, one that stops answering is
    dropped after the ping interval and timeout (two heartbeats)."""
    ws, opened = await open_socket(session, server)
    assert (opened["pingInterval"], opened["pingTimeout"]) == (1000, 1000)
    await ws.send_str('40/omni,{"token":"%s"}' % make_token())
    await next_text(ws)
    for _ in range(2):  # answered pings keep it open
        assert await next_text(ws) == "2"
        await ws.send_str("3")
    assert await next_text(ws) == "2"
    silent_since = time.monotonic()
    while (msg := await ws.receive(timeout=TIMEOUT)).type is aiohttp.WSMsgType.TEXT:
        assert msg.data in ("2", "1"), msg.data  # more pings, or Engine.IO's close packet
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert 0.9 <= time.monotonic() - silent_since <= 4.0


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_python_client_over_polling_and_upgrade(server: Any, transports: list[str]) -> None:
    """python-socketio's AsyncClient connects over long-polling, and over polling upgraded to WebSocket, and
    is answered like any other client."""
    client = socketio.AsyncClient(reconnection=False)
    pongs: asyncio.Queue[Any] = asyncio.Queue()
    client.on("SESSAO_PONG", pongs.put, namespace="/omni")
    await client.connect(str(server.make_url("/")), namespaces=["/omni"], auth={"token": make_token()},
                         transports=transports, wait_timeout=TIMEOUT)
    try:
        for i in range(3):
            await client.emit("SESSAO_PING", {"request_id": f"p{i}"}, namespace="/omni")
            assert (await asyncio.wait_for(pongs.get(), TIMEOUT))["request_id"] == f"p{i}"
        assert client.transport() == transports[-1]
    finally:
        await client.disconnect()


@pytest.mark.parametrize("settings_overrides", [{"heartbeat": 1}])
async def test_silent_upgrade_is_closed(server: Any, session: Any) -> None:
    """A long-polling client that opens its upgrade WebSocket and never sends the probe does not hold it:
    it is closed after a ping interval and timeout, with 1008, and the polling session stays usable."""
    async with session.get(server.make_url("/socket.io/?EIO=4&transport=polling")) as response:
        sid = json.loads((await response.text())[1:])["sid"]
    ws = await session.ws_connect(server.make_url(f"/socket.io/?EIO=4&transport=websocket&sid={sid}"))
    started = time.monotonic()
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and ws.close_code == 1008, msg
    assert 1.5 <= time.monotonic() - started <= 4.0
