"""Events to rooms cross instances on their rooms' channels and are kept in Redis streams: an instance that
loses its subscription subscribes again and reads the stream on from the last event it delivered, so
nothing sent meanwhile to its rooms is lost to its clients (with plain pub/sub, a killed subscription lost
every event published until it was back)."""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from app.factory import SIO_KEY
from conftest import TIMEOUT, make_token, served_app
from tests.functional.test_ops import get, samples
from tests.multi.test_redis_faults import until
from tests.multi.worker_fixtures import Address

NOTICE = {"tipo": "info", "titulo": "t", "mensagem": "m"}


async def test_killed_subscriptions_miss_nothing(start_server: Any, redis_server: Any, raw_to: Any) -> None:
    """Kill every pub/sub connection (both instances' subscriptions) and publish 7 events on A at once:
    B's client gets all 7, once each, in order, with increasing offsets."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url)
    await until(lambda: "/omni" in a.app[SIO_KEY].manager.frontier and "/omni" in b.app[SIO_KEY].manager.frontier)
    ws = await raw_to(b, "/ws", make_token("alice"))
    await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": "first"}, room="user:alice", namespace="/omni")
    assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "first"

    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        readers = [line for line in await admin.client_list() if "P" in line.get("flags", "")]
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
    assert b.app[SIO_KEY].manager.listener.history_gaps == 0


async def test_an_instance_that_falls_behind_counts_what_was_trimmed(
        start_server: Any, redis_server: Any, raw_to: Any, tmp_path: Path) -> None:
    """A gateway stopped (SIGSTOP, a starved process) while far more than HISTORY_SIZE events go to a room
    its client is in, until Redis cuts its subscription (its output buffer for the subscriber is full): once
    back, the entries trimmed before it read them are counted as a gap (ponte_history_gaps_total and a
    warning), never skipped silently; then it delivers what is left, in order, to the last one."""
    async with served_app(tmp_path, REDIS_URL=redis_server.url, HISTORY_SIZE="10") as served:
        b = Address(served.base)
        ws = await raw_to(b, "/ws", make_token("alice"))
        await ws.send({"event": "SESSAO_PING", "data": {}})
        await ws.recv_kind("SESSAO_PONG")  # connected, in her rooms
        a = await start_server(redis_url=redis_server.url, history_size=10)
        await until(lambda: "/omni" in a.app[SIO_KEY].manager.frontier)
        admin = aioredis.Redis.from_url(redis_server.url)
        await admin.config_set("client-output-buffer-limit", "pubsub 256kb 128kb 1")
        stream = a.app[SIO_KEY].manager.history.stream("/omni")
        served.proc.send_signal(signal.SIGSTOP)
        try:
            added = (await admin.xinfo_stream(stream))["entries-added"]
            for n in range(400):  # 20 MB to B: more than its socket buffers and Redis's limit for it together
                await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": f"n{n}", "mensagem": "m" * 50_000},
                                          room="user:alice", namespace="/omni")
            async with asyncio.timeout(TIMEOUT):  # all 400 in the stream, and most of them trimmed already
                while (info := await admin.xinfo_stream(stream))["entries-added"] < added + 400:
                    await asyncio.sleep(0.02)
            assert info["length"] < 300, info
        finally:
            served.proc.send_signal(signal.SIGCONT)
            await admin.aclose()
        titles = []
        while (title := (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"]) != "n399":
            titles.append(title)
        assert len(titles) < 399 and titles == sorted(titles, key=lambda t: int(t[1:])), titles
        await served.read_until("was trimmed past what this instance had read")
        gaps = samples((await get(b, "/metrics"))[1])[("ponte_history_gaps_total", ())]
        assert gaps >= 1
