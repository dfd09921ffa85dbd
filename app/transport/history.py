"""Connection-state recovery: what was sent to rooms, with offsets, and the sessions of clients that left.

Every event emitted to a room (not a direct reply to one connection) gets an offset: an opaque string,
ordered within its namespace. A client that reconnects with the last offset it saw, within the recovery
window, gets back its connection id, its rooms and every event it missed, in order; otherwise it is told
it was not recovered. An offset is recoverable only while the history still holds everything after it:
- in memory (one instance), offsets are `{epoch}-{n}`: a restart draws a new epoch, and `n` shows whether
  the entries after an offset are still held (`HISTORY_SIZE` of them per namespace);
- in Redis, one stream per namespace (`{channel}:history:{namespace}`, `XADD ... MAXLEN ~ HISTORY_SIZE`),
  offsets are stream ids; an offset older than the stream's first entry (trimmed, or Redis lost its data
  and the stream started again) is not recoverable.

Sessions (pid → the connection id, its user and rooms) live `RECOVERY_WINDOW` seconds after a client left:
in memory, or in Redis (`{channel}:session:{namespace}:{pid}`), written while the client is connected and
refreshed, so that a client of an instance that died (SIGKILL) recovers on another one.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

import redis.asyncio as aioredis

from ..tasks import stop, stop_if_cancelled

log = logging.getLogger("ponte.history")
PAGE = 1000  # stream entries read per XRANGE


@dataclass(slots=True)
class Entry:
    """One event emitted to rooms of a namespace: `room` None (everyone), a room or a list of rooms."""

    offset: str
    room: Any
    skip: Any
    event: str
    args: list[Any]

    def reaches(self, sid: str, rooms: Iterable[Any]) -> bool:
        """Whether a connection in `rooms` was sent this event."""
        if self.skip is not None and (sid in self.skip if isinstance(self.skip, list) else sid == self.skip):
            return False
        if self.room is None:
            return True
        targets = self.room if isinstance(self.room, list) else (self.room,)
        return any(room in targets for room in rooms)

    def to_json(self) -> str:
        return json.dumps({"room": self.room, "skip": self.skip, "event": self.event, "args": self.args},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, offset: str, text: str | bytes) -> Entry:
        body = json.loads(text)
        return cls(offset, body["room"], body["skip"], body["event"], body["args"])


class Session(NamedTuple):
    """What a reconnecting client gets back: its connection id and rooms, if it is the same user."""

    pid: str
    sid: str
    user: str | None  # None: an anonymous client (its pid is then its only credential)
    rooms: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"sid": self.sid, "user": self.user, "rooms": self.rooms}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a connection's first message tells its client: its private session id, whether it got its
    session back (`recovered`), how many missed events follow, and the offset it stands at."""

    pid: str
    recovered: bool
    missed: int
    offset: str | None
    asked: bool  # the client came with a pid and an offset: not recovered means it must resync

    def fields(self) -> dict[str, Any]:
        """The recovery fields of a first message (raw endpoints), in the protocols' own JSON."""
        out: dict[str, Any] = {"pid": self.pid, "recovered": self.recovered, "missed": self.missed}
        if self.asked and not self.recovered:
            out["resync"] = True
        return out


def new_pid() -> str:
    """A private session id: a secret, like the offset it comes with, never logged."""
    return secrets.token_urlsafe(16)


def stream_order(offset: str) -> tuple[int, int]:
    """A Redis stream id (`ms-seq`) or a memory offset (`epoch-n`, compared by n) as a sortable pair."""
    head, _, tail = offset.rpartition("-")
    try:
        return (int(head), int(tail)) if head.isdigit() else (0, int(tail))
    except ValueError:
        return (-1, -1)


