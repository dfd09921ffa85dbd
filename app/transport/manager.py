"""The client manager behind every emit: rooms hold Socket.IO and raw-WebSocket clients alike."""
from __future__ import annotations

from collections import deque
from typing import Any, Awaitable, Callable, Iterable

import socketio
from bidict import ValueDuplicationError
from socketio import packet

from .events import args_of, encode_for, framed, payload_of
from .history import Entry, History, stream_order
from .writer import SocketWriter, write_each

RECENT = 4096  # entries delivered here lately, per namespace: what a connecting client may have missed meanwhile
DIRECT_MIN = 32  # members from which a room's raw peers are listed for its fan-outs (`Direct`)
Judge = Callable[[Any], Callable[[str], bool] | None]  # an event's data → who keeps it (None: every member)


class Direct:
    """A room's members here as its fan-outs write to them: the transports of its raw peers whose frames go
    to the transport as they are, by codec and form (one frame for each group, `write_each`), each with its
    peer (`peer_of`); and the others (Socket.IO clients, compressing peers) as (sid, eio_sid). Built on a
    room's first event and dropped when a member comes, goes or changes its form."""

    __slots__ = ("groups", "peer_of", "high", "others", "listed")

    def __init__(self, participants: Iterable[tuple[str, str]], raw_peers: dict[str, Any]) -> None:
        self.groups: dict[tuple[Any, str], list[Any]] = {}
        self.peer_of: dict[Any, SocketWriter] = {}
        self.others: list[tuple[str, str]] = []
        for sid, eio_sid in participants:
            peer = raw_peers.get(eio_sid)
            if peer is not None and peer.takes_frames():
                self.groups.setdefault((peer.codec, peer.form), []).append(peer.transport)
                self.peer_of[peer.transport] = peer
            else:
                self.others.append((sid, eio_sid))
        self.high = min((peer.high for peer in self.peer_of.values()), default=0)  # the lowest high-water mark
        self.listed = len(self.peer_of)  # the raw peers in `groups`


