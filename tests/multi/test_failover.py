"""A Redis failover behind Sentinel: the master dies (SIGKILL), Sentinel promotes its replica, and every
instance subscribes every room's channel again on the new master within 5 s, with no room missed."""
from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis.asyncio as aioredis

from app.factory import SIO_KEY
from app.transport.channels import room_channel
from conftest import RedisProcess, free_port, make_token
from tests.multi.test_redis_faults import until


def started(args: list[str], ready: bytes) -> subprocess.Popen[bytes]:
    """A redis-server process, once its log says `ready`."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if ready in line:
            return proc
    raise RuntimeError(f"{args} did not start")


class Failover:
    """A master, its replica and one Sentinel watching them (quorum 1, down after 0.5 s)."""

    def __init__(self, tmp: Path, master: RedisProcess) -> None:
        self.master = master
        self.replica_port, self.sentinel_port = free_port(), free_port()
        self.replica = started(["redis-server", "--port", str(self.replica_port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp), "--replicaof", "127.0.0.1", str(master.port)],
                               b"MASTER <-> REPLICA sync: Finished with success")  # --dir: no dump.rdb loaded
        config = tmp / "sentinel.conf"
        config.write_text(f"port {self.sentinel_port}\nbind 127.0.0.1\n"
                          f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
                          "sentinel down-after-milliseconds mymaster 500\n"
                          "sentinel failover-timeout mymaster 3000\n")
        self.sentinel = started(["redis-server", str(config), "--sentinel"], b"+monitor master")
        self.url = f"redis+sentinel://127.0.0.1:{self.sentinel_port}/0/mymaster"

    async def knows_the_replica(self) -> bool:
        client = aioredis.Redis(port=self.sentinel_port)
        try:
            return bool(await client.sentinel_slaves("mymaster"))
        finally:
            await client.aclose()

    def stop(self) -> None:
        for proc in (self.sentinel, self.replica):
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def failover(redis_server: RedisProcess, tmp_path: Path) -> Iterator[Failover]:
    """The test's own redis-server as the master, a replica and a Sentinel beside it."""
    setup = Failover(tmp_path, redis_server)
    yield setup
    setup.stop()


async def test_every_room_is_heard_again_within_5_s_of_a_failover(
        start_server: Any, failover: Failover, raw_to: Any) -> None:
    """30 users on A: the master is killed; within 5 s of it both instances are subscribed again on the
    promoted replica, Redis counts A on every one of the 30 rooms' channels, and an event to each room from
    B reaches its member."""
    async with asyncio.timeout(30):
        while not await failover.knows_the_replica():
            await asyncio.sleep(0.1)
    a = await start_server(redis_url=failover.url)
    b = await start_server(redis_url=failover.url)
    await until(lambda: a.app[SIO_KEY].manager.subscribed and b.app[SIO_KEY].manager.subscribed)
    users = [f"u{n}" for n in range(30)]
    clients = [await raw_to(a, "/ws", make_token(user)) for user in users]
    for ws in clients:
        await ws.send({"event": "SESSAO_PING", "data": {}})
        await ws.recv_kind("SESSAO_PONG")
    wanted = set(a.app[SIO_KEY].manager.heard.where)

    killed = time.monotonic()
    failover.master.stop()
    await until(lambda: not a.app[SIO_KEY].manager.subscribed)
    await until(lambda: a.app[SIO_KEY].manager.subscribed and b.app[SIO_KEY].manager.subscribed, timeout=10)
    took = time.monotonic() - killed
    assert took < 5, f"subscribed again {took:.1f} s after the master died"
    assert a.app[SIO_KEY].manager.heard.confirmed >= wanted  # not one missed
    promoted = aioredis.Redis(port=failover.replica_port)
    try:
        assert (await promoted.info("replication"))["role"] == "master"
        counts = await promoted.pubsub_numsub(*(room_channel("socketio", "/omni", f"user:{u}") for u in users))
        assert [int(count) for _, count in counts] == [1] * 30
    finally:
        await promoted.aclose()
    for user in users:
        await b.app[SIO_KEY].emit("NOTIFICACAO_GERAL", {"tipo": "info", "titulo": user, "mensagem": "m"},
                                  room=f"user:{user}", namespace="/omni")
    for user, ws in zip(users, clients):
        assert (await ws.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == user
