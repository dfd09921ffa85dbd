"""Who may read and follow an investigation, on every transport, and that everyone else is answered
exactly as for an id that does not exist: HTTP, the raw and Socket.IO investigations endpoint, and
chat `subscribe` (raw and Socket.IO)."""
from __future__ import annotations

import asyncio
import datetime
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import aiohttp
import pytest

from conftest import CONTRACTS_CSV as CSV, TIMEOUT, error_parts, make_token

ID = re.compile(r"INV-\d{4}-[0-9A-F]{16}")
NOT_FOUND_BODY = {"error": {"code": "NOT_FOUND", "message": "investigação não encontrada"}}


@dataclass(frozen=True)
class Role:
    """How one kind of caller shows itself: its token, the chat session it proves, the chat session it opens."""

    token: str | None
    session: str | None  # `?session_id=` on HTTP and on the investigations endpoint
    chat: str  # the chat session its chat clients join

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def params(self) -> dict[str, str]:
        return {"session_id": self.session} if self.session else {}

    def auth(self, **more: str) -> dict[str, str]:
        return {**({"token": self.token} if self.token else {}), **self.params(), **more}


ROLES = {
    "owner": Role(make_token("alice"), None, "alice-chat"),  # created "by_token" with this token
    "session": Role(None, "s1", "s1"),  # the anonymous chat session "by_session" was created from
    "other": Role(make_token("bob"), None, "bob-chat"),  # every user scope, investigations included
    "admin": Role(make_token("root", scopes=("admin",)), None, "admin-chat"),
    "anonymous": Role(None, None, "nobody-chat"),
}
ALLOWED = {("owner", "by_token"), ("session", "by_session"), ("admin", "by_token"), ("admin", "by_session")}


def unknown_id() -> str:
    """An id in the documented format that no investigation has."""
    return f"INV-{datetime.date.today().year}-{secrets.token_hex(8).upper()}"


def bare(message: dict[str, Any]) -> dict[str, Any]:
    """A raw envelope without what differs on every message (its id and timestamp)."""
    return {key: value for key, value in message.items() if key not in ("id", "timestamp")}


async def create(server: Any, role: Role) -> dict[str, Any]:
    """POST the six-contract CSV as `role`: the 201 answer."""
    async with aiohttp.ClientSession(headers=role.headers()) as http:
        async with http.post(server.make_url("/api/v1/investigations"), data=CSV.encode(), params=role.params(),
                             headers={"Content-Type": "text/csv"}) as response:
            assert response.status == 201, await response.text()
            return dict(await response.json())


async def finished(url: str) -> dict[str, Any]:
    """Poll the state behind an investigation's keyed `url` (no header) until its analysis has ended."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(4 * TIMEOUT):
        while True:
            async with http.get(url) as response:
                state = await response.json()
            if state["status"] in ("completed", "failed"):
                return dict(state)
            await asyncio.sleep(0.02)  # a real condition, polled briefly


@pytest.fixture
async def investigations(server: Any) -> dict[str, str]:
    """Two finished investigations: one created with alice's token, one from the anonymous session s1."""
    by_token, by_session = await create(server, ROLES["owner"]), await create(server, ROLES["session"])
    for created in (by_token, by_session):
        assert (await finished(created["url"]))["status"] == "completed"
    return {"by_token": by_token["investigation_id"], "by_session": by_session["investigation_id"]}


# -- one answer per transport: what a role gets for an id ----------------------------------------------

