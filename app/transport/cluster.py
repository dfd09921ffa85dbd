"""Per-room fan-out on a Redis Cluster, through Redis 7 sharded pub/sub (SSUBSCRIBE/SPUBLISH), so that
channels spread over the shards instead of every message crossing every node.

`ShardedBus` holds one dedicated connection per master and reads them itself rather than using redis-py's
`ClusterPubSub`, whose per-node `PubSub`s reconnect and subscribe again on their own (on a failed read, and
in a background task when the slot map changes) and whose `get_sharded_message` polls the nodes in turn
instead of waiting on all of them. Here a lost shard is never papered over: `get()` raises, and the caller
makes a new bus, subscribes everything again and catches up from history.

Used with REDIS_CLUSTER_URL (listener.py reads a `ShardedBus`, redis.py and emitter.py publish through a
`ShardedPublisher`), with HISTORY_SIZE=0: events spread over shards arrive in no global order, which the
history's offsets would need. REDIS_URL stays a plain Redis for presence, sessions, limits and jobs.
"""
from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Callable

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

Event = tuple[str, str, bytes | None]  # (kind, channel, payload): "subscribe", "unsubscribe" or "message"
KINDS = {b"ssubscribe": "subscribe", b"sunsubscribe": "unsubscribe", b"smessage": "message"}
# (stream key or None, MAXLEN ~ of the stream, text, channels, host id of the publishing instance)
Item = tuple[str | None, int, str, list[str], str]
INBOX = 10_000  # messages read from the shards and not yet taken


class SubscriptionLost(Exception):
    """Redis ended a subscription nobody asked to end (its slot moved to another node)."""


async def is_cluster(client_or_url: str | aioredis.Redis | RedisCluster) -> bool:
    """Whether a redis:// URL (or a client) talks to a Redis Cluster node: INFO cluster says cluster_enabled:1."""
    if isinstance(client_or_url, RedisCluster):
        return True
    if isinstance(client_or_url, str):
        client = aioredis.Redis.from_url(client_or_url, socket_connect_timeout=2)
        try:
            return await is_cluster(client)
        finally:
            await client.aclose()
    return bool((await client_or_url.info("cluster")).get("cluster_enabled"))


def connect_cluster(url: str, max_connections: int = 32) -> RedisCluster:
    """A redis-py cluster client that discovers every node from the one in `url` (`max_connections` per node)."""
    return RedisCluster.from_url(url, max_connections=max_connections, socket_connect_timeout=2,
                                 socket_keepalive=True)


