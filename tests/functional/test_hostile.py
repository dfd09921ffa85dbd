"""Hostile and broken clients get a clear answer, and the server goes on serving everyone else."""
from __future__ import annotations

import asyncio
import re
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
import socketio

from app.factory import SIO_KEY
from conftest import RawClient, SECRET, SioClient, TIMEOUT, create_investigation, error_parts, make_token, served_app

OMNI = "/ws"
CHAT = "/api/v1/ws/chat/s1"
INVESTIGATION = "/api/v1/ws/investigations/{investigation_id}"  # opened on one alice creates (`raw`)
RAW_ENDPOINTS = [OMNI, CHAT, INVESTIGATION]
RATE_LIMITED = {"rate_limit_per_second": 1, "rate_limit_burst": 3, "rate_limit_close_after": 5}
RATE_MESSAGE = re.compile(r"^Muitas mensagens\. Aguarde \d+ segundos\.$")
EVIL = "http://evil.example"
APP = "http://app.example"


# -- helpers -------------------------------------------------------------------------------------------

@pytest.fixture
def raw(server: Any, raw: Any) -> Callable[..., Awaitable[RawClient]]:
    """conftest's `raw`, but INVESTIGATION opens the endpoint of an investigation alice has just created."""
    async def connect(path: str, token: str | None = None, **kwargs: Any) -> RawClient:
        if path == INVESTIGATION:
            inv_id = await create_investigation(server, make_token("alice"))
            path = INVESTIGATION.format(investigation_id=inv_id)
        return await raw(path, token, **kwargs)
    return connect


def error_kind(path: str) -> str:
    return "ERRO" if path == OMNI else "error"


async def connect(raw: Any, path: str, sub: str = "alice", **kwargs: Any) -> RawClient:
    """An authenticated raw client, past its welcome message where the endpoint sends one."""
    client = await raw(path, make_token(sub), **kwargs)
    if path != OMNI:
        await client.recv_kind("connection")
    return client


async def ping(client: RawClient, path: str = OMNI, request_id: str = "alive") -> None:
    """A keep-alive round trip in the endpoint's protocol: proof the connection still works."""
    if path == OMNI:
        await client.send({"event": "SESSAO_PING", "data": {"request_id": request_id}})
        assert (await client.recv_kind("SESSAO_PONG"))["data"]["request_id"] == request_id
    else:
        await client.send({"type": "ping", "data": {}})
        assert (await client.recv_kind("pong"))["data"]["server_time"]


async def expect_error(client: RawClient, path: str, code: str) -> tuple[str, dict[str, Any]]:
    """The next error envelope of the endpoint carries `code`; its message and details."""
    got, message, details = error_parts(await client.recv_kind(error_kind(path)))
    assert got == code, (got, message, details)
    assert message
    return message, details


async def close_frame(client: RawClient, timeout: float = TIMEOUT) -> tuple[int | None, str]:
    """Skip messages until the server's Close frame; its code and reason.

    The code is read from the frame itself: aiohttp's client reports 1006 as `close_code` when the
    server has already dropped TCP by the time the client answers the Close, though the frame said 1000.
    """
    while True:
        msg = await client.ws.receive(timeout=timeout)
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return msg.data, msg.extra or ""
        if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return client.ws.close_code, ""


async def assert_serves(raw: Any, sio: Any | None = None) -> None:
    """The server still accepts and answers fresh raw (and Socket.IO) clients."""
    await ping(await raw(OMNI, make_token("healthy")))
    if sio is not None:
        io = await sio("/omni", auth={"token": make_token("healthy")})
        assert io.connect_error is None
        await sio_ping(io)


async def sio_ping(io: SioClient, request_id: str = "alive") -> None:
    await io.emit("SESSAO_PING", {"request_id": request_id})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == request_id


async def sio_connect(sio: Any, sub: str = "alice", **kwargs: Any) -> SioClient:
    io = await sio("/omni", auth={"token": make_token(sub)}, **kwargs)
    assert io.connect_error is None, io.connect_error
    return io


