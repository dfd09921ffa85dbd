"""Connection-state recovery for raw clients on one instance (history in memory): /ws and both Cidadão.AI
endpoints. A client that comes back with `?pid=&since=` within RECOVERY_WINDOW gets its session back and
exactly what it missed, in order, then live events; otherwise it is told to resync."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp
import pytest

from app.keys import SIO_KEY
from conftest import TIMEOUT, RawClient, create_investigation, make_token, until

ENDPOINTS = ("ws", "chat", "investigations")


@dataclass
class Place:
    """Where a raw client connects, the room it is in and how an event to that room looks."""

    path: str
    namespace: str
    room: str
    event: str
    build: Callable[[int], dict[str, Any]]
    first: str  # the kind of a connection's first message
    ping: dict[str, Any]
    pong: str

    def data(self, n: int) -> dict[str, Any]:
        return self.build(n)


async def place(server: Any, endpoint: str, user: str = "alice") -> Place:
    """The /ws, chat or investigation endpoint of `user` (an investigation is created for the latter)."""
    if endpoint == "ws":
        return Place("/ws", "/omni", f"user:{user}", "NOTIFICACAO_GERAL",
                     lambda n: {"tipo": "info", "titulo": f"t{n}", "mensagem": "m"}, "SESSAO_CONECTADA",
                     {"event": "SESSAO_PING", "data": {"request_id": "sync"}}, "SESSAO_PONG")
    if endpoint == "chat":
        session_id = f"recovery-{user}"
        return Place(f"/api/v1/ws/chat/{session_id}", "/chat", f"session:{session_id}", "typing",
                     lambda n: {"agent": f"a{n}", "session_id": session_id, "is_typing": True}, "connection",
                     {"type": "ping"}, "pong")
    inv_id = await create_investigation(server, make_token(user))
    return Place(f"/api/v1/ws/investigations/{inv_id}", "/investigations", f"investigation:{inv_id}",
                 "anomaly_detected",
                 lambda n: {"investigation_id": inv_id, "severity": "high", "description": f"d{n}",
                            "details": {"contract_id": f"C-{n}"}}, "connection", {"type": "ping"}, "pong")


def kind(message: dict[str, Any]) -> str:
    return str(message.get("event", message.get("type")))


async def receive(client: RawClient, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next message as sent, the first one included (RawClient.recv would keep SESSAO_CONECTADA)."""
    msg = await client.ws.receive(timeout=timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data!r} {msg.extra!r}"
    return json.loads(msg.data)  # type: ignore[no-any-return]


async def emit(server: Any, where: Place, n: int) -> None:
    await server.app[SIO_KEY].emit(where.event, where.data(n), room=where.room, namespace=where.namespace)


def sid_of(server: Any, pid: str) -> str:
    """The server's connection id of the client with private session id `pid`."""
    return next(sid for sid, known in server.app[SIO_KEY].pids.items() if known == pid)


async def gone(server: Any, sid: str, namespace: str) -> None:
    """Wait until the server has seen connection `sid` leave (its session kept, its rooms left)."""
    sio = server.app[SIO_KEY]
    await until(lambda: sid not in sio.pids and not sio.manager.get_rooms(sid, namespace))


async def settle(client: RawClient, where: Place) -> list[dict[str, Any]]:
    """Everything sent to a connection so far (a ping's answer marks the end), the answer excluded."""
    await client.send(where.ping)
    seen = []
    while kind(message := await receive(client)) != where.pong:
        seen.append(message)
    assert "offset" not in message, message  # a direct reply is not kept: no offset
    return seen


async def connect(raw_to: Any, server: Any, where: Place, user: str = "alice",
                  **query: str) -> tuple[RawClient, dict[str, Any]]:
    """A raw client and its first message (with `offset` and `recovery` at the top of the envelope)."""
    client = await raw_to(server, where.path, make_token(user), params=query or None)
    first = await receive(client)
    assert kind(first) == where.first, first
    assert isinstance(first["offset"], str) and first["offset"], first
    assert isinstance(first["recovery"]["pid"], str) and first["recovery"]["pid"], first
    return client, first


async def live(server: Any, client: RawClient, where: Place, n: int) -> str:
    """Emit event `n` to the room; the client gets it with its offset, which is returned."""
    await emit(server, where, n)
    message = await receive(client)
    assert kind(message) == where.event and message["data"] == where.data(n), message
    assert isinstance(message["offset"], str) and message["offset"], message
    return str(message["offset"])


