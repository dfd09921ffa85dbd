"""`POST /api/v1/dev/token`: a development token for a name, for the console's sign-in button.

The route exists only while the server checks tokens with its development secret (no `JWT_SECRET`:
`settings.dev_secret_path` is set), which settings refuse where `DYNO` or `PONTE_ENV=production` is set;
with a configured key it is not registered at all (404). Body `{"sub", "scopes"?}`, JSON only (a
cross-site form cannot send it without a preflight that fails); an `Origin` must be allowed as for the
WebSocket endpoints. The user scopes go to whoever reaches the port; `admin` and `publish` only to a
client on a loopback address that came through no proxy, since those scopes see and steer everyone's
work. Rate-limited per client address (RATE per minute, 429 past it). Tokens live one hour.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict, deque
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .auth import USER_SCOPES, issue_token
from .errors import PERMISSION_ERROR, RATE_LIMIT_ERROR
from .keys import SETTINGS_KEY
from .origins import allowed
from .publish import Refused, read_body
from .transport.codecs import DecodeError, describe, load_json

log = logging.getLogger("ponte.console")

TTL = 3600
RATE = 10  # tokens per client address per minute
MAX_ADDRESSES = 1024  # addresses remembered by the limiter (the oldest are forgotten)
PRIVILEGED = frozenset({"admin", "publish"})
Scope = Literal["executions", "notifications", "monitoring", "chat", "investigations", "publish", "admin"]


class DevTokenRequest(BaseModel):
    """Who the token is for, and which scopes (the user scopes when left out)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sub: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    scopes: list[Scope] | None = Field(default=None, max_length=7)


class Window:
    """At most `rate` events per address in any minute."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.seen: OrderedDict[str, deque[float]] = OrderedDict()

    def take(self, address: str) -> bool:
        now = time.monotonic()
        times = self.seen.pop(address, None) or deque()
        while times and times[0] <= now - 60:
            times.popleft()
        self.seen[address] = times
        if len(self.seen) > MAX_ADDRESSES:
            self.seen.popitem(last=False)
        if len(times) >= self.rate:
            return False
        times.append(now)
        return True


WINDOW_KEY = web.AppKey("dev_token_window", Window)


def add_routes(app: web.Application) -> None:
    """Register the route, only on the development secret."""
    if app[SETTINGS_KEY].dev_secret_path:
        app[WINDOW_KEY] = Window(RATE)
        app.router.add_post("/api/v1/dev/token", mint)


def local(request: web.Request) -> bool:
    """A client on this machine that came through no proxy."""
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def mint(request: web.Request) -> web.Response:
    """`{token, sub, scopes, expires_in}` signed with the development secret."""
    settings = request.app[SETTINGS_KEY]
    try:
        if not allowed(request, settings.allowed_origins):
            raise Refused("origem não permitida", None, 403, PERMISSION_ERROR)
        if request.content_type != "application/json":
            raise Refused("envie JSON (Content-Type: application/json)", None, 415)
        if not request.app[WINDOW_KEY].take(request.remote or "?"):
            raise Refused(f"no máximo {RATE} tokens por minuto", None, 429, RATE_LIMIT_ERROR)
        asked = parse(await read_body(request))
        scopes = tuple(dict.fromkeys(asked.scopes)) if asked.scopes is not None else USER_SCOPES
        if PRIVILEGED & set(scopes) and not local(request):
            raise Refused("os escopos admin e publish só para um cliente nesta máquina", "scopes", 403,
                          PERMISSION_ERROR)
    except Refused as exc:
        return exc.response()
    log.info("development token issued: sub=%s scopes=%s", asked.sub, " ".join(scopes))
    return web.json_response({"token": issue_token(settings, asked.sub, scopes, TTL), "sub": asked.sub,
                              "scopes": list(scopes), "expires_in": TTL})


def parse(body: bytes) -> DevTokenRequest:
    try:
        return DevTokenRequest.model_validate(load_json(body))
    except DecodeError as exc:
        raise Refused(f"body must be JSON: {exc.message}") from None
    except ValidationError as exc:
        raise Refused(*describe(exc)) from None