# -- size ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings_overrides", [{"max_message_bytes": 1024}])
@pytest.mark.parametrize("path", RAW_ENDPOINTS)
async def test_oversized_message_closes_1009(server: Any, raw: Any, sio: Any, path: str) -> None:
    """A raw message over MAX_MESSAGE_BYTES closes that connection with 1009; a message under it is fine."""
    client = await connect(raw, path)
    await ping(client, path)
    if path == OMNI:
        await client.send({"event": "SESSAO_PING", "data": {"request_id": "x" * 2000}})
    else:
        await client.send({"type": "ping", "data": {"padding": "x" * 2000}})
    assert (await close_frame(client))[0] == 1009
    await assert_serves(raw, sio)


@pytest.mark.parametrize("settings_overrides", [{"max_message_bytes": 1024}])
async def test_oversized_sio_message_disconnects(server: Any, raw: Any, sio: Any) -> None:
    """A Socket.IO message over MAX_MESSAGE_BYTES ends that client's connection, not the server."""
    io = await sio_connect(sio)
    await io.emit("SESSAO_PING", {"request_id": "y" * 2000})
    await asyncio.wait_for(io.disconnected.wait(), TIMEOUT)
    await assert_serves(raw, sio)


# -- malformed envelopes --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", RAW_ENDPOINTS)
@pytest.mark.parametrize("text,fragment", [
    ("{not json", "invalid JSON"),
    ("", "invalid JSON"),
    ("[" * 50000, "invalid JSON"),  # deep nesting: a RecursionError in the parser, not a crash
    ("[]", "JSON object"),
    ('"x"', "JSON object"),
    ("3", "JSON object"),
    ("null", "JSON object"),
])
async def test_not_a_json_object(server: Any, raw: Any, path: str, text: str, fragment: str) -> None:
    """Text that is not a JSON object is answered with VALIDATION_ERROR and the connection stays open."""
    client = await connect(raw, path)
    await client.send(text)
    message, _ = await expect_error(client, path, "VALIDATION_ERROR")
    assert fragment in message
    await ping(client, path)
    await assert_serves(raw)


@pytest.mark.parametrize("path,message,field", [
    (OMNI, {"data": {"request_id": "r"}}, "event"),
    (OMNI, {"event": "", "data": {}}, "event"),
    (OMNI, {"event": "E" * 65, "data": {}}, "event"),
    (OMNI, {"event": 7, "data": {}}, "event"),
    (OMNI, {"event": "SESSAO_PING", "data": [1]}, "data"),
    (OMNI, {"event": "SESSAO_PING", "data": "x"}, "data"),
    (CHAT, {"data": {}}, "type"),
    (CHAT, {"type": "ping", "data": 3}, "data"),
    (INVESTIGATION, {"kind": "ping"}, "type"),
])
async def test_bad_envelope_names_field(server: Any, raw: Any, path: str, message: dict[str, Any],
                                        field: str) -> None:
    """An envelope with a missing or wrongly typed key is VALIDATION_ERROR naming that key; the
    connection stays open."""
    client = await connect(raw, path)
    await client.send(message)
    _, details = await expect_error(client, path, "VALIDATION_ERROR")
    assert details["campo"] == field
    await ping(client, path)
    await assert_serves(raw)


@pytest.mark.parametrize("path,message", [
    (OMNI, {"event": "HACK_THE_PLANET", "data": {}}),
    (OMNI, {"type": "HACK_THE_PLANET", "data": {}}),
    (OMNI, {"event": "connect", "data": {}}),
    (OMNI, {"event": "disconnect", "data": {}}),
    (CHAT, {"type": "drop_tables", "data": {}}),
    (CHAT, {"type": "connect", "data": {}}),
    (CHAT, {"type": "disconnect", "data": {}}),
    (INVESTIGATION, {"type": "chat", "data": {"message": "hi"}}),
    (INVESTIGATION, {"type": "disconnect", "data": {}}),
])
async def test_unknown_event(server: Any, raw: Any, path: str, message: dict[str, Any]) -> None:
    """An unknown event, including Socket.IO's reserved `connect`/`disconnect`, is VALIDATION_ERROR naming
    the protocol's event key; the connection stays open."""
    client = await connect(raw, path)
    await client.send(message)
    _, details = await expect_error(client, path, "VALIDATION_ERROR")
    assert details["campo"] == ("event" if path == OMNI else "type")
    await ping(client, path)
    await assert_serves(raw)


