"""`GET /api/v1/presence/{namespace}/{room}`: the connections and users in a room, on every instance.

Bearer token only (as `POST /api/v1/publish`). A user may ask about a room one of their own connections is
in; a token with the `admin` scope about any room; anyone else gets 404 NOT_FOUND, the same answer whether
the room exists or not.
"""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import NOT_AVAILABLE
from .keys import GATEWAY_KEY
from .presence import PresenceUnavailable
from .publish import Refused, authenticate
from .transport.codecs import describe

NOT_FOUND = "NOT_FOUND"


class RoomQuery(BaseModel):
    """The path's parts: a namespace without its slash, and a room name."""

    model_config = ConfigDict(extra="forbid", strict=True)

    namespace: Literal["omni", "chat", "investigations"]
    room: str = Field(min_length=1, max_length=200, pattern=r"^[!-~]+$")  # printable ASCII, no space


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/presence/{namespace}/{room}", presence)


async def presence(request: web.Request) -> web.Response:
    """Who is in the room: `{namespace, room, connections: [{sid, user, transport, instance}], users}`."""
    try:
        principal = authenticate(request)
        try:
            query = RoomQuery.model_validate(dict(request.match_info))
        except ValidationError as exc:
            raise Refused(*describe(exc)) from None
        try:
            listed = await request.app[GATEWAY_KEY].services["presence"].connections(f"/{query.namespace}", query.room)
        except PresenceUnavailable:
            raise Refused("presença indisponível: Redis não respondeu", None, 503, NOT_AVAILABLE) from None
        if not principal.allows("admin") and not any(c["user"] == principal.sub for c in listed):
            raise Refused("sala não encontrada", None, 404, NOT_FOUND)
    except Refused as exc:
        return exc.response()
    users = sorted({c["user"] for c in listed if c["user"] is not None})
    return web.json_response({"namespace": query.namespace, "room": query.room, "connections": listed,
                              "users": users})
