"""One emit path: an event emitted once to a room reaches raw-WebSocket and Socket.IO clients alike."""
from __future__ import annotations

from typing import Any

from app.factory import SIO_KEY
from conftest import create_investigation, make_token
from schemas import cidadao, omni


async def test_room_emit_reaches_both_transports(server: Any, raw: Any, sio: Any) -> None:
    """A single emit to user:{sub} arrives at a raw /ws client and a Socket.IO /omni client of that user."""
    token = make_token("alice")
    ws = await raw("/ws", token)
    io = await sio("/omni", auth={"token": token})
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "sync"}})
    await ws.recv_kind("SESSAO_PONG")
    await io.emit("SESSAO_PING", {"request_id": "sync"})
    await io.recv_kind("SESSAO_PONG")
    payload = {"tipo": "info", "titulo": "Sistema Atualizado", "mensagem": "Nova versão"}
    await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", payload, room="user:alice", namespace="/omni")
    raw_message = await ws.recv_kind("NOTIFICACAO_GERAL")
    assert raw_message["data"] == payload and raw_message["timestamp"].endswith("Z")
    assert await io.recv_kind("NOTIFICACAO_GERAL") == payload
    omni.NotificacaoGeral.model_validate(payload)


async def test_other_users_do_not_receive_room_emit(server: Any, raw: Any) -> None:
    """An emit to user:alice does not reach bob's connection."""
    alice, bob = await raw("/ws", make_token("alice")), await raw("/ws", make_token("bob"))
    await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {"tipo": "info", "titulo": "a", "mensagem": "b"},
                                   room="user:alice", namespace="/omni")
    await alice.recv_kind("NOTIFICACAO_GERAL")
    await bob.send({"event": "SESSAO_PING", "data": {"request_id": "after"}})
    assert (await bob.recv())["event"] == "SESSAO_PONG"


async def test_investigation_room_mixes_transports(server: Any, raw: Any, sio: Any) -> None:
    """anomaly_detected emitted to investigation:{id} reaches a raw endpoint client, a raw chat subscriber
    and a Socket.IO subscriber, each as a valid Cidadão message."""
    token = make_token("ana")
    inv_id = await create_investigation(server, token)
    endpoint = await raw(f"/api/v1/ws/investigations/{inv_id}", token)
    await endpoint.recv_kind("connection")
    chat = await raw("/api/v1/ws/chat/s1", token)
    await chat.recv_kind("connection")
    await chat.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    assert (await chat.recv_kind("subscribed"))["data"]["status"] == "subscribed"
    io = await sio("/chat", auth={"token": token, "session_id": "s1"})
    await io.recv_kind("connection")
    await io.emit("subscribe", {"investigation_id": inv_id})
    await io.recv_kind("subscribed")
    anomaly = {"investigation_id": inv_id, "severity": "high", "description": "Preço 300% acima",
               "details": {"contract_id": "CNT-1", "expected_value": 100000, "actual_value": 400000}}
    await server.app[SIO_KEY].emit("anomaly_detected", anomaly, room=f"investigation:{inv_id}",
                                   namespace="/investigations")
    await server.app[SIO_KEY].emit("anomaly_detected", anomaly, room=f"investigation:{inv_id}",
                                   namespace="/chat")
    for client in (endpoint, chat):
        while "offset" not in (message := await client.recv_kind("anomaly_detected")):
            pass  # the investigation's own anomalies, replayed to a late follower (without offsets), first
        cidadao.Envelope.model_validate(message)
        assert message["id"] and message["timestamp"].endswith("Z") and message["data"] == anomaly
        cidadao.AnomalyDetected.model_validate(message["data"])
    while (data := await io.recv_kind("anomaly_detected")) != anomaly:
        assert data["details"]["contract_id"] != anomaly["details"]["contract_id"], data  # replayed, earlier


async def test_room_emit_of_every_frame_size(server: Any, raw: Any, sio: Any) -> None:
    """A room's event is framed once and written as is to every recipient: texts of each WebSocket length
    encoding (7-bit, 16-bit, 64-bit), with multi-byte UTF-8, arrive intact on both transports."""
    token = make_token("sizes")
    ws, ws2 = await raw("/ws", token), await raw("/ws", token)
    io = await sio("/omni", auth={"token": token})
    for client in (ws, ws2):
        await client.send({"event": "SESSAO_PING", "data": {"request_id": "sync"}})
        await client.recv_kind("SESSAO_PONG")
    await io.emit("SESSAO_PING", {"request_id": "sync"})
    await io.recv_kind("SESSAO_PONG")
    for size in (1, 60, 200, 70_000):
        payload = {"tipo": "info", "titulo": "ç" * size, "mensagem": "m"}
        await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", payload, room="user:sizes", namespace="/omni")
        for client in (ws, ws2):
            assert (await client.recv_kind("NOTIFICACAO_GERAL"))["data"] == payload
        assert await io.recv_kind("NOTIFICACAO_GERAL") == payload
