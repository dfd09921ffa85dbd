"""The namespace every Ponte handler builds on: auth at the handshake, validation before any
handler runs, scopes per event, and errors in the client's own protocol."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from pydantic import BaseModel

from app.auth import AuthError, Principal, find_token
from app.transport.codecs import DecodeError, request_id_of, validate
from app.errors import (AUTHENTICATION_ERROR, CLOSE_OVERLOADED, CLOSE_POLICY, NOT_AVAILABLE,
                        PERMISSION_ERROR, SERVER_OVERLOADED, SYSTEM_ERROR, VALIDATION_ERROR,
                        PonteError)
from app.gateway import Gateway
from app.transport.namespace import Namespace, Recovery, Refused

log = logging.getLogger("ponte.handlers")
connections_log = logging.getLogger("ponte.connections")  # one line per connection accepted, one per closed
NO_PARAMS: dict[str, str] = {}  # shared by every client of a namespace without path ids; never mutated


@dataclass(slots=True)
class Client:
    """One connection to a namespace, whichever transport it uses."""

    principal: Principal
    params: dict[str, str] = field(default_factory=dict)
    transport: str = "socketio"  # for metrics and the connection log only: handlers never look at it
    state: dict[str, Any] = field(default_factory=dict)
    since: float = field(default_factory=time.monotonic)


class PonteNamespace(Namespace):
    """Base of the Omni, chat and investigations namespaces."""

    inbound: ClassVar[Mapping[str, type[BaseModel]]] = {}
    scopes: ClassVar[Mapping[str, str]] = {}
    # Events too frequent and harmless for an audit line each (errors are audited whatever the event).
    routine: ClassVar[frozenset[str]] = frozenset()
    auth_required: ClassVar[bool] = True
    params: ClassVar[tuple[str, ...]] = ()  # ids a client gives in its path or handshake

    def __init__(self, namespace: str, gateway: Gateway) -> None:
        super().__init__(namespace)
        self.gateway = gateway
        self.clients: dict[str, Client] = {}

    # -- connection lifecycle --------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        auth = auth if isinstance(auth, dict) else {}
        request = environ["aiohttp.request"]
        try:
            client = self._handshake(request, auth)
            client.transport = "raw" if environ.get("ponte.raw") else "socketio"
            await self.authorize(sid, client)
            if self.gateway.connections >= self.gateway.settings.max_connections:
                raise PonteError(SERVER_OVERLOADED, "Servidor sobrecarregado", close=CLOSE_OVERLOADED)
        except PonteError as exc:
            if self.gateway.audit is not None:
                self.gateway.audit.refused(exc.message, request.remote, request.headers.get("Origin"),
                                           self.namespace, exc.code)
            raise Refused(
                exc.message, {"code": exc.code, "close": exc.close or CLOSE_POLICY, "details": exc.details})
        self.gateway.connections += 1
        self.clients[sid] = client
        self.server.admitted(sid, self.namespace, _user(client), client.principal.sub)
        connections_log.info("connection accepted: %s %s user=%s", self.namespace, client.transport, _who(client))
        if self.gateway.metrics is not None:
            self.gateway.metrics.connected(self.namespace, client.transport, _user(client))
        if not client.principal.anonymous:
            await self.enter_room(sid, f"user:{client.principal.sub}")  # what backends publish to
        await self.joined(sid, client)  # then the transport confirms the connect and calls `greet`

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        client = self.clients.pop(sid, None)
        self.server.departed(sid, self.namespace)
        if client is not None:
            self.gateway.connections -= 1
            connections_log.info("connection closed: %s %s user=%s (%s) after %.2fs", self.namespace, client.transport,
                                 _who(client), reason or "unknown reason", time.monotonic() - client.since)
            if self.gateway.metrics is not None:
                self.gateway.metrics.disconnected(self.namespace, client.transport, _user(client))
            await self.left(sid, client)

    def _handshake(self, request: Any, auth: dict[str, Any]) -> Client:
        token = find_token(request.headers, request.query, auth)
        params = {name: str(auth.get(name) or request.query.get(name) or "") for name in self.params} or NO_PARAMS
        if token is None:
            if self.auth_required:
                raise PonteError(AUTHENTICATION_ERROR, "Token de autenticação ausente")
            return Client(self.anonymous(), params)
        try:
            return Client(self.gateway.verifier.verify(token), params)
        except AuthError as exc:
            raise PonteError(AUTHENTICATION_ERROR, exc.message, exc.details) from None

    def identify(self, environ: dict[str, Any], auth: Any) -> str | None:
        """Who a client coming back for its session is: its token's user, None without a token where
        tokens are optional; an invalid token raises (no session goes back to it)."""
        principal = self._handshake(environ["aiohttp.request"], auth if isinstance(auth, dict) else {}).principal
        return None if principal.anonymous else principal.sub

    def identity(self, sid: str) -> str | None:
        client = self.clients.get(sid)
        return None if client is None or client.principal.anonymous else client.principal.sub

    async def greet(self, sid: str, recovery: Recovery | None) -> None:
        client = self.clients.get(sid)
        if client is not None:
            await self.welcome(sid, client, recovery)

    def anonymous(self) -> Principal:
        """The principal of a client without a token (only where auth is optional)."""
        return Principal.anonymous_one()

    async def authorize(self, sid: str, client: Client) -> None:
        """Raise PonteError to refuse a connection after authentication (hook)."""

    async def joined(self, sid: str, client: Client) -> None:
        """Join the rooms a new client belongs in (hook)."""

    async def welcome(self, sid: str, client: Client, recovery: Recovery | None) -> None:
        """Greet a newly connected client (hook): its first message; the events it missed follow."""

    async def first_message(self, sid: str, client: Client, recovery: Recovery | None, event: str,
                            data: dict[str, Any]) -> None:
        """A connection's first message; to a raw client with its `recovery` and the offset it stands at
        (its `since` when it comes back) at the top of the envelope. A Socket.IO client has its pid from
        the CONNECT answer."""
        if recovery is not None and client.transport == "raw":
            return await self.hello(sid, event, data, recovery)
        await self.emit(event, data, to=sid)

    async def left(self, sid: str, client: Client) -> None:
        """Clean up after a client (hook)."""

    # -- messages ---------------------------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid, payload = args[0], args[1] if len(args) > 1 else None
        client = self.clients.get(sid)
        if client is None:
            return None
        request_id = request_id_of(payload)
        started = time.perf_counter()
        error: PonteError | None = None
        try:
            await self.dispatch(sid, client, event, payload)
        except PonteError as exc:
            error = exc
        except Exception:  # noqa: BLE001 - the client gets SYSTEM_ERROR, the server goes on
            log.exception("handler for %s failed", event)
            error = PonteError(SYSTEM_ERROR, "Erro interno do servidor")
        if error is not None:
            await self.send_error(sid, error, request_id)
        self.server.observe(sid, self.namespace, event, payload, time.perf_counter() - started, error,
                            event not in self.routine)
        return None

    async def dispatch(self, sid: str, client: Client, event: str, payload: Any) -> None:
        """Validate the payload for its event, check the scope, then call `on_<event>`."""
        model = self.inbound.get(event)
        if model is None:
            raise self.server.unknown_event(self.namespace, event)
        scope = self.scopes.get(event)
        if scope and not client.principal.allows(scope):
            raise PonteError(PERMISSION_ERROR, f"o escopo '{scope}' é necessário para {event}",
                             {"escopo": scope})
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise PonteError(VALIDATION_ERROR, "data: deve ser um objeto JSON", {"campo": "data"})
        try:
            data = validate(model, payload, "data")
        except DecodeError as exc:
            raise PonteError(VALIDATION_ERROR, exc.message, {"campo": exc.field}) from None
        handler = getattr(self, f"on_{event}", None)
        if handler is None:
            raise PonteError(NOT_AVAILABLE, f"{event} ainda não está disponível neste servidor",
                             {"evento": event})
        await handler(sid, client, data)

    def expired(self, now: float | None = None) -> list[str]:
        """The sids whose token has expired, allowing JWT_LEEWAY as the handshake did."""
        now = (time.time() if now is None else now) - self.gateway.settings.jwt_leeway
        return [sid for sid, c in self.clients.items()
                if c.principal.expires_at is not None and c.principal.expires_at <= now]


def _user(client: Client) -> str | None:
    return None if client.principal.anonymous else client.principal.sub


def _who(client: Client) -> str:
    """The user for the connection log: `anonymous`, or the token's subject on one printable line."""
    sub = _user(client)
    if sub is None:
        return "anonymous"
    return sub if sub.isprintable() and " " not in sub else ascii(sub)
