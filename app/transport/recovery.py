"""Connection-state recovery on both transports, around the server's connect and disconnect.

A connecting client that brings a pid and the last offset it saw (Socket.IO: `auth: {pid, offset}`, as
the official client sends them; raw: `?pid=&since=`) gets its session back if it is the same user and
every event after that offset is still held (history.py); otherwise it connects as new. Either way, its
room events wait (`manager.recovering`) while it connects: the CONNECT answer, its first message
(`greet`), then what it missed and what was sent meanwhile, written without yielding, then live events.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .history import Entry, Recovery, Session, new_pid, stream_order
from .events import encode_for, payload_of

if TYPE_CHECKING:
    from .server import PonteServer

log = logging.getLogger("ponte.recovery")


@dataclass
class Attempt:
    """One connect, as recovery sees it: the session it got back (if any), the events it missed, the
    offset it stands at, whether it asked (came with a pid), and how far the history was read for it
    (`until`: what follows comes live)."""

    since: str
    session: Session | None = None
    missed: list[Entry] = field(default_factory=list)
    asked: bool = False
    until: str = ""


class Recoveries:
    """Sessions, replays and late followers for one PonteServer."""

    def __init__(self, server: PonteServer) -> None:
        self.server = server
        self.pids: dict[str, str] = {}  # sid → its private session id
        # sid → entries of a room it follows that came before this instance heard the room, for its replay
        self.unheard: dict[str, list[Entry]] = {}
        self.socketio_offsets = False  # SOCKETIO_OFFSETS: see `wants_offsets`

    @property
    def manager(self) -> Any:
        return self.server.manager

    # -- connect ------------------------------------------------------------------------------------------

    async def attempt(self, handler: Any, eio_sid: str, namespace: str, data: Any) -> Attempt | None:
        """What a connecting client gets back; None when the server keeps no history."""
        history = self.manager.history
        if history is None:
            return None
        pid, since = self.request(eio_sid, data)
        attempt = Attempt(since or "", asked=pid is not None)
        if pid is not None and since is not None:
            attempt.session, missed = await self.restore(handler, eio_sid, namespace, data, pid, since)
            attempt.missed = missed or []
        if attempt.session is None:
            attempt.since = await self.manager.position(namespace)
        attempt.until = attempt.missed[-1].offset if attempt.missed else attempt.since
        return attempt

    def hold(self, sid: str, namespace: str, attempt: Attempt | None) -> None:
        """Room events wait for the client's replay; a restored session's rooms are its again."""
        if attempt is None:
            return
        self.manager.recovering[sid] = attempt.since
        for room in attempt.session.rooms if attempt.session else ():
            self.manager.basic_enter_room(sid, namespace, room)

    def refused(self, sid: str, namespace: str, attempt: Attempt | None) -> None:
        """The connect handler refused it: a session it brought stays for its owner."""
        self.manager.recovering.pop(sid, None)
        self.unheard.pop(sid, None)
        if attempt is not None and attempt.session is not None:
            self.manager.history.save(namespace, attempt.session, connected=False)

    def reply(self, sid: str, eio_sid: str, attempt: Attempt | None, data: Any) -> dict[str, Any]:
        """The CONNECT answer's recovery part: the pid (Socket.IO's own field)."""
        if attempt is None:
            return {}
        pid = self.pids[sid] = attempt.session.pid if attempt.session else new_pid()
        if eio_sid not in self.server.raw_peers and (attempt.session is not None or self.wants_offsets(data)):
            self.manager.with_offsets.add(sid)
        return {"pid": pid}

    async def greet(self, handler: Any, sid: str, eio_sid: str, namespace: str, attempt: Attempt | None) -> None:
        """The client's first message, then what it missed and what was sent while it connected."""
        if attempt is None:
            return await handler.greet(sid, None)
        self.keep_session(namespace, sid)
        rooms = self.manager.get_rooms(sid, namespace)
        missed = [entry for entry in attempt.missed if self.reaches(namespace, entry, sid, rooms)]
        recovered = attempt.session is not None
        await handler.greet(sid, Recovery(self.pids[sid], recovered, len(missed), attempt.since, attempt.asked))
        metrics = self.server.metrics
        if attempt.asked and metrics is not None:
            metrics.recoveries.labels(namespace, "recovered" if recovered else "not_recovered").inc()
        if sid in self.manager.recovering:
            self.replay(namespace, sid, eio_sid, missed, attempt.until)

    def wants_offsets(self, data: Any) -> bool:
        """Whether a Socket.IO client's events carry their offset as a last argument, as the official
        client (4.6+) expects for its connection-state recovery: `auth.offsets` when it says, else
        SOCKETIO_OFFSETS. Off by default: a python-socketio client's handler would get one argument more."""
        asked = data.get("offsets") if isinstance(data, dict) else None
        return asked if isinstance(asked, bool) else self.socketio_offsets

    def request(self, eio_sid: str, data: Any) -> tuple[str | None, str | None]:
        """The pid and offset a client came back with: Socket.IO's `auth` ({pid, offset}, as the official
        client sends them), or a raw client's query string (`?pid=&since=`). Anything else is ignored."""
        if eio_sid in self.server.raw_peers:
            query = self.server.environ[eio_sid]["aiohttp.request"].query
            pid, offset = query.get("pid"), query.get("since")
        elif isinstance(data, dict):
            pid, offset = data.get("pid"), data.get("offset")
        else:
            return None, None
        pid = pid if isinstance(pid, str) and 0 < len(pid) <= 64 else None
        offset = offset if isinstance(offset, str) and 0 < len(offset) <= 64 else None
        return pid, offset if pid is not None else None

    async def restore(self, handler: Any, eio_sid: str, namespace: str, data: Any, pid: str,
                      offset: str) -> tuple[Session | None, list[Entry] | None]:
        """The session `pid` and the events after `offset`, if both can be had and the client is the
        session's user; (None, None) otherwise: it connects as new."""
        history = self.manager.history
        try:
            user = handler.identify(self.server.environ[eio_sid], data if isinstance(data, dict) else {})
        except Exception:  # noqa: BLE001 - who it is cannot be told (no token, a bad one): no recovery
            return None, None
        try:
            session = await history.take(namespace, pid, user)
            if session is not None and history.shared:  # what is sent to its rooms from now on comes live
                await self.manager.listening(namespace, [*session.rooms, session.sid])
            # what it missed, or None if not all of it is held (it then connects as new: never a partial replay);
            # in Redis read from the stream, once its rooms are subscribed here (this instance may not have heard them)
            missed = await history.since(namespace, offset) if session is not None else None
        except Exception as exc:  # noqa: BLE001 - the history is out of reach (Redis down): not recovered
            log.warning("recovery not possible: history unavailable (%s: %s)", type(exc).__name__, exc)
            return None, None
        if session is None or missed is None:
            return None, None
        return session, missed

    def replay(self, namespace: str, sid: str, eio_sid: str, missed: list[Entry], last: str | None) -> None:
        """Write what a connecting client missed and what was sent while it connected, then let room
        events reach it: all without yielding, so nothing comes in between or twice."""
        manager = self.manager
        manager.recovering.pop(sid, None)
        tail = manager.delivered_since(namespace, last) if last is not None else []
        if tail is None:  # also a client that connected before this instance knew its streams' heads
            # (start-up waits for them while Redis answers): it reconnects and gets a known offset
            log.warning("recovery of %s: events sent while it connected are no longer held; closing it", sid)
            self.unheard.pop(sid, None)
            return self.server.write_close(eio_sid, "resync: reconnect")
        unheard = self.unheard.pop(sid, None)
        if unheard:  # a followed room's events this instance did not hear: in offset order, once each
            tail = sorted({entry.offset: entry for entry in (*unheard, *tail)}.values(),
                          key=lambda entry: stream_order(entry.offset))
        rooms = manager.get_rooms(sid, namespace)
        for entry in (*missed, *(entry for entry in tail if self.reaches(namespace, entry, sid, rooms))):
            self.server.write_now(eio_sid, self.encode(namespace, eio_sid, entry.event, entry.args, entry.offset))
        furthest = max([last or "", *(written[-1].offset for written in (missed, tail) if written)], key=stream_order)
        if furthest:
            manager.replayed_to(sid, furthest)

    def reaches(self, namespace: str, entry: Entry, sid: str, rooms: list[Any]) -> bool:
        judge = self.manager.filters.get((namespace, entry.event))
        keep = judge(payload_of(entry.args)) if judge is not None else None
        return entry.reaches(sid, rooms) and (keep is None or keep(sid))

    def encode(self, namespace: str, eio_sid: str, event: str, args: list[Any], offset: str | None) -> str:
        """An event as this connection's wire format writes it (what `deliver` sends it too)."""
        peer = self.server.raw_peers.get(eio_sid)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        form = peer.form if peer is not None else "+" if sid in self.manager.with_offsets else ""
        return encode_for(namespace, peer, form, event, args, offset) or ""

    # -- late followers and first messages ----------------------------------------------------------------

    async def follow(self, sid: str, namespace: str, room: Any) -> None:
        """Enter `room` and get what was sent to it that is still held, then live events, in order."""
        manager, history = self.manager, self.manager.history
        if history is None or room in manager.get_rooms(sid, namespace):
            return await manager.enter_room(sid, namespace, room)  # type: ignore[no-any-return]
        eio_sid = manager.eio_sid_from_sid(sid, namespace)
        connecting = sid in manager.recovering  # its connect's replay brings what comes from now on
        since = manager.recovering.setdefault(sid, manager.frontier.get(namespace) or history.head(namespace))
        await manager.enter_room(sid, namespace, room)  # in Redis: subscribed before the history is read
        try:
            held = await history.for_room(namespace, room)
        except Exception:  # noqa: BLE001 - the history is out of reach: the room's live events only
            log.warning("history of %s unavailable; %s follows it live only", room, sid, exc_info=True)
            held = []
        if eio_sid is None or (not connecting and not manager.is_connected(sid, namespace)):
            if not connecting:
                manager.recovering.pop(sid, None)
            return
        until = stream_order(since)
        earlier = [entry for entry in held
                   if stream_order(entry.offset) <= until and self.reaches(namespace, entry, sid, [room])]
        later = [entry for entry in held if stream_order(entry.offset) > until]
        if later:  # sent to it after `since`, perhaps before this instance heard the room: the replay merges them
            self.unheard.setdefault(sid, []).extend(later)
        for n, entry in enumerate(earlier, 1):
            # as it was sent, without its offset (the client stands further on), but for the last one: it
            # carries where the client stands now (`since`), so that coming back later does not repeat these
            mark = since if n == len(earlier) else None
            self.server.write_now(eio_sid, self.encode(namespace, eio_sid, entry.event, entry.args, mark))
        if not connecting:
            self.replay(namespace, sid, eio_sid, [], since)

    async def hello(self, sid: str, namespace: str, event: str, data: Any, recovery: Recovery) -> None:
        """A raw connection's first message, with `offset` (where it stands) and `recovery` at the top of
        its envelope (see `Namespace.hello`)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        peer = self.server.raw_peers.get(eio_sid) if eio_sid is not None else None
        if peer is not None:
            await peer.send(peer.codec.encode(event, data, peer.form, recovery.offset, {"recovery": recovery.fields()}))

    # -- sessions -----------------------------------------------------------------------------------------

    def keep_session(self, namespace: str, sid: str) -> None:
        """Store a connected client's session where another instance can restore it (Redis), so that
        even the death of this instance leaves it recoverable."""
        history, pid = self.manager.history, self.pids.get(sid)
        if history is not None and history.shared and pid is not None:
            history.save(namespace, self.session(namespace, sid, pid), connected=True)

    def session(self, namespace: str, sid: str, pid: str) -> Session:
        handler = self.server.namespace_handlers[namespace]
        rooms = tuple(str(room) for room in self.manager.get_rooms(sid, namespace) if room != sid)
        return Session(pid, sid, handler.identity(sid), rooms)

    def room_changed(self, namespace: str, sid: str, room: Any, entered: bool) -> None:
        """A manager watcher: a connected client's rooms changed, so does its stored session (Redis)."""
        if sid in self.pids and self.manager.is_connected(sid, namespace):
            self.keep_session(namespace, sid)

    async def refresh_sessions(self) -> None:
        """Write every connected client's session again before its time in Redis runs out."""
        if self.manager.history is None or not self.manager.history.shared:
            return
        for namespace in self.server.namespace_handlers:
            for sid, _ in list(self.manager.get_participants(namespace, None)):
                self.keep_session(namespace, sid)

    def left(self, eio_sid: str, namespace: str, reason: Any) -> None:
        """A client is leaving: its session is kept for RECOVERY_WINDOW unless it left on purpose (it
        said so, or the server disconnected it), as Socket.IO does."""
        history = self.manager.history
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace) if history is not None else None
        pid = self.pids.pop(sid, None) if sid is not None else None
        if sid is not None:
            self.unheard.pop(sid, None)
        if pid is None or sid is None:
            return
        reasons = self.server.reason
        if reason in (reasons.CLIENT_DISCONNECT, reasons.SERVER_DISCONNECT):
            history.forget(namespace, pid)
        else:
            history.save(namespace, self.session(namespace, sid, pid), connected=False)

    def departed(self, sid: str, namespace: str) -> None:
        """A client has left without `left` (the server disconnected it): its session is not kept."""
        self.unheard.pop(sid, None)
        pid = self.pids.pop(sid, None)
        if pid is not None and self.manager.history is not None:
            self.manager.history.forget(namespace, pid)
