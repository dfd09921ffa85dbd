"""The raw-WebSocket adapter: documented endpoints in, Socket.IO namespaces and rooms behind.

A raw connection is upgraded, authenticated by the namespace's own connect handler (the same
code a Socket.IO client meets), then each text frame is decoded by the endpoint's codec and
dispatched as a Socket.IO event. What the server emits comes back through `RawPeer.send`.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from aiohttp import WSMsgType, web

from .. import origins
from ..http_guard import shed
from ..auth import SUBPROTOCOL_MARKERS
from .codecs import Codec, DecodeError
from ..audit import AUDIT
from ..errors import CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_POLICY, VALIDATION_ERROR, PonteError
from ..guards import ABUSE, ADMIT, ConnectionGuard
from ..settings import Settings
from .server import PonteServer, rate_error
from .writer import CLOSE_WAIT, SocketWriter, drop_close_error

log = logging.getLogger("ponte.bridge")
CLOSING_TYPES = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


class RawPeer(SocketWriter):
    """One raw-WebSocket connection, as the Socket.IO server sees it: a SocketWriter with an
    identity (a subclass rather than a holder, so an idle connection is one object, not two)."""

    __slots__ = ("eio_sid", "codec", "form", "guard", "refusal", "alive", "_closing")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, codec: Codec,
                 guard: ConnectionGuard, queue_limit: int, on_failure: Callable[[BaseException], None],
                 detour: set[Any]) -> None:
        super().__init__(ws, request.transport, queue_limit, on_failure=on_failure, detour=detour)
        self.eio_sid = f"raw:{secrets.token_urlsafe(12)}"
        self.codec = codec
        self.form = codec.default_form
        self.guard = guard
        self.refusal: dict[str, Any] | None = None
        self.alive = True  # a frame arrived since the last heartbeat round
        self._closing = False

    def overflow(self) -> None:
        self.close_soon(CLOSE_POLICY, "send queue overflow: client too slow")

    def close_after_failure(self) -> None:
        self.close_soon(CLOSE_INTERNAL, "send failed")

    def refused(self, error_args: dict[str, Any]) -> None:
        self.refusal = error_args

    def abort(self) -> None:
        """Drop the connection at once (a dead peer would never answer a close handshake)."""
        self._closing = True
        super().abort()

    def close_soon(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        if self._closing:
            return
        self._closing = True
        self.closed = True
        asyncio.get_running_loop().create_task(self.ws.close(code=code, message=reason.encode()[:120]))


class PeerSocket(web.WebSocketResponse):
    """aiohttp's WebSocket, marking its RawPeer closed as its close begins, whoever closes it (aiohttp
    does on a Close frame, a protocol error or the end of the stream): a fan-out (`write_each`) reads the
    server's detour set, which that puts the peer's transport in, not this object, and must write nothing
    after the Close frame."""

    __slots__ = ("peer",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.peer: RawPeer | None = None

    async def close(self, *, code: int = CLOSE_NORMAL, message: bytes = b"", drain: bool = True) -> bool:
        if self.peer is not None:
            self.peer.closed = True
        return await super().close(code=code, message=message, drain=drain)


@dataclass(frozen=True)
class Endpoint:
    """A documented raw-WebSocket path and the namespace it speaks to."""

    path: str
    namespace: str
    codec: Codec
    auth_from_path: Callable[[web.Request], dict[str, Any]]


class RawBridge:
    """Serves the raw endpoints of one app through its PonteServer."""

    def __init__(self, server: PonteServer, settings: Settings) -> None:
        self.server = server
        self.settings = settings

    def add_routes(self, app: web.Application, endpoints: list[Endpoint]) -> None:
        for endpoint in endpoints:
            app.router.add_get(endpoint.path, functools.partial(self.serve, endpoint))

    async def serve(self, endpoint: Endpoint, request: web.Request) -> web.StreamResponse:
        """Upgrade, connect to the namespace, then relay frames until the socket closes.

        The relay loop is inline, not a helper coroutine: every idle connection keeps this
        frame alive, and at thousands of connections each extra frame shows in memory."""
        if not origins.allowed(request, self.settings.allowed_origins):
            AUDIT.refused("origin not allowed", request.remote, request.headers.get("Origin"), endpoint.namespace,
                          "ORIGIN_NOT_ALLOWED")
            raise web.HTTPForbidden(text="origin not allowed")
        s = self.settings
        # No per-socket heartbeat timers: `heartbeat_round` pings every raw peer from one task. aiohttp
        # refuses a message of max_msg_size bytes, not only larger ones: the documented limit is allowed.
        ws = PeerSocket(autoping=False, protocols=SUBPROTOCOL_MARKERS, max_msg_size=s.max_message_bytes + 1,
                        timeout=CLOSE_WAIT)
        await ws.prepare(request)
        peer = RawPeer(ws, request, endpoint.codec,
                       ConnectionGuard(s.rate_limit_per_second, s.rate_limit_burst, s.rate_limit_close_after),
                       s.send_queue_limit, self.server.send_failed, self.server.detour)
        ws.peer = peer
        namespace, reason = endpoint.namespace, "cancelled"  # unless the loop below ends or fails
        try:
            sid = await self.server.connect_raw(peer, namespace, {"aiohttp.request": request, "ponte.raw": True},
                                                endpoint.auth_from_path(request))
            if sid is None:
                await self._refuse(peer, endpoint)
                return ws
            shed(request)
            while (msg := await ws.receive()).type not in CLOSING_TYPES:
                peer.alive = True
                if not await self._admit(peer, namespace, sid):  # every frame counts, whatever its type
                    continue
                if msg.type is WSMsgType.TEXT:
                    await self._on_text(peer, namespace, sid, msg.data)
                elif msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await self.server.refuse(sid, namespace, PonteError(
                        VALIDATION_ERROR, "binary frames are not supported: send JSON text"), "(binary)")
            reason = f"close code {ws.close_code}" if ws.close_code is not None else "connection lost"
        except Exception:  # noqa: BLE001 - never a traceback to the client, never a dead process
            log.exception("raw connection %s failed", peer.eio_sid)
            reason = f"close code {CLOSE_INTERNAL}, server error"
            await ws.close(code=CLOSE_INTERNAL, message=b"internal server error")
        finally:
            ws.peer = None  # no cycle left for the collector
            drop_close_error(ws)
            self.server.release(peer)
            try:
                await self.server.disconnect_raw(peer, reason)
            finally:
                peer.forget()  # out of every room now: no fan-out reads its transport again
        return ws

    async def _admit(self, peer: RawPeer, namespace: str, sid: str) -> bool:
        verdict = peer.guard.admit()
        if verdict != ADMIT:
            await self.server.refuse(sid, namespace, rate_error(peer.guard, verdict == ABUSE), "(rate_limited)")
        return verdict == ADMIT

    async def _on_text(self, peer: RawPeer, namespace: str, sid: str, text: str) -> None:
        try:
            inbound = peer.codec.decode(text)
        except DecodeError as exc:
            await self.server.refuse(sid, namespace, PonteError(
                VALIDATION_ERROR, exc.message, {"campo": exc.field} if exc.field else {}), "(invalid)")
            return
        if inbound.form != peer.form:  # answer in the form the client used last
            peer.form = inbound.form
            self.server.manager.regroup(sid)
        await self.server.receive_raw(peer, namespace, inbound.event, inbound.data)

    async def _refuse(self, peer: RawPeer, endpoint: Endpoint) -> None:
        """Send the connect refusal as an error envelope, then close with its code."""
        refusal = peer.refusal or {"message": "Connection refused"}
        info: dict[str, Any] = refusal["data"] if isinstance(refusal.get("data"), dict) else {}
        error = PonteError(info.get("code", "AUTHENTICATION_ERROR"), refusal.get("message", ""),
                           info.get("details"), close=info.get("close", CLOSE_POLICY))
        event, payload = endpoint.codec.error(error)
        await peer.ws.send_str(endpoint.codec.encode(event, payload, peer.form))
        await peer.ws.close(code=error.close or CLOSE_POLICY, message=error.message.encode()[:120])


async def heartbeat_round(peers: Iterable[RawPeer]) -> None:
    """Ping every raw peer; abort those that sent nothing (not even a pong) since the last round.

    One task for all peers instead of aiohttp's timers per socket: a dead peer goes within two
    HEARTBEAT periods, and an idle connection costs a few hundred bytes less."""
    for peer in list(peers):
        if peer._closing:
            continue
        if not peer.alive:
            log.info("no pong from %s: dropping a dead peer", peer.eio_sid)
            peer.abort()
            continue
        peer.alive = False
        if peer.has_room():
            try:
                await peer.ws.ping()
            except Exception:  # noqa: BLE001 - the socket is closing; its handler cleans up
                pass