@pytest.mark.parametrize("settings_overrides", [{"max_connections": 1}])
async def test_reserved_event_does_not_uncount_connection(server: Any, raw: Any, sio: Any) -> None:
    """A client sending a `disconnect` event (raw or as a Socket.IO packet) does not run the disconnect
    handler: its connection still counts against MAX_CONNECTIONS and it is still served."""
    client = await connect(raw, OMNI)
    await client.send({"event": "disconnect", "data": {"request_id": "sneaky"}})
    assert (await client.recv_kind("ERRO"))["data"]["request_id"] == "sneaky"
    over = await raw(OMNI, make_token("bob"))
    assert error_parts(await over.recv())[1] and (await close_frame(over))[0] == 1013
    await ping(client)
    await client.ws.close()

    io = await sio_connect(sio)
    await io.client.eio.send('2/omni,["disconnect",{"request_id":"sneaky"}]')
    assert (await io.recv_kind("ERRO"))["detalhes"]["campo"] == "event"
    await io.client.eio.send('2/omni,["connect",{}]')
    assert (await io.recv_kind("ERRO"))["codigo"] == "VALIDATION_ERROR"
    over = await raw(OMNI, make_token("bob"))
    assert (await close_frame(over))[0] == 1013
    await sio_ping(io)


@pytest.mark.parametrize("path,message,field", [
    (OMNI, {"event": "EXECUCAO_INICIAR",
            "data": {"blog_url": "https://blog.example", "configuracoes": {"max_keywords": 0}}},
     "data.configuracoes.max_keywords"),
    (OMNI, {"event": "EXECUCAO_INICIAR", "data": {"blog_url": "ftp://x"}}, "data.blog_url"),
    (OMNI, {"event": "EXECUCAO_INICIAR", "data": {"blog_url": "javascript:alert(1)"}}, "data.blog_url"),
    (OMNI, {"event": "EXECUCAO_INICIAR", "data": {"blog_url": "https://blog.example", "extra": 1}},
     "data.extra"),
    (OMNI, {"event": "EXECUCAO_INICIAR", "data": {}}, "data.blog_url"),
    (OMNI, {"event": "EXECUCAO_PAUSAR", "data": {"execucao_id": "../../etc/passwd"}}, "data.execucao_id"),
    (OMNI, {"event": "MONITORAMENTO_INICIAR", "data": {"metricas": ["cpu"], "intervalo": "5000"}},
     "data.intervalo"),
    (OMNI, {"event": "SESSAO_PING", "data": {"request_id": "r" * 129}}, "data.request_id"),
    (CHAT, {"type": "chat", "data": {"message": "   "}}, "data.message"),
    (CHAT, {"type": "typing", "data": {"is_typing": "yes"}}, "data.is_typing"),
    (CHAT, {"type": "subscribe", "data": {"investigation_id": "INV 1; DROP"}}, "data.investigation_id"),
    (CHAT, {"type": "subscribe", "data": {}}, "data.investigation_id"),
])
async def test_schema_violation_names_field(server: Any, raw: Any, path: str, message: dict[str, Any],
                                            field: str) -> None:
    """A payload breaking its event's schema is VALIDATION_ERROR naming the offending field
    (`detalhes.campo` on Omni, `details.campo` on Cidadão); the connection stays open."""
    client = await connect(raw, path)
    await client.send(message)
    _, details = await expect_error(client, path, "VALIDATION_ERROR")
    assert details["campo"] == field
    await ping(client, path)
    await assert_serves(raw)


async def test_request_id_comes_back_in_errors(server: Any, raw: Any, sio: Any) -> None:
    """An Omni error caused by a request carries that request's `request_id`, on both transports."""
    client = await connect(raw, OMNI)
    await client.send({"event": "EXECUCAO_INICIAR", "data": {"blog_url": "ftp://x", "request_id": "req-1"}})
    assert (await client.recv_kind("ERRO"))["data"]["request_id"] == "req-1"
    await client.send({"event": "NO_SUCH_EVENT", "data": {"request_id": "req-2"}})
    assert (await client.recv_kind("ERRO"))["data"]["request_id"] == "req-2"
    io = await sio_connect(sio)
    await io.emit("EXECUCAO_INICIAR", {"blog_url": "ftp://x", "request_id": "req-3"})
    error = await io.recv_kind("ERRO")
    assert (error["codigo"], error["request_id"]) == ("VALIDATION_ERROR", "req-3")
    await assert_serves(raw, sio)


