"""One Redis pub/sub channel per room: an instance hears only the rooms it has a member in.

Channels (`{prefix}` is REDIS_CHANNEL, `socketio` by default):
- `{prefix}#{namespace}#{room}#`: events to one room (a connection's own id is a room too);
- `{prefix}#{namespace}`: events to everyone in a namespace, heard by every instance;
- `{prefix}`: python-socketio's own messages (its write-only emitter, disconnects, room changes) and
  Ponte's control messages, heard by every instance, as before.

An event to rooms is written by one Lua script (`PUBLISH_SCRIPT`): with history on, it is added to its
namespace's stream (`XADD`, which gives its offset) and published on each of its rooms' channels, both
at once, so every subscriber receives it in offset order. A message reads `{offset} {sender} {entry}`:
the offset (`-` when history is off), the sender (`host:seq`, so that an instance skips its own when it
delivered them already), and the entry's JSON (history.Entry). An event to several rooms is published
once per room; an instance in more than one of them takes it once (the copies arrive one after another).

An instance subscribes to a room's channel when its first local member enters it (`RoomChannels.want`)
and unsubscribes LINGER seconds after the last one left (`drop`), as Centrifugo does: a client that
comes straight back (a reconnect) finds it still subscribed.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Iterable

LINGER = 2.0  # seconds a room's channel stays subscribed after its last local member left
BATCH = 1000  # channels per SUBSCRIBE or UNSUBSCRIBE command

PUBLISH_SCRIPT = """
local offset = '-'
if #KEYS == 1 then
  offset = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[3])
end
local message = offset .. ' ' .. ARGV[2] .. ' ' .. ARGV[3]
for i = 4, #ARGV do
  redis.call('PUBLISH', ARGV[i], message)
end
return offset
"""


def room_channel(prefix: str, namespace: str, room: Any) -> str:
    """The channel of a room (None: the whole namespace's)."""
    return f"{prefix}#{namespace}" if room is None else f"{prefix}#{namespace}#{room}#"


def channels_of(prefix: str, namespace: str, room: Any) -> list[str]:
    """The channels an event to `room` (None, a room or a list of rooms) is published on."""
    if isinstance(room, (list, tuple)):
        return [room_channel(prefix, namespace, one) for one in dict.fromkeys(room)]
    return [room_channel(prefix, namespace, room)]


def split_message(data: bytes) -> tuple[str, str, bytes]:
    """A room channel's message as (offset, sender, entry JSON)."""
    offset, sender, text = data.split(b" ", 2)
    return offset.decode(), sender.decode(), text


class RoomChannels:
    """The channels this instance listens on and where each one stands: wanted (`where`), confirmed by
    Redis (`confirmed`), or lingering before it is dropped (`leaving`). `sync` sends what changed."""

    def __init__(self, prefix: str, linger: float = LINGER) -> None:
        self.prefix = prefix
        self.linger = linger
        self.where: dict[str, tuple[str, Any]] = {}  # channel → (namespace, room); the shared one: ("", None)
        self.confirmed: set[str] = set()
        self.leaving: dict[str, float] = {}  # channel → when it is dropped
        self.to_subscribe: set[str] = set()
        self.to_unsubscribe: set[str] = set()
        self.changed = asyncio.Event()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}

    def keep(self, channel: str, namespace: str = "", room: Any = None) -> None:
        """A channel heard for as long as this instance runs (the shared one, a namespace's)."""
        self.where[channel] = (namespace, room)
        self.to_subscribe.add(channel)
        self.changed.set()

    def want(self, namespace: str, room: Any) -> str:
        """A local member entered `room`: its channel is (or stays) subscribed."""
        channel = room_channel(self.prefix, namespace, room)
        if self.leaving.pop(channel, None) is None and channel not in self.where:
            self.where[channel] = (namespace, room)
            self.to_unsubscribe.discard(channel)
            self.to_subscribe.add(channel)
            self.changed.set()
        return channel

    def drop(self, namespace: str, room: Any) -> None:
        """The last local member left `room`: its channel goes after LINGER seconds, unless one comes back."""
        channel = room_channel(self.prefix, namespace, room)
        if channel in self.where and channel not in self.leaving:
            self.leaving[channel] = time.monotonic() + self.linger
            self.changed.set()

    def covers(self, namespace: str, room: Any) -> bool:
        """Whether an event to `room` (None, a room or a list) reaches a channel heard here."""
        rooms = room if isinstance(room, (list, tuple)) else (room,)
        return any(room_channel(self.prefix, namespace, one) in self.where for one in rooms)

    def expire(self) -> float | None:
        """Drop the channels whose linger is over; seconds until the next one is due (None: none lingers)."""
        now = time.monotonic()
        for channel, until in list(self.leaving.items()):
            if until <= now:
                del self.leaving[channel], self.where[channel]
                self.confirmed.discard(channel)
                self.to_subscribe.discard(channel)
                self.to_unsubscribe.add(channel)
        return min(self.leaving.values()) - now if self.leaving else None

    def reset(self) -> None:
        """A new connection to Redis: every channel must be subscribed again."""
        self.confirmed.clear()
        self.to_unsubscribe.clear()
        self.to_subscribe = set(self.where)
        self.changed.set()

    def confirm(self, channel: str) -> bool:
        """Redis says `channel` is subscribed; False if it was confirmed already (a connection redis-py
        re-established by itself: what was published meanwhile was missed)."""
        if channel not in self.where:
            return True
        fresh = channel not in self.confirmed
        self.confirmed.add(channel)
        for future in self._waiting.pop(channel, ()):
            if not future.done():
                future.set_result(None)
        return fresh

    def all_confirmed(self) -> bool:
        return not self.to_subscribe and len(self.confirmed) == len(self.where)

    async def ready(self, channels: Iterable[str], timeout: float) -> bool:
        """Wait until Redis has confirmed `channels` (False after `timeout` seconds: Redis is away)."""
        loop = asyncio.get_running_loop()
        futures = []
        for channel in channels:
            if channel in self.where and channel not in self.confirmed:
                future = loop.create_future()
                self._waiting.setdefault(channel, []).append(future)
                futures.append(future)
        if not futures:
            return True
        done, pending = await asyncio.wait(futures, timeout=timeout)
        for future in pending:
            future.cancel()
        return not pending

    async def sync(self, pubsub: Any) -> None:
        """Send the subscriptions and unsubscriptions decided since the last call, in batches."""
        while self.to_unsubscribe or self.to_subscribe:
            if self.to_unsubscribe:
                batch = [self.to_unsubscribe.pop() for _ in range(min(BATCH, len(self.to_unsubscribe)))]
                await pubsub.unsubscribe(*batch)
            if self.to_subscribe:
                batch = [self.to_subscribe.pop() for _ in range(min(BATCH, len(self.to_subscribe)))]
                try:
                    await pubsub.subscribe(*batch)
                except BaseException:
                    self.to_subscribe.update(batch)
                    raise
