"""Who is in a room, on every instance.

Each instance indexes its own connections' rooms in memory, fed by the client manager's room watcher
(`watch`); who a connection is (user, transport) is looked up when it is read or written, since a restored
session enters its rooms before its connect handler has run. With Redis the index is mirrored into one hash
per room, `ponte:presence:{namespace}:{room}`, field `{instance} {sid}` → `{"user", "transport"}`, written
by a background task from a bounded queue (an emit never waits for Redis; what the queue cannot take or
Redis refuses is counted in `failures`). Each
instance keeps `ponte:instance:{id}` alive (TTL 30 s, refreshed every 10 s). A reader takes this
instance's entries from memory and the others' from Redis, ignoring, and deleting, those of instances
whose liveness key is gone: a SIGKILLed instance's entries vanish within 30 s. After a lost write the
instance takes a new id and writes its whole index again, so a lost write never leaves a ghost entry:
the old id's entries die with its liveness key.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Protocol

from .auth import Principal
from .tasks import stop, stop_if_cancelled

log = logging.getLogger("ponte.presence")
PREFIX = "ponte:presence:"
ALIVE = "ponte:instance:{}"
ALIVE_TTL = 30  # seconds a silent instance's entries still count
REFRESH_EVERY = 10.0
ROOM_TTL = 86_400  # a room hash nobody writes to for a day is dropped (kept fresh below while in use)
ROOM_REFRESH_TICKS = 360  # refreshes between two renewals of the room hashes this instance is in (1 h)
QUEUE_LIMIT = 10_000  # index changes waiting for Redis
BATCH = 256
MAX_LISTED = 1000  # connections one answer lists
MAX_SCANNED = 10_000  # Redis entries one read looks at
MAX_INSTANCES = 100  # instances `instances()` lists
REDIS_TIMEOUT = 2.0
UNKNOWN_RETRY = 0.1  # seconds between two looks at connections that entered a room before connecting


class PresenceUnavailable(Exception):
    """Redis did not answer: other instances' entries cannot be read."""


class Connected(Protocol):
    """What presence needs of a connection (handlers.base.Client)."""

    principal: Principal
    transport: str


@dataclass(frozen=True, slots=True)
class Entry:
    user: str | None  # a token's sub; None for an anonymous client
    transport: str  # "raw" or "socketio"


Change = tuple[str, str, str, bool]  # namespace, room, sid, entered