@pytest.mark.parametrize("path", RAW_ENDPOINTS)
async def test_binary_frame_refused(server: Any, raw: Any, path: str) -> None:
    """A binary frame is answered with VALIDATION_ERROR and the connection stays open."""
    client = await connect(raw, path)
    await client.ws.send_bytes(b"\x00\xff" + b'{"event":"SESSAO_PING"}')
    message, _ = await expect_error(client, path, "VALIDATION_ERROR")
    assert "binary" in message
    await ping(client, path)
    await assert_serves(raw)


# -- Socket.IO ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", ["x", 3, [1, 2], True])
async def test_sio_non_object_payload(server: Any, raw: Any, sio: Any, payload: Any) -> None:
    """A Socket.IO event whose payload is not an object gets ERRO VALIDATION_ERROR naming `data`."""
    io = await sio_connect(sio)
    await io.emit("SESSAO_PING", payload)
    error = await io.recv_kind("ERRO")
    assert (error["codigo"], error["detalhes"]["campo"]) == ("VALIDATION_ERROR", "data")
    await sio_ping(io)
    await assert_serves(raw, sio)


async def test_sio_unknown_event_and_schema_violation(server: Any, raw: Any, sio: Any) -> None:
    """Socket.IO events that are unknown or break their schema get ERRO VALIDATION_ERROR naming the field."""
    io = await sio_connect(sio)
    await io.emit("HACK_THE_PLANET", {})
    assert (await io.recv_kind("ERRO"))["detalhes"]["campo"] == "event"
    await io.emit("EXECUCAO_INICIAR", {"blog_url": "https://blog.example", "configuracoes": {"max_keywords": 0}})
    assert (await io.recv_kind("ERRO"))["detalhes"]["campo"] == "data.configuracoes.max_keywords"
    await sio_ping(io)
    await assert_serves(raw, sio)


async def test_sio_binary_packet_refused(server: Any, raw: Any, sio: Any) -> None:
    """A Socket.IO binary event is answered with an ERRO VALIDATION_ERROR; the connection stays usable."""
    io = await sio_connect(sio)
    await io.emit("SESSAO_PING", b"\x00\x01binary")
    error = await io.recv_kind("ERRO")
    assert error["codigo"] == "VALIDATION_ERROR" and "binary" in error["mensagem"]
    await io.emit("SESSAO_PING", {"blob": b"\x00"})
    assert (await io.recv_kind("ERRO"))["codigo"] == "VALIDATION_ERROR"
    await sio_ping(io)
    await assert_serves(raw)


