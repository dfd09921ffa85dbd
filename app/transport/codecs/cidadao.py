"""The Cidadão.AI envelope on /api/v1/ws/chat/* and /api/v1/ws/investigations/*."""
from __future__ import annotations

from typing import Any

from schemas.cidadao import Envelope

from ...clock import now_iso
from ...errors import PonteError

from . import Inbound, dumps, load_object, message_id, validate

FORM = "type"

default_form = FORM
event_field = "type"  # the envelope key that names a message's event
CIDADAO_CODES = {"RATE_LIMIT_ERROR": "RATE_LIMIT", "SYSTEM_ERROR": "INTERNAL_ERROR",
                 "TIMEOUT_ERROR": "TIMEOUT", "NETWORK_ERROR": "BACKEND_ERROR"}


def decode(text: str) -> Inbound:
    """Decode one client message."""
    env = validate(Envelope, load_object(text))
    return Inbound(env.type, env.data, FORM)  # type: ignore[attr-defined]


def encode(event: str, data: Any, form: str = FORM, offset: str | None = None,
           extra: dict[str, Any] | None = None) -> str:
    """Encode one server message; every one carries a UTC timestamp and a unique id, and an event sent
    to a room its `offset` (connection-state recovery); `extra`: more top-level fields (a first
    message's `recovery`)."""
    message = {"type": event, "data": data, "timestamp": now_iso(), "id": message_id()}
    if offset is not None:
        message["offset"] = offset
    if extra:
        message.update(extra)
    return dumps(message)


def error(err: PonteError, request_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """`error` with code and message, as the Cidadão.AI document shows."""
    data: dict[str, Any] = {"code": CIDADAO_CODES.get(err.code, err.code), "message": err.message}
    if err.details:
        data["details"] = err.details
    return "error", data
