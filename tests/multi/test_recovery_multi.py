"""Connection-state recovery behind two instances on one real redis-server: a raw client dropped from
instance A comes back on B with `?pid=&since=` and gets every event it missed, whichever instance emitted
it, in order, once; when Redis lost its data it is told to resync instead."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import aiohttp

from app.keys import SIO_KEY
from conftest import TIMEOUT, RawClient, make_token

NAMESPACE, ROOM, EVENT = "/omni", "user:alice", "NOTIFICACAO_GERAL"


def notice(n: int) -> dict[str, Any]:
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


def frontier(server: Any) -> str | None:
    """The offset of the last event to /omni's rooms this instance has delivered."""
    return server.app[SIO_KEY].manager.frontier.get(NAMESPACE)  # type: ignore[no-any-return]


async def emit_on(server: Any, n: int, instances: tuple[Any, ...]) -> None:
    """Emit event `n` on `server` and wait until every instance has read it back from the stream (so the
    order of events emitted on different instances is the order of these calls)."""
    before = {id(s): frontier(s) for s in instances}
    await server.app[SIO_KEY].emit(EVENT, notice(n), room=ROOM, namespace=NAMESPACE)
    await until(lambda: all(frontier(s) != before[id(s)] for s in instances))


async def connect(raw_to: Any, server: Any, **query: str) -> tuple[RawClient, dict[str, Any]]:
    """A raw /ws client of alice and its first message, SESSAO_CONECTADA."""
    client = await raw_to(server, "/ws", make_token("alice"), params=query or None)
    first = await receive(client)
    assert first["event"] == "SESSAO_CONECTADA" and first["offset"] and first["recovery"]["pid"], first
    return client, first


async def live(server: Any, client: RawClient, n: int) -> str:
    """Emit event `n` on `server`; the client gets it, with its offset (returned)."""
    await server.app[SIO_KEY].emit(EVENT, notice(n), room=ROOM, namespace=NAMESPACE)
    message = await receive(client)
    assert message["event"] == EVENT and message["data"] == notice(n) and message["offset"], message
    return str(message["offset"])


async def nothing_more(client: RawClient) -> None:
    """The next message is the answer to a ping sent now: nothing arrives twice or late."""
    await client.send({"event": "SESSAO_PING", "data": {"request_id": "sync"}})
    message = await receive(client)
    assert message["event"] == "SESSAO_PONG" and "offset" not in message, message


async def dropped(server: Any, client: RawClient, pid: str) -> None:
    """Close the client's WebSocket and wait until `server` has seen it leave."""
    sio = server.app[SIO_KEY]
    sid = next(sid for sid, known in sio.pids.items() if known == pid)
    await client.ws.close()
    await until(lambda: sid not in sio.pids and not sio.manager.get_rooms(sid, NAMESPACE))


async def test_client_of_a_comes_back_on_b_with_everything_it_missed(pair: Any, raw_to: Any) -> None:
    """Dropped from A; events emitted on A and on B meanwhile; back on B: recovered, every missed event
    in order, once, with the offsets A would have sent; then live events from either instance."""
    a, b = pair
    client, first = await connect(raw_to, a)
    pid = first["recovery"]["pid"]
    assert first["recovery"] == {"pid": pid, "recovered": False, "missed": 0}, first
    since = await live(a, client, 0)
    await dropped(a, client, pid)
    for n, instance in ((1, a), (2, b), (3, a), (4, b)):
        await emit_on(instance, n, (a, b))

    back, first = await connect(raw_to, b, pid=pid, since=since)
    assert first["recovery"] == {"pid": pid, "recovered": True, "missed": 4}, first
    assert first["offset"] == since, first
    missed = [await receive(back) for _ in range(4)]
    assert [(m["event"], m["data"]) for m in missed] == [(EVENT, notice(n)) for n in (1, 2, 3, 4)], missed
    assert len({m["offset"] for m in missed} | {since}) == 5, missed
    await live(a, back, 5)
    await live(b, back, 6)
    await nothing_more(back)


async def test_not_recovered_after_redis_lost_its_data(pair: Any, raw_to: Any, redis_server: Any) -> None:
    """Redis restarted without persistence: history and sessions are gone, so a client coming back is
    told to resync (never a partial replay); live events reach it again."""
    a, b = pair
    client, first = await connect(raw_to, a)
    pid = first["recovery"]["pid"]
    since = await live(a, client, 0)
    await dropped(a, client, pid)
    await emit_on(a, 1, (a, b))
    redis_server.stop()
    await until(lambda: not a.app[SIO_KEY].manager.subscribed and not b.app[SIO_KEY].manager.subscribed)
    redis_server.start()
    await until(lambda: a.app[SIO_KEY].manager.subscribed and b.app[SIO_KEY].manager.subscribed)
    await emit_on(a, 2, (a, b))

    back, first = await connect(raw_to, b, pid=pid, since=since)
    assert first["recovery"]["recovered"] is False and first["recovery"]["resync"] is True, first
    assert first["recovery"]["missed"] == 0 and first["recovery"]["pid"] != pid, first
    await nothing_more(back)
    await live(a, back, 3)
