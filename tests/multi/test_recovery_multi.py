"""Connection-state recovery behind two instances on one real redis-server: a raw client dropped from
instance A comes back on B with `?pid=&since=` and gets every event it missed, whichever instance emitted
it, in order, once; when Redis lost its data it is told to resync instead."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import aiohttp
import pytest

from app.keys import SIO_KEY
from conftest import TIMEOUT, RawClient, make_token

NAMESPACE, ROOM, EVENT = "/omni", "user:alice", "NOTIFICACAO_GERAL"
CHAT = {"path": "/api/v1/ws/chat/multi-s1", "namespace": "/chat", "room": "session:multi-s1", "event": "chat",
        "first": "connection"}
OMNI = {"path": "/ws", "namespace": NAMESPACE, "room": ROOM, "event": EVENT, "first": "SESSAO_CONECTADA"}
Where = dict[str, str]  # an endpoint and the room its client is in


def notice(where: Where, n: int) -> dict[str, Any]:
    if where is CHAT:
        return {"role": "assistant", "content": f"c{n}", "chunk": False}
    return {"tipo": "info", "titulo": f"t{n}", "mensagem": "m"}


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll a real condition of the servers until it holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def receive(client: RawClient, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next message as sent (SESSAO_CONECTADA included)."""
    msg = await client.ws.receive(timeout=timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data!r} {msg.extra!r}"
    return json.loads(msg.data)  # type: ignore[no-any-return]


async def head(where: Where, server: Any) -> Any:
    """The id of the last entry of the namespace's history stream in Redis."""
    manager = server.app[SIO_KEY].manager
    rows = await manager.redis.xrevrange(manager.history.stream(where["namespace"]), "+", "-", count=1)
    return rows[0][0] if rows else None


async def emit_on(where: Where, server: Any, n: int) -> None:
    """Emit event `n` on `server` and wait until it is in the namespace's stream (so the order of events
    emitted on different instances is the order of these calls)."""
    before = await head(where, server)
    await server.app[SIO_KEY].emit(where["event"], notice(where, n), room=where["room"], namespace=where["namespace"])
    async with asyncio.timeout(TIMEOUT):
        while await head(where, server) == before:
            await asyncio.sleep(0.01)


async def connect(where: Where, raw_to: Any, server: Any, **query: str) -> tuple[RawClient, dict[str, Any]]:
    """A raw client of alice and its first message (SESSAO_CONECTADA on /ws, connection on chat)."""
    client = await raw_to(server, where["path"], make_token("alice"), params=query or None)
    first = await receive(client)
    assert kind(first) == where["first"] and first["offset"] and first["recovery"]["pid"], first
    return client, first


async def live(where: Where, server: Any, client: RawClient, n: int) -> str:
    """Emit event `n` on `server`; the client gets it, with its offset (returned)."""
    await server.app[SIO_KEY].emit(where["event"], notice(where, n), room=where["room"], namespace=where["namespace"])
    message = await receive(client)
    assert kind(message) == where["event"] and message["data"] == notice(where, n) and message["offset"], message
    return str(message["offset"])


async def nothing_more(where: Where, client: RawClient) -> None:
    """The next message is the answer to a ping sent now: nothing arrives twice or late."""
    if where is CHAT:
        await client.send({"type": "ping", "data": {}})
    else:
        await client.send({"event": "SESSAO_PING", "data": {"request_id": "sync"}})
    message = await receive(client)
    assert kind(message) in ("SESSAO_PONG", "pong") and "offset" not in message, message


def kind(message: dict[str, Any]) -> str:
    return str(message.get("event", message.get("type")))


async def dropped(where: Where, server: Any, client: RawClient, pid: str) -> None:
    """Close the client's WebSocket and wait until `server` has seen it leave."""
    sio = server.app[SIO_KEY]
    sid = next(sid for sid, known in sio.pids.items() if known == pid)
    await client.ws.close()
    await until(lambda: sid not in sio.pids and not sio.manager.get_rooms(sid, where["namespace"]))


@pytest.fixture(params=["ws", "chat"])
def where(request: Any) -> Where:
    """/ws (Omni) and the Cidadão.AI chat endpoint, in turn."""
    return OMNI if request.param == "ws" else CHAT


async def test_client_of_a_comes_back_on_b_with_everything_it_missed(pair: Any, raw_to: Any, where: Where) -> None:
    """Dropped from A; events emitted on A and on B meanwhile; back on B: recovered, every missed event
    in order, once, with the offsets A would have sent; then live events from either instance."""
    a, b = pair
    client, first = await connect(where, raw_to, a)
    pid = first["recovery"]["pid"]
    assert first["recovery"] == {"pid": pid, "recovered": False, "missed": 0}, first
    since = await live(where, a, client, 0)
    await dropped(where, a, client, pid)
    for n, instance in ((1, a), (2, b), (3, a), (4, b)):
        await emit_on(where, instance, n)

    back, first = await connect(where, raw_to, b, pid=pid, since=since)
    assert first["recovery"] == {"pid": pid, "recovered": True, "missed": 4}, first
    assert first["offset"] == since, first
    missed = [await receive(back) for _ in range(4)]
    assert [(kind(m), m["data"]) for m in missed] == [(where["event"], notice(where, n)) for n in (1, 2, 3, 4)], missed
    assert len({m["offset"] for m in missed} | {since}) == 5, missed
    await live(where, a, back, 5)
    await live(where, b, back, 6)
    await nothing_more(where, back)


async def test_not_recovered_after_redis_lost_its_data(pair: Any, raw_to: Any, redis_server: Any,
                                                       where: Where) -> None:
    """Redis restarted without persistence: history and sessions are gone, so a client coming back is
    told to resync (never a partial replay); live events reach it again."""
    a, b = pair
    client, first = await connect(where, raw_to, a)
    pid = first["recovery"]["pid"]
    since = await live(where, a, client, 0)
    await dropped(where, a, client, pid)
    await emit_on(where, a, 1)
    redis_server.stop()
    await until(lambda: not a.app[SIO_KEY].manager.subscribed and not b.app[SIO_KEY].manager.subscribed)
    redis_server.start()
    await until(lambda: a.app[SIO_KEY].manager.subscribed and b.app[SIO_KEY].manager.subscribed)
    # each instance finds its history stream gone and says so (ponte_history_gaps_total)
    gaps = [server.app[SIO_KEY].manager.listener for server in (a, b)]
    await until(lambda: all(listener.history_gaps > 0 for listener in gaps))
    await emit_on(where, a, 2)

    back, first = await connect(where, raw_to, b, pid=pid, since=since)
    assert first["recovery"]["recovered"] is False and first["recovery"]["resync"] is True, first
    assert first["recovery"]["missed"] == 0 and first["recovery"]["pid"] != pid, first
    await nothing_more(where, back)
    await live(where, a, back, 3)
