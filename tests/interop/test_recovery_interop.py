"""Interop: the official socket.io-client (4.8) recovers its connection state against Ponte with no code
of its own. recovery.mjs drives one socket from stdin (drop the transport, switch to another instance)
and prints a JSON line per connect, disconnect and event."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import pytest

from app.keys import SIO_KEY
from conftest import TIMEOUT, make_token, subscribed
import test_interop
from test_interop import HERE, NodeClient, NodeEnv, require_node

pytestmark = pytest.mark.interop

NAMESPACE, ROOM, EVENT = "/omni", "user:alice", "NOTIFICACAO_GERAL"
node_env = test_interop.node_env  # the interop tests' session fixture: node, and `npm ci` once
AWAY_MS = 1500  # how long the client stays away before it reconnects: the emits meanwhile take far less


def notice(n: int) -> dict[str, Any]:
    return {"tipo": "info", "titulo": f"t{n}", "mensagem": "m"}


class RecoveryClient(NodeClient):
    """recovery.mjs as a child process: commands on stdin, JSON lines on stdout."""

    @classmethod
    async def launch(cls, node: str, server: Any, away_ms: int = AWAY_MS) -> "RecoveryClient":
        proc = await asyncio.create_subprocess_exec(
            node, "recovery.mjs", str(server.make_url("/")), make_token("alice"), NAMESPACE, str(away_ms),
            cwd=HERE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{text}\n".encode())
        await self.proc.stdin.drain()

    async def next(self) -> dict[str, Any]:
        return json.loads(await self.line())  # type: ignore[no-any-return]

    async def connected(self) -> dict[str, Any]:
        line = await self.next()
        assert line["type"] == "connect" and isinstance(line["id"], str), line
        return line

    async def event(self) -> tuple[str, list[Any]]:
        line = await self.next()
        assert line["type"] == "event", line
        return line["event"], line["args"]

    async def exit(self) -> None:
        """Nothing more arrived (a ping's answer comes next), then a clean exit."""
        await self.command('emit SESSAO_PING {"request_id": "last"}')
        event, args = await self.event()
        assert event == "SESSAO_PONG" and args[0]["request_id"] == "last" and len(args) == 1, args
        await self.command("exit")
        assert await self.next() == {"type": "disconnect", "reason": "io client disconnect"}
        await self.finish()


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll a real condition of the servers until it holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def head(server: Any) -> Any:
    """The id of the last entry of the namespace's history stream in Redis."""
    manager = server.app[SIO_KEY].manager
    rows = await manager.redis.xrevrange(manager.history.stream(NAMESPACE), "+", "-", count=1)
    return rows[0][0] if rows else None


async def emit(server: Any, n: int, kept: bool = False) -> None:
    """Emit event `n` to alice on `server`; `kept`: wait until it is in the namespace's stream in Redis
    (so events emitted on different instances are kept in the order of these calls)."""
    before = await head(server) if kept else None
    await server.app[SIO_KEY].emit(EVENT, notice(n), room=ROOM, namespace=NAMESPACE)
    async with asyncio.timeout(TIMEOUT):
        while kept and await head(server) == before:
            await asyncio.sleep(0.01)


async def received(client: RecoveryClient, n: int) -> str:
    """The client gets event `n` with its offset as last argument (returned)."""
    event, args = await client.event()
    assert event == EVENT and len(args) == 2 and args[0] == notice(n) and isinstance(args[1], str), args
    return str(args[1])


async def dropped(client: RecoveryClient, server: Any, sid: str, command: str = "drop") -> None:
    """Close the transport under the client and wait until `server` has seen it leave."""
    await client.command(command)
    line = await client.next()
    assert line["type"] == "disconnect" and line["reason"] in ("transport close", "forced close"), line
    sio = server.app[SIO_KEY]
    await until(lambda: sid not in sio.pids and not sio.manager.get_rooms(sid, NAMESPACE))


async def test_official_client_recovers_everything_it_missed(start_server: Any, node_env: NodeEnv) -> None:
    """Transport closed under the client, three events meanwhile: it comes back recovered, with the same
    id, and gets every event once, in order (before, the missed ones, after)."""
    node = require_node(node_env)
    server = await start_server(socketio_offsets=True)
    client = await RecoveryClient.launch(node, server)
    try:
        first = await client.connected()
        assert first["recovered"] is False, first
        await emit(server, 0)
        offsets = [await received(client, 0)]
        await dropped(client, server, first["id"])
        for n in (1, 2, 3):
            await emit(server, n)
        again = await client.connected()
        assert again == {"type": "connect", "recovered": True, "id": first["id"]}, again
        offsets += [await received(client, n) for n in (1, 2, 3)]
        await emit(server, 4)
        offsets.append(await received(client, 4))
        assert len(set(offsets)) == 5, offsets
        await client.exit()
    finally:
        await client.close()


async def test_official_client_recovers_on_the_other_instance(start_server: Any, redis_server: Any,
                                                              node_env: NodeEnv) -> None:
    """On A, sent to B while away (events emitted on A and B meanwhile): recovered on B, same id, every
    event once, in order; then live events from both instances."""
    node = require_node(node_env)
    a = await start_server(redis_url=redis_server.url, socketio_offsets=True)
    b = await start_server(redis_url=redis_server.url, socketio_offsets=True)
    await subscribed(a, b)
    client = await RecoveryClient.launch(node, a)
    try:
        first = await client.connected()
        assert first["recovered"] is False, first
        await emit(a, 0)
        offsets = [await received(client, 0)]
        await dropped(client, a, first["id"], f"switch {b.make_url('/')}")
        for n, instance in ((1, a), (2, b), (3, a)):
            await emit(instance, n, kept=True)
        again = await client.connected()
        assert again == {"type": "connect", "recovered": True, "id": first["id"]}, again
        assert first["id"] in b.app[SIO_KEY].pids  # it is B's client now
        offsets += [await received(client, n) for n in (1, 2, 3)]
        await emit(b, 4)
        offsets.append(await received(client, 4))
        await emit(a, 5)
        offsets.append(await received(client, 5))
        assert len(set(offsets)) == 6, offsets
        await client.exit()
    finally:
        await client.close()


async def test_official_client_not_recovered_after_the_window(start_server: Any, node_env: NodeEnv) -> None:
    """Away longer than RECOVERY_WINDOW: a new id, `recovered` false, nothing replayed; live events flow."""
    node = require_node(node_env)
    server = await start_server(socketio_offsets=True, recovery_window=1)
    client = await RecoveryClient.launch(node, server, away_ms=1600)
    try:
        first = await client.connected()
        await emit(server, 0)
        await received(client, 0)
        await dropped(client, server, first["id"])
        await emit(server, 1)
        again = await client.connected()
        assert again["recovered"] is False and again["id"] != first["id"], again
        await emit(server, 2)
        await received(client, 2)
        await client.exit()
    finally:
        await client.close()


async def test_official_client_not_recovered_after_redis_lost_its_data(start_server: Any, redis_server: Any,
                                                                       node_env: NodeEnv) -> None:
    """Redis restarted without persistence while the client was away: it connects as new (`recovered`
    false), with nothing replayed, and live events reach it."""
    node = require_node(node_env)
    a = await start_server(redis_url=redis_server.url, socketio_offsets=True)
    b = await start_server(redis_url=redis_server.url, socketio_offsets=True)
    await subscribed(a, b)
    client = await RecoveryClient.launch(node, a, away_ms=4000)
    try:
        first = await client.connected()
        await emit(a, 0, kept=True)
        await received(client, 0)
        await dropped(client, a, first["id"], f"switch {b.make_url('/')}")
        await emit(a, 1, kept=True)
        redis_server.stop()
        await until(lambda: not a.app[SIO_KEY].manager.subscribed and not b.app[SIO_KEY].manager.subscribed)
        redis_server.start()
        await until(lambda: a.app[SIO_KEY].manager.subscribed and b.app[SIO_KEY].manager.subscribed)
        await emit(a, 2, kept=True)
        again = await client.connected()
        assert again["recovered"] is False and again["id"] != first["id"], again
        await emit(a, 3)
        await received(client, 3)
        await client.exit()
    finally:
        await client.close()
