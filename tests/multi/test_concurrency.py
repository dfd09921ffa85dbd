"""One concurrency model for both transports: a connection's messages are handled one at a time, in
the order sent. A handler that waits on Redis (NOTIFICACAO_CONFIGURAR stores the preferences there)
is answered before the ping sent right after it, on raw WebSocket and on Socket.IO alike; with a task
per event (python-socketio's default) the ping overtakes it."""
from __future__ import annotations

from typing import Any

import pytest

from conftest import make_token

ROUNDS = 5


def configure(request_id: str) -> dict[str, Any]:
    return {"tipos": ["info"], "canal": "websocket", "request_id": request_id}


@pytest.mark.parametrize("transport", ["raw", "socketio"])
async def test_messages_are_answered_in_the_order_sent(start_server: Any, redis_server: Any, raw_to: Any,
                                                       sio_to: Any, transport: str) -> None:
    """Bursts of NOTIFICACAO_CONFIGURAR (a Redis write) then SESSAO_PING: the answers come back in the
    same order, every time."""
    server = await start_server(redis_url=redis_server.url)
    answers: list[str] = []
    if transport == "raw":
        ws = await raw_to(server, "/ws", make_token("orderly"))
        for i in range(ROUNDS):
            await ws.send({"event": "NOTIFICACAO_CONFIGURAR", "data": configure(f"c{i}")})
            await ws.send({"event": "SESSAO_PING", "data": {"request_id": f"p{i}"}})
        for _ in range(2 * ROUNDS):
            message = await ws.recv()
            answers.append(message["data"]["request_id"])
    else:
        client = await sio_to(server, "/omni", {"token": make_token("orderly")})
        for i in range(ROUNDS):
            await client.emit("NOTIFICACAO_CONFIGURAR", configure(f"c{i}"))
            await client.emit("SESSAO_PING", {"request_id": f"p{i}"})
        for _ in range(2 * ROUNDS):
            _, data = await client.recv()
            answers.append(data["request_id"])
    assert answers == [name for i in range(ROUNDS) for name in (f"c{i}", f"p{i}")]
