"""The authentication matrix: who gets in, on which endpoint, with which token, and where it travels."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import RawClient, SioClient, TIMEOUT, create_investigation, error_parts, make_token

OMNI = "/ws"
CHAT = "/api/v1/ws/chat/s1"
INVESTIGATION = "/api/v1/ws/investigations/{investigation_id}"  # of one alice creates (`endpoint`)
UNKNOWN_INVESTIGATION = "INV-2026-0123456789ABCDEF"  # well-formed, but no investigation has it
RAW_ENDPOINTS = [OMNI, CHAT, INVESTIGATION]
NO_EXECUTIONS = ("notifications", "monitoring", "chat", "investigations")
AUDIENCE, ISSUER = "ponte-api", "https://auth.example"


# -- hand-built tokens -------------------------------------------------------------------------------

def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "mallory", "scope": "executions chat investigations", "iat": now, "exp": now + 3600,
            **extra}


def unsigned_token(header: dict[str, Any], body: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"


def alg_none_token() -> str:
    """An `alg: none` token with valid claims and an empty signature."""
    return unsigned_token({"alg": "none", "typ": "JWT"}, claims()) + "."


def hs256_token(key: bytes, body: dict[str, Any]) -> str:
    """An HS256 token signed by hand (PyJWT refuses PEM text as an HMAC key, an attacker does not)."""
    signing_input = unsigned_token({"alg": "HS256", "typ": "JWT"}, body)
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "malformed": lambda: "not-a-jwt",
    "malformed-segments": lambda: "abc.def.ghi",
    "wrong-signature": lambda: make_token("mallory", key="another-secret-0123456789abcdef-0123456"),
    "alg-none": alg_none_token,
    "expired": lambda: make_token("mallory", ttl=-60),
    "not-yet-valid": lambda: make_token("mallory", nbf=int(time.time()) + 60),
    "missing-exp": lambda: make_token("mallory", exp=None),
    "missing-sub": lambda: make_token(sub=None),  # type: ignore[arg-type]
}
# A token over 8 KiB cannot ride in a URL (aiohttp answers 400 to the request line), only in a payload.
SIO_BAD_TOKENS = {**BAD_TOKENS, "too-long": lambda: make_token("mallory", padding="x" * 9000)}
MOTIVO = {"expired": "expired", "not-yet-valid": "not_yet_valid"}


# -- assertions shared by the tests ------------------------------------------------------------------

async def endpoint(server: Any, path: str) -> str:
    """`path` itself, or for INVESTIGATION the endpoint of an investigation alice has just created."""
    if path != INVESTIGATION:
        return path
    return INVESTIGATION.format(investigation_id=await create_investigation(server, make_token("alice")))


async def assert_refused(client: RawClient, code: str = "AUTHENTICATION_ERROR",
                         close: int = 1008) -> dict[str, Any]:
    """The first message is an error envelope with `code`, then the server closes with `close`."""
    got, message, details = error_parts(await client.recv())
    assert got == code and message
    assert (await client.closed())[0] == close
    return details


async def ping(client: RawClient, path: str = OMNI) -> None:
    """A keep-alive round trip in the endpoint's protocol."""
    if path == OMNI:
        await client.send({"event": "SESSAO_PING", "data": {"request_id": "alive"}})
        assert (await client.recv_kind("SESSAO_PONG"))["data"]["request_id"] == "alive"
    else:
        await client.send({"type": "ping", "data": {}})
        assert (await client.recv_kind("pong"))["data"]["server_time"]


async def assert_serves(raw: Any) -> None:
    """The server still accepts and answers a fresh, well-behaved client."""
    await ping(await raw(OMNI, make_token("healthy")))


