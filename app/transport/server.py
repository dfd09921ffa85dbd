"""python-socketio, extended so raw-WebSocket clients are participants like any other.

The modules of app/transport are the only code that touches python-socketio and python-engineio
(tests/app/test_layers.py checks it). The versions are pinned to a minor range in setup.cfg, and
tests/app/test_internals_contract.py fails, naming the name, if an upgrade moves one of these:
- socketio.AsyncServer, overridden: `_send_packet`, `_send_eio_packet`, `_handle_connect` (replaced
  whole: connection-state recovery, recovery.py), `_handle_disconnect` and `_handle_eio_disconnect` (both
  replaced whole: fewer layers in a mass disconnect), `_handle_eio_connect`, `_handle_eio_message`,
  `_engineio_server_class`; called: `_trigger_event`; read or set: `_binary_packet`, `environ`, `eio`,
  `manager_initialized`, `namespace_handlers`, `packet_class`, `reason`, `reserved_events`, `async_handlers`;
- socketio.AsyncManager (manager.py): `pre_connect` (overridden to reuse a recovered sid), `connect`,
  `basic_enter_room`, `basic_leave_room`, `basic_disconnect`,
  `get_participants`, `sid_from_eio_sid`, `eio_sid_from_sid`, `is_connected`, `pending_connect`,
  `pending_disconnect`, `callbacks`, `rooms`, `server`;
- engineio.AsyncServer (eio.py): `_async["websocket" | "translate_request"]`, `start_background_task`
  (overridden to drop `AsyncSocket._send_ping`), `sockets`, `disconnect`, `async_handlers`,
  `max_http_buffer_size`, `ping_timeout`, `reason`;
- engineio.AsyncSocket (eio.py): `_upgrade_websocket` calls `_async["websocket"](handler, server)` with
  the socket's `_websocket_handler` (whose `__self__` is the socket); `queue` (replaced by `DirectQueue`
  once Ponte writes), `connected`, `upgrading`, `upgraded`, `closed`, `closing`, `last_ping`,
  `close(wait, abort, reason)`.

A raw client gets an Engine.IO-style id (`raw:...`) and joins namespaces and rooms through the
same manager as a Socket.IO client, so every emit reaches both; only the last step, turning a
packet into text on a socket, knows the transport. Both transports read a connection's next message
only once its handler has run (`dispatch`).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

from .. import logs
from ..audit import AUDIT
from ..errors import CLOSE_NORMAL, CLOSE_POLICY, CLOSE_PROTOCOL, SERVER_OVERLOADED, VALIDATION_ERROR, PonteError
from ..guards import ABUSE, ADMIT, ConnectionGuard
from ..limits import UserLimits
from .codecs import BadText, Codec, DecodeError, request_id_of, sio_packet
from .eio import CheckedBody, EngineIOServer, EngineIOWebSocket, ping_round
from .recovery import Recoveries
from .writer import SocketWriter

if TYPE_CHECKING:
    from .raw import RawPeer

log = logging.getLogger("ponte.sio")


class PonteServer(socketio.AsyncServer):
    """An AsyncServer whose rooms also hold raw-WebSocket peers."""

    def __init__(self, *, guard_factory: Any, max_sockets: int, limits: UserLimits | None = None,
                 connect_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.raw_peers: dict[str, RawPeer] = {}
        # transports of raw peers that cannot take a fan-out's frame straight: closed, or something waits before
        # it (writer.py `write_each`, which reads this rather than each peer)
        self.detour: set[Any] = set()
        self.guards: dict[str, ConnectionGuard] = {}  # Engine.IO sockets' (a raw peer holds its own)
        self.limits = limits or UserLimits(10.0, 20)
        self.connect_timeout = connect_timeout
        self.unconnected: dict[str, float] = {}  # Engine.IO sockets with no namespace yet → since when
        self.owed: dict[str, int] = {}  # binary attachments still to come for a refused binary packet
        self.metrics: Any = None
        self._guard_factory = guard_factory
        self._max_sockets = max_sockets
        self._send_limit = self.manager.send_queue_limit
        self.writers: dict[str, SocketWriter] = {}  # Engine.IO sockets on a WebSocket, written by Ponte
        self.codecs: dict[str, Codec] = {}  # namespace → the protocol it speaks (its events and errors)
        self.users: dict[str, str | None] = {}  # sid → who a connected client is, for audit lines
        self.recovery = Recoveries(self)  # connection-state recovery (recovery.py)
        self.pids = self.recovery.pids  # sid → its private session id
        # One concurrency model for every transport: a connection's events run one at a time, in order
        # (see `dispatch`); python-socketio and python-engineio would start a task per message.
        self.async_handlers = self.eio.async_handlers = False
        logs.quiet_client_errors(self.eio.logger)
        translate = self.eio._async["translate_request"]
        self.eio._async = {**self.eio._async, "websocket": functools.partial(
            EngineIOWebSocket, gate=self, send_limit=self._send_limit),
            "translate_request": lambda request: {**translate(request), "wsgi.input": CheckedBody(request, self)}}

    def _engineio_server_class(self) -> type:
        return EngineIOServer

    async def to_engineio(self, eio_sid: str, text: str) -> None:
        """Deliver an Engine.IO message's text: straight to its WebSocket, or through Engine.IO's queue
        to a long-polling client."""
        writer = self.writers.get(eio_sid)
        if writer is not None:
            return await writer.send(text)
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closed or sock.closing:
            return
        if sock.queue.qsize() >= self._send_limit:
            # A client that cannot keep up is dropped rather than buffered without bound.
            log.warning("send queue full for %s: disconnecting a slow consumer", eio_sid)
            self.start_background_task(self.drop_slow_consumer, eio_sid)
        else:
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, text[1:]))

    async def drop_slow_consumer(self, eio_sid: str) -> None:
        """Discard what a socket has queued, tell it to close, and stop writing to it."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closed or sock.closing:
            return
        writer = self.writers.get(eio_sid)
        while not sock.queue.empty():
            sock.queue.get_nowait()
            sock.queue.task_done()
        await sock.close(wait=False, abort=writer is not None)
        if writer is not None:
            writer.close_soon(CLOSE_POLICY, "send queue overflow: client too slow")
        else:
            sock.queue.put_nowait(None)  # ends the pending poll

    # -- raw peers enter, speak and leave the way Engine.IO sockets do -------------------------

    # -- what services see: emit (python-socketio's), shared controls and errors -------------------

    def register(self, handler: socketio.AsyncNamespace, codec: Codec) -> None:
        """Serve a namespace, speaking `codec`'s protocol (its errors above all)."""
        self.codecs[handler.namespace] = codec
        self.register_namespace(handler)

    async def share(self, name: str, payload: dict[str, Any]) -> None:
        """Run the control `name` with `payload` here and on every other instance (`on_share`)."""
        await self.manager.share(name, payload)

    def on_share(self, name: str, control: Any) -> None:
        """Handle the control messages called `name` (an async function of the payload)."""
        self.manager.controls[name] = control

    def render_error(self, namespace: str, error: PonteError,
                     request_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """An error as the namespace's protocol shows it: (event, payload)."""
        return self.codecs[namespace].error(error, request_id)

    async def send_error(self, sid: str, namespace: str, error: PonteError, request_id: str | None = None) -> None:
        """Answer one client with an error, counted."""
        if self.metrics is not None:
            self.metrics.error(error.code)
        event, payload = self.render_error(namespace, error, request_id)
        await self.emit(event, payload, to=sid, namespace=namespace)

    def unknown_event(self, namespace: str, event: str) -> PonteError:
        """The answer to an event a namespace does not serve (or one a client may not send)."""
        field = self.codecs[namespace].event_field
        return PonteError(VALIDATION_ERROR, f"evento desconhecido: {event[:64]}", {"campo": field})

    def observe(self, sid: str, namespace: str, event: str, payload: Any, seconds: float,
                error: PonteError | None, audited: bool = True) -> None:
        """Count one client message; audit it when it failed or `audited` says it is security-relevant."""
        if self.metrics is not None:
            self.metrics.handled_message(namespace, event, seconds, error is not None)
        if error is not None or audited:
            AUDIT.record(event, sid, self.users.get(sid), payload, seconds * 1000,
                         "error" if error else "success", error.code if error else None)

    async def ping_round(self) -> None:
        """Engine.IO's heartbeat, for every Socket.IO client at once (every ping interval)."""
        await ping_round(self)

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
            await self.dispatch(sid, namespace, event, data)

    async def dispatch(self, sid: str, namespace: str, event: str, data: Any) -> Any:
        """Run a connected client's event in its namespace, whichever transport it came by: awaited
        before the connection's next message is read (one handler at a time per connection, in the
        order sent; handlers that run long spawn their work). The handler's result, for an ack."""
        if event in self.reserved_events:
            return await self._refuse_reserved(sid, namespace, event, data)
        handler = self.namespace_handlers.get(namespace)
        if handler is not None:
            return await handler.trigger_event(event, sid, data)

    async def _refuse_reserved(self, sid: str, namespace: str, event: str, data: Any) -> None:
        """`connect` and `disconnect` are the server's own lifecycle calls: a client sending one as an
        event would run the namespace's connect or disconnect handler (uncounting its connection), so
        it gets the unknown-event answer instead."""
        await self.send_error(sid, namespace, self.unknown_event(namespace, event), request_id_of(data))

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
            return await self.to_engineio(eio_sid, "4" + encoded)
        if pkt.packet_type == packet.EVENT:
            event, *args = pkt.data
            await peer.send(peer.codec.encode(event, args[0] if len(args) == 1 else args, peer.form))
        elif pkt.packet_type == packet.CONNECT_ERROR:
            peer.refused(pkt.data if isinstance(pkt.data, dict) else {"message": str(pkt.data)})
        elif pkt.packet_type == packet.DISCONNECT:
            peer.close_soon(CLOSE_NORMAL, "disconnected by server")
        # CONNECT and ACK packets have no counterpart in the raw protocols.

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if eio_sid not in self.raw_peers:
            if eio_pkt.packet_type == eio_packet.MESSAGE and isinstance(eio_pkt.data, str):
                return await self.to_engineio(eio_sid, eio_pkt.encode())
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
        await self.send_error(sid, namespace, error)
        if observed is not None:
            self.observe(sid, namespace, observed, None, 0.0, error)
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
        # only the namespaces it joined: python-socketio's own ran the whole disconnect path in every namespace,
        # with two failed lookups (raised KeyErrors) in each it had not joined
        for namespace in self.manager.namespaces_of(eio_sid):
            await self._handle_disconnect(eio_sid, namespace, reason)
        self.environ.pop(eio_sid, None)
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None and eio_sid not in self.writers and not sock.upgraded:
            # A polling client that closed: Engine.IO would hold its pending poll until the poll times out
            # (ping interval + ping timeout), and the client's disconnect waits for that poll.
            sock.queue.put_nowait(None)

    def admitted(self, sid: str, namespace: str, user: str | None, audit_id: str | None = None) -> None:
        """A client has connected a namespace: its socket is no longer unconnected, and from now on
        it shares its user's rate limit (anonymous clients keep their own); `audit_id` names it in
        audit lines (an anonymous client's own id; its user's by default)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        if eio_sid is None:
            return
        self.users[sid] = audit_id or user
        self.unconnected.pop(eio_sid, None)
        peer = self.raw_peers.get(eio_sid)
        guard = peer.guard if peer is not None else self.guards.get(eio_sid)
        if guard is not None and user is not None:
            self.limits.bind(guard, user)

    def departed(self, sid: str, namespace: str) -> None:
        """A client has left a namespace (the counterpart of `admitted`)."""
        self.users.pop(sid, None)
        self.recovery.departed(sid, namespace)

    def release(self, peer: RawPeer) -> None:
        """A raw peer is gone: its share of its user's rate limit too."""
        self.limits.unbind(peer.guard)

    def connection_counts(self) -> tuple[int, int]:
        """How many raw-WebSocket and Engine.IO connections this instance holds."""
        return len(self.raw_peers), len(self.eio.sockets)

    def close_raw(self, code: int, reason: str) -> int:
        """Close every raw-WebSocket connection with a close code; how many there were."""
        peers = list(self.raw_peers.values())
        for peer in peers:
            peer.close_soon(code, reason)
        return len(peers)

    async def close_idle(self, idle_for: float, code: int, reason: str) -> None:
        """Close every connection that sent nothing for more than `idle_for` seconds (raw: with `code`)."""
        now = time.monotonic()
        guards = [*self.guards.items(), *((peer.eio_sid, peer.guard) for peer in self.raw_peers.values())]
        for eio_sid, guard in guards:
            if guard.idle_for(now) <= idle_for:
                continue
            for namespace in list(self.namespace_handlers):
                sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
                if sid is not None:
                    await self.kick(sid, namespace, code, reason)
            if eio_sid in self.eio.sockets:
                await self.eio.disconnect(eio_sid)

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

    async def close_socket(self, eio_sid: str, code: int, reason: str, lost: str | None = None) -> None:
        """End an Engine.IO socket now: its WebSocket with a close code (Engine.IO's own close would
        wait for the peer to hang up), or its polling session, whose pending poll is answered at once.

        With `lost` (the disconnect reason its namespaces' handlers get), the client is told nothing: to
        it the transport is lost, which every official client answers by reconnecting. Engine.IO's close
        packet is final to python-socketio's client, and Socket.IO's DISCONNECT to every client."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return
        writer = self.writers.get(eio_sid)
        if writer is not None:
            writer.closed = True
            if lost is not None:  # before the WebSocket ends, whose read loop would say "transport close"
                await sock.close(wait=False, abort=True, reason=lost)
            await writer.ws.close(code=code, message=reason.encode()[:120])
        elif lost is not None:  # polling: a NOOP ends the pending poll, and the next poll finds no session
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
            await sock.close(wait=False, abort=True, reason=lost)
            sock.queue.put_nowait(None)
        else:  # polling, or a WebSocket closed before its upgrade completed
            # Engine.IO's close packet goes out through the pending poll or the next one; waiting for that
            # poll here would deadlock a POST, or wait for a client that never polls again.
            await sock.close(wait=False, abort=False)
            # Engine.IO skips that packet once a ping went unanswered: this ends a pending poll anyway,
            # instead of at Engine.IO's poll timeout (ping interval + ping timeout: 50 s by default).
            sock.queue.put_nowait(None)

    async def close_sockets(self, code: int, reason: str, timeout: float, lost: str) -> tuple[int, int]:
        """End every Engine.IO socket at once as a transport loss `lost` (see `close_socket`): their
        clients reconnect, to another instance or to this one's successor. Waits at most `timeout`
        seconds; how many were open, and how many of those were long-polling."""
        sockets = list(self.eio.sockets.items())
        open_ = [sock for _, sock in sockets if not sock.closed]
        polling = sum(1 for sock in open_ if sock.sid not in self.writers)
        closing = [asyncio.create_task(self.close_socket(eio_sid, code, reason, lost)) for eio_sid, _ in sockets]
        if closing:
            await asyncio.wait(closing, timeout=timeout)
        return len(open_), polling

    def send_failed(self, exc: BaseException) -> None:
        """A write to a client failed: counted (the writer closes its connection)."""
        log.info("send failed: %s", type(exc).__name__)
        if self.metrics is not None:
            self.metrics.error("SEND_FAILED")

    async def on_engineio_message(self, eio_sid: str, data: Any) -> None:
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
            result = await self.dispatch(sid, pkt.namespace, pkt.data[0], pkt.data[1] if len(pkt.data) > 1 else None)
            if pkt.id is not None:  # the handler's result goes back as the ack's arguments
                args = [] if result is None else list(result) if isinstance(result, tuple) else [result]
                await self._send_packet(eio_sid, self.packet_class(packet.ACK, namespace=pkt.namespace,
                                                                   id=pkt.id, data=args))
            return None
        if pkt.type == sio_packet.DISCONNECT:
            return await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        if pkt.type in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            self.owed[eio_sid] = self.owed.get(eio_sid, 0) + pkt.attachments
            return await self._refuse_packet(eio_sid, pkt.namespace, PonteError(
                VALIDATION_ERROR, "binary messages are not supported: send JSON"), "(binary)")
        # ACK: Ponte never asks a client for one, so nothing waits for it.

    _handle_eio_message = on_engineio_message  # long-polling bodies come this way, through python-engineio

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
        """A client connects a namespace (both transports): its session back if it asks and may, the
        connect handler, the CONNECT answer with `{sid, pid}` (Socket.IO), its first message (`greet`),
        then the events it missed and those sent while it connected, in order."""
        handler = self.namespace_handlers.get(namespace)
        if handler is None:  # answered as socket.io's own server answers it
            AUDIT.refused("unknown namespace", *_where(self.environ.get(eio_sid)), namespace, "NOT_FOUND")
            return await self._send_packet(eio_sid, self.packet_class(
                packet.CONNECT_ERROR, data={"message": "Invalid namespace"}, namespace=namespace))
        manager, recovery = self.manager, self.recovery
        attempt = await recovery.attempt(handler, eio_sid, namespace, data)
        restored = attempt.session if attempt is not None else None
        sid = await manager.pre_connect(eio_sid, namespace, restored.sid if restored is not None else None)
        if sid is None:
            return await self._send_packet(eio_sid, self.packet_class(
                packet.CONNECT_ERROR, data="Unable to connect", namespace=namespace))
        recovery.hold(sid, namespace, attempt)
        try:
            success = await self._trigger_event("connect", namespace, sid, self.environ[eio_sid], data)
        except socketio.exceptions.ConnectionRefusedError as exc:
            success, reason = False, exc.error_args
        except ConnectionRefusedError:
            success, reason = False, {"message": "Connection refused by server"}
        if success is False:
            recovery.refused(sid, namespace, attempt)
            await self._send_packet(eio_sid, self.packet_class(packet.CONNECT_ERROR, data=reason, namespace=namespace))
            return await manager.disconnect(sid, namespace, ignore_queue=True)
        reply = {"sid": sid, **recovery.reply(sid, eio_sid, attempt, data)}
        await self._send_packet(eio_sid, self.packet_class(packet.CONNECT, reply, namespace=namespace))
        await manager.connect(sid, namespace)
        await recovery.greet(handler, sid, eio_sid, namespace, attempt)

    def write_now(self, eio_sid: str, text: str) -> None:
        """Queue one message for a connection without waiting, behind what it has queued (a bounded
        replay: at most HISTORY_SIZE messages)."""
        if not text:
            return
        peer = self.raw_peers.get(eio_sid)
        writer = peer if peer is not None else self.writers.get(eio_sid)
        if writer is not None:
            return writer.enqueue(text)
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None and not sock.closed and not sock.closing:
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, text[1:]))

    def write_close(self, eio_sid: str, reason: str) -> None:
        peer = self.raw_peers.get(eio_sid)
        if peer is not None:
            peer.close_soon(CLOSE_NORMAL, reason)
        else:
            asyncio.get_running_loop().create_task(self.close_socket(eio_sid, CLOSE_NORMAL, reason))

    async def _handle_disconnect(self, eio_sid: str, namespace: str, reason: Any = None) -> None:
        """python-socketio's, but for calling the namespace's `on_disconnect` directly, not through two layers
        of dispatch that inspect it for a coroutine each time (every namespace here is a PonteNamespace)."""
        namespace = namespace or "/"
        self.recovery.left(eio_sid, namespace, reason)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            return
        self.manager.pre_disconnect(sid, namespace=namespace)
        self._binary_packet.pop(eio_sid, None)
        handler = self.namespace_handlers.get(namespace)
        if handler is not None:
            await handler.on_disconnect(sid, reason or self.reason.CLIENT_DISCONNECT)
        await self.manager.disconnect(sid, namespace, ignore_queue=True)

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
                      {"retry_after": wait}, close=CLOSE_POLICY if abuse else None)