class Presence:
    """This instance's connections by room, mirrored to Redis when `redis` is given."""

    def __init__(self, lookup: Callable[[str, str], Connected | None], redis: Any = None,
                 queue_limit: int = QUEUE_LIMIT) -> None:
        self.lookup = lookup  # (namespace, sid) → the connection, while it is connected
        self.redis = redis
        self.instance = uuid.uuid4().hex[:16]
        self.rooms: dict[tuple[str, str], set[str]] = {}
        self.queue: asyncio.Queue[Change] = asyncio.Queue(queue_limit)
        self.unknown: set[tuple[str, str, str]] = set()  # entered, but not yet connected: written once it is
        self.failures = 0  # index changes that did not reach Redis
        self._stale = False  # a change was lost: announce the whole index under a new id
        self._last_warning = 0.0
        # what this instance says of itself in its liveness key, every REFRESH_EVERY (the operator's view)
        self.describe: Callable[[], dict[str, Any]] = dict

    # -- the index ----------------------------------------------------------------------------------

    def watch(self, namespace: str, sid: str, room: Any, entered: bool) -> None:
        """The client manager's watcher: a connection entered or left a room."""
        key = (namespace, str(room))
        if entered:
            self.rooms.setdefault(key, set()).add(sid)
        else:
            members = self.rooms.get(key)
            if members is None or sid not in members:
                return
            members.discard(sid)
            if not members:
                del self.rooms[key]
        if self.redis is not None:
            try:
                self.queue.put_nowait((*key, sid, entered))
            except asyncio.QueueFull:
                self._lost(1, "queue full")

    def entry(self, namespace: str, sid: str) -> Entry | None:
        """Who a connection of this instance is; None while it is not (or no longer) connected."""
        client = self.lookup(namespace, sid)
        if client is None:
            return None
        return Entry(None if client.principal.anonymous else client.principal.sub, client.transport)

    async def connections(self, namespace: str, room: str) -> list[dict[str, Any]]:
        """Every connection in the room, on every instance (at most MAX_LISTED)."""
        mine = [{"sid": sid, "user": entry.user, "transport": entry.transport, "instance": self.instance}
                for sid in self.rooms.get((namespace, room), ()) if (entry := self.entry(namespace, sid))]
        if self.redis is None or len(mine) >= MAX_LISTED:
            return mine[:MAX_LISTED]
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                others = await self._others(room_key(namespace, room))
        except Exception as exc:  # noqa: BLE001 - one clear error for the caller
            raise PresenceUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return (mine + others)[:MAX_LISTED]

    async def instances(self) -> list[dict[str, Any]]:
        """The instances alive, this one first (at most MAX_INSTANCES), each `{"id", "state"}`: what it said
        of itself when it last renewed its liveness key (`describe`); without Redis, this one alone."""
        found = [{"id": self.instance, "state": self.describe()}]
        if self.redis is None:
            return found
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                keys: list[str] = []
                async for key in self.redis.scan_iter(match=ALIVE.format("*"), count=BATCH):
                    if text(key).rpartition(":")[2] != self.instance and len(keys) < MAX_INSTANCES - 1:
                        keys.append(text(key))
                states = await self.redis.mget(keys) if keys else []
        except Exception as exc:  # noqa: BLE001 - one clear error for the caller
            raise PresenceUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return found + [{"id": key.rpartition(":")[2], "state": parsed(state)}
                        for key, state in zip(keys, states) if state is not None]

    async def _others(self, key: str) -> list[dict[str, Any]]:
        """The other instances' entries in a room hash; those of dead instances are deleted."""
        found: list[tuple[str, str, str, dict[str, Any]]] = []
        async for field, value in self.redis.hscan_iter(key, count=BATCH):
            field = text(field)
            instance, _, sid = field.partition(" ")
            if instance != self.instance:
                found.append((field, instance, sid, parsed(value)))
            if len(found) >= MAX_SCANNED:
                break
        instances = sorted({instance for _, instance, _, _ in found})
        up = await self.redis.mget([ALIVE.format(i) for i in instances]) if instances else []
        alive = {instance for instance, flag in zip(instances, up) if flag is not None}
        dead = [field for field, instance, _, _ in found if instance not in alive]
        if dead:
            await self.redis.hdel(key, *dead)
        return [{"sid": sid, "user": doc.get("user"), "transport": doc.get("transport"), "instance": instance}
                for _, instance, sid, doc in found if instance in alive]

    # -- writing to Redis ---------------------------------------------------------------------------

    async def running(self, app: Any) -> AsyncIterator[None]:
        """aiohttp cleanup context: the writer and the keep-alive while the app runs; on the way out the
        liveness key is deleted, so readers drop this instance's entries at once."""
        if self.redis is None:
            yield
            return
        tasks = [asyncio.create_task(self._write()), asyncio.create_task(self._keep_alive())]
        yield
        await stop(tasks)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                await self.redis.delete(ALIVE.format(self.instance))
        except Exception as exc:  # noqa: BLE001 - the key expires by itself
            log.warning("presence liveness key not deleted: %s", exc)

    async def _write(self) -> None:
        while True:
            stop_if_cancelled()
            batch = await self._next_batch()
            try:
                async with asyncio.timeout(REDIS_TIMEOUT):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for namespace, room, sid, entered in batch:
                            self._stage(pipe, namespace, room, sid, entered)
                        await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down: count, and announce again once back
                self._lost(len(batch), f"{type(exc).__name__}: {exc}")

    async def _next_batch(self) -> list[Change]:
        """Queued changes, and the entries of connections that have connected since they entered a room
        (looked at every UNKNOWN_RETRY while there are such)."""
        try:
            async with asyncio.timeout(UNKNOWN_RETRY if self.unknown else None):
                batch = [await self.queue.get()]
        except TimeoutError:
            batch = []
        while len(batch) < BATCH and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        waiting, self.unknown = self.unknown, set()
        return batch + [(namespace, room, sid, True) for namespace, room, sid in waiting
                        if sid in self.rooms.get((namespace, room), ())]

    def _stage(self, pipe: Any, namespace: str, room: str, sid: str, entered: bool) -> None:
        key, field = room_key(namespace, room), f"{self.instance} {sid}"
        entry = self.entry(namespace, sid) if entered else None
        if not entered:
            self.unknown.discard((namespace, room, sid))
            pipe.hdel(key, field)
        elif entry is None:
            self.unknown.add((namespace, room, sid))
        else:
            pipe.hset(key, field, json.dumps({"user": entry.user, "transport": entry.transport}))
            pipe.expire(key, ROOM_TTL)

    async def _keep_alive(self) -> None:
        tick = 0
        while True:
            stop_if_cancelled()
            try:
                async with asyncio.timeout(REDIS_TIMEOUT):
                    if self._stale or tick % ROOM_REFRESH_TICKS == ROOM_REFRESH_TICKS - 1:
                        await self._announce(renew=not self._stale)
                    await self.redis.set(ALIVE.format(self.instance), self._state(), ex=ALIVE_TTL)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down: readers elsewhere drop us after ALIVE_TTL
                self._lost(0, f"{type(exc).__name__}: {exc}")
            tick += 1
            await asyncio.sleep(REFRESH_EVERY)

    async def _announce(self, renew: bool) -> None:
        """Write the whole index: to renew the room hashes' TTL, or, after a lost change, under a new id
        (the old one's liveness key is deleted with it, and its entries with that)."""
        old = self.instance
        if not renew:
            self.instance = uuid.uuid4().hex[:16]
            while not self.queue.empty():  # the index below holds what they would change
                self.queue.get_nowait()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(ALIVE.format(self.instance), self._state(), ex=ALIVE_TTL)
            for (namespace, room), members in list(self.rooms.items()):
                for sid in members:
                    self._stage(pipe, namespace, room, sid, True)
            if old != self.instance:
                pipe.delete(ALIVE.format(old))
            await pipe.execute()
        self._stale = False

    def _state(self) -> str:
        try:
            return json.dumps(self.describe(), default=str)
        except Exception:  # noqa: BLE001 - liveness matters more than the description
            return "{}"

    def _lost(self, count: int, why: str) -> None:
        self.failures += count
        self._stale = True
        now = time.monotonic()
        if now - self._last_warning > 5:  # one line per outage burst; the count is exact
            self._last_warning = now
            log.warning("presence not written to Redis (%s); %d changes lost so far", why, self.failures)


def room_key(namespace: str, room: str) -> str:
    return f"{PREFIX}{namespace.lstrip('/')}:{room}"


def parsed(value: bytes | str) -> dict[str, Any]:
    """An entry's JSON object ({} for anything else: a stranger's write must not break every read)."""
    try:
        doc = json.loads(value)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
