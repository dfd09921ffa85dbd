"""The HTTP layer's guard against slow and malformed requests, the one module that touches aiohttp's
server internals.

- Slow handshakes: aiohttp's own idle timer (`keepalive_timeout`, set to HANDSHAKE_TIMEOUT through
  `handler_args` in `create_app`) already closes a connection still waiting for a whole request line and
  headers, counted from the accept or from the previous response; a request whose headers arrived is
  never cut by it. Here a connection it cuts half-way (or that never sent a request) gets an audit line.
- Unparseable requests (a request or header line over 8,190 bytes, garbage): a bare 431 or 400 and one
  audit line, instead of aiohttp's "Error handling request" traceback and a body that both quote the
  first 100 bytes of the offending line, i.e. part of a `?token=` or `Authorization` header.

aiohttp internals relied on (aiohttp 3.14; tests/functional/test_http_guard.py pins the behaviour):
- `web.Application._make_handler(**kwargs) -> web.Server`: what `AppRunner` (hence `web.run_app` and
  pytest-aiohttp's test servers) calls for the protocol factory; `install` wraps it on one application.
- `web.Server`'s constructor, its `request_handler`, `request_factory`, `handler_cancellation`, `_loop`
  and `_kwargs` attributes, and `__call__` building one `RequestHandler` per accepted connection.
- `RequestHandler.handle_error(request, status, exc, message)`: called with the parser's
  `HttpProcessingError` (`LineTooLong` for an oversized line) for a request that could not be parsed.
- `RequestHandler._process_keepalive()`: the idle timer's callback; it closes the transport (setting
  `transport` to None) only while no request is being handled or queued.
- `RequestHandler._request_count`: how many requests were parsed on the connection so far.
- `RequestHandler._messages` (a deque of `(RawRequestMessage, payload)` waiting for their handler) and
  `_parser` (the HTTP parser, None once the connection is lost, unused once it is upgraded); a request's
  `_message`, `_headers`, `_rel_url`, `_cache` and `_protocol`: what `shed` and `data_received` trim.

A WebSocket's upgrade request lives as long as the connection: aiohttp's handler task holds the request
and the parsed message until the socket closes. `shed` drops from it what a connected socket no longer
needs, and no request keeps its raw header bytes, which nothing here reads.
"""
from __future__ import annotations

import asyncio
import gc
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_parser import RawRequestMessage
from multidict import CIMultiDict, CIMultiDictProxy
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from .audit import AUDIT
from .errors import TIMEOUT_ERROR, VALIDATION_ERROR


def install(app: web.Application) -> None:
    """Serve `app` through GuardedServer, however it is run (web.run_app, AppRunner, test servers)."""
    make_handler = app._make_handler

    def make_guarded_handler(**kwargs: Any) -> web.Server:
        server = make_handler(**kwargs)
        return GuardedServer(server.request_handler, request_factory=server.request_factory,
                             handler_cancellation=server.handler_cancellation, loop=server._loop,
                             **server._kwargs)

    app._make_handler = make_guarded_handler  # type: ignore[method-assign]


def refusal(exc: HttpProcessingError) -> tuple[int, str]:
    """The status and audit reason for a request the parser refused, from its type alone."""
    if isinstance(exc, LineTooLong):
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request header too large"
    return HTTPStatus.BAD_REQUEST, "malformed request"


def peer_ip(peername: Any) -> str | None:
    """The address part of a transport's peername (a tuple for TCP, a path or None otherwise)."""
    return str(peername[0]) if isinstance(peername, tuple) else None


class GuardedServer(web.Server):
    """aiohttp's protocol factory, making a GuardedRequestHandler per connection."""

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP protocol that refuses unparseable requests quietly and audits slow ones it drops."""

    __slots__ = ("_last_data",)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._last_data = self._loop.time()
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        super().data_received(data)
        waiting = self._messages
        for i, (message, payload) in enumerate(waiting):  # parsed, waiting for their handler
            if isinstance(message, RawRequestMessage) and message.raw_headers:
                waiting[i] = message._replace(raw_headers=()), payload  # bytes nothing here reads

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> StreamResponse:
        """A request the parser refused (aiohttp passes its error with a 400): a bare 4xx and an audit
        line, never the offending bytes. Errors raised by a handler (500) are left to aiohttp."""
        if status != HTTPStatus.BAD_REQUEST or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        code, reason = refusal(exc)
        AUDIT.refused(reason, peer_ip(self.peername), None, None, VALIDATION_ERROR)
        response = web.Response(status=code, text=f"{code} {HTTPStatus(code).phrase}")
        response.force_close()
        return response

    def _process_keepalive(self) -> None:
        """aiohttp's idle timer; a request it cuts off unfinished is audited as a handshake timeout."""
        ip, was_open = peer_ip(self.peername), self.transport is not None
        super()._process_keepalive()
        if was_open and self.transport is None and self._unfinished():
            AUDIT.refused("handshake timeout", ip, None, None, TIMEOUT_ERROR)

    def _unfinished(self) -> bool:
        """Whether the connection never sent a whole request, or sent part of one since the last response
        (the timer fires keepalive_timeout after that response, so later bytes belong to a new request)."""
        return self._request_count == 0 or self._last_data > self._loop.time() - self.keepalive_timeout


NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def shed(request: web.Request, headers: tuple[str, ...] = (), query: bool = False) -> None:
    """Drop what a connected WebSocket's upgrade request no longer needs: every header but `headers`,
    the query string unless `query` (a raw client's token goes with it), aiohttp's cached properties
    but the peer's address, and the connection's HTTP parser. The parsed message itself is still held
    by aiohttp's handler coroutine, so its header table is emptied in place (found as the one referent
    of its read-only proxy)."""
    message = request._message
    kept = CIMultiDictProxy(CIMultiDict(
        (name, value) for name in headers for value in message.headers.getall(name, ()))) if headers else NO_HEADERS
    url = request.rel_url if query else request.rel_url.with_query(None)
    remote = request.remote
    for table in gc.get_referents(message.headers):
        if isinstance(table, CIMultiDict):
            table.clear()
    request._message = message._replace(headers=kept, url=url)
    request._headers = kept
    request._rel_url = url
    request._cache = {"remote": remote}
    if request._protocol is not None:
        request._protocol._parser = None
