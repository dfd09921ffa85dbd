"""A user's rate limit holds across instances behind one real Redis."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from conftest import TIMEOUT, RedisProcess, make_token, subscribed

LIMITED = {"rate_limit_per_second": 0.05, "rate_limit_burst": 6, "rate_limit_close_after": 100}  # a token per 20 s


@pytest.fixture
async def limited_pair(start_server: Any, redis_server: RedisProcess) -> tuple[Any, Any]:
    """Two instances with a small rate limit, sharing one redis-server."""
    first = await start_server(redis_url=redis_server.url, **LIMITED)
    second = await start_server(redis_url=redis_server.url, **LIMITED)
    await subscribed(first, second)
    return first, second


async def tokens_left(redis: aioredis.Redis, user: str) -> float:
    value = await redis.hget(f"ponte:rate:{user}", "t")
    return float(value) if value is not None else float(LIMITED["rate_limit_burst"])


async def until_below(redis: aioredis.Redis, user: str, level: float) -> float:
    """Wait until the cluster's bucket of `user` in Redis is below `level` (a real condition, polled)."""
    async with asyncio.timeout(TIMEOUT):
        while (left := await tokens_left(redis, user)) >= level:
            await asyncio.sleep(0.01)
    return left


async def ping(client: Any, request_id: str) -> str:
    await client.send({"event": "SESSAO_PING", "data": {"request_id": request_id}})
    answer = await client.recv()
    return answer["data"].get("codigo") or answer["event"]


async def test_burst_spent_on_one_instance_counts_on_the_other(limited_pair: Any, raw_to: Any,
                                                               redis_server: RedisProcess) -> None:
    """Alice spends her burst on A; once A has told Redis, B refuses her after at most what B admitted
    before its next exchange — here one message — while bob on B is unaffected."""
    a, b = limited_pair
    on_a, on_b = await raw_to(a, "/ws", make_token("alice")), await raw_to(b, "/ws", make_token("alice"))
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        assert [await ping(on_a, f"a{i}") for i in range(6)] == ["SESSAO_PONG"] * 6
        left = await until_below(redis, "alice", 1.0)
        assert await ping(on_b, "b0") == "SESSAO_PONG"  # B had not heard yet: admitted, then reported
        await until_below(redis, "alice", left - 0.5)
        assert await ping(on_b, "b1") == "RATE_LIMIT_ERROR"
        assert await ping(on_a, "a6") == "RATE_LIMIT_ERROR"
        assert await ping(await raw_to(b, "/ws", make_token("bob")), "bob") == "SESSAO_PONG"
    finally:
        await redis.aclose()


async def test_local_limits_hold_while_redis_is_down(limited_pair: Any, raw_to: Any,
                                                     redis_server: RedisProcess, caplog: Any) -> None:
    """With Redis gone, each instance goes on limiting alone: the burst is served, the next message refused,
    and the lost exchange is said once, not as a traceback."""
    a, _ = limited_pair
    client = await raw_to(a, "/ws", make_token("alice"))
    redis_server.stop()
    assert [await ping(client, f"a{i}") for i in range(7)] == ["SESSAO_PONG"] * 6 + ["RATE_LIMIT_ERROR"]
    async with asyncio.timeout(TIMEOUT):  # the next exchange with Redis fails, and says so
        while not any("rate limits not shared" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if r.exc_info and r.name == "ponte.limits"]