class History:
    """In memory, for one instance: `size` entries per namespace, sessions for `window` seconds."""

    shared = False  # sessions are written while connected only where another instance could restore them

    def __init__(self, size: int, window: float) -> None:
        self.size = size
        self.window = window
        self.epoch = secrets.token_hex(4)
        self.entries: dict[str, deque[Entry]] = {}
        self.counters: dict[str, int] = {}  # namespace → its last offset's number
        # (namespace, pid) → (sid, user, rooms, until): plain tuples of strings, which the cyclic GC stops
        # tracking (a tuple subclass, or a dataclass, it tracks for ever: 10,000 of them kept after a mass
        # disconnect doubled that disconnect's CPU, in full collections)
        self.sessions: dict[tuple[str, str], tuple[str, str | None, tuple[str, ...], float]] = {}

    def start(self) -> None:
        """Start background work (none in memory)."""

    async def close(self) -> None:
        """Stop background work and flush what is pending."""

    # -- entries ------------------------------------------------------------------------------------------

    def append(self, namespace: str, room: Any, skip: Any, event: str, args: list[Any]) -> Entry:
        """Keep one emitted event; its entry carries the new offset."""
        number = self.counters[namespace] = self.counters.get(namespace, 0) + 1
        entry = Entry(f"{self.epoch}-{number}", room, skip, event, args)
        kept = self.entries.get(namespace)
        if kept is None:
            kept = self.entries[namespace] = deque(maxlen=self.size)
        kept.append(entry)
        return entry

    async def since(self, namespace: str, offset: str) -> list[Entry] | None:
        """Every entry after `offset`, or None when they are not all held any more (or never were)."""
        epoch, _, number = offset.rpartition("-")
        last = self.counters.get(namespace, 0)
        if epoch != self.epoch or not number.isdigit() or int(number) > last:
            return None
        after = int(number)
        if after == last:
            return []
        kept = self.entries.get(namespace)
        if not kept or _number(kept[0]) > after + 1:  # the next one was dropped already
            return None
        return [entry for entry in kept if _number(entry) > after]

    async def for_room(self, namespace: str, room: Any) -> list[Entry]:
        """The entries still held that went to `room` (for a client that starts following it late)."""
        return [entry for entry in self.entries.get(namespace, ()) if entry.reaches("", (room,))]

    def head(self, namespace: str) -> str:
        """The offset a new client starts from: everything after it is new to it."""
        return f"{self.epoch}-{self.counters.get(namespace, 0)}"

    # -- sessions -----------------------------------------------------------------------------------------

    def save(self, namespace: str, session: Session, connected: bool) -> None:
        """Keep a session: while `connected` (a shared store needs it then, for a dying instance), or when
        its client has left; in memory only the latter matters."""
        if not connected:
            until = time.monotonic() + self.window
            self.sessions[(namespace, session.pid)] = (session.sid, session.user, tuple(session.rooms), until)

    def forget(self, namespace: str, pid: str) -> None:
        """A client left for good (it said so): its session is not kept."""
        self.sessions.pop((namespace, pid), None)

    async def take(self, namespace: str, pid: str, user: str | None) -> Session | None:
        """The session `pid` of `user`, removed so it is restored once; None if unknown, expired or another
        user's (which stays in place: a stolen pid does not cost its owner the session)."""
        now = time.monotonic()
        for key, kept in list(self.sessions.items())[:64]:  # expire a few each time: bounded work
            if kept[3] < now:
                del self.sessions[key]
        found = self.sessions.get((namespace, pid))
        if found is None or found[3] < now or found[1] != user:
            return None
        del self.sessions[(namespace, pid)]
        return Session(pid, found[0], found[1], found[2])


