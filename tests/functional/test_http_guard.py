"""Slow and oversized handshakes, as an attacker sends them over raw TCP: dropped or refused cheaply, with
no traceback and nothing of the request in the log; requests whose headers arrived are left alone."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import secrets
import string
import time
from pathlib import Path
from typing import Any, Iterable

import aiohttp
import pytest

from conftest import TIMEOUT, make_token, served_app

HANDSHAKE = 1.0  # HANDSHAKE_TIMEOUT of the servers under attack, seconds
MARGIN = 1.0  # how late a drop may be on a busy machine
TRICKLE = 0.2  # seconds between the bytes of a trickled header
PATHS = ["/healthz", "/ws", "/socket.io/?EIO=4&transport=websocket"]
WS_HEADERS = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\n")


# -- helpers -------------------------------------------------------------------------------------------


def head(path: str, extra: str = "") -> bytes:
    """A request line and headers (a WebSocket upgrade's for a WebSocket path), without the blank line."""
    upgrade = WS_HEADERS if path.startswith("/ws") or "transport=websocket" in path else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{upgrade}{extra}".encode()


def attack(path: str, kind: str) -> tuple[bytes, Iterable[bytes]]:
    """What a slow client sends at once, then byte by byte (forever, for a trickle)."""
    if kind == "trickled":
        return head(path), (bytes([b]) for b in itertools.cycle(b"X-Slow: x\r\n"))
    if kind == "stalled":
        return f"GET {path}".encode(), ()
    return b"", ()  # silent


async def trickle(writer: asyncio.StreamWriter, first: bytes, rest: Iterable[bytes]) -> None:
    """Send `first`, then each piece of `rest` TRICKLE seconds apart, until the server hangs up."""
    with contextlib.suppress(ConnectionError):
        writer.write(first)
        await writer.drain()
        for piece in rest:
            await asyncio.sleep(TRICKLE)
            writer.write(piece)
            await writer.drain()


async def until_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def slow_client(address: tuple[str, int], path: str, kind: str) -> float:
    """Seconds from connecting until the server drops a client sending `path` slowly in the given way."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(*address)
    sender = asyncio.create_task(trickle(writer, *attack(path, kind)))
    try:
        received = await asyncio.wait_for(until_eof(reader), HANDSHAKE + MARGIN + TIMEOUT)
    finally:
        sender.cancel()
        writer.close()
    assert received == b"", received  # dropped, never answered
    return time.monotonic() - started


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of one HTTP response with a Content-Length."""
    response_head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", response_head)
    assert length is not None, response_head
    return int(response_head.split(b" ", 2)[1]), await reader.readexactly(int(length.group(1)))


def recognisable_token() -> str:
    """A random 9,000+ character token, long enough for any of its pieces to be recognised in a log."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(9100))


def leaks(token: str, text: str, window: int = 8) -> bool:
    """Whether any `window` consecutive characters of the token appear in the text."""
    pieces = {token[i:i + window] for i in range(len(token) - window + 1)}
    return any(text[i:i + window] in pieces for i in range(len(text) - window + 1))


def oversized(kind: str, token: str) -> bytes:
    """A whole request carrying the token where it makes a line over 8,190 bytes."""
    if kind == "query":
        return head(f"/ws?token={token}") + b"\r\n"
    if kind == "socket.io":
        return head(f"/socket.io/?EIO=4&transport=websocket&token={token}") + b"\r\n"
    return head("/ws", f"Authorization: Bearer {token}\r\n") + b"\r\n"


def refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The handshake_refused audit lines captured so far."""
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ponte.audit"]
    return [line for line in lines if line["event"] == "handshake_refused"]


def address(server: Any) -> tuple[str, int]:
    """Where a test server listens."""
    return server.host, server.port


@pytest.fixture
async def guarded(start_server: Any) -> Any:
    """A Ponte server whose HANDSHAKE_TIMEOUT is one second."""
    return await start_server(handshake_timeout=HANDSHAKE)


# -- slow handshakes are dropped -----------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["trickled", "stalled"])
async def test_slow_handshake_is_dropped(guarded: Any, path: str, kind: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """Headers trickled a byte at a time, or a request line that stalls, are dropped at HANDSHAKE_TIMEOUT
    with one audit line."""
    caplog.set_level(logging.INFO, logger="ponte.audit")
    elapsed = await slow_client(address(guarded), path, kind)
    assert HANDSHAKE - 0.1 <= elapsed <= HANDSHAKE + MARGIN
    lines = refusals(caplog)
    assert [(line["reason"], line["error_code"], line["ip"]) for line in lines] == [
        ("handshake timeout", "TIMEOUT_ERROR", "127.0.0.1")]


async def test_silent_connection_is_dropped(guarded: Any) -> None:
    """A connection that sends nothing at all is closed at HANDSHAKE_TIMEOUT."""
    elapsed = await slow_client(address(guarded), "/", "silent")
    assert HANDSHAKE - 0.1 <= elapsed <= HANDSHAKE + MARGIN


async def test_keepalive_connection_must_send_its_next_request_in_time(guarded: Any) -> None:
    """On a keep-alive connection the next request's headers are due HANDSHAKE_TIMEOUT after the last response."""
    reader, writer = await asyncio.open_connection(*address(guarded))
    writer.write(head("/healthz") + b"\r\n")
    assert (await read_response(reader))[0] == 200
    answered = time.monotonic()
    writer.write(b"GET /heal")
    assert await asyncio.wait_for(until_eof(reader), HANDSHAKE + MARGIN + TIMEOUT) == b""
    assert HANDSHAKE - 0.1 <= time.monotonic() - answered <= HANDSHAKE + MARGIN
    writer.close()


async def test_many_slow_clients_do_not_hold_up_others(guarded: Any, raw_to: Any) -> None:
    """Fifty slow handshakes at once: a normal client is served meanwhile, and all fifty are dropped on time."""
    kinds = [(PATHS[i % 3], ("trickled", "stalled", "silent")[i % 3]) for i in range(50)]
    attackers = [asyncio.create_task(slow_client(address(guarded), path, kind)) for path, kind in kinds]
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        async with session.get(guarded.make_url("/healthz")) as response:
            assert response.status == 200
    ws = await raw_to(guarded, "/ws", make_token())
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "meanwhile"}})
    assert (await ws.recv_kind("SESSAO_PONG"))["data"]["request_id"] == "meanwhile"
    assert time.monotonic() - started < HANDSHAKE / 2  # served while the fifty were still held
    elapsed = await asyncio.gather(*attackers)
    assert max(elapsed) <= HANDSHAKE + MARGIN


