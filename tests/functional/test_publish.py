"""`POST /api/v1/publish`: who may publish, what is refused and why, and that a publication reaches
raw-WebSocket and Socket.IO clients of its room."""
from __future__ import annotations

import json
import re
from typing import Any, AsyncIterator, get_args

import aiohttp
import pytest

from app.factory import NAMESPACES
from app.publish import DOCUMENTED, MAX_BODY, Publication
from conftest import create_investigation, make_token

NOTICE = {"tipo": "info", "titulo": "Sistema Atualizado", "mensagem": "Nova versão"}
ANOMALY = {"severity": "high", "description": "Sobrepreço",  # with the investigation_id of a real one
           "details": {"contract_id": "C-9", "expected_value": 100.0, "actual_value": 250.0}}
PUBLISHER = make_token("backend", ("publish",))
GOOD = {"namespace": "/omni", "user": "alice", "event": "NOTIFICACAO_GERAL", "data": NOTICE}
NO_TARGET = {"namespace": "/omni", "event": "NOTIFICACAO_GERAL", "data": NOTICE}


async def post(server: Any, body: Any = None, token: str | None = PUBLISHER, *, data: Any = None,
               headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST to the publish API (JSON `body`, or raw `data`); the status and the parsed answer."""
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        async with session.post(server.make_url("/api/v1/publish"), headers=headers, params=params,
                                **kwargs) as response:
            return response.status, await response.json()


def test_namespaces_are_the_servers() -> None:
    """The publish API knows exactly the namespaces the server registers."""
    assert set(DOCUMENTED) == set(NAMESPACES)
    assert set(get_args(Publication.model_fields["namespace"].annotation)) == set(NAMESPACES)


@pytest.mark.parametrize("token, status, code", [
    (None, 401, "AUTHENTICATION_ERROR"),
    ("not-a-jwt", 401, "AUTHENTICATION_ERROR"),
    (make_token("backend", ("publish",), ttl=-120), 401, "AUTHENTICATION_ERROR"),
    (make_token("backend", ("publish",), key="another-secret-0123456789abcdef-0123"), 401, "AUTHENTICATION_ERROR"),
    (make_token("alice"), 403, "PERMISSION_ERROR"),
], ids=["no token", "bad token", "expired", "wrong key", "no publish scope"])
async def test_credentials_are_checked(server: Any, token: str | None, status: int, code: str) -> None:
    """No token, a bad, expired or foreign token is 401; a token without the publish scope is 403."""
    answer_status, answer = await post(server, GOOD, token)
    assert answer_status == status and answer["error"]["code"] == code and answer["error"]["message"]


async def test_token_in_query_string_is_ignored(server: Any) -> None:
    """The token is read from the Authorization header only: in the query string it would reach logs."""
    status, answer = await post(server, GOOD, None, params={"token": PUBLISHER})
    assert status == 401 and answer["error"]["code"] == "AUTHENTICATION_ERROR"


async def test_admin_may_publish(server: Any) -> None:
    """The admin scope grants publishing too."""
    status, answer = await post(server, GOOD, make_token("ops", ("admin",)))
    assert status == 202 and re.fullmatch(r"[0-9a-f]{32}", answer["id"])


@pytest.mark.parametrize("body, field", [
    ({**GOOD, "namespace": "/nope"}, "namespace"),
    ({**GOOD, "room": "user:alice"}, "user"),
    (NO_TARGET, "room"),
    ({**NO_TARGET, "room": "x" * 201}, "room"),
    ({**NO_TARGET, "room": ""}, "room"),
    ({**GOOD, "event": "1st"}, "event"),
    ({**GOOD, "event": "has space"}, "event"),
    ({**GOOD, "event": "E" * 65}, "event"),
    ({**GOOD, "event": "disconnect"}, "event"),
    ({**GOOD, "data": ["not", "an", "object"]}, "data"),
    ({**GOOD, "to": "user:alice"}, "to"),
    ({**GOOD, "data": {**NOTICE, "tipo": "x"}}, "data.tipo"),
    ({**GOOD, "data": {"tipo": "info"}}, "data.titulo"),
    ([GOOD, {**GOOD, "data": {**NOTICE, "tipo": "x"}}], "1.data.tipo"),
    ([GOOD, "not an object"], "1"),
], ids=["namespace", "room and user", "neither", "long room", "empty room", "event digit", "event space",
        "long event", "reserved event", "data list", "unknown key", "documented field", "documented missing",
        "list index", "list item"])
async def test_invalid_items_name_the_field(server: Any, body: Any, field: str) -> None:
    """An invalid item is 400 VALIDATION_ERROR naming the bad field, prefixed by its index in a list."""
    status, answer = await post(server, body)
    assert status == 400 and answer["error"]["code"] == "VALIDATION_ERROR"
    assert answer["error"]["field"] == field and answer["error"]["message"].startswith(field)


@pytest.mark.parametrize("data", [b"{not json", b"NaN", b"\xff\xfe", b'"a string"', b"42", b"[]",
                                  json.dumps([GOOD] * 101).encode()],
                         ids=["not json", "nan", "not utf-8", "string", "number", "empty list", "101 items"])
async def test_bad_bodies_are_refused(server: Any, data: bytes) -> None:
    """A body that is not JSON, not an object or a list of 1 to 100 objects is 400."""
    status, answer = await post(server, data=data, headers={"Content-Type": "application/json"})
    assert status == 400 and answer["error"]["code"] == "VALIDATION_ERROR"


async def test_oversized_bodies_are_refused(server: Any) -> None:
    """A body over 1 MB is 413, whether it declares its length or streams it chunked."""
    big = json.dumps({**GOOD, "event": "custom", "data": {"blob": "x" * MAX_BODY}}).encode()

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    for data in (big, chunked()):
        status, answer = await post(server, data=data)
        assert status == 413 and answer["error"]["code"] == "VALIDATION_ERROR"


async def test_user_publication_reaches_raw_and_socketio_clients(server: Any, raw: Any, sio: Any) -> None:
    """NOTIFICACAO_GERAL published to user alice reaches her raw /ws and Socket.IO /omni clients, not bob's."""
    alice_ws = await raw("/ws", make_token("alice"))
    alice_io = await sio("/omni", auth={"token": make_token("alice")})
    bob_ws = await raw("/ws", make_token("bob"))
    status, answer = await post(server, GOOD)
    assert status == 202 and re.fullmatch(r"[0-9a-f]{32}", answer["id"])
    assert (await alice_ws.recv_kind("NOTIFICACAO_GERAL"))["data"] == NOTICE
    assert await alice_io.recv_kind("NOTIFICACAO_GERAL") == NOTICE
    await bob_ws.send({"event": "SESSAO_PING", "data": {"request_id": "after"}})
    assert (await bob_ws.recv())["event"] == "SESSAO_PONG"  # nothing was queued before the answer


async def test_room_publication_reaches_investigation_clients(server: Any, raw: Any) -> None:
    """anomaly_detected published to room investigation:{id} reaches a raw client of that investigation."""
    token = make_token("alice", ("investigations",))
    inv_id = await create_investigation(server, token)
    ws = await raw(f"/api/v1/ws/investigations/{inv_id}", token)
    await ws.recv_kind("connection")
    anomaly = {"investigation_id": inv_id, **ANOMALY}
    body = {"namespace": "/investigations", "room": f"investigation:{inv_id}", "event": "anomaly_detected",
            "data": anomaly}
    status, _ = await post(server, body)
    assert status == 202
    while "offset" not in (message := await ws.recv_kind("anomaly_detected")):
        pass  # the investigation's own anomalies, replayed to a late follower without offsets, come first
    assert message["data"] == anomaly and message["id"] and message["timestamp"]


async def test_batch_is_emitted_in_order(server: Any, raw: Any) -> None:
    """A list is validated as a whole, then emitted in order; the answer lists one id per item."""
    ws = await raw("/ws", make_token("alice"))
    batch = [{**GOOD, "data": {**NOTICE, "titulo": str(n)}} for n in range(3)]
    batch.append({"namespace": "/omni", "user": "alice", "event": "custom_event", "data": {"free": ["form"]}})
    status, answer = await post(server, batch)
    assert status == 202 and len(set(answer["ids"])) == 4
    titles = [(await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] for _ in range(3)]
    assert titles == ["0", "1", "2"]
    assert (await ws.recv_kind("custom_event"))["data"] == {"free": ["form"]}


async def test_batch_with_a_bad_item_emits_nothing(server: Any, raw: Any) -> None:
    """One invalid item refuses the whole list: none of it is emitted."""
    ws = await raw("/ws", make_token("alice"))
    status, _ = await post(server, [GOOD, {**GOOD, "event": "bad name"}])
    assert status == 400
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "after"}})
    assert (await ws.recv())["event"] == "SESSAO_PONG"


async def test_publishes_are_audited(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Each publish writes one audit line naming who published which events to which rooms; a refused one
    writes its error code and never the token."""
    caplog.set_level("INFO", logger="ponte.audit")  # python -m app sends it to stdout instead
    status, answer = await post(server, GOOD)
    assert status == 202
    status, _ = await post(server, GOOD, token=make_token("alice"))  # no publish scope
    assert status == 403
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ponte.audit"]
    accepted, refused = [line for line in lines if line["event"] == "http_publish"]
    assert accepted["user_id"] == "backend" and accepted["status"] == "success"
    assert accepted["items"] == [{"id": answer["id"], "event": "NOTIFICACAO_GERAL", "namespace": "/omni",
                                  "to": "user:alice"}]
    assert refused["user_id"] == "alice" and refused["error_code"] == "PERMISSION_ERROR" and refused["items"] == []
    assert PUBLISHER not in json.dumps(lines)
