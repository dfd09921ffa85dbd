"""The console's HTTP side against a real server: the page and its CSP, `GET /api/v1/schemas`, the
development-token endpoint (present only on the development secret) and the admin overview's access."""
from __future__ import annotations

from typing import Any

import jwt
import pytest

from app.auth import USER_SCOPES
from conftest import SECRET, make_token
from schemas import cidadao, omni

DEV = {"dev_secret_path": "/tmp/ponte-test/dev-jwt-secret"}  # as from_env sets it when no JWT_SECRET is given


async def test_root_leads_to_the_console(aiohttp_client: Any, start_server: Any) -> None:
    """`/` answers a redirect to /console, which serves the page with its strict Content-Security-Policy."""
    client = await aiohttp_client(await start_server())
    response = await client.get("/", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/console"
    page = await client.get("/console")
    assert page.status == 200 and page.content_type == "text/html"
    assert '<script type="module" src="/console/js/main.js">' in await page.text()
    policy = page.headers["Content-Security-Policy"]
    parts = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert parts["default-src"] == "'self'" and parts["script-src"] == "'self'" and parts["style-src"] == "'self'"
    host = f"{client.server.host}:{client.server.port}"
    assert parts["connect-src"] == f"'self' ws://{host} wss://{host}"
    assert parts["frame-ancestors"] == "'none'" and parts["object-src"] == "'none'"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_static_files_carry_the_policy_and_stay_inside(aiohttp_client: Any, start_server: Any) -> None:
    """Modules, styles and the vendored client are served with the CSP and a JavaScript type; a path
    that leaves the folder, or a file type it does not serve, is 404."""
    client = await aiohttp_client(await start_server())
    for path, kind in [("/console/js/main.js", "text/javascript"), ("/console/console.css", "text/css"),
                       ("/console/vendor/socket.io.esm.min.js", "text/javascript")]:
        response = await client.get(path)
        assert response.status == 200 and response.content_type == kind, path
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for path in ["/console/../__init__.py", "/console/%2e%2e/__init__.py", "/console/js/nothing.js",
                 "/console/vendor/README.md"]:
        assert (await client.get(path)).status == 404, path


async def test_the_sample_contracts_are_served(aiohttp_client: Any, start_server: Any) -> None:
    """The investigations view's sample is the engines' synthetic data set, as CSV."""
    client = await aiohttp_client(await start_server())
    response = await client.get("/console/sample-contracts.csv")
    assert response.status == 200 and response.content_type == "text/csv"
    assert (await response.text()).startswith("contract_id,agency,supplier,item,category,value,date")


async def test_schemas_of_every_client_event(aiohttp_client: Any, start_server: Any) -> None:
    """`GET /api/v1/schemas` needs no token and gives each endpoint's raw path, namespace, envelope and
    the JSON Schema of every client event of both documents (and every server event)."""
    client = await aiohttp_client(await start_server())
    response = await client.get("/api/v1/schemas")
    assert response.status == 200
    protocols = {p["namespace"]: p for p in (await response.json())["protocols"]}
    assert protocols["/omni"]["raw_path"] == "/ws" and protocols["/omni"]["envelope"] == "event"
    assert protocols["/omni"]["token_required"] is True and protocols["/omni"]["params"] == []
    assert protocols["/chat"]["raw_path"] == "/api/v1/ws/chat/{session_id}"
    assert protocols["/chat"]["envelope"] == "type" and protocols["/chat"]["params"] == ["session_id"]
    assert protocols["/investigations"]["params"][0] == "investigation_id"  # then an anonymous session_id
    assert set(protocols["/omni"]["client"]) == set(omni.INBOUND)
    assert set(protocols["/chat"]["client"]) == set(cidadao.CHAT_INBOUND)
    assert set(protocols["/investigations"]["client"]) == set(cidadao.INVESTIGATIONS_INBOUND)
    assert set(protocols["/omni"]["server"]) == set(omni.OUTBOUND)
    start = protocols["/omni"]["client"]["EXECUCAO_INICIAR"]
    assert start["required"] == ["blog_url"] and start["additionalProperties"] is False
    assert start["$defs"]["Configuracoes"]["properties"]["profundidade"]["maximum"] == 5
    assert protocols["/chat"]["client"]["chat"]["properties"]["message"]["maxLength"] == 4000


async def test_dev_token_absent_with_a_configured_secret(aiohttp_client: Any, start_server: Any) -> None:
    """With JWT_SECRET set there is no development-token endpoint at all: 404, and the page is told so."""
    client = await aiohttp_client(await start_server())
    response = await client.post("/api/v1/dev/token", json={"sub": "alice"})
    assert response.status == 404
    assert await (await client.get("/console/config.json")).json() == {"dev_tokens": False}


async def test_dev_token_on_the_development_secret(aiohttp_client: Any, start_server: Any) -> None:
    """On the development secret it mints a one-hour token with the user scopes, that the server accepts."""
    client = await aiohttp_client(await start_server(**DEV))
    assert await (await client.get("/console/config.json")).json() == {"dev_tokens": True}
    response = await client.post("/api/v1/dev/token", json={"sub": "alice"})
    assert response.status == 200
    body = await response.json()
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["scope"] == " ".join(USER_SCOPES)
    assert claims["exp"] - claims["iat"] == 3600 and body["scopes"] == list(USER_SCOPES)
    overview = await client.get("/api/v1/admin/overview", headers={"Authorization": f"Bearer {body['token']}"})
    assert overview.status == 403  # valid, but no admin scope


async def test_dev_token_admin_only_from_this_machine(aiohttp_client: Any, start_server: Any) -> None:
    """admin and publish go to a loopback client that came through no proxy; behind one, 403 naming scopes."""
    client = await aiohttp_client(await start_server(**DEV))
    response = await client.post("/api/v1/dev/token", json={"sub": "ops", "scopes": ["admin", "chat"]})
    assert response.status == 200
    claims = jwt.decode((await response.json())["token"], SECRET, algorithms=["HS256"])
    assert claims["scope"] == "admin chat"
    proxied = await client.post("/api/v1/dev/token", json={"sub": "ops", "scopes": ["publish"]},
                                headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status == 403 and (await proxied.json())["error"]["field"] == "scopes"


@pytest.mark.parametrize("body, field", [({"sub": ""}, "sub"), ({"sub": "a b"}, "sub"), ({}, "sub"),
                                         ({"sub": "x", "scopes": ["root"]}, "scopes.0"),
                                         ({"sub": "x", "extra": 1}, "extra")])
async def test_dev_token_refuses_bad_requests(aiohttp_client: Any, start_server: Any, body: Any, field: str) -> None:
    """A bad name, an unknown scope or an unknown field is a 400 naming the field."""
    client = await aiohttp_client(await start_server(**DEV))
    response = await client.post("/api/v1/dev/token", json=body)
    assert response.status == 400 and (await response.json())["error"]["field"] == field


async def test_dev_token_json_same_origin_and_rate_limited(aiohttp_client: Any, start_server: Any) -> None:
    """A form post (not JSON) is 415, another site's Origin 403, and past 10 a minute from one address 429."""
    client = await aiohttp_client(await start_server(**DEV))
    form = await client.post("/api/v1/dev/token", data={"sub": "alice"})
    assert form.status == 415
    foreign = await client.post("/api/v1/dev/token", json={"sub": "alice"}, headers={"Origin": "https://evil.example"})
    assert foreign.status == 403
    statuses = [(await client.post("/api/v1/dev/token", json={"sub": f"u{i}"})).status for i in range(11)]
    assert statuses == [200] * 10 + [429]


ADMIN_MATRIX = [
    ("no token", None, 401),
    ("not a token", "Bearer nonsense", 401),
    ("another key", f"Bearer {make_token('eve', ('admin',), key='x' * 40)}", 401),
    ("expired", f"Bearer {make_token('ops', ('admin',), ttl=-3600)}", 401),
    ("token in the query only", "query", 401),
    ("user scopes", f"Bearer {make_token('alice')}", 403),
    ("publish", f"Bearer {make_token('backend', ('publish',))}", 403),
    ("admin", f"Bearer {make_token('ops', ('admin',))}", 200),
]


@pytest.mark.parametrize("who, header, status", ADMIN_MATRIX, ids=[row[0] for row in ADMIN_MATRIX])
async def test_admin_overview_access(aiohttp_client: Any, start_server: Any, who: str, header: str | None,
                                     status: int) -> None:
    """Only a Bearer token with the admin scope reads the overview: 401 without a valid one, 403 without the scope."""
    client = await aiohttp_client(await start_server())
    if header == "query":
        response = await client.get("/api/v1/admin/overview", params={"token": make_token("ops", ("admin",))})
    else:
        response = await client.get("/api/v1/admin/overview", headers={"Authorization": header} if header else {})
    assert response.status == status, await response.text()
    if status != 200:
        code = "AUTHENTICATION_ERROR" if status == 401 else "PERMISSION_ERROR"
        assert (await response.json())["error"]["code"] == code


async def test_admin_overview_lists_connections_rooms_and_jobs(server: Any, raw: Any, sio: Any,
                                                               aiohttp_client: Any) -> None:
    """The overview names this instance and its state, counts connections per namespace and transport, lists
    them with their users, the rooms with their members, the jobs, and the audit log's last lines."""
    await raw("/ws", token=make_token("alice"))
    await sio("/chat", auth={"session_id": "ops-s1"})
    client = await aiohttp_client(server)
    admin = {"Authorization": f"Bearer {make_token('ops', ('admin',))}"}
    response = await client.get("/api/v1/admin/overview", headers=admin)
    body = await response.json()
    assert body["instance"]["status"] == "ready" and body["instance"]["redis"] == "absent"
    assert [i["id"] for i in body["instances"]] == [body["instance"]["id"]]
    assert body["instances"][0]["state"]["status"] == "ready" and body["instances"][0]["state"]["connections"] >= 0
    assert {(c["namespace"], c["transport"], c["count"]) for c in body["connections"]} == {
        ("/omni", "raw", 1), ("/chat", "socketio", 1)}
    assert {(c["namespace"], c["user"]) for c in body["clients"]} == {("/omni", "alice"), ("/chat", None)}
    assert [c["params"] for c in body["clients"] if c["namespace"] == "/chat"] == [{"session_id": "ops-s1"}]
    rooms = {(r["namespace"], r["room"]): r["members"] for r in body["rooms"]}
    assert [m["user"] for m in rooms[("/omni", "user:alice")]] == ["alice"]
    assert [m["transport"] for m in rooms[("/chat", "session:ops-s1")]] == ["socketio"]
    assert body["jobs"] == {"mode": "embedded", "running": 0, "queued": 0, "workers": None}
    assert isinstance(body["audit"], list)
