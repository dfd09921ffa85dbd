"""The Socket.IO v5 packet grammar, strictly: text in, one packet or a PacketError out (no I/O).

`<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]`, as socket.io-parser writes it.
python-socketio's own decoder accepts anything and fails later, with a traceback; Ponte decodes
with this first and closes a connection that sends what no Socket.IO client would.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import BadText, DecodeError, load_json

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
NAMESPACE = re.compile(r"/[A-Za-z0-9_.~-]{0,127}")
MAX_ACK_DIGITS = 15  # ids the JS client can count to (below 2**53)
MAX_ATTACHMENTS = 16


class PacketError(Exception):
    """Not a packet a Socket.IO client sends; the message says why (safe to log, no payload)."""


@dataclass(slots=True)  # not frozen: one is built per message, and a frozen one builds slower
class Packet:
    """One decoded client packet."""

    type: int
    namespace: str
    id: int | None
    data: Any
    attachments: int = 0


def decode(text: str) -> Packet:
    """Decode one client packet or raise PacketError (grammar) or DecodeError (its JSON)."""
    if not text or not "0" <= text[0] <= "6":
        raise PacketError("unknown packet type")
    kind, pos = int(text[0]), 1
    attachments = 0
    if kind in (BINARY_EVENT, BINARY_ACK):
        attachments, pos = _digits_then(text, pos, "-", 2)
        if not 1 <= attachments <= MAX_ATTACHMENTS:
            raise PacketError("bad attachment count")
    namespace = "/"
    if text.startswith("/", pos):
        end = text.find(",", pos)
        namespace, pos = (text[pos:], len(text)) if end < 0 else (text[pos:end], end + 1)
        if not NAMESPACE.fullmatch(namespace):
            raise PacketError("bad namespace")
    ack_id, pos = _ack_id(text, pos)
    try:
        data = load_json(text[pos:]) if pos < len(text) else None
    except BadText as exc:
        exc.namespace = namespace
        raise
    packet = Packet(kind, namespace, ack_id, data, attachments)
    _check_shape(packet)
    return packet


def _digits_then(text: str, pos: int, stop: str, most: int) -> tuple[int, int]:
    end = pos
    while end < len(text) and "0" <= text[end] <= "9" and end - pos <= most:  # not isdigit(): "²" is one
        end += 1
    if end == pos or end - pos > most or not text.startswith(stop, end):
        raise PacketError("bad attachment count")
    return int(text[pos:end]), end + 1


def _ack_id(text: str, pos: int) -> tuple[int | None, int]:
    end = pos
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
        if end - pos > MAX_ACK_DIGITS:
            raise PacketError("ack id too long")
    return (int(text[pos:end]) if end > pos else None), end


def _check_shape(packet: Packet) -> None:
    """What each packet type may carry, from a client."""
    kind, data = packet.type, packet.data
    if kind == CONNECT and not (data is None or isinstance(data, dict)) or kind == CONNECT and packet.id is not None:
        raise PacketError("CONNECT carries an object or nothing")
    if kind == DISCONNECT and (data is not None or packet.id is not None):
        raise PacketError("DISCONNECT carries nothing")
    if kind in (EVENT, BINARY_EVENT) and not (isinstance(data, list) and data and isinstance(data[0], str)):
        raise PacketError("EVENT carries a list that starts with the event name")
    if kind in (ACK, BINARY_ACK) and (packet.id is None or not isinstance(data, list)):
        raise PacketError("ACK carries an id and a list")
    if kind == CONNECT_ERROR:
        raise PacketError("CONNECT_ERROR is sent by servers only")


__all__ = ["BadText", "DecodeError", "Packet", "PacketError", "decode"]
