"""Session-level events of both documents, on raw WebSocket and Socket.IO."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import aiohttp
import jwt
import pytest

from app.factory import SIO_KEY
from conftest import SECRET, SioClient, create_investigation, make_token
from schemas import cidadao, omni


def omni_valid(message: dict[str, Any]) -> dict[str, Any]:
    """Check an Omni message against its outbound schema and return its data."""
    name = message.get("event", message.get("type"))
    omni.OUTBOUND[name].model_validate(message["data"])
    return message["data"]


def cidadao_valid(message: dict[str, Any]) -> dict[str, Any]:
    """Check a Cidadão message's envelope (timestamp and id present) and payload schema."""
    assert message["timestamp"].endswith("Z") and message["id"]
    cidadao.OUTBOUND[message["type"]].model_validate(message["data"])
    return message["data"]


async def test_sessao_ping_answers_with_request_id(raw: Any) -> None:
    """SESSAO_PING gets SESSAO_PONG with the same request_id and the server time."""
    ws = await raw("/ws", make_token())
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "req_123462"}, "timestamp": "2024-12-19T23:00:00Z"})
    message = await ws.recv()
    assert message["event"] == "SESSAO_PONG" and set(message) == {"event", "data", "timestamp"}
    assert omni_valid(message)["request_id"] == "req_123462"


async def test_answers_carry_no_null_request_id(raw: Any) -> None:
    """Without a request_id the answers carry none at all (never `request_id: null`): SESSAO_PONG, pong and
    MONITORAMENTO_CONFIRMADO."""
    ws = await raw("/ws", make_token())
    for event in ("SESSAO_PING", "ping", "MONITORAMENTO_PARAR"):
        await ws.send({"event": event, "data": {}})
        message = await ws.recv()
        assert message["event"] != "ERRO" and "request_id" not in message["data"], message


async def test_type_form_is_answered_in_type_form(raw: Any) -> None:
    """The web client's {type,...} ping and heartbeat get a {type: pong} answer with an id."""
    ws = await raw("/ws", make_token())
    for kind in ("ping", "heartbeat"):
        await ws.send({"type": kind, "data": {"request_id": kind}, "timestamp": "2024-12-19T23:00:00Z", "id": "c1"})
        message = await ws.recv()
        assert message["type"] == "pong" and message["id"] and omni_valid(message)["request_id"] == kind
    await ws.send({"type": "SESSAO_PING", "data": {"request_id": "t"}})
    assert (await ws.recv())["type"] == "SESSAO_PONG"
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "e"}})
    assert (await ws.recv())["event"] == "SESSAO_PONG"


