"""An event as the wire formats carry it: its arguments, what a raw envelope's `data` is, its encoding
for one wire format, and its WebSocket frame, built once for all recipients of that format."""
from __future__ import annotations

from typing import Any

from .codecs import dumps
from .writer import text_frame


def args_of(data: Any) -> list[Any]:
    """An emit's data as its event's arguments (python-socketio's convention: a tuple is several)."""
    return list(data) if isinstance(data, tuple) else [] if data is None else [data]


def payload_of(args: list[Any]) -> Any:
    """What a raw envelope's `data` and a per-recipient filter see of an event's arguments."""
    return args[0] if len(args) == 1 else args


def encode_for(namespace: str, peer: Any, form: str, event: str, args: list[Any], offset: str | None) -> str | None:
    """An event as one wire format writes it: a raw peer's envelope (with `offset` at its top), or a
    Socket.IO EVENT packet (form "+": with the offset as last argument)."""
    if peer is not None:
        return peer.codec.encode(event, payload_of(args), form, offset)  # type: ignore[no-any-return]
    return socketio_event(namespace, event, [*args, offset] if form == "+" and offset else args)


def framed(text: str) -> tuple[str, bytes | None]:
    """A message and its WebSocket frame, built once for all its recipients (None: text that UTF-8
    cannot carry, which each recipient's send then refuses)."""
    try:
        return text, text_frame(text.encode())
    except UnicodeEncodeError:
        return text, None


def socketio_event(namespace: str, event: str, args: list[Any]) -> str | None:
    """An EVENT packet as Engine.IO message text (`42/ns,["event",...]`), or None when the data holds
    bytes (those travel as binary attachments, python-socketio's way)."""
    try:
        data = dumps([event, *args], ascii=True)
    except TypeError:
        return None
    return f"42{data}" if namespace == "/" else f"42{namespace},{data}"
