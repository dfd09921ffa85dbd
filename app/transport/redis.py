"""Fan-out across instances through Redis: one pub/sub channel per room (channels.py), so that an
instance hears only the rooms it has members in, plus python-socketio's shared channel, so that a worker
using python-socketio's write-only `AsyncRedisManager` emits to our clients too.

Unlike python-socketio's `AsyncRedisManager`, only what must cross instances crosses Redis: a reply
to a client of this instance is delivered locally and never published, publishing is batched
through one bounded outbox (emits never wait for Redis), and a lost Redis is retried with a short,
bounded back-off while local delivery carries on. Every message that could not be published is
counted and logged.

With history on, an event to rooms goes into its namespace's stream and out on its rooms' channels in
one Lua call; every instance with a member in one of those rooms delivers it when it hears it, this one
too, so all deliver the same events in the same order with the same offsets. When its connection to
Redis comes back, an instance subscribes to its channels again and reads the stream from the last
offset it delivered, so that nothing sent meanwhile to its rooms is lost (a gap the stream no longer
holds is counted and logged).
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import urlparse

import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError
from redis.utils import HIREDIS_AVAILABLE
from socketio.redis_manager import parse_redis_sentinel_url

from .channels import PUBLISH_SCRIPT, channels_of, room_channel
from .cluster import Item, ShardedPublisher
from .events import args_of
from .history import Entry, RedisHistory, entries, stream_order
from .listener import RoomListener
from .manager import FanoutManager
from ..tasks import stop, stop_if_cancelled

log = logging.getLogger("ponte.redis")
BATCH = 256  # messages per pipeline to Redis
READY_WAIT = 2.0  # seconds an entering client waits for its room's subscription before going on


class PubSubMessage(BaseModel):
    """A python-socketio pub/sub message, as any python-socketio manager publishes it."""

    method: str
    host_id: str | None = None
    event: str | None = None
    data: Any = None
    namespace: str | None = None
    room: Any = None
    skip_sid: Any = None
    sid: str | None = None
    binary: bool = False
    payload: dict[str, Any] | None = None  # Ponte's own control messages (`share`)


def connect(url: str, tls_verify: bool = True, max_connections: int = 32, wait: float = 5.0) -> aioredis.Redis:
    """A redis-py asyncio client for redis://, rediss:// or redis+sentinel:// URLs, whose pool of
    `max_connections` makes a burst wait (up to `wait` seconds) for a connection instead of failing:
    redis-py's default pool raises "Too many connections", which under a reconnect storm lost events
    and recoveries. Replies are parsed by hiredis where it is installed (a dependency on CPython)."""
    log.info("Redis replies parsed by %s", "hiredis" if HIREDIS_AVAILABLE else "redis-py's Python parser")
    scheme = urlparse(url).scheme
    if scheme == "redis+sentinel":
        sentinels, service, kwargs = parse_redis_sentinel_url(url)
        sentinel = aioredis.Sentinel(sentinels, socket_connect_timeout=2, **kwargs)
        return sentinel.master_for(service or "mymaster", max_connections=max_connections)
    options: dict[str, Any] = {"health_check_interval": 5, "socket_connect_timeout": 2, "socket_keepalive": True}
    if scheme == "rediss" and not tls_verify:
        options["ssl_cert_reqs"] = ssl.CERT_NONE  # managed Redis with a self-signed certificate
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait, **options)
    return aioredis.Redis(connection_pool=pool)


class RedisFanoutManager(FanoutManager):
    """FanoutManager plus Redis: a channel per room with local members, and one shared by every instance."""

    def __init__(self, client: aioredis.Redis, channel: str = "socketio", send_queue_limit: int = 1024,
                 outbox_limit: int = 10000) -> None:
        super().__init__(send_queue_limit)
        self.redis = client
        self.channel = channel
        self.host_id = uuid.uuid4().hex
        # what goes to Redis, in order: (None, shared channel message) or (namespace, (event to rooms, sender))
        self.outbox: asyncio.Queue[tuple[str | None, Any]] = asyncio.Queue(outbox_limit)
        self._script = client.register_script(PUBLISH_SCRIPT)
        self._sent = 0  # events to rooms this instance published (each message's sender is host:n)
        self.cluster: Any = None  # REDIS_CLUSTER_URL: a RedisCluster that carries the rooms' channels
        self._heads: dict[str, asyncio.Future[str | None]] = {}  # namespace → a read of its stream's head
        self.published = 0
        self.publish_failures = 0  # messages that could not be published
        self.on_lost: Callable[[int, str], None] = lambda count, why: None
        self._last_warning = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.listener = RoomListener(self)  # what this instance hears, and whether it hears it
        self.heard = self.listener.heard  # the channels it listens on
        self._handlers: dict[str, Callable[[PubSubMessage], Awaitable[None]]] = {
            "emit": self._remote_emit, "disconnect": self._remote_disconnect,
            "enter_room": self._remote_room, "leave_room": self._remote_room,
            "close_room": self._remote_close_room}

    @property
    def subscribed(self) -> bool:
        """Every channel is subscribed, and what was missed meanwhile is read."""
        return self.listener.subscribed

    def initialize(self) -> None:
        super().initialize()
        jobs = [self.listener.run, self._publish_loop]
        self._tasks = [asyncio.get_running_loop().create_task(job()) for job in jobs]

    async def close(self, flush_timeout: float = 2.0) -> None:
        """Publish what is queued (for a bounded time), then stop and disconnect."""
        deadline = time.monotonic() + flush_timeout
        while not self.outbox.empty() and self.subscribed and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await stop(self._tasks)
        self._tasks = []
        await self.redis.aclose()
        if self.cluster is not None:
            await self.cluster.aclose()

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                   callback: Any = None, to: Any = None, **kwargs: Any) -> None:
        room = to or room
        if callback is not None or self._is_local_sid(namespace, room):  # acks and replies: here only
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback)
        if self.history is not None:
            return await self.keep(namespace, room, skip_sid, event, args_of(data))
        await self.deliver_live(namespace, room, skip_sid, event, args_of(data))
        if not kwargs.get("ignore_queue"):  # the other instances with members in those rooms, live too
            self._queue(namespace, Entry("", room, skip_sid, event, args_of(data)))

    async def share(self, name: str, payload: dict[str, Any]) -> None:
        """Apply a change here at once and tell the other instances through Redis."""
        await self.controls[name](payload)
        self.publish({"method": f"ponte:{name}", "payload": payload, "host_id": self.host_id})

    async def keep(self, namespace: str, room: Any, skip_sid: Any, event: str, args: list[Any]) -> None:
        """An event to rooms goes into the namespace's stream and out on its rooms' channels; every instance
        with members there, this one too, delivers it when it hears it, so all deliver the same events in
        the same order with the same offsets."""
        entry = Entry("", room, skip_sid, event, args)
        if not self._queue(namespace, entry):
            await self.deliver_unkept(namespace, entry)

    def _queue(self, namespace: str, entry: Entry) -> bool:
        """Queue an event to rooms for Redis; a full outbox counts as a loss (False)."""
        self._sent += 1
        try:  # the sender is fixed now: a batch sent again after an error is taken once
            self.outbox.put_nowait((namespace, (entry, f"{self.host_id}:{self._sent}")))
            return True
        except asyncio.QueueFull:
            self._lost(1, "outbox full")
            return False

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        """Enter a room and, if this instance had no member in it, wait (READY_WAIT at most) until Redis
        has subscribed it to the room's channel: what is sent to the room from then on reaches the client."""
        self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if room is not None and self.subscribed:  # Redis away: no wait (the catch-up brings what is missed)
            await self.heard.ready([room_channel(self.channel, namespace, room)], READY_WAIT)

    async def listening(self, namespace: str, rooms: list[Any]) -> bool:
        """Subscribe to `rooms` (if no member holds them they go after LINGER) and wait for Redis to confirm:
        a reconnecting client's rooms, before its missed events are read from the stream."""
        channels = [self.heard.want(namespace, room) for room in rooms]
        for room in rooms:
            if room not in self.rooms.get(namespace, {}):
                self.heard.drop(namespace, room)
        return self.subscribed and await self.heard.ready(channels, READY_WAIT)

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if room is not None and len(self.rooms[namespace][room]) == 1:
            self.heard.want(namespace, room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        if room is not None and room not in self.rooms.get(namespace, {}):
            self.heard.drop(namespace, room)

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        members = self.rooms.get(namespace, {})
        gone = [room for room in self._rooms_of.get(sid, ()) if room is not None and len(members.get(room, ())) == 1]
        super().basic_disconnect(sid, namespace, **kwargs)
        for room in gone:
            self.heard.drop(namespace, room)

    async def position(self, namespace: str) -> str:
        """Where a new client starts: the head of the namespace's stream, read after this instance
        subscribed (one read shared by the clients connecting meanwhile), or what was delivered here last
        if Redis does not answer."""
        read = self._heads.get(namespace)
        if read is None:
            read = self._heads[namespace] = asyncio.ensure_future(self._head(namespace))
            read.add_done_callback(lambda _: self._heads.pop(namespace, None))
        try:
            head = await asyncio.shield(read)
        except Exception:  # noqa: BLE001 - Redis away: the frontier is still a place nothing is missed from
            head = None
        return await super().position(namespace) if head is None else max(
            head, self.frontier.get(namespace, head), key=stream_order)

    async def _head(self, namespace: str) -> str | None:
        assert isinstance(self.history, RedisHistory)
        newest = entries(await self.redis.xrevrange(self.history.stream(namespace), "+", "-", count=1))
        return newest[0].offset if newest else None

    async def deliver_unkept(self, namespace: str, entry: Entry) -> None:
        """Deliver here an event that could not be kept: live, without an offset (its loss elsewhere is
        counted)."""
        await self.deliver_live(namespace, entry.room, entry.skip, entry.event, entry.args)

    def _is_local_sid(self, namespace: str, room: Any) -> bool:
        return isinstance(room, str) and self.is_connected(room, namespace)

    # -- publishing -------------------------------------------------------------------------------

    def publish(self, message: dict[str, Any]) -> None:
        """Queue a message for the other instances; a full outbox counts as a loss."""
        try:
            self.outbox.put_nowait((None, json.dumps(message, separators=(",", ":"))))
        except asyncio.QueueFull:
            self._lost(1, "outbox full")

    async def _publish_loop(self) -> None:
        while True:
            stop_if_cancelled()
            batch = [await self.outbox.get()]
            while len(batch) < BATCH and not self.outbox.empty():
                batch.append(self.outbox.get_nowait())
            for attempt in (1, 2):  # a pooled connection may be stale after Redis restarted: retry once
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for namespace, item in batch:
                            if namespace is None:
                                pipe.publish(self.channel, item)
                            elif self.cluster is None:
                                await self._publish_entry(pipe, namespace, *item)
                        await pipe.execute()
                    if self.cluster is not None:
                        await self._publish_sharded(batch)
                    self.published += len(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - Redis down: count, log, carry on
                    if attempt == 2:
                        self._lost(len(batch), f"{type(exc).__name__}: {exc}")
                        for namespace, item in batch:  # this instance's clients still get them, live (without
                            if namespace is not None and self.history is not None:  # history: they did)
                                await self.deliver_unkept(namespace, item[0])

    async def _publish_entry(self, pipe: Any, namespace: str, entry: Entry, sender: str) -> None:
        """Queue on `pipe` the Lua call that keeps an event (history on) and publishes it on its rooms'
        channels, both at once."""
        history = self.history
        keys = [history.stream(namespace)] if isinstance(history, RedisHistory) else []
        size = history.size if history is not None else 0
        await self._script(keys, [size, sender, entry.to_json(), *channels_of(self.channel, namespace, entry.room)],
                           client=pipe)

    async def _publish_sharded(self, batch: list[tuple[str | None, Any]]) -> None:
        """The batch's events to rooms on the cluster's sharded channels (REDIS_CLUSTER_URL: no history)."""
        items: list[Item] = [(None, 0, item[0].to_json(), channels_of(self.channel, namespace, item[0].room), item[1])
                             for namespace, item in batch if namespace is not None]
        if items:
            await ShardedPublisher(self.cluster).publish(items)

    def _lost(self, count: int, why: str) -> None:
        self.publish_failures += count
        self.on_lost(count, why)
        now = time.monotonic()
        if now - self._last_warning > 5:  # one line per outage burst, the count is exact
            self._last_warning = now
            log.warning("could not publish to Redis (%s); %d messages lost so far", why, self.publish_failures)

    async def take_shared(self, raw: bytes | str) -> None:
        """A message of the shared channel: python-socketio's (its emitters, room changes) or a control."""
        try:
            message = PubSubMessage.model_validate_json(raw)
        except ValidationError:
            log.warning("ignored a malformed pub/sub message")
            return
        if message.host_id == self.host_id:
            return
        handler = self._handlers.get(message.method)
        if handler is None and message.method.startswith("ponte:"):
            handler = self._remote_control
        if handler is None:
            return
        try:
            await handler(message)
        except Exception:  # noqa: BLE001 - one bad message must not stop the listener
            log.exception("pub/sub %s failed", message.method)

    async def _remote_control(self, message: PubSubMessage) -> None:
        control = self.controls.get(message.method.removeprefix("ponte:"))
        if control is not None and message.payload is not None:
            await control(message.payload)

    async def _remote_emit(self, message: PubSubMessage) -> None:
        """An emit published by another instance (to a connection of this one) or by a python-socketio
        write-only emitter: delivered here, live; such events are not kept in the history."""
        if message.binary or message.event is None:
            return  # binary payloads are refused on every transport
        args = message.data if isinstance(message.data, list) else [message.data]
        await self.deliver_live(message.namespace or "/", message.room, message.skip_sid, message.event, args)

    async def _remote_disconnect(self, message: PubSubMessage) -> None:
        namespace = message.namespace or "/"
        if message.sid and self.is_connected(message.sid, namespace):
            await self.server.disconnect(message.sid, namespace=namespace, ignore_queue=True)

    async def _remote_room(self, message: PubSubMessage) -> None:
        namespace = message.namespace or "/"
        if message.sid and self.is_connected(message.sid, namespace):
            if message.method == "enter_room":
                self.basic_enter_room(message.sid, namespace, message.room)
            else:
                self.basic_leave_room(message.sid, namespace, message.room)

    async def _remote_close_room(self, message: PubSubMessage) -> None:
        self.basic_close_room(message.room, message.namespace or "/")
