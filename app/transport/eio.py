"""Engine.IO over WebSocket, served by Ponte rather than by python-engineio.

python-engineio keeps the handshake, long-polling and the socket's bookkeeping. Once a socket is on a
WebSocket (from the start, or upgraded from long-polling), Ponte takes the socket over:
- reading: one loop per connection reads frames and hands each Socket.IO packet to the server inline
  (python-engineio makes a task and a timer per frame, and another task per message);
- writing: packets go straight to the WebSocket through a bounded `SocketWriter` (python-engineio
  keeps a queue and a writer task per socket); the socket's queue is replaced by `DirectQueue`, so
  whatever python-engineio still sends (its close packet) takes the same path, in order;
- pinging: one round pings every socket (`ping_round`) instead of a sleeping task per socket.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

import engineio
from aiohttp import WSMsgType, web
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from ..guards import ABUSE, ADMIT
from ..errors import CLOSE_POLICY
from ..http_guard import shed
from .writer import CLOSE_WAIT, SocketWriter, drop_close_error, text_frame

if TYPE_CHECKING:
    from .server import PonteServer

log = logging.getLogger("ponte.sio")
# What a later namespace's handshake on this connection reads of its request: the token (app/auth.py
# find_token), the origin its download and report URLs point to (app/origins.py origin_params) and the
# audit line of a refusal. The rest of the upgrade request's headers are dropped once it is open.
HANDSHAKE_HEADERS = ("Authorization", "Sec-WebSocket-Protocol", "Host", "X-Forwarded-Proto", "Origin")
EIO_TYPES = "0123456"  # Engine.IO packet types; "4" is a message, which Socket.IO decodes
PING, PONG, MESSAGE, UPGRADE, CLOSE = "2", "3", "4", "5", "1"


class EngineIOServer(engineio.AsyncServer):
    """python-engineio's server without its ping task per socket: `ping_round` pings them all."""

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(target, "__func__", None) is AsyncSocket._send_ping:
            return None
        return super().start_background_task(target, *args, **kwargs)


class DirectQueue:
    """Stands in for the `asyncio.Queue` of a socket Ponte writes to: what python-engineio puts on it
    goes to the WebSocket at once. Its close packet (sent when python-engineio closes the socket, e.g.
    on a ping timeout its own service task noticed) and None, its "stop writing", end the WebSocket
    too: the read loop may be waiting on a peer that will never send again."""

    __slots__ = ("writer",)

    def __init__(self, writer: SocketWriter) -> None:
        self.writer = writer

    def put_nowait(self, pkt: eio_packet.Packet | None) -> None:
        if pkt is not None:
            self.write(pkt.encode())
        if pkt is None or pkt.packet_type == eio_packet.CLOSE:
            self.writer.close_soon()

    def write(self, data: str | bytes) -> None:
        """Written at once when nothing waits and the transport has room (a ping to every socket then
        makes no queue and no task), else queued behind what waits."""
        if isinstance(data, str) and data.isascii() and self.writer.write_frame(text_frame(data.encode())):
            return
        self.writer.send_nowait(data)

    async def put(self, pkt: eio_packet.Packet | None) -> None:
        self.put_nowait(pkt)

    async def join(self) -> None:
        return None

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0

    def get_nowait(self) -> Any:
        raise asyncio.QueueEmpty

    def task_done(self) -> None:
        return None


