"""Each instance hears only the rooms it serves (app/transport/channels.py): it subscribes to a room's Redis
channel while it has a local member in the room, and never receives what is sent to other rooms."""
from __future__ import annotations

import asyncio
import random
from typing import Any

import redis.asyncio as aioredis

from app.factory import SIO_KEY
from app.transport.channels import room_channel
from conftest import TIMEOUT, make_token
from tests.functional.test_ops import get, samples
from tests.multi.test_redis_faults import until

NOTICE = {"tipo": "info", "titulo": "t", "mensagem": "m"}


def manager(server: Any) -> Any:
    return server.app[SIO_KEY].manager


def heard(server: Any, room: str) -> bool:
    """Whether the instance's subscription to `room`'s channel is confirmed by Redis."""
    return room_channel("socketio", "/omni", room) in manager(server).heard.confirmed


async def numsub(url: str, rooms: list[str]) -> list[int]:
    """How many subscribers Redis counts on each room's channel."""
    admin = aioredis.Redis.from_url(url)
    try:
        counts = await admin.pubsub_numsub(*(room_channel("socketio", "/omni", room) for room in rooms))
    finally:
        await admin.aclose()
    return [int(count) for _, count in counts]


async def notice(server: Any, room: str, title: str) -> None:
    await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": title}, room=room, namespace="/omni")


async def test_an_instance_subscribes_while_it_has_members_and_hears_nothing_else(
        start_server: Any, redis_server: Any, raw_to: Any) -> None:
    """alice on A: A subscribes to user:alice (B does not), A hears nothing of the 200 events sent to rooms
    it has no member in, B hears none of alice's; once she leaves, A unsubscribes after the linger."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url)
    await until(lambda: manager(a).subscribed and manager(b).subscribed)
    manager(a).heard.linger = 0.3
    ws = await raw_to(a, "/ws", make_token("alice"))
    await ws.send({"event": "SESSAO_PING", "data": {}})
    await ws.recv_kind("SESSAO_PONG")
    assert heard(a, "user:alice") and not heard(b, "user:alice")
    assert await numsub(redis_server.url, ["user:alice"]) == [1]
    channels = samples((await get(a, "/metrics"))[1])[("ponte_redis_channels", ())]
    assert channels == len(manager(a).heard.where) >= 4  # hers, her connection's, the namespaces', the shared one

    before_a, before_b = manager(a).listener.received, manager(b).listener.received
    for n in range(200):
        await notice(b, f"user:nobody{n}", f"elsewhere {n}")
    await notice(b, "user:alice", "hers")
    assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "hers"
    assert manager(a).listener.received - before_a == 1  # hers only
    assert manager(b).listener.received == before_b  # B has no member in any of those rooms

    await ws.ws.close()
    await until(lambda: not heard(a, "user:alice"))
    assert await numsub(redis_server.url, ["user:alice"]) == [0]
    assert samples((await get(a, "/metrics"))[1])[("ponte_redis_channels", ())] == channels - 2


async def test_a_client_that_comes_straight_back_finds_its_room_still_heard(
        start_server: Any, redis_server: Any, raw_to: Any) -> None:
    """Within the linger (2 s) a reconnecting client finds the room subscribed: no unsubscribe went out."""
    a = await start_server(redis_url=redis_server.url)
    await until(lambda: manager(a).subscribed)
    ws = await raw_to(a, "/ws", make_token("alice"))
    await ws.send({"event": "SESSAO_PING", "data": {}})
    await ws.recv_kind("SESSAO_PONG")
    await ws.ws.close()
    channel = room_channel("socketio", "/omni", "user:alice")
    await until(lambda: channel in manager(a).heard.leaving)
    again = await raw_to(a, "/ws", make_token("alice"))
    await again.send({"event": "SESSAO_PING", "data": {}})
    await again.recv_kind("SESSAO_PONG")
    assert channel not in manager(a).heard.leaving and heard(a, "user:alice")
    await notice(a, "user:alice", "still")
    assert (await again.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "still"


async def test_members_who_stay_get_every_event_once_while_others_join_and_leave(
        start_server: Any, redis_server: Any, raw_to: Any) -> None:
    """Three instances, a staying member of each of three rooms spread over them, and clients of those
    users joining and leaving on every instance (subscribing and unsubscribing, linger 0) while 300 events
    are emitted from all three instances: each staying member gets exactly the events of its room, once
    each, in offset order."""
    servers = [await start_server(redis_url=redis_server.url) for _ in range(3)]
    await until(lambda: all(manager(s).subscribed for s in servers))
    for server in servers:
        manager(server).heard.linger = 0.0
    users = ["alice", "bob", "carol"]
    stayers = [await raw_to(servers[n], "/ws", make_token(user)) for n, user in enumerate(users)]
    for ws in stayers:
        await ws.send({"event": "SESSAO_PING", "data": {}})
        await ws.recv_kind("SESSAO_PONG")

    churning = True

    async def churn(seed: int) -> int:
        rng, rounds = random.Random(seed), 0
        while churning:
            ws = await raw_to(rng.choice(servers), "/ws", make_token(rng.choice(users)))
            await ws.send({"event": "SESSAO_PING", "data": {}})
            await ws.recv_kind("SESSAO_PONG")
            await ws.ws.close()
            rounds += 1
        return rounds

    churners = [asyncio.create_task(churn(seed)) for seed in range(4)]
    sent: dict[str, list[str]] = {user: [] for user in users}
    rng = random.Random(7)
    for n in range(300):
        user = rng.choice(users)
        sent[user].append(f"e{n}")
        await notice(rng.choice(servers), f"user:{user}", f"e{n}")
        if n % 10 == 0:
            await asyncio.sleep(0)  # let the churners run between emits
    churning = False
    assert all(rounds > 0 for rounds in await asyncio.gather(*churners))

    for user, ws in zip(users, stayers):
        got, offsets = [], []
        while len(got) < len(sent[user]):
            message = await ws.recv_kind("NOTIFICACAO_GERAL")
            got.append(message["data"]["titulo"])
            offsets.append(tuple(int(part) for part in message["offset"].split("-")))
        assert sorted(got, key=lambda t: int(t[1:])) == sent[user], (user, got)
        assert offsets == sorted(set(offsets)), (user, offsets)
        await ws.send({"event": "SESSAO_PING", "data": {"request_id": "end"}})
        assert (await ws.recv())["event"] == "SESSAO_PONG"  # nothing more: no copy, no stray


async def test_every_room_is_heard_again_within_5_s_of_a_redis_restart(
        start_server: Any, redis_server: Any, raw_to: Any) -> None:
    """50 users on A, so 50 rooms (and their connections' own): Redis restarted; within 5 s Redis counts A
    on every one of those channels again, and an event to each of the 50 rooms from B reaches its member."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url)
    await until(lambda: manager(a).subscribed and manager(b).subscribed)
    users = [f"u{n}" for n in range(50)]
    clients = [await raw_to(a, "/ws", make_token(user)) for user in users]
    for ws in clients:
        await ws.send({"event": "SESSAO_PING", "data": {}})
        await ws.recv_kind("SESSAO_PONG")
    rooms = [f"user:{user}" for user in users]
    assert await numsub(redis_server.url, rooms) == [1] * 50
    wanted = set(manager(a).heard.where)
    assert len(wanted) >= 2 * 50 + 2  # the users' rooms, the connections' own, the namespaces, the shared one

    redis_server.stop()
    await until(lambda: not manager(a).subscribed)
    redis_server.start()
    took = await until(lambda: manager(a).subscribed and manager(b).subscribed, timeout=5)
    assert took < 5
    assert manager(a).heard.confirmed >= wanted  # not one missed
    assert await numsub(redis_server.url, rooms) == [1] * 50
    for room in rooms:
        await notice(b, room, f"back {room}")
    for room, ws in zip(rooms, clients):
        assert (await ws.recv_kind("NOTIFICACAO_GERAL", timeout=TIMEOUT))["data"]["titulo"] == f"back {room}"


async def test_without_history_each_member_gets_each_event_once(
        start_server: Any, redis_server: Any, raw_to: Any) -> None:
    """HISTORY_SIZE=0: an emitting instance delivers to its own members at once and the others hear the
    rooms' channels; an event to two rooms reaches a member of both, and every member, once."""
    a, b = [await start_server(redis_url=redis_server.url, history_size=0) for _ in range(2)]
    await until(lambda: manager(a).subscribed and manager(b).subscribed)
    alice_a, alice_b, bob_b = [await raw_to(server, "/ws", make_token(user))
                               for server, user in ((a, "alice"), (b, "alice"), (b, "bob"))]
    for ws in (alice_a, alice_b, bob_b):
        await ws.send({"event": "SESSAO_PING", "data": {}})
        await ws.recv_kind("SESSAO_PONG")
    await notice(a, "user:alice", "one")
    await a.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": "two"}, room=["user:alice", "user:bob"],
                              namespace="/omni")
    await b.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": "three"}, room=["user:bob", "user:alice"],
                              namespace="/omni")
    for ws, titles in ((alice_a, ["one", "two", "three"]), (alice_b, ["one", "two", "three"]),
                       (bob_b, ["two", "three"])):
        got = [(await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] for _ in titles]
        assert sorted(got) == sorted(titles), got
        await ws.send({"event": "SESSAO_PING", "data": {"request_id": "end"}})
        assert (await ws.recv())["event"] == "SESSAO_PONG"  # no copy


