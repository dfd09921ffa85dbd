"""The Cidadão.AI envelope on /api/v1/ws/chat/* and /api/v1/ws/investigations/*."""
from __future__ import annotations

from typing import Any

from schemas.cidadao import Envelope

from . import Inbound, dumps, load_object, message_id, now_iso, validate

FORM = "type"

default_form = FORM


def decode(text: str) -> Inbound:
    """Decode one client message."""
    env = validate(Envelope, load_object(text))
    return Inbound(env.type, env.data, FORM)  # type: ignore[attr-defined]


def encode(event: str, data: Any, form: str = FORM) -> str:
    """Encode one server message; every one carries a UTC timestamp and a unique id."""
    return dumps({"type": event, "data": data, "timestamp": now_iso(), "id": message_id()})
