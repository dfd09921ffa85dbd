"""REDIS_CLUSTER_URL: the rooms' channels ride Redis 7 sharded pub/sub on a real three-master Redis Cluster,
spread over its shards, while presence, sessions and jobs stay on REDIS_URL."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.factory import SIO_KEY
from app.settings import Settings
from app.transport.channels import room_channel
from app.transport.cluster import connect_cluster
from app.transport.emitter import Emitter
from app.worker import CODECS
from conftest import make_token
from tests.app.test_cli import one_line_failure, run_app
from tests.cluster_fixture import RedisClusterProcess
from tests.multi.test_redis_faults import until

NOTICE = {"tipo": "info", "titulo": "t", "mensagem": "m"}


def manager(server: Any) -> Any:
    return server.app[SIO_KEY].manager


async def gateways(start_server: Any, redis_server: Any, redis_cluster: RedisClusterProcess) -> tuple[Any, Any]:
    a, b = [await start_server(redis_url=redis_server.url, redis_cluster_url=redis_cluster.url, history_size=0)
            for _ in range(2)]
    await until(lambda: manager(a).subscribed and manager(b).subscribed)
    return a, b


async def connected(server: Any, raw_to: Any, user: str) -> Any:
    ws = await raw_to(server, "/ws", make_token(user))
    await ws.send({"event": "SESSAO_PING", "data": {}})
    await ws.recv_kind("SESSAO_PONG")  # in her rooms, subscribed
    return ws


async def shard_channels(cluster: RedisClusterProcess) -> list[set[str]]:
    """The sharded channels each master has subscribers on."""
    found = []
    for port in cluster.ports:
        node = aioredis.Redis(port=port)
        try:
            found.append({name.decode() for name in await node.execute_command("PUBSUB", "SHARDCHANNELS")})
        finally:
            await node.aclose()
    return found


def test_a_cluster_needs_redis_url_and_no_history() -> None:
    """Settings refuse REDIS_CLUSTER_URL alone, or with HISTORY_SIZE > 0, saying why."""
    with pytest.raises(ValueError, match="needs REDIS_URL"):
        Settings(jwt_secret="x" * 32, redis_cluster_url="redis://127.0.0.1:7000", history_size=0)
    with pytest.raises(ValueError, match="needs HISTORY_SIZE=0"):
        Settings(jwt_secret="x" * 32, redis_url="redis://127.0.0.1:6379", redis_cluster_url="redis://127.0.0.1:7000")


def test_redis_url_on_a_cluster_is_refused_in_one_line(redis_cluster: RedisClusterProcess, tmp_path: Path) -> None:
    """REDIS_URL pointing at a cluster node stops start-up with one line saying where the cluster goes."""
    line = one_line_failure(run_app(REDIS_URL=redis_cluster.url, PORT="0", PONTE_HOME=str(tmp_path)))
    assert "REDIS_URL points at a Redis Cluster" in line and "REDIS_CLUSTER_URL" in line, line


async def test_rooms_spread_over_the_shards_and_reach_their_members_once(
        start_server: Any, redis_server: Any, redis_cluster: RedisClusterProcess, raw_to: Any) -> None:
    """30 users, even ones on A and odd ones on B: their rooms' channels are subscribed on every one of the
    three shards; an event to each user from the other instance reaches her once; A hears only its 15
    users' events; an event to two rooms reaches each member once."""
    a, b = await gateways(start_server, redis_server, redis_cluster)
    users = [f"u{n}" for n in range(30)]
    clients = [await connected(a if n % 2 == 0 else b, raw_to, user) for n, user in enumerate(users)]
    rooms = {room_channel("socketio", "/omni", f"user:{user}") for user in users}
    shards = await shard_channels(redis_cluster)
    assert all(shard & rooms for shard in shards), shards  # every shard carries some of them
    assert set.union(*shards) >= rooms

    before = manager(a).listener.received, manager(b).listener.received
    for n, user in enumerate(users):
        sender = b if n % 2 == 0 else a
        await sender.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": user}, room=f"user:{user}",
                                       namespace="/omni")
    for user, ws in zip(users, clients):
        assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == user
    assert (manager(a).listener.received - before[0], manager(b).listener.received - before[1]) == (15, 15)

    await b.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": "both"}, room=["user:u0", "user:u2"],
                              namespace="/omni")
    for ws in (clients[0], clients[2]):
        assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "both"
        await ws.send({"event": "SESSAO_PING", "data": {"request_id": "end"}})
        assert (await ws.recv())["event"] == "SESSAO_PONG"  # no second copy


async def test_every_room_is_heard_again_within_5_s_of_a_shard_coming_back(
        start_server: Any, redis_server: Any, redis_cluster: RedisClusterProcess, raw_to: Any) -> None:
    """A master of the cluster is killed (without replicas, the cluster stops answering) and started again:
    within 5 s of it answering, A is subscribed to every one of its 30 rooms' channels again (counted), and
    an event to each room reaches its member."""
    a, b = await gateways(start_server, redis_server, redis_cluster)
    users = [f"v{n}" for n in range(30)]
    clients = [await connected(a, raw_to, user) for user in users]
    wanted = set(manager(a).heard.where)
    redis_cluster.stop_node(1)
    await until(lambda: not manager(a).subscribed)
    redis_cluster.start_node(1)
    back = time.monotonic()
    await until(lambda: manager(a).subscribed and manager(b).subscribed, timeout=10)
    took = time.monotonic() - back
    assert took < 5, f"subscribed again {took:.1f} s after the shard answered"
    assert manager(a).heard.confirmed >= wanted  # not one missed
    assert set.union(*await shard_channels(redis_cluster)) >= {
        room_channel("socketio", "/omni", f"user:{user}") for user in users}
    for user in users:
        await b.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": user}, room=f"user:{user}",
                                  namespace="/omni")
    for user, ws in zip(users, clients):
        assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == user


async def test_a_workers_events_reach_the_rooms_through_the_cluster(
        start_server: Any, redis_server: Any, redis_cluster: RedisClusterProcess, raw_to: Any) -> None:
    """A job's emitter (app/worker.py builds it so with REDIS_CLUSTER_URL) publishes on the sharded channels."""
    a, _ = await gateways(start_server, redis_server, redis_cluster)
    ws = await connected(a, raw_to, "alice")
    emitter = Emitter(aioredis.Redis.from_url(redis_server.url), "socketio", 0, CODECS,
                      connect_cluster(redis_cluster.url))
    try:
        await emitter.emit("NOTIFICACAO_GERAL", {**NOTICE, "titulo": "from a job"}, namespace="/omni",
                           to="user:alice")
        assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == "from a job"
    finally:
        await emitter.close()
        await emitter.redis.aclose()
