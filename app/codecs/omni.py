"""The Omni Keywords Finder envelope on /ws, in both forms its clients use."""
from __future__ import annotations

from typing import Any

from schemas.omni import EventEnvelope, TypeEnvelope

from . import DecodeError, Inbound, dumps, load_object, message_id, now_iso, validate

EVENT_FORM = "event"  # {"event", "data", "timestamp"}: the documented form
TYPE_FORM = "type"  # {"type", "data", "timestamp", "id"}: what the real web front end sends

default_form = EVENT_FORM


def decode(text: str) -> Inbound:
    """Decode one client message in either form."""
    obj = load_object(text)
    if "event" in obj:
        env = validate(EventEnvelope, obj)
        return Inbound(env.event, env.data, EVENT_FORM)  # type: ignore[attr-defined]
    if "type" in obj:
        env = validate(TypeEnvelope, obj)
        return Inbound(env.type, env.data, TYPE_FORM)  # type: ignore[attr-defined]
    raise DecodeError("event: field required", "event")


def encode(event: str, data: Any, form: str) -> str:
    """Encode one server message in the form the client used."""
    if form == TYPE_FORM:
        return dumps({"type": event, "data": data, "timestamp": now_iso(), "id": message_id()})
    return dumps({"event": event, "data": data, "timestamp": now_iso()})