class FanoutManager(socketio.AsyncManager):
    """A client manager that encodes an emit once per wire format and delivers without a task
    per recipient, and that knows each client's rooms (python-socketio scans every room of the
    namespace on each disconnect, which makes a mass disconnect quadratic)."""

    def __init__(self, send_queue_limit: int = 1024) -> None:
        super().__init__()
        self.send_queue_limit = send_queue_limit
        self._rooms_of: dict[str, list[Any]] = {}
        # (namespace, event) → judge(data) → keep(sid) or None: per-recipient filters, e.g. notification preferences
        self.filters: dict[tuple[str, str], Judge] = {}
        self._direct: dict[tuple[str, Any], Direct] = {}  # (namespace, room) → its members, for a fan-out
        self.direct_min = DIRECT_MIN
        # name → handler(payload): control messages shared by every instance (see `share`)
        self.controls: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}
        self.metrics: Any = None
        # watch(namespace, sid, room, entered): every room a client enters or leaves, its own sid room
        # and python-socketio's None room aside (presence keeps its index with one)
        self.watchers: list[Callable[[str, str, Any, bool], None]] = []
        # connection-state recovery (history.py); None: events to rooms carry no offset and are not kept
        self.history: History | None = None
        self.recent: dict[str, deque[Entry]] = {}  # namespace → entries delivered here lately, in order
        self.frontier: dict[str, str] = {}  # namespace → the offset of the last entry delivered here
        self.floor: dict[str, str] = {}  # namespace → the offset just before `recent`'s first entry
        # sid → the offset it stands at, while it is being connected (or follows a room): room events
        # wait for its replay, which brings them in order
        self.recovering: dict[str, str] = {}
        # sid → how far its replay went (an offset as stream_order): in Redis an entry it brought may still be
        # on its way through this instance's subscription, and must not come a second time; forgotten once
        # this instance delivered past the furthest of them (`_replayed_max`)
        self.replayed: dict[str, tuple[int, int]] = {}
        self._replayed_max = (-1, -1)
        self.with_offsets: set[str] = set()  # Socket.IO clients whose events carry their offset last

    async def share(self, name: str, payload: dict[str, Any]) -> None:
        """Tell every instance (here: only this one) about a change, through `controls[name]`."""
        await self.controls[name](payload)

    async def pre_connect(self, eio_sid: str, namespace: str, sid: str | None = None) -> str | None:
        """python-socketio's pre_connect, with the sid given when a client gets its session back."""
        if sid is None:
            return await super().pre_connect(eio_sid, namespace)  # type: ignore[no-any-return]
        try:
            self.basic_enter_room(sid, namespace, None, eio_sid=eio_sid)
        except ValueDuplicationError:  # that sid is connected again already
            return None
        self.basic_enter_room(sid, namespace, sid, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(sid)
        return sid

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._direct.pop((namespace, room), None)
        rooms = self._rooms_of.setdefault(sid, [])  # a few rooms each: a list is smaller than a set
        if room not in rooms:
            rooms.append(room)
            if self.watchers and room is not None and room != sid:
                self._notify(namespace, sid, room, True)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        self._direct.pop((namespace, room), None)
        rooms = self._rooms_of.get(sid)
        if rooms is not None and room in rooms:
            rooms.remove(room)
            if self.watchers and room is not None and room != sid:
                self._notify(namespace, sid, room, False)

    def regroup(self, sid: str) -> None:
        """A raw peer now writes another form: its rooms' fan-outs must frame its events anew."""
        for key in [key for key in self._direct if key[1] in self._rooms_of.get(sid, ())]:
            del self._direct[key]

    def _notify(self, namespace: str, sid: str, room: Any, entered: bool) -> None:
        for watch in self.watchers:
            watch(namespace, sid, room, entered)

    def namespaces_of(self, eio_sid: str) -> list[str]:
        """The namespaces an Engine.IO (or raw) connection has a client in."""
        return [namespace for namespace in self.rooms if self.sid_from_eio_sid(eio_sid, namespace) is not None]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self._rooms_of.get(sid, ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        self.recovering.pop(sid, None)
        self.replayed.pop(sid, None)
        self.with_offsets.discard(sid)
        for room in list(self._rooms_of.pop(sid, ())):
            super().basic_leave_room(sid, namespace, room)
            self._direct.pop((namespace, room), None)
            if self.watchers and room is not None and room != sid:
                self._notify(namespace, sid, room, False)
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
        room = to or room
        if self.history is not None and self.local_sid(namespace, room, skip_sid) is None:
            await self.keep(namespace, room, skip_sid, event, args_of(data))
        else:
            await self.deliver_live(namespace, room, skip_sid, event, args_of(data))

    async def position(self, namespace: str) -> str:
        """The offset a new client starts from: everything after it is new to it."""
        assert self.history is not None
        return self.frontier.get(namespace) or self.history.head(namespace)

    def local_sid(self, namespace: str, room: Any, skip_sid: Any = None) -> str | None:
        """The Engine.IO id of this instance's connection when `room` names one (a reply, not kept)."""
        if skip_sid is None and isinstance(room, str):
            return self.eio_sid_from_sid(room, namespace)  # type: ignore[no-any-return]
        return None

    async def deliver_live(self, namespace: str, room: Any, skip_sid: Any, event: str, args: list[Any]) -> None:
        """Deliver here, without keeping it: to one connection (no room to walk), or to a room's members."""
        eio_sid = self.local_sid(namespace, room, skip_sid)
        if eio_sid is not None:
            await self.deliver(namespace, ((room, eio_sid),), None, event, args)
        elif namespace in self.rooms:
            await self.deliver_room(namespace, room, skip_sid, event, args)

    async def keep(self, namespace: str, room: Any, skip_sid: Any, event: str, args: list[Any]) -> None:
        """An event to rooms: kept in the history with its offset, then delivered here."""
        assert self.history is not None
        await self.deliver_entry(namespace, self.history.append(namespace, room, skip_sid, event, args))

    async def deliver_entry(self, namespace: str, entry: Entry) -> None:
        """Deliver a kept event to this instance's clients in its rooms, with its offset."""
        recent = self.recent.get(namespace)
        if recent is None:
            recent = self.recent[namespace] = deque(maxlen=RECENT)
            self.floor[namespace] = self.frontier.get(namespace, "")
        elif len(recent) == RECENT:
            self.floor[namespace] = recent[0].offset  # about to be dropped
        recent.append(entry)
        if namespace in self.rooms:
            await self.deliver_room(namespace, entry.room, entry.skip, entry.event, entry.args, entry.offset)
        # only now: a client that starts following from the frontier has had this entry already (set before
        # the delivery, one held back for its replay meanwhile would have been skipped by both)
        self.frontier[namespace] = entry.offset
        if self.replayed and stream_order(entry.offset) > self._replayed_max:
            self.replayed.clear()  # whatever any replay brought has come through by now: nothing to hold back

    def replayed_to(self, sid: str, offset: str) -> None:
        """A connection's replay went as far as `offset`: what comes live up to there it has had already."""
        until = self.replayed[sid] = stream_order(offset)
        self._replayed_max = max(self._replayed_max, until)

    def delivered_since(self, namespace: str, offset: str) -> list[Entry] | None:
        """The entries delivered here after `offset`, oldest first (what a client being connected was held
        back from); None if they are no longer all known."""
        recent = self.recent.get(namespace)
        if not recent:
            return []
        after = stream_order(offset)
        newer: list[Entry] = []
        for entry in reversed(recent):
            if stream_order(entry.offset) <= after:
                break
            newer.append(entry)
        else:
            if stream_order(self.floor.get(namespace, "")) > after:
                return None  # the deque starts after `offset`: some in between are gone
        newer.reverse()
        return newer

    async def deliver_room(self, namespace: str, room: Any, skip_sid: Any, event: str, args: list[Any],
                           offset: str | None = None) -> None:
        """Hand one event to a room's members here: through its `Direct` lists when it has them, else member
        by member."""
        direct = self._direct_for(namespace, room, skip_sid, event, args, offset)
        if direct is None or not await self._deliver_direct(namespace, direct, event, args, offset):
            await self.deliver(namespace, self.get_participants(namespace, room), skip_sid, event, args, offset)

    def _direct_for(self, namespace: str, room: Any, skip_sid: Any, event: str, args: list[Any],
                    offset: str | None) -> Direct | None:
        """A room's `Direct` lists (built on demand), when it has `direct_min` members here or more and this
        event goes to each of them alike."""
        if skip_sid or (hasattr(room, "__len__") and not isinstance(room, str)):
            return None  # somebody to skip, or several rooms
        if offset is not None and (self.recovering or self.replayed and stream_order(offset) <= self._replayed_max):
            return None  # a replay brings it to somebody, or has brought it already
        judge = self.filters.get((namespace, event))
        if judge is not None and judge(payload_of(args)) is not None:
            return None  # a filter decides, recipient by recipient
        direct = self._direct.get((namespace, room))
        if direct is None:
            members = self.rooms[namespace].get(room)
            if members is None or len(members) < self.direct_min:
                return None
            direct = self._direct[(namespace, room)] = Direct(self.get_participants(namespace, room),
                                                              self.server.raw_peers)
        return direct

    async def _deliver_direct(self, namespace: str, direct: Direct, event: str, args: list[Any],
                              offset: str | None) -> bool:
        """Write the event through a room's `Direct` lists; False, having written nothing, when a group's
        frame cannot be built once for all (bytes in the data, text UTF-8 cannot carry)."""
        messages: list[tuple[list[Any], str, bytes]] = []
        peer_of = direct.peer_of
        for (_, form), transports in direct.groups.items():
            text = encode_for(namespace, peer_of[transports[0]], form, event, args, offset)
            frame = framed(text)[1] if text is not None else None
            if text is None or frame is None:
                return False
            messages.append((transports, text, frame))
        for transports, text, frame in messages:
            for transport in write_each(transports, frame, direct.high, self.server.detour, peer_of):
                peer = peer_of[transport]
                if not peer.write_frame(frame):
                    await peer.send(text)
        if self.metrics is not None and direct.listed:
            self.metrics.delivered(namespace, event, direct.listed)
        if direct.others:
            await self.deliver(namespace, direct.others, None, event, args, offset)
        return True

    async def deliver(self, namespace: str, participants: Iterable[tuple[str, str]], skip_sid: Any, event: str,
                      args: list[Any], offset: str | None = None) -> None:
        """Hand one event to each of `participants` (sid, eio_sid), encoding and framing it at most once
        per wire format, and only for the formats its recipients use. A kept event (`offset`) skips the
        clients being connected: their replay brings it, in order."""
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        held = self.recovering if offset is not None and self.recovering else None
        replayed = self.replayed if offset is not None and self.replayed else None
        order = stream_order(offset) if replayed is not None and offset is not None else (0, 0)
        raw_data = payload_of(args)
        # form (Socket.IO: "", or "+" with the offset as last argument) → (text, frame)
        encoded: dict[str, tuple[str, bytes | None] | None] = {}
        binary: Any = None  # the packet python-socketio sends when the data holds bytes
        server = self.server
        peers, writers = server.raw_peers, server.writers
        judge = self.filters.get((namespace, event))
        keep = judge(raw_data) if judge is not None else None
        delivered = 0
        for sid, eio_sid in participants:
            if sid in skip or (held is not None and sid in held) or (keep is not None and not keep(sid)) or (
                    replayed is not None and sid in replayed and order <= replayed[sid]):
                continue
            delivered += 1
            peer = peers.get(eio_sid)
            form = peer.form if peer is not None else "+" if sid in self.with_offsets else ""
            if form not in encoded:
                text = encode_for(namespace, peer, form, event, args, offset)
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
