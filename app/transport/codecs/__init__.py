"""Pure codecs for the raw-WebSocket protocols: text in, (event, data) out, and back."""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import pydantic_core
from pydantic import BaseModel, ValidationError


# 1e999, or 309 digits in a row: the ways JSON text reaches a float too large to be finite. Three
# searches that each start with a literal or a run, several times faster than one alternation (which
# cost as much as parsing the message); a hit is only a hint, confirmed on the parsed value.
_EXPONENT, _EXPONENT_UPPER, _DIGITS = re.compile(r"e\+?\d{3}"), re.compile(r"E\+?\d{3}"), re.compile(r"\d{309}")
MAX_REQUEST_ID = 128


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


class BadText(DecodeError):
    """Well-formed JSON whose text UTF-8 cannot carry (a lone surrogate escape such as \\ud800)."""

    namespace = "/"  # where a Socket.IO packet carrying it was going (set by codecs.sio_packet)


class Codec(Protocol):
    """One documented protocol: its envelope both ways and its error message. A Socket.IO namespace
    speaks the protocol of its raw endpoint too (events, payloads and errors; Socket.IO frames them)."""

    default_form: str
    event_field: str  # the envelope key that names a message's event, for errors about it

    def decode(self, text: str) -> Inbound: ...

    def encode(self, event: str, data: Any, form: str, offset: str | None = None,
               extra: dict[str, Any] | None = None) -> str: ...

    def error(self, error: Any, request_id: str | None = None) -> tuple[str, dict[str, Any]]: ...


def message_id() -> str:
    """A unique message id."""
    return uuid.uuid4().hex


# what orjson refuses, written by the json module: UTF-8 as is, or ASCII with escapes (python-socketio's way)
_FALLBACK = {False: json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode,
             True: json.JSONEncoder(separators=(",", ":")).encode}


def dumps(obj: Any, ascii: bool = False) -> str:
    """Compact JSON, UTF-8 kept as is. orjson (a tenth of the json module's time on an envelope) writes
    what it can; the json module what orjson refuses (integers past 64 bits, keys that are not text, text
    UTF-8 cannot carry: with `ascii`, escaped), and raises TypeError for what neither can (bytes). NaN and
    infinities, which JSON has no words for, are written as null."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return _FALLBACK[ascii](obj)


def load_json(text: str | bytes) -> Any:
    """Parse strict JSON or raise DecodeError: no NaN or infinities, no lone surrogates (text that
    UTF-8 cannot carry back), at most 200 levels deep, integers of at most 4,300 digits."""
    try:
        obj = pydantic_core.from_json(text, allow_inf_nan=False)
    except TypeError:  # a str holding a lone surrogate itself (not from the wire: aiohttp decodes UTF-8)
        raise BadText("invalid text: a lone surrogate; text must be valid Unicode") from None
    except ValueError as exc:
        reason = str(exc)
        if "surrogate" in reason or "hex escape" in reason:
            raise BadText(f"invalid text: a lone surrogate in a \\u escape ({reason}); "
                          "text must be valid Unicode") from None
        raise DecodeError(f"invalid JSON: {reason}") from None
    if _may_be_huge(text if isinstance(text, str) else text.decode("utf-8", "replace")) and _infinite(obj):
        raise DecodeError("invalid JSON: a number too large for a float")
    return obj


def _may_be_huge(text: str) -> bool:
    return bool(_EXPONENT.search(text) or _EXPONENT_UPPER.search(text) or _DIGITS.search(text))


def _infinite(value: Any) -> bool:
    if isinstance(value, float):
        return value in (INFINITY, -INFINITY)
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return False
    return any(_infinite(item) for item in value)


INFINITY = float("inf")


def request_id_of(payload: Any) -> str | None:
    """The `request_id` a client sent, to echo in an answer: a string of at most 128 characters, or None."""
    value = payload.get("request_id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and len(value) <= MAX_REQUEST_ID else None


def answering(payload: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    """An answer's payload with the client's `request_id` when it sent one: never `request_id: null`."""
    return payload if request_id is None else {**payload, "request_id": request_id}


def load_object(text: str) -> dict[str, Any]:
    """Parse text as a JSON object or raise DecodeError."""
    obj = load_json(text)
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
