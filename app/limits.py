"""Rate limits per user: one token bucket for all of a user's connections on this instance and,
with Redis, one for the whole cluster.

A frame is admitted or refused at once against the local bucket (no Redis round trip per frame).
Every `SYNC_EVERY` seconds the tokens each user spent here are sent to a bucket in Redis (a Lua
script, refilled by Redis's own clock), and each local bucket is lowered to what is left cluster-wide.
A user spread over several instances therefore gets at most what each instance admits in one
`SYNC_EVERY` beyond the limit. If Redis is unreachable the local limits go on alone.
"""
from __future__ import annotations

import logging
from typing import Any

from .guards import Bucket, ConnectionGuard

log = logging.getLogger("ponte.limits")
SYNC_EVERY = 0.1
KEY = "ponte:rate:{}"
# KEYS[1]: the user's bucket; ARGV: spent, rate, burst, ttl ms. Returns the tokens left (may go negative).
TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens, stamp = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate) - tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return tostring(tokens)
"""


class UserLimits:
    """The buckets of the users connected to this instance."""

    def __init__(self, rate: float, burst: int, redis: Any = None) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, Bucket] = {}
        self._take = redis.register_script(TAKE) if redis is not None else None
        self._redis = redis
        self._ttl_ms = int(1000 * (burst / rate + 60))  # a full refill, and some
        self._failing = False

    def bind(self, guard: ConnectionGuard, user: str) -> None:
        """Make a connection share its user's bucket (once; anonymous connections keep their own)."""
        if guard.user is not None:
            return
        bucket = self.buckets.get(user)
        if bucket is None:
            bucket = self.buckets[user] = Bucket(self.rate, self.burst)
        bucket.refs += 1
        guard.bucket, guard.user = bucket, user

    def unbind(self, guard: ConnectionGuard) -> None:
        """A connection has gone; forget its user's bucket with the last one."""
        if guard.user is None:
            return
        bucket = self.buckets.get(guard.user)
        if bucket is not None:
            bucket.refs -= 1
            if bucket.refs <= 0 and (self._take is None or not bucket.spent):  # else: after its last sync
                del self.buckets[guard.user]
        guard.user = None

    async def sync(self) -> None:
        """Exchange what was spent here with the cluster's buckets in Redis."""
        if self._take is None:
            return
        busy = [(user, bucket) for user, bucket in self.buckets.items() if bucket.spent]
        for user in [user for user, bucket in self.buckets.items() if bucket.refs <= 0]:
            del self.buckets[user]
        if not busy:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user, bucket in busy:
                    await self._take(keys=[KEY.format(user)], client=pipe,
                                     args=[bucket.spent, self.rate, self.burst, self._ttl_ms])
                    bucket.spent = 0
                left = await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis down: local limits only, said once
            if not self._failing:
                log.warning("rate limits not shared with other instances: %s", type(exc).__name__)
            self._failing = True
            return
        self._failing = False
        for (_, bucket), tokens in zip(busy, left):
            bucket.tokens = min(bucket.tokens, float(tokens))