async def http_get(server: Any, role: Role, path: str, **params: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession(headers=role.headers()) as http:
        async with http.get(server.make_url(path), params={**role.params(), **params}) as response:
            return response.status, response.content_type, await response.read()


async def http_state(ctx: Any, role: Role, inv_id: str) -> Any:
    """GET the state: status, content type and the body's bytes."""
    return await http_get(ctx.server, role, f"/api/v1/investigations/{inv_id}")


async def http_report(ctx: Any, role: Role, inv_id: str) -> Any:
    """GET the Markdown report: status, content type and the body's bytes."""
    return await http_get(ctx.server, role, f"/api/v1/investigations/{inv_id}/report", format="md")


async def raw_endpoint(ctx: Any, role: Role, inv_id: str) -> Any:
    """Connect to the raw investigations endpoint: the welcome and snapshot, or the error and the close."""
    query = f"?session_id={role.session}" if role.session else ""
    ws = await ctx.raw(f"/api/v1/ws/investigations/{inv_id}{query}", role.token)
    first = bare(await ws.recv())
    if first["type"] != "connection":
        return first, await ws.closed()
    while (progress := bare(await ws.recv_kind("investigation_progress")))["data"]["update_type"] != "snapshot":
        pass  # the room's history comes first (a late follower): the snapshot ends it
    return first, progress


async def sio_endpoint(ctx: Any, role: Role, inv_id: str) -> Any:
    """Connect to Socket.IO `/investigations`: the welcome and snapshot, or the connect_error."""
    client = await ctx.sio("/investigations", auth=role.auth(investigation_id=inv_id))
    if client.connect_error is not None:
        return "connect_error", client.connect_error
    welcome = {"type": "connection", "data": await client.recv_kind("connection")}
    while (progress := await client.recv_kind("investigation_progress"))["update_type"] != "snapshot":
        pass  # the room's history comes first (a late follower): the snapshot ends it
    return welcome, {"type": "investigation_progress", "data": progress}


async def raw_chat(ctx: Any, role: Role, inv_id: str) -> Any:
    """`subscribe` from a raw chat client: `subscribed` and the snapshot, or the error and a pong."""
    ws = await ctx.raw(f"/api/v1/ws/chat/{role.chat}", role.token)
    await ws.recv_kind("connection")
    await ws.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    first = bare(await ws.recv())
    if first["type"] == "error":
        await ws.send({"type": "ping", "data": {}})  # the connection stays
    return first, bare(await ws.recv())["type"]


async def sio_chat(ctx: Any, role: Role, inv_id: str) -> Any:
    """`subscribe` from a Socket.IO `/chat` client: `subscribed` and the snapshot, or the error and a pong."""
    client = await ctx.sio("/chat", auth=role.auth(session_id=role.chat))
    await client.recv_kind("connection")
    await client.emit("subscribe", {"investigation_id": inv_id})
    first = await client.recv()
    if first[0] == "error":
        await client.emit("ping", {})
    return {"type": first[0], "data": first[1]}, (await client.recv())[0]


def allowed_state(answer: Any, inv_id: str) -> None:
    status, content_type, body = answer
    assert (status, content_type) == (200, "application/json"), body
    state = json.loads(body)
    assert state["investigation_id"] == inv_id and state["status"] == "completed" and state["anomalies"]


def allowed_report(answer: Any, inv_id: str) -> None:
    status, content_type, body = answer
    assert (status, content_type) == (200, "text/markdown"), body
    assert body.startswith(b"# ") and inv_id.encode() in body and b"19.000,00" in body


def allowed_follow(answer: Any, inv_id: str) -> None:
    welcome, snapshot = answer
    assert welcome["type"] in ("connection", "subscribed") and welcome["data"]["investigation_id"] == inv_id
    assert snapshot["type"] == "investigation_progress"
    assert snapshot["data"] | {"message": ""} == {"investigation_id": inv_id, "update_type": "snapshot",
                                                  "progress": 100.0, "status": "completed", "message": ""}


def allowed_subscribe(answer: Any, inv_id: str) -> None:
    welcome, then = answer
    assert welcome == {"type": "subscribed", "data": {"investigation_id": inv_id, "status": "subscribed"}}
    assert then == "investigation_progress"


def refused_http(answer: Any) -> None:
    status, content_type, body = answer
    assert (status, content_type, json.loads(body)) == (404, "application/json", NOT_FOUND_BODY)


def refused_endpoint(answer: Any) -> None:
    first, second = answer
    if first == "connect_error":
        assert second == {"message": "investigação não encontrada",
                          "data": {"code": "NOT_FOUND", "close": 1008, "details": {"campo": "investigation_id"}}}
    else:
        assert error_parts(first | {"id": "", "timestamp": ""})[0] == "NOT_FOUND" and second[0] == 1008


def refused_subscribe(answer: Any) -> None:
    error, then = answer
    assert error["type"] == "error" and error["data"]["code"] == "NOT_FOUND" and then == "pong"


Check = Callable[[Any, Role, str], Awaitable[Any]]
TRANSPORTS: dict[str, tuple[Check, Callable[[Any, str], None], Callable[[Any], None]]] = {
    "http state": (http_state, allowed_state, refused_http),
    "http report": (http_report, allowed_report, refused_http),
    "raw endpoint": (raw_endpoint, allowed_follow, refused_endpoint),
    "socketio endpoint": (sio_endpoint, allowed_follow, refused_endpoint),
    "raw chat subscribe": (raw_chat, allowed_subscribe, refused_subscribe),
    "socketio chat subscribe": (sio_chat, allowed_subscribe, refused_subscribe),
}


@dataclass
class Clients:
    """The server under test and the fixtures that open clients to it."""

    server: Any
    raw: Any
    sio: Any


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("target", ["by_token", "by_session"])
@pytest.mark.parametrize("role", ROLES)
async def test_access_matrix(server: Any, raw: Any, sio: Any, investigations: dict[str, str], role: str,
                             target: str, transport: str) -> None:
    """Owner, its chat session and admin read and follow it; anyone else gets exactly the unknown id's answer."""
    check, allowed, refused = TRANSPORTS[transport]
    ctx, inv_id = Clients(server, raw, sio), investigations[target]
    answer = await check(ctx, ROLES[role], inv_id)
    if (role, target) in ALLOWED:
        allowed(answer, inv_id)
    else:
        refused(answer)
        assert answer == await check(ctx, ROLES[role], unknown_id())


# -- ids, report links, unknown ids, following from the start --------------------------------------

async def test_ids_are_random(server: Any) -> None:
    """Two creates give ids in the documented format whose random parts are unrelated, not a sequence."""
    first, second = await create(server, ROLES["owner"]), await create(server, ROLES["owner"])
    ids = [first["investigation_id"], second["investigation_id"]]
    assert all(ID.fullmatch(inv_id) for inv_id in ids), ids
    assert abs(int(ids[0][-16:], 16) - int(ids[1][-16:], 16)) > 1000


async def test_report_link_opens_without_headers_and_a_wrong_key_is_404(server: Any) -> None:
    """The keyed url and report_url open with no header (`&format=md` appended too); a wrong key, or
    another investigation's, gets the unknown id's 404; the key shows only inside the URLs."""
    created, another = await create(server, ROLES["owner"]), await create(server, ROLES["owner"])
    state = await finished(created["url"])
    assert state["report_url"] == created["report_url"] and "read_key" not in state and "links" not in state
    key = created["report_url"].partition("?key=")[2]
    assert len(key) >= 22 and key not in json.dumps({k: v for k, v in state.items() if k != "report_url"})
    async with aiohttp.ClientSession() as http:
        async with http.get(created["report_url"] + "&format=md") as response:
            assert response.status == 200 and (await response.text()).startswith("# ")
        async with http.get(created["report_url"]) as response:
            assert (await response.json())["investigation_id"] == created["investigation_id"]
        answers = []
        for url in (created["report_url"].replace(key, secrets.token_urlsafe(16)),
                    created["report_url"].replace(created["investigation_id"], another["investigation_id"]),
                    created["report_url"].partition("?")[0],
                    created["report_url"].replace(created["investigation_id"], unknown_id())):
            async with http.get(url) as response:
                answers.append((response.status, await response.json()))
    assert answers == [(404, NOT_FOUND_BODY)] * 4


async def test_an_unknown_id_is_refused_even_for_admin(raw: Any, sio: Any) -> None:
    """Nobody, admin included, follows or subscribes to an id before an investigation has it."""
    admin, inv_id = ROLES["admin"], unknown_id()
    ws = await raw(f"/api/v1/ws/investigations/{inv_id}", admin.token)
    code, message, details = error_parts(await ws.recv())
    assert (code, message, details) == ("NOT_FOUND", "investigação não encontrada", {"campo": "investigation_id"})
    assert (await ws.closed())[0] == 1008
    client = await sio("/investigations", auth=admin.auth(investigation_id=inv_id))
    assert client.connect_error["data"]["code"] == "NOT_FOUND"
    chat = await raw("/api/v1/ws/chat/admin-chat", admin.token)
    await chat.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    assert error_parts(await chat.recv_kind("error"))[0] == "NOT_FOUND"


async def test_a_chat_session_follows_its_investigation_from_the_start(raw: Any, sio: Any) -> None:
    """Every client of the anonymous session that asked gets the first step and report_ready, whose
    report_url opens in a client without any header; another session cannot subscribe."""
    ws = await raw("/api/v1/ws/chat/walk")
    await ws.recv_kind("connection")
    io = await sio("/chat", auth={"session_id": "walk"})
    await io.recv_kind("connection")
    await ws.send({"type": "chat", "data": {"message": "Investigar contratos do Ministério da Saúde"}})
    first = (await ws.recv_kind("investigation_progress", timeout=20))["data"]
    assert first["update_type"] == "progress" and first["message"].startswith("Buscando contratos")
    assert (await io.recv_kind("investigation_progress", timeout=20)) == first
    ready = (await ws.recv_kind("report_ready", timeout=20))["data"]
    assert await io.recv_kind("report_ready", timeout=20) == ready
    assert ID.fullmatch(ready["investigation_id"]) and "?key=" in ready["report_url"]
    async with aiohttp.ClientSession() as http:
        async with http.get(ready["report_url"] + "&format=md") as response:
            assert response.status == 200 and "## Anomalias" in await response.text()
    stranger = await raw("/api/v1/ws/chat/elsewhere")
    await stranger.send({"type": "subscribe", "data": {"investigation_id": ready["investigation_id"]}})
    assert error_parts(await stranger.recv_kind("error"))[0] == "NOT_FOUND"


async def test_a_users_chat_session_is_not_public(raw: Any) -> None:
    """An investigation started in alice's own chat session is not visible to others naming that session."""
    alice = await raw("/api/v1/ws/chat/alice-room", ROLES["owner"].token)
    await alice.send({"type": "chat", "data": {"message": "Investigar contratos do Ministério da Saúde"}})
    inv_id = (await alice.recv_kind("report_ready", timeout=20))["data"]["investigation_id"]
    for token in (None, ROLES["other"].token):
        ws = await raw(f"/api/v1/ws/investigations/{inv_id}?session_id=alice-room", token)
        assert error_parts(await ws.recv())[0] == "NOT_FOUND" and (await ws.closed())[0] == 1008
    mine = await raw(f"/api/v1/ws/investigations/{inv_id}", ROLES["owner"].token)
    assert (await mine.recv_kind("connection"))["data"]["investigation_id"] == inv_id


async def test_upload_cannot_become_another_sessions_latest(server: Any, raw: Any) -> None:
    """An upload that names someone's anonymous chat session is not what that session's agents then answer
    about: only an investigation the session started itself is its latest."""
    victim = await raw("/api/v1/ws/chat/victim-session")
    await victim.recv_kind("connection")
    planted = await create(server, Role(None, "victim-session", "victim-session"))
    await victim.send({"type": "chat", "data": {"message": "Qual o andamento?"}})
    while not (answer := (await victim.recv_kind("chat"))["data"]).get("done"):
        pass
    assert planted["investigation_id"] not in answer["content"], answer["content"]