async def joined(raw_to: Any, server: Any, where: Place, user: str = "alice") -> tuple[RawClient, str, str]:
    """A fresh client settled (a late follower's replay and snapshot read) that got one live event: the
    client, its pid and the last offset it saw."""
    client, first = await connect(raw_to, server, where, user)
    assert first["recovery"] == {"pid": first["recovery"]["pid"], "recovered": False, "missed": 0}, first
    await settle(client, where)
    return client, first["recovery"]["pid"], await live(server, client, where, 0)


async def drop(server: Any, client: RawClient, where: Place, pid: str) -> None:
    """Close the client's WebSocket and wait until the server has seen it go."""
    sid = sid_of(server, pid)
    await client.ws.close()
    await gone(server, sid, where.namespace)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_dropped_client_gets_exactly_what_it_missed(server: Any, raw_to: Any, endpoint: str) -> None:
    """Dropped, three events sent meanwhile, back with pid and since: recovered, `missed: 3`, the three in
    order with their offsets, once, then live events; the same connection id and rooms."""
    where = await place(server, endpoint)
    client, pid, since = await joined(raw_to, server, where)
    sid = sid_of(server, pid)
    await drop(server, client, where, pid)
    for n in (1, 2, 3):
        await emit(server, where, n)

    back, first = await connect(raw_to, server, where, pid=pid, since=since)
    assert first["recovery"] == {"pid": pid, "recovered": True, "missed": 3}, first
    assert first["offset"] == since, first
    missed = [await receive(back) for _ in range(3)]
    assert [(kind(m), m["data"]) for m in missed] == [(where.event, where.data(n)) for n in (1, 2, 3)], missed
    offsets = [m["offset"] for m in missed]
    assert len(set(offsets + [since])) == 4, offsets
    assert sid_of(server, pid) == sid and where.room in server.app[SIO_KEY].manager.get_rooms(sid, where.namespace)
    newest = await live(server, back, where, 4)
    assert newest not in offsets
    assert await settle(back, where) == []  # nothing twice, nothing more


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_client_that_missed_nothing_comes_back_recovered(start_server: Any, raw_to: Any, endpoint: str) -> None:
    """On a server that has sent nothing to rooms yet, a dropped client back with the offset of its first
    message is recovered, `missed: 0` (the offset stands where the history does, though nothing is held)."""
    server = await start_server()
    where = await place(server, endpoint)
    client, first = await connect(raw_to, server, where)
    pid, since = first["recovery"]["pid"], first["offset"]
    await drop(server, client, where, pid)
    back, again = await connect(raw_to, server, where, pid=pid, since=since)
    assert again["recovery"] == {"pid": pid, "recovered": True, "missed": 0}, again
    assert await live(server, back, where, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_too_late_is_told_to_resync(start_server: Any, raw_to: Any, endpoint: str) -> None:
    """Back after RECOVERY_WINDOW: not recovered, `resync: true`, nothing replayed; live events flow."""
    server = await start_server(recovery_window=1)
    where = await place(server, endpoint)
    client, pid, since = await joined(raw_to, server, where)
    await drop(server, client, where, pid)
    left_at = time.monotonic()
    await emit(server, where, 1)
    await asyncio.sleep(max(0.0, left_at + 1.2 - time.monotonic()))  # the window itself passing: time

    back, first = await connect(raw_to, server, where, pid=pid, since=since)
    assert first["recovery"]["recovered"] is False and first["recovery"]["resync"] is True, first
    assert first["recovery"]["missed"] == 0 and first["recovery"]["pid"] != pid, first
    if endpoint != "investigations":  # a new follower of an investigation gets its history, without offsets
        assert await settle(back, where) == []
    else:  # the last one of the room's earlier events carries where the client stands
        marks = [m["offset"] for m in await settle(back, where) if "offset" in m]
        assert marks in ([], [first["offset"]]), marks
    await live(server, back, where, 2)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_another_users_pid_recovers_nothing(server: Any, raw_to: Any, endpoint: str) -> None:
    """Bob coming with Alice's pid is not recovered (and gets none of her events); Alice still recovers."""
    where = await place(server, endpoint)
    client, pid, since = await joined(raw_to, server, where)
    await drop(server, client, where, pid)
    await emit(server, where, 1)

    elsewhere = await place(server, endpoint, "bob")
    thief, first = await connect(raw_to, server, elsewhere, "bob", pid=pid, since=since)
    assert first["recovery"]["recovered"] is False and first["recovery"]["resync"] is True, first
    assert first["recovery"]["pid"] != pid, first
    assert all(m["data"] != where.data(1) for m in await settle(thief, elsewhere))

    back, first = await connect(raw_to, server, where, pid=pid, since=since)
    assert first["recovery"]["pid"] == pid and first["recovery"]["recovered"] is True, first
    # her event, once (what else a session's room was sent, e.g. chat presence, is the first test's concern)
    missed = [await receive(back) for _ in range(first["recovery"]["missed"])]
    assert [m["data"] for m in missed if kind(m) == where.event] == [where.data(1)], missed
    await live(server, back, where, 2)


async def test_fresh_connection_is_not_recovered_and_needs_no_resync(raw: Any, raw_to: Any, server: Any) -> None:
    """A new /ws connection: SESSAO_CONECTADA with its pid, the offset it stands at, recovered false and no
    `resync` (it has nothing to resync); a pid it does not know is told to resync."""
    client = await raw("/ws", make_token("alice"))
    first = await receive(client)
    assert kind(first) == "SESSAO_CONECTADA" and first["data"]["user_id"] == "alice", first
    assert set(first["recovery"]) == {"pid", "recovered", "missed"}, first
    assert first["recovery"]["recovered"] is False and first["recovery"]["missed"] == 0, first
    assert isinstance(first["offset"], str) and first["offset"], first

    _, answer = await connect(raw_to, server, await place(server, "ws"), pid="no-such-pid", since=first["offset"])
    assert answer["recovery"]["recovered"] is False and answer["recovery"]["resync"] is True, answer


async def test_direct_reply_has_no_offset(raw: Any, server: Any) -> None:
    """A SESSAO_PONG answers one connection: not kept, no offset; an event to a room has one."""
    client = await raw("/ws", make_token("alice"))
    await receive(client)  # SESSAO_CONECTADA
    await client.send({"event": "SESSAO_PING", "data": {"request_id": "r1"}})
    pong = await receive(client)
    assert kind(pong) == "SESSAO_PONG" and pong["data"]["request_id"] == "r1", pong
    assert "offset" not in pong and "recovery" not in pong, pong
    await live(server, client, await place(server, "ws"), 1)


async def test_late_follower_gets_the_rooms_history_then_the_snapshot(server: Any, raw: Any) -> None:
    """A follower that connects after an investigation ran gets what was sent to its room (without
    offsets: it stands after them), in order, then where the investigation stands, then live events."""
    token = make_token("alice")
    where = await place(server, "investigations")
    await emit(server, where, 7)  # sent to the room before anyone followed it
    client = await raw(where.path, token)
    first = await receive(client)
    assert kind(first) == "connection" and first["recovery"]["recovered"] is False, first
    replayed = []
    while (message := await receive(client))["data"].get("update_type") != "snapshot":
        replayed.append(message)
    assert kind(message) == "investigation_progress" and "offset" not in message, message
    assert message["data"]["status"] == "completed", message
    assert replayed and all("offset" not in m for m in replayed[:-1]), replayed
    assert replayed[-1]["offset"] == first["offset"], replayed  # the last says where the client stands
    kinds = [kind(m) for m in replayed]
    assert kinds[0] == "investigation_progress" and "report_ready" in kinds, kinds
    assert replayed[-1]["data"] == where.data(7), replayed[-1]  # the last one sent to the room
    assert kinds.index("report_ready") < len(kinds) - 1
    await live(server, client, where, 8)
    assert await settle(client, where) == []


async def test_a_subscribed_investigation_comes_back_with_the_chat_session(server: Any, raw_to: Any) -> None:
    """A chat client that subscribed an investigation is in its room again once recovered: what was sent
    to the investigation while it was away comes back, once, then live events."""
    investigation = await place(server, "investigations")
    chat = await place(server, "chat")
    client, pid, since = await joined(raw_to, server, chat)
    inv_id = investigation.room.partition(":")[2]
    await client.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    seen = await settle(client, chat)  # subscribed, the room's earlier events (a late follower), the snapshot
    assert kind(seen[0]) == "subscribed" and seen[-1]["data"]["update_type"] == "snapshot", seen
    marks = [m["offset"] for m in seen if "offset" in m]
    assert len(marks) <= 1, seen  # the last of the earlier events says where the client stands
    since = marks[0] if marks else since
    sid = sid_of(server, pid)
    await drop(server, client, chat, pid)
    sio = server.app[SIO_KEY]
    await sio.emit(investigation.event, investigation.data(1), room=investigation.room, namespace="/chat")

    back, first = await connect(raw_to, server, chat, pid=pid, since=since)
    assert first["recovery"]["recovered"] is True and sid_of(server, pid) == sid, first
    assert investigation.room in sio.manager.get_rooms(sid, "/chat")
    missed = [await receive(back) for _ in range(first["recovery"]["missed"])]
    assert [m["data"] for m in missed if kind(m) == investigation.event] == [investigation.data(1)], missed
    await sio.emit(investigation.event, investigation.data(2), room=investigation.room, namespace="/chat")
    message = await receive(back)
    assert message["data"] == investigation.data(2) and message["offset"], message


async def test_a_followed_execution_comes_back_without_repeating_its_replay(
        start_server: Any, raw_to: Any, blog_site: Any) -> None:
    """/ws: EXECUCAO_CONSULTAR follows an execution (its room's earlier events replayed, without offsets);
    dropped and back with the last offset it saw, the client is in the execution's room again and gets
    what was sent to it meanwhile, and nothing it already had."""
    server = await start_server(allow_private_urls=True, extract_workers=1)
    where = await place(server, "ws")
    owner, _ = await connect(raw_to, server, where)
    blog_site.hold.clear()  # the run waits on the blog: the test's own events are the room's
    await owner.send({"event": "EXECUCAO_INICIAR", "data": {
        "blog_url": blog_site.url, "configuracoes": {"max_keywords": 50, "profundidade": 2, "timeout": 1},
        "request_id": "req_1"}})
    while kind(started := await receive(owner)) != "EXECUCAO_INICIADA":
        pass
    room, sio = f"execution:{started['data']['execucao_id']}", server.app[SIO_KEY]

    client, first = await connect(raw_to, server, where)
    pid, since = first["recovery"]["pid"], first["offset"]
    await sio.emit("EXECUCAO_STATUS", {"marker": "before-follow"}, room=room, namespace="/omni")
    await client.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": started["data"]["execucao_id"]}})
    followed = await settle(client, where)
    assert {"marker": "before-follow"} in [m["data"] for m in followed], followed
    # the room's earlier events come without their offsets, but for the last, which says where the client
    # stands now: what a client keeps as `since`
    marks = [m["offset"] for m in followed if "offset" in m]
    assert len(marks) == 1, followed
    since = marks[0]
    sid = sid_of(server, pid)
    await drop(server, client, where, pid)
    await sio.emit("EXECUCAO_STATUS", {"marker": "while-away"}, room=room, namespace="/omni")

    back, first = await connect(raw_to, server, where, pid=pid, since=since)
    assert first["recovery"]["recovered"] is True and room in sio.manager.get_rooms(sid, "/omni"), first
    missed = [await receive(back) for _ in range(first["recovery"]["missed"])]
    markers = [m["data"].get("marker") for m in missed if kind(m) == "EXECUCAO_STATUS"]
    assert markers == ["while-away"], missed  # "before-follow" came with the follow already
    await sio.emit("EXECUCAO_STATUS", {"marker": "live"}, room=room, namespace="/omni")
    assert (await receive(back))["data"] == {"marker": "live"}
    blog_site.hold.set()


@pytest.mark.parametrize("query,asked", [
    ({"pid": "x" * 65, "since": "1-1"}, False),  # longer than any pid: not a recovery request at all
    ({"pid": "made-up-pid", "since": "not an offset"}, True),
    ({"pid": "made-up-pid", "since": "99999999999999-0"}, True),  # far ahead of anything held
    ({"since": "1-1"}, False),  # an offset without a pid
])
async def test_garbage_recovery_requests_connect_as_new(server: Any, raw_to: Any, query: dict[str, str],
                                                        asked: bool) -> None:
    """An anonymous chat client (no token) with a made-up or oversized pid and offset is a new connection:
    not recovered, told to resync only when it asked, no session or room of anyone's, nothing replayed."""
    where = await place(server, "chat")
    owner, pid, since = await joined(raw_to, server, where)
    client = await raw_to(server, "/api/v1/ws/chat/garbage-anonymous", None, params=query)  # its own session
    first = await receive(client)
    assert kind(first) == "connection" and first["recovery"]["recovered"] is False, first
    assert first["recovery"].get("resync", False) is asked and first["recovery"]["pid"] != pid, first
    assert sid_of(server, first["recovery"]["pid"]) != sid_of(server, pid)
    assert await settle(client, where) == []  # nothing of anyone's session replayed
    assert await settle(owner, where) == []
    await live(server, owner, where, 1)  # the owner's session is untouched


async def test_garbage_socketio_recovery_auth_connects_as_new(server: Any, sio: Any) -> None:
    """Socket.IO auth whose pid or offset is not a string (or too long) is ignored: a new session."""
    for auth in ({"pid": {"$ne": 1}, "offset": ["x"]}, {"pid": "p" * 500, "offset": "1-1"}, {"pid": 7}):
        client = await sio("/chat", auth={"session_id": "garbage", **auth})
        assert client.connect_error is None
        assert (await client.recv_kind("connection"))["session_id"] == "garbage"
        assert server.app[SIO_KEY].manager.get_rooms(client.client.get_sid("/chat"), "/chat")
