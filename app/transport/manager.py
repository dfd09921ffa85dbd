"""The client manager behind every emit: rooms hold Socket.IO and raw-WebSocket clients alike."""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Iterable

import socketio
from socketio import packet

from .writer import text_frame


class FanoutManager(socketio.AsyncManager):
    """A client manager that encodes an emit once per wire format and delivers without a task
    per recipient, and that knows each client's rooms (python-socketio scans every room of the
    namespace on each disconnect, which makes a mass disconnect quadratic)."""

    def __init__(self, send_queue_limit: int = 1024) -> None:
        super().__init__()
        self.send_queue_limit = send_queue_limit
        self._rooms_of: dict[str, list[Any]] = {}
        # (namespace, event) → keep(sid, data): per-recipient filters, e.g. notification preferences
        self.filters: dict[tuple[str, str], Callable[[str, Any], bool]] = {}
        # name → handler(payload): control messages shared by every instance (see `share`)
        self.controls: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}
        self.metrics: Any = None

    async def share(self, name: str, payload: dict[str, Any]) -> None:
        """Tell every instance (here: only this one) about a change, through `controls[name]`."""
        await self.controls[name](payload)

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        rooms = self._rooms_of.setdefault(sid, [])  # a few rooms each: a list is smaller than a set
        if room not in rooms:
            rooms.append(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get(sid)
        if rooms is not None and room in rooms:
            rooms.remove(room)

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self._rooms_of.get(sid, ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        for room in list(self._rooms_of.pop(sid, ())):
            super().basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:
        if callback is not None:  # acks: the stock path
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                      callback=callback, to=to, **kwargs)
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        room = to or room
        eio_sid = self.eio_sid_from_sid(room, namespace) if skip_sid is None and isinstance(room, str) else None
        if eio_sid is not None:  # a reply to one connection: no room to walk
            await self.deliver(namespace, ((room, eio_sid),), None, event, args)
        elif namespace in self.rooms:
            await self.deliver(namespace, self.get_participants(namespace, room), skip_sid, event, args)

    async def deliver(self, namespace: str, participants: Iterable[tuple[str, str]], skip_sid: Any, event: str,
                      args: list[Any]) -> None:
        """Hand one event to each of `participants` (sid, eio_sid), encoding and framing it at most once
        per wire format, and only for the formats its recipients use."""
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        raw_data = args[0] if len(args) == 1 else args
        encoded: dict[str, tuple[str, bytes | None] | None] = {}  # form ("": Socket.IO) → (text, frame)
        binary: Any = None  # the packet python-socketio sends when the data holds bytes
        server = self.server
        peers, writers = server.raw_peers, server.writers
        keep = self.filters.get((namespace, event))
        delivered = 0
        for sid, eio_sid in participants:
            if sid in skip or (keep is not None and not keep(sid, raw_data)):
                continue
            delivered += 1
            peer = peers.get(eio_sid)
            form = peer.form if peer is not None else ""
            if form not in encoded:
                text = peer.codec.encode(event, raw_data, form) if peer is not None else \
                    socketio_event(namespace, event, args)
                encoded[form] = None if text is None else framed(text)
            message = encoded[form]
            if message is None:  # bytes somewhere in the data: python-socketio's binary packets
                binary = binary or server.packet_class(packet.EVENT, namespace=namespace, data=[event, *args])
                await server._send_packet(eio_sid, binary)
                continue
            text, frame = message
            writer = peer if peer is not None else writers.get(eio_sid)
            if frame is None or writer is None or not writer.write_frame(frame):
                await (peer.send(text) if peer is not None else server.to_engineio(eio_sid, text))
        if self.metrics is not None and delivered:
            self.metrics.delivered(namespace, event, delivered)


def framed(text: str) -> tuple[str, bytes | None]:
    """A message and its WebSocket frame, built once for all its recipients (None: text that UTF-8
    cannot carry, which each recipient's send then refuses)."""
    try:
        return text, text_frame(text.encode())
    except UnicodeEncodeError:
        return text, None


_ascii_json = json.JSONEncoder(separators=(",", ":")).encode


def socketio_event(namespace: str, event: str, args: list[Any]) -> str | None:
    """An EVENT packet as Engine.IO message text (`42/ns,["event",...]`), or None when the data holds
    bytes (those travel as binary attachments, python-socketio's way)."""
    try:
        data = _ascii_json([event, *args])  # as python-socketio writes it: ASCII, escapes for the rest
    except TypeError:
        return None
    return f"42{data}" if namespace == "/" else f"42{namespace},{data}"
