"""`POST /api/v1/publish`: backends with the `publish` scope emit to a room or a user, through the one emit path."""
from __future__ import annotations

import logging
import uuid
from typing import Any, Literal, Mapping

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas import cidadao, omni

from .audit import AUDIT
from .auth import AuthError, Principal, TokenVerifier
from .transport.codecs import DecodeError, describe, load_json
from .errors import AUTHENTICATION_ERROR, PERMISSION_ERROR, VALIDATION_ERROR
from .keys import SETTINGS_KEY, SIO_KEY

log = logging.getLogger("ponte.publish")

MAX_BODY = 1024 * 1024
MAX_ITEMS = 100
# Each namespace's documented server events; the keys are factory.NAMESPACES' (a test checks it).
DOCUMENTED: dict[str, Mapping[str, type[BaseModel]]] = {
    "/omni": omni.OUTBOUND, "/chat": cidadao.OUTBOUND, "/investigations": cidadao.OUTBOUND}
VERIFIER_KEY = web.AppKey("publish_verifier", TokenVerifier)
# Socket.IO's lifecycle events: a client receiving one would take it for its own connect or disconnect.
RESERVED = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})


class Publication(BaseModel):
    """One event to emit: the namespace, a room or a user, the event name and its data."""

    model_config = ConfigDict(extra="forbid", strict=True)

    namespace: Literal["/omni", "/chat", "/investigations"]
    room: str | None = Field(default=None, min_length=1, max_length=200)
    user: str | None = Field(default=None, min_length=1, max_length=128)  # a token's `sub`
    event: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    data: dict[str, Any] = Field(default_factory=dict)

    def target(self) -> str:
        """The room to emit to: `room` as given, or the user's `user:{user}`."""
        return self.room if self.room is not None else f"user:{self.user}"


class Refused(Exception):
    """A request answered with an error: HTTP status, error code, message and the field at fault."""

    def __init__(self, message: str, field: str | None = None, status: int = 400,
                 code: str = VALIDATION_ERROR) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def response(self) -> web.Response:
        """`{"error": {"code", "message", "field"?}}` with the status (and a challenge on 401)."""
        error = {"code": self.code, "message": self.message, **({"field": self.field} if self.field else {})}
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return web.json_response({"error": error}, status=self.status, headers=headers)


def dotted(prefix: str, name: str) -> str:
    """A dotted field name under an optional prefix (an item's index)."""
    return f"{prefix}.{name}" if prefix else name


def add_routes(app: web.Application) -> None:
    """Register `POST /api/v1/publish`, with one token verifier for the application."""
    app[VERIFIER_KEY] = TokenVerifier(app[SETTINGS_KEY])
    app.router.add_post("/api/v1/publish", publish)


async def publish(request: web.Request) -> web.Response:
    """Authenticate, read and validate every item, then emit them in order: 202 with their ids."""
    principal: Principal | None = None
    try:
        principal = authenticate(request)
        if not principal.allows("publish"):
            raise Refused("o escopo 'publish' é necessário para publicar", None, 403, PERMISSION_ERROR)
        body = parse(await read_body(request))
        items = [check(obj, prefix) for obj, prefix in entries(body)]
    except Refused as exc:
        AUDIT.published(principal.sub if principal else None, request.remote, [], exc.code)
        return exc.response()
    sio = request.app[SIO_KEY]
    ids = []
    for item in items:
        ids.append(uuid.uuid4().hex)
        await sio.emit(item.event, item.data, room=item.target(), namespace=item.namespace)
        log.info("published %s %s to %s %s by %s", ids[-1], item.event, item.namespace, item.target(), principal.sub)
    AUDIT.published(principal.sub, request.remote, [
        {"id": id_, "event": item.event, "namespace": item.namespace, "to": item.target()}
        for id_, item in zip(ids, items)])
    return web.json_response({"ids": ids} if isinstance(body, list) else {"id": ids[0]}, status=202)


def authenticate(request: web.Request) -> Principal:
    """The principal of the `Authorization: Bearer` token (never the query string: it reaches logs)."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token:
        raise Refused("Token de autenticação ausente: envie Authorization: Bearer", None, 401, AUTHENTICATION_ERROR)
    try:
        principal = request.app[VERIFIER_KEY].verify(token)
    except AuthError as exc:
        raise Refused(exc.message, None, 401, AUTHENTICATION_ERROR) from None
    return principal


async def read_body(request: web.Request) -> bytes:
    """The request body, refused with 413 past MAX_BODY whether or not it declares its length."""
    too_large = Refused(f"body over {MAX_BODY} bytes", None, 413)
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse(body: bytes) -> Any:
    """The body as strict JSON (no NaN, infinities or lone surrogates: app.codecs.load_json) or a 400."""
    try:
        return load_json(body)
    except DecodeError as exc:
        raise Refused(f"body must be JSON, an object or a list of objects: {exc.message}") from None


def entries(body: Any) -> list[tuple[Any, str]]:
    """Each item with its field prefix: `""` for a lone object, its index in a list."""
    if isinstance(body, dict):
        return [(body, "")]
    if not isinstance(body, list):
        raise Refused("body must be a JSON object, or a list of objects")
    if not 1 <= len(body) <= MAX_ITEMS:
        raise Refused(f"a list must hold 1 to {MAX_ITEMS} objects, not {len(body)}")
    return [(obj, str(index)) for index, obj in enumerate(body)]


def check(obj: Any, prefix: str) -> Publication:
    """Validate one item, and its data against the event's schema when the event is documented."""
    if not isinstance(obj, dict):
        raise Refused(f"{prefix}: must be a JSON object", prefix)
    try:
        item = Publication.model_validate(obj)
    except ValidationError as exc:
        raise Refused(*describe(exc, prefix)) from None
    if (item.room is None) == (item.user is None):
        field = dotted(prefix, "user" if item.room else "room")
        raise Refused(f"{field}: give exactly one of room or user", field)
    if item.event in RESERVED:
        raise Refused(f"{dotted(prefix, 'event')}: '{item.event}' is Socket.IO's own", dotted(prefix, "event"))
    model = DOCUMENTED[item.namespace].get(item.event)
    if model is not None:
        try:
            model.model_validate(item.data, strict=True)
        except ValidationError as exc:
            raise Refused(*describe(exc, dotted(prefix, "data"))) from None
    return item
