"""The receiving side of the Redis fan-out: the channels an instance listens on (channels.py), read in the
order Redis sends them, and, once Redis is back after a loss, what was sent to its rooms meanwhile, read
from the history streams (a gap they no longer hold is counted and logged).

Until every channel is confirmed and the streams are caught up, messages wait (HELD_MAX of them; past it,
they are read from the stream). redis-py may connect again by itself: a channel confirmed twice means
that happened, and the streams are read again from the last entry delivered.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from ..tasks import stop, stop_if_cancelled
from .channels import RoomChannels, room_channel, split_message
from .cluster import ShardedBus
from .history import Entry, RedisHistory, entries, stream_order

if TYPE_CHECKING:
    from .redis import RedisFanoutManager

log = logging.getLogger("ponte.redis")
BATCH = 256  # stream entries read per XRANGE while catching up
RETRY_MAX = 1.0  # seconds between reconnection attempts, at most: fan-out resumes well within 5 s
SEEN = 4096  # senders remembered to take an event to several rooms once
HELD_MAX = 100_000  # messages held while catching up after a reconnection


async def retrying(run: Callable[[], Awaitable[None]], lost: Callable[[Exception], bool]) -> None:
    """Run `run` again whenever it ends (Redis absent or gone: `lost(error)` is told), after a back-off that
    doubles up to RETRY_MAX and starts over when `lost` says the run had got going."""
    delay = 0.1
    while True:
        stop_if_cancelled()
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis absent or gone: retry, bounded
            if lost(exc):
                delay = 0.1
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)


async def close_quietly(pubsub: Any) -> None:
    """Close a subscription whose connection may be gone already."""
    try:
        await pubsub.aclose()
    except Exception:  # noqa: BLE001
        pass


async def listen(client: Any, channel: str, receive: Callable[[Any], Awaitable[None]],
                 state: Callable[[bool, Exception | None], None]) -> None:
    """Hand every message of a pub/sub channel to `receive`, subscribing again (with a short, bounded
    back-off) whenever Redis goes; `state(True, None)` once subscribed, `state(False, error)` on a loss.
    Workers (`emitter.Emitter`) listen this way, and gateways to the shared channel beside a cluster."""
    up = False

    async def run() -> None:
        nonlocal up
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            up = True
            state(True, None)
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    await receive(message["data"])
        finally:
            await close_quietly(pubsub)

    def lost(error: Exception) -> bool:
        nonlocal up
        was, up = up, False
        state(False, error)
        return was

    await retrying(run, lost)


class RoomListener:
    """What one RedisFanoutManager hears: `run` listens until cancelled, subscribing again whenever Redis
    goes; `subscribed` says whether every channel is heard and caught up."""

    def __init__(self, manager: RedisFanoutManager) -> None:
        self.manager = manager
        self.heard = RoomChannels(manager.channel)
        self.rooms_up = False
        self.shared_up = False  # with a cluster, the shared channel is heard apart, on REDIS_URL
        self.received = 0  # messages heard on room and namespace channels
        self.reconnects = 0
        self.history_gaps = 0  # times a history stream was found trimmed or lost past what was read here
        self.on_gap: Callable[[], None] = lambda: None
        # set once this instance knows where each history stream stands: a client connecting before that
        # would get an offset the stream does not know (start-up waits for it while Redis answers)
        self.history_ready = asyncio.Event()
        # senders (host:n) of the latest room messages without an offset: an event to several rooms comes
        # once per room (one after another on one Redis, in any order from a cluster's shards)
        self._seen: dict[str, None] = {}
        self._said_down = False  # this outage was logged
        self._last_gap_warning = 0.0

    @property
    def subscribed(self) -> bool:
        """Every channel is subscribed, and what was missed meanwhile is read."""
        return self.rooms_up and (self.shared_up or self.manager.cluster is None)

    async def _catch_up(self) -> None:
        """Once every channel is subscribed: read where each stream stands (the first time), or what was
        added to it since the last entry delivered here, for the rooms heard here (after a reconnection)."""
        if not isinstance(self.manager.history, RedisHistory):
            return
        if not self.history_ready.is_set():
            await self._history_heads()
            self.history_ready.set()
            return
        for namespace, offset in list(self.manager.frontier.items()):
            key = self.manager.history.stream(namespace)
            self._note_trimmed(key, offset, entries(await self.manager.redis.xrange(key, "-", "+", count=1)))
            while True:
                rows = entries(await self.manager.redis.xrange(key, f"({offset}", "+", count=BATCH))
                for entry in rows:
                    offset = entry.offset
                    if entry.event and self.heard.covers(namespace, entry.room) and self._fresh(namespace, offset):
                        await self.manager.deliver_entry(namespace, entry)
                if len(rows) < BATCH:
                    break

    async def _history_heads(self) -> None:
        """Where each stream ends now (opening an empty one with a marker, so offsets always have a
        first entry to be compared with); this instance delivers what follows."""
        assert isinstance(self.manager.history, RedisHistory)
        for namespace in self.manager.server.namespace_handlers:
            key = self.manager.history.stream(namespace)
            newest = entries(await self.manager.redis.xrevrange(key, "+", "-", count=1))
            if not newest:
                marker = Entry("", [], None, "", []).to_json()
                await self.manager.redis.xadd(key, {"m": marker}, maxlen=self.manager.history.size, approximate=True)
                newest = entries(await self.manager.redis.xrevrange(key, "+", "-", count=1))
            self.manager.frontier.setdefault(namespace, newest[0].offset)

    def _fresh(self, namespace: str, offset: str) -> bool:
        """Whether an entry comes after the last one delivered here (else a copy, or one read already)."""
        last = self.manager.frontier.get(namespace)
        return last is None or stream_order(offset) > stream_order(last)

    def _note_trimmed(self, key: str, offset: str, first: list[Entry]) -> None:
        """Count and say a gap when the stream now starts after `offset`, the last entry read here."""
        if first and stream_order(first[0].offset) <= stream_order(offset):
            return
        self.history_gaps += 1
        self.on_gap()
        namespace = key.rpartition(":history:")[2]
        if namespace in self.manager.recent:  # what was delivered here no longer follows on without a gap: an offset
            self.manager.recent[namespace].clear()  # from before the stream's first entry (or now, for a stream that
            # started again) is recovered from nowhere
            self.manager.floor[namespace] = first[0].offset if first else f"{int(time.time() * 1000)}-0"
        now = time.monotonic()
        if now - self._last_gap_warning > 5:  # one line per burst; ponte_history_gaps_total counts each
            self._last_gap_warning = now
            log.warning("history stream %s was trimmed past what this instance had read (it fell HISTORY_SIZE "
                        "behind, or Redis lost its data): events were missed here (%d gaps so far); offsets "
                        "from before are not recoverable", key, self.history_gaps)

    async def run(self) -> None:
        """Listen on every channel this instance needs, subscribing again (with a short, bounded back-off)
        whenever Redis goes, then catching up from the streams. With a cluster (REDIS_CLUSTER_URL) the rooms'
        and namespaces' channels are sharded there, and the shared channel is heard on REDIS_URL apart."""
        manager, shared = self.manager, []
        if manager.cluster is None:
            self.heard.keep(manager.channel)
        else:
            shared.append(asyncio.get_running_loop().create_task(
                listen(manager.redis, manager.channel, manager.take_shared, self._on_shared)))
        for namespace in manager.server.namespace_handlers:
            self.heard.keep(room_channel(manager.channel, namespace, None), namespace)
        try:
            await self._listen()
        finally:
            await stop(shared)

    async def _listen(self) -> None:
        await retrying(self._attempt, self._lost)

    async def _attempt(self) -> None:
        """One connection: subscribe every channel, keep subscriptions in step with members, read."""
        cluster = self.manager.cluster
        pubsub: Any = self.manager.redis.pubsub() if cluster is None else ShardedBus(cluster)
        syncing: asyncio.Task[None] | None = None
        try:
            self.heard.reset()
            await self.heard.sync(pubsub)
            syncing = asyncio.get_running_loop().create_task(self._sync(pubsub))
            await self._read(self._events(pubsub))
        finally:
            await stop([syncing] if syncing is not None else [])
            await close_quietly(pubsub)

    def _lost(self, error: Exception) -> bool:
        """The connection is gone: say so (once per outage); whether it had been up (a quick retry)."""
        was = self.subscribed
        self._on_subscription(False, error)
        return was

    async def _sync(self, pubsub: Any) -> None:
        """Subscribe and unsubscribe as members come and go. A command that fails leaves the connection in
        doubt: it is closed, so that `_read` fails and everything is subscribed again on a new one."""
        heard = self.heard
        while True:
            heard.changed.clear()
            due = heard.expire()
            try:
                await heard.sync(pubsub)
            except Exception as exc:  # noqa: BLE001 - start over on a new connection
                log.warning("Redis subscription failed (%s: %s); subscribing again", type(exc).__name__, exc)
                await close_quietly(pubsub)
                return
            try:
                await asyncio.wait_for(heard.changed.wait(), due)
            except TimeoutError:
                pass

    @staticmethod
    async def _events(pubsub: Any) -> AsyncIterator[tuple[str, str, Any]]:
        """(kind, channel, data) as a plain subscription or a cluster's `ShardedBus` gives them."""
        if isinstance(pubsub, ShardedBus):
            while True:
                yield await pubsub.get()
        async for message in pubsub.listen():
            channel = message["channel"]
            yield message["type"], channel.decode() if isinstance(channel, bytes) else channel, message["data"]

    async def _read(self, events: AsyncIterator[tuple[str, str, Any]]) -> None:
        """Take every message, in the order Redis sent them; until every channel is confirmed and the
        streams are caught up, messages wait (HELD_MAX of them: past it, they are read from the stream)."""
        held: list[tuple[str, bytes]] | None = []
        overflow = 0
        async for kind, channel, data in events:
            if kind == "message":
                if held is None:
                    await self._take(channel, data)
                elif len(held) < HELD_MAX:
                    held.append((channel, data))
                else:
                    overflow += 1
            elif kind == "subscribe":
                if not self.heard.confirm(channel) and held is None:
                    await self._catch_up()  # redis-py subscribed again by itself: something may be missed
                if held is not None and self.heard.all_confirmed():
                    await self._catch_up()
                    for channel, data in held:
                        await self._take(channel, data)
                    if overflow:
                        await self._overflowed(overflow)
                    held, overflow = None, 0
                    self._on_subscription(True, None)
        raise ConnectionError("the subscription ended")  # closed under it: subscribe again

    async def _overflowed(self, count: int) -> None:
        """Messages dropped past HELD_MAX: read again from the streams, or (history off) counted as a gap."""
        if isinstance(self.manager.history, RedisHistory):
            return await self._catch_up()
        self.history_gaps += 1
        self.on_gap()
        log.warning("%d messages arrived while catching up, more than could be held: lost here", count)

    async def _take(self, channel: str, data: bytes) -> None:
        """One message: python-socketio's or a control (the shared channel), or an event to rooms."""
        where = self.heard.where.get(channel)
        if where is None:
            return  # a channel dropped a moment ago
        namespace = where[0]
        if not namespace:
            return await self.manager.take_shared(data)
        self.received += 1
        try:
            offset, sender, text = split_message(data)
            if not self._first_copy(namespace, offset, sender):
                return  # a copy of an event to several rooms, or one read already: not decoded again
            entry = Entry.from_json("" if offset == "-" else offset, text)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed message on %s", channel)
            return
        if offset == "-":
            await self.manager.deliver_live(namespace, entry.room, entry.skip, entry.event, entry.args)
        else:
            await self.manager.deliver_entry(namespace, entry)

    def _first_copy(self, namespace: str, offset: str, sender: str) -> bool:
        """Whether this instance has not taken this event yet: by its offset (history on), else by its
        sender, remembered for the latest SEEN (and never its own: it delivered those when it emitted them)."""
        if offset != "-":
            return self._fresh(namespace, offset)
        if sender in self._seen or sender.startswith(self.manager.host_id):
            return False
        self._seen[sender] = None
        if len(self._seen) > SEEN:
            del self._seen[next(iter(self._seen))]
        return True

    def _on_subscription(self, up: bool, error: Exception | None) -> None:
        if error is not None and (self.subscribed or not self._said_down):  # once per outage
            log.warning("Redis unavailable (%s: %s); retrying", type(error).__name__, error)
            self._said_down = True
        self._said_down = self._said_down and not up
        if up and not self.rooms_up:
            self.reconnects += 1
            log.info("subscribed to Redis: %d channels", len(self.heard.where))
        self.rooms_up = up

    def _on_shared(self, up: bool, error: Exception | None) -> None:
        """The shared channel's state, heard apart from the rooms' with a cluster."""
        if error is not None and self.shared_up:
            log.warning("Redis shared channel unavailable (%s: %s); retrying", type(error).__name__, error)
        self.shared_up = up