# -- requests whose headers arrived are left alone ----------------------------------------------------


async def test_open_connections_outlive_the_handshake_timeout(guarded: Any, raw_to: Any, sio_to: Any) -> None:
    """A completed raw WebSocket and a Socket.IO WebSocket stay open well past HANDSHAKE_TIMEOUT and still answer."""
    ws = await raw_to(guarded, "/ws", make_token())
    io = await sio_to(guarded, "/omni", auth={"token": make_token()})
    assert io.connect_error is None, io.connect_error
    await asyncio.sleep(3 * HANDSHAKE)  # time passing is what is tested here
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "x"}})
    assert (await ws.recv_kind("SESSAO_PONG"))["data"]["request_id"] == "x"
    await io.emit("SESSAO_PING", {"request_id": "y"})
    assert (await io.recv_kind("SESSAO_PONG"))["request_id"] == "y"


async def test_long_poll_on_keepalive_connection_is_not_cut(start_server: Any) -> None:
    """An Engine.IO long poll, the second request of a keep-alive connection, is held past HANDSHAKE_TIMEOUT
    until its answer (the ping)."""
    server = await start_server(handshake_timeout=HANDSHAKE, heartbeat=3 * HANDSHAKE)
    reader, writer = await asyncio.open_connection(*address(server))
    writer.write(head("/socket.io/?EIO=4&transport=polling") + b"\r\n")
    status, body = await read_response(reader)
    assert status == 200 and body.startswith(b"0"), body
    sid = json.loads(body[1:])["sid"]
    polled = time.monotonic()
    writer.write(head(f"/socket.io/?EIO=4&transport=polling&sid={sid}") + b"\r\n")
    assert await asyncio.wait_for(read_response(reader), 3 * HANDSHAKE + TIMEOUT) == (200, b"2")
    assert time.monotonic() - polled > HANDSHAKE + MARGIN
    writer.write(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: text/plain\r\nContent-Length: 1\r\n\r\n1".encode())  # a close packet
    assert await asyncio.wait_for(read_response(reader), TIMEOUT) == (200, b"OK")
    writer.close()


async def test_slow_upload_body_is_not_cut(guarded: Any) -> None:
    """A request whose headers arrived may take longer than HANDSHAKE_TIMEOUT to send its body."""
    body = json.dumps({"namespace": "/omni", "room": "nobody", "event": "SLOW_UPLOAD",
                       "data": {"padding": "p" * 3000}}).encode()
    headers = (f"Authorization: Bearer {make_token('backend', scopes=('publish',))}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    size = len(body) // 10 + 1  # ten pieces, TRICKLE seconds apart: twice HANDSHAKE_TIMEOUT
    reader, writer = await asyncio.open_connection(*address(guarded))
    started = time.monotonic()
    await trickle(writer, f"POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}".encode(),
                  [body[i:i + size] for i in range(0, len(body), size)])
    status, answer = await asyncio.wait_for(read_response(reader), TIMEOUT)
    assert status == 202 and b'"id"' in answer, answer
    assert time.monotonic() - started > HANDSHAKE + MARGIN / 2
    writer.close()


# -- oversized request lines and headers are refused quietly ------------------------------------------


@pytest.mark.parametrize("kind", ["query", "socket.io", "authorization"])
async def test_oversized_token_is_refused_without_echo(guarded: Any, kind: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A request or header line over 8,190 bytes gets a 431, no traceback, and no piece of it in the log or
    the answer; one audit line says why."""
    for logger in ("aiohttp", "ponte"):
        caplog.set_level(logging.DEBUG, logger=logger)
    caplog.set_level(logging.INFO, logger="ponte.audit")
    token = recognisable_token()
    reader, writer = await asyncio.open_connection(*address(guarded))
    writer.write(oversized(kind, token))
    answer = await asyncio.wait_for(until_eof(reader), TIMEOUT)
    writer.close()
    assert answer.startswith(b"HTTP/1.0 431 ") or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert not leaks(token, answer.decode("latin-1"))
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
    assert not leaks(token, caplog.text)
    assert [line["reason"] for line in refusals(caplog)] == ["request header too large"]


async def test_served_app_refuses_oversized_token_quietly(tmp_path: Path) -> None:
    """`python -m app` end to end: an oversized ?token= is refused and a stalled one dropped in
    HANDSHAKE_TIMEOUT, and stdout shows audit lines but no traceback and no piece of the token."""
    token = recognisable_token()
    async with served_app(tmp_path, LOG_LEVEL="DEBUG", HANDSHAKE_TIMEOUT=str(HANDSHAKE)) as app:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
        writer.write(oversized("query", token))
        assert (await asyncio.wait_for(until_eof(reader), TIMEOUT)).startswith(b"HTTP/1.0 431 ")
        writer.close()
        assert await slow_client(("127.0.0.1", app.port), f"/ws?token={token[:200]}", "stalled") <= HANDSHAKE + MARGIN
        await app.read_until('"handshake timeout"')
    assert '"request header too large"' in app.output and '"handshake_refused"' in app.output
    assert "Traceback" not in app.output and not leaks(token, app.output)