class ShardedBus:
    """The sharded subscriptions of one instance: subscribe and unsubscribe channels, `get()` what comes back.

    Commands for one shard go out in one write, one SSUBSCRIBE per hash slot (Redis refuses a SSUBSCRIBE
    naming channels of two slots). `get()` raises once a shard connection fails, and on every later call.
    """

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self._shards: dict[str, AbstractConnection] = {}  # node name → this bus's connection to it
        self._readers: list[asyncio.Task[None]] = []
        # bounded: a reader that finds it full stops reading, Redis buffers, then cuts a subscriber that
        # stays too slow (client-output-buffer-limit pubsub), which surfaces here as a lost shard
        self._inbox: asyncio.Queue[Event | Exception] = asyncio.Queue(INBOX)
        self._where: dict[str, str] = {}  # channel → node it was subscribed on, even if its slot moved since
        self._leaving: Counter[str] = Counter()  # SUNSUBSCRIBEs sent and not yet confirmed
        self._lock = asyncio.Lock()  # one shard connection opened once; commands sent in call order

    async def subscribe(self, *channels: str) -> None:
        """Send SSUBSCRIBE for `channels`; each confirmation comes out of `get()` as ("subscribe", channel, None)."""
        await self.cluster.initialize()  # reads the slot map once; a no-op after that
        for channel in channels:
            owner = self.cluster.get_node_from_key(channel)
            assert owner is not None  # None only when asking for a replica
            self._where[channel] = owner.name
        await self._send("SSUBSCRIBE", list(channels), self._where.__getitem__)

    async def unsubscribe(self, *channels: str) -> None:
        """Send SUNSUBSCRIBE for those of `channels` this bus subscribed; others are ignored."""
        known = [channel for channel in channels if channel in self._where]
        self._leaving.update(known)
        await self._send("SUNSUBSCRIBE", known, self._where.pop)

    async def get(self) -> Event:
        """The next confirmation or message, waiting for one; raises once a shard connection is lost."""
        item = await self._inbox.get()
        if isinstance(item, Exception):
            self._inbox.put_nowait(item)  # the bus stays broken: every later call raises too
            raise item
        return item

    async def aclose(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for connection in self._shards.values():
            await connection.disconnect()
        self._readers, self._shards = [], {}

    async def _send(self, command: str, channels: list[str], node_of: Callable[[str], str]) -> None:
        groups: defaultdict[str, defaultdict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        for channel in channels:
            groups[node_of(channel)][self.cluster.keyslot(channel)].append(channel)
        async with self._lock:
            for name, slots in groups.items():
                connection = await self._shard(name)
                await connection.send_packed_command(
                    connection.pack_commands([(command, *group) for group in slots.values()]))

    async def _shard(self, name: str) -> AbstractConnection:
        """This bus's connection to node `name`, opened (and its reader started) on first use."""
        if name not in self._shards:
            node = self.cluster.get_node(node_name=name)
            assert node is not None, f"{name} left the cluster's slot map"
            # no retry and no read timeout: a failed read must end the reader, an idle one must not
            options = {**node.connection_kwargs, "retry": Retry(NoBackoff(), 0), "socket_timeout": None}
            connection = node.connection_class(**options)
            await connection.connect()
            self._shards[name] = connection
            self._readers.append(asyncio.create_task(self._read(connection)))
        return self._shards[name]

    async def _read(self, connection: AbstractConnection) -> None:
        """Hand what one shard sends to `get()`; on the first error, hand it the error and stop."""
        try:
            while True:
                kind, channel, data = await connection.read_response(push_request=True)
                await self._inbox.put(self._event(KINDS[kind], channel.decode(), data))
        except Exception as exc:  # noqa: BLE001 - any failure means messages may be lost: the caller resyncs
            await self._inbox.put(exc)

    def _event(self, kind: str, channel: str, data: bytes | int) -> Event:
        if kind == "unsubscribe":
            if not self._leaving[channel]:
                raise SubscriptionLost(f"Redis ended the subscription to {channel}")
            self._leaving[channel] -= 1
        return kind, channel, data if isinstance(data, bytes) else None  # a confirmation's data is a count


class ShardedPublisher:
    """Appends events to their history streams, then publishes them on their rooms' sharded channels.

    On a plain Redis one Lua script does both atomically. In a cluster a stream and a channel live in
    different slots, so it takes two steps (all XADDs, then all SPUBLISHes, each pipelined across nodes).
    Consequence: events to one room published by two instances at the same moment may reach a subscriber in
    an order different from their offsets; and an event whose XADD succeeded but whose SPUBLISH failed is
    in the history without having been delivered live (a subscriber catching up from history gets it).
    """

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster

    async def publish(self, batch: list[Item]) -> list[str | None]:
        """Publish `batch` in order: each item's offset (its stream id, or None without a stream)."""
        offsets = await self._append(batch)
        pipe = self.cluster.pipeline()
        for (_, _, text, channels, host_id), offset in zip(batch, offsets):
            for channel in channels:
                pipe.execute_command("SPUBLISH", channel, f"{offset or '-'} {host_id} {text}")
        await pipe.execute()
        return offsets

    async def _append(self, batch: list[Item]) -> list[str | None]:
        """XADD every item that has a stream, in batch order (the pipeline keeps order within a node)."""
        pipe = self.cluster.pipeline()
        for key, maxlen, text, _, _ in batch:
            if key is not None:
                pipe.xadd(key, {"m": text}, maxlen=maxlen, approximate=True)
        ids = iter(await pipe.execute())
        return [None if key is None else next(ids).decode() for key, *_ in batch]
