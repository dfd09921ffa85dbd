"""The raw-WebSocket adapter: documented endpoints in, Socket.IO namespaces and rooms behind.

A raw connection is upgraded, authenticated by the namespace's own connect handler (the same
code a Socket.IO client meets), then each text frame is decoded by the endpoint's codec and
dispatched as a Socket.IO event. What the server emits comes back through `RawPeer.send`.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import WSMsgType, web

from . import origins
from .auth import SUBPROTOCOL_MARKERS
from .codecs import Codec, DecodeError
from .errors import CLOSE_NORMAL, CLOSE_POLICY, VALIDATION_ERROR, PonteError
from .guards import ABUSE, ADMIT, ConnectionGuard
from .settings import Settings
from .sio import PonteServer, rate_error
from .writer import SocketWriter

log = logging.getLogger("ponte.bridge")
CLOSING_TYPES = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


class RawPeer:
    """One raw-WebSocket connection, as the Socket.IO server sees it."""

    __slots__ = ("eio_sid", "ws", "codec", "form", "environ", "guard", "refusal", "writer", "send", "_closing")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, codec: Codec,
                 guard: ConnectionGuard, queue_limit: int) -> None:
        self.eio_sid = f"raw:{uuid.uuid4().hex}"
        self.ws = ws
        self.codec = codec
        self.form = codec.default_form
        self.environ: dict[str, Any] = {"aiohttp.request": request, "ponte.raw": True}
        self.guard = guard
        self.refusal: dict[str, Any] | None = None
        self.writer = SocketWriter(ws, request.transport, queue_limit, self._overflow)
        self.send = self.writer.send  # the fan-out calls this once per delivery: no extra layer
        self._closing = False

    def _overflow(self) -> None:
        self.close_soon(CLOSE_POLICY, "send queue overflow: client too slow")

    def refused(self, error_args: dict[str, Any]) -> None:
        self.refusal = error_args

    def close_soon(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        self.writer.closed = True
        asyncio.get_running_loop().create_task(self.ws.close(code=code, message=reason.encode()[:120]))


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
            app.router.add_get(endpoint.path, functools.partial(self.serve, endpoint=endpoint))

    async def serve(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        """Upgrade, connect to the namespace, then relay frames until the socket closes.

        The relay loop is inline, not a helper coroutine: every idle connection keeps this
        frame alive, and at thousands of connections each extra frame shows in memory."""
        if not origins.allowed(request, self.settings.allowed_origins):
            raise web.HTTPForbidden(text="origin not allowed")
        s = self.settings
        ws = web.WebSocketResponse(heartbeat=s.heartbeat, protocols=SUBPROTOCOL_MARKERS,
                                   max_msg_size=s.max_message_bytes)
        await ws.prepare(request)
        peer = RawPeer(ws, request, endpoint.codec,
                       ConnectionGuard(s.rate_limit_per_second, s.rate_limit_burst, s.rate_limit_close_after),
                       s.send_queue_limit)
        namespace, reason = endpoint.namespace, "client disconnect"
        try:
            sid = await self.server.connect_raw(peer, namespace, endpoint.auth_from_path(request))
            if sid is None:
                await self._refuse(peer, endpoint)
                return ws
            while (msg := await ws.receive()).type not in CLOSING_TYPES:
                if msg.type is WSMsgType.TEXT:
                    await self._on_text(peer, namespace, sid, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await self.server.refuse(sid, namespace, PonteError(
                        VALIDATION_ERROR, "binary frames are not supported: send JSON text"), "(binary)")
            reason = "transport close" if ws.close_code != CLOSE_NORMAL else "client disconnect"
        except Exception:  # noqa: BLE001 - never a traceback to the client, never a dead process
            log.exception("raw connection %s failed", peer.eio_sid)
            reason = "server error"
            await ws.close(code=1011, message=b"internal server error")
        finally:
            await self.server.disconnect_raw(peer, reason)
        return ws

    async def _on_text(self, peer: RawPeer, namespace: str, sid: str, text: str) -> None:
        verdict = peer.guard.admit()
        if verdict != ADMIT:
            await self.server.refuse(sid, namespace, rate_error(peer.guard, verdict == ABUSE), "(rate_limited)")
            return
        try:
            inbound = peer.codec.decode(text)
        except DecodeError as exc:
            await self.server.refuse(sid, namespace, PonteError(
                VALIDATION_ERROR, exc.message, {"campo": exc.field} if exc.field else {}), "(invalid)")
            return
        peer.form = inbound.form  # answer in the form the client used last
        await self.server.receive_raw(peer, namespace, inbound.event, inbound.data)

    async def _refuse(self, peer: RawPeer, endpoint: Endpoint) -> None:
        """Send the connect refusal as an error envelope, then close with its code."""
        refusal = peer.refusal or {"message": "Connection refused"}
        info: dict[str, Any] = refusal["data"] if isinstance(refusal.get("data"), dict) else {}
        handler = self.server.namespace_handlers[endpoint.namespace]
        error = PonteError(info.get("code", "AUTHENTICATION_ERROR"), refusal.get("message", ""),
                           info.get("details"), close=info.get("close", CLOSE_POLICY))
        event, payload = handler.render_error(error)
        await peer.ws.send_str(endpoint.codec.encode(event, payload, peer.form))
        await peer.ws.close(code=error.close or CLOSE_POLICY, message=error.message.encode()[:120])
