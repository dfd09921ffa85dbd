"""Redis faults never take the service down: absent at start, killed and restarted mid-stream."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from app.factory import SIO_KEY
from conftest import TIMEOUT, RedisProcess, free_port, make_token

NOTICE = {"tipo": "info", "titulo": "t", "mensagem": "m"}


async def until(condition: Any, timeout: float = TIMEOUT) -> float:
    """Wait for a real condition of the server, polled briefly; the seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    return time.monotonic() - started


async def readyz(server: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/readyz")) as response:
            return response.status, await response.json()


async def test_redis_absent_at_start(start_server: Any, raw_to: Any, sio_to: Any) -> None:
    """Without Redis the server starts, serves local clients, reports degraded (and stays ready: it serves its
    own clients), and joins the fan-out once Redis appears."""
    redis = RedisProcess(free_port())  # not started yet
    a = await start_server(redis_url=redis.url)
    b = await start_server(redis_url=redis.url)
    # degraded, still serving its own
    assert await readyz(a) == (200, {"status": "degraded", "redis": "down", "database": "up"})
    ws = await raw_to(a, "/ws", make_token("alice"))
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "local"}})
    assert (await ws.recv_kind("SESSAO_PONG"))["data"]["request_id"] == "local"
    redis.start()
    try:
        await until(lambda: a.app[SIO_KEY].manager.subscribed and b.app[SIO_KEY].manager.subscribed)
        code, body = await readyz(a)
        assert code == 200 and (body["status"], body["redis"]) == ("ready", "up")
        # alice connected while her preferences could not be read: until they are read again, only what she
        # cannot turn off reaches her (app/prefs.py), such as a notification without a tipo
        untyped = {"titulo": "t", "mensagem": "m"}
        await b.app[SIO_KEY].emit("NOTIFICACAO_GERAL", untyped, room="user:alice", namespace="/omni")
        assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"] == untyped
    finally:
        redis.stop()


async def test_redis_killed_and_restarted_mid_stream(start_server: Any, redis_server: Any, raw_to: Any,
                                                     sio_to: Any) -> None:
    """Killing Redis disconnects no client and crashes nothing; what could not be published is
    counted; fan-out across instances is back within 5 s of Redis returning."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url)
    await until(lambda: a.app[SIO_KEY].manager.subscribed and b.app[SIO_KEY].manager.subscribed)
    token = make_token("alice")
    ws = await raw_to(b, "/ws", token)
    io = await sio_to(b, "/omni", {"token": token})
    await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": "before"}, room="user:alice",
                              namespace="/omni")
    assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "before"
    assert (await io.recv_kind("NOTIFICACAO_GERAL"))["titulo"] == "before"

    redis_server.stop()
    await until(lambda: not a.app[SIO_KEY].manager.subscribed)
    manager = a.app[SIO_KEY].manager
    for n in range(5):
        await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": f"lost {n}"}, room="user:alice",
                                  namespace="/omni")
    await until(lambda: manager.publish_failures >= 5)
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "still here"}})
    assert (await ws.recv_kind("SESSAO_PONG"))["data"]["request_id"] == "still here"
    await io.emit("SESSAO_PING", {"request_id": "still here"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "still here"

    redis_server.start()
    back = await until(lambda: manager.subscribed and b.app[SIO_KEY].manager.subscribed, timeout=5)
    assert back < 5
    await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": "after"}, room="user:alice",
                              namespace="/omni")
    assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "after"
    assert (await io.recv_kind("NOTIFICACAO_GERAL"))["titulo"] == "after"
    assert not io.disconnected.is_set()
    async with aiohttp.ClientSession() as session:
        async with session.get(a.make_url("/metrics")) as response:
            text = await response.text()
    assert "ponte_publish_failures_total 5.0" in text and "ponte_redis_up 1.0" in text


@pytest.mark.parametrize("scheme", ["rediss", "redis+sentinel"])
async def test_other_redis_url_schemes_are_accepted(start_server: Any, scheme: str) -> None:
    """rediss:// and redis+sentinel:// URLs build a client; with nothing there the server is degraded."""
    port = free_port()
    url = f"rediss://127.0.0.1:{port}/0" if scheme == "rediss" else f"redis+sentinel://127.0.0.1:{port}/0/mymaster"
    server = await start_server(redis_url=url, redis_tls_verify=False)
    assert (await readyz(server))[1]["redis"] == "down"
