"""Pure codecs for the raw-WebSocket protocols: text in, (event, data) out, and back."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
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
    """The current UTC time as ISO 8601 with milliseconds and a Z suffix."""
    now = time.time()
    second = int(now)
    if second != _clock[0]:  # formatting the date once a second, not once a message
        _clock[0], _clock[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_clock[1]}.{int((now - second) * 1000):03d}Z"


_clock: list[Any] = [-1, ""]


def message_id() -> str:
    """A unique message id."""
    return uuid.uuid4().hex


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps builds one per call


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 kept as is."""
    return _encoder.encode(obj)


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