class EngineIOWebSocket:
    """python-engineio's `_async["websocket"]`: called with the socket's handler and the Engine.IO
    server, then with the request's environ; serves the WebSocket until it closes."""

    def __init__(self, handler: Any, server: Any, gate: "PonteServer", send_limit: int = 1024) -> None:
        self.sock: AsyncSocket = handler.__self__  # the python-engineio socket this WebSocket carries
        self.gate = gate
        self.send_limit = send_limit

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        gate, sock = self.gate, self.sock
        # One byte over the limit is refused, not the limit itself; pings are answered in `read`.
        ws = web.WebSocketResponse(max_msg_size=gate.eio.max_http_buffer_size + 1, autoping=False,
                                   timeout=CLOSE_WAIT)
        await ws.prepare(request)
        writer = SocketWriter(ws, request.transport, self.send_limit,
                              functools.partial(gate.start_background_task, gate.drop_slow_consumer, sock.sid),
                              gate.send_failed)  # the sid, not the socket: a socket holds its writer
        if sock.connected and not await self._probe(ws):  # an upgrade from long-polling
            return ws
        self._take_over(writer)
        gate.writers[sock.sid] = writer
        # Of the WSGI-style environ (every header again, as HTTP_* keys), a namespace's handshake reads
        # only the request; python-socketio keeps this dict for the connection's lifetime.
        environ.clear()
        environ["aiohttp.request"] = request
        shed(request, HANDSHAKE_HEADERS, query=True)
        try:
            reason = await self._read(ws)
        finally:
            gate.writers.pop(sock.sid, None)
        if not sock.closed and not sock.closing:  # sock.close(wait=False, abort=True), less engineio's dispatch
            sock.closing = True
            try:
                await gate._handle_eio_disconnect(sock.sid, reason)
            except Exception:  # noqa: BLE001 - as python-engineio: logged, and the socket closes all the same
                log.exception("%s: disconnect handler failed", sock.sid)
            sock.closed = True
        if not ws.closed:
            await ws.close()
        drop_close_error(ws)
        return ws

    async def _probe(self, ws: web.WebSocketResponse) -> bool:
        """Engine.IO's upgrade: `2probe` answered `3probe`, the pending poll ended, then `5`, each
        within a ping interval and timeout (a peer that stays silent would hold the WebSocket open)."""
        sock, server = self.sock, self.gate.eio
        wait = server.ping_interval + server.ping_timeout
        sock.upgrading = True  # python-engineio answers polls with a NOOP from now on
        try:
            msg = await ws.receive(timeout=wait)
            if msg.type is not WSMsgType.TEXT or msg.data != "2probe":
                log.info("%s: failed WebSocket upgrade: no probe", sock.sid)
                return False
            await ws.send_str("3probe")
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
            msg = await ws.receive(timeout=wait)
            if msg.type is not WSMsgType.TEXT or msg.data != UPGRADE:
                log.info("%s: failed WebSocket upgrade: no upgrade packet", sock.sid)
                return False
            return True
        except TimeoutError:
            log.info("%s: failed WebSocket upgrade: silent for %g s", sock.sid, wait)
            await ws.close(code=CLOSE_POLICY, message=b"upgrade timeout")
            return False
        finally:
            sock.upgrading = False

    def _take_over(self, writer: SocketWriter) -> None:
        """From now on Ponte writes to this socket: what python-engineio had queued goes first, in order."""
        sock = self.sock
        queued = []
        while not sock.queue.empty():
            queued.append(sock.queue.get_nowait())
        sock.queue = DirectQueue(writer)
        sock.connected = sock.upgraded = True
        for pkt in queued:
            sock.queue.put_nowait(pkt)

    async def _read(self, ws: web.WebSocketResponse) -> Any:
        """Read frames until the socket closes; each Socket.IO packet is handled before the next
        frame is read (the same order and bound as raw clients: one handler at a time). The reason
        the connection ended, in python-engineio's terms."""
        sock, gate = self.sock, self.gate
        eio_sid, reasons = sock.sid, gate.eio.reason
        on_message = gate.on_engineio_message
        while not sock.closed:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                data = msg.data
                if data[:1] == MESSAGE:  # the one frame that matters for speed: no other check first
                    await on_message(eio_sid, data[1:])
                    continue
                if not data or data[0] not in EIO_TYPES:
                    await gate.protocol_error(eio_sid, "not an Engine.IO packet")
                    return reasons.TRANSPORT_ERROR
            elif kind is WSMsgType.BINARY:
                await on_message(eio_sid, msg.data)
                continue
            elif kind is not WSMsgType.PING and kind is not WSMsgType.PONG:
                return reasons.TRANSPORT_CLOSE  # closed, closing or broken
            verdict = gate.admit_frame(eio_sid)  # control frames count against the rate limit too
            if verdict == ABUSE:
                await gate.protocol_error(eio_sid, "over the rate limit", CLOSE_POLICY)
                return reasons.TRANSPORT_ERROR
            if verdict != ADMIT:
                continue
            if kind is WSMsgType.PING:
                await ws.pong(msg.data)
            elif data == PONG:
                sock.last_ping = None
            elif data == CLOSE:
                return reasons.CLIENT_DISCONNECT
            # other Engine.IO packets (open, ping, upgrade, noop from a client) mean nothing here
        return reasons.SERVER_DISCONNECT


async def ping_round(gate: "PonteServer") -> None:
    """Engine.IO's heartbeat for every socket, from one task: a socket that left the previous ping
    unanswered for longer than the ping timeout is closed; the others get a ping."""
    server = gate.eio
    now = time.time()
    for sock in list(server.sockets.values()):
        if sock.closed or sock.closing or sock.upgrading:
            continue
        if sock.last_ping and now - sock.last_ping > server.ping_timeout:
            log.info("%s: no pong within %g s: closing", sock.sid, server.ping_timeout)
            await sock.close(wait=False, abort=False, reason=server.reason.PING_TIMEOUT)
            writer = gate.writers.get(sock.sid)
            if writer is not None:
                writer.close_soon()
            continue
        sock.last_ping = now
        await sock.queue.put(eio_packet.Packet(eio_packet.PING))


def engineio_payload(body: bytes) -> bool:
    """True when a long-polling body is Engine.IO packets that python-engineio can parse."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    packets = text.split("\x1e") if text else []
    return len(packets) <= 16 and all(p and (p[0] in EIO_TYPES or p[0] == "b") for p in packets)


class CheckedBody:
    """The body of an Engine.IO long-polling POST, checked before python-engineio parses it (which
    raises, with a traceback, on anything unexpected): a body that is not Engine.IO becomes a close
    packet, so the session ends as the protocol says, with one log line."""

    def __init__(self, request: web.Request, gate: "PonteServer") -> None:
        self.request, self.gate = request, gate

    async def read(self, length: int = -1) -> bytes:
        body = await self.request.content.read(length)
        if engineio_payload(body):
            return body
        log.info("closing Socket.IO connection %s: parse error: not an Engine.IO payload",
                 self.request.query.get("sid", "?")[:32])
        if self.gate.metrics is not None:
            self.gate.metrics.error("PROTOCOL_ERROR")
        return b"1"