class RedisHistory(History):
    """History and sessions in Redis, shared by every instance: entries in one stream per namespace."""

    shared = True

    def __init__(self, client: aioredis.Redis, prefix: str, size: int, window: float) -> None:
        super().__init__(size, window)
        self.redis = client
        self.prefix = prefix
        self.dirty: dict[tuple[str, str], Session | None] = {}  # sessions to write (None: delete)
        # (stream, offset) → its entry, for the latest entries read back: in a reconnect storm every client
        # reads much the same ones, decoded once (`size` of them at most)
        self.decoded: dict[tuple[str, str], Entry] = {}
        self.failures = 0
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def stream(self, namespace: str) -> str:
        return f"{self.prefix}:history:{namespace}"

    def session_key(self, namespace: str, pid: str) -> str:
        return f"{self.prefix}:session:{namespace}:{pid}"

    def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def close(self) -> None:
        if self._flusher is not None:
            await self._flush()
            await stop([self._flusher])
            self._flusher = None

    # -- entries: added with their rooms' messages (channels.PUBLISH_SCRIPT), read back by recovering clients --

    async def since(self, namespace: str, offset: str) -> list[Entry] | None:
        stream = self.stream(namespace)
        order = stream_order(offset)
        if order[0] <= 0:
            return None
        first = entries(await self.redis.xrange(stream, "-", "+", count=1))
        if not first or stream_order(first[0].offset) > order:
            return None  # trimmed past it, or the stream started again (Redis lost its data)
        found: list[Entry] = []
        while True:  # to the stream's end: a stream trimmed with `~` holds somewhat more than `size`
            page = self._entries(stream, await self.redis.xrange(stream, f"({offset}", "+", count=PAGE))
            found += page
            if len(page) < PAGE:
                return found
            offset = page[-1].offset

    async def for_room(self, namespace: str, room: Any) -> list[Entry]:
        stream = self.stream(namespace)
        newest = self._entries(stream, await self.redis.xrevrange(stream, "+", "-", count=self.size))
        return [entry for entry in reversed(newest) if entry.reaches("", (room,))]

    def _entries(self, stream: str, rows: Any) -> list[Entry]:
        """Stream rows as entries, each decoded once while it is among the latest `size` read."""
        found = []
        for entry_id, fields in rows or ():
            key = (stream, _text(entry_id))
            entry = self.decoded.get(key)
            if entry is None:
                entry = self.decoded[key] = Entry.from_json(key[1], fields[b"m"])
                if len(self.decoded) > self.size:
                    del self.decoded[next(iter(self.decoded))]
            found.append(entry)
        return found

    # -- sessions: written behind the connection (never on its path), taken once --------------------------

    def save(self, namespace: str, session: Session, connected: bool) -> None:
        self.dirty[(namespace, session.pid)] = session
        self._wake.set()

    def forget(self, namespace: str, pid: str) -> None:
        self.dirty[(namespace, pid)] = None
        self._wake.set()

    async def take(self, namespace: str, pid: str, user: str | None) -> Session | None:
        key = self.session_key(namespace, pid)
        pending = self.dirty.pop((namespace, pid), None)  # left a moment ago from this very instance
        if pending is not None:
            if pending.user == user:
                return pending
            self.dirty[(namespace, pid)] = pending  # another user's: it stays
            return None
        text = await self.redis.get(key)
        if text is None:
            return None
        body = json.loads(text)
        if body.get("user") != user:
            return None
        if not await self.redis.delete(key):  # another instance restored it first
            return None
        return Session(pid, body["sid"], body.get("user"), tuple(body.get("rooms") or ()))

    async def _flush_loop(self) -> None:
        while True:
            stop_if_cancelled()
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self.dirty:
            return
        batch, self.dirty = self.dirty, {}
        ttl = max(1, int(self.window * 1000))
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (namespace, pid), session in batch.items():
                    if session is None:
                        pipe.delete(self.session_key(namespace, pid))
                    else:
                        pipe.set(self.session_key(namespace, pid), session.to_json(), px=ttl)
                await pipe.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis down: these sessions are not recoverable, counted
            self.failures += len(batch)
            log.warning("could not store %d recovery sessions (%s: %s)", len(batch), type(exc).__name__, exc)


def _number(entry: Entry) -> int:
    return int(entry.offset.rpartition("-")[2])


def entries(rows: Any) -> list[Entry]:
    """Stream rows as redis-py returns them (XRANGE, XREVRANGE) as entries."""
    return [Entry.from_json(_text(entry_id), fields[b"m"]) for entry_id, fields in rows or ()]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
