"""python-socketio, extended so raw-WebSocket clients are participants like any other.

This is the one module that reaches into python-socketio and python-engineio internals
(`_send_packet`, `_handle_connect`, `_handle_eio_message`, `eio.sockets`, manager rooms); the
version is pinned to a minor range in setup.cfg and tests/functional covers every path here.

A raw client gets an Engine.IO-style id (`raw:...`) and joins namespaces and rooms through the
same manager as a Socket.IO client, so every emit reaches both; only the last step, turning a
packet into text on a socket, knows the transport.
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Any, Awaitable, Callable, Protocol

import socketio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers.aiohttp import WebSocket as EngineIOWebSocket
from socketio import packet

from .codecs import Codec
from .errors import PonteError
from .guards import ABUSE, ADMIT, ConnectionGuard
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


class DirectWebSocket(EngineIOWebSocket):
    """python-engineio's aiohttp WebSocket adapter, lending its socket to Ponte: Socket.IO packets
    are then written straight to the WebSocket (as raw peers' are) instead of through Engine.IO's
    per-socket queue and writer task, which cost a task wake-up and a timeout per message."""

    def __init__(self, handler: Any, server: Any, send_limit: int = 1024) -> None:
        super().__init__(handler, server)
        self.send_limit = send_limit

    async def __call__(self, environ: dict[str, Any]) -> Any:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size)
        await self._sock.prepare(request)
        self.environ = environ
        sock = self.handler.__self__  # the engineio AsyncSocket this handler belongs to
        sock.ponte_writer = SocketWriter(self._sock, request.transport, self.send_limit,
                                         lambda: self.server.start_background_task(_drop_slow_consumer, sock))
        sock.ponte_direct = False
        await self.handler(self)
        return self._sock


class PonteServer(socketio.AsyncServer):
    """An AsyncServer whose rooms also hold raw-WebSocket peers."""

    def __init__(self, *, guard_factory: Any, max_sockets: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.raw_peers: dict[str, RawPeer] = {}
        self.guards: dict[str, ConnectionGuard] = {}  # Engine.IO sockets' (a raw peer holds its own)
        self._guard_factory = guard_factory
        self._max_sockets = max_sockets
        self._send_limit = self.manager.send_queue_limit
        self.eio._async = {**self.eio._async,
                           "websocket": functools.partial(DirectWebSocket, send_limit=self._send_limit)}

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
            request_id = data.get("request_id") if isinstance(data, dict) else None
            await handler.send_error(sid, handler.unknown_event(event), request_id)

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

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        if len(self.eio.sockets) + len(self.raw_peers) > self._max_sockets:
            return False  # Engine.IO answers 401; namespace-level limits give connect_error
        self.guards[eio_sid] = self._guard_factory()
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self.guards.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None:  # Engine.IO keeps the socket a while (its ping task): let the WebSocket go now
            sock.ponte_writer = None

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        if isinstance(data, list) and data and data[0] in self.reserved_events:
            namespace = namespace or "/"
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None and self.manager.is_connected(sid, namespace):
                await self._refuse_reserved(sid, namespace, data[0], data[1] if len(data) > 1 else None)
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if isinstance(data, bytes):
            return  # attachments of a refused binary packet, or a stray frame: dropped
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception:  # noqa: BLE001 - malformed packet from a client
            log.info("malformed Socket.IO packet from %s dropped", eio_sid)
            return
        namespace = pkt.namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if pkt.packet_type in (packet.BINARY_EVENT, packet.BINARY_ACK):
            if sid is not None:
                await self.refuse(sid, namespace, PonteError(
                    "VALIDATION_ERROR", "binary messages are not supported: send JSON"), "(binary)")
            return
        if pkt.packet_type != packet.EVENT:
            return await super()._handle_eio_message(eio_sid, data)
        if sid is not None and not await self._admit(eio_sid, sid, namespace):
            return
        await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)  # decoded once, not twice

    async def _admit(self, eio_sid: str, sid: str, namespace: str) -> bool:
        guard = self.guards.get(eio_sid)
        verdict = guard.admit() if guard is not None else ADMIT
        if verdict != ADMIT and guard is not None:
            await self.refuse(sid, namespace, rate_error(guard, verdict == ABUSE), "(rate_limited)")
        return verdict == ADMIT


def rate_error(guard: ConnectionGuard, abuse: bool) -> PonteError:
    """The answer to a message over the rate limit; sustained abuse closes with 1008."""
    wait = guard.retry_after()
    return PonteError("RATE_LIMIT_ERROR", f"Muitas mensagens. Aguarde {wait} segundos.",
                      {"retry_after": wait}, close=1008 if abuse else None)
