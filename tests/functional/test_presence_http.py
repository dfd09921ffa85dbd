"""Presence on one instance, in memory: `GET /api/v1/presence/{namespace}/{room}` and who may ask, and the
chat session's `presence` messages."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from conftest import TIMEOUT, make_token

ROLES = {"member": make_token("alice"), "other": make_token("bob"), "anonymous": None,
         "admin": make_token("root", scopes=("admin",))}
STATUS = {"member": 200, "other": 404, "anonymous": 401, "admin": 200}
NOT_FOUND = {"error": {"code": "NOT_FOUND", "message": "sala não encontrada"}}


async def presence(server: Any, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """GET a presence URL with a Bearer token (or none): the status and the JSON body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url(path), headers=headers) as response:
            return response.status, await response.json()


async def until_count(server: Any, path: str, count: int) -> dict[str, Any]:
    """Poll the room (as admin) until it lists `count` connections: a real condition, polled briefly."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            status, body = await presence(server, path, ROLES["admin"])
            if status == 200 and len(body["connections"]) == count:
                return body
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("role", list(ROLES))
async def test_access_matrix(server: Any, raw: Any, role: str) -> None:
    """The room's member and admin see it; another user gets the same 404 as for an empty room; no token is 401."""
    ws = await raw("/api/v1/ws/chat/room-1", make_token("alice"))
    await ws.recv_kind("connection")
    status, body = await presence(server, "/api/v1/presence/chat/session:room-1", ROLES[role])
    empty_status, empty = await presence(server, "/api/v1/presence/chat/session:nobody-here", ROLES[role])
    assert status == STATUS[role], body
    if status == 200:
        assert body["namespace"] == "chat" and body["room"] == "session:room-1" and body["users"] == ["alice"]
        assert [(c["user"], c["transport"]) for c in body["connections"]] == [("alice", "raw")]
    if role == "admin":
        assert (empty_status, empty["connections"], empty["users"]) == (200, [], [])
    elif role == "anonymous":
        assert empty_status == 401 and body["error"]["code"] == "AUTHENTICATION_ERROR"
    else:  # a member of one room is a stranger to another: no existence oracle
        assert (empty_status, empty) == (404, NOT_FOUND)
        if role == "other":
            assert body == NOT_FOUND


async def test_connections_users_and_transports(server: Any, raw: Any, sio: Any) -> None:
    """Raw and Socket.IO, authenticated and anonymous connections are listed; one that leaves is gone."""
    anonymous = await raw("/api/v1/ws/chat/mixed")
    await anonymous.recv_kind("connection")
    alice_raw = await raw("/api/v1/ws/chat/mixed", make_token("alice"))
    await alice_raw.recv_kind("connection")
    alice_io = await sio("/chat", auth={"token": make_token("alice"), "session_id": "mixed"})
    await alice_io.recv_kind("connection")
    body = await until_count(server, "/api/v1/presence/chat/session:mixed", 3)
    assert sorted((c["user"] or "", c["transport"]) for c in body["connections"]) == [
        ("", "raw"), ("alice", "raw"), ("alice", "socketio")]
    assert body["users"] == ["alice"] and len({c["instance"] for c in body["connections"]}) == 1
    assert await presence(server, "/api/v1/presence/omni/user:alice", ROLES["member"]) == (404, NOT_FOUND)
    await alice_io.client.disconnect()
    assert [c["transport"] for c in (await until_count(server, "/api/v1/presence/chat/session:mixed", 2))[
        "connections"] if c["user"]] == ["raw"]


async def test_path_parts_are_validated_after_authentication(server: Any) -> None:
    """An unknown namespace or an unusable room name is a 400 naming the field, once the token is good."""
    for path, field in (("/api/v1/presence/nope/session:x", "namespace"),
                        (f"/api/v1/presence/chat/{'r' * 201}", "room"),
                        ("/api/v1/presence/chat/a%20b", "room")):
        status, body = await presence(server, path, ROLES["admin"])
        assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR" and body["error"]["field"] == field
        assert (await presence(server, path, None))[0] == 401


async def test_chat_session_says_who_joins_and_leaves(raw: Any, sio: Any) -> None:
    """The session's other clients get `presence` joined/left with the user and the count; the joiner does
    not hear of itself."""
    first = await raw("/api/v1/ws/chat/lobby")
    await first.recv_kind("connection")
    second = await sio("/chat", auth={"token": make_token("alice"), "session_id": "lobby"})
    await second.recv_kind("connection")
    joined = await first.recv_kind("presence")
    assert joined["data"] == {"session_id": "lobby", "action": "joined", "user": "alice", "count": 2}
    await second.emit("ping", {})
    assert [name for name, _ in await drain_until(second, "pong")] == ["pong"]
    await second.client.disconnect()
    left = await first.recv_kind("presence")
    assert left["data"] == {"session_id": "lobby", "action": "left", "user": "alice", "count": 1}


async def drain_until(client: Any, kind: str) -> list[tuple[str, Any]]:
    """Every event a Socket.IO client gets up to and including the first `kind`."""
    seen = []
    while not seen or seen[-1][0] != kind:
        seen.append(await client.recv())
    return seen
