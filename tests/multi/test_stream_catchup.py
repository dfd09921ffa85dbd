"""Events to rooms cross instances through Redis streams: an instance that loses its reading connection
reads on from where it stopped, so nothing sent meanwhile is lost to its clients (with pub/sub, a killed
subscription lost every event published until it was back)."""
from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from app.factory import SIO_KEY
from conftest import make_token
from tests.multi.test_redis_faults import until

NOTICE = {"tipo": "info", "titulo": "t", "mensagem": "m"}


async def test_killed_stream_readers_miss_nothing(start_server: Any, redis_server: Any, raw_to: Any) -> None:
    """Kill every connection blocked in XREAD (both instances' readers) and publish 7 events on A at once:
    B's client gets all 7, once each, in order, with increasing offsets."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url)
    await until(lambda: "/omni" in a.app[SIO_KEY].manager.frontier and "/omni" in b.app[SIO_KEY].manager.frontier)
    ws = await raw_to(b, "/ws", make_token("alice"))
    await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": "first"}, room="user:alice", namespace="/omni")
    assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "first"

    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        readers = [line for line in await admin.client_list() if line.get("cmd") == "xread"]
        assert len(readers) >= 2, readers  # one per instance
        for reader in readers:
            await admin.client_kill_filter(_id=reader["id"])
    finally:
        await admin.aclose()
    for n in range(7):
        await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": f"during {n}"}, room="user:alice",
                                  namespace="/omni")
    got = [await ws.recv_kind("NOTIFICACAO_GERAL") for _ in range(7)]
    assert [m["data"]["titulo"] for m in got] == [f"during {n}" for n in range(7)]
    offsets = [tuple(int(part) for part in m["offset"].split("-")) for m in got]
    assert offsets == sorted(set(offsets)), offsets
    assert b.app[SIO_KEY].manager.history_gaps == 0