# -- rate limits ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings_overrides", [RATE_LIMITED])
async def test_rate_limit_omni(server: Any, raw: Any, sio: Any) -> None:
    """Past the burst, /ws answers RATE_LIMIT_ERROR "Muitas mensagens. Aguarde N segundos." and stays open."""
    client = await connect(raw, OMNI)
    for i in range(4):
        await client.send({"event": "SESSAO_PING", "data": {"request_id": f"r{i}"}})
    for i in range(3):
        assert (await client.recv())["data"]["request_id"] == f"r{i}"
    message, details = await expect_error(client, OMNI, "RATE_LIMIT_ERROR")
    assert RATE_MESSAGE.match(message) and details["retry_after"] >= 1
    # Still open: the server can reach it, though it may not speak yet.
    await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {"tipo": "info", "titulo": "t", "mensagem": "m"},
                                   room="user:alice", namespace="/omni")
    assert (await client.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "t"
    await assert_serves(raw, sio)


@pytest.mark.parametrize("settings_overrides", [RATE_LIMITED])
@pytest.mark.parametrize("path", [CHAT, INVESTIGATION])
async def test_rate_limit_cidadao(server: Any, raw: Any, path: str) -> None:
    """Past the burst, the Cidadão endpoints answer `error` with code RATE_LIMIT and the documented text."""
    client = await connect(raw, path)
    for _ in range(4):
        await client.send({"type": "ping", "data": {}})
    for _ in range(3):
        await client.recv_kind("pong")
    message, _ = await expect_error(client, path, "RATE_LIMIT")
    assert RATE_MESSAGE.match(message)
    await assert_serves(raw)


@pytest.mark.parametrize("settings_overrides", [RATE_LIMITED])
@pytest.mark.parametrize("path", RAW_ENDPOINTS)
async def test_sustained_abuse_closes_1008(server: Any, raw: Any, path: str) -> None:
    """A raw client that keeps sending past the limit is closed with 1008 after RATE_LIMIT_CLOSE_AFTER
    refusals; others are still served."""
    client = await connect(raw, path)
    ping_message = ({"event": "SESSAO_PING", "data": {}} if path == OMNI else {"type": "ping", "data": {}})
    for _ in range(8):
        await client.send(ping_message)
    errors = 0
    while True:
        msg = await client.ws.receive(timeout=TIMEOUT)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        errors += msg.json().get("event", msg.json().get("type")) in ("ERRO", "error")
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1008
    assert errors == 5
    await assert_serves(raw)


@pytest.mark.parametrize("settings_overrides", [RATE_LIMITED])
async def test_rate_limit_sio(server: Any, raw: Any, sio: Any) -> None:
    """Socket.IO clients get ERRO RATE_LIMIT_ERROR past the burst and are disconnected on sustained abuse."""
    io = await sio_connect(sio)
    for i in range(4):
        await io.emit("SESSAO_PING", {"request_id": f"r{i}"})
    seen = [await io.recv() for _ in range(4)]
    assert sorted(event for event, _ in seen) == ["ERRO", "SESSAO_PONG", "SESSAO_PONG", "SESSAO_PONG"]
    error = next(data for event, data in seen if event == "ERRO")
    assert error["codigo"] == "RATE_LIMIT_ERROR" and RATE_MESSAGE.match(error["mensagem"])
    assert io.client.connected
    for i in range(5):
        await io.emit("SESSAO_PING", {"request_id": f"abuse{i}"})
    await asyncio.wait_for(io.disconnected.wait(), TIMEOUT)
    await assert_serves(raw, sio)


# -- connection limit -------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings_overrides", [{"max_connections": 2}])
async def test_max_connections(server: Any, raw: Any, sio: Any) -> None:
    """With MAX_CONNECTIONS=2 a third client is refused (raw: error then 1013; Socket.IO: connect_error
    SERVER_OVERLOADED), and closing one connection frees its slot at once."""
    first = await connect(raw, OMNI, "a")
    await ping(first)
    second = await connect(raw, CHAT, "b")
    await ping(second, CHAT)

    third = await raw(OMNI, make_token("c"))
    code, message, details = error_parts(await third.recv())
    assert (code, details["motivo"]) == ("SYSTEM_ERROR", "server_overloaded") and message
    assert (await close_frame(third))[0] == 1013
    third_chat = await raw("/api/v1/ws/chat/s2", make_token("c"))
    assert error_parts(await third_chat.recv())[0] == "SERVER_OVERLOADED"
    assert (await close_frame(third_chat))[0] == 1013
    io = await sio("/omni", auth={"token": make_token("c")})
    assert io.connect_error["data"]["code"] == "SERVER_OVERLOADED" and io.connect_error["message"]

    await first.ws.close()
    replacement = await connect(raw, OMNI, "d")
    await ping(replacement)
    await replacement.ws.close()
    io = await sio_connect(sio, "e")
    await sio_ping(io)
    refused = await raw("/api/v1/ws/chat/s3", make_token("f"))
    assert error_parts(await refused.recv())[0] == "SERVER_OVERLOADED"
    await io.client.disconnect()
    await ping(await connect(raw, OMNI, "g"))


# -- origin check --------------------------------------------------------------------------------------

def own_origin(server: Any) -> str:
    return str(server.make_url("/").origin())


async def test_origin_default_same_origin(server: Any, raw: Any, sio: Any) -> None:
    """By default a foreign Origin is refused (403 before the upgrade; Socket.IO fails to connect) while
    no Origin and the server's own origin pass."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await raw(OMNI, make_token("alice"), headers={"Origin": EVIL})
    assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await raw(CHAT, headers={"Origin": EVIL})
    assert refused.value.status == 403
    io = await sio("/omni", auth={"token": make_token("alice")}, headers={"Origin": EVIL})
    assert not io.client.connected and io.connect_error is not None
    await ping(await raw(OMNI, make_token("alice"), headers={"Origin": own_origin(server)}))
    await ping(await raw(OMNI, make_token("alice")))
    await sio_ping(await sio_connect(sio, headers={"Origin": own_origin(server)}))
    await assert_serves(raw, sio)


@pytest.mark.parametrize("settings_overrides", [{"allowed_origins": (APP,)}])
async def test_origin_allow_list(server: Any, raw: Any, sio: Any) -> None:
    """With ALLOWED_ORIGINS=http://app.example exactly that origin passes; others, even the server's own
    origin and look-alikes, are refused."""
    await ping(await raw(OMNI, make_token("alice"), headers={"Origin": APP}))
    await sio_ping(await sio_connect(sio, headers={"Origin": APP}))
    for origin in (EVIL, own_origin(server), APP + ".evil.example", "https://app.example", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await raw(OMNI, make_token("alice"), headers={"Origin": origin})
        assert refused.value.status == 403, origin
    io = await sio("/omni", auth={"token": make_token("alice")}, headers={"Origin": EVIL})
    assert not io.client.connected
    await assert_serves(raw, sio)


# -- idleness ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings_overrides", [{"idle_timeout": 1}])
async def test_idle_timeout(server: Any, raw: Any, sio: Any) -> None:
    """Silent clients are closed after IDLE_TIMEOUT (raw: 1000 with a reason mentioning idle; Socket.IO:
    disconnected) while a client that keeps talking stays."""
    silent_omni = await raw(OMNI, make_token("quiet"))
    silent_chat = await raw(CHAT, make_token("quiet"))
    silent_io = await sio_connect(sio, "quiet")
    active = await raw(OMNI, make_token("talker"))
    for i in range(6):  # ~1.8 s of activity, longer than the timeout
        await ping(active, request_id=f"a{i}")
        await asyncio.sleep(0.3)
    for client in (silent_omni, silent_chat):
        code, reason = await close_frame(client)
        assert code == 1000 and "idle" in reason
    await asyncio.wait_for(silent_io.disconnected.wait(), TIMEOUT)
    await ping(active, request_id="still-here")
    await assert_serves(raw, sio)


# -- the access log, as `python -m app` writes it ---------------------------------------------------------

async def test_access_log_never_contains_token(tmp_path: Any) -> None:
    """`python -m app` logs each request without its query string: no token ever reaches the log."""
    token, bad = make_token("alice"), make_token("mallory", key="wrong-secret-0123456789abcdef-012345")
    async with served_app(tmp_path) as app, aiohttp.ClientSession() as session:
        base = app.base
        async with session.get(f"{base}/healthz?token={token}") as response:
            assert response.status == 200
        for url, headers in ((f"{base}/ws?token={token}", {}),
                             (f"{base}/ws", {"Authorization": f"Bearer {token}"}),
                             (f"{base}/api/v1/ws/chat/s1?token={bad}", {})):
            async with session.ws_connect(url, headers=headers) as ws:
                await ws.send_json({"event": "SESSAO_PING", "data": {}})
                await ws.receive(timeout=TIMEOUT)
        async with session.ws_connect(f"{base}/ws", protocols=("bearer", token)) as ws:
            assert ws.protocol == "bearer"
        io = SioClient("/omni")
        await io.client.connect(f"{base}/?token={token}", namespaces=["/omni"], transports=["websocket"],
                                wait_timeout=TIMEOUT)
        await sio_ping(io)
        await io.client.disconnect()
        async with session.get(f"{base}/healthz?token={bad}&done=1") as response:
            assert response.status == 200
        for _ in range(2):  # both /healthz requests, the last one logged after every websocket above
            await app.read_until("/healthz")
    output = app.output
    assert '"GET /ws" 101' in output and '"GET /api/v1/ws/chat/s1" 101' in output and '"GET /socket.io/" 101' in output
    for secret in (token, bad, token.split(".")[2], bad.split(".")[2], SECRET):
        assert secret not in output
    assert "token=" not in output


async def test_default_namespace_is_refused(server: Any) -> None:
    """The Socket.IO default namespace `/` serves nothing and accepts no connection."""
    client = SioClient("/")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.client.connect(str(server.make_url("/")), namespaces=["/"], transports=["websocket"],
                                    wait_timeout=5)
    await client.client.disconnect()
