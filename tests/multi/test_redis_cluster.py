"""Sharded pub/sub on a real three-master Redis Cluster: detection, spread over shards, publishing with
offsets, and a lost shard surfacing as an error rather than a silent gap."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from app.transport.cluster import Event, ShardedBus, ShardedPublisher, connect_cluster, is_cluster
from conftest import TIMEOUT, RedisProcess
from tests.cluster_fixture import RedisClusterProcess


@pytest.fixture
async def cluster(redis_cluster: RedisClusterProcess) -> AsyncIterator[RedisCluster]:
    client = connect_cluster(redis_cluster.url)
    yield client
    await client.aclose()


async def events(bus: ShardedBus, count: int) -> list[Event]:
    """The next `count` events of `bus`, within TIMEOUT."""
    async with asyncio.timeout(TIMEOUT):
        return [await bus.get() for _ in range(count)]


async def subscribed(cluster: RedisCluster, channels: list[str]) -> ShardedBus:
    """A bus subscribed to `channels`, every subscription confirmed."""
    bus = ShardedBus(cluster)
    await bus.subscribe(*channels)
    confirmed = await events(bus, len(channels))
    assert sorted(confirmed) == sorted(("subscribe", channel, None) for channel in channels)
    return bus


async def test_is_cluster(redis_cluster: RedisClusterProcess, redis_server: RedisProcess,
                          cluster: RedisCluster) -> None:
    """A cluster node's URL is a cluster, a plain redis-server's is not; a cluster client is one."""
    assert await is_cluster(redis_cluster.url)
    assert not await is_cluster(redis_server.url)
    assert await is_cluster(cluster)
    plain = aioredis.Redis.from_url(redis_server.url)
    assert not await is_cluster(plain)
    await plain.aclose()


async def test_channels_spread_over_every_shard(redis_cluster: RedisClusterProcess, cluster: RedisCluster) -> None:
    """300 confirmed channels are each subscribed on the master owning their slot, and all three hold some."""
    channels = [f"ponte:room:/chat:room-{i}" for i in range(300)]
    bus = await subscribed(cluster, channels)
    held = []
    for port in redis_cluster.ports:
        async with aioredis.Redis(port=port) as node:
            held.append({name.decode() for name in await node.execute_command("PUBSUB", "SHARDCHANNELS")})
    await bus.aclose()
    assert all(held) and set().union(*held) == set(channels) and sum(map(len, held)) == 300


async def test_published_batch_arrives_with_offsets(cluster: RedisCluster) -> None:
    """A batch reaches the subscriber in order per channel, each message carrying its stream offset (or '-'
    without a stream), and the stream holds the XADDed entries under those offsets."""
    stream = "ponte:history:/chat"
    bus = await subscribed(cluster, ["room:a", "room:b"])
    offsets = await ShardedPublisher(cluster).publish([
        (stream, 100, "one", ["room:a", "room:b"], "h1"),
        (stream, 100, "two", ["room:a"], "h1"),
        (None, 0, "three", ["room:b"], "h2"),
    ])
    received = await events(bus, 4)
    await bus.aclose()
    first, second, none = offsets
    assert first is not None and second is not None and first < second and none is None
    assert [data for kind, channel, data in received if channel == "room:a"] == [
        f"{first} h1 one".encode(), f"{second} h1 two".encode()]
    assert [data for kind, channel, data in received if channel == "room:b"] == [
        f"{first} h1 one".encode(), b"- h2 three"]
    assert await cluster.xrange(stream) == [(first.encode(), {b"m": b"one"}), (second.encode(), {b"m": b"two"})]


async def test_lost_shard_raises_and_a_new_bus_recovers(
        redis_cluster: RedisClusterProcess, cluster: RedisCluster) -> None:
    """Stopping the master of a subscribed channel makes get() raise (and keep raising); once the node is
    back, a new bus subscribes again and receives."""
    channel = "ponte:room:/chat:lost"
    bus = await subscribed(cluster, [channel])
    owner = cluster.get_node_from_key(channel)
    assert owner is not None
    redis_cluster.stop_node(redis_cluster.ports.index(owner.port))
    async with asyncio.timeout(TIMEOUT):  # a hang fails the test
        for _ in range(2):
            with pytest.raises(RedisConnectionError):
                await bus.get()
    await bus.aclose()
    redis_cluster.start_node(redis_cluster.ports.index(owner.port))
    bus = await subscribed(cluster, [channel])
    await ShardedPublisher(cluster).publish([(None, 0, "back", [channel], "h1")])
    assert await events(bus, 1) == [("message", channel, b"- h1 back")]
    await bus.aclose()