async def test_garbage_on_a_rooms_channel_is_skipped(start_server: Any, redis_server: Any, raw_to: Any) -> None:
    """Whoever can write to Redis publishes garbage on alice's room channel (no fields, bad JSON, a bad
    offset, a forged copy of nothing): the instance skips each, and her next event comes, alone."""
    a = await start_server(redis_url=redis_server.url)
    await until(lambda: manager(a).subscribed)
    ws = await raw_to(a, "/ws", make_token("alice"))
    await ws.send({"event": "SESSAO_PING", "data": {}})
    await ws.recv_kind("SESSAO_PONG")
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        channel = room_channel("socketio", "/omni", "user:alice")
        garbage = (b"nonsense", b"- x:1 {not json", b"9-9 x:2 {}", b'not-an-offset x:3 {"room": 1}',
                   b"\xff\xfe \x00 \x01")
        for message in garbage:
            assert await admin.publish(channel, message) == 1
    finally:
        await admin.aclose()
    await notice(a, "user:alice", "after")
    following = await ws.recv()  # the very next message: no garbage came before it
    assert (following["event"], following["data"]["titulo"]) == ("NOTIFICACAO_GERAL", "after"), following
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "end"}})
    assert (await ws.recv())["event"] == "SESSAO_PONG"  # nothing else reached her
    assert manager(a).subscribed