async def assert_sio_serves(sio: Any) -> None:
    """The server still accepts and answers a fresh Socket.IO client."""
    io = await sio("/omni", auth={"token": make_token("healthy")})
    assert io.connect_error is None
    await io.emit("SESSAO_PING", {"request_id": "alive"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "alive"


def assert_sio_refused(io: SioClient, code: str = "AUTHENTICATION_ERROR") -> dict[str, Any]:
    """The Socket.IO connection was refused with a message and `data.code`."""
    error = io.connect_error
    assert isinstance(error, dict), error
    assert error["message"] and error["data"]["code"] == code
    assert not io.client.connected
    return error


@pytest.fixture
async def sio_url(server: Any) -> AsyncIterator[Callable[..., Awaitable[SioClient]]]:
    """Socket.IO connections whose URL carries a query string (the `sio` fixture's URL is fixed)."""
    clients: list[SioClient] = []

    async def connect(namespace: str, query: dict[str, str]) -> SioClient:
        client = SioClient(namespace)
        clients.append(client)
        await client.client.connect(str(server.make_url("/").with_query(query)), namespaces=[namespace],
                                    transports=["websocket"], wait_timeout=TIMEOUT)
        return client

    yield connect
    for client in clients:
        await client.client.disconnect()


# -- refusals ----------------------------------------------------------------------------------------

async def test_raw_omni_refuses_missing_token(server: Any, raw: Any) -> None:
    """/ws without any token answers ERRO AUTHENTICATION_ERROR, closes 1008 and keeps serving others."""
    client = await raw(OMNI)
    details = await assert_refused(client)
    assert details == {}
    await assert_serves(raw)


async def test_sio_omni_refuses_missing_token(server: Any, sio: Any) -> None:
    """Socket.IO /omni without a token gets connect_error with code AUTHENTICATION_ERROR."""
    assert_sio_refused(await sio("/omni"))
    await assert_sio_serves(sio)


@pytest.mark.parametrize("path", RAW_ENDPOINTS)
@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_raw_refuses_bad_token(server: Any, raw: Any, path: str, kind: str) -> None:
    """A bad token on any raw endpoint (required or optional auth) is refused with an error then 1008."""
    client = await raw(await endpoint(server, path), BAD_TOKENS[kind]())
    details = await assert_refused(client)
    if kind in MOTIVO:
        assert details["motivo"] == MOTIVO[kind]
    await assert_serves(raw)


@pytest.mark.parametrize("kind", list(SIO_BAD_TOKENS))
async def test_sio_refuses_bad_token(server: Any, sio: Any, kind: str) -> None:
    """A bad token in the Socket.IO auth payload is refused with connect_error AUTHENTICATION_ERROR."""
    error = assert_sio_refused(await sio("/omni", auth={"token": SIO_BAD_TOKENS[kind]()}))
    if kind in MOTIVO:
        assert error["data"]["details"]["motivo"] == MOTIVO[kind]
    await assert_sio_serves(sio)


async def test_refusal_does_not_echo_token(server: Any, raw: Any) -> None:
    """The refusal envelope never repeats the token the client sent."""
    token = BAD_TOKENS["wrong-signature"]()
    client = await raw(OMNI, token)
    msg = await client.ws.receive(timeout=TIMEOUT)
    assert token not in msg.data and token.split(".")[2] not in msg.data
    assert (await client.closed())[0] == 1008


@pytest.mark.parametrize("settings_overrides", [{"jwt_audience": AUDIENCE, "jwt_issuer": ISSUER}])
@pytest.mark.parametrize("kind,extra", [
    ("wrong-audience", {"aud": "someone-else", "iss": ISSUER}),
    ("missing-audience", {"iss": ISSUER}),
    ("wrong-issuer", {"aud": AUDIENCE, "iss": "https://evil.example"}),
    ("missing-issuer", {"aud": AUDIENCE}),
])
async def test_audience_and_issuer_enforced(server: Any, raw: Any, sio: Any, kind: str,
                                            extra: dict[str, str]) -> None:
    """With JWT_AUDIENCE and JWT_ISSUER set, a token with a wrong or missing aud/iss is refused."""
    token = make_token("alice", **extra)
    await assert_refused(await raw(OMNI, token))
    await assert_refused(await raw(CHAT, token))
    assert_sio_refused(await sio("/omni", auth={"token": token}))
    good = make_token("healthy", aud=AUDIENCE, iss=ISSUER)
    await ping(await raw(OMNI, good))


@pytest.mark.parametrize("settings_overrides", [{"jwt_audience": AUDIENCE, "jwt_issuer": ISSUER}])
async def test_correct_audience_and_issuer_accepted(server: Any, raw: Any, sio: Any) -> None:
    """A token carrying the configured aud (also as a list) and iss is accepted on both transports."""
    await ping(await raw(OMNI, make_token("alice", aud=AUDIENCE, iss=ISSUER)))
    await ping(await raw(OMNI, make_token("alice", aud=["other", AUDIENCE], iss=ISSUER)))
    io = await sio("/omni", auth={"token": make_token("alice", aud=AUDIENCE, iss=ISSUER)})
    assert io.connect_error is None
    await io.emit("SESSAO_PING", {"request_id": "aud"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "aud"


async def test_audience_ignored_when_not_configured(server: Any, raw: Any) -> None:
    """Without JWT_AUDIENCE a token that happens to carry an aud claim is still accepted."""
    await ping(await raw(OMNI, make_token("alice", aud="anything")))


# -- where the token travels ---------------------------------------------------------------------------

async def test_token_in_authorization_header(server: Any, raw: Any) -> None:
    """`Authorization: Bearer <token>` authenticates a raw /ws client."""
    client = await raw(OMNI, headers={"Authorization": f"Bearer {make_token('alice')}"})
    await ping(client)


async def test_token_in_query(server: Any, raw: Any) -> None:
    """`?token=<token>` authenticates a raw /ws client."""
    await ping(await raw(OMNI, make_token("alice")))


@pytest.mark.parametrize("marker", ["bearer", "access_token"])
async def test_token_in_subprotocol(server: Any, raw: Any, marker: str) -> None:
    """`Sec-WebSocket-Protocol: <marker>, <token>` authenticates; the server selects the marker, never
    echoing the token."""
    token = make_token("alice")
    client = await raw(OMNI, protocols=(marker, token))
    assert client.ws.protocol == marker
    await ping(client)


async def test_subprotocol_with_bad_token_refused(server: Any, raw: Any) -> None:
    """A bad token offered as a subprotocol is refused like any other bad token."""
    client = await raw(OMNI, protocols=("bearer", BAD_TOKENS["wrong-signature"]()))
    assert client.ws.protocol == "bearer"
    await assert_refused(client)
    await assert_serves(raw)


@pytest.mark.parametrize("how", ["header", "query", "subprotocol"])
async def test_token_locations_on_chat_authenticate(server: Any, raw: Any, how: str) -> None:
    """On the optional-auth chat endpoint each token location yields an authenticated (not anonymous)
    client: it may subscribe to the investigation its user created."""
    token = make_token("alice")
    inv_id = await create_investigation(server, token)
    kwargs: dict[str, Any] = {
        "header": {"headers": {"Authorization": f"Bearer {token}"}},
        "query": {"token": token},
        "subprotocol": {"protocols": ("bearer", token)},
    }[how]
    client = await raw(CHAT, **kwargs)
    await client.recv_kind("connection")
    await client.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    assert (await client.recv_kind("subscribed"))["data"] == {"investigation_id": inv_id, "status": "subscribed"}


async def test_token_in_sio_auth(server: Any, sio: Any) -> None:
    """The Socket.IO `auth={"token": ...}` payload authenticates an /omni client."""
    io = await sio("/omni", auth={"token": make_token("alice")})
    assert io.connect_error is None
    await io.emit("SESSAO_PING", {"request_id": "auth"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "auth"


async def test_token_in_sio_query(server: Any, sio_url: Any) -> None:
    """A `?token=` query string on the Socket.IO URL authenticates an /omni client."""
    io = await sio_url("/omni", {"token": make_token("alice")})
    assert io.connect_error is None
    await io.emit("SESSAO_PING", {"request_id": "query"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "query"


async def test_bad_token_in_sio_query_refused(server: Any, sio: Any) -> None:
    """A bad token in the Socket.IO query string is refused with connect_error AUTHENTICATION_ERROR."""
    io = SioClient("/omni")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await io.client.connect(str(server.make_url("/").with_query(token=BAD_TOKENS["expired"]())),
                                namespaces=["/omni"], transports=["websocket"], wait_timeout=TIMEOUT)
    assert_sio_refused(io)
    await io.client.disconnect()
    await assert_sio_serves(sio)


async def test_token_in_sio_header(server: Any, sio: Any) -> None:
    """An `Authorization: Bearer` header on the Socket.IO handshake authenticates an /omni client."""
    io = await sio("/omni", headers={"Authorization": f"Bearer {make_token('alice')}"})
    assert io.connect_error is None
    await io.emit("SESSAO_PING", {"request_id": "header"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "header"


@pytest.mark.parametrize("where", ["header", "query"])
async def test_namespace_connect_after_the_upgrade_request_is_trimmed(server: Any, where: str) -> None:
    """On a WebSocket from the start, a client's namespace CONNECTs are read after Ponte has dropped what
    an open connection no longer needs of its upgrade request: the token in the Authorization header or
    the query string still authenticates both namespaces, and a bad one is still refused."""
    async def connect(token: str) -> SioClient:
        io = SioClient("/omni")
        url = server.make_url("/")
        headers = {"Authorization": f"Bearer {token}"} if where == "header" else {}
        with contextlib.suppress(socketio.exceptions.ConnectionError):
            await io.client.connect(str(url.with_query(token=token) if where == "query" else url),
                                    headers=headers, namespaces=["/omni", "/chat"],
                                    auth={"session_id": f"trim-{where}"}, transports=["websocket"],
                                    wait_timeout=TIMEOUT)
        return io

    io = await connect(make_token("alice"))
    try:
        assert io.connect_error is None and set(io.client.namespaces) == {"/omni", "/chat"}
        await io.emit("SESSAO_PING", {"request_id": where})
        assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == where
    finally:
        await io.client.disconnect()
    refused = await connect(BAD_TOKENS["expired"]())
    try:
        assert not refused.client.namespaces
    finally:
        await refused.client.disconnect()


# -- public-key tokens and algorithm confusion ---------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    """A fresh RSA key pair as PEM text: (private, public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@contextlib.asynccontextmanager
async def raw_to(server: Any, path: str, token: str) -> AsyncIterator[RawClient]:
    """A raw client on a server started with `start_server` (the `raw` fixture serves `server` only)."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.make_url(path).update_query(token=token)) as ws:
            yield RawClient(ws)


async def test_rs256_accepted_and_algorithm_confusion_refused(start_server: Any, rsa_keys: tuple[str, str]
                                                              ) -> None:
    """With JWT_PUBLIC_KEY and RS256 a key-pair token is accepted, while HS256 tokens signed with the
    public key text or with the old shared secret, and `alg: none`, are refused."""
    private, public = rsa_keys
    server = await start_server(jwt_public_key=public, jwt_algorithms=("RS256",))
    async with raw_to(server, OMNI, make_token("alice", key=private, algorithm="RS256")) as good:
        await ping(good)
        for token in (hs256_token(public.encode(), claims()), make_token("mallory"), alg_none_token(),
                      make_token("mallory", key=private, algorithm="RS256", exp=None)):
            async with raw_to(server, OMNI, token) as refused:
                await assert_refused(refused)
        await ping(good)
        async with raw_to(server, OMNI, make_token("bob", key=private, algorithm="RS256")) as again:
            await ping(again)


# -- tokens that expire while connected --------------------------------------------------------------

@pytest.mark.parametrize("settings_overrides", [{"jwt_leeway": 0}])
async def test_token_expiring_while_connected(server: Any, raw: Any, sio: Any) -> None:
    """When a token expires mid-connection the raw clients get AUTHENTICATION_ERROR then 1008 and the
    Socket.IO client is told and disconnected; fresh clients are still served."""
    token = make_token("alice", ttl=2)
    omni, chat = await raw(OMNI, token), await raw(CHAT, token)
    io = await sio("/omni", auth={"token": token})
    assert io.connect_error is None
    await ping(omni)
    await ping(chat, CHAT)
    deadline = 10.0
    got, _, details = error_parts(await omni.recv_kind("ERRO", timeout=deadline))
    assert (got, details["motivo"]) == ("AUTHENTICATION_ERROR", "expired")
    assert (await omni.closed(deadline))[0] == 1008
    got, _, details = error_parts(await chat.recv_kind("error", timeout=deadline))
    assert (got, details["motivo"]) == ("AUTHENTICATION_ERROR", "expired")
    assert (await chat.closed(deadline))[0] == 1008
    assert (await io.recv_kind("ERRO", timeout=deadline))["codigo"] == "AUTHENTICATION_ERROR"
    await asyncio.wait_for(io.disconnected.wait(), deadline)
    await assert_serves(raw)


# -- scopes and anonymous access ---------------------------------------------------------------------

async def test_missing_scope_is_permission_error_and_connection_stays(server: Any, raw: Any, sio: Any) -> None:
    """A token without `executions` gets PERMISSION_ERROR for EXECUCAO_INICIAR and can go on pinging."""
    token = make_token("alice", scopes=NO_EXECUTIONS)
    client = await raw(OMNI, token)
    await client.send({"event": "EXECUCAO_INICIAR",
                       "data": {"blog_url": "https://blog.example", "request_id": "r1"}})
    message = await client.recv_kind("ERRO")
    assert message["data"]["codigo"] == "PERMISSION_ERROR"
    assert message["data"]["detalhes"]["escopo"] == "executions"
    assert message["data"]["request_id"] == "r1"
    await ping(client)
    io = await sio("/omni", auth={"token": token})
    await io.emit("EXECUCAO_INICIAR", {"blog_url": "https://blog.example"})
    assert (await io.recv_kind("ERRO"))["codigo"] == "PERMISSION_ERROR"
    await io.emit("SESSAO_PING", {"request_id": "still"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "still"


async def test_chat_subscribe_to_an_unknown_id_is_not_found_for_everybody(server: Any, raw: Any) -> None:
    """Subscribing to an id no investigation has is NOT_FOUND for every token (chat scope only, the
    `investigations` scope, admin) and the connection stays; the owner subscribes to its real one, which
    the `investigations` scope does not open to another user."""
    inv_id = await create_investigation(server, make_token("alice"))
    clients: dict[str, RawClient] = {}
    for sub, scopes in (("alice", ("chat",)), ("auditor", ("chat", "investigations")), ("root", ("admin",))):
        clients[sub] = client = await raw(f"/api/v1/ws/chat/{sub}-chat", make_token(sub, scopes=scopes))
        await client.recv_kind("connection")
        await client.send({"type": "subscribe", "data": {"investigation_id": UNKNOWN_INVESTIGATION}})
        code, _, details = error_parts(await client.recv_kind("error"))
        assert (code, details["campo"]) == ("NOT_FOUND", "investigation_id"), sub
        await ping(client, CHAT)
    await clients["auditor"].send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    assert error_parts(await clients["auditor"].recv_kind("error"))[0] == "NOT_FOUND"
    await ping(clients["auditor"], CHAT)
    owner = await raw(CHAT, make_token("alice"))
    await owner.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    assert (await owner.recv_kind("subscribed"))["data"] == {"investigation_id": inv_id, "status": "subscribed"}


async def test_anonymous_chat_can_ping_but_not_subscribe(server: Any, raw: Any) -> None:
    """An anonymous chat client is welcomed and may ping, but subscribing to what it did not create is refused."""
    inv_id = await create_investigation(server, make_token("alice"))
    client = await raw(CHAT)
    welcome = await client.recv_kind("connection")
    assert welcome["data"]["session_id"] == "s1"
    await ping(client, CHAT)
    await client.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    assert error_parts(await client.recv_kind("error"))[0] == "NOT_FOUND"
    await ping(client, CHAT)


async def test_anonymous_investigations_refused(server: Any, raw: Any, sio: Any) -> None:
    """The investigations endpoint refuses an anonymous client of alice's investigation as NOT_FOUND (error
    envelope, 1008 / connect_error), on both transports, and admits alice."""
    path = await endpoint(server, INVESTIGATION)
    inv_id = path.rpartition("/")[2]
    client = await raw(path)
    await assert_refused(client, code="NOT_FOUND")
    assert_sio_refused(await sio("/investigations", auth={"investigation_id": inv_id}), code="NOT_FOUND")
    authenticated = await raw(path, make_token("alice"))
    assert (await authenticated.recv_kind("connection"))["data"]["investigation_id"] == inv_id
    await ping(authenticated, path)
    io = await sio("/investigations", auth={"token": make_token("alice"), "investigation_id": inv_id})
    assert io.connect_error is None
    assert (await io.recv_kind("connection"))["investigation_id"] == inv_id


async def test_chat_session_belongs_to_its_opener(server: Any, raw: Any, sio: Any) -> None:
    """A chat session opened by user A refuses user B (1008) but admits A again."""
    path = "/api/v1/ws/chat/private-session"
    first = await raw(path, make_token("alice"))
    await first.recv_kind("connection")
    intruder = await raw(path, make_token("bob"))
    await assert_refused(intruder, code="PERMISSION_ERROR")
    assert_sio_refused(await sio("/chat", auth={"token": make_token("bob"), "session_id": "private-session"}),
                       code="PERMISSION_ERROR")
    anonymous = await raw(path)
    await assert_refused(anonymous, code="PERMISSION_ERROR")
    second = await raw(path, make_token("alice"))
    await second.recv_kind("connection")
    await ping(second, path)
    await ping(first, path)
