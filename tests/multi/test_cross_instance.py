"""Two instances behind one real Redis behave as one server."""
from __future__ import annotations

import asyncio
from typing import Any

import socketio

from app.factory import SIO_KEY
from conftest import TIMEOUT, make_token

NOTICE = {"tipo": "info", "titulo": "Sistema Atualizado", "mensagem": "Nova versão"}


async def test_room_emit_reaches_every_instance_once(pair: Any, raw_to: Any, sio_to: Any) -> None:
    """An emit on instance A reaches raw and Socket.IO clients on A and B, each exactly once."""
    a, b = pair
    token = make_token("alice")
    clients = [await raw_to(a, "/ws", token), await raw_to(b, "/ws", token)]
    ios = [await sio_to(a, "/omni", {"token": token}), await sio_to(b, "/omni", {"token": token})]
    await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", NOTICE, room="user:alice", namespace="/omni")
    for ws in clients:
        assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"] == NOTICE
    for io in ios:
        assert await io.recv_kind("NOTIFICACAO_GERAL") == NOTICE
    for ws in clients:  # exactly once: the next message is the answer to a ping
        await ws.send({"event": "SESSAO_PING", "data": {"request_id": "after"}})
        assert (await ws.recv())["event"] == "SESSAO_PONG"
    for io in ios:
        await io.emit("SESSAO_PING", {"request_id": "after"})
        assert (await io.recv())[0] == "SESSAO_PONG"


async def test_typing_crosses_instances(pair: Any, raw_to: Any, sio_to: Any) -> None:
    """A client's typing on instance A reaches a Socket.IO client of the same session on instance B."""
    a, b = pair
    ws = await raw_to(a, "/api/v1/ws/chat/shared")
    await ws.recv_kind("connection")
    io = await sio_to(b, "/chat", {"session_id": "shared"})
    await io.recv_kind("connection")
    await ws.send({"type": "typing", "data": {"agent": "processing"}})
    assert (await io.recv_kind("typing"))["session_id"] == "shared"


async def test_replies_to_local_clients_do_not_cross_redis(pair: Any, raw_to: Any) -> None:
    """A reply to a client of this instance is delivered locally and never published."""
    a, _ = pair
    ws = await raw_to(a, "/ws", make_token())
    manager = a.app[SIO_KEY].manager
    await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", NOTICE, room="user:alice", namespace="/omni")
    await ws.recv_kind("NOTIFICACAO_GERAL")
    async with asyncio.timeout(TIMEOUT):  # the room emit itself is published
        while manager.published < 1:
            await asyncio.sleep(0.01)
    before = manager.published
    for n in range(20):
        await ws.send({"event": "SESSAO_PING", "data": {"request_id": str(n)}})
        await ws.recv_kind("SESSAO_PONG")
    assert manager.outbox.empty() and manager.published == before and manager.publish_failures == 0


async def test_external_emitter_reaches_raw_and_socketio_clients(
        pair: Any, raw_to: Any, sio_to: Any, redis_server: Any) -> None:
    """python-socketio's write-only AsyncRedisManager, used by a process that is not Ponte, emits to
    raw-WebSocket and Socket.IO clients on both instances."""
    a, b = pair
    token = make_token("bob")
    ws = await raw_to(a, "/ws", token)
    io = await sio_to(b, "/omni", {"token": token})
    emitter = socketio.AsyncRedisManager(redis_server.url, write_only=True)
    await emitter.emit("NOTIFICACAO_GERAL", NOTICE, namespace="/omni", room="user:bob")
    assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"] == NOTICE
    assert await io.recv_kind("NOTIFICACAO_GERAL") == NOTICE
    await emitter.redis.aclose()
