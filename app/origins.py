"""The Origin check against cross-site WebSocket hijacking, shared by both transports."""
from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from .audit import AUDIT

REFUSED = web.RequestKey("ponte.origin_refused", bool)


def allowed(request: web.Request, allowed_origins: tuple[str, ...]) -> bool:
    """Exact matches from ALLOWED_ORIGINS, same-origin when it is empty, `*` for any."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser: nothing to hijack
    if "*" in allowed_origins:
        return True
    return origin in (allowed_origins or (own_origin(request),))


def own_origin(request: web.Request) -> str:
    """This server's origin as the browser sees it (honouring X-Forwarded-Proto behind a proxy)."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    return f"{scheme}://{request.host}"


ORIGINS: dict[str, dict[str, str]] = {}  # shared params dicts, one per origin: idle clients stay small
MAX_ORIGINS = 64


def origin_params(request: web.Request) -> dict[str, str]:
    """`{"origin": own_origin(request)}`, one dict shared by every client of that origin (never mutated)."""
    origin = own_origin(request)
    params = ORIGINS.get(origin)
    if params is None:
        params = {"origin": origin}
        if len(ORIGINS) < MAX_ORIGINS:
            ORIGINS[origin] = params
    return params


def socketio_policy(allowed_origins: tuple[str, ...]) -> Callable[[str, dict[str, Any]], bool]:
    """The same policy as a python-engineio `cors_allowed_origins` callable."""
    def check(origin: str, environ: dict[str, Any]) -> bool:
        request = environ["aiohttp.request"]
        if allowed(request, allowed_origins):
            return True
        if REFUSED not in request:  # Engine.IO asks twice per request (check, then CORS headers)
            request[REFUSED] = True
            AUDIT.refused("origin not allowed", request.remote, origin, "(socket.io)", "ORIGIN_NOT_ALLOWED")
        return False
    return check
