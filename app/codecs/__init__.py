"""Pure codecs for the raw-WebSocket protocols: text in, (event, data) out, and back."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True, slots=True)
class Inbound:
    """One decoded client message: its event name, payload and the envelope form it used."""

    event: str
    data: dict[str, Any]
    form: str


class DecodeError(Exception):
    """The text is not a valid envelope; `field` names what was wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Codec(Protocol):
    """What the raw bridge needs from a protocol."""

    default_form: str

    def decode(self, text: str) -> Inbound: ...

    def encode(self, event: str, data: Any, form: str) -> str: ...


def now_iso() -> str:
    """The current UTC time as ISO 8601 with a Z suffix."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_id() -> str:
    """A unique message id."""
    return uuid.uuid4().hex


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 kept as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def load_object(text: str) -> dict[str, Any]:
    """Parse text as a JSON object or raise DecodeError."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise DecodeError("invalid JSON") from None
    if not isinstance(obj, dict):
        raise DecodeError("message must be a JSON object")
    return obj


def validate(model: type[BaseModel], obj: dict[str, Any], prefix: str = "") -> BaseModel:
    """Validate obj against model, turning the first error into a DecodeError naming the field."""
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise DecodeError(*describe(exc, prefix)) from None


def describe(exc: ValidationError, prefix: str = "") -> tuple[str, str]:
    """A one-line message and the dotted field name of a validation error's first problem."""
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    return f"{field or 'message'}: {err['msg']}", field
