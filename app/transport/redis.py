"""Fan-out across instances through Redis pub/sub, in python-socketio's own message format, so a
worker using python-socketio's write-only `AsyncRedisManager` emits to our clients too.

Unlike python-socketio's `AsyncRedisManager`, only what must cross instances crosses Redis: a reply
to a client of this instance is delivered locally and never published, publishing is batched
through one bounded outbox (emits never wait for Redis), and a lost Redis is retried with a short,
bounded back-off while local delivery carries on. Every message that could not be published is
counted and logged.
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

from .history import Entry, RedisHistory, entries, stream_order
from .manager import FanoutManager, args_of
from ..tasks import stop, stop_if_cancelled

log = logging.getLogger("ponte.redis")
BATCH = 256
RETRY_MAX = 1.0  # seconds between reconnection attempts, at most: fan-out resumes well within 5 s


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


async def listen(client: aioredis.Redis, channel: str, receive: Callable[[Any], Awaitable[None]],
                 state: Callable[[bool, Exception | None], None]) -> None:
    """Hand every message of a pub/sub channel to `receive`, subscribing again (with a short, bounded
    back-off) whenever Redis goes; `state(True, None)` once subscribed, `state(False, error)` on a loss.
    Gateways (`RedisFanoutManager`) and workers (`emitter.Emitter`) listen this way."""
    delay = 0.1
    while True:
        stop_if_cancelled()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            state(True, None)
            delay = 0.1
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    await receive(message["data"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis absent or gone: retry, bounded
            state(False, exc)
        finally:
            try:
                await pubsub.aclose()
            except Exception:  # noqa: BLE001
                pass
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)


class RedisFanoutManager(FanoutManager):
    """FanoutManager plus a Redis channel shared by every instance."""

    def __init__(self, client: aioredis.Redis, channel: str = "socketio", send_queue_limit: int = 1024,
                 outbox_limit: int = 10000) -> None:
        super().__init__(send_queue_limit)
        self.redis = client
        self.channel = channel
        self.host_id = uuid.uuid4().hex
        # what goes to Redis, in order: (None, pub/sub message) or (namespace, history entry to XADD)
        self.outbox: asyncio.Queue[tuple[str | None, Any]] = asyncio.Queue(outbox_limit)
        self.subscribed = False
        self._said_down = False  # this outage was logged
        self.published = 0
        self.publish_failures = 0  # messages that could not be published
        self.history_gaps = 0  # times a history stream was found trimmed or lost past what was read here
        # set once this instance knows where each history stream stands: a client connecting before that
        # would get an offset the stream does not know (start-up waits for it while Redis answers)
        self.history_ready = asyncio.Event()
        self.on_gap: Callable[[], None] = lambda: None
        self.reconnects = 0
        self.on_lost: Callable[[int, str], None] = lambda count, why: None
        self._last_warning = 0.0
        self._last_gap_warning = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: dict[str, Callable[[PubSubMessage], Awaitable[None]]] = {
            "emit": self._remote_emit, "disconnect": self._remote_disconnect,
            "enter_room": self._remote_room, "leave_room": self._remote_room,
            "close_room": self._remote_close_room}

    def initialize(self) -> None:
        super().initialize()
        jobs = [self._listen, self._publish_loop] + ([self._read_history] if self.history is not None else [])
        self._tasks = [asyncio.get_running_loop().create_task(job()) for job in jobs]

    async def close(self, flush_timeout: float = 2.0) -> None:
        """Publish what is queued (for a bounded time), then stop and disconnect."""
        deadline = time.monotonic() + flush_timeout
        while not self.outbox.empty() and self.subscribed and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await stop(self._tasks)
        self._tasks = []
        await self.redis.aclose()

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                   callback: Any = None, to: Any = None, **kwargs: Any) -> None:
        room = to or room
        if self.history is not None and callback is None and not self._is_local_sid(namespace, room):
            return await self.keep(namespace, room, skip_sid, event, args_of(data))
        await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback)
        if kwargs.get("ignore_queue") or callback is not None or self._is_local_sid(namespace, room):
            return
        args = list(data) if isinstance(data, tuple) else [data]
        self.publish({"method": "emit", "event": event, "data": args, "binary": False, "namespace": namespace,
                      "room": room, "skip_sid": skip_sid, "callback": None, "host_id": self.host_id})

    async def share(self, name: str, payload: dict[str, Any]) -> None:
        """Apply a change here at once and tell the other instances through Redis."""
        await self.controls[name](payload)
        self.publish({"method": f"ponte:{name}", "payload": payload, "host_id": self.host_id})

    async def keep(self, namespace: str, room: Any, skip_sid: Any, event: str, args: list[Any]) -> None:
        """An event to rooms goes into the namespace's stream; every instance, this one too, delivers it
        when it reads it back, so all deliver the same events in the same order with the same offsets."""
        entry = Entry("", room, skip_sid, event, args)
        try:
            self.outbox.put_nowait((namespace, entry))
        except asyncio.QueueFull:
            self._lost(1, "outbox full")
            await self.deliver_unkept(namespace, entry)

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
                            else:
                                assert isinstance(self.history, RedisHistory)
                                self.history.add(pipe, namespace, item.to_json())
                        await pipe.execute()
                    self.published += len(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - Redis down: count, log, carry on
                    if attempt == 2:
                        self._lost(len(batch), f"{type(exc).__name__}: {exc}")
                        for namespace, item in batch:  # this instance's clients still get them, live
                            if namespace is not None:
                                await self.deliver_unkept(namespace, item)

    # -- the history streams: every event to rooms, read back in order by every instance ------------------

    async def _read_history(self) -> None:
        assert isinstance(self.history, RedisHistory)
        history = self.history
        streams = {history.stream(namespace): namespace for namespace in self.server.namespace_handlers}
        last: dict[str, str] = {}
        delay = 0.1
        while True:
            stop_if_cancelled()
            try:
                if not last:
                    last = await self._history_heads(streams)
                    self.history_ready.set()
                else:
                    await self._check_trimmed(last)
                delay = 0.1
                flowing = False
                while True:
                    answer: Any = await (self._read_checked(last) if flowing else
                                         self.redis.xread(last, count=BATCH, block=1000))  # type: ignore[arg-type]
                    flowing = bool(answer)
                    for stream, rows in answer or ():
                        key = stream.decode() if isinstance(stream, bytes) else stream
                        for entry in entries(rows):
                            last[key] = entry.offset
                            if entry.event:  # the marker that opens a stream reaches no one
                                await self.deliver_entry(streams[key], entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis absent or gone: retry from where we were
                log.warning("history stream unavailable (%s: %s); retrying", type(exc).__name__, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _history_heads(self, streams: dict[str, str]) -> dict[str, str]:
        """Where each stream ends now (opening an empty one with a marker, so offsets always have a
        first entry to be compared with); every instance reads on from there."""
        heads: dict[str, str] = {}
        for key, namespace in streams.items():
            newest = entries(await self.redis.xrevrange(key, "+", "-", count=1))
            if not newest:
                marker = Entry("", [], None, "", []).to_json()
                await self.redis.xadd(key, {"m": marker}, maxlen=self.history.size if self.history else 1,
                                      approximate=True)
                newest = entries(await self.redis.xrevrange(key, "+", "-", count=1))
            heads[key] = newest[0].offset
            self.frontier.setdefault(namespace, heads[key])
        return heads

    async def _read_checked(self, last: dict[str, str]) -> Any:
        """A read while entries flow: each stream's first entry and what follows `last`, in one transaction,
        so that entries trimmed before this instance read them (it fell HISTORY_SIZE behind: a stopped or
        starved process) are counted as a gap, never skipped silently. (A blocking read, when idle, is
        answered by the first entry added: nothing can be trimmed past it unseen.)"""
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in last:
                pipe.xrange(key, "-", "+", count=1)
            pipe.xread(last, count=BATCH)  # type: ignore[arg-type]
            *firsts, answer = await pipe.execute()
        for (key, offset), first in zip(list(last.items()), firsts):
            self._note_trimmed(key, offset, entries(first))
        return answer

    async def _check_trimmed(self, last: dict[str, str]) -> None:
        """After an outage: entries trimmed before this instance read them are lost here, and counted."""
        for key, offset in last.items():
            self._note_trimmed(key, offset, entries(await self.redis.xrange(key, "-", "+", count=1)))

    def _note_trimmed(self, key: str, offset: str, first: list[Entry]) -> None:
        """Count and say a gap when the stream now starts after `offset`, the last entry read here."""
        if first and stream_order(first[0].offset) <= stream_order(offset):
            return
        self.history_gaps += 1
        self.on_gap()
        namespace = key.rpartition(":history:")[2]
        if namespace in self.recent:  # what was delivered here no longer follows on without a gap: an offset
            self.recent[namespace].clear()  # from before the stream's first entry (or now, for a stream that
            # started again) is recovered from nowhere
            self.floor[namespace] = first[0].offset if first else f"{int(time.time() * 1000)}-0"
        now = time.monotonic()
        if now - self._last_gap_warning > 5:  # one line per burst; ponte_history_gaps_total counts each
            self._last_gap_warning = now
            log.warning("history stream %s was trimmed past what this instance had read (it fell HISTORY_SIZE "
                        "behind, or Redis lost its data): events were missed here (%d gaps so far); offsets "
                        "from before are not recoverable", key, self.history_gaps)

    def _lost(self, count: int, why: str) -> None:
        self.publish_failures += count
        self.on_lost(count, why)
        now = time.monotonic()
        if now - self._last_warning > 5:  # one line per outage burst, the count is exact
            self._last_warning = now
            log.warning("could not publish to Redis (%s); %d messages lost so far", why, self.publish_failures)

    # -- listening --------------------------------------------------------------------------------

    async def _listen(self) -> None:
        await listen(self.redis, self.channel, self._receive, self._on_subscription)

    def _on_subscription(self, up: bool, error: Exception | None) -> None:
        if error is not None and (self.subscribed or not self._said_down):  # once per outage
            log.warning("Redis unavailable (%s: %s); retrying", type(error).__name__, error)
            self._said_down = True
        self._said_down = self._said_down and not up
        self._set_subscribed(up)

    def _set_subscribed(self, value: bool) -> None:
        if value and not self.subscribed:
            self.reconnects += 1
            log.info("subscribed to Redis channel %r", self.channel)
        self.subscribed = value

    async def _receive(self, raw: bytes | str) -> None:
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
