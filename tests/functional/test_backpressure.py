"""A client that stops reading is disconnected once its bounded send queue is full, and the others
keep receiving."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.factory import SIO_KEY
from conftest import SioClient, make_token

BIG = "x" * 60000


async def flood(server: Any, count: int) -> None:
    sio = server.app[SIO_KEY]
    for n in range(count):
        await sio.emit("NOTIFICACAO_GERAL", {"tipo": "info", "titulo": str(n), "mensagem": BIG},
                       room="user:slow", namespace="/omni")


@pytest.mark.parametrize("settings_overrides", [{"send_queue_limit": 16}])
async def test_raw_slow_consumer_is_closed(server: Any, raw: Any, settings_overrides: Any) -> None:
    """A raw client that does not read is closed with 1008 once its queue overflows; a reading
    client in another room is unaffected."""
    slow = await raw("/ws", make_token("slow"))
    healthy = await raw("/ws", make_token("healthy"))
    await flood(server, 400)
    code, reason = await slow.closed(20)  # after what was buffered before the close frame
    assert code == 1008 and "overflow" in reason
    await healthy.send({"event": "SESSAO_PING", "data": {"request_id": "ok"}})
    assert (await healthy.recv_kind("SESSAO_PONG"))["data"]["request_id"] == "ok"


@pytest.mark.parametrize("settings_overrides", [{"send_queue_limit": 16}])
async def test_socketio_slow_consumer_is_disconnected(server: Any, sio: Any, settings_overrides: Any) -> None:
    """A Socket.IO connection whose queue overflows is disconnected instead of buffering without bound."""
    sock = server.app[SIO_KEY].eio
    slow = SioClient("/omni")
    await slow.client.connect(str(server.make_url("/")), namespaces=["/omni"], auth={"token": make_token("slow")},
                              transports=["websocket"])
    transport = slow.client.eio.ws._response._connection.transport
    transport.pause_reading()  # stop reading, as a stuck client would
    await flood(server, 400)
    transport.resume_reading()
    await asyncio.wait_for(slow.disconnected.wait(), 20)
    assert slow.events.qsize() < 400  # the backlog was dropped, not delivered
    assert not sock.sockets
