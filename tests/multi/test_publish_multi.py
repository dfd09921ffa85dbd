"""The publish API behind two instances on one real Redis: a publication reaches every instance once."""
from __future__ import annotations

from typing import Any

import aiohttp

from conftest import make_token

NOTICE = {"tipo": "sucesso", "titulo": "Relatório pronto", "mensagem": "Baixe quando quiser"}


async def test_publish_on_one_instance_reaches_both_once(pair: Any, raw_to: Any, sio_to: Any) -> None:
    """Publishing on instance A reaches a raw client on B and a Socket.IO client on A, each exactly once."""
    a, b = pair
    ws = await raw_to(b, "/ws", make_token("carol"))
    io = await sio_to(a, "/omni", {"token": make_token("carol")})
    body = {"namespace": "/omni", "user": "carol", "event": "NOTIFICACAO_GERAL", "data": NOTICE}
    headers = {"Authorization": f"Bearer {make_token('worker', ('publish',))}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(a.make_url("/api/v1/publish"), json=body, headers=headers) as response:
            assert response.status == 202, await response.text()
    assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"] == NOTICE
    assert await io.recv_kind("NOTIFICACAO_GERAL") == NOTICE
    # exactly once: the next message each receives is the answer to a ping sent after the notification
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "after"}})
    assert (await ws.recv())["event"] == "SESSAO_PONG"
    await io.emit("SESSAO_PING", {"request_id": "after"})
    assert (await io.recv())[0] == "SESSAO_PONG"
