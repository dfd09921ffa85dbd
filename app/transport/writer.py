"""Writing text frames to one aiohttp WebSocket without a task per message, bounded.

A write that fails never leaves a connection silently mute: the writer stops, reports the failure
(counted by the server) and closes its connection with 1011."""
from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from typing import Any, Callable

from aiohttp import web

from ..errors import CLOSE_INTERNAL, CLOSE_NORMAL

log = logging.getLogger("ponte.writer")
FRAME_OVERHEAD = 14  # the largest WebSocket frame header a server writes
CLOSE_WAIT = 2.0  # seconds a server's close waits for the peer's Close frame (aiohttp's default: 10)


def text_frame(data: bytes) -> bytes:
    """One final, unmasked WebSocket text frame (RFC 6455 section 5.2), as a server writes it."""
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + data
    return struct.pack("!BBQ", 0x81, 127, size) + data


class SocketWriter:
    """Writes at once while the transport has room (aiohttp's send then never waits), else queues
    behind what is waiting, up to `limit` messages; past that, `overflow` is called once."""

    __slots__ = ("_transport", "_backlog", "_closed", "_high", "_detour", "ws", "_limit", "_drainer", "_on_overflow",
                 "_on_failure", "_framed")

    def __init__(self, ws: web.WebSocketResponse, transport: Any, limit: int,
                 on_overflow: Callable[[], None] | None = None,
                 on_failure: Callable[[BaseException], None] | None = None,
                 detour: set[Any] | None = None) -> None:
        self.ws = ws
        self._transport = transport
        # the transport's high-water mark, read once (aiohttp never changes it on a WebSocket)
        self._high = transport.get_write_buffer_limits()[1] if transport is not None else 0
        self._limit = limit
        self._backlog: deque[str | bytes] | None = None  # created on first congestion: idle sockets stay small
        self._drainer: asyncio.Task[None] | None = None
        # the transports of writers that cannot take a frame straight (something waits, or closed): `write_each`
        # reads this set, not the writers; None where no fan-out writes past the writer
        self._detour = detour
        self._closed = False
        self._on_overflow = on_overflow
        self._on_failure = on_failure
        # Frames built once for many recipients may go straight to the transport, unless this
        # connection negotiated compression (each one then has its own compressor).
        self._framed = not ws.compress

    @property
    def closed(self) -> bool:
        """Nothing more is written (the connection is closing, failed, or overflowed)."""
        return self._closed

    @closed.setter
    def closed(self, closed: bool) -> None:
        self._closed = closed
        if closed and self._detour is not None:
            self._detour.add(self._transport)

    def forget(self) -> None:
        """The connection is over and gone from every room: its transport leaves the detour set for good."""
        if self._detour is not None:
            self._detour.discard(self._transport)
            self._detour = None

    async def send(self, text: str) -> None:
        """Send one text frame, in order with everything sent before."""
        if self.closed:
            return
        if not self._backlog and self._has_room(len(text)):
            try:
                await self.ws.send_str(text)
            except Exception as exc:  # noqa: BLE001 - one failed socket must not stop a fan-out to the others
                self.failed(exc)
            return
        self.send_nowait(text)

    def write_frame(self, frame: bytes) -> bool:
        """Write a frame built once for many recipients (`text_frame`) as it is, if nothing waits
        before it and the transport has room; False when the caller must `send` the text instead."""
        if not self._framed or self._backlog or self.closed or self.ws.closed or not self._has_room(len(frame)):
            return False
        try:
            self._transport.write(frame)
        except Exception as exc:  # noqa: BLE001 - as in `send`
            self.failed(exc)
        return True

    def send_nowait(self, frame: str | bytes) -> None:
        """Queue one frame (text, or binary for bytes) behind what is waiting; written by a task."""
        if self.closed:
            return
        backlog = self._backlog_now()
        if len(backlog) >= self._limit:
            log.warning("send queue full: closing a slow consumer")
            self.closed = True
            backlog.clear()
            self.overflow()
            return
        backlog.append(frame)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def enqueue(self, text: str) -> None:
        """Queue one frame behind what is waiting, whatever the limit: for a replay, which is bounded by
        the history's size and must not count as a slow consumer."""
        if self.closed:
            return
        self._backlog_now().append(text)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _backlog_now(self) -> deque[str | bytes]:
        """The backlog, created on first congestion (the transport then takes a detour past fan-outs)."""
        if self._backlog is None:
            self._backlog = deque()
            if self._detour is not None:
                self._detour.add(self._transport)
        return self._backlog

    def overflow(self) -> None:
        """Called once when the backlog overflows (subclasses close their connection here)."""
        if self._on_overflow is not None:
            self._on_overflow()

    def failed(self, exc: BaseException) -> None:
        """A write failed: stop writing, report it, and close the connection (1011) rather than
        leave it open and mute."""
        if self.closed:
            return
        self.closed = True
        if self._on_failure is not None:
            self._on_failure(exc)
        self.close_after_failure()

    def close_after_failure(self) -> None:
        """Close the WebSocket with 1011 (subclasses close their connection their own way)."""
        if not self.ws.closed:
            asyncio.get_running_loop().create_task(self.ws.close(code=CLOSE_INTERNAL, message=b"send failed"))

    def close_soon(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Stop writing and close the WebSocket with a close code, without waiting for it."""
        self.closed = True
        if not self.ws.closed:
            asyncio.get_running_loop().create_task(self.ws.close(code=code, message=reason.encode()[:120]))

    def abort(self) -> None:
        """Stop writing and drop the connection without a close handshake."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def has_room(self) -> bool:
        """True when nothing waits and a small frame would not pause the transport."""
        return not self._backlog and self._has_room(0)

    def _has_room(self, size: int) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        return transport.get_write_buffer_size() + size + FRAME_OVERHEAD < self._high

    @property
    def transport(self) -> Any:
        return self._transport

    @property
    def high(self) -> int:
        """The transport's high-water mark: past it, the transport pauses its writer."""
        return self._high

    def takes_frames(self) -> bool:
        """True when a frame built for many recipients can go to this transport as it is (`write_each`)."""
        return self._framed and self._transport is not None

    async def _drain(self) -> None:
        backlog = self._backlog
        try:
            while backlog and not self.closed:
                frame = backlog.popleft()
                if isinstance(frame, str):
                    await self.ws.send_str(frame)
                else:
                    await self.ws.send_bytes(frame)
        except Exception as exc:  # noqa: BLE001 - reported, and the connection closed
            self.failed(exc)
        finally:
            self._drainer = None
            if not backlog:
                self._backlog = None  # an idle socket keeps no deque
                if self._detour is not None and not self._closed:
                    self._detour.discard(self._transport)


def drop_close_error(ws: web.WebSocketResponse) -> None:
    """Forget the traceback of the error aiohttp keeps when its close found the peer gone (`ws.exception()`,
    a ClientConnectionResetError whose context is the reader's EofStream): their frames hold the WebSocket,
    a cycle that would leave every connection a peer dropped to the cyclic collector, 47 objects each,
    instead of being freed when its handler returns. The error itself stays readable."""
    error = ws.exception()
    while error is not None:
        error.__traceback__ = None
        context, error.__context__ = error.__context__, None
        error = context


def write_each(transports: list[Any], frame: bytes, high: int, detour: set[Any],
               writer_of: dict[Any, SocketWriter]) -> list[Any]:
    """Write one frame built for many recipients (`text_frame`) straight to each transport, of writers that
    `takes_frames` and whose high-water mark is at least `high`; return the transports whose writers cannot
    take it so right now (in `detour`: closed, or something waits before it; the transport closing or
    full), for `write_frame` or `send`.

    This is a fan-out's loop over a big room, and it reads nothing of a recipient but its transport: with
    thousands of connections their objects are out of the CPU's caches, and each one more object read per
    recipient costs more than the Python around it (bench/README.md). What a writer would say is in `detour`."""
    size = len(frame) + FRAME_OVERHEAD
    rest: list[Any] = []
    for transport in transports:
        if (detour and transport in detour) or transport.is_closing() or (
                transport.get_write_buffer_size() + size >= high):
            rest.append(transport)
            continue
        try:
            transport.write(frame)
        except Exception as exc:  # noqa: BLE001 - as in `write_frame`
            writer_of[transport].failed(exc)
    return rest
