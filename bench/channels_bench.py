"""What a room's channel costs Redis: memory per subscribed channel and CPU per SUBSCRIBE (issue 16).

    python bench/channels_bench.py [--channels 100000]

A private redis-server; four subscriber connections subscribe `--channels` channels named as Ponte names a
connection's own room (`socketio#/omni#<20-character sid>#`), 1,000 per SUBSCRIBE as `RoomChannels.sync`
sends them. Prints Redis's used_memory growth per channel and its CPU (INFO cpu) per subscription.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis.asyncio as aioredis  # noqa: E402

from redis_servers import RedisServer  # noqa: E402

CONNECTIONS, BATCH = 4, 1000


async def measure(port: int, channels: int) -> tuple[float, float]:
    admin = aioredis.Redis(port=port)
    memory, cpu = (await admin.info("memory"))["used_memory"], await admin.info("cpu")
    busy = cpu["used_cpu_sys"] + cpu["used_cpu_user"]
    subscribers = []
    for k in range(CONNECTIONS):
        pubsub = aioredis.Redis(port=port).pubsub()
        names = [f"socketio#/omni#{k}{n:019d}#" for n in range(channels // CONNECTIONS)]
        for start in range(0, len(names), BATCH):
            await pubsub.subscribe(*names[start:start + BATCH])
        subscribers.append(pubsub)
    last = f"socketio#/omni#{CONNECTIONS - 1}{channels // CONNECTIONS - 1:019d}#"
    while int((await admin.pubsub_numsub(last))[0][1]) < 1:
        await asyncio.sleep(0.01)  # the last SUBSCRIBE is processed: every one before it is too
    grown, cpu = (await admin.info("memory"))["used_memory"] - memory, await admin.info("cpu")
    spent = cpu["used_cpu_sys"] + cpu["used_cpu_user"] - busy
    for pubsub in subscribers:
        await pubsub.aclose()
    await admin.aclose()
    return grown / channels, spent / channels * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logdir:
        server = RedisServer(Path(logdir))
        try:
            per_channel, per_subscribe = asyncio.run(measure(server.port, args.channels))
        finally:
            server.stop()
    print(f"{args.channels} channels: {per_channel:.0f} bytes of Redis memory each, "
          f"{per_subscribe:.2f} µs of Redis CPU per SUBSCRIBE (batches of {BATCH})")


if __name__ == "__main__":
    main()
