"""Presence across instances behind one real Redis: every instance answers for every instance's
connections, and a SIGKILLed instance's entries go with its liveness key."""
from __future__ import annotations

import asyncio
import os
import json
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from app.keys import GATEWAY_KEY
from app.presence import ALIVE, ALIVE_TTL
from conftest import ROOT, TIMEOUT, make_token, served_app
from tests.functional.test_presence_http import NOT_FOUND, ROLES, presence

ROOM = "/api/v1/presence/chat/session:shared"


async def until_listed(server: Any, path: str, count: int, token: str = ROLES["admin"],
                       timeout: float = TIMEOUT) -> dict[str, Any]:
    """Poll until the room lists `count` connections: a real condition, polled briefly."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                status, body = last = await presence(server, path, token)
                if status == 200 and len(body["connections"]) == count:
                    return body
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not {count} listed within {timeout} s; last answer: {last}") from None


async def test_every_instance_answers_for_every_instance(pair: Any, raw_to: Any, sio_to: Any) -> None:
    """Clients on A and B are listed by both, each with its instance; membership on B lets bob ask A."""
    a, b = pair
    anonymous = await raw_to(a, "/api/v1/ws/chat/shared")  # an anonymous session: anyone may join
    await anonymous.recv_kind("connection")
    alice = await sio_to(b, "/chat", {"token": make_token("alice"), "session_id": "shared"})
    await alice.recv_kind("connection")
    bob = await raw_to(b, "/api/v1/ws/chat/shared", make_token("bob"))
    await bob.recv_kind("connection")
    on_a, on_b = await until_listed(a, ROOM, 3), await until_listed(b, ROOM, 3)
    assert sorted(map(json.dumps, on_a["connections"])) == sorted(map(json.dumps, on_b["connections"]))
    by_instance = {c["instance"]: set() for c in on_a["connections"]}
    for c in on_a["connections"]:
        by_instance[c["instance"]].add((c["user"], c["transport"]))
    assert sorted(by_instance.values(), key=len) == [{(None, "raw")}, {("alice", "socketio"), ("bob", "raw")}]
    assert on_a["users"] == ["alice", "bob"]
    assert (await presence(a, ROOM, make_token("bob")))[0] == 200  # bob's connection is on B
    assert await presence(a, ROOM, make_token("carol")) == (404, NOT_FOUND)
    await bob.ws.close()
    assert (await until_listed(a, ROOM, 2))["users"] == ["alice"]


async def test_a_killed_instance_leaves_with_its_liveness_key(start_server: Any, redis_server: Any,
                                                              tmp_path: Path) -> None:
    """`python -m app` killed with SIGKILL: its entries stay only while its liveness key (at most 30 s) lives,
    then every reader drops them, and deletes them from Redis."""
    a = await start_server(redis_url=redis_server.url)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        async with served_app(ROOT, REDIS_URL=redis_server.url) as doomed, aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{doomed.base}/api/v1/ws/chat/shared") as ws:
                await ws.receive(timeout=TIMEOUT)
                listed = await until_listed(a, ROOM, 1, timeout=3 * TIMEOUT)
                instance = listed["connections"][0]["instance"]
                doomed.proc.kill()
                await doomed.proc.wait()
                assert 0 < await client.ttl(ALIVE.format(instance)) <= ALIVE_TTL
                assert (await until_listed(a, ROOM, 1))["connections"][0]["instance"] == instance
                await client.delete(ALIVE.format(instance))  # what the TTL does within ALIVE_TTL seconds
                await until_listed(a, ROOM, 0)
                assert await client.hlen("ponte:presence:chat:session:shared") == 0
    finally:
        await client.aclose()


async def test_chat_presence_counts_every_instance(pair: Any, raw_to: Any, sio_to: Any) -> None:
    """A join on B is told to A's client with the session's count on both instances; so is the leave."""
    a, b = pair
    first = await raw_to(a, "/api/v1/ws/chat/lobby", make_token("alice"))
    await first.recv_kind("connection")
    await until_listed(b, "/api/v1/presence/chat/session:lobby", 1)  # A's entry has reached Redis
    second = await sio_to(b, "/chat", {"token": make_token("alice"), "session_id": "lobby"})
    await second.recv_kind("connection")
    joined = await first.recv_kind("presence")
    assert joined["data"] == {"session_id": "lobby", "action": "joined", "user": "alice", "count": 2}
    await second.client.disconnect()
    left = await first.recv_kind("presence")
    assert left["data"] == {"session_id": "lobby", "action": "left", "user": "alice", "count": 1}
    assert b.app[GATEWAY_KEY].services["presence"].failures == 0


async def test_the_admin_overview_lists_every_instance(pair: Any) -> None:
    """The operator's overview, asked of either instance, lists both instances alive (its own first), each with
    the state it last wrote of itself."""
    a, b = pair
    ids = [server.app[GATEWAY_KEY].services["presence"].instance for server in (a, b)]
    headers = {"Authorization": f"Bearer {ROLES['admin']}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for server, own in [(a, ids[0]), (b, ids[1])]:
            async with asyncio.timeout(TIMEOUT):
                while True:  # each instance announces itself once its presence writer has started
                    async with http.get(server.make_url("/api/v1/admin/overview")) as response:
                        body = await response.json()
                    if len(body["instances"]) == 2:
                        break
                    await asyncio.sleep(0.05)
            listed = [instance["id"] for instance in body["instances"]]
            assert listed[0] == own and sorted(listed) == sorted(ids)
            other = body["instances"][1]["state"]  # what the other instance wrote of itself
            assert other["status"] == "ready" and other["redis"] == "up" and other["pid"] == os.getpid()
            assert body["instance"] == {**body["instance"], "id": own, "redis": "up", "status": "ready"}