async def test_socketio_sessao_ping(sio: Any) -> None:
    """A Socket.IO client on /omni uses the same event name and data object."""
    io = await sio("/omni", auth={"token": make_token()})
    await io.emit("SESSAO_PING", {"request_id": "s1"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "s1"


async def test_chat_connection_message_and_ping(raw: Any, sio: Any) -> None:
    """Both transports get `connection` on connect, then pong for ping; anonymous is allowed."""
    ws = await raw("/api/v1/ws/chat/abc-123")
    data = cidadao_valid(await ws.recv())
    assert data == {"status": "connected", "session_id": "abc-123", "message": "Conectado ao Cidadão.AI em tempo real"}
    await ws.send({"type": "ping", "data": {}})
    cidadao_valid(await ws.recv_kind("pong"))
    io = await sio("/chat", auth={"session_id": "abc-123"})
    assert (await io.recv_kind("connection"))["session_id"] == "abc-123"
    await io.emit("ping", {})
    assert "server_time" in await io.recv_kind("pong")


async def test_socketio_takes_ids_from_query_string(server: Any) -> None:
    """A Socket.IO client may give token and session_id in the query string instead of auth."""
    io = SioClient("/chat")
    url = str(server.make_url("/").with_query(session_id="qs-1", token=make_token()))
    await io.client.connect(url, namespaces=["/chat"], transports=["websocket"])
    try:
        assert (await io.recv_kind("connection"))["session_id"] == "qs-1"
    finally:
        await io.client.disconnect()


async def test_subscribe_and_unsubscribe(server: Any, raw: Any) -> None:
    """subscribe joins investigation:{id} with a confirmation (then its state); unsubscribe leaves it."""
    inv_id = await create_investigation(server, make_token("ana"))
    ws = await raw("/api/v1/ws/chat/s2", make_token("ana"))
    await ws.recv_kind("connection")
    await ws.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    confirmation = cidadao_valid(await ws.recv_kind("subscribed"))
    assert confirmation == {"investigation_id": inv_id, "status": "subscribed"}
    snapshot = cidadao_valid(await ws.snapshot())
    assert (snapshot["investigation_id"], snapshot["update_type"]) == (inv_id, "snapshot")
    progress = {"investigation_id": inv_id, "update_type": "progress", "progress": 45,
                "status": "analyzing_contracts", "message": "Analisando 1.234 contratos..."}
    await server.app[SIO_KEY].emit("investigation_progress", progress, room=f"investigation:{inv_id}",
                                   namespace="/chat")
    assert cidadao_valid(await ws.recv_kind("investigation_progress")) == progress
    await ws.send({"type": "unsubscribe", "data": {"investigation_id": inv_id}})
    assert cidadao_valid(await ws.recv_kind("unsubscribed"))["status"] == "unsubscribed"
    await server.app[SIO_KEY].emit("investigation_progress", progress, room=f"investigation:{inv_id}",
                                   namespace="/chat")
    await ws.send({"type": "ping", "data": {}})
    assert (await ws.recv())["type"] == "pong"  # nothing from the room came first


async def test_typing_reaches_the_other_clients_debounced(raw: Any, sio: Any) -> None:
    """typing from a raw client reaches a Socket.IO client of the session, not the sender; repeats
    within the debounce interval are dropped, a change of state is not."""
    ws = await raw("/api/v1/ws/chat/s3")
    await ws.recv_kind("connection")
    io = await sio("/chat", auth={"session_id": "s3"})
    await io.recv_kind("connection")
    await ws.send({"type": "typing", "data": {"agent": "processing"}})
    data = await io.recv_kind("typing")
    assert data == {"agent": "processing", "session_id": "s3", "is_typing": True}
    cidadao.Typing.model_validate(data)
    await ws.send({"type": "typing", "data": {"agent": "processing"}})  # within the debounce: dropped
    await ws.send({"type": "typing", "data": {"is_typing": False}})
    assert (await io.recv_kind("typing"))["is_typing"] is False
    await ws.send({"type": "ping", "data": {}})
    seen = []
    while (message := await ws.recv())["type"] != "pong":
        seen.append(message["type"])
    assert seen == ["presence"], seen  # the Socket.IO client joining; the sender never got its own typing


@pytest.mark.parametrize("settings_overrides", [{"heartbeat": 0.3}])
async def test_investigations_endpoint_heartbeat(server: Any, raw: Any, settings_overrides: Any) -> None:
    """The investigations endpoint pushes a `heartbeat` message every HEARTBEAT seconds."""
    token = make_token(scopes=("investigations",))
    inv_id = await create_investigation(server, token)
    ws = await raw(f"/api/v1/ws/investigations/{inv_id}", token)
    assert cidadao_valid(await ws.recv_kind("connection"))["investigation_id"] == inv_id
    cidadao_valid(await ws.recv_kind("heartbeat", timeout=3))
    cidadao_valid(await ws.recv_kind("heartbeat", timeout=3))


def test_token_command_signs_with_the_configured_key() -> None:
    """`python -m app token` prints a token the server accepts, with user scopes by default."""
    env = {**os.environ, "JWT_SECRET": SECRET}
    out = subprocess.run([sys.executable, "-m", "app", "token", "--sub", "bob"], env=env, check=True,
                         capture_output=True, text=True, timeout=30).stdout.strip()
    claims = jwt.decode(out, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "bob" and set(claims["scope"].split()) == {
        "executions", "notifications", "monitoring", "chat", "investigations"}
    scoped = subprocess.run([sys.executable, "-m", "app", "token", "--sub", "ops", "--scope", "publish",
                             "--ttl", "60"], env=env, check=True, capture_output=True, text=True,
                            timeout=30).stdout.strip()
    claims = jwt.decode(scoped, SECRET, algorithms=["HS256"])
    assert claims["scope"] == "publish" and claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize("settings_overrides", [{"heartbeat": 0.3}])
async def test_dead_raw_peer_is_dropped(server: Any, raw: Any, settings_overrides: Any) -> None:
    """A raw client that never answers the server's WebSocket pings is disconnected by the heartbeat."""
    ws = await raw("/api/v1/ws/chat/dead", autoping=False)
    pings = 0
    async with asyncio.timeout(5):
        while True:
            msg = await ws.ws.receive()
            if msg.type is aiohttp.WSMsgType.PING:
                pings += 1  # seen, never answered
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                break
    assert pings >= 1
    fresh = await raw("/api/v1/ws/chat/alive")
    assert (await fresh.recv_kind("connection"))["data"]["session_id"] == "alive"
