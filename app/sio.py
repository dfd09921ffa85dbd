"""python-socketio, extended so raw-WebSocket clients are participants like any other.

This is the one module that reaches into python-socketio and python-engineio internals; the version
is pinned to a minor range in setup.cfg, tests/functional covers every path here, and
tests/app/test_internals_contract.py fails, naming the name, if an upgrade moves one of these:
- AsyncServer: `_send_packet`, `_send_eio_packet`, `_handle_connect`, `_handle_disconnect`,
  `_handle_event`, `_handle_eio_connect`, `_handle_eio_disconnect`, `_handle_eio_message`,
  `_trigger_event`, and `environ`, `eio`, `manager_initialized`, `namespace_handlers`, `packet_class`,
  `reason`, `reserved_events`;
- AsyncManager: `basic_enter_room`, `basic_leave_room`, `basic_disconnect`, `get_participants`,
  `sid_from_eio_sid`, `eio_sid_from_sid`, `is_connected`, `pending_connect`, `pending_disconnect`,
  `callbacks`, `rooms`, `server`;
- python-engineio: `AsyncServer._async["websocket" | "translate_request"]`, `sockets`, `disconnect`;
  `AsyncSocket.queue`, `upgraded`, `closed`, `closing`, `close(wait, abort)`; the aiohttp driver's
  `WebSocket(handler, server)` with `_sock`, `handler`, `wait()` and `__call__(environ)`.

A raw client gets an Engine.IO-style id (`raw:...`) and joins namespaces and rooms through the
same manager as a Socket.IO client, so every emit reaches both; only the last step, turning a
packet into text on a socket, knows the transport.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, Awaitable, Callable, Protocol

import socketio
from aiohttp import WSMsgType, web
from engineio import packet as eio_packet
from engineio.async_drivers.aiohttp import WebSocket as EngineIOWebSocket
from socketio import packet

from . import logs
from .audit import AUDIT
from .codecs import BadText, Codec, DecodeError, request_id_of, sio_packet
from .errors import CLOSE_POLICY, CLOSE_PROTOCOL, SERVER_OVERLOADED, VALIDATION_ERROR, PonteError
from .guards import ABUSE, ADMIT, ConnectionGuard
from .limits import UserLimits
from .writer import SocketWriter

log = logging.getLogger("ponte.sio")


class RawPeer(Protocol):
    """What the server needs from a raw-WebSocket connection (implemented in app.bridge)."""

    eio_sid: str
    form: str
    codec: Codec
    guard: ConnectionGuard

    async def send(self, text: str) -> None: ...

    def refused(self, error_args: dict[str, Any]) -> None: ...

    def close_soon(self, code: int, reason: str) -> None: ...


class FanoutManager(socketio.AsyncManager):
    """A client manager that encodes an emit once per wire format and delivers without a task
    per recipient, and that knows each client's rooms (python-socketio scans every room of the
    namespace on each disconnect, which makes a mass disconnect quadratic)."""

    def __init__(self, send_queue_limit: int = 1024) -> None:
        super().__init__()
        self.send_queue_limit = send_queue_limit
        self._rooms_of: dict[str, list[Any]] = {}
        # (namespace, event) → keep(sid, data): per-recipient filters, e.g. notification preferences
        self.filters: dict[tuple[str, str], Callable[[str, Any], bool]] = {}
        # name → handler(payload): control messages shared by every instance (see `share`)
        self.controls: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}
        self.metrics: Any = None

    async def share(self, name: str, payload: dict[str, Any]) -> None:
        """Tell every instance (here: only this one) about a change, through `controls[name]`."""
        await self.controls[name](payload)

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        rooms = self._rooms_of.setdefault(sid, [])  # a few rooms each: a list is smaller than a set
        if room not in rooms:
            rooms.append(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get(sid)
        if rooms is not None and room in rooms:
            rooms.remove(room)

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self._rooms_of.get(sid, ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        for room in list(self._rooms_of.pop(sid, ())):
            super().basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:
        if callback is not None:  # acks: the stock path
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                      callback=callback, to=to, **kwargs)
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        await self.deliver(namespace, to or room, skip_sid, event, args)

    async def deliver(self, namespace: str, room: Any, skip_sid: Any, event: str, args: list[Any]) -> None:
        """Hand one event to every local participant of a room, encoding it at most once per wire
        format, and only for the formats its recipients use."""
        if namespace not in self.rooms:
            return
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        raw_data = args[0] if len(args) == 1 else args
        texts: dict[str, str] = {}
        frame: Any = None
        server = self.server
        peers = server.raw_peers
        keep = self.filters.get((namespace, event))
        delivered = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip or (keep is not None and not keep(sid, raw_data)):
                continue
            delivered += 1
            peer = peers.get(eio_sid)
            if peer is not None:
                text = texts.get(peer.form)
                if text is None:
                    text = texts[peer.form] = peer.codec.encode(event, raw_data, peer.form)
                await peer.send(text)
                continue
            if frame is None:
                frame = self.server.packet_class(packet.EVENT, namespace=namespace, data=[event, *args])
                encoded = frame.encode()
                if isinstance(encoded, str):  # binary attachments go Engine.IO's own way, below
                    frame = eio_packet.Packet(eio_packet.MESSAGE, encoded)
                    texts[""] = frame.encode()
            if "" in texts:
                await server.to_engineio(eio_sid, texts[""], frame)
            else:
                await server._send_packet(eio_sid, frame)
        if self.metrics is not None and delivered:
            self.metrics.delivered(namespace, event, delivered)


async def _drop_slow_consumer(sock: Any) -> None:
    """Discard what a socket has queued, tell it to close, and stop its writer."""
    if sock.closed or sock.closing:
        return
    while not sock.queue.empty():
        sock.queue.get_nowait()
        sock.queue.task_done()
    await sock.close(wait=False, abort=False)
    sock.queue.put_nowait(None)  # the writer task exits and closes the WebSocket


EIO_TYPES = "0123456"  # Engine.IO packet types; "4" is a message, which Socket.IO decodes
CLOSE_WAIT = 2.0  # seconds a server's close waits for the peer's Close frame (aiohttp's default: 10)


class DirectWebSocket(EngineIOWebSocket):
    """python-engineio's aiohttp WebSocket adapter, lending its socket to Ponte: Socket.IO packets
    are then written straight to the WebSocket (as raw peers' are) instead of through Engine.IO's
    per-socket queue and writer task, which cost a task wake-up and a timeout per message. Every
    frame it reads is checked first: not Engine.IO closes the connection, and frames other than
    messages (which `PonteServer` admits itself) count against the connection's rate limit."""

    def __init__(self, handler: Any, server: Any, gate: Any = None, send_limit: int = 1024) -> None:
        super().__init__(handler, server)
        self.send_limit = send_limit
        self.gate: PonteServer = gate

    async def __call__(self, environ: dict[str, Any]) -> Any:
        request = environ["aiohttp.request"]
        # One byte over the limit is refused, not the limit itself; pings are answered in `wait`.
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size + 1, autoping=False,
                                           timeout=CLOSE_WAIT)
        await self._sock.prepare(request)
        self.environ = environ
        sock = self.handler.__self__  # the engineio AsyncSocket this handler belongs to
        sock.ponte_writer = SocketWriter(self._sock, request.transport, self.send_limit,
                                         lambda: self.server.start_background_task(_drop_slow_consumer, sock),
                                         self.gate.send_failed)
        sock.ponte_direct = False
        await self.handler(self)
        return self._sock

    async def wait(self) -> Any:
        sock = self.handler.__self__
        while True:
            if sock.closed:  # e.g. after the client's close packet: Engine.IO would go on reading
                await self._sock.close()
                raise OSError()
            msg = await self._sock.receive()
            if msg.type is WSMsgType.BINARY or (msg.type is WSMsgType.TEXT and msg.data[:1] == "4"):
                return msg.data  # a message: admitted by PonteServer with its namespace's answer
            if msg.type not in (WSMsgType.TEXT, WSMsgType.PING, WSMsgType.PONG):
                raise OSError()  # closed: Engine.IO's read loop ends
            if msg.type is WSMsgType.TEXT and (not msg.data or msg.data[0] not in EIO_TYPES):
                await self.gate.protocol_error(sock.sid, "not an Engine.IO packet")
                raise OSError()
            verdict = self.gate.admit_frame(sock.sid)
            if verdict == ABUSE:
                await self.gate.protocol_error(sock.sid, "over the rate limit", CLOSE_POLICY)
                raise OSError()
            if verdict == ADMIT:
                if msg.type is WSMsgType.PING:
                    await self._sock.pong(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    return msg.data


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


class PonteServer(socketio.AsyncServer):
    """An AsyncServer whose rooms also hold raw-WebSocket peers."""

    def __init__(self, *, guard_factory: Any, max_sockets: int, limits: UserLimits | None = None,
                 connect_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.raw_peers: dict[str, RawPeer] = {}
        self.guards: dict[str, ConnectionGuard] = {}  # Engine.IO sockets' (a raw peer holds its own)
        self.limits = limits or UserLimits(10.0, 20)
        self.connect_timeout = connect_timeout
        self.unconnected: dict[str, float] = {}  # Engine.IO sockets with no namespace yet → since when
        self.owed: dict[str, int] = {}  # binary attachments still to come for a refused binary packet
        self.metrics: Any = None
        self._guard_factory = guard_factory
        self._max_sockets = max_sockets
        self._send_limit = self.manager.send_queue_limit
        logs.quiet_client_errors(self.eio.logger)
        translate = self.eio._async["translate_request"]
        self.eio._async = {**self.eio._async, "websocket": functools.partial(
            DirectWebSocket, gate=self, send_limit=self._send_limit),
            "translate_request": lambda request: {**translate(request), "wsgi.input": CheckedBody(request, self)}}

    async def to_engineio(self, eio_sid: str, text: str, frame: eio_packet.Packet) -> None:
        """Deliver an encoded Engine.IO message: straight to the WebSocket once the socket is
        upgraded and its queue is flushed (the switch keeps order), else through Engine.IO's queue."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closed or sock.closing:
            return
        writer = getattr(sock, "ponte_writer", None)
        if writer is not None and (sock.ponte_direct or (sock.upgraded and sock.queue.empty() and writer.has_room())):
            sock.ponte_direct = True
            await writer.send(text)
        elif sock.queue.qsize() >= self._send_limit:
            # A client that cannot keep up is dropped rather than buffered without bound.
            log.warning("send queue full for %s: disconnecting a slow consumer", eio_sid)
            self.start_background_task(_drop_slow_consumer, sock)
        else:
            sock.queue.put_nowait(frame)

    # -- raw peers enter, speak and leave the way Engine.IO sockets do -------------------------

    def start(self) -> None:
        """Initialise the client manager now rather than at the first connection, so that a
        fan-out backend listens and publishes from start-up."""
        if not self.manager_initialized:  # type: ignore[has-type]
            self.manager_initialized = True
            self.manager.initialize()

    async def connect_raw(self, peer: RawPeer, namespace: str, environ: dict[str, Any],
                          auth: dict[str, Any]) -> str | None:
        """Run the namespace's connect handler for a raw peer; its sid, or None if refused."""
        self.start()
        self.raw_peers[peer.eio_sid] = peer
        self.environ[peer.eio_sid] = environ
        try:
            await self._handle_connect(peer.eio_sid, namespace, auth)
        finally:
            del self.environ[peer.eio_sid]  # only the connect handler reads it: idle peers stay small
        return self.manager.sid_from_eio_sid(peer.eio_sid, namespace)

    async def receive_raw(self, peer: RawPeer, namespace: str, event: str, data: Any) -> None:
        """Dispatch one decoded raw message to the namespace's handler."""
        sid = self.manager.sid_from_eio_sid(peer.eio_sid, namespace)
        if sid is not None and self.manager.is_connected(sid, namespace):
            if event in self.reserved_events:
                return await self._refuse_reserved(sid, namespace, event, data)
            await self._trigger_event(event, namespace, sid, data)

    async def _refuse_reserved(self, sid: str, namespace: str, event: str, data: Any) -> None:
        """`connect` and `disconnect` are the server's own lifecycle calls: a client sending one as an
        event would run the namespace's connect or disconnect handler (uncounting its connection), so
        it gets the unknown-event answer instead."""
        handler = self.namespace_handlers.get(namespace)
        if handler is not None:
            await handler.send_error(sid, handler.unknown_event(event), request_id_of(data))

    async def disconnect_raw(self, peer: RawPeer, reason: str) -> None:
        """Forget a raw peer once its socket has closed."""
        try:
            await self._handle_eio_disconnect(peer.eio_sid, reason)
        finally:
            self.raw_peers.pop(peer.eio_sid, None)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        peer = self.raw_peers.get(eio_sid)
        if peer is None:
            encoded = pkt.encode()
            if isinstance(encoded, list):  # binary attachments: Engine.IO's own path
                return await super()._send_packet(eio_sid, pkt)
            frame = eio_packet.Packet(eio_packet.MESSAGE, encoded)
            return await self.to_engineio(eio_sid, frame.encode(), frame)
        if pkt.packet_type == packet.EVENT:
            event, *args = pkt.data
            await peer.send(peer.codec.encode(event, args[0] if len(args) == 1 else args, peer.form))
        elif pkt.packet_type == packet.CONNECT_ERROR:
            peer.refused(pkt.data if isinstance(pkt.data, dict) else {"message": str(pkt.data)})
        elif pkt.packet_type == packet.DISCONNECT:
            peer.close_soon(1000, "disconnected by server")
        # CONNECT and ACK packets have no counterpart in the raw protocols.

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if eio_sid not in self.raw_peers:
            if eio_pkt.packet_type == eio_packet.MESSAGE and isinstance(eio_pkt.data, str):
                return await self.to_engineio(eio_sid, eio_pkt.encode(), eio_pkt)
            return await super()._send_eio_packet(eio_sid, eio_pkt)
        await self._send_packet(eio_sid, self.packet_class(encoded_packet=eio_pkt.data))

    # -- every client, whichever transport ------------------------------------------------------

    async def kick(self, sid: str, namespace: str, code: int, reason: str) -> None:
        """Close a client's connection with a WebSocket close code (raw) or a disconnect."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        peer = self.raw_peers.get(eio_sid) if eio_sid else None
        if peer is not None:
            peer.close_soon(code, reason)
        else:
            await self.disconnect(sid, namespace)

    async def refuse(self, sid: str, namespace: str, error: PonteError, observed: str | None = None) -> None:
        """Answer a client with an error in its protocol's shape, closing if the error says so;
        `observed` names a message refused before any handler saw it, for metrics and audit."""
        handler = self.namespace_handlers.get(namespace)
        if handler is not None:
            await handler.send_error(sid, error)
            if observed is not None:
                handler.observe(sid, observed, None, time.perf_counter(), error)
        if error.close:
            await self.kick(sid, namespace, error.close, error.message)

    # -- Engine.IO sockets: admitted, checked, and closed when they misbehave ---------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        if len(self.eio.sockets) + len(self.raw_peers) > self._max_sockets:
            AUDIT.refused("too many connections", *_where(environ), None, SERVER_OVERLOADED)
            return False  # Engine.IO answers 401; namespace-level limits give connect_error
        self.guards[eio_sid] = self._guard_factory()
        self.unconnected[eio_sid] = time.monotonic()
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        guard = self.guards.pop(eio_sid, None)
        if guard is not None:
            self.limits.unbind(guard)
        self.unconnected.pop(eio_sid, None)
        self.owed.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return
        if getattr(sock, "ponte_writer", None) is None and not sock.upgraded:
            # A polling client that closed: Engine.IO would hold its pending poll until the poll times out
            # (ping interval + ping timeout), and the client's disconnect waits for that poll.
            sock.queue.put_nowait(None)
        sock.ponte_writer = None  # Engine.IO keeps the socket a while (its ping task): let the WebSocket go now

    def admitted(self, sid: str, namespace: str, user: str | None) -> None:
        """A client has connected a namespace: its socket is no longer unconnected, and from now on
        it shares its user's rate limit (anonymous clients keep their own)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        if eio_sid is None:
            return
        self.unconnected.pop(eio_sid, None)
        peer = self.raw_peers.get(eio_sid)
        guard = peer.guard if peer is not None else self.guards.get(eio_sid)
        if guard is not None and user is not None:
            self.limits.bind(guard, user)

    def release(self, peer: RawPeer) -> None:
        """A raw peer is gone: its share of its user's rate limit too."""
        self.limits.unbind(peer.guard)

    async def close_unconnected(self) -> None:
        """Close Engine.IO sockets that connected no namespace within `connect_timeout` seconds."""
        deadline = time.monotonic() - self.connect_timeout
        for eio_sid, since in list(self.unconnected.items()):
            if since <= deadline:
                self.unconnected.pop(eio_sid, None)
                reason = f"no namespace connected within {self.connect_timeout:g} s"
                AUDIT.refused(reason, *_where(self.environ.get(eio_sid)), None, "CONNECT_TIMEOUT")
                await self.close_socket(eio_sid, CLOSE_POLICY, reason)

    def admit_frame(self, eio_sid: str) -> str:
        """The rate limit's verdict on one frame of an Engine.IO socket."""
        guard = self.guards.get(eio_sid)
        return guard.admit() if guard is not None else ADMIT

    async def protocol_error(self, eio_sid: str, reason: str, code: int = CLOSE_PROTOCOL) -> None:
        """Close a Socket.IO connection that broke the protocol, with one log line and no traceback
        (what Socket.IO's own server does on a parse error: the client sees the transport close)."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closed or sock.closing:
            return
        log.info("closing Socket.IO connection %s: %s", eio_sid, reason)
        if self.metrics is not None:
            self.metrics.error("PROTOCOL_ERROR")
        await self.close_socket(eio_sid, code, reason)

    async def close_socket(self, eio_sid: str, code: int, reason: str) -> None:
        """End an Engine.IO socket now: its WebSocket with a close code (Engine.IO's own close would
        wait for the peer to hang up), or its polling session, whose pending poll is answered at once."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return
        writer = getattr(sock, "ponte_writer", None)
        if writer is not None:
            writer.closed = True
            await writer.ws.close(code=code, message=reason.encode()[:120])
        if writer is None or not sock.upgraded:  # polling, or a WebSocket closed before its upgrade completed
            # Engine.IO's close packet goes out through the pending poll or the next one; waiting for that
            # poll here would deadlock a POST, or wait for a client that never polls again.
            await sock.close(wait=False, abort=False)
            # Engine.IO skips that packet once a ping went unanswered: this ends a pending poll anyway,
            # instead of at Engine.IO's poll timeout (ping interval + ping timeout: 50 s by default).
            sock.queue.put_nowait(None)

    async def close_sockets(self, code: int, reason: str, timeout: float) -> tuple[int, int]:
        """End every Engine.IO socket at once (see `close_socket`), waiting at most `timeout` seconds;
        how many were open, and how many of those were long-polling."""
        sockets = list(self.eio.sockets.items())
        open_ = [sock for _, sock in sockets if not sock.closed]
        polling = sum(1 for sock in open_ if getattr(sock, "ponte_writer", None) is None)
        closing = [asyncio.create_task(self.close_socket(eio_sid, code, reason)) for eio_sid, _ in sockets]
        if closing:
            await asyncio.wait(closing, timeout=timeout)
        return len(open_), polling

    def send_failed(self, exc: BaseException) -> None:
        """A write to a client failed: counted (the writer closes its connection)."""
        log.info("send failed: %s", type(exc).__name__)
        if self.metrics is not None:
            self.metrics.error("SEND_FAILED")

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        if data[0] in self.reserved_events:
            namespace = namespace or "/"
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None and self.manager.is_connected(sid, namespace):
                await self._refuse_reserved(sid, namespace, data[0], data[1] if len(data) > 1 else None)
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Every Socket.IO packet from a client: decoded once, strictly; counted; then dispatched."""
        if not isinstance(data, str):
            return await self._binary_frame(eio_sid)
        try:
            pkt = sio_packet.decode(data)
        except BadText as exc:  # well-formed, but text UTF-8 cannot carry: refused like any bad input
            return await self._refuse_packet(eio_sid, exc.namespace, PonteError(VALIDATION_ERROR, exc.message))
        except (sio_packet.PacketError, DecodeError) as exc:
            return await self.protocol_error(eio_sid, f"parse error: {exc}")
        sid = self.manager.sid_from_eio_sid(eio_sid, pkt.namespace)
        connected = sid is not None and self.manager.is_connected(sid, pkt.namespace)
        if not await self._admit(eio_sid, sid if connected else None, pkt.namespace):
            return
        if pkt.type == sio_packet.CONNECT:
            if sid is not None:
                return await self.protocol_error(eio_sid, f"second CONNECT to {pkt.namespace}")
            return await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        if not connected:
            return await self.protocol_error(eio_sid, f"packet for {pkt.namespace}, which it has not connected")
        if pkt.type == sio_packet.EVENT:
            return await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        if pkt.type == sio_packet.DISCONNECT:
            return await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        if pkt.type in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            self.owed[eio_sid] = self.owed.get(eio_sid, 0) + pkt.attachments
            return await self._refuse_packet(eio_sid, pkt.namespace, PonteError(
                VALIDATION_ERROR, "binary messages are not supported: send JSON"), "(binary)")
        # ACK: Ponte never asks a client for one, so nothing waits for it.

    async def _binary_frame(self, eio_sid: str) -> None:
        """A binary frame is only an attachment of a binary packet announced before it."""
        owed = self.owed.get(eio_sid, 0)
        if not owed:
            return await self.protocol_error(eio_sid, "binary frame without a binary packet")
        self.owed[eio_sid] = owed - 1
        await self._admit(eio_sid, None, "/")

    async def _refuse_packet(self, eio_sid: str, namespace: str, error: PonteError,
                             observed: str = "(invalid)") -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return await self.protocol_error(eio_sid, f"packet for {namespace}, which it has not connected")
        await self.refuse(sid, namespace, error, observed)

    async def _handle_connect(self, eio_sid: str, namespace: str, data: Any) -> None:
        if namespace not in self.namespace_handlers:  # answered as socket.io's own server answers it
            AUDIT.refused("unknown namespace", *_where(self.environ.get(eio_sid)), namespace, "NOT_FOUND")
            return await self._send_packet(eio_sid, self.packet_class(
                packet.CONNECT_ERROR, data={"message": "Invalid namespace"}, namespace=namespace))
        await super()._handle_connect(eio_sid, namespace, data)

    async def _admit(self, eio_sid: str, sid: str | None, namespace: str) -> bool:
        """Count one packet; over the limit, answer on its namespace (or close if it has none)."""
        guard = self.guards.get(eio_sid)
        verdict = guard.admit() if guard is not None else ADMIT
        if verdict == ADMIT or guard is None:
            return True
        if sid is None:
            if verdict == ABUSE:
                await self.protocol_error(eio_sid, "over the rate limit", CLOSE_POLICY)
            return False
        await self.refuse(sid, namespace, rate_error(guard, verdict == ABUSE), "(rate_limited)")
        return False


def _where(environ: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The peer's address and Origin of a handshake, for the audit log."""
    request = (environ or {}).get("aiohttp.request")
    if request is None:
        return None, None
    return request.remote, request.headers.get("Origin")


def rate_error(guard: ConnectionGuard, abuse: bool) -> PonteError:
    """The answer to a message over the rate limit; sustained abuse closes with 1008."""
    wait = guard.retry_after()
    return PonteError("RATE_LIMIT_ERROR", f"Muitas mensagens. Aguarde {wait} segundos.",
                      {"retry_after": wait}, close=1008 if abuse else None)
